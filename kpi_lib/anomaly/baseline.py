"""The expected value of each row and its typical error, learned from earlier rows only.

Candidates, all causal:

* ``level``: the median of the previous ``window`` rows (follows drift and level changes);
* one per season (``1D``, ``7D``): the median of the values at the same time of day/week in the
  previous ``cycles`` cycles, looked up by timestamp, so gaps and irregular sampling are fine.

Each row uses the candidate whose mean absolute error over the previous ``history`` rows is lowest.
That is how seasonality is detected, causally: a daily cycle wins once it predicts better than the
rolling median, and a flat or random-walk series keeps the rolling median. The typical error (the
scale of the z-score) is that winning mean absolute error, floored at ``floor`` x the typical
absolute value, so a zero-variance stretch cannot make every later wiggle infinitely surprising.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpi_lib.anomaly.rules import Expected


@dataclass(frozen=True)
class Baseline:
    expected: np.ndarray  # expected value per row (NaN before enough history)
    scale: np.ndarray  # typical absolute error per row (> 0 where defined)
    source: np.ndarray  # which candidate gave `expected` ("level", "1D", ...; "" if none)
    typical: np.ndarray  # mean |value| over the previous `history` rows (the series' usual size)
    small: np.ndarray | None = None  # rows whose expected volume is too small to judge (scale "volume")


def _seasonal(
    ts: np.ndarray,
    x: np.ndarray,
    period: int,
    cycles: int,
    how: str = "median",
    level: np.ndarray | None = None,
) -> np.ndarray:
    """Median (or mean, or trimmed mean) of the values one, two, ... `cycles` periods earlier (ns),
    from earlier rows. With `level` (the recent level per row), each past value is first scaled by
    level now / level then, so growth and yearly drift between the cycles do not bias the result."""
    reach = np.maximum.accumulate(ts)  # monotone even if timestamps are not: lookups stay causal
    tol = period // 48  # e.g. 30 min for a day, 3.5 h for a week
    lagged = []
    for k in range(1, cycles + 1):
        target = ts - k * period
        j = np.searchsorted(reach, target, side="right") - 1  # last row whose time-so-far <= target
        jj = np.maximum(j, 0)
        ok = (j >= 0) & (ts[jj] <= target) & (ts[jj] >= target - tol)
        past = x[jj]
        if level is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = level / level[jj]
            past = past * np.where(np.isfinite(ratio) & (ratio > 0), np.clip(ratio, 0.5, 2.0), 1.0)
        lagged.append(np.where(ok, past, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as intended
        stack = np.vstack(lagged)
        if how == "median":
            return np.nanmedian(stack, axis=0)
        finite = np.isfinite(stack).sum(axis=0)
        enough = finite >= max(3, cycles // 4)  # a mean of 1-2 cycles is noise
        if how == "mean":
            return np.where(enough, np.nanmean(stack, axis=0), np.nan)
        # trimmed: drop the lowest and highest quarter of the finite values, average the rest
        ordered = np.sort(stack, axis=0)  # NaN last
        pos = np.arange(stack.shape[0])[:, None]
        cut = finite // 4
        keep = (pos >= cut) & (pos < finite - cut)
        total = np.where(keep, ordered, 0.0).sum(axis=0)
        return np.where(enough, total / np.maximum(keep.sum(axis=0), 1), np.nan)


def _past_mean(v: np.ndarray, window: int, min_rows: int) -> np.ndarray:
    return pd.Series(v).shift(1).rolling(window, min_periods=min_rows).mean().to_numpy()


#: mean |e| / median |e| for normal errors: keeps a median spread on the same scale as the mean
_MEDIAN_TO_MEAN = 0.7979 / 0.6745


def _past_spread(v: np.ndarray, window: int, min_rows: int, how: str) -> np.ndarray:
    if how == "median":
        past = pd.Series(v).shift(1).rolling(window, min_periods=min_rows).median().to_numpy()
        return past * _MEDIAN_TO_MEAN
    return _past_mean(v, window, min_rows)


def fit(x: np.ndarray, ts: np.ndarray | None, spec: Expected, exclude: np.ndarray | None = None) -> Baseline:
    """Expected value, typical error and winning candidate for every row (causal, vectorised).

    `ts` are int64 nanoseconds in row order, or None when the index has no time (no seasons then).
    Rows flagged in `exclude` (known calendar events) still feed the expected value's medians but
    not the error history: a Black Friday does not teach the series that it is noisy.
    """
    n = len(x)
    s = pd.Series(x)
    learn = np.ones(n, dtype=bool) if exclude is None else ~exclude
    candidates = {
        "level": s.shift(1).rolling(spec.window, min_periods=max(1, spec.window // 4)).median().to_numpy()
    }
    if ts is not None and n:
        for season in spec.seasons:
            period = pd.Timedelta(season).value
            if ts.max() - ts.min() >= period:  # a season that never repeats can never be chosen
                level = None
                if spec.adjust:  # the mean over the previous week (or period), from earlier rows
                    span = max(period, pd.Timedelta("7D").value)
                    # a calendar day stands in for itself with the same day a week earlier: leaving
                    # it out would change the mix of weekdays in the mean (a week whose holidays
                    # fall on weekdays looks like a weekend-heavy one, and vice versa)
                    week_ago = _seasonal(ts, x, pd.Timedelta("7D").value, 1)
                    usual = x if exclude is None else np.where(learn, x, week_ago)
                    # indexed by the time so far (as the seasonal lookups are), so a file whose
                    # timestamps go back once (a clock change, rows appended out of order) works
                    level = (
                        pd.Series(usual, index=pd.DatetimeIndex(np.maximum.accumulate(ts)))
                        .rolling(pd.Timedelta(span), closed="left", min_periods=1)
                        .mean()
                        .to_numpy()
                    )
                candidates[season] = _seasonal(
                    ts,
                    np.where(learn, x, np.nan) if exclude is not None else x,
                    period,
                    spec.cycles,
                    how=spec.average,
                    level=level,
                )

    best_err = np.full(n, np.inf)
    expected = np.full(n, np.nan)
    source = np.full(n, "", dtype=object)
    min_rows = min(spec.min_rows, spec.history)
    for name, pred in candidates.items():
        err = _past_spread(np.where(learn, np.abs(x - pred), np.nan), spec.history, min_rows, spec.spread)
        better = np.nan_to_num(err, nan=np.inf) < best_err
        best_err = np.where(better, err, best_err)
        expected = np.where(better, pred, expected)
        source[better] = name

    typical = _past_mean(np.where(learn, np.abs(x), np.nan), spec.history, min_rows)
    floor = np.maximum(spec.floor * np.nan_to_num(typical), 1e-12)
    err, small = best_err, None
    if spec.scale == "volume" and n:
        # Counts and sums of orders have variance proportional to their mean (Poisson-like), so the
        # typical error is spread over rows in proportion to sqrt(expected): the same average error
        # (best_err), c = best_err / mean sqrt(expected) per sqrt-unit. Below one "unit"
        # ((c / 0.8)^2, about one order's worth) it stops shrinking: a quiet night's single order is
        # not a 10-sigma event.
        v = np.abs(np.nan_to_num(expected))
        mean_root = _past_mean(
            np.where(learn & np.isfinite(expected), np.sqrt(v), np.nan), spec.history, min_rows
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(mean_root > 0, best_err / mean_root, np.nan)
        unit = (c / 0.8) ** 2
        by_volume = c * np.sqrt(np.maximum(v, unit))
        err = np.where(np.isfinite(by_volume), by_volume, best_err)
        if spec.min_volume > 0:
            with np.errstate(invalid="ignore"):
                # no unit known: every expectation so far was 0, or most errors were exactly 0 (a
                # median spread of 0): a row expected to hold nothing is too small to judge, others
                # are judged. A sparse live minute (an order every two minutes) otherwise read each
                # order as "1 above the expected 0 (0-0)", high, and e-mailed it
                known = np.isfinite(unit) & (unit > 0)
                small = np.where(known, v < spec.min_volume * unit, v <= 0)
    scale = np.where(np.isfinite(best_err), np.maximum(err, floor), np.nan)
    return Baseline(expected=expected, scale=scale, source=source, typical=typical, small=small)
