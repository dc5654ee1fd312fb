"""A collector process's own metrics: its polls, latency, lateness, liveness and blindness, from memory.

Each collector exports only its own work, on its own small server (`monitor.metrics.server`), never the
fleet's state (the web process's), so that Prometheus never counts a device twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from monitor.collectors.scheduler import LATENESS_BUCKETS, SchedulerStats
from monitor.collectors.stats import LATENCY_BUCKETS, OK, LatencyHistogram
from monitor.metrics.exporter import DEFAULT_MAX_AGE_S, MetricsExporter, Renderer
from monitor.metrics.exposition import Block, cumulative, family_block, histogram_block, labels
from monitor.metrics.names import (
    COLLECTOR_APPLIED,
    COLLECTOR_BLIND,
    COLLECTOR_DISCOUNTED,
    COLLECTOR_DROPPED,
    COLLECTOR_EVENTS,
    COLLECTOR_FENCED,
    COLLECTOR_HELD,
    COLLECTOR_INFO,
    COLLECTOR_INGEST_SILENT,
    COLLECTOR_LAST_FLUSH,
    COLLECTOR_LEASE_FAILURES,
    COLLECTOR_LOOP_LAG,
    COLLECTOR_MQTT,
    COLLECTOR_SHARDS_CLAIMED,
    COLLECTOR_SHARDS_HELD,
    COLLECTOR_SHARDS_LOST,
    COLLECTOR_STALLED,
    COLLECTOR_STALLED_SECONDS,
    COLLECTOR_STALLS,
    COLLECTOR_TARGETS,
    COLLECTOR_TRANSITIONS,
    POLL_DURATION,
    POLLS,
    POLLS_IN_FLIGHT,
    SCHEDULER_LATENESS,
    SCHEDULER_MISSED,
    SCHEDULER_SKIPPED,
)

if TYPE_CHECKING:
    from monitor.collectors.runner import Collector

POLL_PROTOCOLS = ("http", "snmp", "mqtt", "heartbeat")


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A collector's place in the pool of leased shards."""

    name: str
    shard_count: int
    held: int
    claimed: int
    lost: int
    rounds_failed: int
    fenced: int


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
    pool: PoolStats | None = None

    @classmethod
    def of(cls, collector: Collector) -> CollectorStats:
        """Copy what the collector counts (call on its event loop)."""
        stats = collector.scheduler.stats
        liveness = collector.liveness
        mqtt = collector.mqtt
        # The MQTT listener's outages (the broker lost or unreachable) are excused like stalls, for MQTT devices.
        broker_outages = {} if mqtt is None else {"mqtt_broker": mqtt.outages}
        broker_seconds = {} if mqtt is None else {"mqtt_broker": mqtt.outage_seconds}
        return cls(
            shard=collector.shard,
            outcomes=collector.counters.outcomes(),
            events=collector.counters.events(),
            latency={p: collector.counters.latency(p) for p in collector.counters.protocols()},
            scheduler=replace(stats, lateness_counts=list(stats.lateness_counts)),
            polled_devices=collector.scheduler.target_count,
            blind=collector.blind,
            mqtt_connected=None if mqtt is None else mqtt.connected.is_set(),
            observations_applied=collector.observations_applied,
            observations_held=collector.observations_held,
            observations_dropped=collector.observations_dropped,
            transitions=collector.transitions,
            stalled=liveness.stalled,
            stalls={
                **liveness.stall_count,
                **{f"ingest_{p}": w.gap_count for p, w in collector.ingest.items()},
                **broker_outages,
            },
            stalled_seconds={
                **liveness.stalled_seconds,
                **{f"ingest_{p}": w.gap_seconds for p, w in collector.ingest.items()},
                **broker_seconds,
            },
            loop_lag_s=liveness.lag_s,
            last_flush_at=None if liveness.last_flush_at is None else liveness.last_flush_at.timestamp(),
            discounted={"stalled": 0, "blind": 0, "config": 0} | liveness.discounted,
            ingest_silent={p: w.silent for p, w in collector.ingest.items()} if collector.hears_push else {},
            pool=None
            if collector.pool is None
            else PoolStats(
                collector.pool.leases.name,
                collector.pool.leases.shard_count,
                len(collector.pool.leases.held.epochs),
                collector.pool.shards_claimed,
                collector.pool.shards_lost,
                collector.pool.rounds_failed,
                collector.store.fenced,
            ),
        )


def collector_blocks(stats: CollectorStats) -> list[Block]:
    """The families of one collector's work."""
    outcomes = {(protocol, OK): 0 for protocol in POLL_PROTOCOLS} | dict(stats.outcomes)
    scheduler = stats.scheduler
    index, count = stats.shard
    info = [("shard", str(index)), ("shards", str(count))]
    if stats.pool is not None:
        info = [("name", stats.pool.name), ("shard", "pool"), ("shards", str(stats.pool.shard_count))]
    blocks = [
        family_block(COLLECTOR_INFO, [(labels(info), 1)]),
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
    if stats.pool is not None:
        blocks += [
            family_block(COLLECTOR_SHARDS_HELD, [("", stats.pool.held)]),
            family_block(COLLECTOR_SHARDS_CLAIMED, [("", stats.pool.claimed)]),
            family_block(COLLECTOR_SHARDS_LOST, [("", stats.pool.lost)]),
            family_block(COLLECTOR_LEASE_FAILURES, [("", stats.pool.rounds_failed)]),
            family_block(COLLECTOR_FENCED, [("", stats.pool.fenced)]),
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


__all__ = ["CollectorSource", "CollectorStats", "collector_blocks", "collector_exporter"]
