"""Evaluate one threshold rule on one KPI series at an explicit as-of: a pure function.

The live pass (:func:`kpi_lib.thresholds.live.run`) and the page's backtest preview both call
:func:`evaluate`, so "this rule would have fired N times" is what the live path does on the same
history, by construction.

A period *breaches* when its value meets the rule's condition, its volume reaches the rule's
minimum and it does not start inside a maintenance window. Consecutive breaching periods are one
firing (an incident): it fires once at its first period and re-arms when a closed period no longer
breaches. Everything about period ``p`` depends on periods up to ``p`` only, so cutting the history
at any as-of never changes an earlier firing.

Only closed periods count, with one exception that keeps alerts fast: on an additive KPI (a sum or
a count) the period still filling is a lower bound of its final value, so when it *already* exceeds
an ``above`` threshold, or already ``rises`` more than the rule allows, the firing shows at once.
A drop is never judged on a period that is still filling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from .spec import Rule

_STEP = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)}
#: what "the same period last week / last year" means per grain (a year back is 52 weeks, so a
#: Monday is compared with a Monday)
_BACK = {
    "previous": {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)},
    "week": {"hour": pd.Timedelta(weeks=1), "day": pd.Timedelta(weeks=1), "week": pd.Timedelta(weeks=1)},
    "year": {"hour": pd.Timedelta(weeks=52), "day": pd.Timedelta(weeks=52), "week": pd.Timedelta(weeks=52)},
}


def period_length(grain: str) -> pd.Timedelta:
    return _STEP[grain]


def lookback(rule: Rule) -> pd.Timedelta:
    """How far before a period the rule looks (its comparison period)."""
    return (
        _BACK[rule.compare][rule.grain]
        if rule.condition in ("rises", "falls", "changes")
        else pd.Timedelta(0)
    )


@dataclass(frozen=True)
class Firing:
    """One firing of a rule: its first period, its most extreme period, and where it ended."""

    start: pd.Timestamp
    peak: pd.Timestamp
    end: pd.Timestamp | None  # the last breaching period; None while it still breaches
    value: float  # at the peak
    reference: float  # the threshold, or the comparison period's value, at the peak
    bound: float  # the value the peak had to pass
    change_pct: float | None  # against the reference, in percent
    periods: int


def _breaches(rule: Rule, value: float, base: float, partial: bool, additive: bool) -> tuple[bool, float]:
    """(does this period meet the condition, the value it had to pass)."""
    c, x = rule.condition, float(rule.threshold or 0.0)
    if c == "above":
        return value > x and (not partial or additive), x
    if c == "below":
        return value < x and not partial, x
    if not math.isfinite(base) or base == 0:  # no percent change from nothing
        return False, math.nan
    pct = (value - base) / abs(base) * 100.0
    if c == "rises":
        return pct > x and (not partial or additive), base + abs(base) * x / 100.0
    if c == "falls":
        return pct < -x and not partial, base - abs(base) * x / 100.0
    if c == "changes":
        up = pct > x and (not partial or additive)
        return up or (pct < -x and not partial), base + np.sign(pct) * abs(base) * x / 100.0
    return False, math.nan


def evaluate(
    rule: Rule,
    series: pd.Series,
    as_of: datetime,
    volume: pd.Series | None = None,
    additive: bool = True,
) -> list[Firing]:
    """The rule's firings on ``series`` (values indexed by period start) as known at ``as_of``.

    ``volume``: orders per period of the same slice (for ``min_volume``); ``additive``: the KPI is a
    sum or count (its filling period is a lower bound, see the module docstring)."""
    if not rule.is_threshold or series.empty:
        return []
    step = _STEP[rule.grain]
    cutoff = pd.Timestamp(as_of)
    s = series.sort_index()
    s = s[s.index < cutoff]
    back = lookback(rule)
    vol = volume.sort_index() if volume is not None else None
    firings: list[Firing] = []
    current: dict | None = None
    for p, value in s.items():
        partial = p + step > cutoff
        value = float(value) if value is not None else math.nan
        ok = math.isfinite(value) and not rule.in_maintenance(p.to_pydatetime())
        if ok and rule.min_volume > 0:
            v = float(vol.get(p, 0.0)) if vol is not None else 0.0
            ok = math.isfinite(v) and v >= rule.min_volume  # a filling period's volume only grows
        bound = math.nan
        if ok:
            base = float(s.get(p - back, math.nan)) if back else math.nan
            ok, bound = _breaches(rule, value, base, partial, additive)
        if ok:
            ref = float(rule.threshold) if rule.condition in ("above", "below") else base
            pct = (value - ref) / abs(ref) * 100.0 if ref and math.isfinite(ref) else None
            far = abs(value - bound)
            if current is None:
                current = {"start": p, "peak": p, "far": far, "value": value, "ref": ref, "bound": bound}
                current["pct"], current["n"] = pct, 0
            elif far > current["far"]:
                current.update(peak=p, far=far, value=value, ref=ref, bound=bound, pct=pct)
            current["n"] += 1
            current["last"] = p
        elif current is not None and not partial:  # a closed period back inside the rule: re-armed
            firings.append(_firing(current, ended=True))
            current = None
    if current is not None:
        firings.append(_firing(current, ended=False))
    return firings


def _firing(c: dict, ended: bool) -> Firing:
    return Firing(
        start=c["start"],
        peak=c["peak"],
        end=c["last"] if ended else None,
        value=c["value"],
        reference=c["ref"],
        bound=c["bound"],
        change_pct=c["pct"],
        periods=c["n"],
    )


def replay(
    rule: Rule,
    series: pd.Series,
    since: datetime,
    until: datetime,
    volume: pd.Series | None = None,
    additive: bool = True,
) -> list[pd.Timestamp]:
    """The onsets a live pass run at the end of every period between ``since`` and ``until`` would
    have seen, each on the pass where it first fired (for tests and the benchmark's baseline)."""
    step = _STEP[rule.grain]
    seen: list[pd.Timestamp] = []
    t = pd.Timestamp(since) + step
    while t <= pd.Timestamp(until):
        for f in evaluate(rule, series[series.index < t], t.to_pydatetime(), volume, additive):
            if f.start >= pd.Timestamp(since) and f.start not in seen:
                seen.append(f.start)
        t += step
    return seen
