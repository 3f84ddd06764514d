"""Checking incoming events: each one becomes silver-ready rows or a reject with its reason."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..config import settings

log = logging.getLogger(__name__)

MAX_FUTURE = timedelta(days=1)


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
