"""A process's metrics as a cached snapshot: its sources, built off the event loop at most every `max_age_s`.

Fleet scale (100,000 devices × 3 series, ~36 MB of text): prometheus-client's labelled gauges render
in ~5 s, too slow to scrape. So the exposition is built **off the event loop, at most once every
`max_age_s`**: in a thread, except the web process's database families, which a child process renders
and compresses (`monitor.metrics.worker`: its own GIL, so the API's slowest requests do not wait for it).
Concurrent scrapes share one build; when scrapes come at a steady interval, the build starts just
before the next one is due. The API and the pollers never wait for a build. Every process adds
prometheus-client's `process_*` and `python_*` metrics (`process_registry`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest

from monitor.metrics.exposition import GZIP_LEVEL, Block, family_block, gzip_member, labels
from monitor.metrics.names import EXPORTER_BUILD, EXPORTER_BYTES, EXPORTER_SERIES, EXPORTER_SOURCE_UP

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_MAX_AGE_S = 5.0


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a source that stands for several (the database worker) rendered: its blocks and each one's health."""

    blocks: Sequence[Block]
    up: Mapping[str, bool]


#: Renders some families; called in the build thread, so it must only read what `capture` froze
#: or what it fetches itself (the database).
Renderer = Callable[[], Sequence[Block] | Rendered]


class MetricsSource(Protocol):
    """Something that contributes families to a process's `/metrics`."""

    name: str

    def capture(self) -> Renderer:
        """Called on the event loop: copy what may change there, return what renders it in the thread."""
        ...


@dataclass(slots=True)
class Exposition:
    """One built snapshot of a process's metrics: gzip-compressed (what Prometheus asks for), the plain text
    made from it on demand, and how the build went."""

    gzipped: bytes
    length: int
    series: int
    build_seconds: float
    built_at_monotonic: float
    sources_up: Mapping[str, bool] = field(default_factory=dict)
    _text: bytes | None = None

    def text(self) -> bytes:
        """The plain text (decompressed once, then kept; zlib lets go of the GIL meanwhile)."""
        if self._text is None:
            self._text = zlib.decompress(self.gzipped, wbits=31)
        return self._text


@dataclass(frozen=True, slots=True)
class ScrapeResponse:
    """What to send to a scraper: the body and the headers of an HTTP 200."""

    body: bytes
    headers: Mapping[str, str]


def scrape_allowed(token: str | None, authorization: str) -> bool:
    """Whether a scrape may read the metrics: always without a token, else only with `Bearer <token>`."""
    if not token:
        return True
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


UNAUTHORIZED_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Bearer realm="metrics"'}
UNAUTHORIZED_BODY = b"401: /metrics needs the bearer token of MONITOR_METRICS_TOKEN\n"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` header allows gzip (and does not refuse it with q=0)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and _q_is_zero(q[2:]))
    return False


def _q_is_zero(text: str) -> bool:
    try:
        return float(text) == 0.0
    except ValueError:
        return False


class MetricsExporter:
    """A process's metrics, rebuilt off the event loop at most once every `max_age_s` and kept as bytes.

    A scrape that finds the snapshot fresh gets it at once; otherwise it waits for the one build in
    flight (started by whichever scrape came first). A source that fails with a database error is
    left out of that snapshot and reported by `fleet_exporter_source_up 0`; the others still serve.

    Prometheus scrapes at a steady interval: once two intervals in a row agree, the next build starts
    just before the next scrape is due (its lead: the last build's time and a second), so that a scrape of
    a large fleet is answered from a snapshot a second or two old instead of waiting for a build. A
    scrape that comes early, late or from someone else simply finds a fresh snapshot or waits for one.
    """

    PREFETCH_MARGIN_S = 1.0

    def __init__(
        self,
        sources: Sequence[MetricsSource] = (),
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        gzip_level: int = GZIP_LEVEL,
    ) -> None:
        self.sources: list[MetricsSource] = list(sources)
        self.max_age_s = max_age_s
        self.gzip_level = gzip_level
        self._snapshot: Exposition | None = None
        self._building: asyncio.Future[Exposition] | None = None
        self._process = process_registry()
        self._scrapes: deque[float] = deque(maxlen=3)
        self._prefetch: asyncio.TimerHandle | None = None

    def add_source(self, source: MetricsSource) -> None:
        """Add a source (e.g. the demo's in-process collector); it appears from the next build on."""
        self.sources.append(source)

    def close(self) -> None:
        """Stop what the sources started (the database worker); it would also end with this process."""
        if self._prefetch is not None:
            self._prefetch.cancel()
        for source in self.sources:
            stop = getattr(source, "stop", None)
            if callable(stop):
                stop()

    def warm(self) -> None:
        """Start a first build now (in the background), so that the first scrape finds the labels rendered."""
        if self._snapshot is None:
            self._start_build()

    async def exposition(self) -> Exposition:
        """The current snapshot: the cached one while fresh, else the one being built (starting it if needed)."""
        now = time.monotonic()
        self._plan_prefetch(now)
        snapshot = self._snapshot
        if snapshot is not None and now - snapshot.built_at_monotonic < self.max_age_s:
            return snapshot
        return await asyncio.shield(self._start_build())

    def _start_build(self) -> asyncio.Future[Exposition]:
        if self._building is None:
            renderers = [(source.name, source.capture()) for source in self.sources]
            previous = self._snapshot
            self._building = asyncio.ensure_future(asyncio.to_thread(self.build, renderers, previous))
            self._building.add_done_callback(self._built)
        return self._building

    def _built(self, future: asyncio.Future[Exposition]) -> None:
        self._building = None
        if not future.cancelled() and future.exception() is None:
            self._snapshot = future.result()

    def _plan_prefetch(self, now: float) -> None:
        """After two equal intervals between scrapes, build shortly before the next one is due."""
        self._scrapes.append(now)
        if self._prefetch is not None:
            self._prefetch.cancel()
            self._prefetch = None
        if len(self._scrapes) < 3:
            return
        first, second = self._scrapes[1] - self._scrapes[0], self._scrapes[2] - self._scrapes[1]
        lead = (self._snapshot.build_seconds if self._snapshot else 0.0) + self.PREFETCH_MARGIN_S
        if abs(first - second) > 0.2 * second or second <= 2 * lead:
            return  # no steady interval, or too short to build in between
        self._prefetch = asyncio.get_running_loop().call_later(second - lead, self._prefetch_now, lead)

    def _prefetch_now(self, lead: float) -> None:
        self._prefetch = None
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() + lead - snapshot.built_at_monotonic < self.max_age_s:
            return  # still fresh when the scrape is due
        self._start_build()

    async def respond(self, accept_encoding: str = "") -> ScrapeResponse:
        """The snapshot as an HTTP answer, gzip-encoded when the client accepts it."""
        snapshot = await self.exposition()
        headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
        if accepts_gzip(accept_encoding):
            headers["Content-Encoding"] = "gzip"
            return ScrapeResponse(snapshot.gzipped, headers)
        return ScrapeResponse(await asyncio.to_thread(snapshot.text), headers)

    def build(self, renderers: Sequence[tuple[str, Renderer]], previous: Exposition | None = None) -> Exposition:
        """Render every source, then the process and exporter families, and compress (runs in a thread)."""
        started = time.perf_counter()
        blocks: list[Block] = []
        sources_up: dict[str, bool] = {}
        for name, render in renderers:
            try:
                result = render()
            except sa.exc.SQLAlchemyError:
                log.exception("metrics source %r failed; its families are left out of this scrape", name)
                sources_up[name] = False
                continue
            if isinstance(result, Rendered):
                blocks.extend(result.blocks)
                sources_up.update(result.up)
            else:
                blocks.extend(result)
                sources_up[name] = True
        blocks.append(self_block(previous, sources_up))
        blocks.append(Block(generate_latest(self._process), 0))
        gzipped, length = gzip_member(blocks, self.gzip_level)
        return Exposition(
            gzipped=gzipped,
            length=length,
            series=sum(block.series for block in blocks),
            build_seconds=time.perf_counter() - started,
            built_at_monotonic=time.monotonic(),
            sources_up=sources_up,
        )


def process_registry() -> CollectorRegistry:
    """prometheus-client's own small collectors: process_* (CPU, memory, files), python_* (GC, version)."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def self_block(previous: Exposition | None, sources_up: Mapping[str, bool]) -> Block:
    """The exporter's own families, about the previous snapshot (this one's size is not known yet)."""
    blocks = [family_block(EXPORTER_SOURCE_UP, [(labels([("source", n)]), up) for n, up in sorted(sources_up.items())])]
    if previous is not None:
        blocks += [
            family_block(EXPORTER_BUILD, [("", previous.build_seconds)]),
            family_block(
                EXPORTER_BYTES,
                [
                    (labels([("encoding", "identity")]), previous.length),
                    (labels([("encoding", "gzip")]), len(previous.gzipped)),
                ],
            ),
            family_block(EXPORTER_SERIES, [("", previous.series)]),
        ]
    return Block(b"".join(b.text for b in blocks), sum(b.series for b in blocks))


__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_AGE_S",
    "UNAUTHORIZED_BODY",
    "UNAUTHORIZED_HEADERS",
    "Exposition",
    "MetricsExporter",
    "MetricsSource",
    "Rendered",
    "Renderer",
    "ScrapeResponse",
    "accepts_gzip",
    "process_registry",
    "scrape_allowed",
    "self_block",
]
