"""Fixtures: real databases (SQLite files and a real PostgreSQL server), the province, the demo fleet.

Each test that takes `engine` runs twice, on SQLite and on PostgreSQL. Each gets a fresh database
cloned from one migrated at the start of the session (a file copy, or CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.config import Mode, Settings, load_settings
from monitor.db import make_engine, session_scope, upgrade
from monitor.inventory.units import init_province, load_units
from tests.postgres import PostgresServer

TEST_SECRET = "test-secret-key-not-a-placeholder"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MONITOR_* variable of the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("MONITOR_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    # Not under pytest's tmp folder: that is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="monitor-test-pg-"))
    server = PostgresServer(base).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> str:
    """A PostgreSQL database migrated once, cloned by each test."""
    admin = sa.create_engine(pg_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("CREATE DATABASE monitor_template"))
    admin.dispose()
    engine = make_engine(load_settings(database_url=pg_server.url("monitor_template")))
    upgrade(engine)
    engine.dispose()
    return "monitor_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(load_settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    with engine.connect() as c:  # fold the WAL into the file so that a copy holds everything
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _settings_for(url: str, data_dir: Path) -> Settings:
    return load_settings(database_url=url, data_dir=data_dir, secret_key=TEST_SECRET)


def _fresh_database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "monitor.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return server.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings pointing at a fresh, migrated database of each backend."""
    return _settings_for(_fresh_database_url(request, request.param, tmp_path), tmp_path)


@pytest.fixture
def sqlite_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings pointing at a fresh, migrated SQLite database only (for tests about files and the CLI)."""
    return _settings_for(_fresh_database_url(request, "sqlite", tmp_path), tmp_path)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def province(engine: Engine) -> Engine:
    """A database holding Lạng Sơn's 11 districts and 200 communes (2020 structure)."""
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
    return engine


@pytest.fixture
def collector_settings(province: Engine, tmp_path: Path) -> Settings:
    """A collector's settings on `province`, with short poll timeouts (the simulator answers on loopback)."""
    return load_settings(
        database_url=province.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
        http_timeout_s=1.0,
        snmp_timeout_s=0.5,
        snmp_retries=0,
    )


@pytest.fixture
def session(province: Engine) -> Iterator[Session]:
    with Session(province, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database of each backend holding the demo fleet (seed 1), shared by one module's read-only tests."""
    from monitor.inventory.demo import seed_demo

    tmp = tmp_path_factory.mktemp("demo")
    engine = make_engine(_settings_for(_fresh_database_url(request, request.param, tmp), tmp))
    with session_scope(engine) as session:
        seed_demo(session=session, seed=1)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def demo_cast(demo_engine: Engine) -> Engine:
    """The demo database with the fixed cast of users (see monitor/auth/cast.py)."""
    from monitor.auth.cast import seed_cast

    with session_scope(demo_engine) as session:
        seed_cast(session=session)
    return demo_engine


def login(client: Any, username: str, password: str | None = None) -> dict[str, str]:
    """Sign in through the API; returns the headers that carry the bearer token."""
    from monitor.auth.cast import DEMO_PASSWORD

    response = client.post("/api/v1/auth/login", json={"username": username, "password": password or DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    return load_settings(mode=Mode.DEMO, data_dir=tmp_path / "data")
