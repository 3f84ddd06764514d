"""Score detection against labelled business incidents (the demo's injected anomalies).

    from kpi_lib.demo import Business
    from kpi_lib.anomaly.evaluate import demo_series, detect_all, event_scores

    biz = Business(lines=1_000_000, days=730, seed=1, end=datetime(2026, 11, 22, tzinfo=UTC))
    series = demo_series(biz)                      # {SeriesKey: pd.Series}, every series a scan looks at
    results = detect_all(series, business_rules()) # {(kpi, grain): rule set}, see business_rules()
    scores = event_scores(results, biz.labels(), grace=2, windows=scan_windows(biz))
    scores.f1, scores.false_alarms, scores.events  # or evaluate_demo(biz, business_rules())

A labelled event counts as **found** if an alarm (``is_anomaly == 1``) on the label's own series
(its KPI, grain, dimension and value) falls within ``[starts_at, ends_at + grace periods]``.
A **false alarm** is an alarm on any scanned series that no labelled incident explains. A label
explains alarms during its window (plus grace) on every series that contains the affected slice
(any KPI): the overall series, the label's own dimension value, and every value of the *other*
dimension (an outage in Europe is also visible in Electronics, not in Asia Pacific). An alarm on
Asia Pacific during the Europe outage is a false alarm. Known calendar events (holidays) are not
excused here: an alarm on Black Friday is a false alarm.

Series are built with pandas from silver-shaped frames (``orders``, ``lines``), in UTC, with the
KPI definitions of catalog.yml: revenue = sum(quantity x unit_price x (1 - discount)) (returns
negative), orders = distinct orders with a positive line, aov = revenue / orders, return_rate =
units returned / units sold. Periods without orders are 0 for revenue and orders and missing (NaN)
for the ratios.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

KPIS = ("revenue", "orders", "aov", "return_rate")
DIMENSIONS = ("region", "category")
GRAINS = {"hour": "h", "day": "D"}


class SeriesKey(NamedTuple):
    """Which series: ``('orders', 'hour', 'region', 'Europe')``; dimension None = overall."""

    kpi: str
    grain: str
    dimension: str | None = None
    dim_value: str | None = None

    def label(self) -> str:
        where = f" in {self.dim_value}" if self.dimension else ""
        return f"{self.kpi.replace('_', ' ').capitalize()}{where} per {self.grain}"


# --- building KPI series from silver-shaped frames ---------------------------------------------


def _facts(orders: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """One row per order line with its time and region and the additive measures."""
    o = orders[["order_id", "ordered_at", "region"]]
    f = lines[["order_id", "category", "quantity", "unit_price", "discount"]].merge(
        o, on="order_id", how="inner"
    )
    q = f["quantity"].astype(float)
    f["revenue"] = q * f["unit_price"].astype(float) * (1 - f["discount"].astype(float))
    f["units_sold"] = q.clip(lower=0)
    f["units_returned"] = (-q).clip(lower=0)
    f["ordered_at"] = pd.to_datetime(f["ordered_at"], utc=True)
    return f


def kpi_frames(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    grain: str,
    start=None,
    end=None,
    dimensions: Iterable[str] = DIMENSIONS,
) -> dict[SeriesKey, pd.Series]:
    """Every KPI series (overall and per value of each dimension) at one grain, on a full UTC grid.

    ``start``/``end`` (UTC, end exclusive) bound the grid; by default the data's first and last
    complete periods.
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    freq = GRAINS[grain]
    f = _facts(orders, lines)
    f["period"] = f["ordered_at"].dt.floor(freq)
    start = pd.Timestamp(start).tz_convert("UTC") if start is not None else f["period"].min()
    end = pd.Timestamp(end).tz_convert("UTC") if end is not None else f["period"].max()
    grid = pd.date_range(start.ceil(freq), end, freq=freq, inclusive="left", tz="UTC")
    out: dict[SeriesKey, pd.Series] = {}
    for dim in (None, *dimensions):
        keys = ["period"] if dim is None else ["period", dim]
        sums = f.groupby(keys, observed=True)[["revenue", "units_sold", "units_returned"]].sum()
        pos = f[f["quantity"] > 0].drop_duplicates([*keys, "order_id"])
        sums["orders"] = pos.groupby(keys, observed=True).size()
        sums["orders"] = sums["orders"].fillna(0)
        if dim is None:
            groups = [(None, sums)]
        else:
            groups = [(v, g.droplevel(dim)) for v, g in sums.groupby(level=dim, observed=True)]
        for value, g in groups:
            g = g.reindex(grid)
            revenue, n = g["revenue"].fillna(0.0), g["orders"].fillna(0.0)
            sold, back = g["units_sold"].fillna(0.0), g["units_returned"].fillna(0.0)
            kpis = {
                "revenue": revenue,
                "orders": n,
                "aov": (revenue / n).where(n > 0),
                "return_rate": (back / sold).where(sold > 0),
            }
            for kpi, s in kpis.items():
                out[SeriesKey(kpi, grain, dim, value)] = s.rename(kpi).astype(float)
    return out


def business_frames(biz) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All of a :class:`kpi_lib.demo.Business` history as two silver-shaped frames."""
    orders, lines = [], []
    for o, ln in biz.history():
        orders.append(o)
        lines.append(ln)
    return pd.concat(orders, ignore_index=True), pd.concat(lines, ignore_index=True)


def demo_series(biz, frames: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict[SeriesKey, pd.Series]:
    """Every series a scan looks at, each KPI overall and per region and per category, at hour and
    day grain, over the business's whole history (detection needs it to learn the expected value;
    :func:`event_scores` with :func:`scan_windows` decides where alarms count)."""
    orders, lines = frames if frames is not None else business_frames(biz)
    start, end = pd.Timestamp(biz.start).tz_convert("UTC"), pd.Timestamp(biz.end).tz_convert("UTC")
    out = kpi_frames(orders, lines, "day", start.ceil("D"), end.floor("D"))
    out.update(kpi_frames(orders, lines, "hour", start.ceil("h"), end.floor("h")))
    return out


def scan_windows(
    biz, hour_days: int = 30, cover_labels: bool = True
) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Per grain, the [start, end) in which alarms are counted: hour grain over the last ``hour_days``
    days (with ``cover_labels``, reaching back to two days before the oldest hour-grain label), day
    grain over the whole history."""
    start, end = pd.Timestamp(biz.start).tz_convert("UTC"), pd.Timestamp(biz.end).tz_convert("UTC")
    hour_from = end.floor("h") - pd.Timedelta(days=hour_days)
    if cover_labels:
        labels = biz.labels()
        hourly = labels[labels["grain"] == "hour"]
        if len(hourly):
            hour_from = min(
                hour_from,
                pd.Timestamp(hourly["starts_at"].min()).tz_convert("UTC").floor("D") - pd.Timedelta(days=2),
            )
    return {"hour": (hour_from, end.floor("h")), "day": (start.ceil("D"), end.floor("D"))}


# --- running detection over many series ----------------------------------------------------------

#: The demo's KPIs: sums and counts vs ratios (which built-in rule sets suit them).
KPI_KIND = {"revenue": "additive", "orders": "additive", "aov": "ratio", "return_rate": "ratio"}
#: The demo business's own promotion days (its summer sale), on top of the retail holidays.
DEMO_PROMOTIONS = ("07-15", "07-16")


def business_rules(
    kinds: Mapping[str, str] = KPI_KIND, calendar: Iterable[str] | None = ("retail", *DEMO_PROMOTIONS)
) -> dict[tuple[str, str], Any]:
    """{(kpi, grain): rule set} from the business built-ins (:data:`rules.BUSINESS_RULES`).

    ``calendar`` replaces the built-ins' known days (None keeps them: retail holidays only; ``()``
    = no calendar at all).
    """
    from kpi_lib.anomaly.rules import BUSINESS_RULES

    out: dict[tuple[str, str], Any] = {}
    for kpi, kind in kinds.items():
        for grain, name in BUSINESS_RULES[kind].items():
            out[(kpi, grain)] = (
                name if calendar is None else {"extends": name, "calendar": {"days": list(calendar)}}
            )
    return out


def rules_for(key: SeriesKey, rules: Any) -> Any:
    """Pick the rule set for a series from ``{grain: rules}``, ``{(kpi, grain): rules}`` or one rule set."""
    if isinstance(rules, Mapping) and not ({"steps", "extends"} & set(rules)):
        for k in ((key.kpi, key.grain), key.grain, key.kpi):
            if k in rules:
                return rules_for(key, rules[k])
        return "default"
    return rules


def detect_all(
    series_by_key: Mapping[SeriesKey, pd.Series], rules: Any = "default"
) -> dict[SeriesKey, pd.DataFrame]:
    """:func:`kpi_lib.anomaly.detect` on every series (``rules`` as in :func:`rules_for`)."""
    from kpi_lib.anomaly.detect import detect

    return {
        k: detect(s, rules=rules_for(k, rules), label=SeriesKey(*k).label()) for k, s in series_by_key.items()
    }


def stored_labels(
    kpi: str,
    grain: str,
    dimension: str | None = None,
    dim_value: str | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """The labelled incidents in ``ops.anomaly_labels`` that show in one series, in business time
    (naive, like KPI series): labels on the KPI overall show in every slice of it. Only those that
    overlap [start, end) when given."""
    from ..config import settings
    from ..warehouse import connect_raw

    with connect_raw() as conn:
        cur = conn.execute(
            "select label_id, kind, description, kpi, grain, dimension, dim_value, starts_at, ends_at"
            " from ops.anomaly_labels where kpi = %s and grain = %s"
            " and (dimension is null or (dimension = %s and dim_value = %s)) order by starts_at",
            [kpi, grain, dimension, dim_value],
        )
        labels = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    tz = settings().timezone
    for col in ("starts_at", "ends_at"):
        labels[col] = pd.to_datetime(labels[col], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    if start is not None:
        labels = labels[labels["ends_at"] > pd.Timestamp(start)]
    if end is not None:
        labels = labels[labels["starts_at"] < pd.Timestamp(end)]
    return labels.reset_index(drop=True)


# --- scoring -------------------------------------------------------------------------------------


def _alarm_times(result: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    flags = result["is_anomaly"] if isinstance(result, pd.DataFrame) else result
    idx = flags.index[flags.fillna(0).astype(float).to_numpy() > 0]
    idx = pd.DatetimeIndex(idx)
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _affects(label: Mapping[str, Any], key: SeriesKey) -> bool:
    """Does the label's slice show in this series (any KPI)?"""
    dim = label.get("dimension")
    if not dim or (isinstance(dim, float) and np.isnan(dim)) or key.dimension is None:
        return True
    if key.dimension == dim:
        return key.dim_value == label.get("dim_value")
    return True  # another dimension: every value of it contains part of the slice


def _own(label: Mapping[str, Any], key: SeriesKey) -> bool:
    dim = label.get("dimension")
    dim = None if (dim is None or (isinstance(dim, float) and np.isnan(dim))) else dim
    value = label.get("dim_value") if dim else None
    return key == SeriesKey(label["kpi"], label["grain"], dim, value)


@dataclass(frozen=True)
class EventScores:
    """Event-level scores: found labels, false alarms, precision, recall, F1."""

    found: int
    labels: int
    false_alarms: int
    precision: float
    recall: float
    f1: float
    events: pd.DataFrame  # one row per label: label_id, kind, found, first_alarm, lag (periods)
    false: pd.DataFrame  # one row per false alarm: series key fields, at

    def as_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "labels": self.labels,
            "false_alarms": self.false_alarms,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "f1": round(self.f1, 3),
        }


def event_scores(
    series_by_key: Mapping[Any, pd.DataFrame | pd.Series],
    labels: pd.DataFrame,
    grace: int = 2,
    windows: Mapping[str, tuple[Any, Any]] | None = None,
) -> EventScores:
    """Event precision/recall/F1 of alarms against labelled incidents.

    ``series_by_key`` maps :class:`SeriesKey` (or a plain ``(kpi, grain, dimension, dim_value)``
    tuple) to a :func:`detect` result (or a 0/1 alarm Series) indexed by period start. ``grace`` is
    in periods of each series' grain. ``windows`` ({grain: (start, end)}) limits where alarms count
    (false or true); by default everywhere.
    """
    labels = labels.copy()
    for col in ("starts_at", "ends_at"):
        labels[col] = pd.to_datetime(labels[col], utc=True)
    recs = labels.to_dict("records")
    events = []
    false_rows = []
    found_at: dict[str, pd.Timestamp | None] = {r["label_id"]: None for r in recs}
    for raw_key, result in series_by_key.items():
        key = SeriesKey(*raw_key)
        step = pd.Timedelta(1, unit=GRAINS[key.grain])
        alarms = _alarm_times(result)
        if windows and key.grain in windows:
            lo, hi = (pd.Timestamp(t) for t in windows[key.grain])
            lo = lo.tz_localize("UTC") if lo.tz is None else lo
            hi = hi.tz_localize("UTC") if hi.tz is None else hi
            alarms = alarms[(alarms >= lo) & (alarms < hi)]
        for t in alarms:
            explained = False
            for r in recs:
                # a period counts if it overlaps the window; grace periods after the end
                w_lo = r["starts_at"].floor(GRAINS[key.grain])
                w_hi = r["ends_at"] + grace * step
                if w_lo <= t <= w_hi:
                    if _own(r, key):
                        explained = True
                        if found_at[r["label_id"]] is None or t < found_at[r["label_id"]]:
                            found_at[r["label_id"]] = t
                    elif _affects(r, key):
                        explained = True
            if not explained:
                false_rows.append({**key._asdict(), "at": t})
    for r in recs:
        t = found_at[r["label_id"]]
        step = pd.Timedelta(1, unit=GRAINS[r["grain"]])
        events.append(
            {
                "label_id": r["label_id"],
                "kind": r["kind"],
                "kpi": r["kpi"],
                "grain": r["grain"],
                "dim_value": r.get("dim_value"),
                "found": t is not None,
                "first_alarm": t,
                "lag_periods": None
                if t is None
                else int((t - r["starts_at"].floor(GRAINS[r["grain"]])) / step),
                "before_end": t is not None and t < r["ends_at"],
            }
        )
    ev = pd.DataFrame(events)
    fa = pd.DataFrame(false_rows, columns=[*SeriesKey._fields, "at"])
    found, n, nf = int(ev["found"].sum()) if len(ev) else 0, len(ev), len(fa)
    precision = found / (found + nf) if found + nf else 1.0
    recall = found / n if n else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EventScores(
        found=found, labels=n, false_alarms=nf, precision=precision, recall=recall, f1=f1, events=ev, false=fa
    )


def evaluate_demo(
    biz,
    rules: Any,
    grace: int = 2,
    hour_days: int = 30,
    frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Build every scanned series of a demo business, detect, and score against its labels."""
    t = time.perf_counter()
    series = demo_series(biz, frames=frames)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    results = detect_all(series, rules)
    t_detect = time.perf_counter() - t
    scores = event_scores(results, biz.labels(), grace=grace, windows=scan_windows(biz, hour_days))
    return {
        "scores": scores,
        "results": results,
        "series": series,
        "seconds": {"build": round(t_build, 2), "detect": round(t_detect, 2)},
    }
