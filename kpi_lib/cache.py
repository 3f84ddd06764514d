"""Multi-level cache for KPI answers: L1 in-process, L2 Redis, L3 materialized views, L4 base tables.

A cached answer is keyed by the question and by the *effective data version* of the time range it
covers: the newest batch that touched any day in that range. A new batch therefore makes stale
answers for its days impossible to serve, while answers about closed periods keep their key and
stay cached. Versions come from ``ops.batches``; each process keeps a compact per-day map of them
and fetches only batches newer than it has seen (one indexed query per lookup).

L3/L4 are not stores here: the query planner reads a materialized view for the days it reflects
(``ops.mv_state``) and the hourly base tables for the days after. :class:`DataVersions` tells it
where that boundary lies.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
from cachetools import TTLCache

from . import warehouse
from .config import settings

log = logging.getLogger(__name__)

LEVELS = ("L1", "L2", "L3", "L4")


@dataclass
class Stats:
    """Hit/miss counters per level. ``L3``/``L4`` count answers computed from each layer."""

    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    misses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("L1", "L2"), 0))

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.hits.values())
        return {
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "hit_ratio_l1": round(self.hits["L1"] / total, 3) if total else None,
            "entries_l1": _l1.entries(),
            "bytes_l1": _l1.bytes,
        }


stats = Stats()
_FLUSH_EVERY_S = 10.0
_last_flush = 0.0
_dirty = False


def _touch() -> None:
    """Counters changed: publish them to ops.cache_stats at most every few seconds."""
    global _last_flush, _dirty
    _dirty = True
    now = time.monotonic()
    if now - _last_flush >= _FLUSH_EVERY_S:
        _last_flush = now
        flush_stats()


def flush_stats() -> None:
    global _dirty
    if not _dirty:
        return
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        try:  # never start a server just to record counters (at exit it may have been stopped)
            conn = warehouse.connect_raw(autocommit=True, start=False)
        except Exception as exc:  # noqa: BLE001
            log.debug("no warehouse to flush cache stats to: %s", exc)
            return
    try:
        conn.execute(
            "insert into ops.cache_stats (process, hits, misses) values (%s, %s, %s) "
            "on conflict (process) do update set hits = excluded.hits, misses = excluded.misses, updated_at = now()",
            [f"{socket.gethostname()}:{os.getpid()}", json.dumps(stats.hits), json.dumps(stats.misses)],
        )
        _dirty = False
    except psycopg.Error as exc:  # counters are best effort; never fail a query over them
        log.debug("could not flush cache stats: %s", exc)


atexit.register(flush_stats)


def count_hit(level: str) -> None:
    """A hit answered above this module (the API's kept answers): counted, published later."""
    global _dirty
    stats.hits[level] += 1
    _dirty = True


def shared_stats(within_s: int = 3600) -> dict[str, dict[str, int]]:
    """Counters summed over every process that reported in the last ``within_s`` seconds."""
    flush_stats()
    rows = (
        _version_conn()
        .execute(
            "select hits, misses from ops.cache_stats where updated_at > now() - make_interval(secs => %s)",
            [within_s],
        )
        .fetchall()
    )
    hits = dict.fromkeys(LEVELS, 0)
    misses = {"L1": 0, "L2": 0}
    for h, m in rows:
        for k, v in h.items():
            hits[k] = hits.get(k, 0) + v
        for k, v in m.items():
            misses[k] = misses.get(k, 0) + v
    return {"hits": hits, "misses": misses, "processes": len(rows)}


# --- data versions --------------------------------------------------------------------------------


_PROBE = (
    "select (select coalesce(max(version), 0) from ops.batches), "
    "(select coalesce(sum(refreshed_version), 0) from ops.mv_state)"
)
VERSION_PROBE = _PROBE  # "did anything change?": the API's kept answers are keyed by its result too
_DETAILS = (
    "select 0, max(version), (touched_from at time zone ops.business_tz())::date as d1, "
    "(touched_to at time zone ops.business_tz())::date as d2, null "
    "from ops.batches where version > %s group by d1, d2 "
    "union all select 1, refreshed_version, null, null, mv_name from ops.mv_state"
)


class DataVersions:
    """What changed when: the current version, per-day versions, and each view's freshness."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0
        self._day_version: dict[date, int] = {}
        self._index: tuple[np.ndarray, np.ndarray] | None = None
        self._mv: dict[str, int] = {}
        self._pending: list[tuple[int, date, date]] = []  # batches newer than some view
        self._probe: tuple | None = None  # (latest version, sum of view versions) at the last sync

    def reset(self) -> None:
        with self._lock:
            self.__init__()

    def sync(self) -> int:
        """Fetch batches newer than the last seen one and the views' state.

        Returns the current data version. Uses a plain psycopg connection per thread: this runs
        before every cached answer, and a pooled SQLAlchemy checkout costs more than the query.
        """
        for attempt in (1, 2):
            conn = _version_conn()
            try:
                # a cheap probe first (two index lookups); the details only when something moved
                probe = conn.execute(_PROBE).fetchone()
                if probe == self._probe:
                    return self.version
                rows = conn.execute(_DETAILS, [self.version]).fetchall()
                break
            except psycopg.OperationalError:
                _local.conn = None
                if attempt == 2:
                    raise
        with self._lock:
            for kind, v, d_from, d_to, mv in rows:
                if kind == 1:
                    self._mv[mv] = v
                    continue
                self.version = max(self.version, v)
                if d_from is None:
                    continue
                d_to = d_to or d_from
                d = d_from
                while d <= d_to:
                    if self._day_version.get(d, 0) < v:
                        self._day_version[d] = v
                    d += timedelta(days=1)
                self._pending.append((v, d_from, d_to))
                self._index = None
            oldest = min(self._mv.values(), default=0)
            self._pending = [p for p in self._pending if p[0] > oldest]
            self._probe = probe
        return self.version

    def range_version(self, start: date, end: date) -> int:
        """Newest version that touched any day in [start, end)."""
        with self._lock:
            if self._index is None:  # rebuilt lazily after new batches: queries far outnumber batches
                days = sorted(self._day_version)
                self._index = (
                    np.array([d.toordinal() for d in days], dtype=np.int64),
                    np.array([self._day_version[d] for d in days], dtype=np.int64),
                )
            ords, vers = self._index
            lo, hi = np.searchsorted(ords, [start.toordinal(), end.toordinal()])
            return int(vers[lo:hi].max()) if hi > lo else 0

    def views_version(self) -> int:
        """Changes whenever any materialized view is refreshed (and only then)."""
        with self._lock:
            return sum(self._mv.values())

    def mv_valid_before(self, mv: str) -> date | None:
        """First day a materialized view may be stale on (None: fully current; date.min: never built)."""
        with self._lock:
            refreshed = self._mv.get(mv)
            if refreshed is None:
                return date.min
            touched = [d_from for v, d_from, _ in self._pending if v > refreshed]
            return min(touched) if touched else None


versions = DataVersions()
_local = threading.local()


def _version_conn() -> psycopg.Connection:
    key = (settings().database_url, str(settings().home))
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or getattr(_local, "key", None) != key:
        conn = warehouse.connect_raw(autocommit=True)
        _local.conn, _local.key = conn, key
    return conn


# --- L1: in-process TTL/LRU with a memory bound ---------------------------------------------------


class _L1:
    """In-process LRU with a byte budget (KPI_CACHE_MAX_MB) and a time to live (KPI_CACHE_TTL_S):
    cachetools' TTLCache sized by each entry's bytes, behind a lock (callbacks and the live hub
    read it from several threads).

    A key is ``question:version``. Versions only grow in a process, so once a question's answer
    for a newer version is stored, its older answers can never be asked for again: they are
    dropped at once instead of waiting for the LRU. With a new version every few hundred
    milliseconds, a live worker used to fill its whole budget with such dead answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: TTLCache | None = None
        self._shape: tuple[int, float] | None = None
        self._latest: dict[str, str] = {}  # question -> the key of its newest stored answer

    def _store(self) -> TTLCache:
        cfg = settings()  # re-read: tests and the CLI change the budget at run time
        shape = (cfg.cache_max_mb * 1024 * 1024, cfg.cache_ttl_s)
        if shape != self._shape:
            self._cache = TTLCache(maxsize=shape[0], ttl=shape[1], timer=time.monotonic, getsizeof=_size_of)
            self._shape = shape
            self._latest.clear()
        return self._cache

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._store().get(key)
        return None if item is None else item[0]

    def put(self, key: str, value: Any, size: int) -> None:
        with self._lock:
            store = self._store()
            if size > store.maxsize:  # larger than the whole budget: not cached at all
                return
            question = key.rpartition(":")[0]
            if question:
                older = self._latest.get(question)
                if older is not None and older != key:
                    (kind_old, v_old), (kind, v) = _stamp(older), _stamp(key)
                    if kind_old == kind and v_old > v:
                        return  # a slower thread's answer for a version already superseded
                    store.pop(older, None)
                self._latest[question] = key
                if len(self._latest) > 2 * len(store) + 1024:  # forget questions the LRU dropped
                    self._latest = {q: k for q, k in self._latest.items() if k in store}
            store[key] = (value, size)

    def clear(self) -> None:
        with self._lock:
            self._store().clear()
            self._latest.clear()

    def entries(self) -> int:
        with self._lock:
            return len(self._store())

    @property
    def bytes(self) -> int:
        with self._lock:
            return int(self._store().currsize)


def _size_of(item: tuple[Any, int]) -> int:
    return item[1]


def _stamp(key: str) -> tuple[str, int]:
    """A key's version part as (kind, number): ``q:42`` -> ("", 42), ``q:views7`` -> ("views", 7)."""
    suffix = key.rpartition(":")[2]
    digits = suffix.lstrip("abcdefghijklmnopqrstuvwxyz")
    return (suffix[: len(suffix) - len(digits)], int(digits) if digits.isdigit() else -1)


_l1 = _L1()


# --- L2: Redis, shared by every process -----------------------------------------------------------

_redis_client = None
_redis_url: str | None = None
_redis_down_until = 0.0
REDIS_RETRY_S = 30.0  # after a Redis error, L1 only for this long, then Redis is tried again


def _redis():
    """The Redis client when REDIS_URL is set and reachable; None otherwise (L1 only)."""
    global _redis_client, _redis_url, _redis_down_until
    url = settings().redis_url
    if not url:
        return None
    if time.monotonic() < _redis_down_until:
        return None
    if _redis_client is None or _redis_url != url:
        import redis

        _redis_client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _redis_url = url
    return _redis_client


def _redis_failed(exc: Exception) -> None:
    global _redis_down_until
    log.warning("Redis unavailable (%s); using the in-process cache only for %.0f s", exc, REDIS_RETRY_S)
    _redis_down_until = time.monotonic() + REDIS_RETRY_S


def encode(df: pd.DataFrame, meta: dict) -> bytes:
    """Arrow IPC: compact, typed and fast for DataFrames; metadata rides in the schema."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"kpi": json.dumps(meta, default=str).encode()}
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as w:
        w.write_table(table)
    return sink.getvalue()


def decode(blob: bytes) -> tuple[pd.DataFrame, dict]:
    table = pa.ipc.open_stream(blob).read_all()
    meta = json.loads(table.schema.metadata.get(b"kpi", b"{}"))
    return table.to_pandas(), meta


def make_key(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def get(key: str) -> tuple[pd.DataFrame, dict, str] | None:
    """Look a key up in L1, then L2. Returns (frame, metadata, level) or None."""
    _touch()
    hit = _l1.get(key)
    if hit is not None:
        stats.hits["L1"] += 1
        return hit[0], hit[1], "L1"
    stats.misses["L1"] += 1
    r = _redis()
    if r is None:
        return None
    try:
        blob = r.get("kpi:q:" + key)
    except Exception as exc:  # any redis error: degrade to L1 only
        _redis_failed(exc)
        return None
    if blob is None:
        stats.misses["L2"] += 1
        return None
    df, meta = decode(blob)
    stats.hits["L2"] += 1
    _l1.put(key, (df, meta), entry_size(df, meta))
    return df, meta, "L2"


#: what a small DataFrame costs beyond its columns' bytes (its index, block manager and column
#: objects): measured 5.3 KB for a 30-row, 2-column frame whose columns hold 1.1 KB
FRAME_OVERHEAD = 4_608


def entry_size(df: pd.DataFrame, meta: dict) -> int:
    """An L1 entry's real memory, near enough for a budget: the frame's bytes, its object overhead
    and its metadata (SQL, parameters, provenance). Counting the columns alone undercounted ~5x, so a
    256 MB budget let a live worker hold more than a gigabyte of superseded answers."""
    return int(df.memory_usage(deep=True).sum()) + FRAME_OVERHEAD + 3 * len(json.dumps(meta, default=str))


def put(key: str, df: pd.DataFrame, meta: dict) -> None:
    _l1.put(key, (df, meta), entry_size(df, meta))
    r = _redis()
    if r is None:
        return
    try:
        r.set("kpi:q:" + key, encode(df, meta), ex=int(settings().cache_ttl_s))
    except Exception as exc:
        _redis_failed(exc)


def record_layer(level: str) -> None:
    stats.hits[level] += 1


def clear() -> None:
    """Empty L1 (and forget versions); L2 entries expire on their own or change key."""
    _l1.clear()
    versions.reset()


def as_local_date(ts: datetime | date) -> date:
    return ts if not isinstance(ts, datetime) else ts.date()
