"""Metrics of the web process (fleet state, tickets) and of a collector: what is exported, in a format that
Prometheus' own `promtool check metrics` accepts, from real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import signal
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.config import Settings
from monitor.db import session_scope, utcnow
from monitor.health.machine import Observation
from monitor.health.models import DeviceHealthRow
from monitor.health.store import HealthStore
from monitor.inventory.models import Device
from monitor.metrics import (
    ALL_FAMILIES,
    Block,
    CollectorStats,
    DatabaseWorker,
    FleetStateSource,
    MetricsExporter,
    Rendered,
    Renderer,
    TicketMetricsSource,
    accepts_gzip,
    collector_blocks,
    deflate_blocks,
    gzip_member,
    web_exporter,
)
from monitor.tickets.models import Ticket

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def promtool_check(text: bytes) -> None:
    """`promtool check metrics` must accept the text without a single lint complaint."""
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: run scripts/ensure-debs (Debian package prometheus)")
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout.decode() + result.stderr.decode()
    )


def parse(text: bytes) -> Series:
    """Every sample by (name, labels); fails on a series that appears twice."""
    seen: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()
    series: Series = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            seen[key] += 1
            series[key] = sample.value
    duplicates = [key for key, n in seen.items() if n > 1]
    assert not duplicates, duplicates[:5]
    return series


def of(series: Series, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in series.items() if n == name and wanted <= key}


def build(exporter: MetricsExporter) -> bytes:
    exporter.max_age_s = 0.0
    return asyncio.run(exporter.exposition()).text()


def observe(engine: Engine, plan: dict[int, tuple[bool, frozenset[str]]], times: int, at: datetime = NOW) -> None:
    """Apply `times` rounds of observations: device id -> (reachable, faults)."""
    store = HealthStore(engine)
    for round_ in range(times):
        when = at + timedelta(seconds=round_)
        store.apply(
            [
                Observation(i, when, "http", ok, 0.01, {}, faults if ok else frozenset(), None if ok else "timeout")
                for i, (ok, faults) in plan.items()
            ],
            when,
        )


def device_ids(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {d.code: d.id for d in session.exec(select(Device).order_by(col(Device.id))) if d.id is not None}


# --- the demo fleet, read-only -------------------------------------------------------------------


@pytest.fixture(scope="module")
def judged_demo(demo_engine: Engine) -> dict[str, Any]:
    """The demo fleet with health: most devices up, some degraded, some down, one in maintenance, one never heard."""
    ids = device_ids(demo_engine)
    codes = sorted(ids)
    never_heard, maintenance = codes[0], codes[1]
    degraded = codes[2:40:4]
    down = codes[3:40:4]
    plan = {
        ids[c]: (c not in down, frozenset({"amplifier_fault", "low_signal"}) if c in degraded else frozenset())
        for c in codes
        if c != never_heard
    }
    observe(demo_engine, plan, times=3)
    with demo_engine.begin() as connection:
        connection.execute(
            sa.update(DeviceHealthRow.__table__)  # type: ignore[attr-defined]
            .where(sa.column("device_id") == ids[maintenance])
            .values(state="maintenance")
        )
    from monitor.alerts.notify.worker import DeliveryStats

    exporter = web_exporter(demo_engine, delivery_stats=DeliveryStats())  # all that the web process exports
    build(exporter)
    text = build(exporter)  # the second build also describes the first (fleet_exporter_*)
    return {
        "text": text,
        "series": parse(text),
        "ids": ids,
        "down": down,
        "degraded": degraded,
        "never_heard": never_heard,
        "maintenance": maintenance,
    }


def test_the_demo_fleets_exposition_passes_promtool_check_metrics(judged_demo: dict[str, Any]) -> None:
    promtool_check(judged_demo["text"])


def test_every_family_has_help_and_type_and_counters_end_in_total(judged_demo: dict[str, Any]) -> None:
    text = judged_demo["text"].decode()
    for family in ALL_FAMILIES:
        if family.name.startswith(("fleet_collector", "fleet_poll", "fleet_scheduler")):
            continue  # a collector's own families: see test_a_collectors_families_are_valid_histograms
        assert f"# TYPE {family.name} {family.type}\n" in text, family.name
        assert f"# HELP {family.name} " in text, family.name
        assert (family.type == "counter") == family.name.endswith("_total"), family.name


def test_per_device_series_follow_the_judged_state(judged_demo: dict[str, Any]) -> None:
    series, down, degraded = judged_demo["series"], judged_demo["down"], judged_demo["degraded"]
    up = {dict(k)["device"]: v for k, v in of(series, "fleet_device_up").items()}
    assert all(up[c] == 0 for c in down)
    assert all(up[c] == 1 for c in degraded)
    assert judged_demo["never_heard"] not in up, "an unknown device is not judged"
    assert judged_demo["maintenance"] not in up, "a device in maintenance is not judged"
    assert len(up) == len(judged_demo["ids"]) - 2
    assert of(series, "fleet_device_in_maintenance", device=judged_demo["maintenance"])
    faults = {(dict(k)["device"], dict(k)["fault"]) for k in of(series, "fleet_device_fault")}
    assert faults >= {(c, f) for c in degraded for f in ("amplifier_fault", "low_signal")}
    assert {c for c, f in faults if f == "offline"} == set(down)
    since = {dict(k)["device"]: v for k, v in of(series, "fleet_device_down_since_timestamp_seconds").items()}
    assert set(since) == set(down) and all(NOW.timestamp() <= v <= NOW.timestamp() + 5 for v in since.values())
    seen = of(series, "fleet_device_last_seen_timestamp_seconds", device=degraded[0])
    assert list(seen.values()) == [int((NOW + timedelta(seconds=2)).timestamp())]


def test_every_device_carries_its_place_and_coordinates(judged_demo: dict[str, Any], demo_engine: Engine) -> None:
    info = {dict(k)["device"]: dict(k) for k in of(judged_demo["series"], "fleet_device_info")}
    with Session(demo_engine) as session:
        devices = list(session.exec(select(Device)))
    assert set(info) == {d.code for d in devices}
    device = devices[5]
    labels = info[device.code]
    assert labels["kind"] == device.kind and labels["commune"] == device.commune_code
    assert labels["protocol"] == device.protocol and float(labels["lat"]) == pytest.approx(device.lat, abs=1e-5)


def test_aggregates_count_each_active_device_once_by_state(judged_demo: dict[str, Any]) -> None:
    series = judged_demo["series"]
    total = len(judged_demo["ids"])
    assert sum(of(series, "fleet_devices").values()) == total
    assert sum(of(series, "fleet_commune_devices").values()) == total
    assert sum(of(series, "fleet_devices", state="down").values()) == len(judged_demo["down"])
    assert sum(of(series, "fleet_devices", state="unknown").values()) == 1
    assert sum(of(series, "fleet_devices", state="maintenance").values()) == 1
    assert len({dict(k)["district"] for k in of(series, "fleet_devices")}) == 11


def test_the_plans_coverage_figures_come_from_the_broadcast_systems(judged_demo: dict[str, Any]) -> None:
    series = judged_demo["series"]
    assert sum(of(series, "fleet_communes").values()) == 200
    with_ip = sum(of(series, "fleet_communes_with_ip_radio_system").values())
    with_radio = sum(of(series, "fleet_communes_with_radio_system").values())
    assert 0 < with_ip <= with_radio <= 200
    assert sum(of(series, "fleet_broadcast_systems", technology="ip").values()) == 200  # one per commune (demo)
    assert len(of(series, "fleet_commune_info")) == 200


# --- changes of the inventory --------------------------------------------------------------------


@pytest.fixture
def small_fleet(engine: Engine) -> Engine:
    """A fresh database (each backend) with the demo fleet of two communes, all up."""
    from monitor.inventory.demo import generate_demo_rows
    from monitor.inventory.models import Commune
    from monitor.inventory.service import apply_fleet_rows
    from monitor.inventory.units import init_province, load_units

    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        communes = list(session.exec(select(Commune).where(col(Commune.code).in_(["06613", "06616"]))))
        apply_fleet_rows(generate_demo_rows(communes, seed=3, today=NOW.date()), session=session)
    observe(engine, {i: (True, frozenset()) for i in device_ids(engine).values()}, times=2)
    return engine


def test_a_removed_or_deactivated_device_leaves_no_series_behind(small_fleet: Engine) -> None:
    exporter = web_exporter(small_fleet)
    codes = sorted(device_ids(small_fleet))
    removed, deactivated = codes[0], codes[1]
    before = build(exporter).decode()
    assert f'device="{removed}"' in before and f'device="{deactivated}"' in before
    with session_scope(small_fleet) as session:
        gone = session.exec(select(Device).where(Device.code == removed)).one()
        session.delete(gone)
        idle = session.exec(select(Device).where(Device.code == deactivated)).one()
        idle.active = False
        idle.updated_at = utcnow()
    after = build(exporter)
    assert f'device="{removed}"'.encode() not in after
    assert f'device="{deactivated}"'.encode() not in after
    assert sum(of(parse(after), "fleet_devices").values()) == len(codes) - 2
    promtool_check(after)


def test_labels_are_rendered_once_until_the_inventory_changes(small_fleet: Engine) -> None:
    source = FleetStateSource(small_fleet)
    exporter = MetricsExporter([source])
    build(exporter)
    rendered_at, info = source.labels.rendered_at, source.labels.info
    observe(small_fleet, {i: (False, frozenset()) for i in device_ids(small_fleet).values()}, 1, NOW + timedelta(1))
    build(exporter)
    assert source.labels.rendered_at == rendered_at and source.labels.info is info, "health changes keep the labels"
    assert info.deflated is not None, "the unchanged info family is compressed once, then reused"
    code = sorted(device_ids(small_fleet))[0]
    with session_scope(small_fleet) as session:
        moved = session.exec(select(Device).where(Device.code == code)).one()
        moved.commune_code, moved.updated_at = "06616", utcnow()
    text = build(exporter).decode()
    assert source.labels.rendered_at > rendered_at
    assert f'fleet_device_up{{device="{code}",kind="{moved.kind}",commune="06616"' in text


def test_the_database_families_come_from_a_worker_process_that_recovers(small_fleet: Engine) -> None:
    exporter = web_exporter(small_fleet)
    (worker,) = exporter.sources
    assert isinstance(worker, DatabaseWorker), "rendered out of the web process, with its own GIL"
    try:
        assert b"fleet_device_up{" in build(exporter)
        assert worker._process is not None
        first_pid = worker._process.pid
        os.kill(first_pid, signal.SIGKILL)  # the worker dies between two scrapes
        worker._process.wait()
        assert b"fleet_device_up{" in build(exporter)
        assert worker._process is not None and worker._process.pid != first_pid, "started again"
        worker.timeout_s = 1e-6  # a worker that does not answer in time
        series = parse(build(exporter))
        assert of(series, "fleet_exporter_source_up", source="fleet") == {frozenset({("source", "fleet")}): 0}
        assert not of(series, "fleet_device_up") and of(series, "process_cpu_seconds_total")
        assert worker._process is None, "the late worker is stopped"
        worker.timeout_s = 60
        assert b"fleet_device_up{" in build(exporter)
    finally:
        worker.stop()


def test_a_database_that_is_away_is_reported_by_the_worker() -> None:
    worker = DatabaseWorker("postgresql+psycopg://nobody@127.0.0.1:9/nothing")
    try:
        series = parse(build(MetricsExporter([worker])))
    finally:
        worker.stop()
    up = {dict(k)["source"]: v for k, v in of(series, "fleet_exporter_source_up").items()}
    assert up == {"fleet": 0, "tickets": 0}


# --- tickets -------------------------------------------------------------------------------------


def ticket(number: int, **values: Any) -> dict[str, Any]:
    """A ticket row with every required column (the tickets service is not what is tested here); every row
    has the same keys, as an executemany insert takes its columns from the first row."""
    created = values.pop("created_at", NOW - timedelta(hours=2))
    row = {
        "code": f"LS-2026-{number:06d}",
        "title": "Mất kết nối",
        "problem_key": f"device:T{number}:offline",
        "scope": "device",
        "scope_code": f"T{number}",
        "kind": "offline",
        "district_code": "183",
        "priority": "P2",
        "source": "auto",
        "status": "new",
        "details": {},
        "created_at": created,
        "sla_started_at": created,
        "resolve_due_at": created + timedelta(hours=8),
        "sla_breached": False,
        "resolved_at": None,
        "updated_at": created,
    }
    return row | values


def test_ticket_metrics_count_open_breached_aged_and_recently_resolved_tickets(small_fleet: Engine) -> None:
    rows = [
        ticket(1),
        ticket(2, status="in_progress", sla_breached=True, created_at=NOW - timedelta(days=2)),
        ticket(3, status="waiting", priority="P1", created_at=NOW - timedelta(days=9), district_code="189"),
        ticket(4, status="resolved", resolved_at=NOW - timedelta(days=1), created_at=NOW - timedelta(days=1, hours=4)),
        ticket(
            5,
            status="closed",
            sla_breached=True,
            resolved_at=NOW - timedelta(days=2),
            created_at=NOW - timedelta(days=4),
        ),
        ticket(6, status="closed", resolved_at=NOW - timedelta(days=45), created_at=NOW - timedelta(days=46)),
    ]
    with small_fleet.begin() as connection:
        connection.execute(Ticket.__table__.insert(), rows)  # type: ignore[attr-defined]
    text = build(MetricsExporter([TicketMetricsSource(small_fleet, clock=lambda: NOW)]))
    promtool_check(text)
    series = parse(text)
    assert sum(of(series, "fleet_tickets_open").values()) == 3
    assert of(series, "fleet_tickets_open", district="183", priority="P2", status="in_progress")
    assert sum(of(series, "fleet_tickets_sla_breached").values()) == 1
    ages = {dict(k)["age"]: v for k, v in of(series, "fleet_tickets_open_by_age").items() if v}
    assert ages == {"0-1d": 1, "1-3d": 1, "7d+": 1}
    resolved = {dict(k)["sla"]: v for k, v in of(series, "fleet_tickets_resolved_30d", district="183").items() if v}
    assert resolved == {"met": 1, "breached": 1}, "the ticket resolved 45 days ago is outside the window"
    assert of(series, "fleet_tickets_resolution_30d_seconds", district="183") == {
        frozenset({("district", "183")}): 4 * 3600 + 2 * 86400
    }
    p90 = of(series, "fleet_tickets_time_to_resolve_30d_seconds", district="183", stat="p90")
    assert list(p90.values()) == [2 * 86400]
    # every district and the province (its own tickets), priority and open status, zeros too
    assert len(of(series, "fleet_tickets_open")) == (11 + 1) * 4 * 6


def test_a_province_ticket_is_counted_under_district_province_never_under_a_district(small_fleet: Engine) -> None:
    province = {"scope": "province", "scope_code": "collectors", "kind": "collector", "district_code": None}
    rows = [
        ticket(1),
        ticket(2, priority="P1", problem_key="province:collectors:collector", **province),
        ticket(3, status="resolved", resolved_at=NOW - timedelta(hours=1), problem_key="province:x:y", **province),
    ]
    with small_fleet.begin() as connection:
        connection.execute(Ticket.__table__.insert(), rows)  # type: ignore[attr-defined]
    text = build(MetricsExporter([TicketMetricsSource(small_fleet, clock=lambda: NOW)]))
    promtool_check(text)
    series = parse(text)
    assert sum(of(series, "fleet_tickets_open").values()) == 2
    assert of(series, "fleet_tickets_open", district="province", priority="P1", status="new") == {
        frozenset({("district", "province"), ("priority", "P1"), ("status", "new")}): 1
    }
    assert sum(of(series, "fleet_tickets_open", district="183").values()) == 1
    assert sum(of(series, "fleet_tickets_resolved_30d", district="province").values()) == 1
    assert of(series, "fleet_tickets_resolution_30d_seconds", district="province") == {
        frozenset({("district", "province")}): 3600.0
    }


# --- the snapshot --------------------------------------------------------------------------------


class CountingSource:
    """A source that counts its builds and can be made to fail like a database that is away."""

    name = "counting"

    def __init__(self) -> None:
        self.builds = 0
        self.fail = False

    def capture(self) -> Renderer:
        def render() -> Sequence[Block]:
            self.builds += 1
            if self.fail:
                raise sa.exc.OperationalError("SELECT 1", {}, Exception("database is away"))
            return [Block(b"# HELP x_things Things.\n# TYPE x_things gauge\nx_things 1\n", 1)]

        return render


def test_concurrent_scrapes_share_one_build_within_max_age() -> None:
    source = CountingSource()
    exporter = MetricsExporter([source], max_age_s=60.0)

    async def scrapes() -> None:
        await asyncio.gather(*(exporter.exposition() for _ in range(10)))

    asyncio.run(scrapes())
    asyncio.run(exporter.respond("gzip"))
    assert source.builds == 1, "ten concurrent scrapes and a later one within max_age: one build"
    exporter.max_age_s = 0.0
    asyncio.run(scrapes())
    assert source.builds == 2, "once stale, concurrent scrapes still share one build"


def test_steady_scrapes_find_a_snapshot_built_just_before_they_came() -> None:
    class SlowSource(CountingSource):
        def capture(self) -> Renderer:
            render = super().capture()

            def slow() -> Sequence[Block] | Rendered:
                time.sleep(0.2)
                return render()

            return slow

    source = SlowSource()
    exporter = MetricsExporter([source], max_age_s=0.3)
    exporter.PREFETCH_MARGIN_S = 0.1

    async def scrape_every(interval_s: float, times: int) -> list[float]:
        waits = []
        for _ in range(times):
            started = time.monotonic()
            await exporter.exposition()
            waits.append(time.monotonic() - started)
            if len(waits) < times:
                await asyncio.sleep(interval_s - waits[-1])
        return waits

    waits = asyncio.run(scrape_every(0.8, 5))
    assert all(wait >= 0.2 for wait in waits[:3]), "the first scrapes wait for their build"
    assert all(wait < 0.1 for wait in waits[3:]), f"then the build is ready before the scrape: {waits}"
    assert source.builds == 5, "and there is still one build per scrape"


def test_a_warmed_exporter_answers_its_first_scrape_from_the_snapshot_built_at_start() -> None:
    source = CountingSource()
    exporter = MetricsExporter([source], max_age_s=60.0)

    async def start_then_scrape() -> None:
        exporter.warm()
        exporter.warm()  # a second call while the first build runs starts nothing
        await asyncio.sleep(0.2)
        assert source.builds == 1, "the build ran before anyone scraped"
        await exporter.exposition()

    asyncio.run(start_then_scrape())
    assert source.builds == 1, "the first scrape was served from it"


def test_a_failing_source_is_left_out_and_reported_while_the_rest_still_serves() -> None:
    source = CountingSource()
    source.fail = True
    text = build(MetricsExporter([source]))
    series = parse(text)
    assert of(series, "fleet_exporter_source_up", source="counting") == {frozenset({("source", "counting")}): 0}
    assert not of(series, "x_things") and of(series, "process_cpu_seconds_total")


def test_the_gzip_copy_is_one_member_that_any_client_decodes() -> None:
    blocks = [Block(b"a" * 1000, 0), Block(b"reused " * 500, 0, reused=True), Block(b"tail\n", 0)]
    body = b"".join(b.text for b in blocks)
    first, length = gzip_member(blocks)
    assert length == len(body) and gzip.decompress(first) == body
    single = zlib.decompressobj(wbits=31)
    assert single.decompress(first) == body and single.eof and not single.unused_data, "one gzip member"
    cached = blocks[1].deflated
    assert cached is not None and gzip.decompress(gzip_member(blocks)[0]) == body
    assert blocks[1].deflated is cached


def test_text_compressed_in_pieces_side_by_side_is_the_same_text() -> None:
    from concurrent.futures import ThreadPoolExecutor

    blocks = [Block(bytes(range(256)) * 20_000, 2), Block(b"reused\n" * 1000, 1, reused=True), Block(b"x" * 3, 0)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        segment = deflate_blocks(blocks, pool=pool, pieces_per_segment=3)
    spliced, length = gzip_member([Block.compressed(segment.deflated, segment.crc, segment.length, 3)])
    assert gzip.decompress(spliced) == b"".join(b.text for b in blocks) and length == segment.length


def test_a_block_compressed_elsewhere_is_spliced_in_front_unchanged() -> None:
    elsewhere = [Block(b"# worker text\n" * 300, 3), Block(b"more\n", 1, reused=True)]
    segment = deflate_blocks(elsewhere)
    spliced = Block.compressed(segment.deflated, segment.crc, segment.length, 4)
    local = [Block(b"local text\n", 1)]
    gzipped, length = gzip_member([spliced, *local])
    text = b"".join(b.text for b in elsewhere + local)
    assert gzip.decompress(gzipped) == text and length == len(text)
    with pytest.raises(ValueError, match="start an exposition"):
        gzip_member([*local, spliced])


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("gzip;q=0", False), ("identity", False), ("", False), ("*", True)],
)
def test_gzip_only_when_the_client_accepts_it(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


def test_the_web_app_serves_metrics_gzip_encoded_when_asked(sqlite_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from monitor.db import make_engine
    from monitor.web.app import create_app

    engine = make_engine(sqlite_settings)
    app = create_app(sqlite_settings, engine)
    with TestClient(app) as client:
        plain = client.get("/metrics", headers={"Accept-Encoding": "identity"})
        packed = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    app.state.metrics.close()
    assert plain.status_code == 200 and plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip" and packed.content == plain.content  # httpx decoded it
    assert b"# TYPE fleet_devices gauge" in plain.content
    engine.dispose()


def test_with_a_metrics_token_the_web_app_answers_only_its_bearer(sqlite_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from monitor.db import make_engine
    from monitor.web.app import create_app

    settings = sqlite_settings.model_copy(update={"metrics_token": SecretStr("web-metrics-token-123")})
    engine = make_engine(settings)
    with TestClient(create_app(settings, engine)) as client:
        refused = [client.get("/metrics"), client.get("/metrics", headers={"Authorization": "Bearer nope"})]
        allowed = client.get("/metrics", headers={"Authorization": "Bearer web-metrics-token-123"})
    engine.dispose()
    assert [r.status_code for r in refused] == [401, 401]
    assert all("fleet_devices" not in r.text for r in refused)
    assert allowed.status_code == 200 and "# TYPE fleet_devices gauge" in allowed.text


def test_notification_families_count_every_channel_from_zero(small_fleet: Engine) -> None:
    from monitor.alerts.notify.worker import DeliveryStats
    from monitor.metrics import NotificationSource

    stats = DeliveryStats()
    stats.record("telegram", "failed", messages=1, deliveries=3)
    text = build(MetricsExporter([NotificationSource(stats, small_fleet)]))
    promtool_check(text)
    series = parse(text)
    failed = {
        dict(k)["channel"]: v for k, v in of(series, "fleet_notification_deliveries_total", outcome="failed").items()
    }
    assert failed == {"email": 0, "telegram": 3, "webhook": 0, "zalo": 0}
    assert of(series, "fleet_notification_messages_total", channel="telegram", outcome="failed")
    assert sum(of(series, "fleet_notification_deliveries").values()) == 0, "no delivery in the table yet"


# --- a collector's own metrics -------------------------------------------------------------------


@pytest.fixture
def collector(sqlite_settings: Settings) -> Iterator[Collector]:
    from monitor.db import make_engine

    engine = make_engine(sqlite_settings)
    yield Collector(sqlite_settings, engine, registry=load_profiles(), shard=(1, 3))
    engine.dispose()


def test_a_collectors_families_are_valid_histograms_and_counters(collector: Collector) -> None:
    for latency in (0.004, 0.03, 0.03, 20.0):
        collector.counters.record("http", "ok", latency)
    collector.counters.record("snmp", "timeout")
    collector.counters.event("mqtt", "unknown_topic", 3)
    collector.scheduler.stats.observe_lateness(0.002)
    collector.scheduler.stats.observe_lateness(30.0)
    collector.scheduler.stats.missed = 2
    collector.guard.blind = True
    text = b"".join(block.text for block in collector_blocks(CollectorStats.of(collector)))
    promtool_check(text)
    series = parse(text)
    buckets = {dict(k)["le"]: v for k, v in of(series, "fleet_poll_duration_seconds_bucket", protocol="http").items()}
    assert buckets["0.005"] == 1 and buckets["0.05"] == 3 and buckets["10.0"] == 3 and buckets["+Inf"] == 4
    assert of(series, "fleet_poll_duration_seconds_count", protocol="http") == {frozenset({("protocol", "http")}): 4}
    lateness = {dict(k)["le"]: v for k, v in of(series, "fleet_scheduler_lateness_seconds_bucket").items()}
    assert lateness["0.005"] == 1 and lateness["10.0"] == 1 and lateness["+Inf"] == 2
    assert of(series, "fleet_polls_total", protocol="snmp", outcome="timeout")
    assert of(series, "fleet_polls_total", protocol="mqtt", outcome="ok"), "ok counters exist from the start"
    assert list(of(series, "fleet_collector_blind").values()) == [1]
    assert list(of(series, "fleet_scheduler_missed_runs_total").values()) == [2]
    assert of(series, "fleet_collector_info", shard="1", shards="3")
