"""Plain-English sentences about incidents, and compact number formatting for them."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

Formatter = Callable[[float], str]

#: what each built-in step looks for, in words (custom steps are named as they are)
STEP_WORDS = {
    "spike": "a single point far off",
    "shift": "a sustained move",
    "drift": "a longer sustained move",
    "volatility": "unusually jumpy values",
    "level_shift": "a step to a new level",
    "outage": "a run of counts too low to be chance",
    "gaussian": "values far outside their recent range",
    "discord": "a pattern not seen before",
    "novelty_12": "values unlike any stretch before",
    "novelty_48": "values unlike any stretch before",
    "novelty_288": "a day unlike any before",
    "drop": "a drop",
    "drop_4h": "a four-period drop",
    "surge": "a surge",
    "slump_24h": "a day-long shortfall",
    "shift_24h": "a day-long shift",
    "shift_3d": "a three-day shift",
    "trend": "a sustained decline",
    "silence": "nothing at all for longer than ever before",
}


def compact(v: float) -> str:
    """12400 -> '12.4k', 0.1234 -> '0.123', 2.5e6 -> '2.5M': three significant digits at most."""
    if v is None or not math.isfinite(v):
        return "n/a"
    a = abs(v)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{_sig(v / div)}{suffix}"
    return _sig(v)


def _sig(v: float) -> str:
    if v == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
    text = f"{v:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def when(t) -> str:
    """Timestamps as 'YYYY-MM-DD HH:MM' (date only at midnight); row numbers as 'row N'."""
    if isinstance(t, pd.Timestamp):
        if t.hour == t.minute == t.second == 0:
            return t.strftime("%Y-%m-%d")
        return t.strftime("%Y-%m-%d %H:%M")
    return f"row {t}"


def sentence(
    *,
    label: str | None,
    value: float,
    expected: float,
    lower: float,
    upper: float,
    start,
    end,
    ongoing: bool,
    fmt: Formatter | None = None,
    points: bool = False,
) -> str:
    """E.g. 'Revenue in EMEA was 38% below the expected 12.4k (10.9k–13.8k) from 2014-04-10 13:00;
    still ongoing.' `value`/`expected`/band are taken at the incident's peak. ``points``: the series
    is a percentage, so its move is told in points ('was 19.6%, 4.2 points below the expected 23.8%')."""
    fmt = fmt or compact
    subject = label or "Value"
    if math.isfinite(lower) and math.isfinite(upper):
        band = f" ({fmt(lower)}–{fmt(upper)})"
    else:
        band = ""
    said = f"{fmt(value)}, " if points else ""  # '4.2 points below 23.8%' leaves the sum to the reader
    text = f"{subject} {verb(subject)} {said}{_off_by(value, expected, fmt, points)} the expected {fmt(expected)}{band}"
    return f"{text} {_span(start, end, ongoing)}" + ("; still ongoing." if ongoing else ".")


def verb(subject: str) -> str:
    """'Orders in Iceland were', 'Revenue via Web was': the KPI's own label decides."""
    head = subject.split(" in ")[0].split(" via ")[0]
    return "were" if head.endswith("s") else "was"


def _span(start, end, ongoing: bool) -> str:
    """'from 13:00' (still going), 'at 13:00' (one row) or 'from 13:00 to 15:00'."""
    if ongoing:
        return f"from {when(start)}"
    if end is None or end == start:
        return f"at {when(start)}"
    return f"from {when(start)} to {when(end)}"


def duration(t0, t1) -> str:
    """The time from ``t0`` to ``t1`` in words ('4 hours', '22 days'); rows when there are no
    timestamps ('48 rows')."""
    if not isinstance(t0, pd.Timestamp):
        return f"{int(t1) - int(t0):,} rows"
    s = (t1 - t0).total_seconds()
    unit, size = next(
        (u, z)
        for u, z in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
        if s >= 2 * z or z == 1
    )
    n = round(s / size)
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def shape_sentence(
    *,
    label: str | None,
    since,
    start,
    history_from,
    low: float,
    high: float,
    expected: float,
    end,
    ongoing: bool,
    fmt: Formatter | None = None,
) -> str:
    """E.g. 'Machine temperature moved unlike anything in the previous 22 days: in the 4 hours to
    2014-02-09 12:00 it ran between 80.1 and 85.3 (about 84 expected); still ongoing.' For an
    alarm on a new pattern (the discord step), where no single value need be out of range."""
    fmt = fmt or compact
    subject = label or "Value"
    text = (
        f"{subject} moved unlike anything in the previous {duration(history_from, since)}: in the "
        f"{duration(since, start)} to {when(start)} it ran between {fmt(low)} and {fmt(high)}"
    )
    if math.isfinite(expected):
        text += f" (about {fmt(expected)} expected)"
    if ongoing:
        return f"{text}; still ongoing."
    if end is None or end == start:
        return f"{text}."
    return f"{text}, until {when(end)}."


def _off_by(value: float, expected: float, fmt: Formatter, points: bool = False) -> str:
    """'18% below', '263% above', or in the series' units where the expected value is 0; for a
    percentage, in points ('4.2 points below'): a margin of -39.5% against 23.8% is not '266% below'."""
    diff = value - expected
    direction = "above" if diff > 0 else "below"
    if points and math.isfinite(diff):
        size = _sig(abs(diff) * 100)
        return f"{size} point{'' if size == '1' else 's'} {direction}"
    if math.isfinite(expected) and abs(expected) > 1e-12:
        return f"{abs(diff) / abs(expected):.0%} {direction}"
    return f"{fmt(abs(diff))} {direction}"


def pattern_sentence(
    *,
    label: str | None,
    rule: str,
    value: float,
    expected: float,
    lower: float,
    upper: float,
    start,
    peak,
    end,
    ongoing: bool,
    fmt: Formatter | None = None,
    since=None,
    until=None,
    points: bool = False,
) -> str:
    """For an incident whose values stayed inside the usual range (a sustained move, a jumpy
    stretch: no single point is out of range, the pattern is), e.g. 'Revenue showed unusually jumpy
    values in the 24 hours to 2019-03-13 11:00 (522, 263% above the expected 144; usual range
    0–843).' With ``since`` (an incident of a rolling step: where the window to its alarm began), ``value``
    and ``expected`` are the window's averages: 'in the 12 hours to 15:00 (on average 54, 75% below
    the expected 216)'. ``points``: as for :func:`sentence`."""
    fmt = fmt or compact
    subject = label or "Value"
    what = STEP_WORDS.get(rule, f"an alarm from its {rule} rule" if rule else "an alarm")
    if since is not None:  # the window the step judged, and its averages (a row's range would not fit)
        until = start if until is None else until  # the window ends at the alarm
        span = f"in the {duration(since, until)} to {when(until)}"
        detail = (
            f"on average {fmt(value)}, {_off_by(value, expected, fmt, points)} the expected {fmt(expected)}"
        )
    else:
        span = _span(start, end, ongoing)
        at = "" if peak == start else f" at {when(peak)}"
        detail = f"{fmt(value)}{at}, {_off_by(value, expected, fmt, points)} the expected {fmt(expected)}"
        if math.isfinite(lower) and math.isfinite(upper):
            detail += f"; usual range {fmt(lower)}–{fmt(upper)}"
    text = f"{subject} showed {what} {span} ({detail})"
    return f"{text}; still ongoing." if ongoing else f"{text}."


def silence_sentence(
    *,
    label: str | None,
    run_from,
    at,
    run: str,
    record: str,
    history: str,
    start,
    end,
    ongoing: bool,
    fmt: Formatter | None = None,
) -> str:
    """A run of empty periods: 'Orders were 0 for 5 days in a row, 2019-05-12 to 2019-05-16: the
    longest such run in the 730 days before was 4 days.' ``history``: the span compared with, in
    words ('730 days', or 'data since 2018-03-01' when the series is younger)."""
    subject = label or "Value"
    text = (
        f"{subject} {verb(subject)} 0 for {run} in a row, {when(run_from)} to {when(at)}: the longest such run in the "
        f"{history} was {record}"
    )
    return f"{text}; still ongoing." if ongoing else f"{text}."


def trend_sentence(
    *,
    label: str | None,
    rule: str,
    before: float,
    after: float,
    recent_from,
    earlier_from,
    at,
    start,
    end,
    ongoing: bool,
    fmt: Formatter | None = None,
    points: bool = False,
) -> str:
    """A move between two windows' averages, told as such: 'Orders showed a sustained decline: 30 on
    average in the 14 days to 2019-01-11, 21% below the 38 of the 28 days before.'"""
    fmt = fmt or compact
    subject = label or "Value"
    what = STEP_WORDS.get(rule, f"an alarm from its {rule} rule" if rule else "an alarm")
    text = (
        f"{subject} showed {what}: {fmt(after)} on average in the {duration(recent_from, at)} to {when(at)}, "
        f"{_off_by(after, before, fmt, points)} the {fmt(before)} of the {duration(earlier_from, recent_from)} before"
    )
    return f"{text}; still ongoing." if ongoing else f"{text}."


def step_sentence(
    *, label: str | None, before: float, after: float, start, end, ongoing: bool, fmt: Formatter | None = None
) -> str:
    """E.g. 'Orders stepped down from about 120 to about 80 at 2024-02-09 12:00.' (the median level
    before the step and the recent median level at the alarm)."""
    fmt = fmt or compact
    subject = label or "Value"
    direction = "up" if after > before else "down"
    text = f"{subject} stepped {direction} from about {fmt(before)} to about {fmt(after)}"
    if ongoing:
        return f"{text} at {when(start)}; still ongoing."
    return f"{text} at {when(start)}."
