from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from monitor.config import load_settings
from monitor.db import UTCDateTime, current_revision, ensure_migrated, head_revision, make_engine, upgrade
from monitor.errors import DatabaseNotMigrated
from monitor.models import metadata


def test_migrations_build_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_an_empty_database_is_refused_with_what_to_run(tmp_path) -> None:
    engine = make_engine(load_settings(data_dir=tmp_path))
    with pytest.raises(DatabaseNotMigrated, match="run `monitor db upgrade`"):
        ensure_migrated(engine)
    upgrade(engine)
    ensure_migrated(engine)


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path) -> None:
    engine = make_engine(load_settings(data_dir=tmp_path, sqlite_busy_timeout_ms=4321))
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4321


def test_a_naive_datetime_is_refused_on_the_way_in() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), sa.dialects.sqlite.dialect())  # noqa: DTZ001


def test_the_database_enforces_unique_device_codes(province: Engine) -> None:
    insert = sa.text(
        "INSERT INTO devices (code, name, kind, commune_code, vendor, model, profile, protocol, address, "
        "interval_s, active, search_text, created_at, updated_at) VALUES ('D1', 'x', 'gateway', '05971', '', '', "
        "'p', 'heartbeat', '', 60, true, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with province.begin() as c:
        c.execute(insert)
    with pytest.raises(sa.exc.IntegrityError), province.begin() as c:
        c.execute(insert)
