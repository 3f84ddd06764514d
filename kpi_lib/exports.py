"""Reading a user's export as it was written: its separator, its decimal mark, its day order.

Spreadsheets set up for Brazil, France or Germany write ``;`` between fields, ``29,90`` for a price
and ``02.01.2016`` for 2 January; a US one writes ``,``, ``29.90`` and ``01/02/2016``. Each is read
from the file's own text, never from a locale setting, and a value that only the other convention
explains is refused rather than silently misread (``29,90`` is never 2990).

pandas' ``format="mixed"`` reads each date on its own: '02.01.2016' becomes 1 February and
'13.01.2016' 13 January in the same column, so a German or British export is silently scrambled
(a daily series then jumps back and forth by months). :func:`day_first` reads the order from the
column's own values instead: a first field above 12 can only be a day, and so can a second one.
Used by ``kpi load`` (:mod:`kpi_lib.loader`) and ``kpi detect`` (:mod:`kpi_lib.anomaly.files`).
"""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path

import pandas as pd

from .errors import LoadError

DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(text: str) -> str:
    """The field separator of a CSV's first lines: the candidate that splits the header into the
    most fields and every following line into as many (Excel in Brazil, France or Germany writes
    ``;`` because ``,`` is their decimal mark). A comma when nothing fits better."""
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]  # the sample may end inside a line
    best, best_n = ",", 1
    for sep in DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=sep)]
        if counts and counts[0] > best_n and all(c == counts[0] for c in counts):
            best, best_n = sep, counts[0]
    return best


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet or Excel export (its first sheet) with every value as text (so ids keep
    their form). The CSV separator (``,`` ``;`` tab ``|``) is sniffed from the first lines
    (``attrs["sep"]``, to write the file back the way it came). Excel cells are typed, so their
    dates and numbers come out in one unambiguous form (2019-01-31 00:00:00, 1234.5)."""
    if not path.exists():
        raise LoadError(f"No such file: {path}.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq", ".xlsx", ".xlsm"):
            df = pd.read_parquet(path) if suffix in (".parquet", ".pq") else pd.read_excel(path, sheet_name=0)
            return df.astype(object).where(df.notna(), "").astype(str)
        with path.open("rb") as f:
            head = f.read(1 << 16)
        for encoding in ("utf-8-sig", "latin-1"):
            try:
                sep = sniff_delimiter(
                    head.decode(encoding, errors="ignore" if len(head) == 1 << 16 else "strict")
                )
                df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, sep=sep)
                df.attrs["sep"] = sep
                return df
            except UnicodeDecodeError:
                continue
    except (pd.errors.ParserError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise LoadError(
            f"Cannot read {path.name}: {exc}. Is it a CSV (fields separated by , ; tab or |), a "
            "Parquet file or an Excel workbook (.xlsx)?"
        ) from exc
    raise LoadError(f"Cannot decode {path.name} as UTF-8 or Latin-1 text.")


# A currency sign (or ISO code) before or after an amount: '$12.50', 'R$ 29,90', '12,50 €', 'BRL 10'.
_CURRENCY_AFFIX = re.compile(r"^(?:[A-Z]{0,3}[$€£¥₹₩₽₺₪]|[A-Z]{3}\s)\s*|\s*(?:[$€£¥₹₩₽₺₪]|\s[A-Z]{3})$")
# '1,234.5' / '1234.5' (point decimals) and '1.234,5' / '1234,5' (comma decimals), with a sign
_POINT_DECIMAL = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d*)?(?:[eE][-+]?\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[-+]?(?:\d{1,3}(?:\.\d{3})+|\d*)(?:,\d*)?$")
# only a comma decimal mark explains these: '29,90', '1.234,5', '0,125'; only a point these
_SURELY_COMMA = re.compile(r",(?:\d{1,2}|\d{4,})$|\.\d{3},\d*$")
_SURELY_POINT = re.compile(r"\.(?:\d{1,2}|\d{4,})$|,\d{3}\.\d*$")


def decimal_mark(s: pd.Series) -> str:
    """',' when most of a column's numbers that only one reading explains are written with decimal
    commas ('29,90', '1.234,56') rather than points ('2.95', '1,234.5'), else '.'. '1,234' alone
    reads as a thousand, the common export. Values written the other way are then rejected."""
    t = s.astype(str).str.strip().str.replace(_CURRENCY_AFFIX, "", regex=True)
    comma, point = int(t.str.contains(_SURELY_COMMA).sum()), int(t.str.contains(_SURELY_POINT).sum())
    return "," if comma > point else "."


def to_number(s: pd.Series, decimal: str | None = None) -> pd.Series:
    """Numbers as exports write them: '1,234.50', '$12', 'R$ 1.234,56', '12,5 €', '-3'. The decimal
    mark is the column's own (:func:`decimal_mark`) unless given. Anything else (and '29,90' read
    with point decimals) is NaN, so it is rejected, never silently multiplied by 100."""
    t = s.astype(str).str.strip()
    blank = t == ""
    num = pd.to_numeric(t.where(~blank, None), errors="coerce")  # plain numbers, fast: '12', '2.95'
    rest = num.isna() & ~blank
    if not rest.any() and decimal != ",":
        return num
    decimal = decimal or decimal_mark(t)
    if decimal == ",":  # '1.234' is a thousand here: the whole column is read again
        return _written_number(t, ",")
    num[rest] = _written_number(t[rest], ".")
    return num


def _written_number(t: pd.Series, decimal: str) -> pd.Series:
    t = t.str.replace(_CURRENCY_AFFIX, "", regex=True)
    t = t.str.replace(r"[\s\u00a0\u202f']", "", regex=True)  # 1 234,56 / 1'234.56 (fr, ch)
    if decimal == ",":
        ok = t.str.match(_COMMA_DECIMAL)
        t = t.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        ok = t.str.match(_POINT_DECIMAL)
        t = t.str.replace(",", "", regex=False)
    t = t.where(ok & (t != "") & t.str.contains(r"\d"), None)
    return pd.to_numeric(t, errors="coerce")


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
