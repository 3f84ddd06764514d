"""Real-time ingestion (COPY micro-batches) and change notifications (LISTEN/NOTIFY).

An event is one order with its lines::

    {"event_id": "e-1", "order_id": "SO1", "ordered_at": "2025-03-01T10:00:00Z", "customer_id": "C1",
     "region": "Europe", "channel": "Web",
     "lines": [{"product_id": "P1", "product_name": "Mug", "category": "Home", "quantity": 2,
                "unit_price": 9.5, "discount": 0.1, "unit_cost": 4.0}]}

``ingest(events)`` validates each event and lands each micro-batch in ONE COPY transaction: the raw
events in ``bronze.events``, the refused ones in ``bronze.rejects`` (with the reason), the valid
orders in ``bronze.pending_*``. Then the mover, in one transaction per move and as many landed
batches at a time as are waiting, moves new orders to silver (an event id or order id seen before
changes nothing: exactly-once effect), adds them to the gold rollups, bumps the data version and
``NOTIFY kpi_changed``. ``ingest`` waits for the move (read your writes); ``ingest(..., wait=False)``
and ``Ingestor(..., wait=False)`` are the fast path: done once landed, moved by a background mover.

``ingest_from("orders.jsonl" | "-" | "amqp://...")`` reads a registered source; ``source()``
registers a new kind. ``subscribe(callback)`` / ``changes()`` deliver the notifications: one LISTEN
connection per process fans out to any number of listeners, reconnects by itself, and after a
reconnect re-reads the current version so no bump is lost.

Modules: ``validate`` (events to rows or rejects), ``write`` (landing: one transaction per batch,
the Ingestor), ``move`` (landed batches to silver and gold, exactly once), ``sources`` (files,
stdin, RabbitMQ), ``changes`` (LISTEN/NOTIFY fan-out), ``paced`` (the background worker that
follows the data at a bounded pace).
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
from .move import Mover, MoveResult, drain, move_once, start_mover, waiting
from .paced import Paced
from .sources import consume_amqp, events_from_csv, ingest_file, ingest_from, payload_buffer, source
from .validate import MAX_FUTURE, Batch, Validator, validate
from .write import RECONNECT_S, Ingestor, IngestResult, _copy_rows, ingest, land_batch

__all__ = [
    "CHANNEL",
    "MAX_FUTURE",
    "MoveResult",
    "Mover",
    "Paced",
    "RECONNECT_S",
    "Batch",
    "Change",
    "IngestResult",
    "Ingestor",
    "Subscription",
    "Validator",
    "_copy_rows",
    "_hub",
    "changes",
    "consume_amqp",
    "current_version",
    "drain",
    "events_from_csv",
    "ingest",
    "ingest_file",
    "ingest_from",
    "land_batch",
    "listener_version",
    "move_once",
    "payload_buffer",
    "source",
    "start_mover",
    "subscribe",
    "validate",
    "wait_connected",
    "waiting",
]
