"""Alembic environment: runs against the engine that `monitor.db` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from monitor.models import metadata

config = context.config


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        raise RuntimeError("run migrations through `monitor db upgrade`, which supplies the database")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by dropping the old one: with foreign keys on, that drop would
            # cascade-delete the rows referring to it. SQLite ignores this pragma inside a transaction, so it
            # comes first; the keys are checked before committing, and turned on again for the pool's sake.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                connection.rollback()
                raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
            connection.commit()
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
