"""A local HTTP server that records every request and answers from a small script, for testing clients of
services that cannot run here (Grafana) or that we only need to see called (Alertmanager's webhook target).

    with RecordingServer(answers={("GET", "/api/health"): (200, {"version": "11.3.0"})}) as server:
        ...  # server.url; server.requests; server.wait_for(lambda r: r.path == "/x")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

Answer = tuple[int, Any]  # status, JSON body


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingServer:
    """Answers `answers[(method, path)]` (a fixed answer, or a function of the request), else 200 `{}`; keeps
    every request in `requests`. Listens on 127.0.0.1 on a free port, in a thread; stopped on exit."""

    def __init__(self, answers: Mapping[tuple[str, str], Answer | Callable[[Recorded], Answer]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                with server._lock:
                    server.requests.append(recorded)
                answer = server.answers.get((self.command, self.path), (200, {}))
                status, body = answer(recorded) if callable(answer) else answer
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, matches: Callable[[Recorded], bool], timeout_s: float = 20.0) -> Recorded:
        """The first recorded request that `matches`, waiting for it up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                found = next((r for r in self.requests if matches(r)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching request within {timeout_s:g} s; received: {self.requests}")
