"""Landing micro-batches: one COPY transaction per batch (bronze, rejects, pending rows, NOTIFY the
movers), the :class:`Ingestor` that batches events from any thread, and :func:`ingest`. The mover
(``move``) takes landed batches on to silver and gold."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from .. import warehouse
from ..config import settings
from ..errors import IngestError, WarehouseError
from .move import LANDED, start_mover, wait_moved
from .validate import Batch, Validator

log = logging.getLogger(__name__)

RECONNECT_S = 120.0  # how long ingest and the broker consumer keep reconnecting before they give up


# --- writing one micro-batch ------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What a call to :func:`ingest` did."""

    received: int = 0
    landed: int = 0  # valid orders acknowledged in bronze (then moved to silver, or waiting)
    loaded: int = 0  # new orders in silver (0 on the fast path: not moved yet when it returns)
    duplicates: int = 0  # events seen before: no effect
    rejected: int = 0
    version: int | None = None
    batches: int = 0
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    land_ids: list[int] = field(default_factory=list)  # its rows in bronze.landings

    def add(self, other: IngestResult) -> None:
        self.received += other.received
        self.landed += other.landed
        self.land_ids.extend(other.land_ids)
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


def land_batch(conn: psycopg.Connection, batch: Batch, source: str) -> IngestResult:
    """Land one validated batch in a single transaction (the caller's connection, not autocommit):
    the raw events in ``bronze.events``, the refused ones in ``bronze.rejects`` with their reason, the
    valid orders and lines in ``bronze.pending_*`` under one ``bronze.landings`` row, then NOTIFY the
    movers. Once this commits the events are acknowledged: the mover takes them to silver and gold."""
    t0 = time.perf_counter()
    res = IngestResult(
        received=len(batch.events) + len(batch.rejects) + batch.duplicates,
        rejected=len(batch.rejects),
        duplicates=batch.duplicates,
        batches=1,
        reasons=[r[2] for r in batch.rejects[:20]],
    )
    if not res.received:
        return res
    land_id = conn.execute(
        "insert into bronze.landings (source, events, rejected, duplicates) values (%s, %s, %s, %s) "
        "returning land_id",
        [source, len(batch.orders), len(batch.rejects), batch.duplicates],
    ).fetchone()[0]
    # Raw events straight into bronze (append-only), the rows the mover needs next to them.
    _copy_rows(
        conn, "bronze.events", "event_id, source, payload", [(e, source, raw) for e, raw in batch.events]
    )
    _copy_rows(
        conn,
        "bronze.pending_orders",
        "land_id, order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source",
        [(land_id, *row) for row in batch.orders],
    )
    _copy_rows(
        conn,
        "bronze.pending_lines",
        "land_id, order_id, line_no, product_id, product_name, category, quantity, unit_price, discount, "
        "unit_cost",
        [(land_id, *row) for row in batch.lines],
    )
    _copy_rows(
        conn,
        "bronze.rejects",
        "source, event_id, row_data, reason",
        [(source, event_id, raw, reason) for event_id, raw, reason in batch.rejects],
    )
    conn.execute("select pg_notify(%s, %s)", [LANDED, str(land_id)])
    conn.commit()
    res.landed = len(batch.orders)
    res.land_ids.append(land_id)
    res.seconds = time.perf_counter() - t0
    return res


def moved_result(conn: psycopg.Connection, land_ids: list[int]) -> IngestResult:
    """What the landings ``land_ids`` came to once moved (moving them here if no mover has yet)."""
    res = IngestResult()
    for _, _events, _rejected, _dups, version, loaded, conflicts, reasons in wait_moved(conn, land_ids):
        res.loaded += loaded
        res.rejected += conflicts
        res.duplicates += _events - loaded - conflicts
        res.version = max(res.version or 0, version or 0) or None
        res.reasons.extend((reasons or [])[: max(0, 20 - len(res.reasons))])
    return res


def ingest(
    events: Iterable[dict | str | bytes],
    source: str = "python",
    batch_size: int | None = None,
    wait: bool = True,
) -> IngestResult:
    """Ingest events now, landed in micro-batches of ``batch_size`` (default ``KPI_BATCH_MAX_EVENTS``).

    ``wait=True`` (the default) returns once every event is in silver and gold (read your writes):
    the batches land first, then move in as few moves as the backlog allows. ``wait=False`` is the
    fast path: it returns once every batch is landed (acknowledged) and this process's background
    mover (or any other) takes them to silver and gold shortly after; ``loaded`` is then 0.
    Validation of the next batch overlaps the database work of the current one.
    """
    ing = Ingestor(source, interval_ms=3_600_000, max_events=batch_size, wait="close" if wait else False)
    for ev in events:
        ing.put(ev)
    return ing.close()


def _add_move(res: IngestResult, moved: IngestResult) -> None:
    res.loaded, res.version = moved.loaded, moved.version
    res.duplicates += moved.duplicates
    res.rejected += moved.rejected
    res.reasons.extend(moved.reasons[: max(0, 20 - len(res.reasons))])


class Ingestor:
    """A long-lived micro-batcher: ``put`` events from any thread; a batch closes every
    ``interval_ms`` or ``max_events``, whichever comes first, and is landed by a worker thread.
    ``wait=True`` (the default): the worker then waits until the batch is moved to silver and gold,
    moving it itself if no other mover has. ``wait=False`` is the fast path: the batch is done once
    landed, and a background mover in this process (``mover=True``) or elsewhere moves it.
    ``wait="close"``: batches are done once landed, and :meth:`close` moves them all (in as few
    moves as the backlog allows) before it returns the totals.
    ``on_commit(result, tokens)`` runs after each batch is done with the tokens passed to ``put`` (a
    broker acknowledges its messages there: a landed batch is durable). Producers block when two
    batches are waiting (backpressure)."""

    def __init__(
        self,
        source: str,
        interval_ms: int | None = None,
        max_events: int | None = None,
        on_commit: Callable[[IngestResult, list[Any]], None] | None = None,
        wait: bool | Literal["close"] = True,
        mover: bool = True,
    ) -> None:
        cfg = settings()
        self.source = source
        self.wait = wait
        if wait is False and mover:
            start_mover()
        self.interval = (interval_ms or cfg.batch_interval_ms) / 1000
        self.max_events = max_events or cfg.batch_max_events
        self.on_commit = on_commit
        self.total = IngestResult()
        self._validator = Validator(source)
        self._tokens: list[Any] = []
        self._opened_at: float | None = None
        self._cond = threading.Condition()
        self._ready: list[tuple[Batch, list[Any]]] = []
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"ingest-{source}", daemon=True)
        self._thread.start()

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
                res, conn = self._retrying(conn, lambda c, b=batch: land_batch(c, b, self.source))
                if self.wait is True and res.land_ids:
                    moved, conn = self._retrying(conn, lambda c, ids=res.land_ids: moved_result(c, ids))
                    _add_move(res, moved)
                self.total.add(res)
                if self.on_commit:
                    self.on_commit(res, tokens)
            if self.wait == "close" and self.total.land_ids:
                moved, conn = self._retrying(conn, lambda c: moved_result(c, self.total.land_ids))
                _add_move(self.total, moved)
        except BaseException as exc:  # surfaced to the producer on its next put/close
            log.exception("ingestion worker failed")
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            if conn is not None:
                conn.close()

    def _retrying(
        self, conn: psycopg.Connection | None, step: Callable[[psycopg.Connection], IngestResult]
    ) -> tuple[IngestResult, psycopg.Connection]:
        """Land a batch (or wait for its move); when the connection is lost (a server restart),
        reconnect and do it again for up to RECONNECT_S. Landing again is safe: a batch that did
        land moves as a no-op the second time (event and order ids). Errors on a healthy connection
        are not retried."""
        lost_at: float | None = None
        delay = 0.1
        while True:
            try:
                if conn is None or conn.closed:
                    # never start an embedded server that someone stopped
                    conn = warehouse.connect_raw(start=False)
                return step(conn), conn
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
