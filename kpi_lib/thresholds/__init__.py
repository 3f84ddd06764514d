"""Alert rules that business users write without code (the "Alert rules" page, `kpi rules`).

    >>> from kpi_lib import thresholds
    >>> rule = thresholds.parse({"name": "Big day in Europe", "kpi": "revenue", "where": {"region": "Europe"},
    ...                          "grain": "day", "condition": "above", "threshold": 50000})
    >>> thresholds.backtest(rule, as_of="2026-03-01").sentence()     # doctest: +SKIP
    'This rule would have fired 4 times in the last 90 days.'
    >>> thresholds.save(rule.to_dict(), user)                        # doctest: +SKIP  (versioned, audited)
    >>> thresholds.run(now="2026-03-01 10:00")                       # doctest: +SKIP  (firings -> incidents)

- :mod:`.spec`: what a rule says, validated (:class:`Rule`, :func:`parse`);
- :mod:`.evaluate`: the pure evaluation of a rule on a KPI series at an as-of;
- :mod:`.store`: ``ops.alert_rules``, its versions and the audit trail;
- :mod:`.live`: the live pass (firings -> incidents in ``ops.anomalies``) and the backtest preview.
"""

from __future__ import annotations

from .evaluate import Firing, evaluate, replay
from .live import PREVIEW_DAYS, Preview, RunResult, backtest, is_rule_incident, rule_url, run, series_key
from .spec import BUDGET_SCALE, COMPARES, CONDITIONS, GRAINS, SENSITIVITIES, Rule, RuleError, parse
from .store import (
    active,
    budget_scales,
    delete,
    get,
    incidents_of,
    listing,
    released,
    save,
    sensitivities,
    snooze,
    snooze_incident,
    versions,
)

__all__ = [
    "BUDGET_SCALE",
    "COMPARES",
    "CONDITIONS",
    "GRAINS",
    "PREVIEW_DAYS",
    "SENSITIVITIES",
    "Firing",
    "Preview",
    "Rule",
    "RuleError",
    "RunResult",
    "active",
    "backtest",
    "budget_scales",
    "delete",
    "evaluate",
    "get",
    "incidents_of",
    "is_rule_incident",
    "listing",
    "parse",
    "released",
    "replay",
    "rule_url",
    "run",
    "save",
    "sensitivities",
    "series_key",
    "snooze",
    "snooze_incident",
    "versions",
]
