"""The metric families every process may export: name, Prometheus type and help text, in one place.

Text format 0.0.4: every family has HELP and TYPE, counters end in `_total`, units are base units in the
name, no series appears twice; `promtool check metrics` passes (tests/test_metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass


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
COLLECTOR_POOL_SHARDS = _gauge(
    "fleet_collector_pool_shards",
    "Shards of the collectors' pool by state: held (a current lease) or unheld (their devices go unknown).",
)
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
    "collector; blind: every poll failing; config: the collector's own failure, e.g. a secret it cannot open).",
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
COLLECTOR_INFO = _gauge(
    "fleet_collector_info",
    'Always 1: the collector\'s shard (index and count; shard="pool" in the pool, with its name).',
)
COLLECTOR_SHARDS_HELD = _gauge(
    "fleet_collector_shards_held", "Shards of the collectors' pool this collector holds now."
)
COLLECTOR_SHARDS_CLAIMED = _counter(
    "fleet_collector_shards_claimed_total", "Shards this collector claimed (free, lapsed or given back by another)."
)
COLLECTOR_SHARDS_LOST = _counter(
    "fleet_collector_shards_lost_total", "Shards this collector lost: taken by another after its lease lapsed."
)
COLLECTOR_LEASE_FAILURES = _counter(
    "fleet_collector_lease_rounds_failed_total",
    "Lease rounds that failed (the database away): the collector then dropped every shard at once.",
)
COLLECTOR_FENCED = _counter(
    "fleet_collector_observations_fenced_total",
    "Observations refused at saving: their shard had moved to another collector (a stale epoch).",
)
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


__all__ = ["ALL_FAMILIES", "Family"]
