"""Consecutive anomalous rows are one incident: it opens on the first fired row (the only alarm;
an incident of a window step reaches back to where its run of rows outside the band began), stays
open while the score stays above ``release`` or recovers for fewer than ``recover`` rows, and
ends on its last row outside the expected band, on its own side, once the series has recovered.
Severity grows with the peak score."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kpi_lib.anomaly import explain
from kpi_lib.anomaly.engine import zero_run
from kpi_lib.anomaly.rules import DISCORD_WINDOW

#: score (1.0 = at the alarm bound) from which an incident is rated this severity
SEVERITY_LEVELS = (("high", 4.0), ("medium", 2.0), ("low", 0.0))


def severity_of(score: float) -> str:
    """'low' below 2x the alarm bound, 'medium' below 4x, 'high' from 4x."""
    for name, floor in SEVERITY_LEVELS:
        if score >= floor:
            return name
    return "low"


@dataclass(frozen=True)
class Incident:
    """One anomaly episode. ``end`` is None while it is still ongoing at the last row."""

    start: Any
    peak: Any
    end: Any | None
    value: float  # the value at the peak
    expected: float  # expected value at the peak
    lower: float
    upper: float
    deviation_pct: float | None  # (value - expected) / |expected| at the peak; None if expected is ~0
    score: float  # peak score (1.0 = at the alarm bound)
    severity: str
    rule: str  # the step that fired at the onset
    explanation: str
    alarm: Any = None  # the row whose alarm opened it (``start`` or, for a window step, later)

    @property
    def alarm_at(self) -> Any:
        return self.start if self.alarm is None else self.alarm

    @property
    def ongoing(self) -> bool:
        return self.end is None


def mark(
    fired: np.ndarray,
    score: np.ndarray,
    outside: np.ndarray,
    recover: int,
    release: float,
    recovery: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    may_open: np.ndarray | None = None,
) -> np.ndarray:
    """Incident id per row (0 = none; 1, 2, ... in order).

    ``may_open`` (optional, per row): whether an alarm there may open a new incident (see
    :func:`rearmed`); alarms inside an open incident keep it open either way.

    An incident stays open until `recover` rows in a row score below `release`. A finished incident
    ends on its last row whose value was outside the expected band (`outside`), or on its first row:
    a one-hour spike is a one-hour incident even though the rolling evidence lingers. An incident
    still open at the last row runs to the last row, which is how :func:`build` knows it is ongoing.

    With ``recovery`` = (value, expected, window: rows the alarming step judged, per row): an alarm
    whose window sits back nearer the previous incident's pre-incident expectation than its
    expected values do, moving the other way, is that incident's recovery (the expectation learned
    the anomaly and lags the return): the previous incident re-opens through it instead of a new
    one opening (a two-week drop a 12-row median learned, then the return to normal).
    """
    n = len(fired)
    ids = np.zeros(n, dtype=np.int64)
    current, count, calm, last_bad = 0, 0, 0, -1
    first = 0  # the previous (or current) incident's onset row
    for i in range(n):
        if current == 0:
            if fired[i] and (may_open is None or may_open[i]):
                if recovery is not None and count and _recovers(recovery, ids, count, first, i):
                    ids[first : i + 1] = count  # re-open it through this row
                    current, calm, last_bad = count, 0, i
                    continue
                count += 1
                current, calm, last_bad, first = count, 0, i, i
                ids[i] = current
            continue
        ids[i] = current
        if outside[i]:
            last_bad = i
        if score[i] >= release or fired[i]:
            calm = 0
        else:
            calm += 1
            if calm >= recover:
                ids[last_bad + 1 : i + 1] = 0
                current = 0
    return ids


def rearmed(fired_by: dict[str, np.ndarray], ratios: dict[str, np.ndarray], rearm: float) -> np.ndarray:
    """Rows whose alarm may open an incident, with hysteresis: a step's alarm counts if it is the
    step's first, or if the step's ratio fell below ``rearm`` on some row since its previous alarm.
    A step hovering at its threshold (a 72-row mean at 0.9-1.1 for days) alarms once, not each time
    it ticks over again after the incident has closed: flapping, the noise people mute alerts for."""
    n = len(next(iter(fired_by.values()))) if fired_by else 0
    ok = np.zeros(n, dtype=bool)
    for name, fired in fired_by.items():
        rows = np.flatnonzero(fired)
        if not len(rows):
            continue
        low = np.cumsum(np.nan_to_num(ratios[name], nan=0.0) < rearm)  # NaN: nothing judged, at rest
        ok[rows[0]] = True
        ok[rows[1:]] |= low[rows[1:]] > low[rows[:-1]]
    return ok


def backdate(
    ids: np.ndarray, rule: np.ndarray, outside: np.ndarray, side: np.ndarray, windows: dict[str, int]
) -> np.ndarray:
    """``ids`` with each incident opened by a window step (``windows``: step name -> rows it judges)
    starting where its run of rows outside the expected band began, on the alarm row's side and
    within that window: "2 of 3 hours" fires on a surge's second hour, but the surge began on the
    first. The alarm stays where it was raised (``is_anomaly`` is causal); only the incident's span,
    and so its start in every sentence and listing, reaches back."""
    out = ids.copy()
    onsets = np.flatnonzero((ids > 0) & (np.r_[0, ids[:-1]] != ids))
    for a in onsets:
        w = windows.get(str(rule[a]), 1)
        if w <= 1 or not outside[a]:
            continue
        b = a
        while b > a - w + 1 and b > 0 and out[b - 1] == 0 and outside[b - 1] and side[b - 1] == side[a]:
            b -= 1
        out[b:a] = ids[a]
    return out


def _recovers(
    recovery: tuple[np.ndarray, np.ndarray, np.ndarray], ids: np.ndarray, k: int, onset: int, i: int
) -> bool:
    """Whether the alarm at row ``i`` is incident ``k``'s recovery (rows up to ``i`` only): over the
    rows its step judged, the values moved the other way from the incident and sit nearer the
    expected value from before the incident (where the window of the step that opened it began)
    than their own expected values do."""
    value, expected, window = recovery
    rows = np.flatnonzero(ids[:i] == k)
    moved = np.nansum(value[rows] - expected[rows]) if len(rows) else 0.0
    w = slice(max(0, i - int(window[i]) + 1), i + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing window: no recovery
        v, e = float(np.nanmean(value[w])), float(np.nanmean(expected[w]))
    before = expected[max(0, onset - int(window[onset]) + 1)]  # where the opening step's window began
    if not (np.isfinite(v) and np.isfinite(e) and np.isfinite(before) and moved != 0):
        return False
    return bool(np.sign(v - e) == -np.sign(moved) and abs(v - before) < abs(e - before))


def _worst_outside(frame: pd.DataFrame, rows: np.ndarray, default: int, side: float = 0.0) -> int:
    """The row furthest outside the expected band, measured in band half-widths, on ``side``
    (+1 above, -1 below, 0 either) when the alarm had one.

    Rolling rules keep scoring after the worst hour, so the highest score can sit on an ordinary
    row; people expect an incident's numbers to be those of its worst period. A 24-hour slump may
    hold a busy hour above the band: that hour is not the slump, and its numbers would say "above".
    """
    x = frame["value"].to_numpy(dtype=float)[rows]
    exp = frame["expected"].to_numpy(dtype=float)[rows]
    lo = frame["lower"].to_numpy(dtype=float)[rows]
    hi = frame["upper"].to_numpy(dtype=float)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        far = np.abs(x - exp) / np.maximum((hi - lo) / 2, 1e-12)
    far = np.where(((x < lo) | (x > hi)) & np.isfinite(far), far, -np.inf)
    if side:
        far = np.where(np.sign(x - exp) == side, far, -np.inf)
    return int(rows[int(np.argmax(far))]) if np.isfinite(far).any() else int(default)


def _side(
    values: np.ndarray,
    expected: np.ndarray,
    alarm: int,
    opened_by: str,
    level_steps: dict[str, tuple[int, int, str]],
    shape_steps: dict[str, int],
    window_steps: dict[str, int],
) -> float:
    """+1 (above) or -1 (below): which way the alarm at row ``alarm`` judged the series off its
    expected values: a level step by its levels, any other by the mean error over its window (one
    row for a point step); 0 for a pattern not seen before, or if it cannot be told."""
    if opened_by in shape_steps:
        return 0.0
    if opened_by in level_steps:
        before, after = _levels(values, alarm, *level_steps[opened_by])
        return float(np.sign(after - before)) if math.isfinite(after - before) else 0.0
    w = window_steps.get(opened_by, 1)
    dev = (values - expected)[max(0, alarm - w + 1) : alarm + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing window: no direction
        mean = float(np.nanmean(dev)) if len(dev) else math.nan
    return float(np.sign(mean)) if math.isfinite(mean) else 0.0


def _alarm_row(rows: np.ndarray, fired: np.ndarray) -> int:
    """The row whose alarm opened an incident (``fired``: positions in its ``rows`` where a step
    fired): its first, unless it reaches back before its alarm."""
    return int(rows[fired[0]]) if len(fired) else int(rows[0])


def end_on_side(
    ids: np.ndarray,
    values: np.ndarray,
    expected: np.ndarray,
    outside: np.ndarray,
    rule: np.ndarray,
    *,
    level_steps: dict[str, tuple[int, int, str]],
    shape_steps: dict[str, int],
    window_steps: dict[str, int],
) -> np.ndarray:
    """``ids`` with each finished incident ending on its last row outside the band on its own side,
    no later than the run of such rows that follows its last alarm (and at its first alarm at the
    earliest). A two-hour surge stays open through a calm day; a quiet hour below the band, or a
    busy one just above it, 20 hours later is not the surge, and ending there shaded a whole day.
    Incidents still open at the last row, and those of a pattern step (no side), keep their span."""
    out = ids.copy()
    n = len(ids)
    for k in range(1, int(ids.max()) + 1 if len(ids) else 1):
        rows = np.flatnonzero(ids == k)
        if not len(rows) or rows[-1] == n - 1:
            continue
        fired = np.flatnonzero(rule[rows] != "")
        alarm = _alarm_row(rows, fired)
        side = _side(values, expected, alarm, str(rule[alarm]), level_steps, shape_steps, window_steps)
        if not side:
            continue
        with np.errstate(invalid="ignore"):
            on_side = outside[rows] & (np.sign(values[rows] - expected[rows]) == side)
        reach = int(fired[-1]) if len(fired) else 0  # the last alarm, as a position in ``rows``
        while reach + 1 < len(rows) and on_side[reach + 1]:  # ... and the run of its side after it
            reach += 1
        mine = rows[: reach + 1][on_side[: reach + 1]]
        last = max(int(mine[-1]) if len(mine) else alarm, alarm)
        out[last + 1 : rows[-1] + 1] = 0
    return out


def _levels(values: np.ndarray, at: int, left: int, right: int, how: str = "median") -> tuple[float, float]:
    """The levels a level step compared when it fired at row `at`. ``median`` (a level-shift step):
    the median of the `left` rows before the right window, and of the newest half of the right
    window (the step fires once the right window's median has moved, when about half its rows are
    new; its newest half is the new level, the whole window would understate the step). ``mean`` (a
    trend on the values): the means of the two windows, as the step compared them."""
    hi = max(0, at - right + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN window: NaN
        if how == "mean":
            after = float(np.nanmean(values[hi : at + 1]))
            before = float(np.nanmean(values[max(0, hi - left) : hi])) if hi > 0 else math.nan
            return before, after
        after = float(np.nanmedian(values[max(0, at - max(right // 2, 1) + 1) : at + 1]))
        before = float(np.nanmedian(values[max(0, hi - left) : hi])) if hi > 0 else math.nan
    return before, after


def build(
    frame: pd.DataFrame,
    ids: np.ndarray,
    *,
    label: str | None = None,
    fmt: explain.Formatter | None = None,
    level_steps: dict[str, tuple[int, int, str]] | None = None,
    shape_steps: dict[str, int] | None = None,
    window_steps: dict[str, int] | None = None,
    silence_steps: dict[str, int] | None = None,
    shape_windows: dict[str, int] | None = None,
    points: bool = False,
) -> list[Incident]:
    """Incidents from detect()'s columns (value, expected, lower, upper, score, rule) and ids.

    ``level_steps`` (step name -> (left, right) rows, see :func:`engine.level_windows`): incidents
    opened by such a step are explained as a step from the earlier level to the recent one.
    ``shape_steps`` (step name -> rows in its subsequence, see :func:`engine.shape_lengths`): incidents
    opened by such a step are explained as a pattern not seen before, with the range it ran in, against
    the rows its search reached back (``shape_windows``, :func:`engine.shape_windows`; else the discord's).
    ``window_steps`` (step name -> rows in its rolling window, see :func:`engine.rolling_windows`):
    a one-row incident of such a step is told over its window ("in the 12 hours to 19:00").
    ``silence_steps`` (step name -> rows of past, see :func:`engine.silence_steps`): incidents opened by
    such a step are told as a run of empty periods against the longest run before it.
    ``points``: the series is a percentage; its moves are told in points, not as a percent of it."""
    level_steps, shape_steps, window_steps = level_steps or {}, shape_steps or {}, window_steps or {}
    values = frame["value"].to_numpy(dtype=float)
    expected = frame["expected"].to_numpy(dtype=float)
    rule = frame["rule"].to_numpy()
    out: list[Incident] = []
    if not len(ids) or ids.max() == 0:
        return out
    idx = frame.index
    for k in range(1, int(ids.max()) + 1):
        rows = np.flatnonzero(ids == k)
        first, final = rows[0], rows[-1]
        alarm = _alarm_row(rows, np.flatnonzero(rule[rows] != ""))  # later than ``first`` if backdated
        scores = frame["score"].to_numpy()[rows]
        best = int(np.nanargmax(np.where(np.isfinite(scores), scores, -np.inf)))
        opened_by = str(frame["rule"].iat[alarm])
        before = after = math.nan
        if opened_by in level_steps:
            before, after = _levels(values, alarm, *level_steps[opened_by])
        side = _side(values, expected, alarm, opened_by, level_steps, shape_steps, window_steps)
        p = _worst_outside(frame, rows, default=rows[best], side=side)
        value, exp = float(frame["value"].iat[p]), float(frame["expected"].iat[p])
        lo, hi = float(frame["lower"].iat[p]), float(frame["upper"].iat[p])
        still = final == len(ids) - 1
        pct = (value - exp) / abs(exp) * 100 if math.isfinite(exp) and abs(exp) > 1e-12 else None
        # what every sentence needs: who, when it started and ended (or that it has not)
        told = {
            "label": label,
            "start": idx[first],
            "end": None if still else idx[final],
            "ongoing": still,
            "fmt": fmt,
        }
        if opened_by in (silence_steps or {}) and alarm > 0:
            zr = zero_run(values)
            run = int(np.nan_to_num(zr[alarm]))
            first_empty = alarm - run + 1
            past = zr[max(0, first_empty - silence_steps[opened_by]) : first_empty]
            record = int(np.nanmax(past)) if np.isfinite(past).any() else 0
            step_ = idx[alarm] - idx[alarm - 1]  # one row's span
            text = explain.silence_sentence(
                run_from=idx[first_empty],
                at=idx[alarm],
                run=explain.duration(idx[alarm] - run * step_, idx[alarm]),
                record=explain.duration(idx[alarm] - record * step_, idx[alarm]) if record else "none",
                history=(
                    f"{explain.duration(idx[alarm] - silence_steps[opened_by] * step_, idx[alarm])} before"
                    if first_empty >= silence_steps[opened_by]
                    else f"data before it (since {explain.when(idx[0])})"
                ),
                **told,
            )
        elif opened_by in shape_steps:
            m = shape_steps[opened_by]
            seen = values[max(0, alarm - m + 1) : alarm + 1]
            text = explain.shape_sentence(
                since=idx[max(0, alarm - m)],
                history_from=idx[max(0, alarm - m - (shape_windows or {}).get(opened_by, DISCORD_WINDOW))],
                low=float(np.nanmin(seen)),
                high=float(np.nanmax(seen)),
                expected=float(frame["expected"].iat[alarm]),
                **told,
            )
        elif math.isfinite(before) and math.isfinite(after) and level_steps[opened_by][2] == "mean":
            left, right, _ = level_steps[opened_by]
            recent = max(0, alarm - right + 1)
            text = explain.trend_sentence(
                rule=opened_by,
                before=before,
                after=after,
                recent_from=idx[max(0, recent - 1)],
                earlier_from=idx[max(0, recent - 1 - left)],
                at=idx[alarm],
                points=points,
                **told,
            )
        elif math.isfinite(before) and math.isfinite(after) and before != after:
            text = explain.step_sentence(before=before, after=after, **told)
        elif lo <= value <= hi:  # no row left the usual range: the pattern is the news, say which
            # a rolling step judged its window, not one row: say what the window to the alarm did
            # (an ongoing day-long shortfall told by its first hour read "$12, 73% above expected")
            w = window_steps.get(opened_by, 0)
            seen = slice(alarm - w + 1, alarm + 1) if 0 < w <= alarm else None
            said_value = float(np.nanmean(values[seen])) if seen else value
            said_expected = float(np.nanmean(frame["expected"].to_numpy(dtype=float)[seen])) if seen else exp
            if math.isfinite(said_expected) and abs(said_expected) > 1e-12:
                # the card's percentage is the sentence's: the window's, not one row's
                pct = (said_value - said_expected) / abs(said_expected) * 100
            text = explain.pattern_sentence(
                rule=opened_by,
                value=said_value,
                expected=said_expected,
                lower=lo,
                upper=hi,
                peak=idx[p],
                since=idx[alarm - w] if seen else None,
                until=idx[alarm],
                points=points,
                **told,
            )
        else:
            text = explain.sentence(value=value, expected=exp, lower=lo, upper=hi, points=points, **told)
        peak_score = float(scores[best])
        out.append(
            Incident(
                start=idx[first],
                peak=idx[p],
                end=None if still else idx[final],
                value=value,
                expected=exp,
                lower=lo,
                upper=hi,
                deviation_pct=pct,
                score=peak_score,
                severity=severity_of(peak_score),
                rule=opened_by,
                explanation=text,
                alarm=idx[alarm],
            )
        )
    return out
