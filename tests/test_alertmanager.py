"""The Alertmanager receiver: directly (duplicates, out of order, bad input) and fed by a real Alertmanager."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.alerts.alertmanager import parse_payload, receive
from monitor.alerts.dispatcher import Dispatcher
from monitor.alerts.models import AlertProblem
from monitor.alerts.rules import AlertRules, KindRule, load_rules
from monitor.config import Settings, load_settings
from monitor.db import session_scope
from monitor.errors import ConfigError
from monitor.inventory.demo import generate_demo_rows
from monitor.inventory.models import Commune
from monitor.inventory.service import apply_fleet_rows
from monitor.priority import Priority
from monitor.tickets.models import Ticket, TicketEvent
from monitor.tickets.policy import TicketPolicy
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.peers import free_port

TOKEN = "alertmanager-test-token-0123456789"
T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


@pytest.fixture
def am_settings(province: Engine, tmp_path: Path) -> Settings:
    with session_scope(province) as session:
        communes = list(session.exec(select(Commune).where(Commune.code == "06613")))
        apply_fleet_rows(generate_demo_rows(communes, seed=3, today=date(2026, 1, 1)), session=session)
    return load_settings(
        database_url=province.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        alertmanager_token=TOKEN,
        data_dir=tmp_path,
    )


@pytest.fixture
def client(am_settings: Settings, province: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(am_settings, province)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def payload(status: str, starts: datetime, ends: datetime | None = None, fingerprint: str = "a1b2c3", **labels: str):
    alert_labels = {"alertname": "ClusterSilent", "device": "06613-CL01", "severity": "warning", **labels}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="ClusterSilent"}',
        "status": status,
        "receiver": "fleet-monitor",
        "alerts": [
            {
                "status": status,
                "labels": alert_labels,
                "annotations": {"summary": "Cụm loa không phát"},
                "startsAt": starts.isoformat(),
                "endsAt": (ends or datetime(1, 1, 1, tzinfo=UTC)).isoformat(),
                "fingerprint": fingerprint,
            }
        ],
    }


def tickets(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(Ticket).order_by(col(Ticket.id)))
        return [(t.problem_key, t.status, t.source) for t in rows]


def test_firing_opens_a_ticket_and_duplicates_change_nothing(client: TestClient, province: Engine) -> None:
    for _ in range(3):  # an HA pair delivers twice, and Alertmanager retries
        assert client.post("/api/v1/integrations/alertmanager", json=payload("firing", T0)).status_code == 200
    assert tickets(province) == [("device:06613-CL01:clustersilent", "new", "alertmanager")]


def test_resolved_resolves_and_a_late_firing_of_the_same_episode_is_ignored(
    client: TestClient, province: Engine
) -> None:
    client.post("/api/v1/integrations/alertmanager", json=payload("firing", T0))
    done = client.post("/api/v1/integrations/alertmanager", json=payload("resolved", T0, T0 + timedelta(minutes=5)))
    assert done.json()["resolved"] == ["device:06613-CL01:clustersilent"]
    late = client.post("/api/v1/integrations/alertmanager", json=payload("firing", T0))  # out of order
    assert late.json()["ignored"] == 1
    assert [status for _, status, _ in tickets(province)] == ["resolved"]
    # a new episode (later startsAt) reopens the same ticket, within the reopen window
    client.post("/api/v1/integrations/alertmanager", json=payload("firing", T0 + timedelta(minutes=30)))
    assert [status for _, status, _ in tickets(province)] == ["reopened"]


def test_alerts_about_a_commune_or_nothing_in_the_inventory(client: TestClient, province: Engine) -> None:
    commune = payload("firing", T0, fingerprint="c0ffee", device="", commune="06613", alertname="CommuneDown")
    client.post("/api/v1/integrations/alertmanager", json=commune)
    collector = payload("firing", T0, fingerprint="beef", device="", alertname="CollectorDown", job="collector")
    assert client.post("/api/v1/integrations/alertmanager", json=collector).json()["opened"] == [
        "province:collector:collectordown"
    ]
    # Not about a place of the inventory: the province operator's ticket, no district's.
    assert [key for key, _, _ in tickets(province)] == ["commune:06613:communedown", "province:collector:collectordown"]
    with Session(province) as session:
        ticket = session.exec(select(Ticket).where(Ticket.problem_key == "province:collector:collectordown")).one()
        assert (ticket.scope, ticket.district_code, ticket.commune_code, ticket.source) == (
            "province",
            None,
            None,
            "alertmanager",
        )
        problem = session.exec(select(AlertProblem).where(AlertProblem.key == ticket.problem_key)).one()
        assert (problem.scope, problem.ticket_code) == ("province", ticket.code)
    resolved = payload("resolved", T0, T0 + timedelta(minutes=5), fingerprint="beef", device="",
                       alertname="CollectorDown", job="collector")  # fmt: skip
    client.post("/api/v1/integrations/alertmanager", json=resolved)
    assert tickets(province)[1][1] == "resolved"


def test_a_province_alert_whose_rule_says_no_ticket_opens_only_its_problem(province: Engine) -> None:
    rules = AlertRules(kinds={"collectordown": KindRule(Priority.P2, ticket=False)})
    body = parse_payload(payload("firing", T0, fingerprint="beef", device="", alertname="CollectorDown", job="c1"))
    with session_scope(province) as session:
        result = receive(body, session=session, now=T0, rules=rules, ticket_policy=TicketPolicy())
    assert result.opened == ["province:c1:collectordown"] and result.tickets == []
    assert tickets(province) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 422),
        (json.dumps({"version": "3", "alerts": []}).encode(), 422),
        (
            json.dumps({"version": "4", "groupKey": "x", "status": "firing", "alerts": [{"status": "odd"}]}).encode(),
            422,
        ),
    ],
)
def test_bad_payloads_are_refused_with_the_reason(client: TestClient, body: bytes, status: int) -> None:
    response = client.post("/api/v1/integrations/alertmanager", content=body)
    assert response.status_code == status
    assert response.json()["errors"]


def test_the_receiver_needs_its_bearer_token(client: TestClient) -> None:
    response = client.post(
        "/api/v1/integrations/alertmanager", json=payload("firing", T0), headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401


def test_a_real_alertmanager_opens_and_resolves_a_ticket(
    am_settings: Settings, province: Engine, tmp_path: Path
) -> None:
    port, am_port = free_port(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(am_settings, province), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: fleet-monitor
  group_by: [alertname, device]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: fleet-monitor
    webhook_configs:
      - url: http://127.0.0.1:{port}/api/v1/integrations/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {TOKEN}
""",
        encoding="utf-8",
    )
    am = subprocess.Popen(
        [
            "prometheus-alertmanager",
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{am_port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        starts = datetime.now(UTC) - timedelta(minutes=1)
        alert = {
            "labels": {"alertname": "BoardDark", "device": "06613-ST", "severity": "critical"},
            "annotations": {"summary": "Máy điều khiển đài không phản hồi"},
            "startsAt": starts.isoformat(),
        }
        assert httpx.post(f"{base}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
        _wait_for(lambda: [s for _, s, _ in tickets(province)] == ["new"], "the firing alert to open a ticket")
        [(key, _, source)] = tickets(province)
        assert (key, source) == ("device:06613-ST:boarddark", "alertmanager")
        alert["endsAt"] = datetime.now(UTC).isoformat()
        httpx.post(f"{base}/api/v2/alerts", json=[alert], timeout=5)
        _wait_for(lambda: [s for _, s, _ in tickets(province)] == ["resolved"], "the resolution to resolve it")
    finally:
        am.terminate()
        am.wait(timeout=10)
        server.should_exit = True
        thread.join(timeout=10)


def _wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_device_kind_label_of_fleet_metrics_does_not_name_the_problem(client: TestClient, province: Engine) -> None:
    alert = payload("firing", T0, fingerprint="d00d", kind="radio_cluster", problem_kind="offline")
    assert client.post("/api/v1/integrations/alertmanager", json=alert).json()["opened"] == [
        "device:06613-CL01:offline"
    ]


# --- alerts Alertmanager stops repeating (silenced, resolved lost, replaced) -------------------------


def _deliver(engine: Engine, body: dict, now: datetime) -> None:
    with Session(engine) as session:
        receive(parse_payload(body), session=session, now=now, rules=AlertRules(), ticket_policy=TicketPolicy())
        session.commit()


def _events(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [e.note or "" for e in session.exec(select(TicketEvent).order_by(col(TicketEvent.id)))]


def test_a_firing_alert_alertmanager_stops_repeating_is_resolved_as_stale_and_reopens_if_sent_again(
    am_settings: Settings, province: Engine
) -> None:
    rules = AlertRules(alertmanager_stale_after=timedelta(hours=13))
    dispatcher = Dispatcher(province, rules=rules)
    _deliver(province, payload("firing", T0), T0)
    for hours in (4, 8, 12, 16):  # repeat_interval 4 h: each repeat keeps it alive
        _deliver(province, payload("firing", T0), T0 + timedelta(hours=hours))
        dispatcher.reconcile_tickets(T0 + timedelta(hours=hours, minutes=30))
    assert [status for _, status, _ in tickets(province)] == ["new"], "repeated alerts do not expire"

    # then it is silenced: Alertmanager sends nothing more, not even "resolved"
    dispatcher.reconcile_tickets(T0 + timedelta(hours=16 + 12))
    assert [status for _, status, _ in tickets(province)] == ["new"], "not before 13 h without a repeat"
    dispatcher.reconcile_tickets(T0 + timedelta(hours=16 + 13, minutes=1))
    assert [status for _, status, _ in tickets(province)] == ["resolved"]
    assert any("has not repeated this alert for 13 h" in note for note in _events(province))
    with Session(province) as session:
        problem = session.exec(select(AlertProblem)).one()
        assert problem.status == "resolved"

    # the silence ends and the same episode is still firing: the problem and its ticket come back
    _deliver(province, payload("firing", T0), T0 + timedelta(hours=30))
    assert [status for _, status, _ in tickets(province)] == ["reopened"]
    # and a resolved for it resolves as usual
    _deliver(province, payload("resolved", T0, T0 + timedelta(hours=31)), T0 + timedelta(hours=31))
    assert [status for _, status, _ in tickets(province)] == ["resolved"]


def test_a_ticket_left_open_by_a_resolved_alertmanager_problem_is_resolved_by_reconciliation(
    am_settings: Settings, province: Engine
) -> None:
    _deliver(province, payload("firing", T0), T0)
    with Session(province) as session:  # the problem resolved, but its ticket's resolution was lost
        problem = session.exec(select(AlertProblem)).one()
        problem.status = "resolved"
        session.add(problem)
        session.commit()
    Dispatcher(province, rules=AlertRules(alertmanager_stale_after=None)).reconcile_tickets(T0 + timedelta(minutes=10))
    assert [(status, source) for _, status, source in tickets(province)] == [("resolved", "alertmanager")]


def test_the_expiry_is_a_rule_of_the_deployment(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    assert load_rules(None).alertmanager_stale_after == timedelta(hours=13)
    path.write_text("alertmanager_stale_after_s: 0\n")
    assert load_rules(path).alertmanager_stale_after is None, "0: never expire"
    path.write_text("alertmanager_stale_after_s: 50400\n")
    assert load_rules(path).alertmanager_stale_after == timedelta(hours=14)
    path.write_text("alertmanager_stale_after_s: -1\n")
    with pytest.raises(ConfigError, match="alertmanager_stale_after_s"):
        load_rules(path)


def test_concurrent_duplicate_deliveries_all_succeed_with_one_ticket(am_settings: Settings, province: Engine) -> None:
    """An HA pair of Alertmanagers posts the same notification at the same moment (and retries)."""
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with Session(province) as session:
                barrier.wait()
                receive(
                    parse_payload(payload("firing", T0)),
                    session=session,
                    now=T0,
                    rules=AlertRules(),
                    ticket_policy=TicketPolicy(),
                )
                session.commit()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert tickets(province) == [("device:06613-CL01:clustersilent", "new", "alertmanager")]


def test_prometheus_alert_of_unheld_shards_opens_no_second_ticket(client: TestClient, province: Engine) -> None:
    """The service opens the unheld shards' ticket itself (monitor.alerts.collector_watch): Prometheus' alert for
    the same outage is a problem to see, not a second ticket."""
    unheld = payload("firing", T0, fingerprint="5ha4d", device="", alertname="FleetCollectorShardsUnheld", job="web")
    assert client.post("/api/v1/integrations/alertmanager", json=unheld).json()["opened"] == [
        "province:web:fleetcollectorshardsunheld"
    ]
    assert tickets(province) == []
