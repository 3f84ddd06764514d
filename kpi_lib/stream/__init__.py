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

``ingest_from("orders.jsonl" | "-" | "amqp://...")`` reads a registered source; ``source()``
registers a new kind. ``subscribe(callback)`` / ``changes()`` deliver the notifications: one LISTEN
connection per process fans out to any number of listeners, reconnects by itself, and after a
reconnect re-reads the current version so no bump is lost.

``ingest(events, fast=True)`` (``Lander``) is the fast path for bursts: each batch is acknowledged
once its raw events are COPY'd into ``bronze.landed_events``, in one transaction, unvalidated; a
mover (``move``: the lander's own thread, ``kpi serve``'s, or ``kpi move``; of the standing ones,
one per deployment leads) validates them set-based in SQL (malformed
ones to ``bronze.rejects`` with the same reasons; ``KPI_MOVE_VALIDATE=python``: with validate.py in
the mover's process), writes silver and gold in batches as large as the backlog, bumps the version and
NOTIFYs. Exactly once across the split (event and order ids). A landing whose move keeps failing
on a database error is moved alone, then event by event; what still fails goes to the rejects. Today's path stays the default: it
moves more events per second to gold; the fast path acknowledges ~7x faster (benchmarks/README.md).

Modules: ``validate`` (events to rows or rejects), ``write`` (one transaction per batch, the
Ingestor), ``land`` and ``move`` (the fast path), ``sources`` (files, stdin, RabbitMQ), ``changes`` (LISTEN/NOTIFY fan-out), ``paced``
(the background worker that follows the data at a bounded pace).
"""

from .changes import (
    CHANNEL,
    Change,
    Subscription,
    _hub,
    changes,
    current_version,
    listener_version,
    subscribe,
    wait_connected,
)
from .land import Lander, land_batch
from .move import Mover, MoveResult, drain, move_once, start_mover, waiting
from .paced import Paced
from .sources import consume_amqp, events_from_csv, ingest_file, ingest_from, payload_buffer, source
from .validate import MAX_FUTURE, Batch, Validator, validate
from .write import RECONNECT_S, Ingestor, IngestResult, _copy_rows, ingest, write_batch

__all__ = [
    "CHANNEL",
    "MAX_FUTURE",
    "Paced",
    "RECONNECT_S",
    "Batch",
    "Change",
    "IngestResult",
    "Lander",
    "MoveResult",
    "Mover",
    "drain",
    "land_batch",
    "move_once",
    "start_mover",
    "waiting",
    "Ingestor",
    "Subscription",
    "Validator",
    "_copy_rows",
    "_hub",
    "changes",
    "consume_amqp",
    "current_version",
    "events_from_csv",
    "ingest",
    "ingest_file",
    "ingest_from",
    "listener_version",
    "payload_buffer",
    "source",
    "subscribe",
    "validate",
    "wait_connected",
    "write_batch",
]
