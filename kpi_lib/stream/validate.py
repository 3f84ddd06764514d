"""Checking incoming events: each one becomes silver-ready rows or a reject with its reason."""

from __future__ import annotations

import json
import logging
import math
import re
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


# What a number written as a string may look like, and what a timestamp may look like: the same
# grammars as the mover's SQL validation (sql/050_raw_landing.sql, stream/move.py), so an event is
# accepted or refused alike on both paths. Only ASCII: Python's float() and int() would also read
# "1_000", full-width digits and non-ASCII spaces, which PostgreSQL does not.
_WS = " \t\n\r\f\v"
_NUM = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = frozenset(("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"))
# ISO-8601: a date, optionally a time (hh:mm[:ss[.fraction]]) and an offset (Z, +hh, +hhmm, +hh:mm).
# No named zones ("12:00 Europe/Paris" is refused, never read as business time), no week dates.
ISO_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.,][0-9]+)?)?"
    r"( ?(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?))?)?$"
)
_ISO_TIME = re.compile(ISO_TIME)
_LINE_NO = re.compile(r"[+-]?[0-9]{1,9}")


def pg_float(v: float) -> str:
    """A float as PostgreSQL prints a float8 (the mover's reasons): 4 not 4.0, 1e+15 not 1000000000000000.0."""
    r = repr(v)
    if r.endswith(".0"):
        r = r[:-2]
    if "e" not in r and abs(v) >= 1e15 and math.isfinite(v):
        digits = r.lstrip("-").rstrip("0")
        exp = len(r.lstrip("-")) - 1
        r = ("-" if v < 0 else "") + digits[0] + ("." + digits[1:] if digits[1:] else "") + f"e+{exp}"
    return r


def _show(value: Any) -> str:
    """A value in a reason, written as the mover's SQL writes it (bronze.j_repr): strings quoted as
    they are, not escaped as repr() escapes them; lists and objects as JSON."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return repr(value)


def _num(value: Any, where: str) -> float:
    t = type(value)
    if t is float:
        if value != value or value in (math.inf, -math.inf):
            raise ValueError(f"{where} {_show(value)} is not a finite number")
        return value
    if t is int:
        try:
            return float(value)
        except OverflowError:  # an integer beyond float8 (JSON 1 followed by 400 zeros)
            raise ValueError(f"{where} {'-inf' if value < 0 else 'inf'} is not a finite number") from None
    if isinstance(value, bool):
        raise ValueError(f"{where} {_show(value)} is not a number")
    if isinstance(value, (int, float)):
        v = float(value)
    else:
        s = (value if isinstance(value, str) else str(value)).strip(_WS)
        if not _NUM.fullmatch(s):
            if s.lower() in _NON_FINITE:
                raise ValueError(f"{where} {_show(value)} is not a finite number")
            raise ValueError(f"{where} {_show(value)} is not a number")
        v = float(s)  # below float8's smallest: 0, as PostgreSQL's mover reads it too
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"{where} {_show(value)} is not a finite number")
    return v


def _line_no(value: Any, i: int) -> int:
    """A line's number: its position when missing or empty, else a whole number (the mover's rule)."""
    if not value:  # None, False, 0, "", [], {}
        return i + 1
    if isinstance(value, bool):
        pass  # true is not a number in JSON
    elif isinstance(value, (int, float)):
        if abs(value) < 2e9:
            return int(value)
    elif isinstance(value, str) and _LINE_NO.fullmatch(value.strip(_WS)):
        return int(value.strip(_WS))
    raise ValueError(f"lines[{i}].line_no {_show(value)} is not a whole number")


def _time(value: Any, tz: ZoneInfo, now: datetime) -> datetime:
    if not isinstance(value, str) or not _ISO_TIME.match(value):
        raise ValueError(f"ordered_at {_show(value)} is not an ISO-8601 time")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"ordered_at {_show(value)} is not an ISO-8601 time") from None
    if ts.tzinfo is None:  # naive times are business-time-zone wall clock
        ts = _local(ts, tz)
    if ts > now + MAX_FUTURE:
        raise ValueError(f"ordered_at {value} is more than a day in the future")
    return ts


def _local(ts: datetime, tz: ZoneInfo) -> datetime:
    """Wall-clock time in ``tz`` as PostgreSQL's ``timestamp at time zone`` reads it: a time that
    happens twice (clocks going back) is the later one, in standard time; a time that never happens
    (clocks going forward) takes the offset from before the change."""
    first = ts.replace(tzinfo=tz)
    if tz.key == "UTC":
        return first
    later = ts.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == later.utcoffset():
        return first
    if later.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == ts:  # it happens twice
        return later
    return first


def _not_json(word: str) -> None:
    raise ValueError(f"{word} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_not_json)
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # \u0000, not \\u0000 (an escaped backslash)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _storable(text: str, ev: Any) -> None:
    """Refuse, as PostgreSQL's jsonb does, JSON that decodes to what text cannot hold: a NUL character
    (\\u0000) or half of a UTF-16 surrogate pair. (The checks run only when such an escape appears.)"""
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise ValueError("\\u0000 (a NUL character) cannot be stored")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(ev, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a lone UTF-16 surrogate (\\ud800-\\udfff) cannot be stored") from None


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

    def __init__(self, source: str, now: datetime | None = None) -> None:
        self.source = source
        self.now = now  # what "now" is for "more than a day in the future" (None: the clock)
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
            # NaN and Infinity are not JSON (PostgreSQL's jsonb refuses them), nor is a NUL character
            ev = _DECODER.decode(text) if text is not None else raw
            if text is not None:
                _storable(text, ev)
        except ValueError as exc:
            batch.rejects.append((None, text[:10000], f"not valid JSON: {exc}"))
            return
        if text is None:  # an object from Python: as the fast path lands it (text), as jsonb reads that
            try:
                text = json.dumps(ev, default=str, allow_nan=False)
                _storable(text, ev)
            except ValueError as exc:
                text = json.dumps(ev, default=str)
                batch.rejects.append((None, text[:10000], f"not valid JSON: {exc}"))
                return
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
        at = _time(ev["ordered_at"], self.tz, self.now or datetime.now(UTC))
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
            # the ranges are silver's columns' (numeric(14, 3) and (14, 4)): refused, not a failed batch
            q = _num(ln["quantity"], f"lines[{i}].quantity")
            if abs(q) >= 1e11:
                raise ValueError(f"lines[{i}].quantity {pg_float(q)} is out of range")
            p = _num(ln["unit_price"], f"lines[{i}].unit_price")
            if p < 0:
                raise ValueError(f"lines[{i}].unit_price is negative ({pg_float(p)})")
            if p >= 1e10:
                raise ValueError(f"lines[{i}].unit_price {pg_float(p)} is out of range")
            d = ln.get("discount")
            d = 0.0 if not d else _num(d, f"lines[{i}].discount")
            if not 0 <= d <= 1:
                raise ValueError(f"lines[{i}].discount {pg_float(d)} is not a fraction between 0 and 1")
            c = ln.get("unit_cost")
            c = None if c is None or c == "" else _num(c, f"lines[{i}].unit_cost")
            if c is not None and abs(c) >= 1e10:
                raise ValueError(f"lines[{i}].unit_cost {pg_float(c)} is out of range")
            line_no = _line_no(ln.get("line_no"), i)
            pid = _text(ln.get("product_id"), "Unknown")
            has_sale = has_sale or q > 0
            lines.append(
                (
                    order_id,
                    line_no,
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
