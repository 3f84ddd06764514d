"""Reads for people from PostgreSQL streaming replicas, never older than what the user has seen.

With ``DATABASE_REPLICA_URL`` (one URL or several, comma separated) the KPI queries behind the
dashboards, Ask and the API read from a replica, as the same least-privileged reader role and in the
same row scope as :func:`kpi_lib.warehouse.read` (roles, grants and row security are replicated).
Everything that writes (ingest, migrations, view refreshes, incidents, the audit log) and the data
version itself stay on the primary.

Read-your-version: when this process learns of a new data version (``kpi_lib.cache.versions``), it
reads the primary's WAL insert position once. That position is past the commit of every version it
has seen, so a replica whose ``pg_last_wal_replay_lsn()`` has reached it holds that data. A replica
behind it gets ``KPI_REPLICA_WAIT_MS`` to catch up; after that the read goes to the primary. A replica
that cannot be reached (or fails mid-query) is skipped for ``KPI_REPLICA_RETRY_S`` and the read goes
to the primary: people see no error, and the replica is used again once it answers.

>>> with replicas.read() as conn:      # doctest: +SKIP
...     conn.exec_driver_sql("select count(*) from gold.sales_daily").scalar()
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL

from . import cache, warehouse
from . import scope as row_scope
from .config import settings

log = logging.getLogger(__name__)

# Where reads went: "replica", "primary" (no replica configured), "lagging" and "down" (fell back).
stats: Counter[str] = Counter()

_CAUGHT_UP = "select pg_last_wal_replay_lsn() is null or pg_last_wal_replay_lsn() >= cast(%s as pg_lsn)"


class Replica:
    """One replica: its reader engine and whether it is usable now."""

    def __init__(self, url: str, reader: URL) -> None:
        u = warehouse._normalise(url)
        self.url = u.set(
            username=reader.username, password=reader.password, database=u.database or reader.database
        )
        self.name = f"{self.url.host or 'socket'}:{self.url.port or 5432}"
        # the pid in the name: pg_stat_activity on a replica shows which process reads there
        self.engine = warehouse._pooled(self.url, f"kpi_lib replica reader {os.getpid()}", connect_timeout=2)
        self.down_until = 0.0

    def usable(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, exc: BaseException) -> None:
        if self.usable():
            log.warning(
                "replica %s unavailable (%s); reading from the primary for %.0f s",
                self.name,
                exc,
                settings().replica_retry_s,
            )
        self.down_until = time.monotonic() + settings().replica_retry_s
        self.engine.dispose()  # its pooled connections are dead: reconnect from scratch later

    def open(self, lsn: str | None) -> sa.Connection | None:
        """A connection in a read transaction that has replayed ``lsn`` (None: behind or down)."""
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            self.failed(exc)
            return None
        try:
            if lsn is None:
                return conn
            deadline = time.monotonic() + settings().replica_wait_ms / 1000
            while not conn.exec_driver_sql(_CAUGHT_UP, (lsn,)).scalar():
                conn.rollback()
                if time.monotonic() >= deadline:
                    stats["lagging"] += 1
                    conn.close()
                    return None
                time.sleep(0.01)
            return conn
        except sa.exc.DBAPIError as exc:
            conn.close()
            self.failed(exc)
            return None


_lock = threading.Lock()
_replicas: list[Replica] = []
_key: tuple | None = None
_turn = itertools.count()
_seen: tuple[tuple, str] | None = None  # (versions token, primary WAL position read after it)
_local = threading.local()


def configured() -> bool:
    return bool(settings().replica_urls)


def _pool() -> list[Replica]:
    global _replicas, _key
    cfg = settings()
    key = (cfg.replica_urls, cfg.database_url, str(cfg.home))
    with _lock:
        if _key != key:
            for r in _replicas:
                r.engine.dispose()
            reader = warehouse.reader_url() if cfg.replica_urls else None
            _replicas = [Replica(u, reader) for u in cfg.replica_urls]
            _key = key
        return _replicas


def dispose() -> None:
    """Close every replica connection (tests, after fork); they are rebuilt on the next read."""
    global _replicas, _key, _seen
    with _lock:
        for r in _replicas:
            r.engine.dispose()
        _replicas, _key, _seen = [], None, None


def _primary_conn() -> psycopg.Connection:
    """This thread's connection to the primary (for its WAL position), per warehouse."""
    key = (settings().database_url, str(settings().home))
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or getattr(_local, "key", None) != key:
        if conn is not None:
            conn.close()
        conn = _local.conn = warehouse.connect_raw(autocommit=True)
        _local.key = key
    return conn


def required_lsn() -> str:
    """The primary's WAL position at or after the newest data version this process has seen.

    Read again only when the version (or a view's refresh) moves. The insert position, not the
    write position: with ``synchronous_commit=off`` a visible commit may not be written yet.
    """
    global _seen
    token = (cache.versions.version, cache.versions.views_version())
    seen = _seen
    if seen is not None and seen[0] == token:
        return seen[1]
    try:
        lsn = _primary_conn().execute("select pg_current_wal_insert_lsn()::text").fetchone()[0]
    except psycopg.OperationalError:
        _local.conn = None
        lsn = _primary_conn().execute("select pg_current_wal_insert_lsn()::text").fetchone()[0]
    _seen = (token, lsn)
    return lsn


def _open_replica() -> tuple[Replica, sa.Connection] | None:
    pool = [r for r in _pool() if r.usable()]
    if not pool:
        if _replicas:
            stats["down"] += 1
        return None
    lsn = required_lsn()
    start = next(_turn)
    for i in range(len(pool)):  # round robin; the next replica when one is behind or down
        replica = pool[(start + i) % len(pool)]
        conn = replica.open(lsn)
        if conn is not None:
            return replica, conn
    if not any(r.usable() for r in pool):
        stats["down"] += 1
    return None


@contextmanager
def read(value: row_scope.RowScope | None = None) -> Iterator[sa.Connection]:
    """``with read() as conn:`` like :func:`kpi_lib.warehouse.read`, on a replica when one is
    configured, caught up and reachable; on the primary otherwise."""
    opened = _open_replica() if configured() else None
    if opened is None:
        if not configured():
            stats["primary"] += 1
        _local.served_by = "primary"
        with warehouse.read(value) as conn:
            yield conn
        return
    replica, conn = opened
    _local.served_by = replica.name
    token = warehouse.scope_token(value if value is not None else row_scope.current())
    try:
        conn.exec_driver_sql("select set_config('kpi.scope', %s, true)", (token,))
        stats["replica"] += 1
        yield conn
        conn.commit()
    finally:
        conn.close()


def served_by() -> str | None:
    """Where this thread's last read went: a replica's host:port, or "primary"."""
    return getattr(_local, "served_by", None)


def fetch(statement: Any, params: dict[str, Any] | None = None) -> tuple[list, list[str]]:
    """Rows and column names of one query through :func:`read`. A replica that fails mid-query
    (stopped, or a query cancelled by recovery) is skipped and the query runs on the primary."""
    try:
        with read() as conn:
            result = conn.execute(statement, params or {})
            return result.fetchall(), list(result.keys())
    except sa.exc.OperationalError as exc:
        name = served_by()
        if name in (None, "primary"):
            raise
        for r in _replicas:
            if r.name == name:
                r.failed(exc)
        stats["down"] += 1
        _local.served_by = "primary"
        with warehouse.read() as conn:
            result = conn.execute(statement, params or {})
            return result.fetchall(), list(result.keys())


def status() -> list[dict[str, Any]]:
    """Each configured replica: reachable or not, and how far its replay is behind the primary."""
    out = []
    if not configured():
        return out
    primary_lsn = _primary_conn().execute("select pg_current_wal_insert_lsn()::text").fetchone()[0]
    for r in _pool():
        row: dict[str, Any] = {"name": r.name, "up": False, "lag_bytes": None, "replay_lsn": None}
        try:
            with r.engine.connect() as conn:
                standby, lsn, lag = conn.exec_driver_sql(
                    "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                    " pg_wal_lsn_diff(cast(%s as pg_lsn), pg_last_wal_replay_lsn())",
                    (primary_lsn,),
                ).one()
            row.update(up=True, standby=standby, replay_lsn=lsn, lag_bytes=max(0, int(lag or 0)))
        except sa.exc.DBAPIError as exc:
            row["error"] = str(exc.orig).strip().splitlines()[0]
        out.append(row)
    return out


def _after_fork() -> None:
    """A forked worker (``--num-procs``) must not share its parent's sockets: it opens its own."""
    global _replicas, _key, _seen
    for r in _replicas:
        r.engine.dispose(close=False)
    _replicas, _key, _seen = [], None, None
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_after_fork)
