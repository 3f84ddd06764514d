"""Where events come from: files (JSON lines or CSV), standard input and RabbitMQ, each registered
under a name so ``kpi ingest`` (and any program) opens a source the same way."""

from __future__ import annotations

import io
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..config import settings
from ..errors import IngestError
from ..schema import LINE_COLUMNS
from .write import RECONNECT_S, Ingestor, IngestResult

log = logging.getLogger(__name__)

# --- the registry: ``kpi ingest`` opens every kind of source the same way ----------------------------

_SOURCES: dict[str, Callable[..., IngestResult]] = {}


def source(*schemes: str) -> Callable:
    """Register a function ``(where, **options) -> IngestResult`` for these URL schemes (``file``
    and ``stdin`` name a path and ``-``): a new kind of source is one function, not a CLI change."""

    def register(fn: Callable[..., IngestResult]) -> Callable[..., IngestResult]:
        for scheme in schemes:
            _SOURCES[scheme] = fn
        return fn

    return register


def ingest_from(where: str, **options: Any) -> IngestResult:
    """Ingest every event from ``where``: a file of JSON lines or CSV, ``-`` for standard input, or
    a broker URL such as ``amqp://guest:guest@127.0.0.1:5672/%2F``."""
    scheme = where.split("://", 1)[0].lower() if "://" in where else ("stdin" if where == "-" else "file")
    if scheme not in _SOURCES:
        raise IngestError(
            f"No source reads {where!r}. Give a file, '-' for standard input, or a URL starting with "
            f"{', '.join(s + '://' for s in sorted(_SOURCES) if s not in ('file', 'stdin'))}."
        )
    return _SOURCES[scheme](where, **options)


@source("file", "stdin")
def ingest_file(where: str, source_name: str | None = None, fast: bool = False, **_: Any) -> IngestResult:
    """A file (or ``-``, standard input) of JSON-lines events or flat CSV order lines, told apart by
    the first line; every event goes through an :class:`Ingestor`, bad ones to ``bronze.rejects``
    (``fast=True``: a :class:`~kpi_lib.stream.land.Lander`, the mover validates)."""
    import sys
    from pathlib import Path

    name = source_name or ("stdin" if where == "-" else f"file:{Path(where).name}")
    try:
        handle = sys.stdin if where == "-" else open(where, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise IngestError(f"Cannot read {where}: {exc.strerror}. Check the path.") from exc
    with handle:
        first = handle.readline()
        lines = itertools.chain([first], handle)
        if first.lstrip().startswith("{"):
            events: Iterable = (ln for ln in lines if ln.strip())
        else:
            events = events_from_csv(lines)
        ing = _ingestor(name, fast)
        for ev in events:
            ing.put(ev)
        return ing.close()


@source("amqp", "amqps")
def _from_amqp(
    where: str,
    queue: str = "kpi.orders",
    idle_timeout: float | None = None,
    stop: threading.Event | None = None,
    fast: bool = False,
    **_: Any,
) -> IngestResult:
    return consume_amqp(where, queue, idle_timeout=idle_timeout, stop=stop, fast=fast)


def _ingestor(name: str, fast: bool, **kwargs: Any) -> Ingestor:
    if fast:
        from .land import Lander

        return Lander(name, **kwargs)
    return Ingestor(name, **kwargs)


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
    fast: bool = False,
) -> IngestResult:
    """Consume order events from RabbitMQ; a message is acknowledged only after its batch committed
    (``fast=True``: once landed raw in bronze, which is as durable; the mover takes it on).

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
            if _consume_once(pika, url, queue_name, idle_timeout, stop, total, fast):
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


def _consume_once(pika, url, queue_name, idle_timeout, stop, total: IngestResult, fast: bool = False) -> bool:
    """One broker connection's worth of consuming. True when done (idle or stopped); returns False
    (or raises) when the connection was lost."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue=queue_name, durable=True)
    channel.basic_qos(prefetch_count=settings().batch_max_events * 2)
    acks: queue.Queue = queue.Queue()

    def committed(_res: IngestResult, tokens: list[Any]) -> None:
        acks.put(max(t for t in tokens if t is not None))

    ing = _ingestor(f"amqp:{queue_name}", fast, on_commit=committed)
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


def payload_buffer(events: Iterable[dict]) -> io.StringIO:
    """JSON lines of events (what `kpi ingest -` reads)."""
    buf = io.StringIO()
    for ev in events:
        buf.write(json.dumps(ev, default=str) + "\n")
    buf.seek(0)
    return buf
