"""Grafana dashboards: the committed JSON is what the builder makes, well-formed for a current Grafana, and
`monitor dashboards push` uploads it.

Grafana itself cannot run on the test machine (no Debian package, nothing can be fetched): the push command
is tested against a local HTTP server that answers like Grafana's API and records the requests. Whether each
panel's query works is tested against a real Prometheus in tests/test_prometheus.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from monitor.grafana import DATASOURCE_UID, GrafanaClient, GrafanaError, folder_uid, push, render
from monitor.grafana.cli import DEFAULT_FOLDER, dashboards_app
from monitor.grafana.dashboards import all_dashboards, read_dashboards
from tests.recording_server import Recorded, RecordingServer

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def test_the_committed_json_is_what_the_builder_makes() -> None:
    built = all_dashboards()
    assert sorted(p.name for p in COMMITTED.glob("*.json")) == sorted(built)
    for name, content in built.items():
        assert (COMMITTED / name).read_text(encoding="utf-8") == render(content), (
            f"dashboards/{name} differs from monitor/grafana/dashboards/: run `monitor dashboards build`"
        )


def panels() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, content in read_dashboards(COMMITTED).items():
        for item in content["panels"]:
            yield name, item


def test_dashboards_are_for_a_current_grafana_with_unique_uids_and_panel_ids() -> None:
    dashboards = read_dashboards(COMMITTED)
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards) == 4
    for content in dashboards.values():
        assert content["schemaVersion"] >= 39 and "id" not in content  # ids are Grafana's, uids are ours
        ids = [p["id"] for p in content["panels"]]
        assert len(ids) == len(set(ids))
        for item in content["panels"]:
            grid = item["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, item["title"]


def test_every_panel_reads_the_provisioned_prometheus_by_its_fixed_uid() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [d["uid"] for d in provisioned] == [DATASOURCE_UID]
    for name, item in panels():
        assert item["datasource"]["uid"] == DATASOURCE_UID, (name, item["title"])
        assert item["targets"] and all(t["datasource"]["uid"] == DATASOURCE_UID for t in item["targets"])


def test_titles_are_vietnamese_first_then_english() -> None:
    for name, item in panels():
        vietnamese, _, english = item["title"].partition(" — ")
        assert vietnamese and english, (name, item["title"])
    for content in read_dashboards(COMMITTED).values():
        assert " — " in content["title"]


def test_the_district_dashboard_has_a_district_variable_and_uses_it() -> None:
    district = read_dashboards(COMMITTED)["district.json"]
    variables = {v["name"]: v for v in district["templating"]["list"]}
    assert variables["district"]["query"]["query"] == "query_result(fleet_district_info)"
    exprs = [t["expr"] for item in district["panels"] for t in item["targets"]]
    assert sum('"$district"' in e for e in exprs) >= len(exprs) - 2  # all but the province's target line


def test_the_operations_map_colours_devices_by_state_from_their_coordinates() -> None:
    operations = read_dashboards(COMMITTED)["operations.json"]
    geomap = next(p for p in operations["panels"] if p["type"] == "geomap")
    layers = geomap["options"]["layers"]
    assert {layer["location"]["latitude"] for layer in layers} == {"lat"}
    assert any(layer["config"]["style"]["color"].get("field") == "Value" for layer in layers)
    assert "fleet_device_info" in geomap["targets"][0]["expr"]


def test_the_provisioning_finds_the_dashboards_where_compose_mounts_them() -> None:
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "fleet.yml").read_text())["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.startswith("./dashboards:" + providers[0]["options"]["path"]) for m in mounts)
    assert providers[0]["folderUid"] == folder_uid(providers[0]["folder"]) == folder_uid(DEFAULT_FOLDER)


# --- push -----------------------------------------------------------------------------------------


def grafana_answers(*, folder_exists: bool = False, datasource_exists: bool = False) -> dict[tuple[str, str], Any]:
    """What a Grafana 11 answers to the push's requests."""
    uid = folder_uid(DEFAULT_FOLDER)

    def saved(request: Recorded) -> tuple[int, Any]:
        dashboard = request.json()["dashboard"]
        return 200, {"id": 7, "uid": dashboard["uid"], "url": f"/d/{dashboard['uid']}/x", "status": "success",
                     "version": 3}  # fmt: skip

    return {
        ("GET", "/api/health"): (200, {"database": "ok", "version": "11.3.0"}),
        ("GET", f"/api/folders/{uid}"): (200, {"uid": uid}) if folder_exists else (404, {"message": "not found"}),
        ("GET", "/api/folders"): (200, []),
        ("POST", "/api/folders"): (200, {"uid": uid, "title": DEFAULT_FOLDER}),
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"): (
            (200, {"uid": DATASOURCE_UID}) if datasource_exists else (404, {"message": "Data source not found"})
        ),
        ("POST", "/api/datasources"): (200, {"message": "Datasource added"}),
        ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}"): (200, {"message": "Datasource updated"}),
        ("POST", "/api/dashboards/db"): saved,
    }


def test_push_creates_the_folder_and_data_source_then_uploads_every_dashboard() -> None:
    with RecordingServer(grafana_answers()) as grafana:
        result = CliRunner().invoke(
            dashboards_app,
            ["push", "--url", grafana.url + "/", "--token", "glsa_test", "--prometheus-url", "http://prom:9090"],
        )
        requests = list(grafana.requests)
    assert result.exit_code == 0, result.output
    assert all(r.headers["Authorization"] == "Bearer glsa_test" for r in requests)
    steps = [(r.method, r.path) for r in requests]
    assert steps[:4] == [
        ("GET", "/api/health"),
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
        ("POST", "/api/datasources"),
        ("GET", f"/api/folders/{folder_uid(DEFAULT_FOLDER)}"),
    ]
    assert ("POST", "/api/folders") in steps
    uploads = [r.json() for r in requests if r.path == "/api/dashboards/db"]
    assert sorted(u["dashboard"]["uid"] for u in uploads) == sorted(d["uid"] for d in all_dashboards().values())
    assert all(u["overwrite"] and u["folderUid"] == folder_uid(DEFAULT_FOLDER) and u["dashboard"]["id"] is None
               for u in uploads)  # fmt: skip
    datasource = next(r.json() for r in requests if r.path == "/api/datasources")
    assert datasource["uid"] == DATASOURCE_UID and datasource["url"] == "http://prom:9090"
    assert "fleet-leadership: version 3" in result.output


def test_pushing_again_updates_in_place(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"uid": "fleet-one", "title": "Một — One", "panels": []}))
    with RecordingServer(grafana_answers(folder_exists=True, datasource_exists=True)) as grafana:
        with GrafanaClient(grafana.url, "t") as client:
            uploaded = push(client, read_dashboards(tmp_path), folder=DEFAULT_FOLDER, prometheus_url="http://p:9090")
        steps = [(r.method, r.path) for r in grafana.requests]
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in steps and ("POST", "/api/folders") not in steps
    assert [u.uid for u in uploaded] == ["fleet-one"]


def test_a_refusal_or_an_unreachable_grafana_is_an_error_with_grafanas_words() -> None:
    answers = grafana_answers() | {("GET", "/api/health"): (401, {"message": "invalid API key"})}
    with RecordingServer(answers) as grafana:
        result = CliRunner().invoke(dashboards_app, ["push", "--url", grafana.url, "--token", "wrong"])
    assert result.exit_code == 1
    assert "HTTP 401 invalid API key" in result.output
    with RecordingServer() as gone:
        url = gone.url
    with pytest.raises(GrafanaError, match="cannot reach Grafana"), GrafanaClient(url, "t", timeout_s=2) as client:
        client.health()


def test_build_writes_the_same_json_as_committed(tmp_path: Path) -> None:
    result = CliRunner().invoke(dashboards_app, ["build", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for path in COMMITTED.glob("*.json"):
        assert (tmp_path / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
