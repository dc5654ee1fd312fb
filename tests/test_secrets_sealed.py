"""Secrets sealed at rest, on SQLite and PostgreSQL: a dump shows none, the service reads them, `monitor secrets
rotate` moves them to a new key, a missing key is named with its rows, and the senders and the SNMP poller get
the clear values (a real webhook receiver, aiosmtpd with STARTTLS and login, Debian's snmpd)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from monitor import sealing
from monitor.alerts.choices import ChannelKind
from monitor.alerts.models import NotificationChannel, NotificationDelivery
from monitor.alerts.notify import deliver_due, enqueue, open_senders
from monitor.alerts.notify import service as channels
from monitor.alerts.notify.schemas import ChannelCreate
from monitor.auth.cast import seed_cast
from monitor.cli import app as cli_app
from monitor.collectors.errors import FailureKind
from monitor.collectors.fleet_targets import load_targets
from monitor.collectors.liveness import Liveness
from monitor.collectors.mapping import failed_observation
from monitor.collectors.profiles import load_profiles
from monitor.collectors.runner import Collector
from monitor.collectors.snmp import SnmpPoller
from monitor.collectors.target import PollTarget
from monitor.config import Mode, Settings, load_settings
from monitor.db import utcnow
from monitor.errors import ConfigError
from monitor.health.models import DeviceHealthRow
from monitor.inventory.fleetfile import read_fleet_bytes
from monitor.inventory.models import Device
from monitor.inventory.service import apply_fleet_rows, validate_fleet_rows
from monitor.sealing import PREFIX, Keyring, SealingRefused, SealState, Unopened
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login
from tests.peers import SNMP_V3_CREDENTIALS, SYS_DESCR, Peer, start_snmpd
from tests.test_notify_support import (
    SMTP_PASSWORD,
    SMTP_USER,
    T0,
    WEBHOOK_SECRET,
    event,
    smtp_config,
    smtp_peer,
    webhook_peer,
)

HOOK_URL = "https://hooks.example.vn/services/T0001/B0002?token=url-token-0042"
BOT_TOKEN = "123456789:AAE-sealed-bot-token_xyz"
SMTP_SECRET = "mail-password-sealed-at-rest"
ZALO_SECRET, ZALO_REFRESH = "zalo-app-secret-0042", "zalo-refresh-token-0042"
COMMUNITY, LEGACY_COMMUNITY = "community-cao-loc-42", "legacy-community-in-clear"
HEADER = "code,name,kind,commune_code,parent_code,protocol,address,port,profile,interval_s,credentials\n"
REGISTRY = load_profiles()


def fleet_csv(*devices: tuple[str, str, str]) -> str:
    """SNMP devices of Đình Lập town: (code, port, credentials)."""
    lines = [
        f"{code},Thiết bị {code},gateway,06613,,snmp,127.0.0.1,{port},generic-mib2,60,{cred}"
        for code, port, cred in devices
    ]
    return HEADER + "\n".join(lines) + "\n"


def new_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Keyring]:
    """Make the process's keyring the one of `keys` (newest first) for this test."""

    def use(*keys: str) -> Keyring:
        keyring = Keyring(keys)
        monkeypatch.setattr(sealing, "_installed", keyring)
        return keyring

    return use


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """`monitor …` in this process, on the test's database, with MONITOR_SECRET_KEYS as given (None: unset)."""
    monkeypatch.setenv("MONITOR_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)

    def run(*args: str, secret_keys: str | None) -> Any:
        if secret_keys is None:
            monkeypatch.delenv("MONITOR_SECRET_KEYS", raising=False)
        else:
            monkeypatch.setenv("MONITOR_SECRET_KEYS", secret_keys)
        return CliRunner().invoke(cli_app, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def client(settings: Settings, province: Engine) -> Iterator[TestClient]:
    with Session(province) as session:
        seed_cast(session=session)
        session.commit()
    with TestClient(create_app(settings, province)) as client:
        yield client


def dump(engine: Engine) -> str:
    """Every row of every table, as a database dump would show them."""
    rows = []
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            rows += [repr(tuple(row)) for row in connection.execute(sa.text(f'SELECT * FROM "{table}"'))]
    return "\n".join(rows)


def raw_secrets(engine: Engine) -> list[str]:
    """The stored values of every channel secret and device credentials, as the database holds them."""
    with engine.connect() as connection:
        configs = connection.execute(sa.text("SELECT config FROM notification_channels ORDER BY id")).scalars()
        found = [
            value
            for config in configs
            for key, value in (config if isinstance(config, dict) else json.loads(config)).items()
            if key in ("secret", "password", "bot_token", "app_secret", "refresh_token", "access_token", "url")
            and value
        ]
        found += connection.execute(
            sa.text("SELECT credentials FROM devices WHERE credentials IS NOT NULL ORDER BY id")
        ).scalars()
    return found


def import_fleet(session: Session, text: str) -> None:
    rows = validate_fleet_rows(read_fleet_bytes(text.encode(), "fleet.csv"), session=session, source="fleet.csv")
    apply_fleet_rows(rows, session=session)
    session.commit()


def add_channel(session: Session, name: str, kind: ChannelKind, config: dict[str, Any]) -> NotificationChannel:
    channel = channels.create_channel(ChannelCreate(name=name, kind=kind, config=config), session=session, now=T0)
    session.commit()
    return channel


def put_in_clear(engine: Engine, channel_id: int, config: dict[str, Any], device_code: str, credentials: str) -> None:
    """Values as a database written before sealing existed holds them."""
    plain = sa.table("notification_channels", sa.column("id"), sa.column("config", sa.JSON))
    with engine.begin() as connection:
        connection.execute(sa.update(plain).where(plain.c.id == channel_id).values(config=config))
        connection.execute(
            sa.text("UPDATE devices SET credentials = :c WHERE code = :code"), {"c": credentials, "code": device_code}
        )


def stored_device(session: Session, code: str) -> Device:
    session.expire_all()
    return session.exec(select(Device).where(Device.code == code)).one()


# --- settings -----------------------------------------------------------------------------------


def test_keys_are_read_comma_separated_or_as_a_yaml_list_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = new_key(), new_key()
    monkeypatch.setenv("MONITOR_SECRET_KEYS", f" {first}, {second} ,")
    assert [k.get_secret_value() for k in load_settings().secret_keys] == [first, second]
    monkeypatch.delenv("MONITOR_SECRET_KEYS")
    config = tmp_path / "monitor.yaml"
    config.write_text(f"secret_keys:\n  - {second}\n  - {first}\n")
    monkeypatch.setenv("MONITOR_CONFIG_FILE", str(config))
    assert [k.get_secret_value() for k in load_settings().secret_keys] == [second, first]
    assert first not in repr(load_settings())
    monkeypatch.setenv("MONITOR_SECRET_KEYS", f"{first},not-a-fernet-key")
    with pytest.raises(ConfigError, match=r"MONITOR_SECRET_KEYS: key 2 of 2 is not a Fernet key") as refused:
        load_settings()
    assert "not-a-fernet-key" not in str(refused.value) and first not in str(refused.value)
    assert "Fernet.generate_key()" in str(refused.value)


def test_without_keys_the_demo_seals_under_its_public_key_and_production_refuses_to_store_a_secret() -> None:
    demo = Keyring.from_settings(load_settings(mode=Mode.DEMO))
    assert demo.seals_with_demo_key and demo.state(demo.seal("public")) is SealState.NEWEST
    production = Keyring.from_settings(load_settings())
    with pytest.raises(SealingRefused, match=r"MONITOR_SECRET_KEYS.*Fernet\.generate_key\(\)"):
        production.seal("public")
    assert production.open("public") == "public", "a secret stored in clear is still read"
    assert production.open(demo.seal("public")) == "public", "so is one under the demo key"
    real = Keyring([new_key()])
    unopened = production.open(real.seal("public"))
    assert isinstance(unopened, Unopened) and "MONITOR_SECRET_KEYS is not set" in unopened.reason
    with pytest.raises(ConfigError, match="public demo key"):
        Keyring([sealing.DEMO_KEY.decode()])


def test_a_process_started_by_a_command_refuses_to_seal_without_keys_and_a_bare_one_uses_the_demo_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sealing, "_installed", None)
    assert sealing.process_keyring().seals_with_demo_key, "tests and scripts: the demo key"
    monkeypatch.setenv(sealing.STRICT_VARIABLE, "1")  # what `monitor serve` leaves to its spawned web workers
    with pytest.raises(SealingRefused):
        sealing.seal("public")
    key = new_key()
    monkeypatch.setenv("MONITOR_SECRET_KEYS", key)
    assert Fernet(key.encode()).decrypt(sealing.seal("public").removeprefix(PREFIX).encode()) == b"public"


# --- writes and reads ---------------------------------------------------------------------------


def test_a_dump_holds_no_secret_after_writes_through_the_api_and_the_cli_and_the_service_reads_them(
    client: TestClient, province: Engine, cli: Callable[..., Any], keys: Callable[..., Keyring], tmp_path: Path
) -> None:
    key = new_key()
    keys(key)
    admin = login(client, "admin")
    configs = {
        "Hook Cao Lộc": ("webhook", {"url": HOOK_URL, "secret": WEBHOOK_SECRET}),
        "Bot tỉnh": ("telegram", {"bot_token": BOT_TOKEN}),
        "Thư tỉnh": (
            "email",
            {"smtp_host": "mail.langson.gov.vn", "username": "u", "password": SMTP_SECRET, "from_addr": "g@ls.vn"},
        ),
        "Zalo OA": ("zalo", {"app_id": "4321", "app_secret": ZALO_SECRET, "refresh_token": ZALO_REFRESH}),
    }
    ids = {}
    for name, (kind, config) in configs.items():
        answer = client.post(
            "/api/v1/notifications/channels", json={"name": name, "kind": kind, "config": config}, headers=admin
        )
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["id"]
    changed = client.patch(
        f"/api/v1/notifications/channels/{ids['Hook Cao Lộc']}", json={"config": {"language": "en"}}, headers=admin
    )
    assert changed.status_code == 200 and changed.json()["config"]["secret"] == "***set***"
    uploaded = client.post(
        "/api/v1/fleet/import",
        files={"file": ("fleet.csv", fleet_csv(("06613-A1", "161", COMMUNITY)).encode())},
        headers=admin,
    )
    assert uploaded.status_code == 200, uploaded.text
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(fleet_csv(("06613-A2", "161", SNMP_V3_CREDENTIALS)), encoding="utf-8")
    imported = cli("fleet", "import", str(fleet), secret_keys=key)
    assert imported.exit_code == 0, imported.output

    text = dump(province)
    for secret in (HOOK_URL, "url-token-0042", WEBHOOK_SECRET, BOT_TOKEN, SMTP_SECRET, ZALO_SECRET, ZALO_REFRESH,
                   COMMUNITY, SNMP_V3_CREDENTIALS, "authpass123"):  # fmt: skip
        assert secret not in text, secret
    assert all(value.startswith(PREFIX) for value in raw_secrets(province))

    # Read back through the service: the clear values; the API still shows none of them.
    with Session(province) as session:
        assert channels.get_channel(ids["Hook Cao Lộc"], session=session).config["secret"] == WEBHOOK_SECRET
        assert channels.get_channel(ids["Zalo OA"], session=session).config["refresh_token"] == ZALO_REFRESH
        assert stored_device(session, "06613-A1").credentials == COMMUNITY
        assert stored_device(session, "06613-A2").credentials == SNMP_V3_CREDENTIALS
    shown = client.get("/api/v1/notifications/channels", headers=admin).text
    shown += client.get("/api/v1/devices/06613-A2", headers=admin).text
    assert not any(s in shown for s in (WEBHOOK_SECRET, BOT_TOKEN, SMTP_SECRET, ZALO_SECRET, "url-token-0042"))
    assert "v3:monitor" not in shown and '"has_credentials":true' in shown


def test_outside_the_demo_a_secret_is_refused_without_keys_naming_the_variable_and_how_to_make_one(
    settings: Settings, client: TestClient, session: Session, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setattr(sealing, "_installed", Keyring.from_settings(settings))  # production, no key
    admin = login(client, "admin")
    refused = client.post(
        "/api/v1/notifications/channels", json={"name": "Bot", "kind": "telegram", "config": {"bot_token": BOT_TOKEN}},
        headers=admin,
    )  # fmt: skip
    assert refused.status_code == 503 and "MONITOR_SECRET_KEYS" in refused.json()["detail"]  # the deployment's gap
    assert "Fernet.generate_key()" in refused.json()["detail"]
    with pytest.raises(SealingRefused):
        import_fleet(session, fleet_csv(("06613-A1", "161", COMMUNITY)))
    session.rollback()
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(fleet_csv(("06613-A1", "161", COMMUNITY)), encoding="utf-8")
    imported = cli("fleet", "import", str(fleet), secret_keys=None)
    assert imported.exit_code == 1 and "refusing to store a secret in clear: set MONITOR_SECRET_KEYS" in imported.output
    assert session.exec(select(Device)).first() is None, "nothing was written"
    import_fleet(session, fleet_csv(("06613-A1", "161", "")))  # no credentials: nothing to seal
    assert stored_device(session, "06613-A1").credentials is None


# --- rotation -----------------------------------------------------------------------------------


def test_rotation_under_new_then_old_keys_leaves_everything_opened_by_the_new_key_alone(
    session: Session, cli: Callable[..., Any], keys: Callable[..., Keyring]
) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    old, new = new_key(), new_key()
    keys(old)
    hook = add_channel(session, "Hook Cao Lộc", ChannelKind.WEBHOOK, {"url": HOOK_URL, "secret": WEBHOOK_SECRET})
    mail = add_channel(session, "Thư", ChannelKind.EMAIL, {"smtp_host": "m.vn", "from_addr": "g@ls.vn"})
    import_fleet(
        session,
        fleet_csv(
            ("06613-A1", "161", COMMUNITY), ("06613-A2", "161", SNMP_V3_CREDENTIALS), ("06613-A3", "161", "public")
        ),
    )
    # Written before sealing existed: read as they are, sealed by the rotation.
    legacy = {"smtp_host": "m.vn", "from_addr": "g@ls.vn", "username": "u", "password": SMTP_SECRET}
    put_in_clear(engine, mail.id or 0, legacy, "06613-A3", LEGACY_COMMUNITY)
    session.expire_all()
    assert channels.get_channel(mail.id or 0, session=session).config["password"] == SMTP_SECRET
    assert stored_device(session, "06613-A3").credentials == LEGACY_COMMUNITY

    checked = cli("secrets", "check", secret_keys=old)
    assert checked.exit_code == 1, "clear secrets are not protected"
    assert "notification channels: 3 secrets in 2 rows: 2 under the newest key, 1 in clear" in checked.output
    assert "devices: 3 secrets in 3 rows: 2 under the newest key, 1 in clear" in checked.output

    rotated = cli("secrets", "rotate", secret_keys=f"{new},{old}")
    assert rotated.exit_code == 0, rotated.output
    assert (
        "notification channels: 3 secrets in 2 rows re-sealed under the newest key "
        "(they were 2 under an older key, 1 in clear)" in rotated.output
    )
    assert (
        "devices: 3 secrets in 3 rows re-sealed under the newest key (they were 2 under an older key, 1 in clear)"
        in rotated.output
    )

    only_new = Fernet(new.encode())
    values = raw_secrets(engine)
    assert len(values) == 6 and all(only_new.decrypt(v.removeprefix(PREFIX).encode()) for v in values)
    assert SMTP_SECRET not in dump(engine) and LEGACY_COMMUNITY not in dump(engine)
    keys(new)
    session.expire_all()
    assert channels.get_channel(hook.id or 0, session=session).config == {
        "language": "vi", "timeout_s": 10.0, "url": HOOK_URL, "secret": WEBHOOK_SECRET,
    }  # fmt: skip
    assert channels.get_channel(mail.id or 0, session=session).config["password"] == SMTP_SECRET
    assert [stored_device(session, c).credentials for c in ("06613-A1", "06613-A2", "06613-A3")] == [
        COMMUNITY, SNMP_V3_CREDENTIALS, LEGACY_COMMUNITY,
    ]  # fmt: skip
    again = cli("secrets", "check", secret_keys=new)
    assert again.exit_code == 0, again.output
    assert "devices: 3 secrets in 3 rows: 3 under the newest key" in again.output


def test_a_missing_key_is_a_clear_error_naming_the_rows_it_cannot_open(
    session: Session, client: TestClient, cli: Callable[..., Any], keys: Callable[..., Keyring]
) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    old, new = new_key(), new_key()
    keys(old)
    hook = add_channel(session, "Hook Cao Lộc", ChannelKind.WEBHOOK, {"url": HOOK_URL, "secret": WEBHOOK_SECRET})
    import_fleet(session, fleet_csv(("06613-A1", "161", COMMUNITY)))
    before = raw_secrets(engine)

    checked = cli("secrets", "check", secret_keys=new)
    assert checked.exit_code == 1
    assert f"channel {hook.id} 'Hook Cao Lộc' (secret, url)" in checked.output and "device 06613-A1" in checked.output
    assert "InvalidToken" not in checked.output and "Traceback" not in checked.output
    rotated = cli("secrets", "rotate", secret_keys=new)
    assert rotated.exit_code == 1 and "left as it was" in rotated.output and "device 06613-A1" in rotated.output
    assert raw_secrets(engine) == before, "nothing of a table is changed while one of its rows cannot be opened"

    keys(new)
    session.expire_all()
    stored = channels.get_channel(hook.id or 0, session=session).config["secret"]
    assert isinstance(stored, Unopened) and stored != WEBHOOK_SECRET
    admin = login(client, "admin")
    shown = client.get(f"/api/v1/notifications/channels/{hook.id}", headers=admin)
    assert shown.status_code == 200 and shown.json()["config"]["secret"] == shown.json()["config"]["url"] == "***set***"
    changed = client.patch(
        f"/api/v1/notifications/channels/{hook.id}", json={"config": {"language": "en"}}, headers=admin
    )
    assert changed.status_code == 422
    assert {e["field"] for e in changed.json()["errors"]} == {"config.secret", "config.url"}
    given = client.patch(
        f"/api/v1/notifications/channels/{hook.id}", json={"config": {"url": HOOK_URL, "secret": "a-new-secret-00042"}},
        headers=admin,
    )  # fmt: skip
    assert given.status_code == 200, "given again, the secrets are sealed under the key in use"
    assert raw_secrets(engine)[0] != before[0]


# --- the senders and the poller get the clear values --------------------------------------------


def test_the_webhook_and_smtp_senders_get_the_clear_secrets(
    session: Session, keys: Callable[..., Keyring], tmp_path: Path
) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    keys(new_key())

    async def scenario() -> Any:
        with smtp_peer(tmp_path) as smtp:
            async with webhook_peer() as hook:
                add_channel(session, "hook", ChannelKind.WEBHOOK, {"url": hook.url, "secret": WEBHOOK_SECRET})
                add_channel(session, "mail", ChannelKind.EMAIL, smtp_config(smtp, to=["duty@langson.gov.vn"]))
                assert WEBHOOK_SECRET not in dump(engine) and SMTP_PASSWORD not in dump(engine)
                enqueue(event(priority="P2"), session=session, now=T0)
                session.commit()
                async with open_senders(ssl_context=smtp.client_context) as senders:
                    report = await deliver_due(engine=engine, now=T0, senders=senders)
                return report, hook.received, smtp.mailbox

    report, received, mailbox = asyncio.run(scenario())
    assert report.sent == 2 and report.failed == report.retrying == 0
    assert [r.signature_ok for r in received] == [True], "signed with the clear secret"
    assert mailbox.logins == [SMTP_USER] and mailbox.tls == [True], "logged in with the clear password"


def test_a_notification_to_a_channel_whose_secret_cannot_be_opened_fails_with_that_reason(
    session: Session, keys: Callable[..., Keyring]
) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    keys(new_key())

    async def scenario() -> int:
        async with webhook_peer() as hook:
            add_channel(session, "Hook Cao Lộc", ChannelKind.WEBHOOK, {"url": hook.url, "secret": WEBHOOK_SECRET})
            enqueue(event(), session=session, now=T0)
            session.commit()
            keys(new_key())  # the key it was sealed under is gone
            report = await deliver_due(engine=engine, now=T0)
            assert report.retrying == 1
            return len(hook.received)

    assert asyncio.run(scenario()) == 0
    (delivery,) = session.exec(select(NotificationDelivery)).all()
    error = delivery.last_error or ""
    assert error.startswith("cannot open the stored secrets of notification channel 'Hook Cao Lộc' (secret, url)")
    assert "MONITOR_SECRET_KEYS" in error and "InvalidToken" not in error


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    with start_snmpd(tmp_path_factory.mktemp("snmpd")) as peer:
        yield peer


def test_the_snmp_poller_gets_the_clear_credentials_of_the_sealed_inventory(
    session: Session, agent: Peer, keys: Callable[..., Keyring]
) -> None:
    keys(new_key())
    import_fleet(
        session, fleet_csv(("06613-V2", str(agent.port), "public"), ("06613-V3", str(agent.port), SNMP_V3_CREDENTIALS))
    )
    session.expire_all()
    targets = [PollTarget.from_device(d) for d in session.exec(select(Device).order_by(col(Device.code)))]

    async def scenario() -> list[Any]:
        async with SnmpPoller(timeout_s=1, retries=0) as poller:
            return [await poller.poll(target, REGISTRY.get("generic-mib2")) for target in targets]

    for observation in asyncio.run(scenario()):
        assert observation.reachable, observation.error
        assert observation.readings["description"] == SYS_DESCR


def test_a_device_whose_credentials_cannot_be_opened_fails_as_the_collectors_fault_and_never_goes_down(
    settings: Settings, session: Session, keys: Callable[..., Keyring]
) -> None:
    engine: Engine = session.get_bind()  # type: ignore[assignment]
    keys(new_key())
    import_fleet(session, fleet_csv(("06613-A1", "161", COMMUNITY), ("06613-A2", "161", "public")))
    keys(new_key())
    collector = Collector(settings, engine, registry=REGISTRY, refresh_s=3600, flush_s=3600)
    targets = {t.code: t for t in load_targets(collector.engine)}
    assert isinstance(targets["06613-A1"].credentials, Unopened) and "Unopened" in repr(targets["06613-A1"].credentials)

    async def scenario() -> list[Any]:
        observations = []
        for _ in range(settings.failures_to_down + 1):
            observation = await collector.snmp.poll(targets["06613-A1"], REGISTRY.get("generic-mib2"))
            observations.append(observation)
            collector.deliver(observation)
            # the other device really fails: its failures count
            at = utcnow()
            collector.deliver(
                failed_observation(targets["06613-A2"].device_id, at, "snmp", FailureKind.TIMEOUT, "no reply")
            )
            await collector.flush()
        return observations

    observations = asyncio.run(scenario())
    error = observations[0].error or ""
    assert error.startswith("config: cannot open the stored credentials of device 06613-A1")
    assert "MONITOR_SECRET_KEYS" in error and not observations[0].reachable
    assert Liveness(utcnow).discounts(observations[0]), "the collector's fault says nothing of the device"
    assert collector.snmp.counters.outcome("snmp", "config") == settings.failures_to_down + 1
    with Session(engine) as fresh:
        unopened = fresh.get(DeviceHealthRow, targets["06613-A1"].device_id)
        failing = fresh.get(DeviceHealthRow, targets["06613-A2"].device_id)
    assert unopened is None or unopened.state != "down"
    assert failing is not None and failing.state == "down"
