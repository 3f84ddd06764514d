"""Time phrases in a question -> periods, counted from the as-of.

Absolute days ("14 March 2026", "2026-03-14", "March 14th") are read by dateparser (offline: its
data ships in the wheel) with the as-of as its base; months, quarters, years, weeks and every
relative phrase ("yesterday", "last quarter", "the last 7 days", "year to date") are our own
period logic over :mod:`kpi_lib.kpis.periods`, so they mean exactly what ``kpis.query`` means.
A period's ``end`` is exclusive; a period that runs through the as-of ends with the as-of's day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from ..kpis.periods import add_months, floor_period, next_period
from . import regex as re

MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
WEEKDAYS = {
    d: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for d in names
}
NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "a": 1,
}
ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "last": 4,
}
UNITS = {
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "quarter": "quarter",
    "quarters": "quarter",
    "year": "year",
    "years": "year",
    "hour": "hour",
    "hours": "hour",
}

_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_WD = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
#: a day named by its weekday alone ("on Monday", "last Fri"); groups: the qualifier, the weekday
WEEKDAY_PHRASE = re.compile(rf"(?:(last|this|on|previous|past) )?({_WD})")
_NUM = r"\d+|" + "|".join(sorted(NUMBERS, key=len, reverse=True))
_YEAR = r"(?:19|20)\d\d"
_DAYNUM = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"


def _thanksgiving(year: int) -> datetime:
    """The fourth Thursday of November (United States)."""
    first = datetime(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


def _easter(year: int) -> datetime:
    from dateutil.easter import easter

    e = easter(year)
    return datetime(e.year, e.month, e.day)


# Days a retailer asks about by name (a regular expression each -> the day in a given year), the
# longer names first so "easter monday" is not read as "easter" and a Monday.
HOLIDAYS = {
    r"christmas eve": lambda y: datetime(y, 12, 24),
    r"christmas(?: day)?|xmas(?: day)?": lambda y: datetime(y, 12, 25),
    r"boxing day": lambda y: datetime(y, 12, 26),
    r"new year'?s eve": lambda y: datetime(y, 12, 31),
    r"new year'?s(?: day)?": lambda y: datetime(y, 1, 1),
    r"valentine'?s(?: day)?": lambda y: datetime(y, 2, 14),
    r"halloween": lambda y: datetime(y, 10, 31),
    r"thanksgiving(?: day)?": _thanksgiving,
    r"black friday": lambda y: _thanksgiving(y) + timedelta(days=1),
    r"cyber monday": lambda y: _thanksgiving(y) + timedelta(days=4),
    r"easter monday": lambda y: _easter(y) + timedelta(days=1),
    r"easter(?: sunday)?": _easter,
    r"good friday": lambda y: _easter(y) - timedelta(days=2),
}
_HOLIDAY = "|".join(HOLIDAYS)


def holiday(name: str, year: int) -> datetime:
    """The day a named day ("black friday", "xmas") falls on in ``year``."""
    return next(day for pattern, day in HOLIDAYS.items() if re.fullmatch(pattern, name))(year)


@dataclass(frozen=True)
class Period:
    """A span of time named in a question: [start, end), and how it was said."""

    start: datetime
    end: datetime
    unit: str  # day | week | month | quarter | year | span (any other length) | hour
    text: str  # the words it came from
    so_far: bool = False  # runs up to the as-of (to date)
    relative: str | None = None  # "before" / "year" for "the month before", "a year earlier"

    def phrase(self) -> str:
        """For a sentence: 'on 3 Dec 2026', 'in November 2026', 'from 1 Nov to 9 Nov 2026'."""
        d = self.describe()
        if (self.unit == "day" and not self.so_far) or self.unit == "hour":
            return f"on {d}"
        if self.unit in ("month", "quarter", "year") and not self.so_far:
            return f"in {d}"
        if self.unit == "week" and not self.so_far:
            return f"in {d}"
        return f"from {d.replace(' – ', ' to ')}"

    def describe(self) -> str:
        s, e = self.start, self.end - timedelta(days=1)
        if self.unit == "day":
            return f"{s.day} {s:%b %Y}"
        if self.unit == "week":
            return f"the week of {s.day} {s:%b %Y}" + (" so far" if self.so_far else "")
        if self.unit == "month" and not self.so_far:
            return f"{s:%B %Y}"
        if self.unit == "quarter" and not self.so_far:
            return f"Q{(s.month - 1) // 3 + 1} {s.year}"
        if self.unit == "year" and not self.so_far:
            return f"{s.year}"
        if self.unit == "hour":
            return f"{s.day} {s:%b %Y} {s:%H:%M}–{self.end:%H:%M}"
        if s.hour or self.end.hour:  # "the past 24 hours": say the hours, not two dates
            return f"{s.day} {s:%b %Y} {s:%H:%M} – {self.end.day} {self.end:%b %Y} {self.end:%H:%M}"
        return f"{s.day} {s:%b %Y} – {e.day} {e:%b %Y}"


@dataclass(frozen=True)
class Found:
    period: Period
    span: tuple[int, int]  # character span in the normalised text
    also: tuple[int, int] | None = None  # a second span said apart ("black friday ... last year")


_REL_YEAR = r"(?:last|this|previous|prior|the current|the previous|the last) year"


def _year_of(said: str, today: datetime) -> int:
    """The year of '2025', 'last year', 'this year'."""
    if re.fullmatch(_YEAR, said):
        return int(said)
    return today.year if re.search(r"\b(?:this|current)\b", said) else today.year - 1


def _num(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text]


def _latest_month(month: int, ref: datetime) -> datetime:
    """The most recent month ``month`` that has begun by ``ref``."""
    year = ref.year if month <= ref.month else ref.year - 1
    return datetime(year, month, 1)


def _latest_quarter(q: int, ref: datetime) -> datetime:
    start = datetime(ref.year, 3 * (q - 1) + 1, 1)
    return start if start <= ref else start.replace(year=ref.year - 1)


def _day(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_day(text: str, ref: datetime) -> datetime | None:
    """An absolute day in any common format, read by dateparser (the most recent one by ``ref``
    when the year is left out)."""
    import dateparser

    iso = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", text)
    if iso:
        try:
            return datetime(int(iso[1]), int(iso[2]), int(iso[3]))
        except ValueError:
            return None
    cleaned = re.sub(r"\b(the|of)\b", " ", text)
    parsed = dateparser.parse(
        cleaned,
        languages=["en"],
        settings={
            "RELATIVE_BASE": ref.replace(hour=12),
            "PREFER_DATES_FROM": "past",
            "REQUIRE_PARTS": ["day", "month"],
            "PREFER_DAY_OF_MONTH": "first",
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    return None if parsed is None else _day(parsed)


def spell_days_of_month(text: str, as_of: datetime) -> tuple[str, list[str], list[tuple[str, str]]]:
    """``text`` with "the 3rd" written as the date it means (this month's, or last month's while
    this month's has not come; "the 5th of last month"), so every date pattern reads it ("since the
    1st", "from the 1st to the 5th"); any problems (a day the month does not have); and the
    (said, read as) pairs."""
    today = _day(as_of)
    problems: list[str] = []
    spelt: list[tuple[str, str]] = []

    def sub(m: re.Match) -> str:
        day, which = int(m.group(1)), m.group(2)
        month = floor_period(today, "month")
        if which in ("last", "the previous") or (which is None and day > today.day):
            month = _back(month, "month")
        try:
            d = month.replace(day=day)
        except ValueError:
            problems.append(f"{month:%B %Y} has no day {day}")
            return m.group(0)
        spelt.append((m.group(0), f"{d.day} {d:%B %Y}".lower()))
        return spelt[-1][1]

    # "between the 1st and 15th of November": the month said once is both days' month
    day = r"(?:the )?([12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)"
    month = rf"(?:of |in )?((?:{_MON})(?:,? {_YEAR})?|(?:this|the current|last|the previous) month)"
    text = re.sub(
        rf"\b(from|between) {day} (and|to|until|till|through|-) {day} {month}\b",
        lambda m: (
            f"{m.group(1)} the {m.group(2)}th of {m.group(5)} {m.group(3)} the {m.group(4)}th of {m.group(5)}"
            if m.group(5).endswith("month")
            else f"{m.group(1)} {m.group(2)} {m.group(5)} {m.group(3)} {m.group(4)} {m.group(5)}"
        ),
        text,
    )
    text = re.sub(
        r"\bthe ([12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)(?: of (this|the current|last|the previous) month)?"
        r"(?=$|[?.,!;:]| (?:in|for|from|at|vs|versus|compared|and|to|until|till|through|on|by|via|with|across)\b)",
        sub,
        text,
    )
    return text, problems, spelt


# Words that make "A to B" two periods compared rather than one span
_COMPARING = (
    r"\b(?:grow\w*|grew|change\w*|increase\w*|decrease\w*|vs|versus|compar\w*|ris\w*|rose|f[ae]ll\w*|drop\w*"
    r"|differ\w*|mom|qoq|move[ds]?|went|go(?:ne)?|jump\w*|climb\w*|shift\w*)\b"
)
_SLASH_DAY = re.compile(r"(?<![\d/.])(\d{1,2})(/)(\d{1,2})\2(\d{4}|\d\d)(?![\d/.])")  # dots are day first


def settle_day_order(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with each numeric day whose order is open ("03/12/2026") written out, when another
    day in the same question settles it ("27/11/2026 to 03/12/2026": day first), and the (typed,
    read as) pairs. Left alone when none settles it or two disagree; the day is then asked back."""
    days = [(int(m[1]), int(m[3])) for m in _SLASH_DAY.finditer(text)]
    orders = {"day first" if a > 12 else "month first" for a, b in days if (a > 12) != (b > 12)}
    # "Saturday (05/12/2026)": the weekday said with it settles it, when only one reading falls on it
    named = {WEEKDAYS[w] for w in re.findall(rf"\b({_WD})\b", text) if len(w) > 3}
    for m in _SLASH_DAY.finditer(text) if len(named) == 1 and not orders else ():
        a, b, y = int(m[1]), int(m[3]), int(m[4])
        year = y + 2000 if y < 100 else y
        fits = set()
        for label, (day, month) in (("day first", (a, b)), ("month first", (b, a))):
            try:
                if datetime(year, month, day).weekday() in named:
                    fits.add(label)
            except ValueError:
                pass
        if len(fits) == 1:
            orders |= fits
    if len(orders) != 1:
        return text, []
    day_first = orders == {"day first"}
    settled: list[tuple[str, str]] = []

    def sub(m: re.Match) -> str:
        a, b, y = int(m[1]), int(m[3]), int(m[4])
        day, month = (a, b) if day_first else (b, a)
        try:
            d = datetime(y + 2000 if y < 100 else y, month, day)
        except ValueError:
            return m.group(0)
        if a <= 12 and b <= 12 and a != b:
            settled.append((m.group(0), f"{d:%-d %B %Y}"))
        return f"{d:%Y-%m-%d}"

    return _SLASH_DAY.sub(sub, text), settled


def find(text: str, as_of: datetime, fiscal_start: int = 1) -> tuple[list[Found], list[str]]:
    """Every period named in ``text`` (lower-case, normalised), in order, and any problems
    (an impossible date, an ambiguous day/month order). ``fiscal_start`` is the month the fiscal
    year starts in (FY2025 is the fiscal year that ends in 2025)."""
    today = _day(as_of)
    tomorrow = today + timedelta(days=1)
    found: list[Found] = []
    problems: list[str] = []
    taken = [False] * len(text)

    def add(m: re.Match, p: Period | None) -> None:
        """Record a period; None marks the words as read (a date that is not one)."""
        if p is not None:
            found.append(Found(p, m.span()))
        for i in range(*m.span()):
            taken[i] = True

    def free(m: re.Match) -> bool:
        return not any(taken[m.start() : m.end()])

    def each(pattern: str):
        for m in re.finditer(pattern, text):
            if free(m):
                yield m

    def so_far(unit: str, label: str, m: re.Match) -> None:
        start = floor_period(today, unit)
        add(m, Period(start, tomorrow, unit, label, so_far=True))

    # --- times of day: read first, applied to the day they are said with (or today) at the end ----
    clocks: list[tuple[tuple[int, int], int, int]] = []  # (span, from minute, to minute)
    for m in each(rf"\b(?:between|from) ({_CLOCK}) ?(?:and|to|until|till|through|-) ?({_CLOCK})\b"):
        a, b = _minutes(m.group(1)), _minutes(m.group(2), end=True)
        if a is not None and b is not None and a < b:
            clocks.append((m.span(), a, b))
            add(m, None)
    for m in each(rf"\b(?:at|around) ({_CLOCK})\b"):  # "at 9am": that hour
        at = _minutes(m.group(1))
        if at is not None:
            clocks.append((m.span(), at, at + 60))
            add(m, None)
    for m in each(rf"\b(before|until|till|up to|after|since) ({_CLOCK})\b"):
        at = _minutes(m.group(2), end=m.group(1) not in ("after", "since"))
        if at is not None:
            clocks.append((m.span(), *((0, at) if m.group(1) not in ("after", "since") else (at, 24 * 60))))
            add(m, None)
    # "this morning", "yesterday afternoon", "last night": that day's hours; "in the morning" goes
    # with the day said next to it
    for m in each(r"\b(this|today|yesterday|last)? ?(morning|afternoon|evening|night)\b|\b(tonight)\b"):
        which, part = m.group(1), m.group(2) or m.group(3)
        if part == "night" and which != "last":
            continue
        a, b = PARTS_OF_DAY[part]
        if which is None and part != "tonight":
            clocks.append((m.span(), a, -b))  # negative: a part of day that needs its day said
        else:
            d = today - timedelta(days=1) if which in ("yesterday", "last") else today
            p = Period(
                d + timedelta(minutes=a), d + timedelta(minutes=b), "hour", m.group(0), so_far=d == today
            )
            found.append(Found(p, m.span()))
        add(m, None)

    # --- fiscal years: "FY2025", "fiscal year 25", "Q1 FY2025", "FY25 H2", "last fiscal year", "FYTD"
    def fiscal_year(year: int) -> datetime:  # the start of the fiscal year named ``year``
        return datetime(year - (fiscal_start != 1), fiscal_start, 1)

    current_fy = fiscal_year(today.year + (fiscal_start != 1 and today.month >= fiscal_start))
    for m in each(
        rf"\bfy ?'?({_YEAR}|\d\d) ?(?:q([1-4])|h([12]))\b"
        rf"|\b(?:(?:q([1-4])|h([12])) ?(?:of )?)?(?:fy|fiscal year|fiscal) ?'?({_YEAR}|\d\d)\b"
    ):
        said = m.group(1) or m.group(6)
        start = fiscal_year(int(said) if len(said) == 4 else 2000 + int(said))
        quarter, half = m.group(2) or m.group(4), m.group(3) or m.group(5)
        if quarter:
            start, months, unit = add_months(start, 3 * (int(quarter) - 1)), 3, "quarter"
        elif half:
            start, months, unit = add_months(start, 6 * (int(half) - 1)), 6, "span"
        else:
            months, unit = 12, "year"
        calendar = fiscal_start == 1 or unit == "span"
        add(m, Period(start, add_months(start, months), unit if calendar else "span", m.group(0)))
    for m in each(
        r"\b(?:(this|the current|current|last|the last|previous|the previous|prior) fiscal year|fiscal year to date|fytd)\b"
    ):
        if m.group(1) and m.group(1).split()[-1] in ("last", "previous", "prior"):
            start = add_months(current_fy, -12)
            add(m, Period(start, current_fy, "year" if fiscal_start == 1 else "span", m.group(0)))
        else:
            add(
                m,
                Period(
                    current_fy, tomorrow, "year" if fiscal_start == 1 else "span", m.group(0), so_far=True
                ),
            )
    # --- to date ------------------------------------------------------------------------------
    for unit, words in (("year", "year|yr"), ("month", "month"), ("quarter", "quarter"), ("week", "week")):
        for m in each(
            rf"\b(?:(?:{words})[ -]to[ -]date|{unit[0]}td)\b|\b(?:this|the current) {unit} (?:so far|to date)\b|\bso far this {unit}\b"
        ):
            so_far(unit, m.group(0), m)
    # "since the start of the year", "from the beginning of the month": to date
    for m in each(
        r"\b(?:since|from) (?:the )?(?:start|beginning) of (?:the |this )?(week|month|quarter|year)(?: to date| so far| until now| till now)?\b"
    ):
        so_far(m.group(1), m.group(0), m)
    # ISO weeks: "week 48 of 2026", "wk 12 last year", "2026-W48"; without a year, the latest one begun
    for m in each(
        rf"\b(?:iso )?(?:week|wk|w) ?(\d{{1,2}})(?! (?:weeks?|days?|months?|years?)\b)(?:,? (?:of |in )?({_YEAR}|{_REL_YEAR}))?\b"
        rf"|\b({_YEAR}) ?-?w(\d{{1,2}})\b"
    ):
        week = int(m.group(1) or m.group(4))
        said = m.group(2) or m.group(3)
        year = _year_of(said, today) if said else today.isocalendar().year
        try:
            start = datetime.fromisocalendar(year, week, 1)
            if not said and start > today:
                start = datetime.fromisocalendar(year - 1, week, 1)
        except ValueError:
            problems.append(f"{year} has no ISO week {week} (weeks run 1 to 52 or 53)")
            add(m, None)
            continue
        add(m, Period(start, start + timedelta(weeks=1), "week", m.group(0)))
    # --- between / from ... to ----------------------------------------------------------------
    day_pat = rf"(?:\d{{4}}-\d\d-\d\d|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}|{_DAYNUM} (?:of )?(?:{_MON})(?: {_YEAR})?|(?:{_MON}) {_DAYNUM}(?:,? {_YEAR})?)"
    for m in each(
        rf"\b(?:between|from) ({day_pat}) (?:and|to|until|till|through|-) ({day_pat}|yesterday|today)\b"
    ):
        a, b = _absolute_day(m.group(1), today, problems), _absolute_day(m.group(2), today, problems)
        if a and b and b >= a:  # "from 1 November to yesterday": both days included
            add(m, Period(a, b + timedelta(days=1), "span", m.group(0), so_far=b >= today))
    # "revenue 27 Nov to 3 Dec", "the period 27/11/2026 - 03/12/2026": a span too, unless the question
    # compares ("compare 1 Nov to 3 Dec": the two days)
    if not re.search(_COMPARING, text):
        for m in each(rf"\b({day_pat}) (?:to|until|till|through|-) ({day_pat}|yesterday|today)\b"):
            a, b = _absolute_day(m.group(1), today, problems), _absolute_day(m.group(2), today, problems)
            if a and b and b >= a:
                add(m, Period(a, b + timedelta(days=1), "span", m.group(0), so_far=b >= today))
    # "from September 2026 through November 2026", "between Sep and Nov": whole months, both
    # included; "grew from October to November" compares them instead
    changing = re.search(
        r"\b(?:grow\w*|grew|chang\w*|increas\w*|decreas\w*|ris\w*|rose|f[ae]ll\w*|drop\w*|differ\w*"
        r"|move[ds]?|moving|went|go(?:ne)?|jump\w*|climb\w*|shift\w*)\b",
        text,
    )
    for m in each(
        rf"\b(?:(between|from) )?({_MON})(?: ({_YEAR}))? (and|to|until|till|through|thru|-) ({_MON})(?: ({_YEAR}))?\b"
    ):
        link = m.group(4)
        if (link == "and" and m.group(1) != "between") or (
            link in ("to", "and") and (changing or not m.group(1))
        ):
            continue
        if "may" in (m.group(2), m.group(5)) and not (m.group(3) or m.group(6)) and not m.group(1):
            continue
        y2 = int(m.group(6)) if m.group(6) else None
        end_m = MONTHS[m.group(5)]
        end = datetime(y2, end_m, 1) if y2 else _latest_month(end_m, today)
        y1 = int(m.group(3)) if m.group(3) else end.year - (MONTHS[m.group(2)] > end_m)
        start = datetime(y1, MONTHS[m.group(2)], 1)
        if start <= end:
            add(m, Period(start, add_months(end, 1), "span", m.group(0), so_far=add_months(end, 1) > today))
    # "between 3 and 10 May", "3-10 May 2026", "May 3 to 10": one month named once
    for m in each(
        rf"\b(?:(?:between|from) )?({_DAYNUM}) ?(?:and|to|until|till|through|-) ?({_DAYNUM}) (?:of )?({_MON})(?:,? ({_YEAR}))?\b"
        rf"|\b(?:(?:between|from) )?({_MON}) ({_DAYNUM}) ?(?:and|to|until|till|through|-) ?({_DAYNUM})(?:,? ({_YEAR}))?\b"
    ):
        if m.group(3):
            d1, d2, mon, year = m.group(1), m.group(2), m.group(3), m.group(4)
        else:
            mon, d1, d2, year = m.group(5), m.group(6), m.group(7), m.group(8)
        if mon == "may" and not year and not m.group(0).startswith(("between", "from")) and m.group(5):
            continue  # "may 3 to 10" without a frame is too loose
        tail = f" {mon}" + (f" {year}" if year else "")
        b = _absolute_day(re.sub(r"(st|nd|rd|th)$", "", d2) + tail, today, problems)
        if b is None:
            continue
        a = _absolute_day(f"{re.sub(r'(st|nd|rd|th)$', '', d1)} {b:%B %Y}", today, problems)
        if a and b >= a:
            add(m, Period(a, b + timedelta(days=1), "span", m.group(0)))
    # "from January to March 2025", "Jan-Mar", "between May and July": whole months, the first one
    # the most recent that leaves the second at or before the as-of's month when no year is said
    # ("growth from January to March", "how did AOV move from May to June" compare the two months instead)
    if not re.search(_COMPARING, text):
        for m in each(
            rf"\b(?:(?:between|from) ({_MON})(?: ({_YEAR}))? (?:and|to|until|till|through)|({_MON})(?: ({_YEAR}))? ?(?:-|to|until|till|through)) ?({_MON})(?:,? ({_YEAR}))?\b"
        ):
            m1, y1, m2, y2 = m.group(1) or m.group(3), m.group(2) or m.group(4), m.group(5), m.group(6)
            if "may" in (m1, m2) and not (m.group(1) or y1 or y2):
                continue  # "may" the verb
            b = datetime(int(y2), MONTHS[m2], 1) if y2 else _latest_month(MONTHS[m2], today)
            a = datetime(int(y1) if y1 else b.year, MONTHS[m1], 1)
            if not y1 and a > b:
                a = a.replace(year=a.year - 1)
            if a <= b:
                add(m, Period(a, add_months(b, 1), "span", m.group(0)))
    for m in each(rf"\bsince ({day_pat})\b"):
        a = _absolute_day(m.group(1), today, problems)
        if a:
            add(m, Period(a, tomorrow, "span", m.group(0), so_far=True))
    for m in each(rf"\bsince (?:the start of |the beginning of )?(?:({_MON})(?:,? ({_YEAR}))?|({_YEAR}))\b"):
        if m.group(3):
            a = datetime(int(m.group(3)), 1, 1)
        else:
            month = MONTHS[m.group(1)]
            a = datetime(int(m.group(2)), month, 1) if m.group(2) else _latest_month(month, today)
        if a < tomorrow:
            add(m, Period(a, tomorrow, "span", m.group(0), so_far=True))
    # "since Monday": from the most recent Monday up to the as-of
    for m in each(rf"\bsince (?:last )?({_WD})\b"):
        d = _latest_weekday(WEEKDAYS[m.group(1)], today)
        add(m, Period(d, tomorrow, "span", m.group(0), so_far=True))
    # "from Monday to Wednesday (last week)": days of one week; the most recent such run without one
    for m in each(
        rf"\b(?:from|between) ({_WD}) (?:to|and|until|till|through|thru|-) ({_WD})(?: (?:of )?(last|this|previous) week)?\b"
    ):
        wd1, wd2 = WEEKDAYS[m.group(1)], WEEKDAYS[m.group(2)]
        if wd2 < wd1:
            continue
        if m.group(3):
            week = floor_period(today, "week")
            base = week if m.group(3) == "this" else week - timedelta(weeks=1)
            a, b = base + timedelta(days=wd1), base + timedelta(days=wd2)
        else:
            b = _latest_weekday(wd2, today)
            a = b - timedelta(days=wd2 - wd1)
        if a <= today:
            add(m, Period(a, min(b, today) + timedelta(days=1), "span", m.group(0), so_far=b >= today))
    # "Monday vs Tuesday last week": the week said once is both days' week
    week_of = r"(?:of )?(last|this|the previous|previous) week"
    for m in each(rf"\b({_WD}) (vs|versus|and|or|compared (?:with|to)) ({_WD}),? {week_of}\b"):
        days = [_day_of_week(WEEKDAYS[m.group(g)], m.group(4), today) for g in (1, 3)]
        if all(days):
            for d, (a, b) in zip(days, ((m.start(1), m.end(1)), (m.start(3), m.end())), strict=True):
                found.append(
                    Found(Period(d, d + timedelta(days=1), "day", f"{d:%A} {m.group(4)} week"), (a, b))
                )
            add(m, None)
    # "on Monday last week", "last week on Monday": that week's Monday (not the latest Monday)
    for m in each(
        rf"\b(?:on )?({_WD}),? {week_of}\b|\b(last|this|the previous|previous) week(?:'s)?,? (?:on )?({_WD})\b"
    ):
        wd, which = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        d = _day_of_week(WEEKDAYS[wd], which, today)
        if d is None:
            problems.append(f"{wd.capitalize()} this week has not come yet")
            add(m, None)
        else:
            add(m, Period(d, d + timedelta(days=1), "day", m.group(0)))
    # --- weekends and the days retail is asked about ---------------------------------------------
    for m in each(rf"\b(?:the )?weekend (?:of|starting|beginning|commencing)(?: on)? ({day_pat})\b"):
        d = _absolute_day(m.group(1), today, problems)
        if d:  # the Saturday and Sunday that day falls in, or the next ones from a weekday
            saturday = d - timedelta(days=1) if d.weekday() == 6 else d + timedelta(days=5 - d.weekday())
            add(m, Period(saturday, saturday + timedelta(days=2), "span", m.group(0)))
    for m in each(r"\b(?:(last|this|previous|past|the) )?weekend\b"):
        saturday = _latest_weekday(5, today)
        if m.group(1) in ("last", "previous", "past") and today.weekday() >= 5:
            saturday -= timedelta(weeks=1)  # on a Sunday, "last weekend" is the one before this
        end = saturday + timedelta(days=2)
        add(m, Period(saturday, min(end, tomorrow), "span", m.group(0), so_far=end > tomorrow))
    # "since Black Friday": from the latest one (or that year's) up to the as-of
    for m in each(rf"\bsince ({_HOLIDAY})(?:,? ({_YEAR}))?\b"):
        d = holiday(m.group(1), int(m.group(2)) if m.group(2) else today.year)
        if not m.group(2) and d > today:
            d = holiday(m.group(1), today.year - 1)
        if d <= today:
            add(m, Period(d, tomorrow, "span", m.group(0), so_far=True))
    for m in each(
        rf"\b({_HOLIDAY})(?:(?: of| in)? ({_YEAR}|{_REL_YEAR}))?\b|\b({_YEAR})(?:'s)? ({_HOLIDAY})\b"
    ):
        name, said = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        elsewhere = None
        if not said and not re.search(r"\b(?:vs|versus|compar\w*|against|than)\b", text):
            # "black friday revenue last year": the one year said elsewhere is the holiday's
            years = [y for y in re.finditer(rf"\b(?:{_YEAR}|{_REL_YEAR})\b", text) if free(y)]
            if len(years) == 1:
                elsewhere = years[0]
                said = elsewhere.group(0)
        if said:
            d = holiday(name, _year_of(said, today))
        else:  # the latest one by the as-of
            d = holiday(name, today.year)
            if d > today:
                d = holiday(name, today.year - 1)
        text_ = m.group(0) if elsewhere is None else f"{m.group(0)} {elsewhere.group(0)}"
        week = re.match(
            rf" week\b(?!end| of| starting| beginning| ending| before| after)(?:,? (?:of |in )?({_YEAR})\b)?",
            text[m.end() :],
        )
        if week and week.group(1) and not m.group(2) and not m.group(3):
            d = holiday(name, int(week.group(1)))  # "Cyber Monday week 2025"
            text_ = f"{m.group(0)} {week.group(1)}"
        if week:  # "Cyber Monday week": the Monday-to-Sunday week it falls in, not the day
            monday = d - timedelta(days=d.weekday())
            found.append(
                Found(
                    Period(monday, monday + timedelta(days=7), "week", f"{text_} week"),
                    (m.start(), m.end() + week.end()),
                )
            )
            for i in range(m.start(), m.end() + week.end()):
                taken[i] = True
        else:
            add(m, Period(d, d + timedelta(days=1), "day", text_))
        if elsewhere is not None:
            found[-1] = Found(found[-1].period, found[-1].span, elsewhere.span())
            add(elsewhere, None)
    # --- the week starting ... ----------------------------------------------------------------
    for m in each(rf"\b(?:the )?week (?:ending|ended|to)(?: on)? ({day_pat})\b"):
        b = _absolute_day(m.group(1), today, problems)  # retail's "week ending Sunday 29 Nov"
        if b:
            add(m, Period(b - timedelta(days=6), b + timedelta(days=1), "span", m.group(0)))
    # "the 7 days ending yesterday", "the 4 weeks to 29 Nov": that many days up to that day
    for m in each(
        rf"\b(?:the )?({_NUM}) (days?|weeks?) (?:ending|ended|to|up to|through|until|till)(?: on)? "
        rf"({day_pat}|yesterday|today)\b"
    ):
        b = _absolute_day(m.group(3), today, problems)
        if b:
            days = _num(m.group(1)) * (7 if m.group(2).startswith("week") else 1)
            end = b + timedelta(days=1)
            add(m, Period(end - timedelta(days=days), end, "span", m.group(0), so_far=end > today))
    for m in each(rf"\b(?:the )?week (?:starting|beginning|commencing|from|of)(?: on)? ({day_pat})\b"):
        a = _absolute_day(m.group(1), today, problems)
        if a:
            add(m, Period(a, a + timedelta(days=7), "week" if a.weekday() == 0 else "span", m.group(0)))
    # "the day before yesterday" is a day, not "yesterday" against "the day before" it
    for m in each(r"\b(?:the )?day before yesterday\b"):
        add(m, Period(today - timedelta(days=2), today - timedelta(days=1), "day", m.group(0)))
    # --- "the week before last": two back -----------------------------------------------------
    for m in each(r"\b(?:the )?(day|week|month|quarter|year) before last\b"):
        unit = m.group(1)
        start = _back(_back(floor_period(today, unit), unit), unit)
        add(m, Period(start, next_period(start, unit), unit, m.group(0)))
    # --- a fortnight: "the past / the last fortnight" is the 14 days up to the as-of, as "the last
    # 2 weeks" is; a bare "last fortnight" is those 14 days to some and the two calendar weeks
    # before this one to others: asked back
    for m in each(r"\b(?:the )?(?:past|last|previous|prior|this) fortnight\b"):
        if re.search(r"\bpast\b|\bthe last\b", m.group(0)):  # "in the last fortnight": as "the last 2 weeks"
            add(m, Period(tomorrow - timedelta(days=14), tomorrow, "span", m.group(0), so_far=True))
        else:
            week = floor_period(today, "week")
            problems.append(
                f"'{m.group(0)}' could be the last 14 days ({(tomorrow - timedelta(days=14)).day} "
                f"{tomorrow - timedelta(days=14):%b} – {today.day} {today:%b %Y}) or the two weeks before this one "
                f"({(week - timedelta(weeks=2)).day} {week - timedelta(weeks=2):%b} – "
                f"{(week - timedelta(days=1)).day} {week - timedelta(days=1):%b %Y}); say 'the past 14 days' "
                "or name the weeks"
            )
            add(m, None)
    # --- quarters and halves --------------------------------------------------------------------
    qh_year_pat = rf"{_YEAR}|{_REL_YEAR}"
    qh = (
        rf"\b(?:the )?(first|second|third|fourth|last|1st|2nd|3rd|4th) quarter(?:(?: of| in)? ({qh_year_pat}))?\b",
        rf"\bq([1-4])(?:[ -]?(?:of |in )?({qh_year_pat}))?\b|\b({_YEAR})[ -]?q([1-4])\b",
        rf"\b(?:h([12])|(?:the )?(first|second) half)(?:(?: of| in)? ({qh_year_pat}))?\b|\b({_YEAR})[ -]?h([12])\b",
    )
    # a quarter or half said without a year takes the one year said with another ("the second half
    # of last year vs the first half"), not the latest one (which may be in another year); unless
    # that would name the same part twice ("Q3 vs Q3 last year": the latest Q3)

    def year_said(m: re.Match) -> str | None:
        return next((y for y in m.groups() if y and re.fullmatch(qh_year_pat, y)), None)

    def part(i: int, m: re.Match) -> tuple[str, int]:
        if i == 0:
            return ("q", ORDINALS[m.group(1)])
        if i == 1:
            return ("q", int(m.group(1) or m.group(4)))
        return (
            "h",
            int(m.group(1) or m.group(5))
            if (m.group(1) or m.group(5))
            else (1 if m.group(2) == "first" else 2),
        )

    named = [(i, m) for i, pat in enumerate(qh) for m in re.finditer(pat, text)]
    said = {_year_of(year_said(m), today) for _, m in named if year_said(m)}
    with_year = {part(i, m) for i, m in named if year_said(m)}
    if len(said) > 1 and any(year_said(m) is None for _, m in named):
        problems.append(
            "a quarter or half is named without a year next to others of different years: say the year"
        )
    inherit = next(iter(said)) if len(said) == 1 else None

    def inherited(i: int, m: re.Match) -> int | None:
        return inherit if part(i, m) not in with_year else None

    def qh_pass(rel_year: bool) -> None:
        """Quarters and halves; first (``rel_year``) only those said with "last/this year", before
        "last year" is read as a period of its own."""

        def keep(m: re.Match) -> bool:
            # "the last quarter of 2025" is read here too, before "last quarter" is read on its own
            last_of = re.match(r"(?:the )?last \w+ (?:of|in) ", m.group(0)) is not None
            return not rel_year or last_of or any(y and re.fullmatch(_REL_YEAR, y) for y in m.groups())

        for m in each(qh[0]):
            if not keep(m):
                continue
            if m.group(1) == "last" and m.group(2) and " of " not in m.group(0) and " in " not in m.group(0):
                continue  # "last quarter last year": not read as Q4 (left to "last quarter" / "last year")
            q = ORDINALS[m.group(1)]
            year = _year_of(m.group(2), today) if m.group(2) else inherited(0, m)
            start = datetime(year, 3 * (q - 1) + 1, 1) if year else _latest_quarter(q, today)
            add(m, Period(start, add_months(start, 3), "quarter", m.group(0)))
        for m in each(qh[1]):
            if not keep(m):
                continue
            q = int(m.group(1) or m.group(4))
            said_year = m.group(2) or m.group(3)
            year = _year_of(said_year, today) if said_year else inherited(1, m)
            start = datetime(year, 3 * (q - 1) + 1, 1) if year else _latest_quarter(q, today)
            add(m, Period(start, add_months(start, 3), "quarter", m.group(0)))
        for m in each(qh[2]):
            if not keep(m):
                continue
            h = (
                int(m.group(1) or m.group(5))
                if (m.group(1) or m.group(5))
                else (1 if m.group(2) == "first" else 2)
            )
            said_year = m.group(3) or m.group(4)
            if said_year:
                year = _year_of(said_year, today)
            elif inherited(2, m):
                year = inherited(2, m)
            else:
                year = today.year if h == 1 or today.month > 6 else today.year - 1
            start = datetime(year, 1 if h == 1 else 7, 1)
            add(m, Period(start, add_months(start, 6), "span", m.group(0)))

    # "the last day of last month", "the first Monday of November", "the last day of the year"
    for m in each(
        rf"\b(?:the )?(first|last|1st) (day|{'|'.join(sorted(WEEKDAYS, key=len, reverse=True))}) of "
        rf"(?:(the|this|the current|last|the previous|the last) )?(month|year|{_MON})(?:,? ({_YEAR}))?\b"
    ):
        pos, what, which, of, year = m.groups()
        unit = "year" if of == "year" else "month"
        if of in ("month", "year"):
            start = floor_period(today, unit)
            if which in ("last", "the previous", "the last"):
                start = _back(start, unit)
        else:
            start = datetime(int(year), MONTHS[of], 1) if year else _latest_month(MONTHS[of], today)
        end = next_period(start, unit)
        if what == "day":
            d = start if pos != "last" else end - timedelta(days=1)
        else:
            wd = WEEKDAYS[what]
            d = start + timedelta(days=(wd - start.weekday()) % 7)
            if pos == "last":
                d = end - timedelta(days=1)
                d -= timedelta(days=(d.weekday() - wd) % 7)
        add(m, Period(d, d + timedelta(days=1), "day", m.group(0)))
    # "the first half of the month", "the second half of last month / of November": days 1-15, 16-end
    for m in each(
        rf"\b(?:the )?(first|second|1st|2nd) half of (?:(the|this|the current|last|the previous|the last) )?(month|{_MON})(?:,? ({_YEAR}))?\b"
    ):
        which, what, year = m.group(2), m.group(3), m.group(4)
        if what == "month":
            start = floor_period(today, "month")
            if which in ("last", "the previous", "the last"):
                start = _back(start, "month")
        else:
            start = datetime(int(year), MONTHS[what], 1) if year else _latest_month(MONTHS[what], today)
        mid = start.replace(day=16)
        first = m.group(1) in ("first", "1st")
        add(m, Period(start if first else mid, mid if first else add_months(start, 1), "span", m.group(0)))
    qh_pass(rel_year=True)
    # "November last year", "March this year": that month of that year, before "last year" is read
    # as a period of its own (which would leave "may" to be the verb and the month unread)
    for m in each(rf"\b(?:(?:the )?month of )?({_MON}),? (?:of |in )?({_REL_YEAR})\b"):
        start = datetime(_year_of(m.group(2), today), MONTHS[m.group(1)], 1)
        add(m, Period(start, add_months(start, 1), "month", m.group(0)))
    # "a week ago today", "two months ago today": that one day
    for m in each(rf"\b(a|an|{_NUM}) (days?|weeks?|months?|years?) ago today\b"):
        n, unit = 1 if m.group(1) in ("a", "an") else _num(m.group(1)), UNITS[m.group(2)]
        d = (pd.Timestamp(today) - pd.DateOffset(**{unit + "s": n})).to_pydatetime()
        add(m, Period(d, d + timedelta(days=1), "day", m.group(0)))
    # "the three days before yesterday": the days up to (not including) that day
    for m in each(
        rf"\b(?:the )?({_NUM}) days (?:immediately |just )?(?:before|prior to|preceding) (yesterday|today)\b"
    ):
        end = today - timedelta(days=1 if m.group(2) == "yesterday" else 0)
        add(m, Period(end - timedelta(days=_num(m.group(1))), end, "span", m.group(0)))
    # --- relative to another period in the question ("vs the month before") --------------------
    for m in each(
        rf"\b(?:(?:the )?same (?:(?:{_NUM}) (?:days|weeks|months|quarters)|period|time|day|week|month|quarter|days|weeks|months)(?: of| in)? "
        r"(?:last year|(?:a|one|1) year (?:earlier|ago|before)(?: (?:it|that|those|them|then))?"
        r"|(?:the |a )?(?:year before|previous year|prior year))"
        r"|a year (?:earlier|ago|before)|(?:one|1) year (?:earlier|before)|(?:at )?this time last year)\b"
    ):
        add(m, Period(today, tomorrow, "year", m.group(0), relative="year"))
    for m in each(
        r"\b(?:the )?same (?:day|weekday) (?:last week|a week (?:earlier|ago|before)|(?:the )?(?:week before|previous week|prior week))\b"
    ):
        add(m, Period(today, tomorrow, "week", m.group(0), relative="week"))
    # "MTD vs the same period last month": the same stretch of the month before
    for m in each(
        r"\b(?:the )?same (?:period|time|days|stretch) (?:last|the previous|the prior) (week|month|quarter)\b"
    ):
        add(m, Period(today, tomorrow, m.group(1), m.group(0), relative="before"))
    for m in each(
        r"\b(?:the )?(?:(day|week|month|quarter|year|period) (?:before|prior)|(?:previous|prior|preceding) (day|week|month|quarter|year|period))\b"
    ):
        add(m, Period(today, tomorrow, m.group(1) or m.group(2), m.group(0), relative="before"))
    # --- relative -----------------------------------------------------------------------------
    for m in each(
        rf"\b(?:the )?(?:last|past|previous|trailing|prior) ({_NUM}) (days?|weeks?|months?|hours?|quarters?|years?)\b"
    ):
        n, unit = _num(m.group(1)), UNITS[m.group(2)]
        if unit == "hour":
            end = as_of.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            add(m, Period(end - timedelta(hours=n), end, "span", m.group(0), so_far=True))
        elif unit == "day":
            add(
                m,
                Period(
                    tomorrow - timedelta(days=n),
                    tomorrow,
                    "day" if n == 1 else "span",
                    m.group(0),
                    so_far=True,
                ),
            )
        elif unit == "week":
            add(m, Period(tomorrow - timedelta(weeks=n), tomorrow, "span", m.group(0), so_far=True))
        else:
            months = n * {"month": 1, "quarter": 3, "year": 12}[unit]
            start = (pd.Timestamp(tomorrow) - pd.DateOffset(months=months)).to_pydatetime()
            add(m, Period(start, tomorrow, "span", m.group(0), so_far=True))
    # "the last 3 full months": the three calendar months before this one
    for m in each(
        rf"\b(?:the )?(?:last|past|previous|prior|trailing) ({_NUM}) (?:full|complete|completed|whole|calendar) (weeks|months|quarters|years)\b"
    ):
        unit = UNITS[m.group(2)]
        end = floor_period(today, unit)
        start = end
        for _ in range(_num(m.group(1))):
            start = _back(start, unit)
        add(m, Period(start, end, "span", m.group(0)))
    for m in each(r"\b(?:the )?(?:last|past|previous|this|current) hour\b"):
        end = as_of.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        add(m, Period(end - timedelta(hours=1), end, "span", m.group(0), so_far=True))
    # "two weeks ago": that whole week; "a week ago" as "one week ago" ("a year ago" is read above,
    # as the same period a year earlier)
    for m in each(rf"\b(a|an|{_NUM}) (days?|weeks?|months?|years?) ago\b"):
        n, unit = 1 if m.group(1) in ("a", "an") else _num(m.group(1)), UNITS[m.group(2)]
        start = floor_period(today, unit)
        for _ in range(n):
            start = _back(start, unit)
        add(m, Period(start, next_period(start, unit), unit, m.group(0)))
    for m in each(r"\byesterday\b"):
        add(m, Period(today - timedelta(days=1), today, "day", m.group(0)))
    for m in each(r"\btoday\b|\bso far today\b"):
        add(m, Period(today, tomorrow, "day", m.group(0), so_far=True))
    for m in each(r"\b(?:(last|previous|past|prior|this|current|the current)) (week|month|quarter|year)\b"):
        which, unit = m.group(1), m.group(2)
        cur = floor_period(today, unit)
        if which in ("this", "current", "the current"):
            add(m, Period(cur, tomorrow, unit, m.group(0), so_far=True))
        elif which == "past":  # "the past year": the twelve months up to the as-of, not last year
            months = {"week": 0, "month": 1, "quarter": 3, "year": 12}[unit]
            if unit == "week":
                start = tomorrow - timedelta(weeks=1)
            else:
                start = (pd.Timestamp(tomorrow) - pd.DateOffset(months=months)).to_pydatetime()
            add(m, Period(start, tomorrow, "span", m.group(0), so_far=True))
        else:
            add(m, Period(_back(cur, unit), cur, unit, m.group(0)))
    for m in each(rf"\b{WEEKDAY_PHRASE.pattern}\b"):
        if m.group(2) in ("sat", "sun", "wed", "mar", "may") and m.group(1) is None:
            continue  # too often a plain word
        d = _latest_weekday(WEEKDAYS[m.group(2)], today)
        if m.group(1) in ("last", "previous", "past") and d == today:
            d -= timedelta(weeks=1)
        add(m, Period(d, d + timedelta(days=1), "day", m.group(0)))
    qh_pass(rel_year=False)
    # --- days -------------------------------------------------------------------------------------
    for m in each(rf"\b{day_pat}\b"):
        d = _absolute_day(m.group(0), today, problems)
        add(m, d and Period(d, d + timedelta(days=1), "day", m.group(0)))
    # --- months and years -----------------------------------------------------------------------
    for m in each(
        rf"\b(?:(?:the )?month of )?({_MON})(?:,? (?:of )?({_YEAR}))?\b|\b({_YEAR})-(0[1-9]|1[0-2])\b"
    ):
        if m.group(3):
            start = datetime(int(m.group(3)), int(m.group(4)), 1)
        else:
            word = m.group(1)
            if word == "may" and not m.group(2) and not re.search(r"\b(in|of|during|for) may\b", m.string):
                continue  # "may" the verb
            if word in ("mar", "jun", "sep", "dec", "jan") and not m.group(2):
                pass
            month = MONTHS[word]
            start = datetime(int(m.group(2)), month, 1) if m.group(2) else _latest_month(month, today)
        add(m, Period(start, add_months(start, 1), "month", m.group(0)))
    for m in each(rf"\b(?:fy ?)?({_YEAR})\b"):
        y = int(m.group(1))
        add(m, Period(datetime(y, 1, 1), datetime(y + 1, 1, 1), "year", m.group(0)))
    for span, a, b in clocks:
        _apply_clock(found, problems, span, a, b, today, text)
    found.sort(key=lambda f: f.span[0])
    return found, problems


# A time of day said with am/pm, as hh:mm, or by name; a bare number is a day ("between 3 and 10 May")
_CLOCK = r"(?:\d{1,2}(?::\d\d)? ?(?:am|pm)|\d{1,2}:\d\d|noon|midday|midnight)"
PARTS_OF_DAY = {
    "night": (18 * 60, 24 * 60),
    "morning": (0, 12 * 60),
    "afternoon": (12 * 60, 18 * 60),
    "evening": (18 * 60, 24 * 60),
    "tonight": (18 * 60, 24 * 60),
}


def _minutes(said: str, end: bool = False) -> int | None:
    """Minutes after midnight of '9am', '5:30 pm', '17:00', 'noon'; midnight ends a day when ``end``."""
    if said in ("noon", "midday"):
        return 12 * 60
    if said == "midnight":
        return 24 * 60 if end else 0
    m = re.fullmatch(r"(\d{1,2})(?::(\d\d))? ?(am|pm)?", said)
    if m is None:
        return None
    h, mins, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if half:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if half == "pm" else 0)
    if h > 23 or mins > 59:
        return None
    return h * 60 + mins


def _apply_clock(
    found: list[Found], problems: list[str], span: tuple[int, int], a: int, b: int, today: datetime, text: str
) -> None:
    """Narrow the day said next to a time of day ("yesterday between 9am and 5pm", "this morning")
    to those hours; with no day said, today's. A longer period with a time of day is asked back."""
    said = text[span[0] : span[1]].strip()
    needs_day, b = b < 0, abs(b)
    if a % 60 or b % 60:
        problems.append(f"'{said}': the data is kept by the hour; say whole hours (e.g. 'from 10am to 3pm')")
        return

    def beside(f: Found) -> bool:
        gap = text[f.span[1] : span[0]] if f.span[1] <= span[0] else text[span[1] : f.span[0]]
        return re.fullmatch(r"[\s,]*(?:on|of)?[\s,]*", gap) is not None

    days = [i for i, f in enumerate(found) if not f.period.relative and f.period.unit != "hour"]
    near = [i for i in days if beside(found[i])] or (days if len(days) == 1 else [])
    if (days and not near) or (needs_day and not days):
        problems.append(f"'{said}' goes with which day? Say e.g. 'yesterday {said}'")
        return
    if near:
        i = near[0]
        day = found[i].period
        if day.unit != "day":
            problems.append(
                f"'{said}' is a time of day, and {day.describe()} is more than a day: ask about one day"
            )
            return
        start = day.start
        found[i] = Found(
            Period(start + timedelta(minutes=a), start + timedelta(minutes=b), "hour", f"{day.text} {said}"),
            found[i].span,
            span,
        )
        return
    found.append(
        Found(
            Period(today + timedelta(minutes=a), today + timedelta(minutes=b), "hour", said, so_far=True),
            span,
        )
    )


def _latest_weekday(weekday: int, today: datetime) -> datetime:
    """The most recent day with that weekday (0 = Monday), today included."""
    return today - timedelta(days=(today.weekday() - weekday) % 7)


def _back(start: datetime, unit: str) -> datetime:
    if unit == "day":
        return start - timedelta(days=1)
    if unit == "week":
        return start - timedelta(weeks=1)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    return add_months(start, -months)


def _day_of_week(weekday: int, which: str, today: datetime) -> datetime | None:
    """That weekday of this week or the last (None: this week's has not come yet)."""
    monday = floor_period(today, "week")
    if which != "this":
        monday -= timedelta(weeks=1)
    d = monday + timedelta(days=weekday)
    return d if d <= today else None


def _absolute_day(text: str, today: datetime, problems: list[str]) -> datetime | None:
    if text in ("today", "yesterday"):  # the end of "from 1 November to yesterday"
        return today - timedelta(days=1 if text == "yesterday" else 0)
    m = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{2,4})", text)
    if m:
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        y = y + 2000 if y < 100 else y
        if "." in text:  # "04.12.2026": dots are day first wherever they are written (de, fr, ru...)
            day, month = (a, b) if b <= 12 else (b, a)
        elif a <= 12 and b <= 12 and a != b:
            problems.append(
                f"'{text}' could be {datetime(y, b, a):%-d %B %Y} or {datetime(y, a, b):%-d %B %Y}; "
                f"write the month as a word (e.g. {datetime(y, b, a):%-d %B %Y})"
            )
            return None
        else:
            day, month = (a, b) if a > 12 else (b, a)
        try:
            return datetime(y, month, day)
        except ValueError:
            problems.append(f"'{text}' is not a date")
            return None
    d = parse_day(text, today)
    if d is None:
        problems.append(f"'{text}' is not a date")
    return d


def shifted(p: Period, how: str) -> Period:
    """The period compared with ``p``: the one before it of the same length ("before"), the same
    period a year earlier ("year") or a week earlier ("week")."""
    if how == "week":
        return Period(
            p.start - timedelta(days=7), p.end - timedelta(days=7), p.unit, f"{p.text} a week earlier"
        )
    named = re.match(rf"(?:\d{{4}}(?:'s)? )?({_HOLIDAY})\b", p.text)
    if how == "year" and named and p.unit == "day":
        # "black friday vs last year": last year's Black Friday, not the same date
        d = holiday(named.group(1), p.start.year - 1)
        return Period(d, d + timedelta(days=1), "day", f"{named.group(1)} {d.year}")
    if how == "year" and p.unit == "week":
        # the same week last year is the one 52 weeks back: Monday to Monday, as weeks are here
        back = timedelta(weeks=52)
        return Period(p.start - back, p.end - back, p.unit, f"{p.text} a year earlier", p.so_far)
    if how == "year":
        s = (pd.Timestamp(p.start) - pd.DateOffset(years=1)).to_pydatetime()
        e = (pd.Timestamp(p.end) - pd.DateOffset(years=1)).to_pydatetime()
        return Period(s, e, p.unit, f"{p.text} a year earlier", p.so_far)
    if p.unit in ("month", "quarter", "year") and not p.so_far:
        s = _back(p.start, p.unit)
        return Period(s, p.start, p.unit, f"the {p.unit} before")
    if p.unit in ("month", "quarter", "year", "week") and p.so_far:
        # the same stretch of the previous month/quarter/year: 1-9 Nov -> 1-9 Oct
        s = _back(p.start, p.unit)
        e = min(s + (p.end - p.start), p.start) if p.unit == "week" else _same_offset(p, s)
        return Period(s, e, "span", f"the same days of the {p.unit} before")
    if (
        not p.so_far
        and p.start.day == p.end.day == 1
        and p.start.time() == p.end.time() == datetime.min.time()
    ):
        # whole months ("the last 3 full months"): the same number of whole months before
        months = (p.end.year - p.start.year) * 12 + p.end.month - p.start.month
        return Period(add_months(p.start, -months), p.start, p.unit, "the period before")
    return Period(p.start - (p.end - p.start), p.start, p.unit, "the period before")


def _same_offset(p: Period, s: datetime) -> datetime:
    months = {"month": 1, "quarter": 3, "year": 12}[p.unit]
    e = (pd.Timestamp(p.end) - pd.DateOffset(months=months)).to_pydatetime()
    return min(e, p.start)
