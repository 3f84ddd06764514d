"""Time: the business clock, the as-of ("now" for default windows), periods and ranges.

Times are naive wall-clock times in the business time zone (``KPI_TIMEZONE``); ``end`` is exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from .. import warehouse
from ..config import settings
from ..errors import QueryError

DEFAULT_SPAN = {
    "minute": timedelta(hours=3),
    "hour": timedelta(days=2),
    "day": timedelta(days=90),
    "week": timedelta(weeks=26),
    "month": timedelta(days=730),
    "total": timedelta(days=30),
}


def local_now() -> datetime:
    """The wall clock in the business time zone (naive). Default windows use :func:`as_of`."""
    return datetime.now(ZoneInfo(settings().timezone)).replace(tzinfo=None)


#: the data is live while its newest order is at most this old; otherwise "now" is that order
LIVE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class AsOf:
    """What "now" is for default windows: the wall clock while data is live, else the latest data.

    ``source`` is ``explicit`` (asked for), ``live`` (the newest order is recent: the wall clock),
    ``latest data`` (an export or a nightly warehouse: the newest order's time) or ``no data``.
    """

    at: datetime  # naive, in the business time zone
    source: str
    latest: datetime | None = None  # the newest order's time, when there is one

    @property
    def live(self) -> bool:
        return self.source == "live"

    def describe(self) -> str:
        """'as of 9 Dec 2011 12:50 (latest data)': every surface prints what it shows."""
        return f"as of {self.at.day} {self.at:%b %Y %H:%M} ({self.source})"


_edge_memo: dict[tuple, datetime | None] = {}


def latest_data() -> datetime | None:
    """The newest order's time in the business time zone (naive); None on an empty warehouse.

    One index lookup, memoised per data version (a new version may bring newer orders)."""
    return _data_edge("max")


def earliest_data() -> datetime | None:
    """The oldest order's time in the business time zone (naive); None on an empty warehouse.
    A comparison with a period before it compares with nothing."""
    return _data_edge("min")


def _data_edge(which: str) -> datetime | None:
    from .planner import sync_versions

    version = sync_versions()
    cfg = settings()
    key = (cfg.database_url or str(cfg.home), cfg.timezone, version, which)
    if key not in _edge_memo:
        with warehouse.engine().connect() as conn:
            at = conn.exec_driver_sql(
                f"select {which}(ordered_at) at time zone ops.business_tz() from silver.orders"
            ).scalar()
        if len(_edge_memo) > 64:
            _edge_memo.clear()
        _edge_memo[key] = at
    return _edge_memo[key]


def as_of(explicit: Any = None, wall: datetime | None = None) -> AsOf:
    """The as-of time every default window counts back from.

    An explicit time always wins. Otherwise it is the wall clock while the newest order is at most
    LIVE_WINDOW old (a live stream), and the newest order's time when it is older (last year's
    export, a warehouse refreshed nightly): such a business is shown as it was when its data ends,
    not as 90 empty days ending today.
    """
    if explicit is not None and explicit != "":
        if isinstance(explicit, AsOf):
            return explicit
        return AsOf(as_local(explicit, "as_of"), "explicit")
    wall = wall or local_now()
    latest = latest_data()
    if latest is None:
        return AsOf(wall, "no data")
    if latest >= wall - LIVE_WINDOW:
        return AsOf(wall, "live", latest)
    return AsOf(latest, "latest data", latest)


def as_local(value: str | date | datetime | pd.Timestamp | None, what: str) -> datetime | None:
    """A date/time (text, date, datetime, Timestamp; aware ones are converted) as a naive business
    time; None for None or ''."""
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise QueryError(
            f"{what}={value!r} is not a date or time (use e.g. 2025-01-31 or 2025-01-31T13:00)."
        ) from exc
    if ts is pd.NaT:
        raise QueryError(f"{what}={value!r} is not a date or time (use e.g. 2025-01-31).")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(settings().timezone).tz_localize(None)
    return ts.to_pydatetime()


def floor_period(ts: datetime, grain: str) -> datetime:
    if grain == "minute":
        return ts.replace(second=0, microsecond=0)
    if grain == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    if grain == "year":
        return day.replace(month=1, day=1)
    return day


def next_period(ts: datetime, grain: str) -> datetime:
    ts = floor_period(ts, grain)
    if grain == "minute":
        return ts + timedelta(minutes=1)
    if grain == "hour":
        return ts + timedelta(hours=1)
    if grain == "week":
        return ts + timedelta(weeks=1)
    if grain == "month":
        return (ts + timedelta(days=32)).replace(day=1)
    if grain == "quarter":
        return add_months(ts, 3)
    if grain == "year":
        return ts.replace(year=ts.year + 1)
    return ts + timedelta(days=1)


def add_months(ts: datetime, n: int) -> datetime:
    """The first of the month ``n`` months after ``ts``'s month (n may be negative)."""
    y, m = divmod(ts.year * 12 + ts.month - 1 + n, 12)
    return ts.replace(year=y, month=m + 1, day=1, hour=0, minute=0, second=0, microsecond=0)


def period_label(ts: Any, grain: str) -> str:
    """ISO label of the period starting at ``ts``: 2026-03-14, 2026-03, 2026-Q1, 2026; a week is
    its Monday's date; an hour 2026-03-14T13:00."""
    ts = pd.Timestamp(ts)
    if grain == "month":
        return f"{ts:%Y-%m}"
    if grain == "quarter":
        return f"{ts.year}-Q{(ts.month - 1) // 3 + 1}"
    if grain == "year":
        return f"{ts.year}"
    if grain in ("hour", "minute"):
        return ts.strftime("%Y-%m-%dT%H:%M")
    if grain == "week":
        ts = ts - pd.Timedelta(days=ts.weekday())
    return f"{ts:%Y-%m-%d}"


def default_range(grain: str, start=None, end=None, as_of: Any = None) -> tuple[datetime, datetime]:
    """Missing ends: up to the end of the as-of's period (:func:`as_of`); back by the grain's span."""
    s, e = as_local(start, "start"), as_local(end, "end")
    g = "day" if grain == "total" else grain
    if e is None:
        e = next_period(_resolve_as_of(as_of).at, g)
    if s is None:
        s = floor_period(e - DEFAULT_SPAN[grain], g)
    if s >= e:
        raise QueryError(
            f"start ({s:%Y-%m-%d %H:%M}) must be before end ({e:%Y-%m-%d %H:%M}); end is exclusive."
        )
    return s, e


_resolve_as_of = as_of  # for functions whose ``as_of`` parameter hides this one


def shift_range(start: datetime, end: datetime, grain: str, compare: str) -> tuple[datetime, datetime, Any]:
    """The comparison range and the offset that maps its periods onto the current ones."""
    if compare == "previous_year":
        off = pd.DateOffset(years=1)
    elif grain == "month" and start.day == 1 and end.day == 1:
        off = pd.DateOffset(months=(end.year - start.year) * 12 + end.month - start.month)
    else:
        off = pd.Timedelta(end - start)
    return (pd.Timestamp(start) - off).to_pydatetime(), (pd.Timestamp(end) - off).to_pydatetime(), off
