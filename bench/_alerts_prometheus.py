"""Path 3 of `_alerts_latency.py`: the web app, a real Prometheus and a real Alertmanager, on loopback.

    path = PrometheusPath(folder, Timing())   # a SQLite database with Cao Lộc's demo fleet, every device up
    path.start()                              # uvicorn thread, Alertmanager, Prometheus: until the device is scraped
    path.go_dark(utcnow()); ...; path.ticket(); path.milestones(t0)
    path.stop()                               # the processes by their pid, then the web app

Prometheus and Alertmanager run with configuration files written in `folder` from `Timing`; their logs stay
there (prometheus.log, alertmanager.log) for `bench_alerts.py --keep`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _alerts_setup import Timing, all_up, demo_district, migrated_sqlite, seconds_after, ticket_of, watched_cluster

from monitor.db import utcnow
from monitor.health.machine import HealthPolicy, Observation
from monitor.health.store import HealthStore
from monitor.metrics import DEFAULT_MAX_AGE_S, web_exporter
from monitor.tickets.models import Ticket
from monitor.web.app import create_app
from tests.peers import free_port

AM_TOKEN = "bench-alertmanager-token-0123456789"
ALERT_NAME = "FleetDeviceDown"


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


class PrometheusPath:
    """The web app, a real Prometheus and a real Alertmanager, started in `folder`, stopped by pid."""

    def __init__(self, folder: Path, timing: Timing) -> None:
        self.folder = folder
        self.timing = timing
        self.settings, self.engine = migrated_sqlite(folder / "prometheus.db", alertmanager_token=AM_TOKEN)
        devices = demo_district(self.engine)
        self.device = watched_cluster(devices)
        all_up(self.engine, devices, utcnow() - timedelta(minutes=1))
        self.web_port, self.prometheus_port, self.am_port = free_port(), free_port(), free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.exporter: Any = None
        self.base = f"http://127.0.0.1:{self.prometheus_port}"

    def _configs(self) -> tuple[Path, Path]:
        t = self.timing
        rules = self.folder / "rules.yml"
        rules.write_text(
            f"""groups:
  - name: bench-device-down
    rules:
      - alert: {ALERT_NAME}
        expr: fleet_device_up == 0
        for: {_duration(t.for_s)}
        labels:
          kind: offline  # the problem's kind; else the series' own `kind` (radio_cluster) would name it
        annotations:
          summary: "Thiết bị {{{{ $labels.device }}}} mất kết nối — device down"
""",
            encoding="utf-8",
        )
        prometheus = self.folder / "prometheus.yml"
        prometheus.write_text(
            f"""global:
  scrape_interval: {_duration(t.scrape_s)}
  scrape_timeout: {_duration(min(10.0, t.scrape_s))}
  evaluation_interval: {_duration(t.evaluation_s)}
rule_files: [{rules}]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{self.am_port}"]
scrape_configs:
  - job_name: fleet-web
    static_configs:
      - targets: ["127.0.0.1:{self.web_port}"]
""",
            encoding="utf-8",
        )
        alertmanager = self.folder / "alertmanager.yml"
        alertmanager.write_text(
            f"""route:
  receiver: fleet-monitor
  group_by: [alertname, district]
  group_wait: {_duration(t.am_group_wait_s)}
  group_interval: {_duration(t.am_group_interval_s)}
  repeat_interval: 4h
receivers:
  - name: fleet-monitor
    webhook_configs:
      - url: http://127.0.0.1:{self.web_port}/api/v1/integrations/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {AM_TOKEN}
""",
            encoding="utf-8",
        )
        return prometheus, alertmanager

    def _spawn(self, name: str, command: list[str]) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        """Web app, Alertmanager, Prometheus; returns when Prometheus has the device's `fleet_device_up 1`."""
        app = create_app(self.settings, self.engine)
        if self.timing.metrics_max_age_s != DEFAULT_MAX_AGE_S:  # --quick: the snapshot's age scaled too
            app.state.metrics = web_exporter(self.engine, max_age_s=self.timing.metrics_max_age_s)
        self.exporter = app.state.metrics
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.web_port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="bench-web", daemon=True)
        self.thread.start()
        prometheus, alertmanager = self._configs()
        self._spawn(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={alertmanager}",
                f"--storage.path={self.folder / 'am'}",
                f"--web.listen-address=127.0.0.1:{self.am_port}",
                "--cluster.listen-address=",
            ],
        )
        self._spawn(
            "prometheus",
            [
                "prometheus",
                f"--config.file={prometheus}",
                f"--storage.tsdb.path={self.folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            ],
        )
        deadline = time.monotonic() + 3 * self.timing.scrape_s + 30
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.folder}/{name}.log")
            with suppress(httpx.HTTPError, KeyError, IndexError, ValueError):
                if self.query(f'fleet_device_up{{device="{self.device.code}"}}') == 1.0:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"Prometheus never scraped fleet_device_up of {self.device.code}; see {self.folder}")

    def query(self, expr: str) -> float | None:
        """The value of an instant query's first series, or None when it has none."""
        answer = httpx.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=5).json()
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def first_sample(self, selector: str, value: float, since: datetime) -> datetime | None:
        """The timestamp of the first sample of `selector`'s first series equal to `value` at or after `since`."""
        window = max(60, round((utcnow() - since).total_seconds()) + 60)
        answer = httpx.get(f"{self.base}/api/v1/query", params={"query": f"{selector}[{window}s]"}, timeout=5).json()
        for series in answer["data"]["result"]:
            for stamp, text in series["values"]:
                at = datetime.fromtimestamp(float(stamp), UTC)
                if at >= since and float(text) == value:
                    return at
        return None

    def milestones(self, t0: datetime) -> dict[str, float | None]:
        """From Prometheus's own series: the first scrape holding the 0, the alert's first pending and firing
        evaluations (`ALERTS`); seconds after t0."""
        device = f'fleet_device_up{{device="{self.device.code}"}}'
        alert = f'ALERTS{{alertname="{ALERT_NAME}",device="{self.device.code}",alertstate="%s"}}'
        return {
            "seen_zero": seconds_after(self.first_sample(device, 0.0, t0), t0),
            "pending": seconds_after(self.first_sample(alert % "pending", 1.0, t0), t0),
            "firing": seconds_after(self.first_sample(alert % "firing", 1.0, t0), t0),
        }

    def go_dark(self, at: datetime) -> None:
        """The device's health written down now, as one failed observation would with failures_to_down=1."""
        store = HealthStore(self.engine, HealthPolicy(failures_to_down=1))
        store.apply([Observation(self.device.id or 0, at, "http", False, error="timeout: no answer")], at)

    def ticket(self) -> Ticket | None:
        """The ticket Alertmanager's webhook opened, once it did."""
        return ticket_of(self.engine, self.device.code, "alertmanager")

    def stop(self) -> None:
        """Prometheus and Alertmanager by their pid (SIGTERM, then SIGKILL after 10 s), then the web app."""
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
        close = getattr(self.exporter, "close", None)  # the exporter's metrics worker process, where it has one
        if callable(close):
            close()
        self.engine.dispose()
