"""Series-level anomaly detection with ADTK rule sets: causal, incident-based, explained in English.

Public API::

    from kpi_lib.anomaly import attribute, detect, incidents, detect_file, plot_incidents, load_rules

    result = detect(revenue, rules="default", label="Revenue in EMEA")   # one row per input row
    result[result.is_anomaly == 1].explanation                           # onset rows only
    for inc in incidents(result):                                        # start, peak, end, ...
        print(inc.severity, inc.explanation)
    near_miss(result, since="2024-02-01").sentence                       # why not an alarm
    fig = plot_incidents(result, title="Revenue in EMEA")                # matplotlib Figure
    detect_file("in.csv", "out.csv", time_column="timestamp", value_column="value")

* ``detect(series, rules="default", label=None, fmt=None)`` returns a frame indexed like the input
  with ``value, expected, lower, upper, score, is_anomaly, severity, explanation, incident, rule,
  step``. ``score`` is 1.0 at the alarm bound (comparable across series and steps): with the
  default rules the bound is this series' own, calibrated on its past for a false-alarm budget
  (one a week, at most one per 2,016 rows; see :mod:`kpi_lib.anomaly.calibrate`); ``severity`` is
  ``low`` (< 2), ``medium`` (< 4) or ``high`` (>= 4) by the incident's peak score so far, ``''``
  outside incidents. ``is_anomaly`` is 1 only on the row whose alarm opened an incident: its first
  row, or for a window step ("2 of 3 hours") up to its window later, as the incident reaches back
  to where its run of rows outside the band began. Everything but the explanation text and those
  rows' ``incident`` id at row i depends on rows up to i only (online, causal).
* ``detect(..., thin=flags)``: rows with too little volume behind them to judge (a ratio over one
  order) are missing, unjudged, and count as on their expected value inside windows.
* ``near_miss(result, since, until, label)`` says how close a quiet window came to an alarm:
  ``.score`` (1.0 = the threshold), ``.at``, ``.step`` and a ``.sentence``.
* ``result.attrs["judged_from"]``: the first row any step could alarm on (the rows before it are
  the warm-up), None when the series was too short for any.
* ``rules`` is a built-in name (``default``, judged from about a daily or weekly series' 64th row; ``legacy`` =
  the default before issue 15 and
  ``classic`` = the naive ADTK trio, both for comparison;
  ``business_hourly`` / ``business_daily`` for sums and counts such as revenue and orders,
  ``business_hourly_ratio`` / ``business_daily_ratio`` for ratios such as AOV and return rate), a
  YAML/JSON file, or a plain dict, optionally ``{extends: <built-in>, ...}`` with some parts
  replaced (see :mod:`kpi_lib.anomaly.rules`).
* ``attribute(breakdown, (start, end), dimension="region")`` says which values of a dimension
  explain an incident: ``.text`` = "Europe accounts for 92% of the drop", ``.shares`` per value.
* :mod:`kpi_lib.anomaly.evaluate` builds the demo business's KPI series and scores detection
  against its labelled incidents (``event_scores``).
* ``python -m kpi_lib.anomaly IN.csv OUT.csv`` is the file contract used by benchmarks.

Importing this package applies the ADTK compatibility shim (:mod:`kpi_lib.anomaly.compat`).
How it works and what was measured: ``kpi_lib/anomaly/README.md``.
"""

from __future__ import annotations

from kpi_lib.anomaly import compat

compat.apply()

from kpi_lib.anomaly.attribution import Attribution, attribute  # noqa: E402
from kpi_lib.anomaly.detect import detect, incidents  # noqa: E402
from kpi_lib.anomaly.explain import compact  # noqa: E402
from kpi_lib.anomaly.files import detect_file  # noqa: E402
from kpi_lib.anomaly.incidents import Incident  # noqa: E402
from kpi_lib.anomaly.nearmiss import NearMiss, near_miss  # noqa: E402
from kpi_lib.anomaly.plot import plot_incidents  # noqa: E402
from kpi_lib.anomaly.rules import BUILTIN, BUSINESS_RULES, RuleSet, load_rules  # noqa: E402
from kpi_lib.anomaly.scan import ScanResult, scan  # noqa: E402

__all__ = [
    "Attribution",
    "BUILTIN",
    "BUSINESS_RULES",
    "Incident",
    "NearMiss",
    "RuleSet",
    "ScanResult",
    "attribute",
    "compact",
    "detect",
    "detect_file",
    "incidents",
    "load_rules",
    "near_miss",
    "plot_incidents",
    "scan",
]
