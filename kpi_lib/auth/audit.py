"""The audit log: who did what, when (``ops.audit_log``), append-only and tamper-evident.

The database refuses updates, deletes and truncation, and chains every row to the one before it
with SHA-256 (``sql/015_audit_chain.sql``). :func:`verify` recomputes the chain here, in Python, so
an edited, removed or inserted row shows as the first broken link. :func:`search` backs
``kpi audit`` and the admin page.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
