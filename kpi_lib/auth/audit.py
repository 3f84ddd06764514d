"""The audit log: who did what, when (``ops.audit_log``), append-only and tamper-evident.

The database refuses updates, deletes and truncation, and chains every row to the one before it
with SHA-256 (``sql/015_audit_chain.sql``). :func:`verify` recomputes the chain here, in Python, so
an edited, removed or inserted row shows as the first broken link. :func:`search` backs
``kpi audit`` and the admin page. :func:`audit_later` is for the many-calls-a-second callers (the
API and the front door): the row is written in a batch moments later, and the caller never waits.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from .. import warehouse

log = logging.getLogger(__name__)


def audit(actor: str, action: str, target: str | None = None, **details: Any) -> None:
    """Append to ops.audit_log. Never raises: auditing must not break the action it records."""
    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            conn.execute(
                "insert into ops.audit_log (actor, action, target, details) values (%s, %s, %s, %s)",
                [actor, action, target, json.dumps(details, default=str)],
            )
    except Exception as exc:  # noqa: BLE001
        log.error("could not write the audit log (%s %s %s): %s", actor, action, target, exc)


COPY = "copy ops.audit_log (actor, action, target, details) from stdin"
BATCH = 5000
LINGER_S = 0.05


class _BatchWriter:
    """Rows queued by :func:`audit_later`, written in one pooled transaction per batch (a new
    connection per call cost more than the query it audited). Rows still queued at exit are
    written then."""

    def __init__(self) -> None:
        self.q: queue.Queue[tuple] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def put(self, actor: str, action: str, target: str | None, details: dict[str, Any]) -> None:
        self.q.put((actor, action, target, json.dumps(details, default=str)))
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="kpi-audit-writer", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            first = self.q.get()
            time.sleep(LINGER_S)  # let a burst gather: one transaction per batch, not per row
            self._write([first])

    def _write(self, batch: list[tuple]) -> None:
        while len(batch) < BATCH:
            try:
                batch.append(self.q.get_nowait())
            except queue.Empty:
                break
        try:
            with warehouse.engine().begin() as conn, conn.connection.driver_connection.cursor() as cur:
                with cur.copy(COPY) as copy:  # the chain trigger still links every row
                    for row in batch:
                        copy.write_row(row)
        except Exception as exc:  # noqa: BLE001 - fall back to one row at a time: nothing is lost
            log.warning("batched audit write failed (%s); writing %d rows one by one", exc, len(batch))
            for actor, action, target, details in batch:
                audit(actor, action, target, **json.loads(details))

    def flush(self) -> None:
        pending = []
        while True:
            try:
                pending.append(self.q.get_nowait())
            except queue.Empty:
                break
        if pending:
            self._write(pending)


_WRITER = _BatchWriter()
atexit.register(_WRITER.flush)


def audit_later(actor: str, action: str, target: str | None = None, **details: Any) -> None:
    """:func:`audit`, written in a batch moments later; the caller never waits."""
    _WRITER.put(actor, action, target, details)


def flush_audit() -> None:
    """Write every row :func:`audit_later` has queued, now (at exit, and in tests)."""
    _WRITER.flush()


@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found: ``ok``, rows checked, the head hash, and the first broken link."""

    ok: bool
    rows: int
    head: str | None
    broken_at: int | None = None  # seq of the first row that does not chain
    reason: str | None = None


def _link(prev: str, seq: int, at: str, actor: str, action: str, target: str | None, details: str) -> str:
    text = "|".join([str(seq), at, actor, action, target or "", details])
    return hashlib.sha256(f"{prev}|{text}".encode()).hexdigest()


def verify(conn=None) -> Verdict:
    """Recompute the whole chain. Any edit, removal or insertion breaks it at that row.

    ``conn``: check what that connection sees (e.g. inside its own transaction)."""
    if conn is None:
        with warehouse.connect_raw(autocommit=True) as own:
            return verify(own)
    cur = conn.execute(
        "select seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), actor, action,"
        " target, coalesce(details, '{}'::jsonb)::text, prev_hash, hash from ops.audit_log order by seq"
    )
    prev, n = "", 0
    for seq, at, actor, action, target, details, prev_hash, stored in cur:
        n += 1
        if seq != n:
            return Verdict(False, n - 1, prev or None, seq, f"row {n} is missing (next is {seq})")
        if prev_hash != prev:
            return Verdict(False, n - 1, prev or None, seq, "it does not point at the row before it")
        if _link(prev, seq, at, actor, action, target, details) != stored:
            return Verdict(False, n - 1, prev or None, seq, "its contents changed after it was written")
        prev = stored
    return Verdict(True, n, prev or None)


def search(
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Audit rows, newest first; ``target`` matches a part of the target (case-insensitive)."""
    with warehouse.connect_raw(autocommit=True) as conn:
        cur = conn.execute(
            "select seq, at, actor, action, target, details from ops.audit_log"
            " where (%(actor)s::text is null or actor = %(actor)s)"
            " and (%(action)s::text is null or action = %(action)s)"
            " and (%(target)s::text is null or target ilike '%%' || %(target)s || '%%')"
            " and (%(since)s::timestamptz is null or at >= %(since)s)"
            " and (%(until)s::timestamptz is null or at < %(until)s)"
            " order by seq desc limit %(limit)s",
            {
                "actor": actor,
                "action": action,
                "target": target,
                "since": since,
                "until": until,
                "limit": limit,
            },
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
