"""Benchmark of the web API over real HTTP: `monitor serve` under Debian's `wrk`, on a throw-away database.

    .venv/bin/python bench/bench_api.py [--tickets 100000] [--connections 50] [--duration 15]
                                        [--source DIR] [--backend sqlite|postgres] [--json FILE]

1. Builds a database in a temp folder (SQLite, or a throw-away PostgreSQL started like tests/postgres.py):
   the Lạng Sơn districts and communes with the demo fleet (`seed_demo`, ~1,800 devices), `--tickets`
   tickets loaded like bench_tickets.py (1.5 % open), an admin and an officer of Cao Lộc (183).
2. Starts `python -m monitor serve --no-dispatcher` as a child process on a free 127.0.0.1 port, from this
   checkout or from `--source DIR` (another checkout, e.g. a `git worktree` of an older commit: DIR comes
   first on PYTHONPATH and is the server's working directory).
3. Signs in as both users and, per endpoint, runs wrk (`-t2 -c{connections}`, a 3 s warm-up, then
   `--duration` s with `--latency`), reading the server's CPU (/proc/PID/stat) before and after.

Reading the table: req/s and latency percentiles as wrk reports them; non-2xx counts answers that were not
2xx or 3xx (any is a finding); "CPU s/1k" is the server process's CPU seconds per 1,000 requests, i.e.
milliseconds of CPU per request. `/healthz` (one `SELECT 1`) is the reference of the same run: the cost of
HTTP, the middleware and a database round trip, with no application work. wrk shares the machine's cores
with the server (it is compiled and light, but not free): compare rows of one run, and two checkouts by
running them one after the other against the same settings (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from _common import cpu_seconds  # noqa: E402
from _summary import Figure, write_json  # noqa: E402
from bench_tickets import Place, load_tickets  # noqa: E402
from sqlmodel import col  # noqa: E402

from monitor.auth.models import Role  # noqa: E402
from monitor.auth.service import create_user  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade  # noqa: E402
from monitor.inventory.demo import seed_demo  # noqa: E402
from monitor.inventory.models import Commune, Device, District  # noqa: E402
from monitor.text import fold  # noqa: E402
from monitor.tickets.models import Ticket  # noqa: E402
from monitor.tickets.store import OPEN  # noqa: E402
from tests.peers import free_port, stop_process  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

DISTRICT = "183"  # Huyện Cao Lộc
PASSWORD = "bench-password-1"
USERS = {"admin": (Role.ADMIN, None), "officer183": (Role.OFFICER, DISTRICT)}
WARMUP_S = 3
COMMENT_LUA = """wrk.method = "POST"
wrk.body = '{"text": "Đã kiểm tra tại chỗ (benchmark)"}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Row:
    endpoint: str
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    cpu_s_per_1k: float


def build_database(url: str, tickets: int) -> str:
    """The demo fleet, the users and `tickets` tickets; returns the code of an open Cao Lộc ticket."""
    engine = make_engine(load_settings(database_url=url))
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            seed_demo(session=session, seed=1)
            for username, (role, district) in USERS.items():
                create_user(
                    session=session,
                    username=username,
                    full_name=username,
                    role=role,
                    password=PASSWORD,
                    district_code=district,
                )
        with engine.connect() as connection:
            query = (
                sa.select(col(Device.id), col(Device.code), col(Device.commune_code))
                .add_columns(col(Commune.district_code), col(Commune.name), col(District.name))
                .join(Commune, col(Commune.code) == col(Device.commune_code))
                .join(District, col(District.code) == col(Commune.district_code))
            )
            places = [Place(i, code, c, d, fold(f"{cn} {dn}")) for i, code, c, d, cn, dn in connection.execute(query)]
        print(f"{len(places):,} devices; loading {tickets:,} tickets…", flush=True)
        load_tickets(engine, tickets, places)
        with engine.connect() as connection:
            cao_loc = sa.select(col(Ticket.code)).where(col(Ticket.district_code) == DISTRICT, OPEN)
            code = connection.execute(cao_loc.order_by(col(Ticket.code)).limit(1)).scalar_one()
        return str(code)
    finally:
        engine.dispose()


def start_server(folder: Path, url: str, source: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`monitor serve` from `source` on a free loopback port; returns the process and its base URL."""
    port = free_port()
    env = dict(os.environ)  # other MONITOR_* variables reach the server: e.g. MONITOR_WEB_CLIENT_MAX_ACTIVE
    env.update(
        MONITOR_DATABASE_URL=url,
        MONITOR_SECRET_KEY=secrets.token_hex(32),
        MONITOR_HOST="127.0.0.1",
        MONITOR_PORT=str(port),
        MONITOR_DATA_DIR=str(folder / "data"),
        PYTHONPATH=os.pathsep.join([str(source), *filter(None, [env.get("PYTHONPATH")])]),
    )
    command = [sys.executable, "-m", "monitor", "serve", "--no-dispatcher"]
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=source, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return process, base
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    stop_process(process, grace_s=5)
    log_tail = (folder / "server.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the server did not answer /healthz (exit {process.returncode}):\n{log_tail}")


def sign_in(base: str, username: str) -> str:
    body = json.dumps({"username": username, "password": PASSWORD}).encode()
    request = urllib.request.Request(f"{base}/api/v1/auth/login", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["token"])


def _ms(text: str) -> float:
    """A wrk duration ("812.00us", "1.23ms", "2.01s", "1.00m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match[2]]


PEOPLE = 50  # client addresses of the wrk script

# Each request carries one of PEOPLE addresses, as a reverse proxy's X-Forwarded-For, beside wrk's own headers.
PEOPLE_SCRIPT = f"""
local counter = 0
function request()
  counter = counter + 1
  local headers = {{}}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["X-Forwarded-For"] = "10.0.0." .. (math.fmod(counter, {PEOPLE}) + 1)
  return wrk.format(nil, nil, headers)
end
"""


def write_people_script(folder: Path) -> Path:
    """The wrk script (`-s`) that makes wrk's connections PEOPLE people behind a reverse proxy on this machine:
    each request names one of PEOPLE client addresses in X-Forwarded-For, which uvicorn takes as the client's
    address from 127.0.0.1 (FORWARDED_ALLOW_IPS' default), so the web guard's per-address bounds apply to each."""
    script = folder / "people.lua"
    script.write_text(PEOPLE_SCRIPT)
    return script


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, req/s, p50/p90/p99, non-2xx and socket errors from `wrk --latency` output."""
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    requests = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if requests is None or rps is None or len(latency) != 3:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": int(requests[1]),
        "rps": float(rps[1]),
        "p50_ms": _ms(latency["50"]),
        "p90_ms": _ms(latency["90"]),
        "p99_ms": _ms(latency["99"]),
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def run_wrk(args: argparse.Namespace, pid: int, name: str, url: str, token: str, script: Path | None) -> Row:
    """A warm-up run, then the measured one with the server's CPU read around it."""
    command = ["wrk", f"-t{min(2, args.connections)}", f"-c{args.connections}", "-H", f"Authorization: Bearer {token}"]
    if script is not None:
        command += ["-s", str(script)]
    subprocess.run([*command, f"-d{WARMUP_S}s", url], check=True, capture_output=True, timeout=WARMUP_S + 30)
    before = cpu_seconds(pid)
    done = subprocess.run(
        [*command, f"-d{args.duration}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=args.duration + 30,
    )
    cpu = cpu_seconds(pid) - before
    figures = parse_wrk(done.stdout)
    if figures["requests"] == 0:
        print(f"  {name}: no answer at all; wrk said:\n{done.stdout}{done.stderr}", file=sys.stderr, flush=True)
    row = Row(name, cpu_s_per_1k=cpu / max(figures["requests"], 1) * 1000, **figures)
    print(f"  {name}: {row.rps:.0f} req/s, p99 {row.p99_ms:.1f} ms", flush=True)
    return row


def measure(args: argparse.Namespace, folder: Path, url: str) -> list[Row]:
    code = build_database(url, args.tickets)
    source = Path(args.source).resolve() if args.source else ROOT
    process, base = start_server(folder, url, source)
    try:
        print(f"server pid {process.pid} from {source} at {base}; open ticket {code}", flush=True)
        officer, admin = sign_in(base, "officer183"), sign_in(base, "admin")
        script = folder / "comment.lua"
        script.write_text(COMMENT_LUA, encoding="utf-8")
        runs = [
            (f"GET /api/v1/tickets?district={DISTRICT}&limit=50", officer, None),
            (f"GET /api/v1/tickets/{code}", officer, None),
            (f"GET /api/v1/devices?district={DISTRICT}&limit=50", officer, None),
            ("GET /api/v1/districts (admin)", admin, None),
            ("GET /healthz", officer, None),
            (f"POST /api/v1/tickets/{code}/comments", officer, script),
        ]
        rows = []
        for name, token, lua in runs:
            path = name.split()[1]
            rows.append(run_wrk(args, process.pid, name, base + path, token, lua))
        if process.poll() is not None:
            raise RuntimeError(f"the server ended during the benchmark (exit {process.returncode})")
        return rows
    finally:
        stop_process(process, grace_s=10)


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.backend}, {args.tickets:,} tickets, wrk -t2 -c{args.connections} -d{args.duration}s, "
        f"server from {args.source or 'this checkout'}, {os.cpu_count()} cores"
    )
    header = ["endpoint", "req/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx", "sock err", "CPU s/1k"]
    width = max(len(r.endpoint) for r in rows)
    print(f"| {header[0]:<{width}} | " + " | ".join(f"{h:>8}" for h in header[1:]) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 9 + ":" for _ in header[1:]) + "|")
    for r in rows:
        cells = [f"{r.rps:.0f}", f"{r.p50_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.p99_ms:.1f}"]
        cells += [str(r.non_2xx), str(r.socket_errors), f"{r.cpu_s_per_1k:.2f}"]
        print(f"| {r.endpoint:<{width}} | " + " | ".join(f"{c:>8}" for c in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=15, help="seconds of each measured wrk run")
    parser.add_argument("--source", help="checkout of the repository to run the server from (default: this one)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")

    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server: PostgresServer | None = None
    # PostgreSQL's folder is not under `folder`: mkdtemp folders are private, the cluster runs as postgres.
    pg_folder = Path(tempfile.mkdtemp(prefix="bench-api-pg-")) if args.backend == "postgres" else None
    try:
        if pg_folder is not None:
            server = PostgresServer(pg_folder).start()
            admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(sa.text("CREATE DATABASE bench"))
            admin.dispose()
            url = server.url("bench")
        else:
            url = f"sqlite:///{folder / 'bench.db'}"
        rows = measure(args, folder, url)
    finally:
        if server is not None:
            server.stop()
        for path in (folder, pg_folder):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
    print_table(rows, args)
    if args.json:
        figures = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": [asdict(r) for r in rows]}
        conditions = f"{args.backend}, {args.tickets:,} tickets, one web process, wrk -t2 -c{args.connections}"
        write_json(args.json, "bench_api.py", conditions, summary_figures(rows), figures)


def summary_figures(rows: list[Row]) -> list[Figure]:
    """Each endpoint beside /healthz of the same run (no target was set for these)."""
    health = next((r for r in rows if r.endpoint == "GET /healthz"), None)
    reference = f"/healthz {health.rps:,.0f} req/s, p99 {health.p99_ms:.1f} ms" if health else ""
    return [
        Figure(
            r.endpoint,
            f"{r.rps:,.0f} req/s, p99 {r.p99_ms:.1f} ms, {r.cpu_s_per_1k:.2f} ms CPU"
            + (f", {r.non_2xx} non-2xx" if r.non_2xx else ""),
            reference,
        )
        for r in rows
        if r is not health
    ]


if __name__ == "__main__":
    main()
