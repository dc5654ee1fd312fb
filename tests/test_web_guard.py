"""The guard at the web process's door, on a small app of its own: request ids, unexpected errors logged
once, the JSON decoding path with its depth limit and NUL refusal."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from monitor.web import problems
from monitor.web.bodies import MAX_DEPTH, BodyRefused, api_router, decode_json
from monitor.web.guard import GuardLimits, RequestGuard
from monitor.web.problems import DatabaseOutage, install_problem_handlers

LIMITS = GuardLimits(
    max_body_bytes=10_000,
    max_upload_bytes=100_000,
    body_idle_timeout_s=2,
    body_timeout_s=5,
    client_max_receiving=4,
    client_max_active=4,
    queue_timeout_s=1,
)


class Note(BaseModel):
    text: str
    tags: list[list[str]] = []


def small_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestGuard, limits=LIMITS, is_upload=lambda method, path: path == "/upload")
    router = api_router()

    @router.post("/notes")
    def take(note: Note) -> dict[str, str]:
        return {"text": note.text}

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    app.include_router(router)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(small_app(), raise_server_exceptions=False)


def test_every_answer_carries_a_request_id_and_problems_carry_it_too(client: TestClient) -> None:
    answer = client.post("/notes", json={"text": "ok"})
    assert answer.status_code == 200 and len(answer.headers["x-request-id"]) >= 8
    refused = client.post("/notes", json={"nope": 1}, headers={"X-Request-ID": "zalo-1234-abcd"})
    assert refused.status_code == 422
    assert refused.headers["x-request-id"] == "zalo-1234-abcd" == refused.json()["request_id"]
    odd = client.get("/boom", headers={"X-Request-ID": "<script>"})  # not a sane id: replaced
    assert odd.headers["x-request-id"] != "<script>"


def test_an_unexpected_error_is_logged_once_with_the_request_id_and_answered_as_a_problem(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = client.get("/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    request_id = answer.json()["request_id"]
    assert request_id in answer.json()["detail"]
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and request_id in logged[0].getMessage()
    assert "a bug" not in answer.text  # no internals shown


def test_json_nested_deeper_than_the_limit_is_a_422_not_a_recursion_error(client: TestClient) -> None:
    for depth in (MAX_DEPTH + 1, 1_000, 100_000):
        body = '{"text": "x", "tags": ' + "[" * depth + "]" * depth + "}"
        answer = client.post("/notes", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code in (413, 422), depth
        if answer.status_code == 422:
            assert "nested deeper than" in answer.json()["errors"][0]["reason"]
    fine = client.post("/notes", json={"text": "x", "tags": [["a"]]})
    assert fine.status_code == 200


def test_a_nul_character_is_refused_in_json_and_in_the_address(client: TestClient) -> None:
    answer = client.post("/notes", json={"text": "tr\u0000am"})
    assert answer.status_code == 422
    assert "NUL" in answer.json()["errors"][0]["reason"]
    assert client.get("/boom", params={"q": "a\x00b"}).json()["errors"] == [
        {"field": "q", "reason": "a NUL character is not allowed"}
    ]


def test_a_body_over_the_cap_is_a_413_and_uploads_have_their_own_cap(client: TestClient) -> None:
    big = json.dumps({"text": "x" * 20_000})
    answer = client.post("/notes", content=big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert client.post("/upload", content=b"x" * 50_000).status_code == 404  # past the guard: no such route


def test_decode_json_walks_without_recursing() -> None:
    assert decode_json(b'{"a": [1, {"b": "c"}]}') == {"a": [1, {"b": "c"}]}
    with pytest.raises(BodyRefused):
        decode_json("[" * 40 + "]" * 40)
    with pytest.raises(BodyRefused):
        decode_json('{"k\\u0000": 1}')


def test_an_empty_pool_answers_503_with_retry_after_and_healthz_says_degraded_then_recovers(
    demo_cast, tmp_path
) -> None:
    from monitor.config import load_settings
    from monitor.db import make_engine
    from monitor.web.app import create_app
    from tests.conftest import TEST_SECRET, login

    url = demo_cast.url.render_as_string(hide_password=False)
    settings = load_settings(
        database_url=url, data_dir=tmp_path, secret_key=TEST_SECRET, database_pool_size=1, database_pool_timeout_s=0.5
    )
    engine = make_engine(settings)
    with TestClient(create_app(settings, engine)) as client:
        headers = login(client, "caoloc")
        held = [engine.connect() for _ in range(1 + 10)]  # the pool and its overflow, all taken
        try:
            busy = client.get("/api/v1/tickets", headers=headers)
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "2"
            assert busy.json()["title"] == "Service busy"
            health = client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
        finally:
            for connection in held:
                connection.close()
        assert client.get("/api/v1/tickets", headers=headers).status_code == 200
        assert client.get("/healthz").json()["status"] == "ok"
    engine.dispose()


def test_a_database_outage_is_told_in_a_line_then_a_line_a_minute_then_once_it_answers_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(problems, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    outage = DatabaseOutage(repeat_s=60)
    refused = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused\nsecond line"))
    with caplog.at_level(logging.INFO, logger="monitor.web.problems"):
        outage.answered()  # every statement calls it: nothing to say while all is well
        for _ in range(400):  # a busy API: four requests a second for 100 s
            clock[0] += 0.25
            outage.failed(refused)
        outage.answered()
        outage.answered()
    assert [record.getMessage() for record in caplog.records] == [
        "database unavailable: connection refused; answering 503 until it is back",
        "database still unavailable: 241 requests answered 503 in 60 s",
        "the database answers again: 400 requests were answered 503 over 100 s",
    ]
