"""detect_file(): a CSV series in, the same rows in the same order out, with the verdict columns.

The file is read as it was written (:mod:`kpi_lib.exports`): its separator, its decimal mark
('2.740,50 €'), its day order ('02.01.2016'); and it is written back with the same separator and
every input cell exactly as it was (the scores in its decimal mark). An output named ``.xlsx`` or
``.parquet`` is written as one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kpi_lib.anomaly.detect import Rules, detect
from kpi_lib.anomaly.nearmiss import near_miss
from kpi_lib.anomaly.plot import plot_incidents
from kpi_lib.anomaly.rules import SENSITIVITY, with_budget
from kpi_lib.errors import DetectError, LoadError
from kpi_lib.exports import decimal_mark, read_table, resolve_day_first, to_number

OUTPUT_COLUMNS = ("is_anomaly", "score", "severity", "explanation", "rule")
CHART_FORMATS = (".png", ".svg", ".pdf")
#: a column is a time or a number column when at least this share of its filled cells read as one
_MOSTLY = 0.9
_SAMPLE = 1000


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DetectError(f"{path}: no such file. Check the path.")
    try:
        return read_table(path)
    except LoadError as exc:
        raise DetectError(
            f"{path}: cannot read it as CSV ({exc}). Give a comma-separated file with a "
            "header row, e.g. timestamp,value."
        ) from exc


def _share(parsed: pd.Series, text: pd.Series) -> float:
    filled = text.str.strip() != ""
    return float(parsed[filled].notna().mean()) if filled.any() else 0.0


def _guess(df: pd.DataFrame, time_column: str | None, value_column: str, guess: tuple[str, ...]):
    """The time and value columns: as named, or, for those in ``guess`` that the file lacks, its
    only column of times / of numbers. Raises DetectError naming the columns to choose from."""
    cols = [str(c) for c in df.columns]
    head = df.head(_SAMPLE)  # what a column holds shows in its first rows; dates parse one by one
    numbers = [c for c in cols if _share(to_number(head[c]), head[c]) >= _MOSTLY]
    if "time" in guess and time_column not in cols:
        times = [
            c
            for c in cols
            if c not in numbers
            and _share(pd.to_datetime(head[c], errors="coerce", format="mixed"), head[c]) >= _MOSTLY
        ]
        if len(times) == 1:
            time_column = times[0]
    if "value" in guess and value_column not in cols:
        values = [c for c in numbers if c != time_column]
        if len(values) == 1:
            value_column = values[0]
        elif len(values) > 1:
            raise DetectError(
                f"no column {value_column!r}, and {len(values)} columns hold numbers: "
                f"{', '.join(values)}. Pick one with --value-column."
            )
    return time_column, value_column


def _typed(out: pd.DataFrame, columns, time_column: str | None, stamps: pd.Series | None) -> pd.DataFrame:
    """``out`` for a typed format (a workbook, Parquet): the time column as times, and each input
    column whose every filled cell is a number as numbers (a spreadsheet's numbers, not text)."""
    typed = out.copy()
    for c in columns:
        if c == time_column and stamps is not None:
            typed[c] = stamps.to_numpy()
            continue
        num = to_number(out[c])
        if _share(num, out[c].astype(str)) == 1.0:
            typed[c] = num.to_numpy()
    return typed


def detect_file(
    input_path: str | Path,
    output_path: str | Path,
    time_column: str | None = "timestamp",
    value_column: str = "value",
    rules: Rules = "default",
    label: str | None = None,
    dayfirst: bool | None = None,
    guess: tuple[str, ...] = (),
    sensitivity: str = "medium",
    chart: str | Path | None = None,
    suggest: bool = False,
) -> pd.DataFrame:
    """Detect anomalies in one CSV column and write every input row back, in order, plus
    is_anomaly (0/1, onset rows only), score, severity, explanation and rule (the step that opened
    the incident, on its onset row). Returns the written frame; its ``attrs["judged_from"]`` is
    the position of the first row that could alarm (None: too short for any, see :func:`detect`),
    ``attrs["columns"]`` the (time, value) columns used, and ``attrs["near_miss"]``, for a judged
    file without any incident, how close it came (:func:`~kpi_lib.anomaly.near_miss`), and
    ``attrs["more_sensitive"]`` (with ``suggest``, below high ``sensitivity``; low / medium / high:
    the rules' false-alarm budget x 0.25 / 1 / 4), the (row, sentence) of each incident that only
    high sensitivity would raise (the rules run twice for it). ``chart``: also draw the series, its expected range, its warm-up and
    its incidents to this image (.png, .svg or .pdf).

    `time_column=None` uses row order only (no seasonality). ``guess`` ("time", "value"): a column
    the file lacks is replaced by its only column of times, or of numbers (the user did not name
    it). ``label`` (default: the value column, unless it is called "value") is the subject of the
    explanations. Numeric dates are read in the column's own day order (31.01.2016 day first)
    unless ``dayfirst`` says which."""
    if sensitivity not in SENSITIVITY:
        raise DetectError(f"sensitivity: one of {', '.join(SENSITIVITY)}, got {sensitivity!r}.")
    if chart is not None and Path(chart).suffix.lower() not in CHART_FORMATS:
        raise DetectError(f"{chart}: a chart is written as {', '.join(CHART_FORMATS)}; name it so.")
    src = Path(input_path)
    df = _read(src)
    if guess:
        time_column, value_column = _guess(df, time_column, value_column, guess)
    wanted = [c for c in (time_column, value_column) if c is not None]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DetectError(
            f"{src}: no column {', '.join(map(repr, missing))}. Available columns: "
            f"{', '.join(map(str, df.columns))}. Pick them with --time-column/--value-column."
        )
    values = to_number(df[value_column])
    if time_column is not None:
        try:
            first = resolve_day_first(df[time_column], dayfirst, f"{src}: column {time_column!r}")
        except ValueError as exc:
            raise DetectError(str(exc)) from exc
        stamps = pd.to_datetime(df[time_column], errors="coerce", utc=False, format="mixed", dayfirst=first)
        if stamps.notna().sum() == 0 and len(df):
            raise DetectError(
                f"{src}: column {time_column!r} has no parseable timestamps (first value "
                f"{df[time_column].iloc[0]!r}). Choose another --time-column."
            )
        values = pd.Series(values.to_numpy(), index=pd.DatetimeIndex(stamps), name=value_column)
    if len(df) and values.notna().sum() == 0:
        raise DetectError(
            f"{src}: column {value_column!r} has no numbers (first value "
            f"{df[value_column].iloc[0]!r}). Choose another --value-column."
        )
    # sentences name the column a person chose ("Umsatz showed ..."), not a generic "Value"
    if label is None and value_column.lower() != "value":
        label = value_column[:1].upper() + value_column[1:]
    result = detect(values, rules=with_budget(rules, SENSITIVITY[sensitivity]), label=label)
    out = df.copy()
    for col in OUTPUT_COLUMNS:
        out[col] = result[col].to_numpy()
    out["score"] = out["score"].round(4)
    # the step that opened each incident, on its onset row beside its sentence
    out["rule"] = out["rule"].where(out["is_anomaly"] == 1, "")
    dst = Path(output_path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.suffix.lower() in (".xlsx", ".xlsm", ".parquet", ".pq"):  # the output's name says its format
        typed = _typed(out, df.columns, time_column, stamps if time_column is not None else None)
        if dst.suffix.lower() in (".xlsx", ".xlsm"):
            typed.to_excel(dst, index=False)
        else:
            typed.to_parquet(dst, index=False)
    else:  # scores in the file's own decimal mark, so a spreadsheet set up for it reads numbers
        out.to_csv(dst, index=False, sep=df.attrs.get("sep", ","), decimal=decimal_mark(df[value_column]))
    if chart is not None:
        Path(chart).parent.mkdir(parents=True, exist_ok=True)
        plot_incidents(result, title=f"{label or value_column}: {src.name}").savefig(chart)
    out.attrs["judged_from"] = result.attrs.get("judged_from")
    out.attrs["columns"] = (time_column, value_column)
    # a quiet file says how close it came ("why not an alarm")
    quiet = result.attrs.get("judged_from") is not None and not out["is_anomaly"].any()
    out.attrs["near_miss"] = near_miss(result, label=label).sentence if quiet else None
    out.attrs["more_sensitive"] = None
    if suggest and result.attrs.get("judged_from") is not None and sensitivity != "high":
        # what a user who wants more alarms would get: the incidents only high sensitivity raises
        high = detect(values, rules=with_budget(rules, SENSITIVITY["high"]), label=label)
        new = (high["is_anomaly"].to_numpy() == 1) & (result["incident"].to_numpy() == 0)
        if new.any():
            out.attrs["more_sensitive"] = [(int(i), high["explanation"].iat[i]) for i in np.flatnonzero(new)]
    return out
