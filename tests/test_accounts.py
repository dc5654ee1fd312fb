"""Accounts: personal API tokens scoped like their owner, disabling people, the list of people, and sign-in
throttling that slows guessing down without ever locking a person out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from monitor.auth.cast import DEMO_PASSWORD, seed_cast
from monitor.auth.models import Role
from monitor.auth.service import create_user, get_user
from monitor.auth.throttle import ThrottleRules, admit, client_key
from monitor.auth.tokens import TOKEN_PREFIX, create_token
from monitor.cli import app as cli_app
from monitor.config import Settings, load_settings
from monitor.db import session_scope, utcnow
from monitor.web.app import create_app
from tests.conftest import TEST_SECRET, login

Cli = Callable[..., Any]


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _cli_for(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("MONITOR_DATABASE_URL", _url(engine))
    monkeypatch.setenv("MONITOR_SECRET_KEY", TEST_SECRET)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(cli_app, list(args), input=input, catch_exceptions=False)

    return invoke


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- personal API tokens, disabling, the list of people (the demo's cast, one database per module) ----------


@pytest.fixture(scope="module")
def client(demo_cast: Engine) -> Iterator[TestClient]:
    settings = load_settings(database_url=_url(demo_cast), secret_key=TEST_SECRET)
    with TestClient(create_app(settings, demo_cast)) as client:
        yield client


@pytest.fixture
def cli(demo_cast: Engine, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return _cli_for(demo_cast, monkeypatch)


def _new_token(cli: Cli, username: str, *args: str) -> str:
    result = cli("users", "token", "create", username, *args)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith(TOKEN_PREFIX)
    return token


def test_a_personal_token_works_as_bearer_and_is_scoped_exactly_like_its_owner(client: TestClient, cli: Cli) -> None:
    dinh_lap = login(client, "dinhlap")
    commune = client.get("/api/v1/communes", params={"district": "189", "limit": 1}, headers=dinh_lap).json()
    reported = client.post(
        "/api/v1/tickets",
        json={"title": "Bảng tin không sáng", "commune_code": commune["items"][0]["code"]},
        headers=dinh_lap,
    )
    assert reported.status_code == 201, reported.text

    token = _bearer(_new_token(cli, "caoloc", "--days", "30"))
    assert client.get("/api/v1/auth/me", headers=token).json()["username"] == "caoloc"
    districts = {t["district_code"] for t in client.get("/api/v1/tickets", headers=token).json()["items"]}
    assert districts <= {"183"}
    assert client.get(f"/api/v1/tickets/{reported.json()['code']}", headers=token).status_code == 404
    assert client.get("/api/v1/tickets", params={"district": "189"}, headers=token).status_code == 404
    # and it changes things like its owner, without a CSRF token (a browser never sends it by itself)
    own = client.post("/api/v1/tickets", json={"title": "Loa rè", "commune_code": "06190"}, headers=token)
    assert own.status_code == 201 and own.json()["district_code"] == "183"


def test_the_token_is_printed_once_and_never_listed(client: TestClient, cli: Cli, demo_cast: Engine) -> None:
    token = _new_token(cli, "kythuat", "--note", "máy tính bảng")
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 200
    listed = cli("users", "token", "list", "kythuat")
    assert listed.exit_code == 0
    assert "kythuat" in listed.output and "máy tính bảng" in listed.output and "active" in listed.output
    with demo_cast.connect() as c:
        hashes = [h for (h,) in c.execute(sa.text("SELECT token_hash FROM api_tokens"))]
    assert token not in listed.output and token[len(TOKEN_PREFIX) :] not in listed.output
    assert not any(h in listed.output for h in hashes)
    assert cli("users", "token", "list", "nobody").exit_code == 1


def test_an_expired_or_revoked_token_answers_401(client: TestClient, cli: Cli, demo_cast: Engine) -> None:
    with session_scope(demo_cast) as session:
        _, expired = create_token(
            get_user("caoloc", session=session), session=session, days=1, now=utcnow() - timedelta(days=2)
        )
    assert client.get("/api/v1/auth/me", headers=_bearer(expired)).status_code == 401

    token = _new_token(cli, "caoloc")
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 200
    token_id = next(
        line.split("\t")[0]
        for line in cli("users", "token", "list", "caoloc").output.splitlines()
        if "\tactive\t" in line
    )
    assert cli("users", "token", "revoke", token_id).exit_code == 0
    assert "already revoked" in cli("users", "token", "revoke", token_id).output
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 401
    assert client.get("/api/v1/auth/me", headers=_bearer(TOKEN_PREFIX + "made-up")).status_code == 401
    assert cli("users", "token", "revoke", "999999").exit_code == 1


def test_a_token_lives_at_most_a_year(cli: Cli) -> None:
    assert cli("users", "token", "create", "caoloc", "--days", "366").exit_code != 0
    assert cli("users", "token", "create", "caoloc", "--days", "0").exit_code != 0


def test_a_disabled_users_sessions_and_tokens_answer_401_at_once(client: TestClient, cli: Cli) -> None:
    password = "mat-khau-tam-thoi"
    added = cli(
        "users", "add", "tamthoi", "--name", "Cán bộ tạm", "--role", "officer", "--district", "183",
        "--password-stdin", input=password + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    session_token = login(client, "tamthoi", password)
    token = _bearer(_new_token(cli, "tamthoi"))
    assert client.get("/api/v1/auth/me", headers=session_token).status_code == 200
    assert client.get("/api/v1/auth/me", headers=token).status_code == 200

    assert "disabled" in cli("users", "disable", "tamthoi").output
    assert client.get("/api/v1/auth/me", headers=session_token).status_code == 401
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    refused = client.post("/api/v1/auth/login", json={"username": "tamthoi", "password": password})
    assert refused.status_code == 401
    assert "(disabled)" in cli("users", "list").output
    assert "already disabled" in cli("users", "disable", "tamthoi").output

    assert "enabled" in cli("users", "enable", "tamthoi").output
    assert client.get("/api/v1/auth/me", headers=token).status_code == 200  # a token not revoked works again
    assert client.get("/api/v1/auth/me", headers=session_token).status_code == 401  # sessions were ended
    assert client.post("/api/v1/auth/login", json={"username": "tamthoi", "password": password}).status_code == 200
    assert cli("users", "disable", "nobody").exit_code == 1


def test_session_tokens_and_cookies_still_sign_in(demo_cast: Engine) -> None:
    settings = load_settings(database_url=_url(demo_cast), secret_key=TEST_SECRET, cookie_secure=False)
    with TestClient(create_app(settings, demo_cast)) as browser:
        signed_in = browser.post("/api/v1/auth/login", json={"username": "caoloc", "password": DEMO_PASSWORD})
        assert "." not in signed_in.json()["token"]  # a session token never looks like a personal one
        assert browser.get("/api/v1/auth/me").json()["username"] == "caoloc"
        assert browser.get("/api/v1/auth/me", headers=_bearer(signed_in.json()["token"])).status_code == 200


def test_people_are_listed_to_everyone_within_their_scope(client: TestClient) -> None:
    def names(user: str, **params: str) -> set[str]:
        response = client.get("/api/v1/users", params=params, headers=login(client, user))
        assert response.status_code == 200, response.text
        return {person["username"] for person in response.json()}

    everyone = names("admin")
    assert {"admin", "lanhdao", "caoloc", "dinhlap", "kythuat"} <= everyone
    assert names("lanhdao") == everyone
    assert {"caoloc", "kythuat"} <= names("caoloc") and not names("caoloc") & {"admin", "lanhdao", "dinhlap"}
    assert names("kythuat") == names("caoloc")
    assert names("dinhlap") == {"dinhlap"}
    assert names("admin", district="189") == {"dinhlap"}
    assert names("caoloc", role="technician") == {"kythuat"}
    assert names("admin", role="leader") == {"lanhdao"}

    officer = login(client, "caoloc")
    assert client.get("/api/v1/users", params={"district": "189"}, headers=officer).status_code == 404
    assert client.get("/api/v1/users").status_code == 401
    person = next(p for p in client.get("/api/v1/users", headers=officer).json() if p["username"] == "kythuat")
    assert person == {
        "id": person["id"],
        "username": "kythuat",
        "full_name": "Kỹ thuật viên Cao Lộc",
        "role": "technician",
        "role_label": Role.TECHNICIAN.label_vi,
        "districts": ["183"],
        "active": True,
    }


# --- sign-in throttling (a fresh database each) --------------------------------------------------------------

A, B, SPRAYER = ("198.51.100.7", 40001), ("203.0.113.9", 40002), ("192.0.2.66", 40003)


@pytest.fixture
def cast(province: Engine) -> Engine:
    with session_scope(province) as session:
        seed_cast(session=session)
    return province


def _app(settings: Settings, engine: Engine, **overrides: Any) -> Any:
    return create_app(settings.model_copy(update=overrides), engine)


def _sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_wrong_passwords_slow_then_refuse_the_pair_never_the_person_elsewhere(settings: Settings, cast: Engine) -> None:
    app = _app(settings, cast)
    with TestClient(app, client=A) as attacker, TestClient(app, client=B) as officer:
        answers = [_sign_in(attacker, "caoloc", f"guess-{n}") for n in range(5)]
        assert [a.status_code for a in answers] == [401] * 5
        assert "retry-after" not in answers[3].headers and answers[4].headers["retry-after"] == "2"
        refused = _sign_in(attacker, "caoloc", "guess-6")
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 2
        assert refused.headers["content-type"] == "application/problem+json"
        assert _sign_in(attacker, "caoloc").status_code == 429  # even the right password, from this address
        # The person themself, from another address, is not held back at all.
        assert _sign_in(officer, "caoloc").status_code == 200
        assert _sign_in(attacker, "dinhlap").status_code == 200  # nor another name from the same address


def test_the_wait_grows_with_each_failure_and_decays_with_quiet(settings: Settings, cast: Engine) -> None:
    rules = ThrottleRules(free_failures=5, first_delay_s=2, max_delay_s=30, half_life_s=3600)
    now = utcnow()
    waits = []
    with Session(cast) as session:
        for _ in range(9):
            verdict = admit("caoloc", "198.51.100.7", session=session, rules=rules, now=now)
            session.commit()
            assert verdict.allowed
            waits.append(verdict.retry_after_s)
            if verdict.retry_after_s > 1:
                early = admit("caoloc", "198.51.100.7", session=session, rules=rules, now=now + timedelta(seconds=1))
                session.commit()
                assert not early.allowed and early.refused == "pair"
            now += timedelta(seconds=verdict.retry_after_s)
        assert waits == [0, 0, 0, 0, 2, 4, 8, 16, 30]  # capped at max_delay_s
        now += timedelta(seconds=60)
        assert admit("caoloc", "198.51.100.7", session=session, rules=rules, now=now).retry_after_s == 30
        session.commit()
        # a day of quiet: the count has halved 24 times, the next failure is free again
        later = now + timedelta(days=1)
        assert admit("caoloc", "198.51.100.7", session=session, rules=rules, now=later).retry_after_s == 0
        session.commit()


def test_a_right_password_clears_its_pair(settings: Settings, cast: Engine) -> None:
    with TestClient(_app(settings, cast), client=A) as client:
        assert [_sign_in(client, "caoloc", "typo").status_code for _ in range(4)] == [401] * 4
        assert _sign_in(client, "caoloc").status_code == 200
        assert [_sign_in(client, "caoloc", "typo").status_code for _ in range(4)] == [401] * 4


def test_an_address_spraying_many_names_is_refused_as_an_address(settings: Settings, cast: Engine) -> None:
    app = _app(settings, cast, login_address_max_names=6)
    with TestClient(app, client=SPRAYER) as sprayer, TestClient(app, client=B) as officer:
        names = ["caoloc", "dinhlap", "kythuat", "lanhdao", "admin", "nguyenvana"]
        assert [_sign_in(sprayer, name, "123456").status_code for name in names] == [401] * 6
        refused = _sign_in(sprayer, "tranthib", "123456")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 800
        assert _sign_in(sprayer, "caoloc").status_code == 429  # the whole address
        assert _sign_in(officer, "caoloc").status_code == 200  # and nobody else


def test_the_counters_survive_a_restart_and_are_shared_by_every_process(settings: Settings, cast: Engine) -> None:
    with TestClient(_app(settings, cast, login_first_delay_s=600), client=A) as before:
        assert [_sign_in(before, "kythuat", "x-guess").status_code for _ in range(5)] == [401] * 5
    with TestClient(_app(settings, cast, login_first_delay_s=600), client=A) as after:  # a new process, same database
        assert _sign_in(after, "kythuat", "x-guess").status_code == 429


def test_parallel_guesses_cannot_slip_past_the_count(cast: Engine) -> None:
    rules = ThrottleRules(free_failures=5)
    allowed: list[bool] = []
    start = threading.Barrier(12)

    def attempt() -> None:
        with Session(cast) as session:
            start.wait()
            verdict = admit("admin", "198.51.100.7", session=session, rules=rules)
            session.commit()
            allowed.append(verdict.allowed)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 5  # the 5th sets the first wait; the others were refused, not let through


def test_refused_sign_ins_are_in_the_audit_log(settings: Settings, cast: Engine) -> None:
    with session_scope(cast) as session:
        create_user(
            session=session, username="nghiviec", full_name="Đã nghỉ", role=Role.LEADER, password="mat-khau-cu-1"
        )
    app = _app(settings, cast, login_address_max_names=3)
    with TestClient(app, client=A) as a, TestClient(app, client=SPRAYER) as s, TestClient(app, client=B) as b:
        for _ in range(6):
            _sign_in(a, "caoloc", "wrong")  # 5 wrong_password, then too_many_failures
        for name in ("x1", "x2", "x3", "x4"):
            _sign_in(s, name, "wrong")  # 3 unknown_user, then address_refused
        with session_scope(cast) as session:
            get_user("nghiviec", session=session).active = False
        _sign_in(b, "nghiviec", "mat-khau-cu-1")
        admin = login(b, "admin")
        events = b.get("/api/v1/audit", params={"action": "sign_in_refused", "limit": 100}, headers=admin).json()
    reasons = [(e["target"], e["details"]["reason"], e["address"]) for e in events["items"]]
    assert sorted(reasons) == sorted(
        [("caoloc", "wrong_password", A[0])] * 5
        + [("caoloc", "too_many_failures", A[0])]
        + [(name, "unknown_user", SPRAYER[0]) for name in ("x1", "x2", "x3")]
        + [("x4", "address_refused", SPRAYER[0])]
        + [("nghiviec", "disabled", B[0])]
    )
    wrong = next(e for e in events["items"] if e["details"]["reason"] == "wrong_password")
    assert wrong["actor_name"] == "caoloc" and wrong["actor_id"] is not None and wrong["district_code"] == "183"


def test_ipv6_clients_are_counted_by_their_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("198.51.100.7") == "198.51.100.7"
    assert client_key(None) == "-"
