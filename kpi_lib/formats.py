"""Writing values out: spreadsheets that cannot run formulas, JSON that strict parsers accept.

- :func:`spreadsheet_safe`: text cells that start like a formula (``=``, ``+``, ``-``, ``@``, tab,
  carriage return) get a leading apostrophe, so Excel and LibreOffice show them instead of running
  them (OWASP "CSV injection"). Numbers are left alone.
- :func:`jsonable`: NaN and infinities become null; :func:`to_json` is strict JSON text.
- :func:`cents`: money columns rounded to the cent (sums of floats carry noise such as
  ``58635.55999999998``); ratios and counts keep their precision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) cannot be read as formulas."""
    out = df.copy()
    out.columns = [_neutralise(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_neutralise)
    return out


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf (and pandas' NA/NaT) as None, recursively (dicts, lists, tuples), for
    strict JSON; numpy numbers become Python ones."""
    if isinstance(value, float):  # numpy's float64 too
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # a numpy scalar
        return jsonable(value.item())
    return value


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return str(value)


def to_json(value: Any, indent: int | None = None) -> str:
    """Strict JSON text (never a bare NaN or Infinity); dates as ISO text, other objects as text."""
    return json.dumps(jsonable(value), indent=indent, allow_nan=False, default=_default)


MONEY_UNITS = ("currency",)


def cents(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of ``df`` with the money ``columns`` it has rounded to the cent."""
    out = df.copy()
    for col in columns:
        if col in out and pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].round(2)
    return out


def money_columns(kpi: Any, columns: Iterable[str] = ("value", "previous")) -> list[str]:
    """The columns that hold ``kpi``'s values when it is money (a KPI's ``unit: currency``);
    none for ratios and counts, which keep their precision."""
    return list(columns) if getattr(kpi, "unit", None) in MONEY_UNITS else []
