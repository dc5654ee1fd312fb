"""The database worker's child process: `python -m monitor.metrics.child`, started by `DatabaseWorker`.

It opens its own engine from the first line on stdin, then renders the fleet state and the tickets and
compresses them at each `build` line, until stdin closes (the web process is gone). The protocol is
described in `monitor.metrics.worker`. Nothing imports this module: it only runs as the child's `__main__`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import sqlalchemy as sa

from monitor.config import load_settings
from monitor.db import make_engine
from monitor.metrics.exposition import GZIP_LEVEL, Block, deflate_blocks
from monitor.metrics.fleet import FleetStateSource
from monitor.metrics.tickets import TicketMetricsSource

log = logging.getLogger(__name__)

NICENESS = 10  # metrics are background work: the API's process gets the CPU first


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop: one build per request line, until stdin closes."""
    config = json.loads(stdin.readline())
    engine = make_engine(load_settings(database_url=config["database_url"]))
    level = int(config.get("gzip_level", GZIP_LEVEL))
    sources: list[FleetStateSource | TicketMetricsSource] = [FleetStateSource(engine), TicketMetricsSource(engine)]
    # Its own GIL and a low priority: compressing on two cores shortens a build without holding the API back.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deflate")
    for _request in iter(stdin.readline, b""):
        started = time.perf_counter()
        blocks: list[Block] = []
        up: dict[str, bool] = {}
        for source in sources:
            try:
                blocks.extend(source.render())
                up[source.name] = True
            except sa.exc.SQLAlchemyError:
                log.exception("metrics source %r failed; its families are left out of this scrape", source.name)
                up[source.name] = False
        segment = deflate_blocks(blocks, level, pool=pool)
        header: dict[str, Any] = {
            "size": len(segment.deflated),
            "crc": segment.crc,
            "length": segment.length,
            "series": sum(block.series for block in blocks),
            "up": up,
            "seconds": time.perf_counter() - started,
        }
        stdout.write(json.dumps(header).encode() + b"\n" + segment.deflated)
        stdout.flush()
    pool.shutdown()
    engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s metrics worker: %(message)s")
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):  # the web process is gone or stopping
        serve(sys.stdin.buffer, sys.stdout.buffer)


__all__ = ["serve"]

if __name__ == "__main__":
    main()
