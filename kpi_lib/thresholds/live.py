"""Rules at work: the live pass that turns firings into incidents, and the backtest preview.

Both read the KPI through :func:`kpi_lib.kpis.query` (so the reader's row scope applies) and call
the same pure :func:`kpi_lib.thresholds.evaluate.evaluate`. Firings become incidents in
``ops.anomalies`` (``rule`` = the rule's name, ``series_key`` = ``rule:<name>|...``) through the
anomaly scan's own store, so routing, role filtering, de-duplication, re-arm and the outbox of
:mod:`kpi_lib.alerts` treat them exactly like anomaly incidents.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .. import kpis as semantic
from .. import warehouse
from ..config import settings
from . import store as rules_store
from .evaluate import Firing, evaluate, lookback, period_length
from .spec import DIMENSIONS, Rule

log = logging.getLogger(__name__)

#: history the backtest reads before its window (for its comparison periods and first firing)
HISTORY = {"hour": timedelta(days=21), "day": timedelta(days=120), "week": timedelta(weeks=104)}
#: a live pass stores firings that began this recently (older ones were stored by earlier passes)
LOOKBACK = {"hour": timedelta(hours=6), "day": timedelta(days=3), "week": timedelta(weeks=2)}
PREVIEW_DAYS = 90


@dataclass
class RunResult:
    """What one live pass of the rules did."""

    rules: int = 0
    firings: int = 0
    new_ids: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # new incidents held by their rule's quiet hours
    snoozed: list[str] = field(default_factory=list)  # rules that stayed quiet (snoozed)
    starts: list[datetime] = field(default_factory=list)  # when the firings stored began
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def read(rule: Rule, start: datetime, end: datetime) -> tuple[pd.Series, pd.Series | None, bool]:
    """(the KPI's values per period, orders per period when the rule has a minimum volume, additive)."""
    k = semantic.get(rule.kpi)
    back = lookback(rule)
    q_start = semantic.floor_period((pd.Timestamp(start) - back).to_pydatetime(), rule.grain)
    df = semantic.query(rule.kpi, rule.grain, start=q_start, end=end, where=rule.where or None).df
    series = df.set_index("period")["value"].astype(float) if len(df) else pd.Series(dtype=float)
    volume = None
    if rule.min_volume > 0:
        vdf = semantic.query("orders", rule.grain, start=q_start, end=end, where=rule.where or None).df
        volume = vdf.set_index("period")["value"].astype(float) if len(vdf) else pd.Series(dtype=float)
    series.index = pd.DatetimeIndex(series.index)
    return series, volume, k.additive


def series_key(rule: Rule) -> str:
    flt = ",".join(f"{k}={v}" for k, v in sorted(rule.where.items()))
    return f"rule:{rule.name}|{rule.kpi}|{rule.grain}" + (f"|{flt}" if flt else "")


def _slice(rule: Rule) -> tuple[str | None, str | None]:
    """The filter dimension an incident is filed under (routing `where:` and readers' rows use it)."""
    for dim in DIMENSIONS:
        if dim in rule.where:
            return dim, rule.where[dim]
    return None, None


def explain(rule: Rule, f: Firing) -> str:
    k = semantic.get(rule.kpi)
    fmt = k.format_compact
    what = k.label + (" (" + ", ".join(f"{d} {v}" for d, v in rule.where.items()) + ")" if rule.where else "")
    when = semantic.period_label(f.peak, rule.grain)
    if rule.condition in ("above", "below"):
        return (
            f'Rule "{rule.name}" fired: {what} was {fmt(f.value)} in {when}, '
            f"{rule.condition} the threshold of {fmt(f.reference)}."
        )
    pct = f"{f.change_pct:+.0f}%" if f.change_pct is not None else "a change"
    from .spec import COMPARES

    return (
        f'Rule "{rule.name}" fired: {what} was {fmt(f.value)} in {when}, {pct} against '
        f"{COMPARES[rule.compare]} ({fmt(f.reference)}); the rule allows {rule.threshold:g}%."
    )


def _ts(value: Any, tz: str) -> datetime | None:
    """A naive business time as an aware one (what ops.anomalies stores)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return (
        ts.tz_localize(tz, ambiguous=True, nonexistent="shift_forward") if ts.tzinfo is None else ts
    ).to_pydatetime()


def incident_row(rule: Rule, f: Firing) -> dict[str, Any]:
    """A firing as an ops.anomalies row (the columns of :func:`kpi_lib.anomaly.scan.store`)."""
    tz = settings().timezone
    dim, value = _slice(rule)
    above = f.value >= f.bound if math.isfinite(f.bound) else True
    finite = f.bound if math.isfinite(f.bound) else None
    return {
        "series_key": series_key(rule),
        "kpi": rule.kpi,
        "grain": rule.grain,
        "dimension": dim,
        "dim_value": value,
        "started_at": _ts(f.start, tz),
        "peak_at": _ts(f.peak, tz),
        "ended_at": _ts(f.end + period_length(rule.grain), tz) if f.end is not None else None,
        "value": f.value,
        "expected": f.reference if math.isfinite(f.reference) else None,
        "lower_bound": None if above else finite,
        "upper_bound": finite if above else None,
        "deviation_pct": f.change_pct,
        "score": None,
        "severity": rule.severity,
        "rule": rule.name,
        "explanation": explain(rule, f),
        "drivers": None,
    }


def run(now: datetime | None = None, names: Sequence[str] | None = None) -> RunResult:
    """One pass over the active threshold rules at ``now`` (default: :func:`kpi_lib.kpis.as_of`).

    Firings that began within the grain's LOOKBACK become (or update) incidents, and a rule's
    incident still open from before then is brought up to date (its end). A snoozed rule
    stays quiet; a firing inside the rule's quiet hours is stored but held (``snoozed_until`` the
    end of the quiet hours), so its e-mail leaves when they end."""
    t0 = time.perf_counter()
    now = pd.Timestamp(now or semantic.as_of().at).tz_localize(None).to_pydatetime()
    res = RunResult()
    rows: list[dict] = []
    ends: list[dict] = []  # incidents still open from before the lookback, with what they are now
    holds: dict[str, datetime] = {}
    active = [r for r in rules_store.active() if r.is_threshold and not (names and r.name not in names)]
    opened = _open_incidents([series_key(r) for r in active])  # one query per pass, not per rule
    for rule in active:
        res.rules += 1
        if rule.snoozed_at(now):
            res.snoozed.append(rule.name)
            continue
        since = pd.Timestamp(semantic.floor_period(now - LOOKBACK[rule.grain], rule.grain))
        # a firing that begins at or after `since` depends on the periods from the one before it
        # on (and their comparison periods): that is all a pass reads, so it stays cheap. An
        # incident of this rule still open from before then is read from its start, so the pass
        # that sees it end stores its end (the store's upsert is keyed on the start)
        began = opened.get(series_key(rule))
        still_open = began if began is not None and began < since else None
        first = (min(since, still_open or since) - period_length(rule.grain)).to_pydatetime()
        try:
            series, volume, additive = read(rule, first, semantic.next_period(now, rule.grain))
        except Exception as exc:  # one broken rule must not stop the others
            log.warning("alert rule %r could not read its KPI: %s", rule.name, exc)
            res.errors.append(f"{rule.name}: {exc}")
            continue
        for f in evaluate(rule, series, now, volume, additive):
            if f.start >= since:
                rows.append(incident_row(rule, f))
                quiet = rule.quiet_at(now)
                if quiet is not None:
                    holds[rows[-1]["series_key"] + str(rows[-1]["started_at"])] = quiet
            elif f.start == still_open:  # an older incident, read again for its end: not news
                ends.append(incident_row(rule, f))
    res.firings = len(rows)
    if rows or ends:
        from ..anomaly.scan import store  # the anomaly incidents' own upsert (imports the engine)

        res.new_ids, _ = store(rows + ends)
        res.starts = [r["started_at"] for r in rows]
        _hold(rows, res, holds)
    res.seconds = time.perf_counter() - t0
    return res


def _open_incidents(keys: list[str]) -> dict[str, pd.Timestamp]:
    """For each of these rule series keys with an incident still open (no end), when the oldest
    such incident began, as a naive business time (like the KPI's periods)."""
    if not keys:
        return {}
    tz = settings().timezone
    with warehouse.connect_raw() as conn:
        rows = conn.execute(
            "select series_key, min(started_at) from ops.anomalies"
            " where series_key = any(%s) and ended_at is null group by 1",
            [keys],
        ).fetchall()
    return {k: pd.Timestamp(t).tz_convert(tz).tz_localize(None) for k, t in rows}


def _hold(rows: list[dict], res: RunResult, holds: dict[str, datetime]) -> None:
    """New incidents fired in quiet hours wait (ops.anomalies.snoozed_until) until they end."""
    if not holds:
        return
    tz = settings().timezone
    with warehouse.connect_raw() as conn:
        for r in rows:
            until = holds.get(r["series_key"] + str(r["started_at"]))
            if until is None:
                continue
            held = conn.execute(
                "update ops.anomalies set snoozed_until = %s where series_key = %s and started_at = %s"
                " and id = any(%s) returning id",
                [_ts(until, tz), r["series_key"], r["started_at"], res.new_ids],
            ).fetchone()
            if held:
                res.held.append(held[0])
        conn.commit()


@dataclass
class Preview:
    """What a rule would have done over the last days before ``as_of``."""

    rule: Rule
    as_of: datetime
    since: datetime
    series: pd.Series  # the KPI over the window, for the chart
    firings: list[Firing]
    days: int = PREVIEW_DAYS  # as asked (``since`` is floored to the grain's period)

    @property
    def count(self) -> int:
        return len(self.firings)

    def sentence(self) -> str:
        days = self.days
        n = self.count
        if n == 0:
            return f"This rule would not have fired in the last {days} days."
        return f"This rule would have fired {n} time{'s' if n != 1 else ''} in the last {days} days."


def backtest(rule: Rule, as_of: datetime | None = None, days: int = PREVIEW_DAYS) -> Preview:
    """Replay the rule on the last ``days`` days before ``as_of`` (firings that began in them).

    Snooze and quiet hours are left out: they say when people hear, not whether the rule fires."""
    at = pd.Timestamp(as_of or semantic.as_of().at).tz_localize(None).to_pydatetime()
    since = semantic.floor_period(at - timedelta(days=days), rule.grain)
    end = semantic.next_period(at, rule.grain)
    pad = HISTORY[rule.grain]
    series, volume, additive = read(rule, since - pad, end)
    firings = [f for f in evaluate(rule, series, at, volume, additive) if f.start >= pd.Timestamp(since)]
    shown = series[(series.index >= pd.Timestamp(since)) & (series.index < pd.Timestamp(at))]
    return Preview(rule, at, since, shown, firings, days)


def rule_url(name: str) -> str:
    """The rule on the "Alert rules" page (what an e-mail links to)."""
    from urllib.parse import quote

    return f"{settings().public_url}/panel/alert_rules?rule={quote(name)}"


def is_rule_incident(incident: Any) -> bool:
    return str(incident.get("series_key") or "").startswith("rule:")
