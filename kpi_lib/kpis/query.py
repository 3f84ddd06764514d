"""Answering a :class:`Question`: the cache first, then the planner's SQL, split where it pays.

A range that runs through today is answered as its closed days (cached) plus today (recomputed),
so on a live stream a refresh reads only today's rows. Answers are cached keyed by the question
and the data version of the days they cover (``kpi_lib.cache``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from .. import cache
from .. import scope as row_scope
from ..config import settings
from ..errors import QueryError
from .definitions import Kpi, get
from .periods import AsOf, floor_period, local_now, shift_range
from .periods import as_of as resolve_as_of
from .planner import (
    _DISTINCT,
    _fill,
    _run,
    new_distinct_sql,
    plan_sql,
    returns_cover,
    returns_sql,
    sync_versions,
    today_inside,
)
from .question import Question

log = logging.getLogger(__name__)


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
    question: Question | None = None  # the resolved question this answers

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


@dataclass
class _Computed:
    """What answering one part of a question produced, before it is cached and wrapped."""

    df: pd.DataFrame
    sql: str
    params: dict[str, Any]
    entries: tuple[str, ...]
    layer: str


def query(
    kpi: str | Question,
    grain: str = "day",
    start: Any = None,
    end: Any = None,
    by: Iterable[str] = (),
    where: Mapping[str, Any] | None = None,
    compare: str | None = None,
    top: int | None = None,
    use_cache: bool = True,
    as_of: Any = None,
    *,
    exclude: Mapping[str, Any] | None = None,
    order: str = "desc",
) -> QueryResult:
    """Answer a KPI question. Every value travels as a bound parameter.

    ``kpi`` is a KPI name (then the other arguments make the question) or a :class:`Question`.
    ``compare`` adds ``previous`` and ``change`` (relative) columns for the previous period of the
    same length or the same period a year earlier. ``top=N`` keeps the N largest (``order="asc"``:
    smallest) values of the single ``by`` dimension over the whole range. ``exclude`` leaves
    dimension values out. Missing ``start``/``end`` count back from ``as_of`` (a time, or by
    default :func:`as_of`: the wall clock while data is live, else the latest data); the result
    carries the as-of it used and the resolved question.
    """
    t0 = time.perf_counter()
    if isinstance(kpi, Question):
        q = kpi
    else:
        q = Question(kpi, grain, start, end, by, where or {}, exclude or {}, top, order, compare)
    k = get(q.kpi)
    q.check(k)
    q = within_scope(k, q)
    sync_versions()  # once per question: every part below sees the same data version
    when = resolve_as_of(as_of)
    q = q.resolved(when)
    if q.compare is None and q.top is None:
        result = _query_one(k, q, use_cache)
        result.elapsed_ms = (time.perf_counter() - t0) * 1000
        result.as_of = when
        result.question = q
        return result
    # Composite questions are cached whole, keyed by the version of everything they read.
    first = shift_range(q.start, q.end, q.grain, q.compare)[0] if q.compare else q.start
    extra: dict[str, Any] = {"compare": q.compare, "top": q.top}
    if q.order != "desc":
        extra["order"] = q.order
    key = _cache_key(k, q, extra=extra, first=first)
    hit = cache.get(key) if use_cache else None
    if hit is not None:
        df, meta, level = hit
        return _result(
            k, q, df, meta["sql"], meta["params"], meta["entries"], meta["version"], level, t0, when
        )
    parts = q.replace(compare=None, top=None)
    if q.top is not None:
        totals = _query_one(k, parts.replace(grain="total"), use_cache)
        dim = q.by[0]
        keep = totals.df.sort_values("value", ascending=q.order == "asc").head(q.top)[dim].tolist()
        if q.grain == "total":  # the totals are the answer: slice them instead of asking again
            totals.df = totals.df[totals.df[dim].isin(keep)].reset_index(drop=True)
        else:
            parts = parts.replace(where={**parts.where_dict, dim: tuple(keep)})
    result = totals if q.top is not None and q.grain == "total" else _query_one(k, parts, use_cache)
    if q.compare:
        result.df = _with_comparison(result.df, k, parts, q.compare, use_cache)
        result.compare = q.compare
    if q.top is not None:
        dim = q.by[0]
        sums = result.df.groupby(dim)["value"]
        if q.order == "asc":  # a dimension value without a number is not the smallest
            order = sums.sum(min_count=1).sort_values(ascending=True, na_position="last").index
        else:
            order = sums.sum().sort_values(ascending=False).index
        rank = {v: i for i, v in enumerate(order)}
        sort = ([] if q.grain == "total" else ["period"]) + [dim]
        result.df = result.df.sort_values(
            sort, key=lambda c: c.map(rank) if c.name == dim else c, ignore_index=True
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
    result.question = q
    return result


def within_scope(kpi: Kpi, q: Question) -> Question:
    """The question narrowed to the reader's row scope (:mod:`kpi_lib.scope`): its limits become
    filters, so plans read the relations that carry them and caches key on them. The database
    enforces the same scope (row-level security); this makes the answer say so plainly."""
    sc = row_scope.current()
    if sc.everything:
        return q
    if sc.nothing:
        raise QueryError("No one is signed in to read this: open it through the front door and sign in.")
    where = q.where_dict
    for dim, allowed in sc.limits:
        if dim not in kpi.dimensions:
            raise QueryError(
                f"{kpi.label} cannot be shown within your rows ({sc.describe()}): it is not kept by {dim}."
            )
        asked = where.get(dim)
        if asked is None:
            where[dim] = allowed
            continue
        inside = tuple(v for v in asked if v in allowed)
        if not inside:
            raise QueryError(f"{dim} {', '.join(asked)} is outside your rows ({sc.describe()}).")
        where[dim] = inside
    return q.replace(where=where)


def _result(
    k: Kpi,
    q: Question,
    df: pd.DataFrame,
    sql: str,
    params: dict[str, Any],
    entries: Iterable[str],
    version: int,
    level: str,
    t0: float,
    when: AsOf | None = None,
) -> QueryResult:
    return QueryResult(
        df=df.copy(),
        kpi=k,
        grain=q.grain,
        start=q.start,
        end=q.end,
        by=q.by,
        where=q.where_dict,
        sql=sql,
        params=params,
        catalog_entries=tuple(entries),
        version=version,
        cache_level=level,
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        compare=q.compare,
        as_of=when,
        question=q,
    )


def _with_comparison(df: pd.DataFrame, k: Kpi, q: Question, compare: str, use_cache: bool) -> pd.DataFrame:
    """Add ``previous`` and ``change`` from the same question over the comparison range."""
    p_start, p_end, off = shift_range(q.start, q.end, q.grain, compare)
    prev = _query_one(k, q.replace(start=p_start, end=p_end), use_cache).df.rename(
        columns={"value": "previous"}
    )
    keys = list(q.by)
    if q.grain != "total":
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


def _cache_key(k: Kpi, q: Question, extra: dict | None = None, first: datetime | None = None) -> str:
    """Question + the newest data version touching any day it reads."""
    end = q.end
    day_end = end.date() if end == floor_period(end, "day") else end.date() + timedelta(days=1)
    version = cache.versions.range_version((first or q.start).date(), day_end)
    cfg = settings()
    spec = {
        "kpi": k.name,
        "expr": k.expression,
        "grain": q.grain,
        "start": q.start,
        "end": end,
        "by": q.by,
        "where": q.where_dict,
        "tz": cfg.timezone,
        "db": cfg.database_url or str(cfg.home),
        "scope": row_scope.current().key(),
        **({"exclude": q.exclude_dict} if q.exclude else {}),
        **(extra or {}),
    }
    return f"{cache.make_key(spec)}:{version}"


def _query_one(k: Kpi, q: Question, use_cache: bool) -> QueryResult:
    """One plain question (no compare, no top) over a resolved range."""
    t0 = time.perf_counter()
    key = _cache_key(k, q)
    version = int(key.rsplit(":", 1)[1])
    if use_cache:
        hit = cache.get(key)
        if hit is not None:
            df, meta, level = hit
            return _result(k, q, df, meta["sql"], meta["params"], meta["entries"], version, level, t0)
    where, exclude = q.where_dict, q.exclude_dict
    covered = returns_cover(k, q.grain, q.start, q.end, q.by, where, exclude)
    if covered is not None and covered[1] >= q.end:
        sql, params, entries = returns_sql(covered[0], q.grain, q.start, q.end, q.by, where)
        df = _fill(_run(sql, params), k, q.grain, q.start, q.end, q.by)
        cache.record_layer("L3")
        return _answer(k, q, key, version, use_cache, t0, _Computed(df, sql, params, tuple(entries), "L3"))
    split = _distinct_split(k, q, covered)
    if split is not None:
        return _distinct_total(k, q, split, key, version, use_cache, t0)
    split = _live_split(k, q, covered)
    if split is not None:
        return _split_total(k, q, split, key, version, use_cache, t0)
    sql, params, entries, layer = plan_sql(k, q.grain, q.start, q.end, q.by, where, exclude)
    df = _fill(_run(sql, params), k, q.grain, q.start, q.end, q.by)
    for lv in layer.split("+"):
        cache.record_layer(lv)
    log.debug("query %s %s v%s from %s", k.name, q.grain, version, layer)
    return _answer(k, q, key, version, use_cache, t0, _Computed(df, sql, params, tuple(entries), layer))


def _answer(
    k: Kpi, q: Question, key: str, version: int, use_cache: bool, t0: float, c: _Computed
) -> QueryResult:
    """Cache an answer under its question's key and wrap it with where it came from."""
    if use_cache:
        cache.put(
            key,
            c.df,
            {"sql": c.sql, "params": {p: str(v) for p, v in c.params.items()}, "entries": list(c.entries)},
        )
    return _result(k, q, c.df, c.sql, c.params, c.entries, version, c.layer, t0)


# --- ranges that include today: closed days stay cached while today's batches arrive ------------


def _live_split(k: Kpi, q: Question, covered) -> datetime | None:
    """Where to split a question whose range includes today: the start of today, or None.

    Day and hour rows never straddle midnight; a total splits only when its parts add up (sums and
    counts, not ratios or distinct counts). Distinct counts by day split where their returns
    table stops being current, so the days before come from it."""
    if q.grain not in ("hour", "day", "total"):
        return None
    if q.grain == "total" and (not k.additive or _DISTINCT.search(k.expression)):
        return None
    if covered is not None and q.grain == "day" and q.start < covered[1] < q.end:
        return covered[1]
    return today_inside(q.start, q.end, local_now())


def _split_total(
    k: Kpi, q: Question, split: datetime, key: str, version: int, use_cache: bool, t0: float
) -> QueryResult:
    """The closed days (from the cache once asked, until a batch touches them) plus today's part.

    On a live stream every batch is a new data version, so without the split each refresh
    recomputed the whole range; now it reads only today's rows."""
    closed = _query_one(k, q.replace(end=split), use_cache)
    recent = _query_one(k, q.replace(start=split), use_cache)
    by = q.by
    if q.grain != "total":
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
    return _answer(k, q, key, version, use_cache, t0, _Computed(df, sql, params, entries, layer))


# --- distinct counts over a range that includes today --------------------------------------------


def _seed_last_day(
    k: Kpi, q: Question, split: datetime, seen: float, sql: str, params: dict, entry: str
) -> None:
    """Cache the day series' last day, counted while answering the total (same data version).

    A live page asks for the total and then the day series of the same range: both used to count
    the day's distinct customers, which grow all day (issue 17's soak: 19 k by the end, the
    slowest part of each live refresh). Only a split at midnight with exactly one day after it."""
    if q.end - split != timedelta(days=1) or split != floor_period(split, "day"):
        return
    day_q = q.replace(grain="day", start=split)
    key = _cache_key(k, day_q)
    frame = pd.DataFrame({"period": pd.to_datetime([split] if seen else []), "value": [seen] if seen else []})
    shown = f"-- this day's value is the column seen:\n{sql}"  # the SQL a person reads says which column
    meta = {"sql": shown, "params": {p: str(v) for p, v in params.items()}, "entries": [entry]}
    cache.put(key, frame.astype({"value": float}), meta)


def _distinct_split(k: Kpi, q: Question, covered) -> datetime | None:
    """Where to split a distinct-count total: where its returns table stops being current, else
    the start of today (the closed days then stay cached)."""
    if q.grain != "total" or not _DISTINCT.fullmatch(k.expression.strip()):
        return None
    if covered is not None and q.start < covered[1] < q.end:
        return covered[1]
    return today_inside(q.start, q.end, local_now())


def _distinct_total(
    k: Kpi, q: Question, split: datetime, key: str, version: int, use_cache: bool, t0: float
) -> QueryResult:
    """distinct(start..end) = distinct(start..split) + those in split..end not seen before split.

    The first part is a closed period (cached once a day); the second probes today's few
    thousand customers against an index. Live batches then cost milliseconds, not a recount.
    """
    closed = _query_one(k, q.replace(end=split), use_cache)
    sql, params, entry = new_distinct_sql(k, q.start, split, q.end, q.by, q.where_dict, q.exclude_dict)
    new = _run(sql, params)
    if use_cache and "seen" in new:
        _seed_last_day(k, q, split, float(new["seen"].iloc[0]), sql, params, entry)
    by = q.by
    if by:
        df = closed.df.merge(new.rename(columns={"value": "new"}), on=list(by), how="outer").fillna(0.0)
        df["value"] = df["value"] + df.pop("new")
        df = df.sort_values(list(by), ignore_index=True)
    else:
        df = pd.DataFrame(
            {"value": [(closed.value or 0.0) + (float(new["value"].iloc[0]) if len(new) else 0.0)]}
        )
    full_sql = f"-- distinct before {split:%Y-%m-%d}:\n{closed.sql}\n-- plus new since then:\n{sql}"
    entries = tuple(dict.fromkeys([*closed.catalog_entries, entry]))
    layer = (
        "+".join(dict.fromkeys([*closed.cache_level.split("+"), "L4"]))
        if closed.cache_level not in ("L1", "L2")
        else "L4"
    )
    cache.record_layer("L4")
    return _answer(k, q, key, version, use_cache, t0, _Computed(df, full_sql, params, entries, layer))
