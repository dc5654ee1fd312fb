"""Grafana's HTTP API, as this service needs it: upload the dashboards (`monitor dashboards push`), with their
folder and, when asked, the Prometheus data source they read.

All requests to Grafana go through `GrafanaClient` (httpx), one place to test: tests/test_dashboards.py runs
it against a local HTTP server that records the requests (Grafana itself cannot run in the test machine).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from monitor.errors import MonitorError
from monitor.grafana.builder import DATASOURCE_UID, Json
from monitor.text import fold


class GrafanaError(MonitorError):
    """Grafana could not be reached, or refused a request (its own message is kept)."""


def folder_uid(title: str) -> str:
    """A stable folder uid from its title (`Giám sát thông tin cơ sở` -> `giam-sat-thong-tin-co-so`), so that
    pushing again updates the same folder."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(title)).strip("-")
    return (slug or "fleet-monitor")[:40]


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A dashboard Grafana accepted: its uid, address (relative to Grafana's URL) and version."""

    uid: str
    url: str
    version: int


class GrafanaClient:
    """Grafana's HTTP API with a service-account token (`Authorization: Bearer`): folders, the Prometheus
    data source and dashboards. Library errors become `GrafanaError`; `transport` is for tests."""

    def __init__(
        self, url: str, token: str, *, timeout_s: float = 15.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Json | None = None, *, allow: Sequence[int] = ()) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {exc}") from exc
        if response.is_success or response.status_code in allow:
            return response
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text[:200]
        raise GrafanaError(f"Grafana refused {method} {path}: HTTP {response.status_code} {message}".rstrip())

    def health(self) -> Json:
        """Grafana's version and database state (`GET /api/health`, no permission needed)."""
        health: Json = self._call("GET", "/api/health").json()
        return health

    def ensure_folder(self, title: str) -> str:
        """The uid of the folder called `title`, created if missing."""
        uid = folder_uid(title)
        if self._call("GET", f"/api/folders/{uid}", allow=[404]).status_code == 200:
            return uid
        for folder in self._call("GET", "/api/folders").json():
            if folder.get("title") == title:
                return str(folder["uid"])
        self._call("POST", "/api/folders", {"uid": uid, "title": title})
        return uid

    def ensure_datasource(self, prometheus_url: str) -> None:
        """Create or update the Prometheus data source the dashboards use (uid `DATASOURCE_UID`)."""
        body: Json = {
            "uid": DATASOURCE_UID,
            "name": "Prometheus (fleet monitor)",
            "type": "prometheus",
            "access": "proxy",
            "url": prometheus_url,
            "jsonData": {"timeInterval": "30s", "httpMethod": "POST"},
        }
        path = f"/api/datasources/uid/{DATASOURCE_UID}"
        if self._call("GET", path, allow=[404]).status_code == 404:
            self._call("POST", "/api/datasources", body)
        else:
            self._call("PUT", path, body)

    def upload(self, dashboard_json: Json, folder: str, message: str) -> Uploaded:
        """Create or replace a dashboard (matched by its uid) in a folder."""
        body = {"dashboard": dashboard_json | {"id": None}, "folderUid": folder, "overwrite": True, "message": message}
        answer = self._call("POST", "/api/dashboards/db", body).json()
        return Uploaded(
            str(answer.get("uid", dashboard_json["uid"])), str(answer.get("url", "")), int(answer.get("version", 0))
        )


def push(
    client: GrafanaClient,
    dashboards: Mapping[str, Json],
    *,
    folder: str,
    prometheus_url: str | None = None,
    message: str = "monitor dashboards push",
) -> list[Uploaded]:
    """Upload dashboards into `folder` (created if missing), after the data source when `prometheus_url` is given."""
    client.health()
    if prometheus_url:
        client.ensure_datasource(prometheus_url)
    uid = client.ensure_folder(folder)
    return [client.upload(content, uid, message) for content in dashboards.values()]


__all__ = ["GrafanaClient", "GrafanaError", "Uploaded", "folder_uid", "push"]
