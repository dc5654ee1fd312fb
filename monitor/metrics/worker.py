"""The web process's database families, rendered in a child process so that a build never holds its GIL.

A build of a large fleet is mostly Python work on rows (100,000 devices: about half a second). In a thread of
the web process it competes with the API for the GIL, and the API's slowest requests wait for it; measured
with a scraper every second at 100,000 devices, the API's p99 doubled. In a child process the work has its
own GIL and runs at a lower CPU priority; the web process only sends a line and reads back ~4 MB of
compressed text, which it splices unchanged into its answer (`monitor.metrics.exposition.gzip_member`).

    web process (DatabaseWorker)                     child: python -m monitor.metrics.child
      stdin  ── {"database_url": …, "gzip_level": 5}\\n ──►  opens its own engine; keeps the device labels
      stdin  ── build\\n ─────────────────────────────────►  renders fleet state and tickets, compresses
      stdout ◄── {"size", "crc", "length", "series", "up", "seconds"}\\n + `size` bytes of raw deflate

The database URL travels on the pipe, never on the command line. The child exits when its stdin closes
(the web process is gone); the parent starts it again after a failure or a timeout, meanwhile reporting
`fleet_exporter_source_up{source="fleet"} 0`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import time

from monitor.errors import MonitorError
from monitor.metrics.exporter import Rendered, Renderer
from monitor.metrics.exposition import GZIP_LEVEL, Block

log = logging.getLogger(__name__)

SOURCES = ("fleet", "tickets")
CHILD_MODULE = "monitor.metrics.child"  # the child's loop (`python -m`); nothing of this package imports it
TIMEOUT_S = 120.0


class WorkerError(MonitorError):
    """The child did not answer in time, or not as agreed."""


class DatabaseWorker:
    """A metrics source standing for the fleet state and tickets sources, rendered by a child process."""

    name = "database"

    def __init__(self, database_url: str, *, gzip_level: int = GZIP_LEVEL, timeout_s: float = TIMEOUT_S) -> None:
        self.database_url = database_url
        self.gzip_level = gzip_level
        self.timeout_s = timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def capture(self) -> Renderer:
        return self.render

    def render(self) -> Rendered:
        """Ask the child for one build (in the exporter's build thread); on failure, report the sources down."""
        try:
            process = self._ensure_started()
            assert process.stdin is not None
            process.stdin.write(b"build\n")
            process.stdin.flush()
            deadline = time.monotonic() + self.timeout_s
            header = json.loads(self._read_until(b"\n", deadline))
            data = self._read_exactly(int(header["size"]), deadline)
        except (OSError, ValueError, KeyError, WorkerError) as exc:
            log.error("the metrics worker failed (%s); starting it again at the next build", exc)
            self.stop()
            return Rendered([], dict.fromkeys(SOURCES, False))
        block = Block.compressed(data, int(header["crc"]), int(header["length"]), int(header["series"]))
        return Rendered([block], {name: bool(up) for name, up in header["up"].items()})

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._buffer = b""
        process = subprocess.Popen([sys.executable, "-m", CHILD_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert process.stdin is not None
        config = {"database_url": self.database_url, "gzip_level": self.gzip_level}
        process.stdin.write(json.dumps(config).encode() + b"\n")
        process.stdin.flush()
        self._process = process
        return process

    def _fill(self, deadline: float) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            raise WorkerError(f"no answer within {self.timeout_s:g} s")
        chunk = os.read(process.stdout.fileno(), 1 << 20)
        if not chunk:
            raise WorkerError(f"the worker exited ({process.poll()})")
        self._buffer += chunk

    def _read_until(self, separator: bytes, deadline: float) -> bytes:
        while separator not in self._buffer:
            self._fill(deadline)
        line, _, self._buffer = self._buffer.partition(separator)
        return line

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        chunks = [self._buffer]
        received = len(self._buffer)
        self._buffer = b""
        while received < size:
            self._fill(deadline)
            chunks.append(self._buffer)
            received += len(self._buffer)
            self._buffer = b""
        data = b"".join(chunks)
        self._buffer = data[size:]
        return data[:size]

    def stop(self) -> None:
        """End the child (by its pid): closing its stdin asks it to leave, a kill makes sure."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


__all__ = ["SOURCES", "DatabaseWorker", "WorkerError"]
