"""The semantic layer: KPI definitions from catalog.yml turned into parameterised SQL over gold.

    >>> r = query("revenue", "day", start="2025-01-01", end="2025-02-01", by=["region"])  # doctest: +SKIP
    >>> r.df.head()          # period, region, value
    >>> r.sql, r.params      # what ran; every value is a bound parameter
    >>> r.cache_level        # L1 / L2 (cache), L3 (materialized view), L4 (base tables), L3+L4

Planning: the KPI lists the facts that can answer it; the smallest fact with every dimension asked
for (in ``by`` or ``where``) is chosen. Day-or-coarser questions read the fact's daily materialized
view for the days it reflects and its hourly base table for the days after (see ``kpi_lib.cache``).
Distinct counts (active customers) over whole days are sums over the fact's ``returns`` view
(gold.customer_returns); the days after it, or two filter values at once, count the base table.
Times are wall-clock times in the business time zone (``KPI_TIMEZONE``); ``end`` is exclusive.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa

from . import cache, catalog, warehouse
from . import scope as row_scope
from .config import settings
from .errors import QueryError

log = logging.getLogger(__name__)

GRAINS = ("minute", "hour", "day", "week", "month", "total")
COMPARES = ("previous_period", "previous_year")
DEFAULT_SPAN = {
    "minute": timedelta(hours=3),
    "hour": timedelta(days=2),
    "day": timedelta(days=90),
    "week": timedelta(weeks=26),
    "month": timedelta(days=730),
    "total": timedelta(days=30),
}


@dataclass(frozen=True)
class Kpi:
    """One KPI definition, as written in catalog.yml ``metadata.kpis``."""

    name: str
    label: str
    description: str
    unit: str
    format: str
    expression: str
    facts: tuple[str, ...]
    dimensions: tuple[str, ...]
    up_is_good: bool = True
    prefix: str = ""
    rules: Mapping[str, Any] = field(default_factory=dict)
    sensitive: bool = False

    @property
    def additive(self) -> bool:
        """Sums and counts add up across periods (missing periods are zero); ratios do not."""
        return "/" not in self.expression

    def format_value(self, value: float | None) -> str:
        """Full precision for tables: '$12,345', '34.5%'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        return f"{'-' if value < 0 and self.prefix else ''}{self.prefix}{format(abs(value) if self.prefix else value, self.format)}"

    def format_compact(self, value: float | None) -> str:
        """Short form for tiles and sentences: '$12.4k', '1.2M', '34.5%'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if self.format.endswith("%"):
            return format(value, self.format)
        sign, v = ("-" if value < 0 else ""), abs(value)
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if v >= div:
                return f"{sign}{self.prefix}{v / div:.3g}{suffix}"
        body = f"{v:,.2f}" if self.format.endswith(".2f") else f"{v:,.0f}"
        return f"{sign}{self.prefix}{body}"


@dataclass(frozen=True)
class Fact:
    name: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    base: str | None  # catalog entry of the base table kept current by ingest (L4)
    daily: str | None  # catalog entry of the daily materialized view (L3)
    live: str | None  # set-returning function: daily rows from silver since a time (L4 for `daily`)
    grains: tuple[str, ...] = ("hour", "day", "week", "month", "total")
    returns: str | None = None  # catalog entry: distinct counts over whole days as sums (L3)


@dataclass
class QueryResult:
    """A tidy frame (period, dimensions..., value[, previous, change]) and where it came from."""

    df: pd.DataFrame
    kpi: Kpi
    grain: str
    start: datetime
    end: datetime
    by: tuple[str, ...]
    where: dict[str, tuple[str, ...]]
    sql: str
    params: dict[str, Any]
    catalog_entries: tuple[str, ...]
    version: int
    cache_level: str
    elapsed_ms: float
    compare: str | None = None
    as_of: AsOf | None = None  # what "now" was for the default window

    @property
    def value(self) -> float | None:
        """The single number of a ``grain='total'`` query without ``by``."""
        if self.df.empty:
            return 0.0 if self.kpi.additive else None
        return float(self.df["value"].iloc[0]) if pd.notna(self.df["value"].iloc[0]) else None

    @property
    def previous(self) -> float | None:
        if "previous" not in self.df or self.df.empty:
            return None
        v = self.df["previous"].iloc[0]
        return None if pd.isna(v) else float(v)

    @property
    def change(self) -> float | None:
        if "change" not in self.df or self.df.empty:
            return None
        v = self.df["change"].iloc[0]
        return None if pd.isna(v) else float(v)

    def provenance(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi.name,
            "grain": self.grain,
            "start": str(self.start),
            "end": str(self.end),
            "by": list(self.by),
            "where": {k: list(v) for k, v in self.where.items()},
            "catalog_entries": list(self.catalog_entries),
            "sql": self.sql,
            "params": {k: str(v) for k, v in self.params.items()},
            "version": self.version,
            "cache_level": self.cache_level,
            "elapsed_ms": round(self.elapsed_ms, 2),
            "as_of": None if self.as_of is None else self.as_of.at.isoformat(timespec="seconds"),
            "as_of_source": None if self.as_of is None else self.as_of.source,
        }

    def _repr_html_(self) -> str:
        head = (
            f"<b>{self.kpi.label}</b> by {self.grain} {self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M}"
            f" · {', '.join(self.catalog_entries)} · {self.cache_level} · {self.elapsed_ms:.1f} ms"
        )
        return f"<div>{head}</div>{self.df._repr_html_()}"


# --- definitions ------------------------------------------------------------------------------


def _meta() -> dict[str, Any]:
    return catalog.metadata().get("metadata", {})


def definitions() -> dict[str, Kpi]:
    """Every KPI in catalog.yml, by name."""
    out = {}
    for name, d in (_meta().get("kpis") or {}).items():
        out[name] = Kpi(
            name=name,
            label=d.get("label", name),
            description=d.get("description", ""),
            unit=d.get("unit", ""),
            format=d.get("format", ",.2f"),
            expression=d["expression"],
            facts=tuple(d["facts"]),
            dimensions=tuple(d.get("dimensions", ())),
            up_is_good=bool(d.get("up_is_good", True)),
            prefix=d.get("prefix", ""),
            rules=d.get("rules") or {},
            sensitive=bool(d.get("sensitive", False)),
        )
    return out


def get(name: str) -> Kpi:
    kpis = definitions()
    if name not in kpis:
        raise QueryError(f"Unknown KPI {name!r}. KPIs: {', '.join(kpis)}.")
    return kpis[name]


def facts() -> dict[str, Fact]:
    return {
        n: Fact(
            n,
            tuple(f.get("dimensions", ())),
            tuple(f.get("measures", ())),
            f.get("base"),
            f.get("daily"),
            f.get("live"),
            tuple(f.get("grains", ("hour", "day", "week", "month", "total"))),
            f.get("returns"),
        )
        for n, f in (_meta().get("facts") or {}).items()
    }


def dimensions() -> dict[str, dict[str, str]]:
    return _meta().get("dimensions") or {}


def dimension_values(dim: str) -> list[str]:
    """Known values of a dimension (for filter widgets)."""
    dims = dimensions()
    if dim not in dims:
        raise QueryError(f"Unknown dimension {dim!r}. Dimensions: {', '.join(dims)}.")
    table = {
        "region": "silver.orders",
        "channel": "silver.orders",
        "category": "silver.order_lines",
        "product": "silver.order_lines",
    }[dim]
    col = dims[dim].get("column", dim)
    key = cache.make_key({"dimension_values": dim, "scope": row_scope.current().key()})
    version = _sync_versions()
    # Read from the daily views, so they change when a view is refreshed, not with every batch;
    # before the views hold anything, from silver (and then again with every batch).
    views_key = f"{key}:views{cache.versions.views_version()}"
    for k in (views_key, f"{key}:{version}"):
        hit = cache.get(k)
        if hit is not None:
            return hit[0]["value"].tolist()
    view = {"product": "product_daily", "category": "category_daily"}.get(dim, "sales_daily")
    with warehouse.read() as conn:  # the reader's rows only
        values = [r[0] for r in conn.exec_driver_sql(f"select distinct {col} from gold.{view} order by 1")]
        if values:
            cache.put(views_key, pd.DataFrame({"value": values}), {})
            return values
        values = [r[0] for r in conn.exec_driver_sql(f"select distinct {col} from {table} order by 1")]
    cache.put(f"{key}:{version}", pd.DataFrame({"value": values}), {})
    return values


# --- time handling ------------------------------------------------------------------------------


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


_latest_memo: dict[tuple, datetime | None] = {}


def latest_data() -> datetime | None:
    """The newest order's time in the business time zone (naive); None on an empty warehouse.

    One index lookup, memoised per data version (a new version may bring newer orders)."""
    version = _sync_versions()
    cfg = settings()
    key = (cfg.database_url or str(cfg.home), cfg.timezone, version)
    if key not in _latest_memo:
        with warehouse.engine().connect() as conn:
            at = conn.exec_driver_sql(
                "select max(ordered_at) at time zone ops.business_tz() from silver.orders"
            ).scalar()
        if len(_latest_memo) > 64:
            _latest_memo.clear()
        _latest_memo[key] = at
    return _latest_memo[key]


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
        return AsOf(_as_local(explicit, "as_of"), "explicit")
    wall = wall or local_now()
    latest = latest_data()
    if latest is None:
        return AsOf(wall, "no data")
    if latest >= wall - LIVE_WINDOW:
        return AsOf(wall, "live", latest)
    return AsOf(latest, "latest data", latest)


_resolve_as_of = as_of  # for functions whose ``as_of`` parameter hides this one


def _as_local(value: str | date | datetime | pd.Timestamp | None, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise QueryError(
            f"{what}={value!r} is not a date or time (use e.g. 2025-01-31 or 2025-01-31T13:00)."
        ) from exc
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
    return ts + timedelta(days=1)


def default_range(grain: str, start=None, end=None, as_of: Any = None) -> tuple[datetime, datetime]:
    """Missing ends: up to the end of the as-of's period (:func:`as_of`); back by the grain's span."""
    s, e = _as_local(start, "start"), _as_local(end, "end")
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


def shift_range(start: datetime, end: datetime, grain: str, compare: str) -> tuple[datetime, datetime, Any]:
    """The comparison range and the offset that maps its periods onto the current ones."""
    if compare == "previous_year":
        off = pd.DateOffset(years=1)
    elif grain == "month" and start.day == 1 and end.day == 1:
        off = pd.DateOffset(months=(end.year - start.year) * 12 + end.month - start.month)
    else:
        off = pd.Timedelta(end - start)
    return (pd.Timestamp(start) - off).to_pydatetime(), (pd.Timestamp(end) - off).to_pydatetime(), off


# --- planning and SQL -----------------------------------------------------------------------------


def _normalise_where(kpi: Kpi, where: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    out = {}
    for dim, value in (where or {}).items():
        if dim not in kpi.dimensions:
            raise QueryError(
                f"{kpi.label} cannot be filtered by {dim!r}. Dimensions for {kpi.name}: {', '.join(kpi.dimensions)}."
            )
        if value is None or value == "" or value == []:
            continue
        values = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
        out[dim] = tuple(sorted(values))
    return out


def _within_scope(kpi: Kpi, where: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The question narrowed to the reader's row scope (:mod:`kpi_lib.scope`): its limits become
    filters, so plans read the relations that carry them and caches key on them. The database
    enforces the same scope (row-level security); this makes the answer say so plainly."""
    sc = row_scope.current()
    if sc.everything:
        return where
    if sc.nothing:
        raise QueryError("No one is signed in to read this: open it through the front door and sign in.")
    out = dict(where)
    for dim, allowed in sc.limits:
        if dim not in kpi.dimensions:
            raise QueryError(
                f"{kpi.label} cannot be shown within your rows ({sc.describe()}): it is not kept by {dim}."
            )
        asked = out.get(dim)
        if asked is None:
            out[dim] = allowed
            continue
        inside = tuple(v for v in asked if v in allowed)
        if not inside:
            raise QueryError(f"{dim} {', '.join(asked)} is outside your rows ({sc.describe()}).")
        out[dim] = inside
    return out


def _pick_fact(kpi: Kpi, needed: set[str], grain: str) -> Fact:
    all_facts = facts()
    fine = grain in ("minute", "hour")
    for name in kpi.facts:
        f = all_facts[name]
        if needed <= set(f.dimensions) and grain in f.grains and (not fine or f.base):
            return f
    if not any(grain in all_facts[n].grains for n in kpi.facts):
        raise QueryError(f"{kpi.label} is not kept per {grain}.")
    if fine:
        raise QueryError(
            f"{kpi.label} by {', '.join(sorted(needed))} is only kept per day; use grain 'day' or coarser."
        )
    raise QueryError(f"{kpi.label} cannot be broken down by {', '.join(sorted(needed))} together.")


def _entry_table(entry: str) -> str:
    return catalog.entry_metadata(entry)["table"]


def _dim_select(fact: Fact, dims: Sequence[str]) -> list[str]:
    meta = dimensions()
    return [f"{meta[d].get('column', d)} as {d}" if meta[d].get("column", d) != d else d for d in dims]


def _filters(where: dict[str, tuple[str, ...]], params: dict[str, Any]) -> str:
    meta = dimensions()
    parts = []
    for dim, values in where.items():
        params[f"w_{dim}"] = list(values)
        parts.append(f" and {meta[dim].get('column', dim)} = any(:w_{dim})")
    return "".join(parts)


def plan_sql(
    kpi: Kpi, grain: str, start: datetime, end: datetime, by: Sequence[str], where: dict[str, tuple[str, ...]]
) -> tuple[str, dict[str, Any], list[str], str]:
    """SQL text, bound parameters, catalog entries read and the layer(s) that answer."""
    needed = set(by) | set(where)
    fact = _pick_fact(kpi, needed, grain)
    # the fact's rows carry every dimension it has; filters and groups use the ones asked for
    dims_needed = [d for d in fact.dimensions if d in needed]
    cols = ", ".join(_dim_select(fact, dims_needed) + list(fact.measures))
    params: dict[str, Any] = {}
    flt = _filters(where, params)
    branches: list[str] = []
    entries: list[str] = []
    layers: list[str] = []

    def base_branch(frm: datetime, to: datetime) -> None:
        params["b_from"], params["b_to"] = frm, to
        t = catalog.entry_metadata(fact.base).get("time_column", "hour")
        branches.append(
            f"select ({t} at time zone ops.business_tz()) as ts, {cols} from {_entry_table(fact.base)}"
            f" where {t} >= (cast(:b_from as timestamp) at time zone ops.business_tz())"
            f" and {t} < (cast(:b_to as timestamp) at time zone ops.business_tz()){flt}"
        )
        entries.append(fact.base)
        layers.append("L4")

    if grain in ("minute", "hour") or not fact.daily:
        base_branch(start, end)
    else:
        d_start = floor_period(start, "day")
        d_end = end if end == floor_period(end, "day") else next_period(end, "day")
        if (d_start, d_end) != (start, end) and fact.base:
            base_branch(start, end)  # not whole days: hourly data answers exactly
        else:
            mv = _entry_table(fact.daily)
            stale = cache.versions.mv_valid_before(mv)
            mid = (
                d_end
                if stale is None
                else max(d_start, min(d_end, datetime.combine(stale, datetime.min.time())))
            )
            if mid > d_start:
                params["d_from"], params["d_mid"] = d_start.date(), mid.date()
                branches.append(
                    f"select day::timestamp as ts, {cols} from {mv}"
                    f" where day >= :d_from and day < :d_mid{flt}"
                )
                entries.append(fact.daily)
                layers.append("L3")
            if mid < d_end:
                if fact.base:
                    base_branch(mid, d_end)
                else:
                    params["l_from"], params["l_to"] = mid, d_end.date()
                    branches.append(
                        f"select day::timestamp as ts, {cols} from {fact.live}"
                        f"(cast(:l_from as timestamp) at time zone ops.business_tz()) where day < :l_to{flt}"
                    )
                    entries.append(fact.daily)
                    layers.append("L4")
    period = "" if grain == "total" else f"date_trunc('{grain}', ts) as period, "
    groups = ([] if grain == "total" else ["period"]) + list(by)
    group_sql = f" group by {', '.join(groups)} order by {', '.join(groups)}" if groups else ""
    union = "\n  union all\n  ".join(branches)
    distinct = _DISTINCT.fullmatch(kpi.expression.strip())
    if distinct:
        # count(distinct x) always sorts; a distinct subquery can hash, about twice as fast here
        keys = ", ".join([*(["period"] if grain != "total" else []), *by])
        inner = f"select distinct {period}{''.join(d + ', ' for d in by)}{distinct.group(1)}"
        sql = (
            f"select {keys + ', ' if keys else ''}count(*) as value\n"
            f"from ({inner}\n  from (\n  {union}\n) t) d{group_sql}"
        )
    else:
        sql = (
            f"select {period}{''.join(d + ', ' for d in by)}{kpi.expression} as value\n"
            f"from (\n  {union}\n) t{group_sql}"
        )
    return sql, params, entries, "+".join(dict.fromkeys(layers))


_DISTINCT = re.compile(r"count\(\s*distinct\s+(\w+)\s*\)", re.IGNORECASE)


def _run(sql: str, params: dict[str, Any]) -> pd.DataFrame:
    with warehouse.read() as conn:  # as the reader role, in the current row scope (the database enforces it)
        result = conn.execute(sa.text(sql), params)
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if "value" in df:
        df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    if "period" in df:
        df["period"] = pd.to_datetime(df["period"])
    return df


def _fill(
    df: pd.DataFrame, kpi: Kpi, grain: str, start: datetime, end: datetime, by: Sequence[str]
) -> pd.DataFrame:
    """Every period in the range appears; additive KPIs read 0 where nothing happened."""
    if not kpi.additive:
        return df
    if grain == "total":
        if not by:
            df = df if not df.empty else pd.DataFrame({"value": [np.nan]})
            df["value"] = df["value"].fillna(0.0)
        return df
    freq = {"minute": "min", "hour": "h", "day": "D", "week": "W-MON", "month": "MS"}[grain]
    periods = pd.date_range(floor_period(start, grain), end, freq=freq, inclusive="left")
    if grain in ("week", "month"):
        periods = pd.DatetimeIndex(
            sorted({pd.Timestamp(floor_period(p.to_pydatetime(), grain)) for p in periods})
        )
    if by:
        if df.empty:
            return df
        combos = df[list(by)].drop_duplicates()
        grid = combos.merge(pd.DataFrame({"period": periods}), how="cross")
        out = grid.merge(df, on=["period", *by], how="left")
    else:
        out = pd.DataFrame({"period": periods}).merge(df, on="period", how="left")
    out["value"] = out["value"].fillna(0.0)
    return out[["period", *by, "value"]].sort_values(["period", *by], ignore_index=True)


def _sync_versions() -> int:
    return cache.versions.sync()


def query(
    kpi: str,
    grain: str = "day",
    start: Any = None,
    end: Any = None,
    by: Iterable[str] = (),
    where: Mapping[str, Any] | None = None,
    compare: str | None = None,
    top: int | None = None,
    use_cache: bool = True,
    as_of: Any = None,
) -> QueryResult:
    """Answer a KPI question. See the module docstring; every value travels as a bound parameter.

    ``compare`` adds ``previous`` and ``change`` (relative) columns for the previous period of the
    same length or the same period a year earlier. ``top=N`` keeps the N largest values of the
    single ``by`` dimension over the whole range. Missing ``start``/``end`` count back from
    ``as_of`` (a time, or by default :func:`as_of`: the wall clock while data is live, else the
    latest data); the result carries the as-of it used.
    """
    t0 = time.perf_counter()
    k = get(kpi)
    if grain not in GRAINS:
        raise QueryError(f"Unknown grain {grain!r}. Grains: {', '.join(GRAINS)}.")
    if compare is not None and compare not in COMPARES:
        raise QueryError(f"Unknown comparison {compare!r}. Use one of: {', '.join(COMPARES)}.")
    by = tuple(by or ())
    for d in by:
        if d not in k.dimensions:
            raise QueryError(
                f"{k.label} cannot be broken down by {d!r}. Dimensions for {k.name}: {', '.join(k.dimensions)}."
            )
    if len(set(by)) != len(by):
        raise QueryError(f"Dimension listed twice in by={list(by)}.")
    if top is not None and len(by) != 1:
        raise QueryError("top=N needs exactly one dimension in by, e.g. by=['region'], top=3.")
    w = _within_scope(k, _normalise_where(k, where))
    _sync_versions()  # once per question: every part below sees the same data version
    when = _resolve_as_of(as_of)
    start_dt, end_dt = default_range(grain, start, end, when)
    if compare is None and top is None:
        result = _query_one(k, grain, start_dt, end_dt, by, w, use_cache)
        result.elapsed_ms = (time.perf_counter() - t0) * 1000
        result.as_of = when
        return result
    # Composite questions are cached whole, keyed by the version of everything they read.
    first = shift_range(start_dt, end_dt, grain, compare)[0] if compare else start_dt
    key = _cache_key(k, grain, start_dt, end_dt, by, w, extra={"compare": compare, "top": top}, first=first)
    hit = cache.get(key) if use_cache else None
    if hit is not None:
        df, meta, level = hit
        return QueryResult(
            df.copy(),
            k,
            grain,
            start_dt,
            end_dt,
            by,
            w,
            meta["sql"],
            meta["params"],
            tuple(meta["entries"]),
            meta["version"],
            level,
            (time.perf_counter() - t0) * 1000,
            compare,
            when,
        )
    if top is not None:
        totals = _query_one(k, "total", start_dt, end_dt, by, w, use_cache)
        keep = totals.df.sort_values("value", ascending=False).head(int(top))[by[0]].tolist()
        if grain == "total":  # the totals are the answer: slice them instead of asking again
            totals.df = totals.df[totals.df[by[0]].isin(keep)].reset_index(drop=True)
        else:
            w = {**w, by[0]: tuple(sorted(keep))}
    result = (
        totals
        if top is not None and grain == "total"
        else _query_one(k, grain, start_dt, end_dt, by, w, use_cache)
    )
    if compare:
        result.df = _with_comparison(result.df, k, grain, start_dt, end_dt, by, w, compare, use_cache)
        result.compare = compare
    if top is not None:
        order = result.df.groupby(by[0])["value"].sum().sort_values(ascending=False).index
        rank = {v: i for i, v in enumerate(order)}
        sort = ([] if grain == "total" else ["period"]) + [by[0]]
        result.df = result.df.sort_values(
            sort, key=lambda c: c.map(rank) if c.name == by[0] else c, ignore_index=True
        )
    if use_cache:
        cache.put(
            key,
            result.df,
            {
                "sql": result.sql,
                "params": {p: str(v) for p, v in result.params.items()},
                "entries": list(result.catalog_entries),
                "version": result.version,
            },
        )
    result.elapsed_ms = (time.perf_counter() - t0) * 1000
    result.as_of = when
    return result


def _with_comparison(
    df: pd.DataFrame,
    k: Kpi,
    grain: str,
    start: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    compare: str,
    use_cache: bool,
) -> pd.DataFrame:
    """Add ``previous`` and ``change`` from the same question over the comparison range."""
    p_start, p_end, off = shift_range(start, end, grain, compare)
    prev = _query_one(k, grain, p_start, p_end, by, where, use_cache).df.rename(columns={"value": "previous"})
    keys = list(by)
    if grain != "total":
        prev["period"] = prev["period"] + off
        keys = ["period", *keys]
    if keys:
        out = df.merge(prev, on=keys, how="left")
    else:
        value = df["value"].iloc[0] if not df.empty else (0.0 if k.additive else np.nan)
        previous = prev["previous"].iloc[0] if not prev.empty else (0.0 if k.additive else np.nan)
        out = pd.DataFrame({"value": [value], "previous": [previous]})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["change"] = np.where(
            out["previous"].abs() > 0, (out["value"] - out["previous"]) / out["previous"].abs(), np.nan
        )
    return out


def _cache_key(
    k: Kpi,
    grain: str,
    start: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    extra: dict | None = None,
    first: datetime | None = None,
) -> str:
    """Question + the newest data version touching any day it reads."""
    day_end = end.date() if end == floor_period(end, "day") else end.date() + timedelta(days=1)
    version = cache.versions.range_version((first or start).date(), day_end)
    cfg = settings()
    spec = {
        "kpi": k.name,
        "expr": k.expression,
        "grain": grain,
        "start": start,
        "end": end,
        "by": by,
        "where": where,
        "tz": cfg.timezone,
        "db": cfg.database_url or str(cfg.home),
        "scope": row_scope.current().key(),
        **(extra or {}),
    }
    return f"{cache.make_key(spec)}:{version}"


def _query_one(
    k: Kpi,
    grain: str,
    start: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    use_cache: bool,
) -> QueryResult:
    t0 = time.perf_counter()
    key = _cache_key(k, grain, start, end, by, where)
    version = int(key.rsplit(":", 1)[1])
    if use_cache:
        hit = cache.get(key)
        if hit is not None:
            df, meta, level = hit
            return QueryResult(
                df.copy(),
                k,
                grain,
                start,
                end,
                by,
                where,
                meta["sql"],
                meta["params"],
                tuple(meta["entries"]),
                version,
                level,
                (time.perf_counter() - t0) * 1000,
            )
    covered = _returns_cover(k, grain, start, end, by, where)
    if covered is not None and covered[1] >= end:
        sql, params, entries = _returns_sql(covered[0], grain, start, end, by, where)
        df = _fill(_run(sql, params), k, grain, start, end, by)
        cache.record_layer("L3")
        return _answer(
            k, grain, start, end, by, where, key, version, use_cache, t0, df, sql, params, entries, "L3"
        )
    split = _distinct_split(k, grain, start, end, covered)
    if split is not None:
        return _distinct_total(k, start, split, end, by, where, key, version, use_cache, t0)
    split = _live_split(k, grain, start, end, covered)
    if split is not None:
        return _split_total(k, grain, start, split, end, by, where, key, version, use_cache, t0)
    sql, params, entries, layer = plan_sql(k, grain, start, end, by, where)
    df = _fill(_run(sql, params), k, grain, start, end, by)
    for lv in layer.split("+"):
        cache.record_layer(lv)
    log.debug("query %s %s v%s from %s", k.name, grain, version, layer)
    return _answer(
        k, grain, start, end, by, where, key, version, use_cache, t0, df, sql, params, entries, layer
    )


# --- ranges that include today: closed days stay cached while today's batches arrive ------------


def _live_split(
    k: Kpi, grain: str, start: datetime, end: datetime, covered: tuple[Fact, datetime] | None
) -> datetime | None:
    """Where to split a question whose range includes today: the start of today, or None.

    Day and hour rows never straddle midnight; a total splits only when its parts add up (sums and
    counts, not ratios or distinct counts). Distinct counts by day split where their returns
    table stops being current, so the days before come from it."""
    if grain not in ("hour", "day", "total"):
        return None
    if grain == "total" and (not k.additive or _DISTINCT.search(k.expression)):
        return None
    if covered is not None and grain == "day" and start < covered[1] < end:
        return covered[1]
    return _today_inside(start, end)


def _today_inside(start: datetime, end: datetime) -> datetime | None:
    """The start of today when it falls inside the range after at least one whole day, else None."""
    today = floor_period(local_now(), "day")
    return today if start < today < end and (today - start) >= timedelta(days=1) else None


def _split_total(
    k: Kpi,
    grain: str,
    start: datetime,
    split: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    key: str,
    version: int,
    use_cache: bool,
    t0: float,
) -> QueryResult:
    """The closed days (from the cache once asked, until a batch touches them) plus today's part.

    On a live stream every batch is a new data version, so without the split each refresh
    recomputed the whole range; now it reads only today's rows."""
    closed = _query_one(k, grain, start, split, by, where, use_cache)
    recent = _query_one(k, grain, split, end, by, where, use_cache)
    if grain != "total":
        df = pd.concat([closed.df, recent.df], ignore_index=True)
    elif by:
        df = closed.df.merge(recent.df, on=list(by), how="outer", suffixes=("", "_today")).fillna(0.0)
        df["value"] = df["value"] + df.pop("value_today")
        df = df.sort_values(list(by), ignore_index=True)
    else:
        df = pd.DataFrame({"value": [float(closed.df["value"].sum()) + float(recent.df["value"].sum())]})
    sql = f"-- days before {split:%Y-%m-%d}:\n{closed.sql}\n-- plus {split:%Y-%m-%d} onwards:\n{recent.sql}"
    params = {**{f"closed.{p}": v for p, v in closed.params.items()}, **recent.params}
    entries = tuple(dict.fromkeys([*closed.catalog_entries, *recent.catalog_entries]))
    layer = "+".join(dict.fromkeys([*closed.cache_level.split("+"), *recent.cache_level.split("+")]))
    return _answer(
        k, grain, start, end, by, where, key, version, use_cache, t0, df, sql, params, entries, layer
    )


def _answer(k, grain, start, end, by, where, key, version, use_cache, t0, df, sql, params, entries, layer):
    """Cache an answer under its question's key and wrap it with where it came from."""
    if use_cache:
        cache.put(
            key, df, {"sql": sql, "params": {p: str(v) for p, v in params.items()}, "entries": list(entries)}
        )
    return QueryResult(
        df.copy(),
        k,
        grain,
        start,
        end,
        by,
        where,
        sql,
        params,
        tuple(entries),
        version,
        layer,
        (time.perf_counter() - t0) * 1000,
    )


# --- distinct counts over a range that includes today --------------------------------------------


def _distinct_split(
    k: Kpi, grain: str, start: datetime, end: datetime, covered: tuple[Fact, datetime] | None
) -> datetime | None:
    """Where to split a distinct-count total: where its returns table stops being current, else
    the start of today (the closed days then stay cached)."""
    if grain != "total" or not _DISTINCT.fullmatch(k.expression.strip()):
        return None
    if covered is not None and start < covered[1] < end:
        return covered[1]
    return _today_inside(start, end)


def _returns_cover(
    k: Kpi,
    grain: str,
    start: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
) -> tuple[Fact, datetime] | None:
    """The fact whose returns table can answer this distinct count, and up to when it is current.

    It keeps one scope per region/channel value (or all), so it answers whole days with at most one
    value per filter; two regions at once are not a sum of scopes and go to the base table."""
    if grain not in ("day", "week", "month", "total") or not _DISTINCT.fullmatch(k.expression.strip()):
        return None
    if any(len(v) != 1 for v in where.values()):
        return None
    if start != floor_period(start, "day") or end != floor_period(end, "day"):
        return None
    needed = set(by) | set(where)
    all_facts = facts()
    fact = next((f for f in map(all_facts.get, k.facts) if f.returns and needed <= set(f.dimensions)), None)
    if fact is None:
        return None
    stale = cache.versions.mv_valid_before(_entry_table(fact.returns))
    return fact, end if stale is None else min(end, datetime.combine(stale, datetime.min.time()))


def _returns_sql(
    fact: Fact,
    grain: str,
    start: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
) -> tuple[str, dict[str, Any], list[str]]:
    """Distinct customers per period as a sum: each counts on their first active day in the period
    (or in the range, for the first one), the day whose previous active day falls before it."""
    meta = dimensions()
    params: dict[str, Any] = {"r_from": start.date(), "r_to": end.date()}
    scope = ""
    for d in fact.dimensions:
        col = meta[d].get("column", d)
        if d in where:
            params[f"w_{d}"] = where[d][0]
            scope += f" and {col} = :w_{d}"
        else:
            scope += f" and {col} <> '*'" if d in by else f" and {col} = '*'"
    if grain == "total":
        period, first = "", ":r_from"
    elif grain == "day":
        period, first = "day::timestamp as period, ", "day"
    else:
        period = f"date_trunc('{grain}', day::timestamp) as period, "
        first = f"greatest(date_trunc('{grain}', day::timestamp)::date, :r_from)"
    groups = ([] if grain == "total" else ["period"]) + list(by)
    dims_sel = "".join(f"{meta[d].get('column', d)} as {d}, " for d in by)
    sql = (
        f"select {period}{dims_sel}sum(customers) as value\n"
        f"from {_entry_table(fact.returns)}\n"
        f"where day >= :r_from and day < :r_to{scope} and prev_day < {first}"
        + (f"\ngroup by {', '.join(groups)} order by {', '.join(groups)}" if groups else "")
    )
    return sql, params, [fact.returns]


def _distinct_total(
    k: Kpi,
    start: datetime,
    split: datetime,
    end: datetime,
    by: tuple[str, ...],
    where: dict[str, tuple[str, ...]],
    key: str,
    version: int,
    use_cache: bool,
    t0: float,
) -> QueryResult:
    """distinct(start..end) = distinct(start..split) + those in split..end not seen before split.

    The first part is a closed period (cached once a day); the second probes today's few
    thousand customers against an index. Live batches then cost milliseconds, not a recount.
    """
    closed = _query_one(k, "total", start, split, by, where, use_cache)
    fact = _pick_fact(k, set(by) | set(where), "hour")
    col = _DISTINCT.fullmatch(k.expression.strip()).group(1)
    table = _entry_table(fact.base)
    t = catalog.entry_metadata(fact.base).get("time_column", "hour")
    meta = dimensions()
    params: dict[str, Any] = {"a_from": start, "a_to": split, "n_from": split, "n_to": end}
    flt_n = _filters(where, params)
    flt_a = "".join(f" and a.{meta[d].get('column', d)} = any(:w_{d})" for d in where)
    same = "".join(f" and a.{meta[d].get('column', d)} = n.{d}" for d in by)
    dims_sel = "".join(f"{meta[d].get('column', d)} as {d}, " for d in by)
    tz = "ops.business_tz()"
    sql = (
        f"select {''.join(d + ', ' for d in by)}count(*) as value from (\n"
        f"  select distinct {dims_sel}{col} from {table}\n"
        f"  where {t} >= (cast(:n_from as timestamp) at time zone {tz}) and {t} < (cast(:n_to as timestamp) at time zone {tz}){flt_n}\n"
        f") n where not exists (select 1 from {table} a where a.{col} = n.{col}{same}\n"
        f"  and a.{t} >= (cast(:a_from as timestamp) at time zone {tz}) and a.{t} < (cast(:a_to as timestamp) at time zone {tz}){flt_a})"
        + (f"\ngroup by {', '.join(by)}" if by else "")
    )
    new = _run(sql, params)
    if by:
        df = closed.df.merge(new.rename(columns={"value": "new"}), on=list(by), how="outer").fillna(0.0)
        df["value"] = df["value"] + df.pop("new")
        df = df.sort_values(list(by), ignore_index=True)
    else:
        df = pd.DataFrame(
            {"value": [(closed.value or 0.0) + (float(new["value"].iloc[0]) if len(new) else 0.0)]}
        )
    full_sql = f"-- distinct before {split:%Y-%m-%d}:\n{closed.sql}\n-- plus new since then:\n{sql}"
    entries = tuple(dict.fromkeys([*closed.catalog_entries, fact.base]))
    layer = (
        "+".join(dict.fromkeys([*closed.cache_level.split("+"), "L4"]))
        if closed.cache_level not in ("L1", "L2")
        else "L4"
    )
    cache.record_layer("L4")
    return _answer(
        k, "total", start, end, by, where, key, version, use_cache, t0, df, full_sql, params, entries, layer
    )
