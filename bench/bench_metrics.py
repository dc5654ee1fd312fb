"""Benchmark of `/metrics` at fleet scale, beside prometheus-client's labelled gauges, and its cost to the API.

    .venv/bin/python bench/bench_metrics.py [--devices 10000,100000] [--api-devices 100000] [--json FILE]

For each fleet size (SQLite; Lạng Sơn's 200 communes, devices spread over them; 95 % judged, 5 % never heard):

1. **Build**: the web process's exporter (`monitor.metrics.web_exporter`), here in the bench's own process
   (in the service its database part runs in a child process): cold (labels rendered) and warm (labels
   cached); text and gzip sizes; the memory it keeps (tracemalloc).
2. **prometheus-client's way**, same run, same devices: three labelled `Gauge`s (up, last seen, info) set for
   every device, then `generate_latest` (the issue measured 5.2 s for 100,000 devices).
3. **Served**: the web app under uvicorn in its own process, `GET /metrics` with `Accept-Encoding: gzip`:
   scrapes at irregular intervals, each finding the snapshot older than 5 s (they wait for a rebuild);
   scrapes at a steady interval (the exporter builds just before they are due); scrapes finding it fresh.
   Then Debian's Prometheus scrapes it every 10 s (10 s timeout) and reports its `scrape_duration_seconds`.
   Target: a 100,000-device scrape served in <= 0.5 s.
4. **The API while scraped** (at `--api-devices`): `GET /api/v1/devices?limit=50&after=<random code>` as the
   admin, `--rate` requests a second from `--clients` connections (paced: about half of what one worker
   serves at 100,000 devices), `--rounds` rounds of `--api-seconds` without, then with, a scraper process
   fetching `/metrics` in a loop (`--scrape-pause` between scrapes: with 1 s, a rebuild every 5 s, six times
   what a Prometheus scraping every 30 s causes). Target: p99 with the scraper within 10 % of p99 without.

Prints a Markdown table; `--json FILE` keeps the figures. The machine's other load shows in the API
figures: run it on a quiet machine, and compare the rounds, which alternate.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from _summary import Figure, write_json  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import select  # noqa: E402

from monitor.config import load_settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade, utcnow  # noqa: E402
from monitor.health.machine import DeviceHealth  # noqa: E402
from monitor.health.models import DeviceHealthRow  # noqa: E402
from monitor.inventory.models import Commune, Device  # noqa: E402
from monitor.inventory.units import init_province, load_units  # noqa: E402
from tests.peers import free_port, stop_process  # noqa: E402

SECRET = "bench-secret-key-not-a-placeholder"
KINDS = ["radio_cluster"] * 8 + ["bulletin_board", "station_controller"]
PROTOCOLS = ["mqtt", "mqtt", "http", "snmp", "heartbeat"]
FAULTS = ["amplifier_fault", "low_signal", "speaker_line_fault", "screen_off", "content_stale"]
# Targets: a 100,000-device scrape served in <= 0.5 s; the API's p99 while scraped within 10 % of quiet.
TARGET_SERVED_S, TARGET_FLEET, TARGET_API_CHANGE = 0.5, 100_000, 0.10


# --- the fleet -----------------------------------------------------------------------------------


def build_database(path: Path, devices: int, seed: int = 1) -> Engine:
    """A migrated SQLite database with Lạng Sơn's units, `devices` devices and their health, and the demo users."""
    from monitor.auth.cast import seed_cast

    engine = make_engine(load_settings(database_url=f"sqlite:///{path}", secret_key=SECRET, data_dir=path.parent))
    upgrade(engine)
    rng = random.Random(seed)
    now = utcnow()
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
        seed_cast(session=session)
        communes = [(c.code, c.lat or 21.8, c.lon or 106.7) for c in session.exec(select(Commune))]
    device_rows = []
    for index in range(devices):
        commune, lat, lon = communes[index % len(communes)]
        protocol = rng.choice(PROTOCOLS)
        code = f"{commune}-D{index:06d}"
        device_rows.append(
            {
                "id": index + 1,
                "code": code,
                "name": f"Thiết bị {index}",
                "kind": rng.choice(KINDS),
                "commune_code": commune,
                "profile": "vietloa-ip200-http",
                "protocol": protocol,
                "address": f"http://127.2.{index // 250 % 250}.{index % 250 + 1}/status",
                "interval_s": 60,
                "lat": round(lat + rng.uniform(-0.05, 0.05), 5),
                "lon": round(lon + rng.uniform(-0.05, 0.05), 5),
                "active": True,
                "vendor": "",
                "model": "",
                "search_text": code.lower(),
                "created_at": now,
                "updated_at": now,
            }
        )
    health_rows = []
    initial = DeviceHealth.initial(since=now).to_dict()
    for row in device_rows:
        roll = rng.random()
        if roll < 0.05:
            continue  # never heard: unknown, no row
        state = "up" if roll < 0.88 else "degraded" if roll < 0.93 else "down" if roll < 0.985 else "maintenance"
        faults = [rng.choice(FAULTS)] if state == "degraded" else ["offline"] if state == "down" else []
        seen = now - timedelta(seconds=rng.uniform(0, 3600 if state == "down" else 60))
        health_rows.append(
            {
                "device_id": row["id"],
                "state": state,
                "since": now - timedelta(hours=rng.uniform(0, 48)),
                "faults": faults,
                "flapping": rng.random() < 0.002,
                "last_seen": seen,
                "last_observation_at": now,
                "last_error": None,
                "latency_s": 0.02,
                "readings": {},
                "silence_deadline": None,
                "data": initial,
                "updated_at": now,
            }
        )
    with engine.begin() as connection:
        for start in range(0, len(device_rows), 5000):
            connection.execute(Device.__table__.insert(), device_rows[start : start + 5000])  # type: ignore[attr-defined]
        for start in range(0, len(health_rows), 5000):
            connection.execute(DeviceHealthRow.__table__.insert(), health_rows[start : start + 5000])  # type: ignore[attr-defined]
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return engine


# --- building in-process -------------------------------------------------------------------------


def measure_build(engine: Engine) -> dict[str, Any]:
    """Cold and warm builds of the web exporter, sizes, series and the memory it keeps."""
    from monitor.metrics import web_exporter

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    exporter = web_exporter(engine, max_age_s=0.0, isolate=False)  # in this process, to measure it
    cold = asyncio.run(exporter.exposition())
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    warm = []
    for _ in range(5):
        warm.append(asyncio.run(exporter.exposition()).build_seconds)
    return {
        "cold_build_s": cold.build_seconds,
        "warm_build_s": statistics.median(warm),
        "warm_build_max_s": max(warm),
        "text_mb": cold.length / 1e6,
        "gzip_mb": len(cold.gzipped) / 1e6,
        "series": cold.series,
        "memory_mb": kept / 1e6,
    }


def measure_prometheus_client(engine: Engine) -> dict[str, Any]:
    """prometheus-client's labelled gauges for the same devices (up, last seen, info): set, then render."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT d.code, d.kind, d.commune_code, c.district_code, d.protocol, d.lat, d.lon, h.state, "
                "(julianday(h.last_seen) - 2440587.5) * 86400.0 FROM devices d JOIN communes c "
                "ON c.code = d.commune_code LEFT JOIN device_health h ON h.device_id = d.id"
            )
        ).all()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    registry = CollectorRegistry(auto_describe=False)
    names = ["device", "kind", "commune", "district"]
    up = Gauge("fleet_device_up", "up", names, registry=registry)
    seen = Gauge("fleet_device_last_seen_timestamp_seconds", "seen", names, registry=registry)
    info = Gauge("fleet_device_info", "info", [*names, "protocol", "lat", "lon"], registry=registry)
    started = time.perf_counter()
    for code, kind, commune, district, protocol, lat, lon, state, last_seen in rows:
        if state in ("up", "degraded", "down"):
            up.labels(code, kind, commune, district).set(0 if state == "down" else 1)
        if last_seen is not None:
            seen.labels(code, kind, commune, district).set(last_seen)
        info.labels(code, kind, commune, district, protocol, str(lat), str(lon)).set(1)
    set_s = time.perf_counter() - started
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    started = time.perf_counter()
    text = generate_latest(registry)
    render_s = time.perf_counter() - started
    return {"set_s": set_s, "render_s": render_s, "text_mb": len(text) / 1e6, "memory_mb": kept / 1e6}


# --- served over HTTP ------------------------------------------------------------------------------

SERVER = """
import sys, uvicorn
from monitor.config import load_settings
from monitor.db import make_engine
from monitor.web.app import create_app
settings = load_settings(database_url=sys.argv[1], secret_key=sys.argv[2], data_dir=sys.argv[3])
uvicorn.run(create_app(settings, make_engine(settings)), host="127.0.0.1", port=int(sys.argv[4]),
            log_level="warning", access_log=False)
"""


@contextmanager
def web_server(engine: Engine, folder: Path) -> Iterator[str]:
    """The web app under uvicorn, in its own process, on a free loopback port; stopped by its pid."""
    port = free_port()
    url = engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, SECRET, str(folder), str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the web app exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the web app did not answer within 60 s")
        yield base
    finally:
        stop_process(process, grace_s=10)


def fetch_metrics(base: str) -> tuple[float, int]:
    """Seconds to get the whole gzip body of /metrics, and its size."""
    request = urllib.request.Request(f"{base}/metrics", headers={"Accept-Encoding": "gzip"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def measure_served(base: str, max_age_s: float) -> dict[str, Any]:
    """Scrapes that must wait for a rebuild (irregular ones, the snapshot older than max_age_s), scrapes at a
    steady interval (the exporter builds just before they come), and scrapes that find the snapshot fresh."""
    rebuild = []
    fresh = []
    fetch_metrics(base)  # labels rendered once
    for gap in (1.5, 3.5, 1.5, 3.5, 1.5):  # never two equal intervals in a row: no prefetch
        time.sleep(max_age_s + gap)
        rebuild.append(fetch_metrics(base)[0])
        fresh.append(fetch_metrics(base)[0])
    steady: list[float] = []
    for _ in range(6):
        time.sleep(max_age_s + 1.0 - (steady[-1] if steady else 0.0))
        steady.append(fetch_metrics(base)[0])
    return {
        "rebuild_s": statistics.median(rebuild),
        "rebuild_max_s": max(rebuild),
        "steady_s": statistics.median(steady[3:]),
        "steady_max_s": max(steady[3:]),
        "fresh_s": statistics.median(fresh),
    }


def measure_with_prometheus(base: str, folder: Path, seconds: float) -> dict[str, Any]:
    """Debian's Prometheus scraping /metrics every 10 s with a 10 s timeout: its own scrape durations."""
    if shutil.which("prometheus") is None:
        return {"error": "prometheus is not installed: run scripts/ensure-debs"}
    port = free_port()
    config = folder / "prometheus.yml"
    target = base.removeprefix("http://")
    config.write_text(
        "global: {scrape_interval: 10s, scrape_timeout: 10s}\n"
        f"scrape_configs: [{{job_name: fleet-web, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                return {"error": f"prometheus did not start: {(folder / 'prometheus.log').read_text()[-2000:]}"}
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(seconds)
        results: dict[str, Any] = {}
        for name, expr in (
            ("max_s", "max_over_time(scrape_duration_seconds[10m])"),
            ("avg_s", "avg_over_time(scrape_duration_seconds[10m])"),
            ("scrapes", "count_over_time(up[10m])"),
            ("failed", "count_over_time(up[10m]) - sum_over_time(up[10m])"),
            ("samples", "scrape_samples_scraped"),
            ("durations_s", "scrape_duration_seconds[10m]"),
        ):
            url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
            data = json.loads(urllib.request.urlopen(url, timeout=10).read())
            result = data["data"]["result"]
            if name == "durations_s":
                results[name] = [round(float(v), 3) for _t, v in result[0]["values"]] if result else []
            else:
                results[name] = float(result[0]["value"][1]) if result else None
        return results
    finally:
        stop_process(process, grace_s=20)
        log.close()


# --- the API while scraped ---------------------------------------------------------------------------

LOAD = r"""
import asyncio, json, random, sys, time
import httpx
base, token = sys.argv[1], sys.argv[2]
rate, seconds, clients, codes = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
async def main():
    latencies = []
    headers = {"Authorization": f"Bearer {token}"}
    interval = clients / rate
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as client:
        deadline = time.monotonic() + seconds
        async def worker(offset):
            await asyncio.sleep(offset)
            due = time.monotonic()
            while due < deadline:
                started = time.perf_counter()
                r = await client.get("/api/v1/devices", params={"limit": 50, "after": random.choice(codes)})
                latencies.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
                due += interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*(worker(i * interval / clients) for i in range(clients)))
    print(json.dumps(latencies))
asyncio.run(main())
"""

SCRAPER = r"""
import sys, time, urllib.request
base, seconds, pause = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
n = 0
while time.monotonic() < deadline:
    request = urllib.request.Request(base + "/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    n += 1
    time.sleep(pause)
print(n)
"""


def api_token(base: str) -> str:
    from monitor.auth.cast import DEMO_PASSWORD

    request = urllib.request.Request(
        f"{base}/api/v1/auth/login",
        data=json.dumps({"username": "admin", "password": DEMO_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    token: str = json.loads(urllib.request.urlopen(request, timeout=10).read())["token"]
    return token


def run_load(
    base: str, token: str, args: argparse.Namespace, seconds: float, codes: list[str], scrape: bool
) -> dict[str, Any]:
    """One round of API load, with or without a scraper process fetching /metrics in a loop."""
    rate, clients = args.rate, args.clients
    scraper = None
    if scrape:
        scraper = subprocess.Popen(
            [sys.executable, "-c", SCRAPER, base, str(seconds + 2), str(args.scrape_pause)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
    load = subprocess.run(
        [sys.executable, "-c", LOAD, base, token, str(rate), str(seconds), str(clients), json.dumps(codes)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    scrapes = None
    if scraper is not None:
        out, _ = scraper.communicate(timeout=seconds + 60)
        scrapes = int(out.strip() or 0)
    latencies = sorted(json.loads(load.stdout))
    return {
        "requests": len(latencies),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "scrapes": scrapes,
    }


def measure_api(base: str, engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    token = api_token(base)
    with engine.connect() as connection:
        codes = list(connection.execute(sa.text("SELECT code FROM devices ORDER BY random() LIMIT 500")).scalars())
    run_load(base, token, args, 3, codes, scrape=False)  # warm-up
    rounds = []
    for _ in range(args.rounds):
        for scrape in (False, True):
            rounds.append((scrape, run_load(base, token, args, args.api_seconds, codes, scrape)))
    quiet = [r for s, r in rounds if not s]
    busy = [r for s, r in rounds if s]
    return {
        "rounds": [{"scraping": s, **r} for s, r in rounds],
        "p99_quiet_ms": statistics.mean(r["p99_ms"] for r in quiet),
        "p99_scraped_ms": statistics.mean(r["p99_ms"] for r in busy),
        "p50_quiet_ms": statistics.mean(r["p50_ms"] for r in quiet),
        "p50_scraped_ms": statistics.mean(r["p50_ms"] for r in busy),
    }


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="10000,100000", help="fleet sizes, comma-separated")
    parser.add_argument("--api-devices", type=int, default=100_000, help="fleet size of the API test (0: skip it)")
    parser.add_argument("--api-seconds", type=float, default=30.0, help="length of one round of API load")
    parser.add_argument("--rounds", type=int, default=2, help="rounds without and with the scraper, alternating")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="API requests per second (one worker serves ~40 at 100,000 devices)"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scrape-pause", type=float, default=1.0, help="the scraper's pause between scrapes")
    parser.add_argument("--prometheus-seconds", type=float, default=55.0, help="0: skip the real Prometheus")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.devices.split(",") if s]
    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "scrape_pause": args.scrape_pause, "sizes": {}}
    folder = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    try:
        for size in sorted(set(sizes) | ({args.api_devices} if args.api_devices else set())):
            print(f"--- {size} devices: building the database", file=sys.stderr)
            where = folder / str(size)
            where.mkdir()
            engine = build_database(where / "monitor.db", size)
            result: dict[str, Any] = {}
            if size in sizes:
                result["ours"] = measure_build(engine)
                result["prometheus_client"] = measure_prometheus_client(engine)
            with web_server(engine, where) as base:
                if size in sizes:
                    result["served"] = measure_served(base, max_age_s=5.0)
                    if args.prometheus_seconds:
                        result["prometheus"] = measure_with_prometheus(base, where, args.prometheus_seconds)
                if size == args.api_devices:
                    result["api"] = measure_api(base, engine, args)
            engine.dispose()
            figures["sizes"][size] = result
            print(json.dumps({size: result}, indent=1), file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(figures)
    if args.json:
        conditions = (
            f"SQLite, {args.devices} devices; API at {args.api_devices:,}, {args.rounds} × {args.api_seconds:g} s"
        )
        write_json(args.json, "bench_metrics.py", conditions, summary_figures(figures), figures)


def summary_figures(figures: dict[str, Any]) -> list[Figure]:
    """/metrics served beside prometheus-client's render, and the API's p99 scraped beside quiet."""
    out = []
    for size, result in figures["sizes"].items():
        ours, theirs, served = result.get("ours"), result.get("prometheus_client"), result.get("served")
        if ours and served:
            big = size >= TARGET_FLEET
            reference = f"prometheus-client Gauges render {theirs['render_s']:.2f} s" if theirs else ""
            out.append(
                Figure(
                    f"{size:,} devices: /metrics served when the scrape waits for a rebuild (gzip)",
                    f"{served['rebuild_s']:.3f} s (max {served['rebuild_max_s']:.3f})",
                    reference,
                    f"≤ {TARGET_SERVED_S} s at {TARGET_FLEET:,}",
                    served["rebuild_s"] <= TARGET_SERVED_S if big else None,
                )
            )
        prom = result.get("prometheus")
        if prom and "error" not in prom and prom.get("durations_s"):
            out.append(
                Figure(
                    f"{size:,} devices: Debian's Prometheus scrape_duration_seconds, worst",
                    f"{max(prom['durations_s']):.2f} s",
                    f"{prom['scrapes']:.0f} scrapes, {prom['failed']:.0f} failed (timeout 10 s)",
                )
            )
        api = result.get("api")
        if api:
            change = api["p99_scraped_ms"] / api["p99_quiet_ms"] - 1
            out.append(
                Figure(
                    f"{size:,} devices: API p99 with a scraper every {figures.get('scrape_pause', 1):g} s",
                    f"{api['p99_scraped_ms']:.1f} ms ({change:+.0%})",
                    f"quiet {api['p99_quiet_ms']:.1f} ms",
                    f"within {TARGET_API_CHANGE:.0%} of quiet",
                    change <= TARGET_API_CHANGE,
                )
            )
    return out


def print_table(figures: dict[str, Any]) -> None:
    """The figures as Markdown, for docs and the issue."""
    print("\n| devices | way | build / render | served (gzip, HTTP) | text | gzip | memory kept |")
    print("|---|---|---|---|---|---|---|")
    for size, result in figures["sizes"].items():
        ours, theirs, served = result.get("ours"), result.get("prometheus_client"), result.get("served")
        if ours:
            serve = "-"
            if served:
                serve = (
                    f"rebuilt {served['rebuild_s']:.3f} s (max {served['rebuild_max_s']:.3f}); "
                    f"steady interval {served['steady_s']:.3f} s (max {served['steady_max_s']:.3f}); "
                    f"fresh {served['fresh_s']:.3f} s"
                )
            print(
                f"| {size:,} | labels pre-rendered, values joined (this service) | {ours['warm_build_s']:.3f} s "
                f"(cold {ours['cold_build_s']:.3f} s) | {serve} | {ours['text_mb']:.1f} MB | {ours['gzip_mb']:.2f} MB "
                f"| {ours['memory_mb']:.0f} MB |"
            )
        if theirs:
            print(
                f"| {size:,} | prometheus-client labelled Gauge | {theirs['render_s']:.3f} s "
                f"(setting the gauges {theirs['set_s']:.1f} s) | - | {theirs['text_mb']:.1f} MB | - "
                f"| {theirs['memory_mb']:.0f} MB |"
            )
        prom = result.get("prometheus")
        if prom and "error" not in prom:
            print(
                f"| {size:,} | Debian's Prometheus scraping it (10 s interval, 10 s timeout) "
                f"| scrape_duration_seconds, one by one: {', '.join(f'{d:.3f}' for d in prom['durations_s'])} s "
                f"| {prom['scrapes']:.0f} scrapes, {prom['failed']:.0f} failed | {prom['samples']:.0f} samples | | |"
            )
        api = result.get("api")
        if api:
            change = 100 * (api["p99_scraped_ms"] / api["p99_quiet_ms"] - 1)
            print(
                f"\nAPI at {size:,} devices, GET /api/v1/devices?limit=50&after=...: p50 {api['p50_quiet_ms']:.1f} ms "
                f"-> {api['p50_scraped_ms']:.1f} ms, p99 {api['p99_quiet_ms']:.1f} ms without scraping -> "
                f"{api['p99_scraped_ms']:.1f} ms with a scraper in a loop ({change:+.1f} %)"
            )
            for r in api["rounds"]:
                print(
                    f"  scraping={r['scraping']}: {r['requests']} requests, p50 {r['p50_ms']:.1f} ms, "
                    f"p99 {r['p99_ms']:.1f} ms, scrapes {r['scrapes']}"
                )


if __name__ == "__main__":
    main()
