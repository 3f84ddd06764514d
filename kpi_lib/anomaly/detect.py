"""detect(): one series in, one row of verdict per input row out (same index, same order)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpi_lib.anomaly import engine, explain
from kpi_lib.anomaly import incidents as _incidents
from kpi_lib.anomaly.rules import RuleSet, load_rules
from kpi_lib.errors import DetectError

log = logging.getLogger(__name__)

COLUMNS = (
    "value",
    "expected",
    "lower",
    "upper",
    "score",
    "is_anomaly",
    "severity",
    "explanation",
    "incident",
    "rule",
    "step",
)

Rules = str | Path | Mapping[str, Any] | RuleSet


def _timestamps(index: pd.Index) -> np.ndarray | None:
    """int64 ns per row for seasonal look-ups, or None when the index carries no time."""
    if isinstance(index, pd.MultiIndex):
        return None
    if not isinstance(index, pd.DatetimeIndex):
        if not (index.dtype == object or pd.api.types.is_string_dtype(index.dtype)):
            return None
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index, errors="coerce"))
        except (TypeError, ValueError):
            return None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    ts = pd.Series(index.as_unit("ns").asi8, dtype="int64")
    ts[index.isna()] = np.nan
    if ts.isna().all():
        return None
    return ts.ffill().bfill().to_numpy(dtype=np.int64)  # a missing stamp borrows its neighbour's


def detect(
    series: pd.Series,
    rules: Rules = "default",
    label: str | None = None,
    fmt: explain.Formatter | None = None,
    thin: Any = None,
    points: bool = False,
) -> pd.DataFrame:
    """Causal anomaly detection on one series.

    ``thin`` (optional, booleans aligned with ``series``): rows with too little volume behind them to
    judge, such as an hour's average order value over one order. They are shown missing, never
    judged or learned from, and count as on their expected value inside a window step's window.
    ``points``: the series is a percentage (a margin, a rate), so explanations tell its moves in
    points ('4.2 points below the expected 23.8%'), not as a percent of a percent.

    Returns a frame indexed like `series` (same rows, order and duplicates) with columns
    value, expected, lower, upper, score, is_anomaly (1 on the row whose alarm opened an incident only), severity
    ('' outside incidents, else low/medium/high so far), explanation (on onset rows), incident (id,
    0 = none), rule (the step that fired) and step (the step that came closest to firing on that
    row, fired or not: see :func:`kpi_lib.anomaly.near_miss`). Alarms and scores at a row use only rows up to it;
    the explanation summarises the whole incident as far as the data goes.
    ``attrs["judged_from"]``: the position of the first row any step could alarm on (the rows
    before it are the warm-up), or None when the series is too short for any.
    """
    if isinstance(series, pd.DataFrame):
        if series.shape[1] != 1:
            raise DetectError(
                f"detect() takes one series; got a frame with columns {list(series.columns)}. "
                "Pass frame['<column>']."
            )
        series = series.iloc[:, 0]
    if not isinstance(series, pd.Series):
        raise DetectError(f"detect() takes a pandas Series, got {type(series).__name__}.")
    rs = load_rules(rules)
    values = pd.to_numeric(series, errors="coerce")
    bad = int(values.isna().sum() - series.isna().sum())
    if bad:
        log.warning("%d non-numeric value(s) in %s treated as missing", bad, label or series.name or "series")
    x = values.to_numpy(dtype=float)
    few = None
    if thin is not None:
        few = np.asarray(thin, dtype=bool)
        if few.shape != x.shape:
            raise DetectError(f"thin= has {few.size} flags for a series of {x.size} rows; give one per row.")
        x = np.where(few, np.nan, x)
    ev = engine.evaluate(x, _timestamps(series.index), rs, few)

    out = pd.DataFrame(
        {"value": x, "expected": ev.expected, "lower": ev.lower, "upper": ev.upper, "score": ev.score},
        index=series.index,
    )
    outside = (x < ev.lower) | (x > ev.upper)
    with np.errstate(invalid="ignore"):
        # nothing at all where something was expected, on a row a step alarms on: still the incident
        # (a shop shut for a week widened its band to 0 from the second day, and its incident
        # "ended" on the first)
        empty = (x <= 0) & (ev.expected > 0) & (ev.rule != "")
    ids = _incidents.mark(
        ev.fired,
        ev.score,
        outside | empty,
        rs.incident.recover,
        rs.incident.release,
        recovery=(x, ev.expected, engine.judged_rows(rs, ev.rule)) if rs.incident.recovery else None,
        may_open=(
            _incidents.rearmed(ev.fired_by, ev.ratios, rs.incident.rearm)
            if rs.incident.rearm and ev.fired_by and ev.ratios
            else None
        ),
    )
    judged = ev.judged
    out.attrs["judged_from"] = int(np.argmax(judged)) if judged.any() else None
    onset = (ids > 0) & (np.r_[0, ids[:-1]] != ids)  # the alarms, before any incident reaches back
    steps = {
        "level_steps": engine.level_windows(rs),
        "shape_steps": engine.shape_lengths(rs),
        "window_steps": engine.rolling_windows(rs),
    }
    ids = _incidents.backdate(ids, ev.rule, outside, np.sign(x - ev.expected), steps["window_steps"])
    if not rs.incident.recovery:  # a recovery is the other side by design: it keeps its span
        ids = _incidents.end_on_side(ids, x, ev.expected, outside | empty, ev.rule, **steps)
    out["is_anomaly"] = onset.astype(np.int8)
    running_peak = pd.Series(np.where(ids > 0, ev.score, 0.0)).groupby(ids).cummax().to_numpy()
    out["severity"] = [
        (_incidents.severity_of(s) if k else "") for s, k in zip(running_peak, ids, strict=True)
    ]
    out["explanation"] = ""
    out["incident"] = ids
    out["rule"] = ev.rule
    out["step"] = ev.step
    for inc, pos in zip(
        _incidents.build(
            out, ids, label=label, fmt=fmt, points=points, shape_windows=engine.shape_windows(rs), **steps
        ),
        np.flatnonzero(onset),
        strict=True,
    ):
        out.iat[pos, out.columns.get_loc("explanation")] = inc.explanation
    return out


def incidents(
    result: pd.DataFrame,
    label: str | None = None,
    fmt: explain.Formatter | None = None,
    rules: Rules = "default",
    points: bool = False,
) -> list[_incidents.Incident]:
    """The incidents in a :func:`detect` result, oldest first (explanations re-worded with `label`;
    `rules`: the rule set the result came from, for the level-shift and pattern steps' sentences;
    `points`: as for :func:`detect`)."""
    missing = [
        c
        for c in ("value", "expected", "lower", "upper", "score", "incident", "rule")
        if c not in result.columns
    ]
    if missing:
        raise DetectError(f"incidents() needs the frame detect() returns; missing column(s) {missing}.")
    return _incidents.build(
        result,
        result["incident"].to_numpy(dtype=np.int64),
        label=label,
        fmt=fmt,
        level_steps=engine.level_windows(rs := load_rules(rules)),
        shape_steps=engine.shape_lengths(rs),
        window_steps=engine.rolling_windows(rs),
        silence_steps=engine.silence_steps(rs),
        shape_windows=engine.shape_windows(rs),
        points=points,
    )
