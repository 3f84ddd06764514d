"""The fast path's lander (issue 17): each micro-batch of raw events COPY'd into
``bronze.landed_events`` under one ``bronze.landings`` row, in ONE transaction, with no validation
beyond framing (UTF-8 text without NUL characters, the only things PostgreSQL text cannot hold).
Once that commits the events are acknowledged (a broker's messages are acked then); the mover
(``move.py``) validates them set-based, rejects the malformed ones with their reason, and moves the
rest to silver and gold, NOTIFYing ``kpi_changed`` after each move.

``ingest(events, fast=True)``, ``Lander`` (an :class:`~kpi_lib.stream.write.Ingestor` that lands),
``kpi ingest --fast``, ``consume_amqp(..., fast=True)``. A lander starts this process's background
mover (``mover=False``: leave it to ``kpi move``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .move import LANDED, start_mover
from .write import Ingestor, IngestResult


@dataclass
class RawBatch:
    """Raw events of one batch, framed for COPY (text format), and the ones refused by framing."""

    rows: list[str] = field(default_factory=list)  # payloads, COPY-escaped
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (raw text, reason)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Framer:
    """The lander's buffer: events as text, escaped for COPY; no parsing (the mover validates)."""

    def __init__(self) -> None:
        self.batch = RawBatch()

    def __len__(self) -> int:
        return len(self.batch.rows) + len(self.batch.rejects)

    def take(self) -> RawBatch:
        batch, self.batch = self.batch, RawBatch()
        return batch

    def add(self, raw: dict | str | bytes) -> None:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.batch.rejects.append((raw.decode("utf-8", "replace")[:10000], f"not UTF-8 text: {exc}"))
                return
        elif not isinstance(raw, str):
            raw = json.dumps(raw, default=str)
        if raw.endswith("\n"):  # a line of a file
            raw = raw.rstrip("\r\n")
        if "\x00" in raw:
            self.batch.rejects.append(
                (raw.replace("\x00", "\\u0000")[:10000], "not valid JSON: a NUL character")
            )
            return
        if "\\" in raw or "\t" in raw or "\n" in raw or "\r" in raw:
            raw = raw.translate(_ESCAPES)
        self.batch.rows.append(raw)


def land_batch(conn: psycopg.Connection, batch: RawBatch, source: str) -> IngestResult:
    """Land one batch in a single transaction on ``conn`` (not autocommit): its ``bronze.landings``
    row, the raw events (COPY), framing rejects, and a NOTIFY that wakes the movers at commit."""
    t0 = time.perf_counter()
    res = IngestResult(received=len(batch.rows) + len(batch.rejects), batches=1)
    if batch.rows:
        land_id = conn.execute(
            "insert into bronze.landings (source, events) values (%s, %s) returning land_id",
            [source, len(batch.rows)],
        ).fetchone()[0]
        prefix = f"{land_id}\t"
        with conn.cursor().copy("copy bronze.landed_events (land_id, seq, payload) from stdin") as cp:
            cp.write("".join([f"{prefix}{i}\t{row}\n" for i, row in enumerate(batch.rows)]))
        conn.execute(f"notify {LANDED}")
        res.landed = len(batch.rows)
    if batch.rejects:
        with conn.cursor().copy("copy bronze.rejects (source, row_data, reason) from stdin") as cp:
            for raw, reason in batch.rejects:
                cp.write_row((source, raw, reason))
        res.rejected = len(batch.rejects)
        res.reasons = [r for _, r in batch.rejects[:20]]
    conn.commit()
    res.seconds = time.perf_counter() - t0
    return res


class Lander(Ingestor):
    """An :class:`Ingestor` whose batches are landed raw (acknowledged) rather than validated and
    moved in one transaction: ``on_commit`` runs once a batch is in bronze. ``mover=True`` starts this
    process's background mover, which moves landed batches to silver and gold as they land."""

    def __init__(self, source: str, *args: Any, mover: bool = True, **kwargs: Any) -> None:
        if mover:
            start_mover()
        super().__init__(source, *args, **kwargs)

    def _buffer(self) -> Framer:  # type: ignore[override]
        return Framer()

    def _write_one(self, conn: psycopg.Connection, batch: Any) -> IngestResult:
        return land_batch(conn, batch, self.source)
