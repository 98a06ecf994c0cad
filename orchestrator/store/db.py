"""Connecting to the state database and migrating it.

One URL names the database everywhere: SQLite (`sqlite:///path`, the embedded default under the state
folder) or Postgres (`postgresql://…` as people write it; the psycopg 3 driver is filled in). Migrations are
Alembic revisions shipped inside this package and run in code, so no alembic.ini is needed to use them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.logs import get_logger

# Defined with the other settings (the CLI's option help reads them without importing SQLAlchemy).
from orchestrator.settings import DATABASE_URL_ENV as DATABASE_URL_ENV
from orchestrator.settings import SQLITE_FILE_NAME as SQLITE_FILE_NAME
from orchestrator.settings import default_database_url as default_database_url

if TYPE_CHECKING:
    from alembic.config import Config

log = get_logger(__name__)

# How long a SQLite writer waits for another (a worker, the CLI) before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long to wait for Postgres to accept a connection before reporting it unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 10


class DatabaseUnavailableError(OrchestratorError):
    """The database could not be reached or opened; the message names where it was looked for."""


class SchemaOutOfDateError(OrchestratorError):
    """The database has not been migrated to the schema this version of the orchestrator needs."""


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            "not a database URL; expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB", key=_mask(url)
        ) from exc


def _mask(url: str) -> str:
    """The URL with any password hidden, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def display_url(url: str) -> str:
    """The URL as people should see it in messages: normalised, password hidden."""
    return _mask(normalize_url(url))


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for what people write: `postgres://` and `postgresql://` get the psycopg 3 driver.

    Pure: no folder is made here (`make_engine` makes a SQLite file's folder). Other schemes are refused,
    since the migrations are written and tested for SQLite and Postgres only.
    """
    parsed = _parse(url.strip())
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.render_as_string(hide_password=False)
    raise ConfigError(
        f"unsupported database {backend!r}; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
        key=_mask(url),
    )


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _where(url: URL) -> str:
    """Where a database lives, in the words of an error message: host and port, or the file."""
    if url.get_backend_name() == "sqlite":
        file = _sqlite_file(url)
        return f"SQLite file {file}" if file else "in-memory SQLite database"
    server = f"{url.host}:{url.port or 5432}" if url.host else "on the local socket"
    return f"Postgres server {server}, database {url.database!r}"


def make_engine(url: str, **engine_options: Any) -> Engine:
    """An Engine for the URL; a SQLite file's folder is made, and connection failures become clear errors.

    SQLite gets foreign keys (off by default there), WAL (readers do not block the writer) with
    `synchronous = NORMAL`, a busy timeout, and `BEGIN IMMEDIATE` transactions: with several processes
    writing, a deferred transaction that later wants to write can fail at once with "database is locked"
    instead of waiting its turn.
    """
    normalized = make_url(normalize_url(url))
    options: dict[str, Any] = {}
    if normalized.get_backend_name() == "sqlite":
        file = _sqlite_file(normalized)
        if file is not None:
            try:
                file.expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailableError(
                    f"cannot make the folder for the SQLite database {file}: {exc.strerror or exc}"
                ) from exc
    else:
        options["pool_pre_ping"] = True
        options["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    options.update(engine_options)
    try:
        engine = create_engine(normalized, **options)
    except (ImportError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"the database driver {normalized.drivername!r} is not installed; "
            "leave the driver out (postgresql://…) to use psycopg 3",
            key=_mask(url),
        ) from exc
    if normalized.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    _explain_connection_failures(engine, normalized)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:  # noqa: ARG001
        # Take transaction control away from the sqlite3 module, so `begin` below decides how they start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives the process being
        # killed (what resuming a rollout relies on); only a power loss can take back the last few, and a
        # rollout resumed from an earlier step redoes it idempotently. FULL would cost an fsync per step.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _explain_connection_failures(engine: Engine, url: URL) -> None:
    """Turn "could not connect" into one line naming the database, instead of a driver traceback."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # Only failures to open a connection; errors of statements on a live connection pass through.
        if context.connection is not None or not isinstance(context.sqlalchemy_exception, DBAPIError):
            return
        cause = str(context.original_exception).strip().splitlines()
        reason = cause[0] if cause else type(context.original_exception).__name__
        raise DatabaseUnavailableError(f"cannot connect to the {_where(url)}: {reason}") from (
            context.original_exception
        )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the CLI prints what it just wrote)."""
    return sessionmaker(engine, expire_on_commit=False)


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    """The Engine a session factory is bound to, for Core statements that need no Session."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the session factory is not bound to an Engine")
    return bind


# --- migrations -------------------------------------------------------------------------------------------
# Alembic is imported inside these functions: it is a third of a second that commands which only read and
# write state (every command but `db`) should not pay at startup.


def _migrations_path() -> str:
    return str(resources.files("orchestrator.store") / "migrations")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config built in code: the scripts inside this package, and the database URL if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _migrations_path())
    if url is not None:
        # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this version of the orchestrator ships.

    Each script in migrations/versions is named after its revision, a four-digit number
    (`0008_prmode.py` is revision "0008", whose down_revision is the one before), so the head is the
    highest number there. Listing the folder instead of asking Alembic's ScriptDirectory keeps Alembic
    unimported (about 60 ms) for the commands that only check the schema;
    `tests/integration/test_store_migrations.py` holds the naming and Alembic's head to this.
    """
    versions = Path(_migrations_path()) / "versions"
    numbers = sorted(path.name.split("_", 1)[0] for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    if not numbers:
        raise OrchestratorError("no migrations found in the orchestrator package")
    return numbers[-1]


def _run(url: str, action: str, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite's batch mode rebuilds a table (copy, DROP, rename), and with foreign keys on a DROP
                # deletes every row that references it with ON DELETE CASCADE: rebuilding `deployments` would
                # empty the audit trail. Off outside the transaction (SQLite ignores it inside one), checked
                # after, back on when the connection is handed back (the pool's connect hook sets it again).
                _foreign_keys(connection, on=False)
            with connection.begin():
                config = alembic_config(url)
                # env.py runs the migration on this connection, inside this transaction.
                config.attributes["connection"] = connection
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise OrchestratorError(
                            f"migrating {display_url(url)} left rows whose references are gone: {broken[:5]}"
                        )
            if sqlite:
                _foreign_keys(connection, on=True)
    except CommandError as exc:
        # Alembic's usage errors: a revision that does not exist, or one on the wrong side of the current.
        raise ConfigError(
            f"cannot {action} the database {display_url(url)} to {revision!r}: {exc} "
            f"(known revisions: base, {', '.join(known_revisions())})"
        ) from exc
    finally:
        engine.dispose()
    log.debug("database migrated", action=action, revision=revision, url=display_url(url))


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    # On the DB-API connection itself, outside any transaction (the engine's `begin` hook would open one).
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    cursor.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    cursor.close()


def known_revisions() -> list[str]:
    """The migrations this orchestrator ships, oldest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database forward to `revision` (creating it, for SQLite, if it does not exist)."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database back to `revision` ("base" drops every table the orchestrator made)."""
    _run(url, "downgrade", revision)


VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def current_revision(url_or_engine: str | Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated.

    Read from Alembic's version table directly, as `MigrationContext.get_current_revision` reads it:
    importing `alembic.runtime` for that one SELECT cost about 0.1 s of every command that opens the
    store (a fifth of `whoami`). `tests/integration/test_store_migrations.py` holds the two to the same
    answer at every revision.
    """
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            revisions = [
                row[0] for row in connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
            ]
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()
    if len(revisions) > 1:  # the migrations are one line: a branch point means someone else's schema
        raise OrchestratorError(
            f"the database's {VERSION_TABLE} table holds several revisions ({', '.join(sorted(revisions))}); "
            "the orchestrator's migrations have one head"
        )
    return revisions[0] if revisions else None


def is_known_revision(revision: str) -> bool:
    """Whether this orchestrator ships the migration `revision` (False: a newer orchestrator made it)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def check_schema(engine: Engine) -> None:
    """Fail with what to do if the database is not at the schema this code expects."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaOutOfDateError(
            f"the database {where} has no orchestrator tables yet; run `orchestrator db upgrade`"
        )
    if not is_known_revision(current):
        raise SchemaOutOfDateError(
            f"the database {where} is at schema revision {current}, made by a newer orchestrator "
            f"(this one knows up to {head}); upgrade the orchestrator"
        )
    raise SchemaOutOfDateError(
        f"the database {where} is at schema revision {current}, this orchestrator needs {head}; "
        "run `orchestrator db upgrade`"
    )


def ensure_schema(engine: Engine) -> None:
    """The rule every command follows: the embedded SQLite database is created or migrated on first use
    (it is private to this machine); a shared database (Postgres) must be migrated on purpose with
    `orchestrator db upgrade`, so this only checks it."""
    if engine.dialect.name == "sqlite":
        if current_revision(engine) != head_revision():
            upgrade(engine.url.render_as_string(hide_password=False))
    else:
        check_schema(engine)


def open_sessions(url: str) -> sessionmaker[Session]:
    """Sessions on the state database, its schema made ready by `ensure_schema`'s rule."""
    engine = make_engine(url)
    ensure_schema(engine)
    return session_factory(engine)
