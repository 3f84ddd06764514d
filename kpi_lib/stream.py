"""Real-time ingestion (COPY micro-batches) and change notifications (LISTEN/NOTIFY).

An event is one order with its lines::

    {"event_id": "e-1", "order_id": "SO1", "ordered_at": "2025-03-01T10:00:00Z", "customer_id": "C1",
     "region": "Europe", "channel": "Web",
     "lines": [{"product_id": "P1", "product_name": "Mug", "category": "Home", "quantity": 2,
                "unit_price": 9.5, "discount": 0.1, "unit_cost": 4.0}]}

``ingest(events)`` validates each event, then in ONE transaction: appends the raw events to
``bronze.events`` and the refused ones to ``bronze.rejects`` (with the reason), moves new orders to
silver (an event id or order id seen before changes nothing: exactly-once effect), recomputes the
gold hourly rollups for the hours touched, bumps the data version and ``NOTIFY kpi_changed``.

``subscribe(callback)`` / ``changes()`` deliver those notifications: one LISTEN connection per
process fans out to any number of listeners, reconnects by itself, and after a reconnect re-reads
the current version so no bump is lost.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from . import warehouse
from .config import settings
from .errors import IngestError, WarehouseError
from .schema import LINE_COLUMNS

log = logging.getLogger(__name__)

CHANNEL = "kpi_changed"
MAX_FUTURE = timedelta(days=1)
RECONNECT_S = 120.0  # how long ingest and the broker consumer keep reconnecting before they give up


# --- validation ------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Validated rows of one micro-batch, ready for COPY."""

    events: list[tuple[str, str]] = field(default_factory=list)  # (event_id, raw json)
    orders: list[tuple] = field(default_factory=list)
    lines: list[tuple] = field(default_factory=list)
    rejects: list[tuple[str | None, str, str]] = field(default_factory=list)  # (event_id, raw, reason)
    duplicates: int = 0  # the same event twice in one batch


def _num(value: Any, where: str) -> float:
    t = type(value)
    if t is float or t is int:
        if value != value or value in (math.inf, -math.inf):
            raise ValueError(f"{where} {value!r} is not a finite number")
        return float(value)
    if isinstance(value, bool):
        raise ValueError(f"{where} {value!r} is not a number")
    if isinstance(value, (int, float)):
        v = float(value)
    else:
        try:
            v = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{where} {value!r} is not a number") from None
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"{where} {value!r} is not a finite number")
    return v


def _time(value: Any, tz: ZoneInfo, now: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError(f"ordered_at {value!r} is not an ISO-8601 time")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"ordered_at {value!r} is not an ISO-8601 time") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)  # naive times are business-time-zone wall clock
    if ts > now + MAX_FUTURE:
        raise ValueError(f"ordered_at {value} is more than a day in the future")
    return ts


def _text(value: Any, default: str | None) -> str | None:
    if value is None:
        return default
    if type(value) is str and value and value[0] != " " and value[-1] != " " and not value.endswith(".0"):
        return value
    s = str(value).strip()
    if s.endswith(".0") and s[:-2].lstrip("-").isdigit():
        s = s[:-2]
    return s or default


class Validator:
    """Turns raw events into a :class:`Batch`, one at a time (so producers validate while the
    writer thread waits on the database)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tz = ZoneInfo(settings().timezone)
        self.batch = Batch()
        self._seen: dict[str, str] = {}  # order_id -> event_id within the current batch

    def take(self) -> Batch:
        """The batch so far; the next events start a new one."""
        batch, self.batch, self._seen = self.batch, Batch(), {}
        return batch

    def __len__(self) -> int:
        b = self.batch
        return len(b.events) + len(b.rejects) + b.duplicates

    def add(self, raw: dict | str | bytes) -> None:
        batch = self.batch
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                batch.rejects.append((None, raw.decode("utf-8", "replace")[:10000], f"not UTF-8 text: {exc}"))
                return
        text = raw if isinstance(raw, str) else None
        try:
            ev = json.loads(text) if text is not None else raw
        except ValueError as exc:
            batch.rejects.append((None, text[:10000], f"not valid JSON: {exc}"))
            return
        if text is None:
            text = json.dumps(ev, default=str)
        if not isinstance(ev, dict):
            batch.rejects.append(
                (None, text[:10000], "an event must be a JSON object with order fields and lines")
            )
            return
        event_id = _text(ev.get("event_id"), None) or _text(ev.get("order_id"), None)
        try:
            order_id, row, lines = self._order(ev, event_id)
        except (ValueError, TypeError) as exc:
            batch.rejects.append((event_id, text[:10000], str(exc)))
            return
        seen = self._seen.get(order_id)
        if seen is not None:
            if seen == event_id:
                batch.duplicates += 1
            else:
                batch.rejects.append(
                    (event_id, text[:10000], f"order {order_id} already exists (from event {seen})")
                )
            return
        self._seen[order_id] = event_id
        batch.events.append((event_id, text))
        batch.orders.append(row)
        batch.lines.extend(lines)

    def _order(self, ev: dict, event_id: str | None) -> tuple[str, tuple, list[tuple]]:
        order_id = _text(ev.get("order_id"), None)
        if order_id is None:
            raise ValueError("missing field 'order_id'")
        if "ordered_at" not in ev:
            raise ValueError("missing field 'ordered_at'")
        at = _time(ev["ordered_at"], self.tz, datetime.now(UTC))
        raw_lines = ev.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise ValueError("missing field 'lines' (a non-empty list of order lines)")
        lines = []
        has_sale = False
        for i, ln in enumerate(raw_lines):
            if not isinstance(ln, dict):
                raise ValueError(f"lines[{i}] is not an object")
            if "quantity" not in ln or "unit_price" not in ln:
                raise ValueError(
                    f"lines[{i}] is missing field '{'quantity' if 'quantity' not in ln else 'unit_price'}'"
                )
            q = _num(ln["quantity"], f"lines[{i}].quantity")
            p = _num(ln["unit_price"], f"lines[{i}].unit_price")
            if p < 0:
                raise ValueError(f"lines[{i}].unit_price is negative ({p:g})")
            d = ln.get("discount")
            d = 0.0 if not d else _num(d, f"lines[{i}].discount")
            if not 0 <= d <= 1:
                raise ValueError(f"lines[{i}].discount {d:g} is not a fraction between 0 and 1")
            c = ln.get("unit_cost")
            c = None if c is None or c == "" else _num(c, f"lines[{i}].unit_cost")
            pid = _text(ln.get("product_id"), "Unknown")
            has_sale = has_sale or q > 0
            lines.append(
                (
                    order_id,
                    int(ln.get("line_no") or i + 1),
                    pid,
                    _text(ln.get("product_name"), pid),
                    _text(ln.get("category"), "Unknown"),
                    q,
                    p,
                    d,
                    c,
                )
            )
        row = (
            order_id,
            at,
            _text(ev.get("customer_id"), None),
            _text(ev.get("region"), "Unknown"),
            _text(ev.get("channel"), "Unknown"),
            _text(ev.get("status"), "completed" if has_sale else "returned"),
            has_sale,
            event_id,
            self.source,
        )
        return order_id, row, lines


def validate(raw_events: Iterable[dict | str | bytes], source: str) -> Batch:
    """Split events into clean silver rows and rejects with a reason each."""
    v = Validator(source)
    for raw in raw_events:
        v.add(raw)
    return v.take()


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

    def add(self, other: IngestResult) -> None:
        self.received += other.received
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
    events: Iterable[dict | str | bytes], source: str = "python", batch_size: int | None = None
) -> IngestResult:
    """Ingest events now, in micro-batches of ``batch_size`` (default ``KPI_BATCH_MAX_EVENTS``).

    Returns after the last batch committed. Validation of the next batch overlaps the database
    work of the current one.
    """
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

    def _write(
        self, conn: psycopg.Connection | None, batch: Batch
    ) -> tuple[IngestResult, psycopg.Connection]:
        """Write one batch; when the connection is lost (a server restart), reconnect and write it
        again for up to RECONNECT_S. Rewriting is safe: a batch that did commit is a no-op the second
        time (event and order ids). Errors on a healthy connection are not retried."""
        lost_at: float | None = None
        delay = 0.1
        while True:
            try:
                if conn is None or conn.closed:
                    # after a loss, never start an embedded server that someone stopped
                    conn = warehouse.connect_raw(start=lost_at is None)
                return write_batch(conn, batch, self.source), conn
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


# --- reading events from files and brokers ----------------------------------------------------------


def events_from_csv(lines: Iterable[str]) -> Iterator[dict]:
    """Flat CSV (one row per order line, order fields repeated) → one event per order, in file order.

    Columns: event_id (optional), order_id, ordered_at, customer_id, region, channel, product_id,
    product_name, category, quantity, unit_price, discount, unit_cost.
    """
    import csv

    reader = csv.DictReader(lines)
    current: dict | None = None
    for row in reader:
        key = row.get("event_id") or row.get("order_id")
        if current is None or key != (current.get("event_id") or current.get("order_id")):
            if current is not None:
                yield current
            current = {
                k: row.get(k)
                for k in ("event_id", "order_id", "ordered_at", "customer_id", "region", "channel", "status")
                if row.get(k) not in (None, "")
            }
            current["lines"] = []
        current["lines"].append(
            {
                k: row.get(k)
                for k in LINE_COLUMNS[2:]  # after order_id and line_no
                if row.get(k) not in (None, "")
            }
        )
    if current is not None:
        yield current


def consume_amqp(
    url: str,
    queue_name: str = "kpi.orders",
    idle_timeout: float | None = None,
    stop: threading.Event | None = None,
) -> IngestResult:
    """Consume order events from RabbitMQ; a message is acknowledged only after its batch committed.

    A crash before the commit leaves the messages unacknowledged, so the broker redelivers them and
    the event-id de-duplication makes the redelivery harmless (exactly-once effect). When the broker
    goes away (a restart), what was received is committed, the connection is made again (for up to
    ``RECONNECT_S``) and the broker redelivers what was never acknowledged.
    """
    import pika

    total = IngestResult()
    lost_at: float | None = None
    delay = 0.2
    while True:
        try:
            if _consume_once(pika, url, queue_name, idle_timeout, stop, total):
                return total
            lost_at, delay = None, 0.2
        except pika.exceptions.AMQPConnectionError as exc:
            lost_at = lost_at or time.monotonic()
            if time.monotonic() - lost_at > RECONNECT_S:
                raise IngestError(
                    f"Lost the broker at {pika.URLParameters(url).host} for over {RECONNECT_S:.0f} s ({exc!r}). "
                    "Unacknowledged messages stay in the queue: start `kpi ingest --from` again once it is up."
                ) from exc
            log.warning("broker connection lost (%r); reconnecting in %.1fs", exc, delay)
            if stop is not None and stop.wait(delay):
                return total
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _consume_once(pika, url, queue_name, idle_timeout, stop, total: IngestResult) -> bool:
    """One broker connection's worth of consuming. True when done (idle or stopped); returns False
    (or raises) when the connection was lost."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue=queue_name, durable=True)
    channel.basic_qos(prefetch_count=settings().batch_max_events * 2)
    acks: queue.Queue = queue.Queue()

    def committed(_res: IngestResult, tokens: list[Any]) -> None:
        acks.put(max(t for t in tokens if t is not None))

    ing = Ingestor(f"amqp:{queue_name}", on_commit=committed)
    last_message = time.monotonic()
    done = False
    try:
        for method, _props, body in channel.consume(queue_name, inactivity_timeout=0.05):
            while not acks.empty():  # pika is not thread-safe: acknowledge from this thread
                channel.basic_ack(delivery_tag=acks.get(), multiple=True)
            if method is not None:
                ing.put(body, method.delivery_tag)
                last_message = time.monotonic()
            elif idle_timeout is not None and time.monotonic() - last_message > idle_timeout:
                done = True
                break
            if stop is not None and stop.is_set():
                done = True
                break
        total.add(ing.close())
        while not acks.empty():
            channel.basic_ack(delivery_tag=acks.get(), multiple=True)
        channel.cancel()
    except pika.exceptions.AMQPConnectionError:
        # commit what arrived (the broker redelivers it too: the second copy changes nothing); its
        # delivery tags died with the connection, so nothing is acknowledged
        total.add(ing.close())
        raise
    finally:
        if connection.is_open:
            connection.close()
    return done


# --- notifications ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One ``kpi_changed`` notification: a new data version."""

    version: int
    kind: str = "ingest"
    source: str | None = None
    touched_from: str | None = None
    touched_to: str | None = None
    watermark: str | None = None
    events: int = 0
    rejected: int = 0
    received_at: float = field(default_factory=time.time)

    @classmethod
    def from_payload(cls, payload: str) -> Change:
        d = json.loads(payload)
        return cls(
            version=int(d["version"]),
            kind=d.get("kind", "ingest"),
            source=d.get("source"),
            touched_from=d.get("touched_from"),
            touched_to=d.get("touched_to"),
            watermark=d.get("watermark"),
            events=int(d.get("events") or 0),
            rejected=int(d.get("rejected") or 0),
        )


class Subscription:
    """Handle returned by :func:`subscribe`; ``close()`` stops delivery to this listener."""

    def __init__(self, hub: _Hub, callback: Callable[[Change], None]) -> None:
        self._hub, self.callback = hub, callback

    def close(self) -> None:
        self._hub.remove(self)


class _Hub:
    """The process's single LISTEN connection, fanning out to every subscriber."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.version = 0
        self.connected = threading.Event()
        self.reconnects = 0

    def add(self, callback: Callable[[Change], None]) -> Subscription:
        sub = Subscription(self, callback)
        with self._lock:
            self._subs.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="kpi-listen", daemon=True)
                self._thread.start()
        return sub

    def remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self._thread = None

    def _emit(self, change: Change) -> None:
        if change.version <= self.version and change.kind != "reconnect":
            return
        self.version = max(self.version, change.version)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.callback(change)
            except Exception:  # one broken listener must not silence the others
                log.exception("change listener failed")

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with warehouse.connect_raw(autocommit=True, start=False) as conn:
                    conn.execute(f"listen {CHANNEL}")
                    latest = conn.execute("select coalesce(max(version), 0) from ops.batches").fetchone()[0]
                    if latest > self.version:  # bumps missed while we were away (or before we started)
                        if self.version:
                            self._emit(Change(version=latest, kind="catch-up"))
                        else:
                            self.version = latest
                    self.connected.set()
                    backoff = 0.2
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            try:
                                self._emit(Change.from_payload(note.payload))
                            except (ValueError, KeyError):
                                log.warning("ignoring malformed %s payload: %r", CHANNEL, note.payload)
            except (psycopg.OperationalError, WarehouseError) as exc:
                self.connected.clear()
                self.reconnects += 1
                log.warning(
                    "lost the %s listener connection (%s); reconnecting in %.1fs", CHANNEL, exc, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


_hub = _Hub()


def subscribe(callback: Callable[[Change], None]) -> Subscription:
    """Call ``callback(change)`` (in the listener thread) for every new data version."""
    return _hub.add(callback)


async def changes() -> AsyncIterator[Change]:
    """``async for change in changes():`` the same notifications, for asyncio code (Panel, Voila)."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Change] = asyncio.Queue()
    sub = _hub.add(lambda c: loop.call_soon_threadsafe(q.put_nowait, c))
    try:
        while True:
            yield await q.get()
    finally:
        sub.close()


def listener_version() -> int:
    """The newest version this process's listener has seen (0 before it connects)."""
    return _hub.version


def wait_connected(timeout: float = 10) -> bool:
    """Block until the LISTEN connection is up (tests and benchmarks use this)."""
    return _hub.connected.wait(timeout)


def current_version() -> int:
    with warehouse.connect_raw(autocommit=True) as conn:
        return conn.execute("select coalesce(max(version), 0) from ops.batches").fetchone()[0]


def payload_buffer(events: Iterable[dict]) -> io.StringIO:
    """JSON lines of events (what `kpi ingest -` reads)."""
    buf = io.StringIO()
    for ev in events:
        buf.write(json.dumps(ev, default=str) + "\n")
    buf.seek(0)
    return buf
