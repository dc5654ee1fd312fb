"""Prometheus metrics: the names, a fast text exposition, and the cached snapshot every process serves.

Who exports what (so that Prometheus never counts a device twice):

- the **web** process exports the fleet's current state and the tickets, read from the database at
  scrape time (`monitor.metrics_fleet`); it is the only one that does;
- each **collector** process exports its own work (polls, latency, lateness, blindness) from memory,
  on its own small HTTP server (`monitor.metrics_server`);
- every process adds prometheus-client's `process_*` and `python_*` metrics. In `monitor demo` the
  one process serves all of them on one `/metrics`.

Fleet scale (100,000 devices × 3 series, ~36 MB of text): prometheus-client's labelled gauges render
in ~5 s, too slow to scrape. Here each device's label set is rendered once (`metrics_fleet`), each
scrape only joins values to it, and the exposition is built **off the event loop, at most once every
`max_age_s`**: in a thread, except the web process's database families, which a child process renders
and compresses (`monitor.metrics_worker`: its own GIL, so the API's slowest requests do not wait for it).
It is kept gzip-compressed (level 5; the plain text is made from it for the rare client that wants it).
Concurrent scrapes share one build; when scrapes come at a steady interval, the build starts just
before the next one is due. The API and the pollers never wait for a build.

Text format 0.0.4: every family has HELP and TYPE, counters end in `_total`, units are base units in
the name, no series appears twice; `promtool check metrics` passes (tests/test_metrics.py).
This module is the only one that imports prometheus_client.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest

from monitor.collectors.scheduler import LATENESS_BUCKETS, SchedulerStats
from monitor.collectors.stats import LATENCY_BUCKETS, OK, LatencyHistogram

if TYPE_CHECKING:
    from monitor.collectors.runner import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Measured at 100,000 devices (38 MB): level 5 takes 0.23 s for 3.7 MB, level 9 (prometheus-client's) 1.1 s for 3.1 MB.
GZIP_LEVEL = 5
DEFAULT_MAX_AGE_S = 5.0
PARALLEL_MIN_BYTES = 1 << 20  # below this, compressing in pieces costs more than it saves
POLL_PROTOCOLS = ("http", "snmp", "mqtt", "heartbeat")


# --- the names ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name, Prometheus type and help text (English, for operators)."""

    name: str
    type: str
    help: str

    def header(self) -> bytes:
        """The `# HELP` and `# TYPE` lines."""
        text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {text}\n# TYPE {self.name} {self.type}\n".encode()


def _gauge(name: str, help: str) -> Family:
    return Family(name, "gauge", help)


def _counter(name: str, help: str) -> Family:
    assert name.endswith("_total"), name
    return Family(name, "counter", help)


# Per device, labelled device, kind, commune, district. Only devices that are active in the inventory.
DEVICE_UP = _gauge(
    "fleet_device_up",
    "1 when the device is up or degraded, 0 when down; absent while its state is unknown or in maintenance.",
)
DEVICE_LAST_SEEN = _gauge(
    "fleet_device_last_seen_timestamp_seconds", "When the device last answered or pushed (Unix time)."
)
DEVICE_INFO = _gauge(
    "fleet_device_info", "Always 1: every active device, with its protocol and coordinates (lat, lon) for maps."
)
# Sparse per device: a series only for the devices it concerns.
DEVICE_FAULT = _gauge("fleet_device_fault", "1 for each fault the device reports now (label fault).")
DEVICE_DOWN_SINCE = _gauge("fleet_device_down_since_timestamp_seconds", "When a down device went down (Unix time).")
DEVICE_MAINTENANCE = _gauge("fleet_device_in_maintenance", "1 for each device in maintenance (not judged for uptime).")
DEVICE_FLAPPING = _gauge("fleet_device_flapping", "1 for each device whose state changes too often.")
# Aggregates.
DEVICES = _gauge(
    "fleet_devices", "Active devices by district, kind and state (unknown, up, degraded, down, maintenance)."
)
COMMUNE_DEVICES = _gauge("fleet_commune_devices", "Active devices by commune and state.")
COMMUNE_INFO = _gauge("fleet_commune_info", "Always 1: each commune with its name and its district's name.")
DISTRICT_INFO = _gauge("fleet_district_info", "Always 1: each district (or maintenance area) with its name.")
COMMUNES = _gauge("fleet_communes", "Communes by district.")
COMMUNES_WITH_RADIO = _gauge(
    "fleet_communes_with_radio_system", "Communes with at least one broadcast system that is not broken, by district."
)
COMMUNES_WITH_IP_RADIO = _gauge(
    "fleet_communes_with_ip_radio_system",
    "Communes with an IT-telecom (IP) broadcast system that is not broken, by district.",
)
BROADCAST_SYSTEMS = _gauge("fleet_broadcast_systems", "Broadcast systems by district, technology and condition.")
STATE_CHANGES_PENDING = _gauge(
    "fleet_state_changes_pending", "State changes written by health and not yet processed by a dispatcher."
)
STATE_CHANGES_OLDEST_AGE = _gauge(
    "fleet_state_changes_oldest_pending_age_seconds", "Age of the oldest unprocessed state change (0 when none)."
)
# Tickets.
TICKETS_OPEN = _gauge("fleet_tickets_open", "Open tickets by district, priority and status.")
TICKETS_SLA_BREACHED = _gauge(
    "fleet_tickets_sla_breached", "Open tickets marked as having missed their SLA, by district and priority."
)
TICKETS_OPEN_BY_AGE = _gauge("fleet_tickets_open_by_age", "Open tickets by district and age since creation.")
TICKETS_RESOLVED_30D = _gauge(
    "fleet_tickets_resolved_30d",
    "Tickets resolved in the last 30 days by district, priority and sla (met or breached).",
)
TICKETS_RESOLUTION_30D = _gauge(
    "fleet_tickets_resolution_30d_seconds",
    "Total time from creation to resolution of the tickets resolved in the last 30 days, by district.",
)
TICKETS_TIME_TO_RESOLVE_30D = _gauge(
    "fleet_tickets_time_to_resolve_30d_seconds",
    "Time from creation to resolution of the tickets resolved in the last 30 days: stat p50 or p90, by district.",
)
# A collector's own work.
POLLS = _counter("fleet_polls_total", "Polls and pushed messages by protocol and outcome (ok or a failure kind).")
COLLECTOR_EVENTS = _counter(
    "fleet_collector_events_total", "Things that happen beside polls (garbage packets, unknown topics...)."
)
POLL_DURATION = Family("fleet_poll_duration_seconds", "histogram", "Latency of successful polls by protocol.")
SCHEDULER_LATENESS = Family(
    "fleet_scheduler_lateness_seconds", "histogram", "How late poll slot jobs started after their scheduled time."
)
SCHEDULER_MISSED = _counter("fleet_scheduler_missed_runs_total", "Poll slot runs missed because the collector lagged.")
SCHEDULER_SKIPPED = _counter(
    "fleet_scheduler_skipped_polls_total", "Polls skipped because the device's previous poll still ran."
)
POLLS_IN_FLIGHT = _gauge("fleet_polls_in_flight", "Polls running now.")
COLLECTOR_TARGETS = _gauge("fleet_collector_polled_devices", "Devices this collector polls (its shard).")
COLLECTOR_BLIND = _gauge(
    "fleet_collector_blind",
    "1 while the collector holds judgement back: every poll of every protocol fails (its own network is "
    "suspect), it is stalled itself, or a push ingest is silent fleet-wide.",
)
COLLECTOR_STALLED = _gauge(
    "fleet_collector_stalled",
    "1 while the collector itself cannot work (its event loop held, or nothing saved for too long): "
    "heartbeat silence is not counted and failed polls of that time are dropped.",
)
COLLECTOR_STALLS = _counter(
    "fleet_collector_stalls_total",
    "Stalls of the collector or of a push ingest, by cause (loop, schedule, database, ingest_mqtt, ingest_heartbeat).",
)
COLLECTOR_STALLED_SECONDS = _counter(
    "fleet_collector_stalled_seconds_total",
    "Seconds of those stalls by cause: taken out of the heartbeat silence of every push device.",
)
COLLECTOR_LOOP_LAG = _gauge(
    "fleet_collector_loop_lag_seconds", "How late the collector's event loop last woke its quarter-second timer."
)
COLLECTOR_LAST_FLUSH = _gauge(
    "fleet_collector_last_flush_timestamp_seconds",
    "When the collector last saved what it heard (or had nothing to save), Unix time.",
)
COLLECTOR_DISCOUNTED = _counter(
    "fleet_collector_failures_discounted_total",
    "Failed observations not counted against their device, by reason (stalled: overlapping a stall of the "
    "collector; blind: every poll failing).",
)
COLLECTOR_INGEST_SILENT = _gauge(
    "fleet_collector_ingest_silent",
    "1 while no device of a push protocol gets a heartbeat through fleet-wide: the ingest is blamed, not the devices.",
)
COLLECTOR_MQTT = _gauge("fleet_collector_mqtt_connected", "1 while the collector is connected to the MQTT broker.")
COLLECTOR_APPLIED = _counter("fleet_collector_observations_applied_total", "Observations saved to device health.")
COLLECTOR_TRANSITIONS = _counter("fleet_collector_state_transitions_total", "State transitions health decided.")
COLLECTOR_HELD = _gauge("fleet_collector_observations_held", "Observations held while the database is away.")
COLLECTOR_DROPPED = _counter(
    "fleet_collector_observations_dropped_total",
    "Observations lost before health judged them: the database away too long, or refusing them.",
)
COLLECTOR_INFO = _gauge("fleet_collector_info", "Always 1: the collector's shard (index and count).")
# Notifications (the web process's notification worker, and the deliveries table for every process).
NOTIFICATION_MESSAGES = _counter(
    "fleet_notification_messages_total",
    "Notification messages this process tried, by channel kind and outcome (sent, failed, rate_limited).",
)
NOTIFICATION_DELIVERIES = _counter(
    "fleet_notification_deliveries_total",
    "Notification deliveries (one recipient each) this process handled, by channel kind and outcome.",
)
NOTIFICATION_BACKLOG = _gauge(
    "fleet_notification_deliveries", "Notification deliveries in the database by channel kind and status."
)
# The exporter itself.
EXPORTER_BUILD = _gauge("fleet_exporter_build_seconds", "Time the previous snapshot of these metrics took to build.")
EXPORTER_BYTES = _gauge("fleet_exporter_exposition_bytes", "Size of the previous snapshot, by encoding.")
EXPORTER_SERIES = _gauge("fleet_exporter_series", "Series in the previous snapshot.")
EXPORTER_SOURCE_UP = _gauge("fleet_exporter_source_up", "0 when a source of metrics failed (e.g. the database).")

ALL_FAMILIES: tuple[Family, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Family))


# --- the text format ---------------------------------------------------------------------------


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """`name="value",...` for the pairs whose value is not empty (an empty label is no label)."""
    return ",".join(f'{name}="{escape(value)}"' for name, value in pairs if value != "")


def format_value(value: float) -> str:
    """A sample value: integers as they are, floats in full, NaN and infinities as Prometheus writes them."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


@dataclass(slots=True)
class Block:
    """Rendered text of whole families, and how many series it holds.

    A block that a source hands out again, unchanged, at later builds (`reused=True`, e.g. the device
    info family between inventory changes) keeps its compressed form in `deflated`, so that it is
    compressed once rather than at every build.
    """

    text: bytes
    series: int
    reused: bool = False
    deflated: bytes | None = None
    #: Set on a block compressed elsewhere (the database worker): the CRC-32 and size of its text, which is
    #: not here. Such a block comes first in an exposition, so that the CRC of what follows continues it.
    crc: int | None = None
    length: int = 0

    @classmethod
    def compressed(cls, deflated: bytes, crc: int, length: int, series: int) -> Block:
        """A block whose text was compressed elsewhere (see `deflate_blocks`)."""
        return cls(b"", series, deflated=deflated, crc=crc, length=length)


def family_block(family: Family, samples: Iterable[tuple[str, float]]) -> Block:
    """A family from `(labels text, value)` pairs (labels from `labels()`; "" for none)."""
    lines = [
        f"{family.name}{{{text}}} {format_value(value)}\n" if text else f"{family.name} {format_value(value)}\n"
        for text, value in samples
    ]
    return Block(family.header() + "".join(lines).encode(), len(lines))


def histogram_block(family: Family, histograms: Iterable[tuple[str, Sequence[tuple[float, int]], float]]) -> Block:
    """A histogram family from `(labels text, cumulative (le, count) pairs ending at +Inf, sum)`."""
    lines: list[str] = []
    for text, buckets, total in histograms:
        sep = "," if text else ""
        count = buckets[-1][1] if buckets else 0
        for bound, cumulative in buckets:
            le = "+Inf" if math.isinf(bound) else repr(float(bound))
            lines.append(f'{family.name}_bucket{{{text}{sep}le="{le}"}} {cumulative}\n')
        braces = f"{{{text}}}" if text else ""
        lines.append(f"{family.name}_sum{braces} {format_value(float(total))}\n")
        lines.append(f"{family.name}_count{braces} {count}\n")
    return Block(family.header() + "".join(lines).encode(), len(lines))


def cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[float, int]]:
    """Per-bucket counts (the last one above the last bound, or at an infinite last bound) as cumulative
    `(le, count)` pairs ending with `(inf, total)`, as Prometheus wants them."""
    pairs: list[tuple[float, int]] = []
    running = 0
    finite = [b for b in bounds if math.isfinite(b)]
    for index, count in enumerate(counts):
        running += count
        if index < len(finite):
            pairs.append((finite[index], running))
    pairs.append((math.inf, running))
    return pairs


# --- sources and the snapshot ------------------------------------------------------------------


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


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, unknown OS


def _deflate(data: bytes, level: int) -> bytes:
    """Raw deflate of `data`, ended by a sync flush: byte-aligned and not final, so segments concatenate."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


@dataclass(frozen=True, slots=True)
class Segment:
    """Raw deflate data that concatenates with others, the CRC-32 of its text (continued from the CRC
    given to `deflate_blocks`) and the text's size."""

    deflated: bytes
    crc: int
    length: int


def deflate_blocks(
    blocks: Sequence[Block],
    level: int = GZIP_LEVEL,
    crc: int = 0,
    pool: ThreadPoolExecutor | None = None,
    pieces_per_segment: int = 2,
) -> Segment:
    """Compress text blocks as one segment, reusing the compressed form of reused blocks.

    Deflate segments that each end with a sync flush concatenate into one valid stream (as pigz does), so
    with a `pool` the text is cut in `pieces_per_segment` pieces compressed side by side. zlib lets go of
    the GIL while it compresses and checksums, so the event loop keeps running.
    """
    pieces: list[bytes | Future[bytes]] = []
    pending: list[bytes] = []
    length = 0

    def flush() -> None:
        data = b"".join(pending)
        pending.clear()
        if pool is None or len(data) < PARALLEL_MIN_BYTES:
            pieces.append(_deflate(data, level))
            return
        step = -(-len(data) // pieces_per_segment)
        pieces.extend(pool.submit(_deflate, data[i : i + step], level) for i in range(0, len(data), step))

    for block in blocks:
        if block.crc is not None:
            raise ValueError("a block compressed elsewhere can only start an exposition")
        crc = zlib.crc32(block.text, crc)
        length += len(block.text)
        if not block.reused:
            pending.append(block.text)
            continue
        if pending:
            flush()
        if block.deflated is None:
            block.deflated = _deflate(block.text, level)
        pieces.append(block.deflated)
    if pending:
        flush()
    return Segment(b"".join(p if isinstance(p, bytes) else p.result() for p in pieces), crc, length)


def gzip_member(blocks: Sequence[Block], level: int = GZIP_LEVEL) -> tuple[bytes, int]:
    """One gzip member of the blocks' texts, in order (a block compressed elsewhere first), and its size.

    A final empty deflate block, the CRC-32 and the size of the whole text close the member.
    """
    head: list[Block] = []
    rest = list(blocks)
    crc = length = 0
    while rest and rest[0].crc is not None:
        if head:
            raise ValueError("only one block compressed elsewhere can start an exposition")
        head.append(rest.pop(0))
        crc, length = head[0].crc or 0, head[0].length
    segment = deflate_blocks(rest, level, crc)
    final = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS).flush(zlib.Z_FINISH)  # an empty last block
    total = length + segment.length
    trailer = struct.pack("<II", segment.crc & 0xFFFFFFFF, total & 0xFFFFFFFF)
    deflated = [block.deflated or b"" for block in head]
    return b"".join([_GZIP_HEADER, *deflated, segment.deflated, final, trailer]), total


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


# --- a collector's own metrics -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectorStats:
    """A copy of a collector's counters, taken on its event loop (they are not locked)."""

    shard: tuple[int, int]
    outcomes: Mapping[tuple[str, str], int]
    events: Mapping[tuple[str, str], int]
    latency: Mapping[str, LatencyHistogram]
    scheduler: SchedulerStats
    polled_devices: int
    blind: bool
    mqtt_connected: bool | None
    observations_applied: int
    observations_held: int
    observations_dropped: int
    transitions: int
    stalled: bool = False
    stalls: Mapping[str, int] = field(default_factory=dict)
    stalled_seconds: Mapping[str, float] = field(default_factory=dict)
    loop_lag_s: float = 0.0
    last_flush_at: float | None = None
    discounted: Mapping[str, int] = field(default_factory=dict)
    ingest_silent: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, collector: Collector) -> CollectorStats:
        """Copy what the collector counts (call on its event loop)."""
        stats = collector.scheduler.stats
        liveness = collector.liveness
        return cls(
            shard=collector.shard,
            outcomes=collector.counters.outcomes(),
            events=collector.counters.events(),
            latency={p: collector.counters.latency(p) for p in collector.counters.protocols()},
            scheduler=replace(stats, lateness_counts=list(stats.lateness_counts)),
            polled_devices=collector.scheduler.target_count,
            blind=collector.blind,
            mqtt_connected=None if collector.mqtt is None else collector.mqtt.connected.is_set(),
            observations_applied=collector.observations_applied,
            observations_held=collector.observations_held,
            observations_dropped=collector.observations_dropped,
            transitions=collector.transitions,
            stalled=liveness.stalled,
            stalls={
                **liveness.stall_count,
                **{f"ingest_{p}": w.gap_count for p, w in collector.ingest.items()},
            },
            stalled_seconds={
                **liveness.stalled_seconds,
                **{f"ingest_{p}": w.gap_seconds for p, w in collector.ingest.items()},
            },
            loop_lag_s=liveness.lag_s,
            last_flush_at=None if liveness.last_flush_at is None else liveness.last_flush_at.timestamp(),
            discounted={"stalled": 0, "blind": 0} | liveness.discounted,
            ingest_silent={p: w.silent for p, w in collector.ingest.items()} if collector.shard[0] == 0 else {},
        )


def collector_blocks(stats: CollectorStats) -> list[Block]:
    """The families of one collector's work."""
    outcomes = {(protocol, OK): 0 for protocol in POLL_PROTOCOLS} | dict(stats.outcomes)
    scheduler = stats.scheduler
    index, count = stats.shard
    blocks = [
        family_block(COLLECTOR_INFO, [(labels([("shard", str(index)), ("shards", str(count))]), 1)]),
        family_block(POLLS, [(labels([("protocol", p), ("outcome", o)]), n) for (p, o), n in sorted(outcomes.items())]),
        family_block(
            COLLECTOR_EVENTS,
            [(labels([("protocol", p), ("event", e)]), n) for (p, e), n in sorted(stats.events.items())],
        ),
        histogram_block(
            POLL_DURATION,
            [
                (labels([("protocol", protocol)]), cumulative(LATENCY_BUCKETS, h.counts), h.sum)
                for protocol, h in sorted(stats.latency.items())
            ],
        ),
        histogram_block(
            SCHEDULER_LATENESS, [("", cumulative(LATENESS_BUCKETS, scheduler.lateness_counts), scheduler.lateness_sum)]
        ),
        family_block(SCHEDULER_MISSED, [("", scheduler.missed)]),
        family_block(SCHEDULER_SKIPPED, [("", scheduler.skipped_still_running)]),
        family_block(POLLS_IN_FLIGHT, [("", scheduler.polls_in_flight)]),
        family_block(COLLECTOR_TARGETS, [("", stats.polled_devices)]),
        family_block(COLLECTOR_BLIND, [("", stats.blind)]),
        family_block(COLLECTOR_APPLIED, [("", stats.observations_applied)]),
        family_block(COLLECTOR_TRANSITIONS, [("", stats.transitions)]),
        family_block(COLLECTOR_HELD, [("", stats.observations_held)]),
        family_block(COLLECTOR_DROPPED, [("", stats.observations_dropped)]),
        family_block(COLLECTOR_STALLED, [("", stats.stalled)]),
        family_block(COLLECTOR_STALLS, [(labels([("cause", c)]), n) for c, n in sorted(stats.stalls.items())]),
        family_block(
            COLLECTOR_STALLED_SECONDS,
            [(labels([("cause", c)]), float(n)) for c, n in sorted(stats.stalled_seconds.items())],
        ),
        family_block(COLLECTOR_LOOP_LAG, [("", float(stats.loop_lag_s))]),
        family_block(COLLECTOR_DISCOUNTED, [(labels([("reason", r)]), n) for r, n in sorted(stats.discounted.items())]),
        family_block(
            COLLECTOR_INGEST_SILENT, [(labels([("protocol", p)]), v) for p, v in sorted(stats.ingest_silent.items())]
        ),
    ]
    if stats.last_flush_at is not None:
        blocks.append(family_block(COLLECTOR_LAST_FLUSH, [("", stats.last_flush_at)]))
    if stats.mqtt_connected is not None:
        blocks.append(family_block(COLLECTOR_MQTT, [("", stats.mqtt_connected)]))
    return blocks


class CollectorSource:
    """A collector's own work, copied on its event loop at each build."""

    name = "collector"

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def capture(self) -> Renderer:
        stats = CollectorStats.of(self.collector)
        return lambda: collector_blocks(stats)


def collector_exporter(collector: Collector, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> MetricsExporter:
    """What a collector process serves: its own work and the process metrics, never the fleet's state."""
    return MetricsExporter([CollectorSource(collector)], max_age_s=max_age_s)


__all__ = [
    "ALL_FAMILIES",
    "CONTENT_TYPE",
    "Block",
    "CollectorSource",
    "CollectorStats",
    "Exposition",
    "Family",
    "MetricsExporter",
    "MetricsSource",
    "Rendered",
    "Renderer",
    "ScrapeResponse",
    "Segment",
    "accepts_gzip",
    "collector_exporter",
    "cumulative",
    "deflate_blocks",
    "escape",
    "family_block",
    "gzip_member",
    "histogram_block",
    "labels",
    "process_registry",
]
