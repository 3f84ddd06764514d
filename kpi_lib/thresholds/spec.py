"""What an alert rule says: a KPI, an optional filter, a grain, a condition, and when it stays quiet.

A rule is a plain dict (stored as JSON in ``ops.alert_rules``), checked here into a :class:`Rule`::

    {"name": "Europe revenue over 10k", "kpi": "revenue", "where": {"region": "Europe"},
     "grain": "day", "condition": "above", "threshold": 10000, "min_volume": 20,
     "severity": "high", "quiet_hours": ["22:00", "07:00"],
     "maintenance": [["2026-03-01 00:00", "2026-03-01 06:00"]], "snoozed_until": None}

Conditions: ``above``/``below`` a value; ``rises``/``falls``/``changes`` by more than ``threshold``
percent against ``compare`` (``previous`` period, the same period last ``week`` or last ``year``);
``anomaly``: no threshold, it sets the anomaly detection's ``sensitivity`` for the KPI instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, time
from typing import Any

import pandas as pd

from ..anomaly.rules import SENSITIVITY
from ..errors import AlertError

GRAINS = ("hour", "day", "week")
CONDITIONS = {
    "above": "is above",
    "below": "is below",
    "rises": "rises by more than",
    "falls": "falls by more than",
    "changes": "changes by more than",
    "anomaly": "is anomalous (sensitivity)",
}
COMPARES = {
    "previous": "the previous period",
    "week": "the same period last week",
    "year": "the same period last year",
}
SENSITIVITIES = tuple(SENSITIVITY)
SEVERITIES = ("low", "medium", "high")
#: sensitivity -> multiplier of the anomaly rules' false-alarm budget (kpi_lib.anomaly.rules.Budget:
#: alarms per period); low alarms four times rarer than the KPI's own rules, high four times as often
BUDGET_SCALE = SENSITIVITY
DIMENSIONS = ("region", "channel", "category")


class RuleError(AlertError):
    """An alert rule that cannot be saved or run as written (the message says which field and why)."""


@dataclass(frozen=True)
class Rule:
    """One alert rule, validated. Times are naive, in the business time zone (``KPI_TIMEZONE``)."""

    name: str
    kpi: str
    grain: str = "day"
    condition: str = "above"
    threshold: float | None = None
    compare: str = "previous"
    where: dict[str, str] = field(default_factory=dict)
    min_volume: float = 0.0
    sensitivity: str = "medium"
    severity: str = "medium"
    quiet_hours: tuple[str, str] | None = None  # ("22:00", "07:00"): mail waits until 07:00
    maintenance: tuple[tuple[datetime, datetime], ...] = ()  # nothing fires inside these
    snoozed_until: datetime | None = None  # the rule stays quiet until then
    enabled: bool = True

    @property
    def is_threshold(self) -> bool:
        return self.condition != "anomaly"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["quiet_hours"] = list(self.quiet_hours) if self.quiet_hours else None
        d["maintenance"] = [[f"{a:%Y-%m-%d %H:%M}", f"{b:%Y-%m-%d %H:%M}"] for a, b in self.maintenance]
        d["snoozed_until"] = f"{self.snoozed_until:%Y-%m-%d %H:%M}" if self.snoozed_until else None
        return d

    def describe(self, label: str | None = None) -> str:
        """'Revenue in Europe per day is above 10,000' (plain English, for lists and e-mails)."""
        what = label or self.kpi
        if self.where:
            what += " (" + ", ".join(f"{k} = {v}" for k, v in self.where.items()) + ")"
        what += f" per {self.grain}"
        if self.condition == "anomaly":
            return f"{what}: anomaly detection at {self.sensitivity} sensitivity"
        text = f"{what} {CONDITIONS[self.condition]} {self.threshold:,.6g}"
        if self.condition in ("rises", "falls", "changes"):
            text += f"% against {COMPARES[self.compare]}"
        if self.min_volume:
            text += f", when at least {self.min_volume:,.6g} orders"
        return text

    def quiet_at(self, when: datetime) -> datetime | None:
        """The end of the quiet hours ``when`` falls in (mail waits until then), else None."""
        if not self.quiet_hours:
            return None
        start, end = (time.fromisoformat(t) for t in self.quiet_hours)
        t = when.time()
        inside = (start <= t < end) if start < end else (t >= start or t < end)
        if not inside:
            return None
        until = datetime.combine(when.date(), end)
        return until if until > when else until + pd.Timedelta(days=1)

    def in_maintenance(self, when: datetime) -> bool:
        return any(a <= when < b for a, b in self.maintenance)

    def snoozed_at(self, when: datetime) -> bool:
        return self.snoozed_until is not None and when < self.snoozed_until


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise RuleError(f"{what}: {value!r} is not a date and time; write e.g. 2026-03-01 07:00.") from exc
    if ts is pd.NaT:
        raise RuleError(f"{what}: give a date and time, e.g. 2026-03-01 07:00.")
    return ts.tz_localize(None).to_pydatetime() if ts.tzinfo else ts.to_pydatetime()


def _clock(value: Any, what: str) -> str:
    try:
        return time.fromisoformat(str(value).strip()).strftime("%H:%M")
    except ValueError as exc:
        raise RuleError(f"{what}: {value!r} is not a time of day; write e.g. 22:00.") from exc


def _number(value: Any, what: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise RuleError(f"{what}: {value!r} is not a number.") from exc
    if not math.isfinite(x):
        raise RuleError(f"{what}: give a finite number.")
    return x


def _choice(value: Any, allowed, what: str) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise RuleError(f"{what}: {value!r} is not one of {', '.join(allowed)}.")
    return v


def parse(spec: Mapping[str, Any], kpis: Mapping[str, Any] | None = None) -> Rule:
    """A rule from its dict; :class:`RuleError` names the first field that is wrong and the fix.

    ``kpis`` (name -> :class:`kpi_lib.kpis.Kpi`) checks the KPI and its filter dimensions."""
    if not isinstance(spec, Mapping):
        raise RuleError("A rule is a mapping of fields (name, kpi, grain, condition, ...).")
    known = set(Rule.__dataclass_fields__)
    unknown = set(spec) - known
    if unknown:
        raise RuleError(
            f"Unknown field(s) {', '.join(sorted(unknown))}; a rule has {', '.join(sorted(known))}."
        )
    name = str(spec.get("name") or "").strip()
    if not name or len(name) > 80:
        raise RuleError("name: give the rule a name (at most 80 characters); e-mails say which rule fired.")
    kpi = str(spec.get("kpi") or "").strip()
    if not kpi:
        raise RuleError("kpi: choose the KPI this rule watches.")
    if kpis is not None and kpi not in kpis:
        raise RuleError(f"kpi: {kpi!r} is not a KPI in catalog.yml ({', '.join(kpis)}).")
    grain = _choice(spec.get("grain") or "day", GRAINS, "grain")
    condition = _choice(spec.get("condition") or "above", CONDITIONS, "condition")
    where: dict[str, str] = {}
    for dim, value in dict(spec.get("where") or {}).items():
        if value in (None, "", "*"):
            continue
        if dim not in DIMENSIONS:
            raise RuleError(f"where: filter by {', '.join(DIMENSIONS)}, not {dim!r}.")
        if kpis is not None and dim not in kpis[kpi].dimensions:
            raise RuleError(f"where: {kpi} cannot be filtered by {dim}.")
        where[str(dim)] = str(value)
    threshold = _number(spec.get("threshold"), "threshold")
    if condition != "anomaly" and threshold is None:
        raise RuleError(
            f"threshold: a rule that fires when the KPI {CONDITIONS[condition]} ... needs a number."
        )
    if condition in ("rises", "falls", "changes") and threshold is not None and threshold <= 0:
        raise RuleError("threshold: a change is in percent and must be more than 0 (e.g. 30 for 30%).")
    min_volume = _number(spec.get("min_volume"), "min_volume") or 0.0
    if min_volume < 0:
        raise RuleError("min_volume: a number of orders, 0 or more.")
    quiet = spec.get("quiet_hours")
    if quiet:
        if not isinstance(quiet, list | tuple) or len(quiet) != 2:
            raise RuleError("quiet_hours: two times of day, from and until, e.g. 22:00 and 07:00.")
        quiet = (_clock(quiet[0], "quiet_hours from"), _clock(quiet[1], "quiet_hours until"))
        if quiet[0] == quiet[1]:
            raise RuleError("quiet_hours: from and until must differ.")
    windows = []
    for i, w in enumerate(spec.get("maintenance") or []):
        if not isinstance(w, list | tuple) or len(w) != 2:
            raise RuleError(f"maintenance window {i + 1}: a start and an end.")
        a, b = (
            _time(w[0], f"maintenance window {i + 1} start"),
            _time(w[1], f"maintenance window {i + 1} end"),
        )
        if a is None or b is None or b <= a:
            raise RuleError(f"maintenance window {i + 1}: the end must come after the start.")
        windows.append((a, b))
    return Rule(
        name=name,
        kpi=kpi,
        grain=grain,
        condition=condition,
        threshold=threshold,
        compare=_choice(spec.get("compare") or "previous", COMPARES, "compare"),
        where=where,
        min_volume=min_volume,
        sensitivity=_choice(spec.get("sensitivity") or "medium", SENSITIVITIES, "sensitivity"),
        severity=_choice(spec.get("severity") or "medium", SEVERITIES, "severity"),
        quiet_hours=quiet or None,
        maintenance=tuple(windows),
        snoozed_until=_time(spec.get("snoozed_until"), "snoozed_until"),
        enabled=bool(spec.get("enabled", True)),
    )
