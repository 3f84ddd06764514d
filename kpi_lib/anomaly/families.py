"""Synthetic series families with known ground truth, unlike the NAB dev series.

They exist to check that the rules generalise: each family is a kind of series people meet in
business and operations data, generated with a seed, with its true incidents (or none) known::

    from kpi_lib.anomaly.families import FAMILIES, generate, score

    case = generate("bursty_counts", seed=3)   # Case(name, series, truth=[(start, end), ...], ...)
    result = detect(case.series)
    score(case, result)                        # found / missed / false alarms / weeks

Families (grain, what is normal, what is injected):

========================  ======  ==========================================  ==============================
family                    grain   normal                                      injected (truth)
========================  ======  ==========================================  ==============================
``bursty_counts``         hour    Poisson counts 0-6 an hour, daily cycle,     a 6-hour outage at the daily
                                  overdispersed (gamma-mixed), random bursts  peak, a 4-hour surge (6x)
``heavy_tails``           5 min   daily-cycling level x Pareto noise (tail 3)    a level shift up (x3 the
                                  (ad-exchange CPC, API latency)              median) for 6 hours
``regime_change``         5 min   AR(1) noise around a level                  a permanent level shift of
                                                                              6 noise sd (one incident)
``weekly_business``       day     weekday rhythm (weekends -40%), yearly      a 4-day 45% drop; retail
                                  cycle, growth, retail holidays (x0.3-2.5)   holidays are in the calendar
``no_anomaly_*``          mixed   Gaussian, AR(1), random walk, slow drift,   nothing: every alarm is false
                                  daily cycle, Poisson counts, heavy tails
``short_daily``           day     a year of revenue: weekday rhythm, growth    a day at 35%, a 5-day 40% drop
``short_weekly``          week    three years of signups, growth               a week at 40%, a +40% step
``no_anomaly_short_*``    d / w   the two above without anomalies             nothing
``no_anomaly_short_``     week    three years of a shop's revenue: November   nothing (the first holidays
``weekly_retail``                 +30%, late December +70%, early January     come before the series has
                                  -30%, growth                                seen a year)
========================  ======  ==========================================  ==============================

The short families (``SHORT_FAMILIES``) are scored from row 28 and kept apart from ``FAMILIES``:
they measure the warm-up, which the others leave out of their scores.

A truth window counts as found if an alarm onset falls in ``[start, end + grace rows]``; every other
alarm onset is a false alarm. ``weeks`` is the span scored (after the warm-up), so false alarms
per series per week can be compared across grains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Case:
    """One generated series and its ground truth (row positions, inclusive)."""

    family: str
    seed: int
    series: pd.Series
    truth: list[tuple[int, int]]
    grace: int = 3  # rows after a window's end where an alarm still counts as found
    warmup: int = 0  # rows not scored (a detector has no history there)
    calendar: dict[str, Any] | None = None  # known event days (holidays) for the rule set
    note: str = ""

    def rules(self, base: Any = "default") -> Any:
        """``base`` (a built-in name or a spec) with this case's calendar, if it has one."""
        if not self.calendar:
            return base
        if isinstance(base, str):
            return {"extends": base, "calendar": self.calendar}
        return {**base, "calendar": self.calendar}


@dataclass(frozen=True)
class CaseScore:
    family: str
    seed: int
    found: int
    windows: int
    false_alarms: int
    weeks: float
    lags: list[int] = field(default_factory=list)  # rows from window start to the first alarm


def _idx(n: int, freq: str, start: str = "2011-01-03") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq=freq)


def _daily_shape(idx: pd.DatetimeIndex, low: float = 0.15) -> np.ndarray:
    """A business day: quiet at night, a peak in the early afternoon (in [low, 1])."""
    h = idx.hour.to_numpy() + idx.minute.to_numpy() / 60
    return low + (1 - low) * np.clip(np.sin((h - 6) / 16 * np.pi), 0, None)


def bursty_counts(seed: int, weeks: int = 10) -> Case:
    rng = np.random.default_rng(seed)
    idx = _idx(weeks * 7 * 24, "h")
    rate = 0.2 + 5.0 * _daily_shape(idx, low=0.0) * np.where(idx.dayofweek >= 5, 0.6, 1.0)
    rate = rate * rng.gamma(4.0, 0.25, len(idx))  # overdispersion: hour-to-hour mood
    bursts = rng.random(len(idx)) < 0.01  # a busload of orders now and then: normal
    rate = np.where(bursts, rate * rng.uniform(2, 4, len(idx)), rate)
    n = len(idx)
    # outage: 6 hours at the daily peak, in week 7; surge: 4 hours at 6x, in week 9
    day_out = 7 * 7 + int(rng.integers(0, 5))
    out_from = day_out * 24 + 11
    day_surge = 8 * 7 + int(rng.integers(0, 5))
    surge_from = day_surge * 24 + 13
    counts = rng.poisson(rate).astype(float)
    counts[out_from : out_from + 6] = 0
    counts[surge_from : surge_from + 4] = rng.poisson(rate[surge_from : surge_from + 4] * 6 + 6)
    assert surge_from + 4 < n
    return Case(
        "bursty_counts",
        seed,
        pd.Series(counts, idx, name="orders"),
        truth=[(out_from, out_from + 5), (surge_from, surge_from + 3)],
        warmup=14 * 24,
        note="hourly orders of a small shop: 0-6 an hour, bursts are normal",
    )


def heavy_tails(seed: int, days: int = 21) -> Case:
    rng = np.random.default_rng(seed)
    n = days * 288
    idx = _idx(n, "5min")
    level = 0.8 * np.exp(0.3 * _daily_shape(idx))
    x = level * (0.5 + rng.pareto(3.0, n))  # a Pareto tail (index 3): 10x the median is routine
    at = int(n * 0.75) + int(rng.integers(0, 288))
    x[at : at + 72] *= 3.0
    return Case(
        "heavy_tails",
        seed,
        pd.Series(x, idx, name="cpc"),
        truth=[(at, at + 71)],
        grace=6,
        warmup=3 * 288,
        note="cost per click: Pareto-tailed (index 3) around a daily level, a 6-hour tripling",
    )


def regime_change(seed: int, days: int = 14) -> Case:
    rng = np.random.default_rng(seed)
    n = days * 288
    idx = _idx(n, "5min")
    e = np.zeros(n)
    shocks = rng.normal(0, 1, n)
    for i in range(1, n):
        e[i] = 0.7 * e[i - 1] + shocks[i]
    sd = 1 / np.sqrt(1 - 0.49)
    at = int(n * 0.6) + int(rng.integers(0, 288))
    x = 50 + e
    x[at:] += 6 * sd
    return Case(
        "regime_change",
        seed,
        pd.Series(x, idx, name="latency"),
        truth=[(at, at + 11)],
        grace=6,
        warmup=2 * 288,
        note="AR(1) noise, a permanent step of 6 sd: one incident, then the new normal",
    )


def _retail_days(idx: pd.DatetimeIndex) -> dict[pd.Timestamp, float]:
    from kpi_lib.anomaly.rules import HOLIDAYS

    out: dict[pd.Timestamp, float] = {}
    for y in range(idx[0].year, idx[-1].year + 1):
        out[HOLIDAYS["black_friday"](y)] = 2.5
        out[HOLIDAYS["cyber_monday"](y)] = 2.0
        out[HOLIDAYS["christmas_eve"](y)] = 0.6
        out[HOLIDAYS["christmas"](y)] = 0.3
        out[HOLIDAYS["boxing_day"](y)] = 1.4
        out[HOLIDAYS["new_years_eve"](y)] = 0.6
        out[HOLIDAYS["new_year"](y)] = 0.4
    return out


def weekly_business(seed: int, days: int = 730) -> Case:
    rng = np.random.default_rng(seed)
    idx = _idx(days, "D", start="2010-01-04")
    dow = idx.dayofweek.to_numpy()
    week = np.array([1.0, 1.05, 1.05, 1.1, 1.15, 0.6, 0.55])[dow]
    year = 1 + 0.15 * np.sin(2 * np.pi * (idx.dayofyear.to_numpy() - 80) / 365.25)
    growth = 1 + 0.25 * np.arange(days) / 365
    x = 20_000 * week * year * growth * (1 + 0.06 * rng.standard_normal(days))
    for day, factor in _retail_days(idx).items():
        x[idx == day] *= factor
    at = int(days * 0.8) + int(rng.integers(0, 30))
    x[at : at + 4] *= 0.55
    return Case(
        "weekly_business",
        seed,
        pd.Series(x, idx, name="revenue"),
        truth=[(at, at + 3)],
        grace=2,
        warmup=120,
        calendar={"days": ["retail"], "before": 0, "after": 1},
        note="daily revenue: weekday rhythm, yearly cycle, growth, holidays in the calendar, a 4-day 45% drop",
    )


def _short_daily(seed: int, anomalies: bool = True) -> Case:
    """A year of daily revenue (a shop's first year, or a one-year export): weekday rhythm,
    growth, 8% noise; a one-day collapse to 35% and a 5-day 40% drop somewhere after day 40."""
    rng = np.random.default_rng(seed)
    days = 365
    idx = _idx(days, "D", start="2016-01-04")
    week = np.array([1.0, 1.05, 1.05, 1.1, 1.15, 0.6, 0.55])[idx.dayofweek.to_numpy()]
    x = 3_000 * week * (1 + 0.2 * np.arange(days) / days) * (1 + 0.08 * rng.standard_normal(days))
    truth = []
    if anomalies:
        one, five = sorted(rng.choice(np.arange(40, 355, 10), 2, replace=False) + rng.integers(0, 5, 2))
        x[one] *= 0.35
        x[five : five + 5] *= 0.6
        truth = [(int(one), int(one)), (int(five), int(five) + 4)]
    name = "short_daily" if anomalies else "no_anomaly_short_daily"
    return Case(name, seed, pd.Series(x, idx, name="revenue"), truth=truth, grace=2, warmup=28)


def _short_weekly(seed: int, anomalies: bool = True) -> Case:
    """Three years of weekly signups (156 rows): slow growth, 6% noise; a week at 40% and, later, a
    permanent 40% step up, both after week 40."""
    rng = np.random.default_rng(seed)
    weeks = 156
    idx = _idx(weeks, "W-MON", start="2012-01-02")
    x = 1_000 * (1 + 0.3 * np.arange(weeks) / weeks) * (1 + 0.06 * rng.standard_normal(weeks))
    truth = []
    if anomalies:
        one = int(rng.integers(40, 90))
        step = int(rng.integers(100, 146))
        x[one] *= 0.4
        x[step:] *= 1.4
        truth = [(one, one), (step, step + 1)]
    name = "short_weekly" if anomalies else "no_anomaly_short_weekly"
    return Case(name, seed, pd.Series(x, idx, name="signups"), truth=truth, grace=2, warmup=28)


def _short_weekly_retail(seed: int) -> Case:
    """Three years of a shop's weekly revenue (156 rows) starting in a random week: a holiday season
    (November +30%, the last weeks of December +70%, early January -30%), 20% growth a year, 6%
    noise, no anomaly. A yearly season cannot be expected before it has repeated, so a series judged
    inside its first year reads its first holidays as incidents (the twenty-sixth pass)."""
    rng = np.random.default_rng(seed)
    weeks = 156
    idx = _idx(weeks, "W-MON", start="2012-01-02") + pd.Timedelta(weeks=int(rng.integers(0, 52)))
    woy = idx.isocalendar().week.to_numpy()
    season = np.where(woy >= 50, 1.7, np.where(woy >= 47, 1.3, 1.0)) * np.where(woy <= 2, 0.7, 1.0)
    x = 20_000 * season * (1 + 0.2 * np.arange(weeks) / 52) * (1 + 0.06 * rng.standard_normal(weeks))
    return Case(
        "no_anomaly_short_weekly_retail", seed, pd.Series(x, idx, name="revenue"), truth=[], warmup=28
    )


def _no_anomaly(kind: str) -> Callable[[int], Case]:
    def make(seed: int) -> Case:
        rng = np.random.default_rng(seed)
        n, freq, warm = 14 * 288, "5min", 2 * 288
        idx = _idx(n, freq)
        if kind == "gaussian":
            x = 10 + rng.standard_normal(n)
        elif kind == "ar1":
            x = np.zeros(n)
            e = rng.standard_normal(n)
            for i in range(1, n):
                x[i] = 0.9 * x[i - 1] + e[i]
            x += 100
        elif kind == "random_walk":
            x = 100 + np.cumsum(rng.standard_normal(n))
        elif kind == "slow_drift":
            x = 100 + np.linspace(0, 40, n) + rng.standard_normal(n) * 2
        elif kind == "daily_cycle":
            x = 100 * (0.3 + _daily_shape(idx)) * (1 + 0.04 * rng.standard_normal(n))
        elif kind == "poisson":
            n, warm = 10 * 7 * 24, 14 * 24
            idx = _idx(n, "h")
            x = rng.poisson(0.3 + 3 * _daily_shape(idx, low=0.0)).astype(float)
        elif kind == "heavy_tails":
            x = 0.5 + rng.pareto(3.0, n)
        else:  # pragma: no cover - a programming error
            raise ValueError(kind)
        return Case(f"no_anomaly_{kind}", seed, pd.Series(x, idx, name=kind), truth=[], warmup=warm)

    return make


FAMILIES: dict[str, Callable[[int], Case]] = {
    "bursty_counts": bursty_counts,
    "heavy_tails": heavy_tails,
    "regime_change": regime_change,
    "weekly_business": weekly_business,
    **{
        f"no_anomaly_{k}": _no_anomaly(k)
        for k in ("gaussian", "ar1", "random_walk", "slow_drift", "daily_cycle", "poisson", "heavy_tails")
    },
}


#: short, coarse series (a year of days, three years of weeks): scored separately from FAMILIES,
#: because a rule set blind on its first 200 rows raises no false alarm there by construction, so
#: "no more false alarms than before" (the protocol's criterion (b)) cannot judge a warm-up
SHORT_FAMILIES: dict[str, Callable[[int], Case]] = {
    "short_daily": _short_daily,
    "short_weekly": _short_weekly,
    "no_anomaly_short_daily": lambda seed: _short_daily(seed, anomalies=False),
    "no_anomaly_short_weekly": lambda seed: _short_weekly(seed, anomalies=False),
    "no_anomaly_short_weekly_retail": _short_weekly_retail,
}


def generate(family: str, seed: int = 0) -> Case:
    """One series of a family (see the table above)."""
    try:
        return {**FAMILIES, **SHORT_FAMILIES}[family](seed)
    except KeyError:
        raise KeyError(
            f"unknown family {family!r}; families: {', '.join([*FAMILIES, *SHORT_FAMILIES])}"
        ) from None


def score(case: Case, result: pd.DataFrame | pd.Series) -> CaseScore:
    """Found truth windows, false alarms (onsets outside every window + grace) after the warm-up."""
    flags = result["is_anomaly"] if isinstance(result, pd.DataFrame) else result
    onsets = np.flatnonzero(np.asarray(flags, dtype=float) > 0)
    onsets = onsets[onsets >= case.warmup]
    found, lags, explained = 0, [], np.zeros(len(onsets), dtype=bool)
    for a, b in case.truth:
        hit = (onsets >= a) & (onsets <= b + case.grace)
        explained |= hit
        if hit.any():
            found += 1
            lags.append(int(onsets[hit][0] - a))
    idx = case.series.index
    span = (idx[-1] - idx[min(case.warmup, len(idx) - 1)]) / pd.Timedelta(days=7)
    return CaseScore(
        family=case.family,
        seed=case.seed,
        found=found,
        windows=len(case.truth),
        false_alarms=int((~explained).sum()),
        weeks=float(span),
        lags=lags,
    )
