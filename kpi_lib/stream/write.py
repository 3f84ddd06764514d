"""Writing micro-batches: one transaction per batch (bronze, rejects, silver, gold, NOTIFY), and the
:class:`Ingestor` that batches events from any thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .. import warehouse
from ..config import settings
from ..errors import IngestError, WarehouseError
from .validate import Batch, Validator

log = logging.getLogger(__name__)

RECONNECT_S = 120.0  # how long ingest and the broker consumer keep reconnecting before they give up


# --- writing one micro-batch ------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What a call to :func:`ingest` did."""

    received: int = 0
    loaded: int = 0  # new orders in silver
    duplicates: int = 0  # events seen before: no effect
    rejected: int = 0
    version: int | None = None
    batches: int = 0
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    landed: int = 0  # fast path (stream.land): raw events acknowledged in bronze, moved later

    def add(self, other: IngestResult) -> None:
        self.received += other.received
        self.landed += other.landed
        self.loaded += other.loaded
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.version = other.version or self.version
        self.batches += other.batches
        self.seconds += other.seconds
        self.reasons.extend(other.reasons[: max(0, 20 - len(self.reasons))])


def _copy_rows(conn: psycopg.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    with conn.cursor().copy(f"copy {table} ({columns}) from stdin") as cp:
        for row in rows:
            cp.write_row(row)


_STAGE_DDL = """
create temp table if not exists _ingest_orders (like silver.orders) on commit delete rows;
create temp table if not exists _ingest_lines (like silver.order_lines) on commit delete rows;
create temp table if not exists _new_orders (order_id text, ordered_at timestamptz, customer_id text,
    region text, channel text, has_sale boolean) on commit delete rows;
create temp table if not exists _new_lines (like silver.order_lines) on commit delete rows;
"""


def write_batch(conn: psycopg.Connection, batch: Batch, source: str) -> IngestResult:
    """Land one validated batch in a single transaction (the caller's connection, not autocommit)."""
    t0 = time.perf_counter()
    res = IngestResult(
        received=len(batch.events) + len(batch.rejects) + batch.duplicates,
        rejected=len(batch.rejects),
        batches=1,
        reasons=[r[2] for r in batch.rejects[:20]],
    )
    conn.execute(_STAGE_DDL)
    # Raw events straight into bronze (append-only: staging them first only copied them twice).
    _copy_rows(
        conn, "bronze.events", "event_id, source, payload", [(e, source, raw) for e, raw in batch.events]
    )
    _copy_rows(
        conn,
        "_ingest_orders",
        "order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source",
        batch.orders,
    )
    _copy_rows(
        conn,
        "_ingest_lines",
        "order_id, line_no, product_id, product_name, category, quantity, unit_price, discount, unit_cost",
        batch.lines,
    )
    # New orders and their lines in one statement; anything seen before is skipped by the keys.
    conn.execute(
        "with new as (insert into silver.orders select * from _ingest_orders on conflict do nothing "
        "             returning order_id, ordered_at, customer_id, region, channel, has_sale), "
        "     l as (insert into silver.order_lines select i.* from _ingest_lines i join new using (order_id) "
        "           on conflict do nothing returning *), "
        "     nl as (insert into _new_lines select * from l) "
        "insert into _new_orders select * from new"
    )
    # Temp tables have no statistics and the plans need them; only the join keys matter.
    conn.execute("analyze _new_orders (order_id, customer_id, ordered_at), _new_lines (order_id)")
    res.loaded, first, last = conn.execute(
        "select count(*), min(ordered_at), max(ordered_at) from _new_orders"
    ).fetchone()
    # Orders not inserted were seen before: the same event again is a no-op (exactly-once effect);
    # the same order id under another event id is refused with the reason.
    rejects = list(batch.rejects)
    conflicts = 0
    if res.loaded < len(batch.orders):
        payloads = dict(batch.events)
        found = conn.execute(
            "select s.event_id, 'order ' || s.order_id || ' already exists (from ' || "
            "coalesce('event ' || o.event_id, o.source) || ')' "
            "from _ingest_orders s join silver.orders o on o.order_id = s.order_id "
            "where o.event_id is distinct from s.event_id "
            "and not exists (select 1 from _new_orders n where n.order_id = s.order_id)"
        ).fetchall()
        rejects.extend((event_id, payloads.get(event_id, ""), reason) for event_id, reason in found)
        conflicts = len(found)
        res.reasons.extend(reason for _, reason in found[: max(0, 20 - len(res.reasons))])
    _copy_rows(
        conn,
        "bronze.rejects",
        "source, event_id, row_data, reason",
        [(source, event_id, raw, reason) for event_id, raw, reason in rejects],
    )
    res.rejected += conflicts
    res.duplicates = len(batch.orders) - res.loaded - conflicts + batch.duplicates
    if res.loaded:
        conn.execute("select gold.apply_new_orders()")
        conn.execute(
            "insert into silver.products (product_id, product_name, category, unit_cost) "
            "select distinct on (product_id) product_id, product_name, category, unit_cost from _ingest_lines "
            "order by product_id on conflict (product_id) do nothing"
        )
        res.version = conn.execute(
            "select ops.bump_version('ingest', %s, %s, %s, %s, %s)",
            [source, first, last, res.loaded, res.rejected],
        ).fetchone()[0]
    elif res.rejected:
        res.version = conn.execute(
            "select ops.bump_version('rejects', %s, null, null, 0, %s)", [source, res.rejected]
        ).fetchone()[0]
    conn.commit()
    res.seconds = time.perf_counter() - t0
    return res


def ingest(
    events: Iterable[dict | str | bytes],
    source: str = "python",
    batch_size: int | None = None,
    fast: bool = False,
) -> IngestResult:
    """Ingest events now, in micro-batches of ``batch_size`` (default ``KPI_BATCH_MAX_EVENTS``).

    Returns after the last batch committed. Validation of the next batch overlaps the database
    work of the current one. ``fast=True``: each batch is only landed raw in bronze (acknowledged,
    ``result.landed``); this process's mover validates and moves it to silver and gold soon after
    (``stream.land``, ``stream.move``; ``stream.drain()`` waits for it).
    """
    if fast:
        from .land import Lander

        ing: Ingestor = Lander(source, interval_ms=3_600_000, max_events=batch_size)
    else:
        ing = Ingestor(source, interval_ms=3_600_000, max_events=batch_size)
    for ev in events:
        ing.put(ev)
    return ing.close()


class Ingestor:
    """A long-lived micro-batcher: ``put`` events from any thread; a batch closes every
    ``interval_ms`` or ``max_events``, whichever comes first, and is written by a worker thread.
    ``on_commit(result, tokens)`` runs after each commit with the tokens passed to ``put`` (a broker
    acknowledges its messages there). Producers block when two batches are waiting (backpressure)."""

    def __init__(
        self,
        source: str,
        interval_ms: int | None = None,
        max_events: int | None = None,
        on_commit: Callable[[IngestResult, list[Any]], None] | None = None,
    ) -> None:
        cfg = settings()
        self.source = source
        self.interval = (interval_ms or cfg.batch_interval_ms) / 1000
        self.max_events = max_events or cfg.batch_max_events
        self.on_commit = on_commit
        self.total = IngestResult()
        self._validator = self._buffer()
        self._tokens: list[Any] = []
        self._opened_at: float | None = None
        self._cond = threading.Condition()
        self._ready: list[tuple[Batch, list[Any]]] = []
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"ingest-{source}", daemon=True)
        self._thread.start()

    def _buffer(self) -> Validator:
        """What ``put`` adds events to and the writer takes batches from."""
        return Validator(self.source)

    def _write_one(self, conn: psycopg.Connection, batch: Any) -> IngestResult:
        return write_batch(conn, batch, self.source)

    def put(self, event: dict | str | bytes, token: Any = None) -> None:
        with self._cond:
            if self._error:
                raise IngestError(f"ingestion stopped: {self._error}") from self._error
            while len(self._ready) >= 2 and not self._error:
                self._cond.wait(0.5)
            if self._opened_at is None:
                self._opened_at = time.monotonic()
            self._validator.add(event)
            self._tokens.append(token)
            if len(self._validator) >= self.max_events:
                self._seal()

    def _seal(self) -> None:
        """Hand the open batch to the writer (caller holds the lock)."""
        self._ready.append((self._validator.take(), self._tokens))
        self._tokens = []
        self._opened_at = None
        self._cond.notify_all()

    def close(self, timeout: float = 300) -> IngestResult:
        """Flush what is buffered, stop the worker and return the totals."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._error:
            raise IngestError(f"ingestion failed: {self._error}") from self._error
        return self.total

    def _next(self) -> tuple[Batch, list[Any]] | None:
        with self._cond:
            while True:
                if self._ready:
                    item = self._ready.pop(0)
                    self._cond.notify_all()
                    return item
                if self._opened_at is not None and (
                    self._closing or time.monotonic() - self._opened_at >= self.interval
                ):
                    self._seal()
                    continue
                if self._closing:
                    return None
                wait = (
                    self.interval
                    if self._opened_at is None
                    else self.interval - (time.monotonic() - self._opened_at)
                )
                self._cond.wait(max(0.001, min(wait, 0.05)))

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        try:
            conn = warehouse.connect_raw()  # before the first batch closes: it must not wait for this
            while (item := self._next()) is not None:
                batch, tokens = item
                res, conn = self._write(conn, batch)
                self.total.add(res)
                if self.on_commit:
                    self.on_commit(res, tokens)
        except BaseException as exc:  # surfaced to the producer on its next put/close
            log.exception("ingestion worker failed")
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            if conn is not None:
                conn.close()

    def _write(self, conn: psycopg.Connection | None, batch: Any) -> tuple[IngestResult, psycopg.Connection]:
        """Write one batch; when the connection is lost (a server restart), reconnect and write it
        again for up to RECONNECT_S. Rewriting is safe: a batch that did commit is a no-op the second
        time (event and order ids). Errors on a healthy connection are not retried."""
        lost_at: float | None = None
        delay = 0.1
        while True:
            try:
                if conn is None or conn.closed:
                    # never start an embedded server that someone stopped
                    conn = warehouse.connect_raw(start=False)
                return self._write_one(conn, batch), conn
            except (psycopg.OperationalError, WarehouseError) as exc:
                if conn is not None and not conn.closed and not conn.broken:
                    raise
                if conn is not None:
                    conn.close()
                conn = None
                lost_at = lost_at or time.monotonic()
                if time.monotonic() - lost_at > RECONNECT_S:
                    raise
                log.warning("ingest: warehouse connection lost (%s); retrying the batch in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
