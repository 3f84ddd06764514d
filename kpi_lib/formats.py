"""Writing values out: spreadsheets that cannot run formulas, JSON that strict parsers accept.

- :func:`spreadsheet_safe`: text cells that start like a formula (``=``, ``+``, ``-``, ``@``, tab,
  carriage return) get a leading apostrophe, so Excel and LibreOffice show them instead of running
  them (OWASP "CSV injection"). Numbers are left alone.
- :func:`jsonable`: NaN and infinities become null.
"""

from __future__ import annotations

import math
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
    """``value`` with NaN/inf as None, recursively (dicts, lists, tuples), for strict JSON."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
