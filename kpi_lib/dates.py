"""Reading the dates of a user's export: whether its numeric dates are written day first.

pandas' ``format="mixed"`` reads each value on its own: '02.01.2016' becomes 1 February and
'13.01.2016' 13 January in the same column, so a German or British export is silently scrambled
(a daily series then jumps back and forth by months). :func:`day_first` reads the order from the
column's own values instead: a first field above 12 can only be a day, and so can a second one.
"""

from __future__ import annotations

import re

import pandas as pd

# 31.01.2025, 01/31/2025, 31-01-25 (ISO 2025-01-31 starts with the year and is never ambiguous)
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-]\d{2,4}(?!\d)")


def _evidence(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(values that can only be day first, values that can only be month first)."""
    parts = values.astype(str).str.extract(_NUMERIC_DATE)
    first = pd.to_numeric(parts[0], errors="coerce")
    second = pd.to_numeric(parts[1], errors="coerce")
    return values[(first > 12) & (second <= 12)], values[(second > 12) & (first <= 12)]


def day_first(values: pd.Series, name: str = "the date column") -> bool | None:
    """True when the column's numeric dates are written day first, False when month first, None
    when no value tells (ISO dates, or no day of the month above 12). Raises ``ValueError``, with
    examples, when some values can only be day first and others only month first."""
    days, months = _evidence(values)
    if len(days) and len(months):
        raise ValueError(
            f"{name} mixes day-first dates ({len(days):,}, e.g. {days.iloc[0]!r}) and month-first "
            f"dates ({len(months):,}, e.g. {months.iloc[0]!r}). Write every date one way (ISO "
            "2025-01-31 is never ambiguous) and try again."
        )
    return True if len(days) else False if len(months) else None


def resolve_day_first(values: pd.Series, given: bool | None = None, name: str = "the date column") -> bool:
    """The day order to parse ``values`` with: ``given`` when the user chose one (checked against
    the values), else the column's own (:func:`day_first`), else month first (pandas' default).
    Raises ``ValueError`` when the values contradict each other or the choice."""
    seen = day_first(values, name)
    if given is not None and seen is not None and seen != given:
        days, months = _evidence(values)
        said, is_, example = ("day", "month", months.iloc[0]) if given else ("month", "day", days.iloc[0])
        raise ValueError(
            f"{name} was said to be written {said} first, but {example!r} can only be {is_} first. "
            "Leave the option out to read the order from the file."
        )
    return given if given is not None else bool(seen)
