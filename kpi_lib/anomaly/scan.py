"""Warehouse scanning: run each KPI's rules over its gold series and keep the incidents.

A *series* is one KPI at one grain, overall or for one value of a dimension (``revenue|hour|
region=Europe``). :func:`scan` reads each series through ``kpi_lib.query`` (so through the cache),
runs :func:`kpi_lib.anomaly.detect` with the rules catalog.yml gives that KPI and grain, and upserts
the incidents into ``ops.anomalies`` keyed by (series, start): scanning again updates an incident
(its peak, end, severity, explanation) but never duplicates it, and never touches its status.

Only closed periods are scanned (the current hour is still filling up and would look like a
drop), except at minute grain with ``include_partial=True``, which lets the live alert listener
react in seconds: the current minute counts as it is while it is young (a lower bound, so a surge
shows at once but a drop cannot be imagined from a few seconds of data), and is extrapolated to a
full minute once ``EXTRAPOLATE_AFTER_S`` seconds have passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from psycopg.types.json import Jsonb

from .. import catalog, warehouse
from .. import incidents as incident_store
from .. import kpis as semantic
from ..config import settings
from . import materiality
from .attribution import attribute
from .detect import detect, incidents
from .rules import with_budget

log = logging.getLogger(__name__)

#: dimensions scanned per grain (None = the KPI overall); a KPI only gets the ones it allows
DIMENSIONS: dict[str, tuple[str | None, ...]] = {
    "minute": (None, "region"),
    "hour": (None, "region", "category"),
    "day": (None, "region", "category"),
}
#: history read before the scanned window, so the rules have a baseline
HISTORY = {"minute": timedelta(hours=6), "hour": timedelta(days=63), "day": timedelta(days=400)}
#: default window to report incidents from, when `since` is not given
LOOKBACK = {"minute": timedelta(minutes=30), "hour": timedelta(days=2), "day": timedelta(days=14)}
EXTRAPOLATE_AFTER_S = 20  # a current minute older than this is scaled up to a full minute


@dataclass
class ScanResult:
    """What a scan looked at and found."""

    series: int = 0
    incidents: int = 0
    new: int = 0
    updated: int = 0
    seconds: float = 0.0
    new_ids: list[int] = field(default_factory=list)
    #: the earliest start of a new incident (an incident can start before the scan's window: a
    #: window step's reaches back to where its run began), so that e-mails look back that far
    new_since: datetime | None = None
    errors: list[str] = field(default_factory=list)
    #: incidents found but not material (why -> how many), and dimensions skipped (one value only)
    immaterial: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def rules_for(kpi: semantic.Kpi, grain: str) -> Any:
    """The rules catalog.yml gives a KPI at a grain, or None when the KPI is not scanned at it.

    ``rules`` is either one rule set (a built-in name or a spec) for every grain, or a mapping
    from grain (and optionally ``default``) to rule sets: the grains it lists are the ones scanned.
    """
    r = kpi.rules or "default"
    if isinstance(r, dict) and set(r) <= {*semantic.GRAINS, "default"}:
        return r.get(grain) or r.get("default")
    return r


def series_key(kpi: str, grain: str, dimension: str | None, value: str | None) -> str:
    return f"{kpi}|{grain}|{dimension}={value}" if dimension else f"{kpi}|{grain}"


def label_for(kpi: semantic.Kpi, dimension: str | None, value: str | None) -> str:
    return f"{kpi.label} in {value}" if dimension else kpi.label


def _trim(series: pd.Series) -> pd.Series:
    """Drop the periods before a sum or count first had data: zeros filled in before a business
    (or a country, a product line) existed are not history, and a first day judged against them
    alarms against an expected 0. The rule set's own warm-up then starts at the first real period."""
    nonzero = series.to_numpy() != 0
    if not nonzero.any():
        return series.iloc[:0]
    return series.iloc[int(nonzero.argmax()) :]


def _series(
    k: semantic.Kpi,
    grain: str,
    start: datetime,
    end: datetime,
    dimension: str | None,
    partial_until: datetime | None,
) -> list[tuple[str | None, pd.Series]]:
    """The series of a KPI at a grain (overall, or one per value of ``dimension``), each starting at
    its first period with data (additive KPIs) or its first value (ratios)."""
    by = [dimension] if dimension else []
    df = semantic.query(k.name, grain, start=start, end=end, by=by).df
    if partial_until is not None:  # the current minute, scaled up to a full minute
        part = semantic.query(k.name, grain, start=end, end=end + timedelta(minutes=1), by=by).df
        if not part.empty:
            elapsed = (partial_until - end).total_seconds()
            if elapsed >= EXTRAPOLATE_AFTER_S:
                part = part.assign(value=part["value"] * (60.0 / elapsed))
            df = pd.concat([df, part], ignore_index=True)
    if df.empty:
        return []
    groups = (
        [(str(v), g.set_index("period")["value"].sort_index()) for v, g in df.groupby(dimension, sort=True)]
        if dimension
        else [(None, df.set_index("period")["value"].sort_index())]
    )
    out = []
    for value, series in groups:
        series = _trim(series) if k.additive else series.loc[series.first_valid_index() :]
        if len(series):
            out.append((value, series))
    return out


class _Materiality:
    """What materiality needs about one KPI at one grain: its expected total per period (from the
    rules run on the KPI overall) and each slice's volume (its orders, by default)."""

    def __init__(self, k: semantic.Kpi, grain: str, start: datetime, end: datetime, rules: Any, p) -> None:
        self.k, self.grain, self.start, self.end, self.rules, self.p = k, grain, start, end, rules, p
        self._expected: pd.Series | None = None
        self._volume: dict[str | None, dict[str | None, pd.Series]] = {}
        defs = semantic.definitions()
        vol = defs.get(p.volume_kpi)
        self.vol = vol if vol is not None and vol.additive else (k if k.additive else None)

    def overall(self, frame: pd.DataFrame) -> None:
        """The rules' result on the KPI overall (its expected value is the total a slice is weighed by)."""
        self._expected = frame["expected"].where(frame["expected"] > 0).ffill()

    def total_at(self, when: Any) -> float:
        if self._expected is None:  # the overall was not scanned: run its rules for the total only
            groups = _series(self.k, self.grain, self.start, self.end, None, None)
            frame = detect(groups[0][1], self.rules) if groups else pd.DataFrame({"expected": []})
            self.overall(frame)
        e = self._expected.asof(pd.Timestamp(when)) if len(self._expected) else float("nan")
        return float(e) if e == e else float("nan")

    def thin(self, series: pd.Series, dim: str | None, value: str | None) -> np.ndarray | None:
        """A ratio's periods with fewer than ``min_ratio_volume`` of the volume KPI (orders) behind
        them: an hour with one order has that order's value as its average order value, and four
        returns against one sale a return rate of 400%. Too few to judge (None: volume unknown)."""
        _, volume = self.volume(dim, value)
        if volume is None:
            return None
        return (volume.reindex(series.index).fillna(0.0).abs() < self.p.min_ratio_volume).to_numpy()

    def volume(self, dim: str | None, value: str | None) -> tuple[float, pd.Series | None]:
        """(share of the volume KPI, the slice's volume series) of a slice; (1.0, None) if unknown."""
        if self.vol is None or (dim is not None and dim not in self.vol.dimensions):
            return 1.0, None
        if dim not in self._volume:
            try:
                slices = dict(_series(self.vol, self.grain, self.start, self.end, dim, None))
                if dim is not None:
                    slices[None] = dict(_series(self.vol, self.grain, self.start, self.end, None, None)).get(
                        None
                    )
                self._volume[dim] = slices
            except Exception as exc:  # not kept at this grain: volume is not judged
                log.debug("no volume for %s by %s: %s", self.k.name, dim, exc)
                self._volume[dim] = {}
        slices = self._volume[dim]
        if not slices:
            return 1.0, None
        mine, total = slices.get(value), slices.get(None)
        if mine is None or not len(mine):
            return 0.0, pd.Series(dtype=float)
        if dim is None or total is None:
            return 1.0, mine
        both = float(total.reindex(mine.index).abs().sum())
        return (float(mine.abs().sum()) / both if both > 0 else 1.0), mine


def _in_incident(volume: pd.Series | None, rows: pd.Index) -> float | None:
    """Orders a slice usually sees over an incident's carrying periods, or saw, whichever is more."""
    if volume is None:
        return None
    if not len(volume):
        return 0.0
    usual = float(volume.abs().mean()) * len(rows)
    actual = float(volume.reindex(rows).fillna(0).abs().sum())
    return max(usual, actual)


def scan(
    kpis: Sequence[str] | None = None,
    since: Any = None,
    grains: Sequence[str] = ("hour", "day"),
    dimensions: dict[str, Sequence[str | None]] | None = None,
    now: datetime | None = None,
    include_partial: bool = False,
    budget_scale: Mapping[str, float] | None = None,
) -> ScanResult:
    """Scan KPI series for incidents starting at or after ``since`` and store them in ops.anomalies.

    ``kpis`` defaults to every KPI in catalog.yml; ``since`` (a date/time in the business time
    zone) defaults to a lookback per grain, counted back from ``now`` (default: the data's as-of,
    :func:`kpi_lib.kpis.as_of`: the wall clock on live data, the newest order on an old export). Returns counts and the ids of incidents new to the store.

    Each series starts at its own first period with data, and its rules' warm-up runs from there. A
    dimension with a single value in the data read (``category=Unknown`` when a file had none) is
    not scanned when the KPI overall is: it would repeat it. At hour and day grain an incident is kept only
    if it is material (:mod:`kpi_lib.anomaly.materiality`: volume, impact on the KPI's total, a
    deviation at all), and its severity is its business impact. ``budget_scale`` (KPI -> factor)
    scales a KPI's false-alarm budget: the sensitivity users set on the "Alert rules" page.
    """
    t0 = time.perf_counter()
    res = ScanResult()
    defs = semantic.definitions()
    names = list(kpis or defs)
    now = now or semantic.as_of().at  # an old export is scanned up to its own end, not today
    tz = settings().timezone
    policy = materiality.policy(catalog.metadata().get("metadata", {}).get("materiality"))
    rows: list[dict] = []
    overall: list[tuple[dict, Any]] = []  # incidents on a KPI as a whole, to explain by dimension
    breakdowns: dict[tuple[str, str], list[tuple[str, dict[str, pd.DataFrame]]]] = {}
    for grain in grains:
        end = semantic.floor_period(now, grain)  # closed periods only
        partial_until = None
        if include_partial and grain == "minute":
            partial_until = now
        window_start = pd.Timestamp(since).to_pydatetime() if since is not None else end - LOOKBACK[grain]
        if getattr(window_start, "tzinfo", None) is not None:
            window_start = pd.Timestamp(window_start).tz_convert(tz).tz_localize(None).to_pydatetime()
        window_start = semantic.floor_period(window_start, grain)  # incidents start on period boundaries
        start = semantic.floor_period(window_start - HISTORY[grain], grain)
        judged = grain in policy.grains
        resolved = resolutions(grain, start)
        for name in names:
            k = defs[name]
            rules = rules_for(k, grain)
            if rules is None:
                continue
            rules = with_budget(rules, (budget_scale or {}).get(name, 1.0))
            judge = _Materiality(k, grain, start, end, rules, policy) if judged else None
            dims = tuple((dimensions or DIMENSIONS).get(grain, (None,)))
            for dim in dims:
                if dim is not None and dim not in k.dimensions:
                    continue
                try:
                    groups = _series(k, grain, start, end, dim, partial_until)
                except Exception as exc:  # e.g. a KPI not kept at this grain
                    res.errors.append(f"{name} {grain} {dim or ''}: {exc}")
                    continue
                if dim is not None and len(groups) < 2 and None in dims:
                    # one value (or none): the same series as the KPI overall, scanned once already
                    res.skipped.append(f"{name}|{grain}|{dim}")
                    continue
                frames: dict[str, pd.DataFrame] = {}
                for value, series in groups:
                    res.series += 1
                    label = label_for(k, dim, value)
                    thin = judge.thin(series, dim, value) if judge is not None and not k.additive else None
                    frame = detect(
                        series, rules, label=label, fmt=k.format_compact, thin=thin, points=k.is_percent
                    )
                    frame = rearmed(frame, resolved.get(series_key(name, grain, dim, value), ()), grain)
                    if dim is not None:
                        frames[value] = frame
                    elif judge is not None:
                        judge.overall(frame)
                    found = [
                        inc
                        for inc in incidents(
                            frame, label=label, fmt=k.format_compact, rules=rules, points=k.is_percent
                        )
                        if pd.Timestamp(inc.alarm_at) >= pd.Timestamp(window_start)
                        and not (partial_until is not None and _partial_drop(inc, end))
                    ]
                    if not found:
                        continue
                    share, volume = judge.volume(dim, value) if judge is not None else (1.0, None)
                    for inc in found:
                        verdict = None
                        if judge is not None:
                            verdict = materiality.judge(
                                value=inc.value,
                                expected=inc.expected,
                                additive=k.additive,
                                count=k.unit == "count",
                                volume_share=share,
                                volume_in_incident=_in_incident(volume, _carrying(frame, inc)),
                                total=judge.total_at(inc.peak) if k.additive else float("nan"),
                                p=policy,
                            )
                            if not verdict.material:
                                why = verdict.reason.split(" ")[0]
                                res.immaterial[why] = res.immaterial.get(why, 0) + 1
                                continue
                        rows.append(
                            _row(
                                k,
                                grain,
                                dim,
                                value,
                                inc,
                                tz,
                                verdict,
                                chart_band(frame, inc, grain, tz),
                                policy,
                            )
                        )
                        if dim is None:
                            overall.append((rows[-1], inc))
                if dim is not None and frames and k.additive:
                    breakdowns.setdefault((name, grain), []).append((dim, frames))
    _attach_drivers(overall, breakdowns)
    res.incidents = len(rows)
    if rows:
        res.new_ids, res.updated = store(rows)
        res.new = len(res.new_ids)
        fresh = set(res.new_ids)
        res.new_since = min((r["started_at"] for r in rows if r.get("id") in fresh), default=None)
    res.seconds = time.perf_counter() - t0
    log.info(
        "scanned %d series: %d incidents (%d new, %d not material) in %.1fs",
        res.series,
        res.incidents,
        res.new,
        sum(res.immaterial.values()),
        res.seconds,
    )
    return res


def resolutions(grain: str, since: datetime) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Incidents a person resolved, by series: (start, resolved at), as naive business times like a
    series' periods. (Not only those still going when resolved: :func:`rearmed` cuts one off where
    it alarmed again after its resolution, which moves its stored end before the resolution.)"""
    with warehouse.connect_raw() as conn:
        rows = conn.execute(
            "select series_key, started_at, resolved_at from ops.anomalies"
            " where grain = %s and status = 'resolved' and resolved_at is not null and started_at >= %s",
            [grain, _ts(since, settings().timezone)],
        ).fetchall()
    out: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for key, started, resolved in rows:
        out.setdefault(key, []).append(
            (incident_store.local_time(started), incident_store.local_time(resolved))
        )
    return out


def rearmed(
    frame: pd.DataFrame, resolved: Sequence[tuple[pd.Timestamp, pd.Timestamp]], grain: str
) -> pd.DataFrame:
    """``frame`` with each resolved incident that alarmed again after its resolution cut in two: the
    first period after it (ending after it: a surge in the minute someone resolved counts) that
    fires and lies outside its usual range is a new alarm, and a new incident from the first of the
    periods outside that range that lead up to it (as :func:`detect` starts any incident). Resolving says "fixed"; a surge a
    few minutes later, or a drop still there, is news, not part of the incident someone closed
    (which stays resolved, up to that period). The tail of a window step (a 5-minute mean that
    still holds the old surge) fires on ordinary values and cuts nothing."""
    if not len(resolved) or not len(frame):
        return frame
    ids = frame["incident"].to_numpy(dtype=np.int64).copy()
    fired = frame["rule"].astype(str).to_numpy() != ""
    value = frame["value"].to_numpy(dtype=float)
    side = np.sign(value - frame["expected"].to_numpy(dtype=float))
    with np.errstate(invalid="ignore"):
        outside = ~(
            (value >= frame["lower"].to_numpy(dtype=float)) & (value <= frame["upper"].to_numpy(dtype=float))
        )
    news = fired & outside
    idx = frame.index
    ends = idx + pd.Timedelta(seconds=_period_s(grain))
    cuts = []
    for started, at in resolved:
        pos = int(idx.searchsorted(started))
        if pos >= len(idx) or idx[pos] != started or ids[pos] == 0:
            continue
        again = np.flatnonzero((ids == ids[pos]) & news & (ends > at))
        if len(again):
            cut = begun = int(again[0])
            # a window step fires on its second period or later: the new incident starts where the
            # periods outside the usual range that lead up to it (same side, after the resolution)
            # begin; the resolved one ends on its last period outside that range before them
            while (
                begun - 1 > pos
                and ids[begun - 1] == ids[pos]
                and outside[begun - 1]
                and side[begun - 1] == side[cut]
                and ends[begun - 1] > at
            ):
                begun -= 1
            bad = np.flatnonzero(outside[pos:begun])
            ids[pos + (int(bad[-1]) if len(bad) else 0) + 1 : begun] = 0
            cuts.append((begun, cut))
    if not cuts:
        return frame
    first = (ids > 0) & np.r_[True, ids[1:] != ids[:-1]]
    first[[b for b, _ in cuts]] = True
    out = frame.copy()
    out["incident"] = np.where(ids > 0, np.cumsum(first), 0)  # numbered again in row order
    out.iloc[[c for _, c in cuts], out.columns.get_loc("is_anomaly")] = 1
    return out


def _carrying(frame: pd.DataFrame, inc) -> pd.Index:
    """The periods that carry an incident: its rows off the expected value in the peak's direction
    by at least half the peak's deviation (a one-day spike that keeps an incident open for a week
    is carried by one day), and at least its peak."""
    rows = frame.loc[inc.start : inc.end if inc.end is not None else None]
    dev = (rows["value"] - rows["expected"]).to_numpy(dtype=float)
    peak = inc.value - inc.expected
    if peak == peak and peak != 0:
        with np.errstate(invalid="ignore"):
            keep = dev * np.sign(peak) >= 0.5 * abs(peak)
        if keep.any():
            return rows.index[keep]
    return pd.Index([inc.peak])


def _partial_drop(inc, end: datetime) -> bool:
    """An incident whose alarm is on the minute still filling and is below expected: not news yet.

    The current minute is scanned so that a surge shows within seconds; it holds only part of the
    minute's orders (scaled up after EXTRAPOLATE_AFTER_S), so a drop is judged once it has closed.
    """
    return pd.Timestamp(inc.alarm_at) >= pd.Timestamp(end) and inc.value < inc.expected


def _ts(value: Any, tz: str) -> datetime | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    ts = pd.Timestamp(value)
    return (
        ts.tz_localize(tz, ambiguous=True, nonexistent="shift_forward") if ts.tzinfo is None else ts
    ).to_pydatetime()


def impact_sentence(impact: float, label: str, grain: str) -> str:
    """The gap as a share of a usual period's total: "4.2% of a usual day's revenue overall", or
    "1.8 times ..." when a slice's gap outgrows the whole (returns can pull a day's total down)."""
    usual = (
        f"a usual {grain}'s {label} overall"
        if grain in ("hour", "day", "week", "month")
        else f"{label} overall"
    )
    share = f"{impact:.2g} times" if impact >= 1 else f"{impact:.1%} of"
    return f"Impact: the gap is {share} {usual}."


def chart_band(frame: pd.DataFrame, inc, grain: str, tz: str) -> dict | None:
    """The expected value and usual range of every period the incident's chart shows (from
    :data:`kpi_lib.incidents.CHART_CONTEXT` before its start to that after its end), for
    ``ops.anomalies.band``: the chart draws the range the series was judged against, not one
    value carried across the incident."""
    before, after = incident_store.chart_context(grain)
    last = inc.end if inc.end is not None else frame.index[-1]
    rows = frame.loc[pd.Timestamp(inc.start) - before : pd.Timestamp(last) + after]
    rows = rows[rows["expected"].notna()]
    if rows.empty:
        return None

    def numbers(col: str) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), 6) for v in rows[col].to_numpy(dtype=float)]

    return {
        "t": [_ts(t, tz).isoformat() for t in rows.index],
        **{col: numbers(col) for col in incident_store.BAND},
    }


def _row(
    k: semantic.Kpi,
    grain: str,
    dim: str | None,
    value: str | None,
    inc,
    tz: str,
    verdict: materiality.Verdict | None = None,
    band: dict | None = None,
    policy: materiality.Policy | None = None,
) -> dict:
    explanation = inc.explanation
    if verdict is not None and dim is not None:
        if k.additive:
            explanation = f"{explanation} {impact_sentence(verdict.impact, k.label.lower(), grain)}"
        else:  # a ratio's gap is no share of a total: what matters is how much business it covers
            volume = (policy or materiality.Policy()).volume_kpi
            explanation = f"{explanation} Impact: {value} holds {verdict.volume:.1%} of the {volume}."
    return {
        "series_key": series_key(k.name, grain, dim, value),
        "kpi": k.name,
        "grain": grain,
        "dimension": dim,
        "dim_value": value,
        "started_at": _ts(inc.start, tz),
        "alarm_at": _ts(inc.alarm_at, tz),  # not stored: how :func:`store` finds it under an older start
        "peak_at": _ts(inc.peak, tz),
        "ended_at": _ts(inc.end, tz),
        "value": inc.value,
        "expected": inc.expected,
        "lower_bound": inc.lower,
        "upper_bound": inc.upper,
        "deviation_pct": inc.deviation_pct,
        "score": inc.score,
        # business impact where it is judged; elsewhere (the live minute grain) the rules' own
        "severity": verdict.severity if verdict is not None else (inc.severity or "low"),
        "rule": inc.rule,
        "explanation": explanation,
        "drivers": None,
        "band": band,
    }


def _attach_drivers(overall: list[tuple[dict, Any]], breakdowns: dict) -> None:
    """Name the dimension values that explain an incident on a KPI as a whole (additive KPIs)."""
    for row, inc in overall:
        parts = []
        for dim, frames in breakdowns.get((row["kpi"], row["grain"]), []):
            try:
                a = attribute(frames, inc, dimension=dim)
            except Exception as exc:  # attribution is a nicety: never lose the incident over it
                log.debug("no attribution for %s by %s: %s", row["series_key"], dim, exc)
                continue
            if a.text and a.top is not None:
                parts.append((float(a.shares.iloc[0].get("share", 0) or 0), a.text))
        if parts:
            row["drivers"] = "; ".join(text for _, text in sorted(parts, reverse=True))


def _period_s(grain: str) -> float:
    return {"minute": 60, "hour": 3600, "day": 86400}.get(grain, 86400)


COLUMNS = (
    "series_key",
    "kpi",
    "grain",
    "dimension",
    "dim_value",
    "started_at",
    "peak_at",
    "ended_at",
    "value",
    "expected",
    "lower_bound",
    "upper_bound",
    "deviation_pct",
    "score",
    "severity",
    "rule",
    "explanation",
    "drivers",
    "band",
)


def store(rows: list[dict]) -> tuple[list[int], int]:
    """Upsert incidents by (series_key, started_at). Returns (ids of new incidents, number updated)."""
    cols = ", ".join(COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    updates = ", ".join(
        f"{c} = excluded.{c}"
        for c in COLUMNS
        if c not in ("series_key", "started_at", "kpi", "grain", "dimension", "dim_value")
    )
    new_ids: list[int] = []
    updated = 0
    with warehouse.connect_raw() as conn:
        for r in rows:
            if r.get("alarm_at") and r["alarm_at"] > r["started_at"]:
                # stored before its start reached back to where the run began (a window step's
                # alarm comes a period or more after it; scans before this one keyed it by its
                # alarm): the same incident, moved to its start, not stored and e-mailed twice
                conn.execute(
                    "update ops.anomalies set started_at = %(start)s where id = ("
                    " select id from ops.anomalies where series_key = %(key)s"
                    " and started_at > %(start)s and started_at <= %(alarm)s order by started_at limit 1)"
                    " and not exists (select 1 from ops.anomalies where series_key = %(key)s"
                    " and started_at = %(start)s)",
                    {"key": r["series_key"], "start": r["started_at"], "alarm": r["alarm_at"]},
                )
            row = conn.execute(
                f"insert into ops.anomalies ({cols}) values ({marks}) "
                f"on conflict (series_key, started_at) do update set {updates}, updated_at = now() "
                "returning id, (xmax = 0) as inserted",
                [Jsonb(r["band"]) if c == "band" and r.get("band") else r.get(c) for c in COLUMNS],
            ).fetchone()
            r["id"] = row[0]
            if row[1]:
                new_ids.append(row[0])
            else:
                updated += 1
        conn.commit()
    return new_ids, updated
