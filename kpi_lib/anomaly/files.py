"""detect_file(): a CSV series in, the same rows in the same order out, with the verdict columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kpi_lib.anomaly.detect import Rules, detect
from kpi_lib.dates import resolve_day_first
from kpi_lib.errors import DetectError

OUTPUT_COLUMNS = ("is_anomaly", "score", "severity", "explanation", "rule")


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DetectError(f"{path}: no such file. Check the path.")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DetectError(
            f"{path}: cannot read it as CSV ({exc}). Give a comma-separated file with a "
            "header row, e.g. timestamp,value."
        ) from exc


def detect_file(
    input_path: str | Path,
    output_path: str | Path,
    time_column: str | None = "timestamp",
    value_column: str = "value",
    rules: Rules = "default",
    label: str | None = None,
    dayfirst: bool | None = None,
) -> pd.DataFrame:
    """Detect anomalies in one CSV column and write every input row back, in order, plus
    is_anomaly (0/1, onset rows only), score, severity, explanation and rule (the step that opened
    the incident, on its onset row). Returns the written frame; its ``attrs["judged_from"]`` is
    the position of the first row that could alarm (None: too short for any, see :func:`detect`).

    `time_column=None` uses row order only (no seasonality). ``label`` (default: the value column,
    unless it is called "value") is the subject of the explanations. Numeric dates are read in the
    column's own day order (31.01.2016 day first) unless ``dayfirst`` says which."""
    src = Path(input_path)
    df = _read(src)
    wanted = [c for c in (time_column, value_column) if c is not None]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DetectError(
            f"{src}: no column {', '.join(map(repr, missing))}. Available columns: "
            f"{', '.join(map(str, df.columns))}. Pick them with --time-column/--value-column."
        )
    values = df[value_column]
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
    if len(df) and pd.to_numeric(values, errors="coerce").notna().sum() == 0:
        raise DetectError(
            f"{src}: column {value_column!r} has no numbers (first value "
            f"{df[value_column].iloc[0]!r}). Choose another --value-column."
        )
    # sentences name the column a person chose ("Umsatz showed ..."), not a generic "Value"
    if label is None and value_column.lower() != "value":
        label = value_column[:1].upper() + value_column[1:]
    result = detect(values, rules=rules, label=label)
    out = df.copy()
    out.attrs["judged_from"] = result.attrs.get("judged_from")
    for col in OUTPUT_COLUMNS:
        out[col] = result[col].to_numpy()
    out["score"] = out["score"].round(4)
    # the step that opened each incident, on its onset row beside its sentence
    out["rule"] = out["rule"].where(out["is_anomaly"] == 1, "")
    dst = Path(output_path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(dst, index=False)
    return out
