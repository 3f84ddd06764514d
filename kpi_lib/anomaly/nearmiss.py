"""Why not an alarm: how close a quiet series came to its alarm threshold, in one sentence.

    out = detect(series, label="Revenue in EMEA")
    nm = near_miss(out, since="2024-02-01")
    nm.score      # 0.72: the closest row reached 72% of its threshold (1.0 would have alarmed)
    nm.sentence   # 'Revenue in EMEA raised no alarm from 2024-02-01 to 2024-02-11. It came closest
                  #  on 2024-02-03 14:00, at 72% of its alarm threshold (shift: a sustained move):
                  #  12.1k against the expected 10.4k (usual range 8.2k–12.6k).'

Rows inside incidents, and rows past the threshold, are left out (they did alarm); the sentence
says how many incidents began in the window, if any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kpi_lib.anomaly import explain
from kpi_lib.errors import DetectError


@dataclass(frozen=True)
class NearMiss:
    """The row of a window that came closest to an alarm without one, and a sentence about it."""

    at: Any | None  # index label of that row; None when no row could be judged yet
    score: float  # its score: 1.0 is the alarm threshold (NaN when nothing was judged)
    value: float
    expected: float
    lower: float
    upper: float
    step: str  # the step that came closest
    incidents: int  # incidents that began in the window
    sentence: str


def _window(result: pd.DataFrame, since: Any, until: Any) -> np.ndarray:
    keep = np.ones(len(result), dtype=bool)
    if since is None and until is None:
        return keep
    if not isinstance(result.index, pd.DatetimeIndex):
        raise DetectError(
            "near_miss(since=/until=) needs a result indexed by time; pass neither for all rows."
        )
    idx = result.index
    if since is not None:
        keep &= np.asarray(idx >= pd.Timestamp(since))
    if until is not None:
        keep &= np.asarray(idx <= pd.Timestamp(until))
    return keep


def near_miss(
    result: pd.DataFrame,
    since: Any = None,
    until: Any = None,
    label: str | None = None,
    fmt: explain.Formatter | None = None,
) -> NearMiss:
    """How close the rows of ``result`` (a :func:`detect` frame) between ``since`` and ``until``
    came to an alarm, outside incidents."""
    missing = [c for c in ("value", "expected", "lower", "upper", "score", "incident") if c not in result]
    if missing:
        raise DetectError(f"near_miss() needs the frame detect() returns; missing column(s) {missing}.")
    fmt = fmt or explain.compact
    subject = label or "The series"
    keep = _window(result, since, until)
    frame = result[keep]
    starts = frame["incident"].to_numpy()
    onsets = int(((starts > 0) & (np.r_[0, starts[:-1]] != starts)).sum()) if len(frame) else 0
    # rows of no incident that did not fire (an incident's rolling evidence lingers after its end)
    quiet = frame[
        (frame["incident"].to_numpy() == 0)
        & np.isfinite(frame["expected"].to_numpy(dtype=float))
        & ~(frame["score"].to_numpy(dtype=float) > 1.0)
    ]
    period = ""
    if len(frame) and isinstance(frame.index, pd.DatetimeIndex):
        period = f" from {explain.when(frame.index[0])} to {explain.when(frame.index[-1])}"
    alarms = "no alarm" if onsets == 0 else f"{onsets} alarm{'s' if onsets > 1 else ''}"
    head = f"{subject} raised {alarms}{period}."
    scores = quiet["score"].to_numpy(dtype=float) if len(quiet) else np.array([])
    if not np.isfinite(scores).any() or np.nanmax(scores) <= 0:
        tail = (
            " There is not enough history yet to judge it (a series needs a warm-up before it can alarm)."
            if not len(quiet) or not np.isfinite(scores).any()
            else " Every value was as expected."
        )
        nan = math.nan
        return NearMiss(None, nan if not len(quiet) else 0.0, nan, nan, nan, nan, "", onsets, head + tail)
    pos = int(np.nanargmax(scores))
    row = quiet.iloc[pos]
    step = str(row["step"]) if "step" in quiet.columns else ""
    what = (
        f" ({step}: {explain.STEP_WORDS[step]})"
        if step in explain.STEP_WORDS
        else (f" ({step})" if step else "")
    )
    value, exp = float(row["value"]), float(row["expected"])
    lo, hi = float(row["lower"]), float(row["upper"])
    usual = f" (usual range {fmt(lo)}–{fmt(hi)})" if math.isfinite(lo) and math.isfinite(hi) else ""
    text = (
        f"{head} {'Outside its incidents it' if onsets else 'It'} came closest {_at(quiet.index[pos])}, "
        f"at {row['score']:.0%} of its alarm threshold{what}: {fmt(value)} against the expected "
        f"{fmt(exp)}{usual}."
    )
    return NearMiss(quiet.index[pos], float(row["score"]), value, exp, lo, hi, step, onsets, text)


def _at(t: Any) -> str:
    return f"on {explain.when(t)}" if isinstance(t, pd.Timestamp) else f"at {explain.when(t)}"
