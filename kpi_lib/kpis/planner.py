"""Planning: a resolved :class:`Question` -> SQL text, bound parameters, catalog entries, layers.

The KPI lists the facts that can answer it; the smallest fact with every dimension asked for (in
``by``, ``where`` or ``exclude``) is chosen. Day-or-coarser questions read the fact's daily
materialized view for the days it reflects and its hourly base table for the days after (see
``kpi_lib.cache``). Distinct counts (active customers) over whole days are sums over the fact's
``returns`` view (gold.customer_returns); the days after it, two filter values at once or an
exclusion count the base table. Every value is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .. import cache, catalog, replicas
from ..errors import QueryError
from .definitions import Fact, Kpi, dimensions, facts
from .periods import floor_period, next_period

_DISTINCT = re.compile(r"count\(\s*distinct\s+(\w+)\s*\)", re.IGNORECASE)

Where = dict[str, tuple[str, ...]]


def sync_versions() -> int:
    return cache.versions.sync()


def _normalise_where(kpi: Kpi, where: Mapping[str, Any] | None) -> Where:
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


def _filters(where: Where, params: dict[str, Any], exclude: Where | None = None, alias: str = "") -> str:
    """`` and col = any(:w_dim)`` per filter and `` and col <> all(:x_dim)`` per exclusion."""
    meta = dimensions()
    parts = []
    for dim, values in where.items():
        params[f"w_{dim}"] = list(values)
        parts.append(f" and {alias}{meta[dim].get('column', dim)} = any(:w_{dim})")
    for dim, values in (exclude or {}).items():
        params[f"x_{dim}"] = list(values)
        parts.append(f" and {alias}{meta[dim].get('column', dim)} <> all(:x_{dim})")
    return "".join(parts)


def plan_sql(
    kpi: Kpi,
    grain: str,
    start: datetime,
    end: datetime,
    by: Sequence[str],
    where: Where,
    exclude: Where | None = None,
) -> tuple[str, dict[str, Any], list[str], str]:
    """SQL text, bound parameters, catalog entries read and the layer(s) that answer."""
    exclude = exclude or {}
    needed = set(by) | set(where) | set(exclude)
    fact = _pick_fact(kpi, needed, grain)
    # the fact's rows carry every dimension it has; filters and groups use the ones asked for
    dims_needed = [d for d in fact.dimensions if d in needed]
    cols = ", ".join(_dim_select(fact, dims_needed) + list(fact.measures))
    params: dict[str, Any] = {}
    flt = _filters(where, params, exclude)
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


def _run(sql: str, params: dict[str, Any]) -> pd.DataFrame:
    # as the reader role, in the current row scope (the database enforces it); on a replica when
    # one is configured and has replayed the version this process has seen (kpi_lib.replicas)
    rows, columns = replicas.fetch(sa.text(sql), params)
    df = pd.DataFrame(rows, columns=columns)
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


# --- distinct counts --------------------------------------------------------------------------


def returns_cover(
    k: Kpi, grain: str, start: datetime, end: datetime, by: Sequence[str], where: Where, exclude: Where
) -> tuple[Fact, datetime] | None:
    """The fact whose returns table can answer this distinct count, and up to when it is current.

    It keeps one scope per region/channel value (or all), so it answers whole days with at most one
    value per filter; two regions at once (or all but one) are not a sum of scopes and go to the
    base table."""
    if grain not in ("day", "week", "month", "total") or not _DISTINCT.fullmatch(k.expression.strip()):
        return None
    if exclude or any(len(v) != 1 for v in where.values()):
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


def returns_sql(
    fact: Fact, grain: str, start: datetime, end: datetime, by: Sequence[str], where: Where
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


def new_distinct_sql(
    k: Kpi, start: datetime, split: datetime, end: datetime, by: Sequence[str], where: Where, exclude: Where
) -> tuple[str, dict[str, Any], str]:
    """Those counted in [split, end) that were not seen in [start, split): the second part of a
    distinct count split at ``split``. Returns SQL, parameters and the catalog entry read.

    Without ``by`` the statement also returns ``seen``, everyone counted in [split, end): on a
    live day that is the day's own value, which the day series would otherwise count again."""
    fact = _pick_fact(k, set(by) | set(where) | set(exclude), "hour")
    col = _DISTINCT.fullmatch(k.expression.strip()).group(1)
    table = _entry_table(fact.base)
    t = catalog.entry_metadata(fact.base).get("time_column", "hour")
    meta = dimensions()
    params: dict[str, Any] = {"a_from": start, "a_to": split, "n_from": split, "n_to": end}
    flt_n = _filters(where, params, exclude)
    flt_a = "".join(f" and a.{meta[d].get('column', d)} = any(:w_{d})" for d in where)
    flt_a += "".join(f" and a.{meta[d].get('column', d)} <> all(:x_{d})" for d in exclude)
    same = "".join(f" and a.{meta[d].get('column', d)} = n.{d}" for d in by)
    dims_sel = "".join(f"{meta[d].get('column', d)} as {d}, " for d in by)
    tz = "ops.business_tz()"
    counted = (
        f"select distinct {dims_sel}{col} from {table}\n"
        f"  where {t} >= (cast(:n_from as timestamp) at time zone {tz}) and {t} < (cast(:n_to as timestamp) at time zone {tz}){flt_n}"
    )
    unseen = (
        f"not exists (select 1 from {table} a where a.{col} = n.{col}{same}\n"
        f"  and a.{t} >= (cast(:a_from as timestamp) at time zone {tz}) and a.{t} < (cast(:a_to as timestamp) at time zone {tz}){flt_a})"
    )
    if not by:  # one pass over the new part answers both counts
        sql = (
            f"with n as materialized (\n  {counted}\n)\n"
            f"select (select count(*) from n where {unseen}) as value,\n"
            f"       (select count(*) from n) as seen"
        )
        return sql, params, fact.base
    sql = (
        f"select {''.join(d + ', ' for d in by)}count(*) as value from (\n  {counted}\n) n where {unseen}"
        + f"\ngroup by {', '.join(by)}"
    )
    return sql, params, fact.base


def today_inside(start: datetime, end: datetime, now: datetime) -> datetime | None:
    """The start of today when it falls inside the range after at least one whole day, else None."""
    today = floor_period(now, "day")
    return today if start < today < end and (today - start) >= timedelta(days=1) else None
