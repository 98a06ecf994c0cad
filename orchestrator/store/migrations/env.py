"""Alembic environment: runs the orchestrator's migrations on the connection or URL it is given.

Three ways in, in this order: a live connection passed by `orchestrator.store.db` (the usual path), a URL
from the command line (`alembic -x url=... upgrade head`), the `sqlalchemy.url` of the Config, and last the
orchestrator's default database URL (`$ORCHESTRATOR_DATABASE_URL` or the SQLite file in the state folder).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from orchestrator.store import db
from orchestrator.store.models import Base

target_metadata = Base.metadata

# Only the `alembic` command line has an ini file (the repo root's alembic.ini) with logging settings.
if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    return url or db.default_database_url()


def run_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        url=db.normalize_url(_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = db.make_engine(_url())
    try:
        with engine.begin() as own_connection:
            _configure_and_run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
