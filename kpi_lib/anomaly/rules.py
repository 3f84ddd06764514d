"""Rule sets: which ADTK transformers, detectors and aggregator run, with which parameters.

A rule set is a plain dict, so it can live in catalog.yml metadata, a YAML/JSON file or code. The
built-in ones are YAML files in ``rulesets/``::

    name: default
    expected: {window: 12, seasons: [1D, 7D], cycles: 3, history: 1000, floor: 0.01, min_rows: 100}
    budget: {alarms: 1, per: 7D, min_rows: 2016}   # how often a normal series may alarm
                                         # (share: all | armed: split among every step, or on
                                         #  each row among the steps that can alarm there)
    steps:
      - name: spike                      # a single point far from the expected value
        input: z                         # value | residual | z (residual / typical error) | abs_z
                                         # | level_z (value / typical error, rows judged by the rolling median)
                                         # | count_deficit (-ln Poisson P(X <= value), small counts only)
                                         # | count_run (the window's total as one count, small counts only)
                                         # | gauss (-ln Gaussian tail of the raw value under its previous 6,400 rows;
                                         #   `reanchor: [level_shift]` restarts that window at those steps' alarm onsets;
                                         #   `recent: 48` takes the smaller of it and the same surprise against the previous 48 rows)
                                         # | discord (with `length: 48`: how unlike its nearest earlier subsequence within
                                         #   6,400 rows the last 48 rows are, z-normalised; a pattern not seen before)
                                         # | novelty (with `length: 12`: the same within 2,016 rows, but the rows as they are, level included;
                                         #   guarded where the series wanders, like a random walk) | novelty_centred
                                         #   (each stretch less its own mean: amplitude and shape)
                                         # | zero_run (how many rows in a row, to this one, had nothing at all: 0 or less)
        detector: {QuantileAD: {high: 0.98}}
        bound: tail                      # extrapolate from the 98th percentile to the budget
        history: 10000                   # the bound is refit on this many past rows
        min: 3                           # ... and never below 3 typical errors
      - name: shift                      # a sustained move: the mean of the last 12 residuals
        input: z
        transform: {RollingAggregate: {window: 12, agg: mean}}
        detector: {QuantileAD: {high: 0.98}}
        bound: tail
        min: 1.5
    aggregate: OrAggregator
    incident: {recover: 12, release: 0.5}

A step without ``bound: tail`` uses ADTK's own rule, refit on past rows: ``QuantileAD(high=0.99)``
fires beyond this series' past 99th percentile, widened by ``margin`` and floored at ``min``.

Windows count rows, not time, so duplicated timestamps and gaps cannot break them. Only causal
pieces are accepted: transformers whose window ends at the current row, and detectors refit on past
rows only (see :mod:`kpi_lib.anomaly.engine`). Anything else is a :class:`DetectError` that says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from kpi_lib.errors import DetectError

#: rows in the ``gauss`` input's trailing window of raw values (NAB's windowedGaussian detector uses
#: 6,400): long enough to hold weeks of a 5-minute series' normal range
GAUSS_WINDOW = 6400
INPUTS = (
    "value",
    "residual",
    "z",
    "abs_z",
    "level_z",
    "count_deficit",
    "count_run",
    "gauss",
    "discord",
    "novelty",
    "novelty_centred",
    "zero_run",
)
#: inputs judged over a stretch of the last ``length`` rows against earlier stretches
WINDOWED_INPUTS = ("discord", "novelty", "novelty_centred")
#: ``input: discord``: the shortest and longest subsequence a step may compare (rows), and how far
#: back its nearest neighbour is sought (the gauss window's horizon)
DISCORD_LENGTHS = (4, 288)
DISCORD_WINDOW = GAUSS_WINDOW
#: ``input: novelty*``: how far back a stretch's nearest neighbour is sought (a week at 5 minutes,
#: the budget's 2,016 rows: the raw search costs a third of the discord's)
NOVELTY_WINDOW = 2016
SIDES = ("both", "positive", "negative")
TRANSFORMERS = ("RollingAggregate", "DoubleRollingAggregate")
#: Detectors whose rule is a bound learned from past rows; refit at every row, vectorised.
BOUND_DETECTORS = ("ThresholdAD", "QuantileAD", "InterQuartileRangeAD")
#: Other ADTK detectors, refit every ``every`` rows on past rows only (slower, general).
REFIT_DETECTORS = (
    "GeneralizedESDTestAD",
    "PersistAD",
    "LevelShiftAD",
    "VolatilityShiftAD",
    "AutoregressionAD",
    "SeasonalAD",
)
AGGREGATORS = ("OrAggregator", "AndAggregator")
SCALES = ("global", "volume")
SPREADS = ("mean", "median")
AVERAGES = ("median", "mean", "trimmed")
BOUNDS = ("quantile", "tail")


@dataclass(frozen=True)
class Expected:
    """How the expected value and its typical error are learned (causally)."""

    window: int = 12  # rows in the rolling median that gives the non-seasonal expectation
    seasons: tuple[str, ...] = ("1D", "7D")  # candidate periods; each row uses the best so far
    cycles: int = 3  # the seasonal expectation is the median of this many past cycles
    average: str = "median"  # how the past cycles are combined: median | mean | trimmed (middle half)
    #: scale each past cycle by (mean of the last week now / then): growth and yearly drift between
    #: the cycles no longer bias the seasonal expectation (needed with many cycles)
    adjust: bool = False
    history: int = 1000  # rows over which each candidate's typical error is measured
    floor: float = 0.01  # typical error is at least this fraction of the typical |value|
    min_rows: int = 24  # rows of history needed before anything can alarm
    #: how the typical error is measured: "global" = mean |error| over the last `history` rows;
    #: "volume" = that, rescaled to grow with sqrt(expected) as for counts and sums of orders
    #: (Poisson-like), and never below about one order's worth, so a quiet night's 0-3 orders
    #: cannot look surprising while a busy evening's real drop still does
    scale: str = "global"
    #: with scale "volume": rows expected to hold fewer than this many units (about one order each)
    #: are too small to judge one by one: the z-based steps skip them (residual windows still count)
    min_volume: float = 0.0
    #: how past |errors| are averaged: "mean", or "median" (rescaled to match the mean for normal
    #: noise), which a short burst inside `history` cannot inflate: live series that must alarm
    #: again soon after an incident use it
    spread: str = "mean"


@dataclass(frozen=True)
class Step:
    """One ADTK detector (optionally after one ADTK transformer) on one input."""

    name: str
    detector: str
    params: dict[str, Any] = field(default_factory=dict)
    input: str = "z"
    transform: str | None = None
    transform_params: dict[str, Any] = field(default_factory=dict)
    side: str = "both"
    history: int = 10000
    margin: float = 1.0
    min: float = 0.0
    every: int = 100  # refit period for REFIT_DETECTORS
    min_history: int = 50  # past values of the feature needed before a learned bound can alarm
    #: the step's deviation (its transform applied to value - expected) must also be at least this
    #: fraction of the typical |value| (mean over the last `expected.history` rows): a minimum
    #: absolute deviation, so a 2-order wiggle on a 3-order hour is never an incident
    min_dev: float = 0.0
    #: "quantile": the detector's own bound (ADTK's rule, refit on past rows). "tail": QuantileAD's
    #: `high` quantile is only where the tail starts; the bound is extrapolated from this series' past
    #: to the rule set's false-alarm budget (see :mod:`kpi_lib.anomaly.calibrate`)
    bound: str = "quantile"
    #: ``input: gauss`` only: names of other steps whose alarm onsets restart this step's trailing
    #: window of raw values (a confirmed level shift is a new normal: stop comparing with the old
    #: level). Those steps run first and must not use ``gauss`` themselves (causal, no cycle)
    reanchor: tuple[str, ...] = ()
    #: ``input: gauss`` only: rows in a second, recent window (0 = none). The input is then the
    #: smaller of the surprise against the long window and against the previous ``recent`` raw
    #: values: a new level that has held for ``recent`` rows is no longer surprising
    recent: int = 0
    #: ``input: discord`` or ``novelty*`` only: rows in each subsequence whose novelty the step judges
    length: int = 0
    #: this step's part of one equal share of the budget (1 = a share of its own): steps that ask one
    #: question at several horizons (novelty over 12, 48 and 288 rows) split one share between them
    share: float = 1.0


@dataclass(frozen=True)
class IncidentRule:
    """When consecutive alarms are one incident, and when it is over."""

    recover: int = 12  # rows below `release` that end an incident
    release: float = 0.5  # score under which a row counts as recovered
    # an alarm whose window is back near where the previous incident began, and only the expectation
    # is not (it learned the incident), is that incident's recovery
    recovery: bool = False
    # hysteresis (0 = off): once a step has alarmed, it may open a new incident only after its
    # ratio has fallen below ``rearm`` (a fraction of its threshold); a step hovering at its
    # threshold after an incident has closed alarms once, not every time it ticks over
    rearm: float = 0.0


@dataclass(frozen=True)
class Calendar:
    """Known business events (holidays, sales): no alarms on those days, and they teach nothing.

    ``days`` holds named holidays (see :data:`HOLIDAYS`; ``retail`` = all of them), recurring
    ``MM-DD`` dates and one-off ``YYYY-MM-DD`` dates. ``before``/``after`` widen each day by whole
    days (a holiday in local time touches the neighbouring UTC days).
    """

    days: tuple[str, ...] = ()
    before: int = 0
    after: int = 0


#: how the budget is split among the steps: all of them, or those armed on the row (see Budget)
SHARES = ("all", "armed")


@dataclass(frozen=True)
class Budget:
    """How often a normal series may alarm: ``alarms`` per ``per`` (a duration, at the series' own
    sampling interval), and never more than ``alarms`` per ``min_rows`` rows. The row floor is what
    makes one budget fit every grain: 1 per week is 1 per 2,016 rows of 5-minute data, while an
    hourly series gets 1 per 12 weeks and a daily one 1 per 5.5 years (a daily series cannot show
    what "once a week by chance" looks like; a threshold has to be rarer than its history).
    Steps with ``bound: tail`` share the budget equally: every such step on every row (``share:
    all``), or on each row only the steps armed there, i.e. whose input has had their
    ``min_history`` values before it (``share: armed``: a step that cannot alarm yet takes no
    share)."""

    alarms: float = 1.0
    per: str = "7D"
    min_rows: int = 2016
    share: str = "all"
    #: a row whose expectation has too little past of its own for a threshold borrows the one
    #: fitted on every expectation's past (twenty-second pass), instead of having none
    borrow: bool = False
    #: a step's first threshold is fitted on the first row with ``min_history`` values before it,
    #: not at the next refit edge, up to 31 rows later (twenty-sixth pass)
    fit_when_ready: bool = False


@dataclass(frozen=True)
class Young:
    """How a young series is judged: on a row where a step has no threshold of its own yet, the
    same step of this rule set with shorter floors (``expected.min_rows`` and each step's
    ``min_history`` set to these, but for the steps in ``except_``), evaluated on the rows so far.
    Young rows never teach the rule set's own thresholds, so from a step's first threshold on,
    nothing changes (see :func:`kpi_lib.anomaly.engine.evaluate`)."""

    min_rows: int = 12
    min_history: int = 44
    except_: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleSet:
    name: str
    steps: tuple[Step, ...]
    expected: Expected = Expected()
    aggregate: str = "OrAggregator"
    incident: IncidentRule = IncidentRule()
    description: str = ""
    calendar: Calendar = Calendar()
    budget: Budget = Budget()
    young: Young | None = None

    def young_rules(self) -> RuleSet | None:
        """The rule set a young series' rows are judged by (None: no ``young`` key)."""
        if self.young is None:
            return None
        y = self.young
        steps = tuple(
            st if st.name in y.except_ else replace(st, min_history=y.min_history) for st in self.steps
        )
        return replace(self, steps=steps, expected=replace(self.expected, min_rows=y.min_rows), young=None)

    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form (round-trips through :func:`load_rules`)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "expected": asdict(self.expected),
            "steps": [],
            "aggregate": self.aggregate,
            "incident": asdict(self.incident),
        }
        out["expected"]["seasons"] = list(self.expected.seasons)
        if self.budget != Budget():
            out["budget"] = asdict(self.budget)
        if self.young is not None:
            out["young"] = {
                "min_rows": self.young.min_rows,
                "min_history": self.young.min_history,
                "except": list(self.young.except_),
            }
        if self.calendar.days:
            out["calendar"] = {
                "days": list(self.calendar.days),
                "before": self.calendar.before,
                "after": self.calendar.after,
            }
        for s in self.steps:
            d: dict[str, Any] = {
                "name": s.name,
                "input": s.input,
                "detector": {s.detector: dict(s.params)},
                "side": s.side,
                "history": s.history,
                "margin": s.margin,
                "min": s.min,
                "every": s.every,
            }
            if s.min_dev:
                d["min_dev"] = s.min_dev
            if s.min_history != 50:
                d["min_history"] = s.min_history
            if s.bound != "quantile":
                d["bound"] = s.bound
            if s.transform:
                d["transform"] = {s.transform: dict(s.transform_params)}
            if s.reanchor:
                d["reanchor"] = list(s.reanchor)
            if s.recent:
                d["recent"] = s.recent
            if s.length:
                d["length"] = s.length
            if s.share != 1.0:
                d["share"] = s.share
            out["steps"].append(d)
        return out


#: The built-in rule sets, one YAML file each in ``kpi_lib/anomaly/rulesets/`` (the same format as a
#: user's rules file; ``extends:`` one of them to change a part).
RULESETS = Path(__file__).with_name("rulesets")
_ORDER = ("default", "legacy", "classic", "business_hourly", "business_hourly_ratio", "business_daily")
BUILTIN: dict[str, dict[str, Any]] = {
    p.stem: yaml.safe_load(p.read_text())
    for p in sorted(
        RULESETS.glob("*.yml"), key=lambda p: (_ORDER.index(p.stem) if p.stem in _ORDER else 99, p.stem)
    )
}
DEFAULT, LEGACY, CLASSIC = BUILTIN["default"], BUILTIN["legacy"], BUILTIN["classic"]
BUSINESS_HOURLY, BUSINESS_DAILY = BUILTIN["business_hourly"], BUILTIN["business_daily"]

#: Which built-in suits which kind of KPI at which grain (additive sums/counts vs ratios).
BUSINESS_RULES: dict[str, dict[str, str]] = {
    "additive": {"hour": "business_hourly", "day": "business_daily"},
    "ratio": {"hour": "business_hourly_ratio", "day": "business_daily_ratio"},
}


def _one_entry(value: Any, what: str, allowed: tuple[str, ...], where: str) -> tuple[str, dict[str, Any]]:
    """Read ``{Name: {params}}`` or ``"Name"``."""
    if isinstance(value, str):
        name, params = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        name, params = next(iter(value.items()))
        params = dict(params or {})
    else:
        raise DetectError(
            f"{where}: {what} must be a name or a one-key mapping like "
            f"{{{allowed[0]}: {{...}}}}, got {value!r}."
        )
    if name not in allowed:
        raise DetectError(f"{where}: unknown {what} {name!r}. Use one of: {', '.join(allowed)}.")
    return name, params


def _check_keys(d: Mapping, allowed: set[str], where: str) -> None:
    extra = set(d) - allowed
    if extra:
        raise DetectError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}. "
            f"Allowed: {', '.join(sorted(allowed))}."
        )


def _step(d: Mapping, i: int) -> Step:
    where = f"step {i + 1}"
    if not isinstance(d, Mapping):
        raise DetectError(f"{where}: each step must be a mapping, got {d!r}.")
    _check_keys(
        d,
        {
            "name",
            "input",
            "detector",
            "transform",
            "side",
            "history",
            "margin",
            "min",
            "every",
            "min_dev",
            "min_history",
            "bound",
            "reanchor",
            "recent",
            "length",
            "share",
        },
        where,
    )
    name = str(d.get("name") or f"step{i + 1}")
    where = f"step {name!r}"
    if "detector" not in d:
        raise DetectError(f"{where}: needs a detector, e.g. detector: {{QuantileAD: {{high: 0.99}}}}.")
    det, params = _one_entry(d["detector"], "detector", BOUND_DETECTORS + REFIT_DETECTORS, where)
    transform, tparams = (None, {})
    if d.get("transform"):
        transform, tparams = _one_entry(d["transform"], "transformer", TRANSFORMERS, where)
        if tparams.get("center"):
            raise DetectError(f"{where}: {transform} with center=True looks ahead; drop `center`.")
        for key in ("window",):
            w = tparams.get(key)
            ws = w if isinstance(w, (list, tuple)) else [w]
            if not all(isinstance(v, int) and v > 0 for v in ws):
                raise DetectError(
                    f"{where}: {transform} window must be a positive number of rows, got {w!r}."
                )
        for key in ("window", "min_periods", "agg", "agg_params"):  # ADTK wants (left, right) tuples
            if isinstance(tparams.get(key), list):
                tparams[key] = tuple(tparams[key])
    if det == "SeasonalAD" and not isinstance(params.get("freq"), int):
        raise DetectError(
            f"{where}: SeasonalAD needs freq= as a number of rows (e.g. 24 for hourly "
            "data with a daily cycle)."
        )
    if det in ("LevelShiftAD", "VolatilityShiftAD"):
        w = params.get("window")
        ws = w if isinstance(w, (list, tuple)) else [w]
        if not all(isinstance(v, int) and v > 0 for v in ws):
            raise DetectError(f"{where}: {det} needs window= as a number of rows (or two), got {w!r}.")
        if isinstance(w, list):
            params["window"] = tuple(w)
    step_input = d.get("input", "z")
    if step_input not in INPUTS:
        raise DetectError(f"{where}: input must be one of {', '.join(INPUTS)}, got {step_input!r}.")
    side = d.get("side", "both")
    if side not in SIDES:
        raise DetectError(f"{where}: side must be one of {', '.join(SIDES)}, got {side!r}.")
    try:
        history, every = int(d.get("history", 10000)), int(d.get("every", 100))
        min_history = int(d.get("min_history", 50))
        margin, low = float(d.get("margin", 1.0)), float(d.get("min", 0.0))
        min_dev = float(d.get("min_dev", 0.0))
    except (TypeError, ValueError) as exc:
        raise DetectError(
            f"{where}: history/every must be integers and margin/min/min_dev numbers ({exc})."
        ) from exc
    bound = str(d.get("bound", "quantile"))
    if bound not in BOUNDS:
        raise DetectError(f"{where}: bound must be one of {', '.join(BOUNDS)}, got {bound!r}.")
    if bound == "tail" and det != "QuantileAD":
        raise DetectError(
            f"{where}: bound: tail extrapolates QuantileAD's bound; use detector: {{QuantileAD: {{high: 0.98}}}}."
        )
    if history < 10 or every < 1 or min_history < 1:
        raise DetectError(f"{where}: history must be at least 10 rows, every and min_history at least 1.")
    reanchor = d.get("reanchor") or ()
    reanchor = tuple(str(r) for r in ([reanchor] if isinstance(reanchor, str) else reanchor))
    if reanchor and step_input != "gauss":
        raise DetectError(f"{where}: reanchor restarts a gauss window; it needs input: gauss.")
    recent = d.get("recent") or 0
    if recent and step_input != "gauss":
        raise DetectError(f"{where}: recent gates a gauss window; it needs input: gauss.")
    if isinstance(recent, bool) or not isinstance(recent, int) or recent and not 2 <= recent < GAUSS_WINDOW:
        raise DetectError(
            f"{where}: recent must be a whole number of rows from 2 to {GAUSS_WINDOW - 1} "
            f"(the gauss window is {GAUSS_WINDOW}), got {recent!r}."
        )
    length = d.get("length") or 0
    lo, hi = DISCORD_LENGTHS
    if (step_input in WINDOWED_INPUTS) != bool(length):
        raise DetectError(
            f"{where}: length (rows in a subsequence) goes with input: {' or '.join(WINDOWED_INPUTS)}, "
            "and it needs one."
        )
    if isinstance(length, bool) or not isinstance(length, int) or length and not lo <= length <= hi:
        raise DetectError(
            f"{where}: length must be a whole number of rows from {lo} to {hi}, got {length!r}."
        )
    return Step(
        name=name,
        detector=det,
        params=params,
        input=step_input,
        transform=transform,
        transform_params=tparams,
        side=side,
        history=history,
        margin=margin,
        min=low,
        every=every,
        min_dev=min_dev,
        min_history=min_history,
        bound=bound,
        reanchor=reanchor,
        recent=recent,
        length=length,
        share=_share(d.get("share", 1.0), where),
    )


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise DetectError(
            f"{where}: share is this step's part of one budget share, more than 0 and at most 1 "
            f"(1/3 for one of three horizons), got {value!r}."
        )
    return float(value)


def _calendar(value: Any) -> Calendar:
    """``[names/dates]`` or ``{days: [...], before: n, after: n}``; every entry checked."""
    if not value:
        return Calendar()
    if isinstance(value, (list, tuple, str)):
        value = {"days": value}
    if not isinstance(value, Mapping):
        raise DetectError(f"calendar: a list of days or a mapping with `days`, got {value!r}.")
    _check_keys(value, {"days", "before", "after"}, "calendar")
    days = value.get("days") or []
    days = tuple(str(d) for d in ([days] if isinstance(days, str) else days))
    for d in days:
        if d in HOLIDAYS or d == "retail":
            continue
        try:
            pd.Timestamp(d if len(d) > 5 else f"2000-{d}")
        except ValueError as exc:
            raise DetectError(
                f"calendar: {d!r} is neither a holiday name ({', '.join(['retail', *HOLIDAYS])}) "
                "nor a date like '07-15' (every year) or '2025-07-15'."
            ) from exc
    try:
        before, after = int(value.get("before", 0)), int(value.get("after", 0))
    except (TypeError, ValueError) as exc:
        raise DetectError(f"calendar: before/after must be whole days ({exc}).") from exc
    if before < 0 or after < 0:
        raise DetectError("calendar: before/after must be zero or more days.")
    return Calendar(days=days, before=before, after=after)


def _budget(value: Any) -> Budget:
    """``{alarms: 1, per: 7D, min_rows: 2016}``: how often a normal series may alarm."""
    if value is None:
        return Budget()
    if not isinstance(value, Mapping):
        raise DetectError(f"budget: a mapping like {{alarms: 1, per: 7D}}, got {value!r}.")
    _check_keys(value, {"alarms", "per", "min_rows", "share", "borrow", "fit_when_ready"}, "budget")
    b = Budget()
    try:
        alarms = float(value.get("alarms", b.alarms))
        min_rows = int(value.get("min_rows", b.min_rows))
        per = str(value.get("per", b.per))
        if pd.Timedelta(per) <= pd.Timedelta(0):
            raise ValueError(per)
    except (TypeError, ValueError) as exc:
        raise DetectError(
            f"budget: alarms must be a number, per a duration like '7D' or '4W', min_rows a whole "
            f"number ({exc})."
        ) from exc
    if alarms <= 0 or min_rows < 1:
        raise DetectError("budget: alarms must be more than 0 and min_rows at least 1.")
    share = str(value.get("share", b.share))
    if share not in SHARES:
        raise DetectError(f"budget: share must be one of {', '.join(SHARES)}, got {share!r}.")
    flags = {k: value.get(k, getattr(b, k)) for k in ("borrow", "fit_when_ready")}
    for k, v in flags.items():
        if not isinstance(v, bool):
            raise DetectError(f"budget: {k} is true or false, got {v!r}.")
    return Budget(alarms=alarms, per=per, min_rows=min_rows, share=share, **flags)


def calendar_days(calendar: Calendar, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """The calendar's days between two timestamps (inclusive), widened by before/after."""
    if not calendar.days:
        return pd.DatetimeIndex([])
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    names = [h for d in calendar.days for h in (HOLIDAYS if d == "retail" else [d])]
    out = []
    for year in range(first.year, last.year + 1):
        for d in names:
            if d in HOLIDAYS:
                out.append(HOLIDAYS[d](year))
            elif len(d) <= 5:
                try:
                    out.append(pd.Timestamp(f"{year}-{d}"))
                except ValueError:  # 02-29 in a year without it
                    pass
            elif year == first.year:
                out.append(pd.Timestamp(d))
    days = pd.DatetimeIndex(out)
    widened = [days + pd.Timedelta(days=k) for k in range(-calendar.before, calendar.after + 1)]
    days = widened[0].append(widened[1:]).unique().sort_values() if widened else days
    return days[(days >= first) & (days <= last)]


def _black_friday(year: int) -> pd.Timestamp:
    nov1 = pd.Timestamp(year=year, month=11, day=1)
    first_thu = nov1 + pd.Timedelta(days=(3 - nov1.dayofweek) % 7)
    return first_thu + pd.Timedelta(days=22)  # the day after the fourth Thursday


#: Named holidays for ``calendar.days`` (``retail`` = all of them).
HOLIDAYS = {
    "black_friday": _black_friday,
    "cyber_monday": lambda y: _black_friday(y) + pd.Timedelta(days=3),
    "christmas_eve": lambda y: pd.Timestamp(year=y, month=12, day=24),
    "christmas": lambda y: pd.Timestamp(year=y, month=12, day=25),
    "boxing_day": lambda y: pd.Timestamp(year=y, month=12, day=26),
    "new_years_eve": lambda y: pd.Timestamp(year=y, month=12, day=31),
    "new_year": lambda y: pd.Timestamp(year=y, month=1, day=1),
}


def _extend(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``{extends: business_daily, calendar: {...}}``: a built-in with some parts replaced.

    ``expected``, ``incident``, ``calendar`` and ``budget`` are merged key by key; ``steps`` and anything else
    replace the built-in's.
    """
    base_name = spec["extends"]
    if base_name not in BUILTIN:
        raise DetectError(
            f"rule set: extends must name a built-in rule set ({', '.join(BUILTIN)}), got {base_name!r}."
        )
    out = dict(BUILTIN[base_name])
    out["name"] = f"{base_name} (custom)"
    for key, value in spec.items():
        if key == "extends":
            continue
        if key in ("expected", "incident", "calendar", "budget") and isinstance(value, Mapping):
            base = out.get(key) or {}
            out[key] = {**(base if isinstance(base, Mapping) else {"days": base}), **value}
        else:
            out[key] = value
    young = out.get("young")
    if "steps" in spec and "young" not in spec and isinstance(young, Mapping) and young.get("except"):
        # the built-in's young rows skip some of its steps; of the steps given here, keep those
        names = {s.get("name") for s in out["steps"] if isinstance(s, Mapping)}
        out["young"] = {**young, "except": [n for n in young["except"] if n in names]}
    return out


def _young(value: Any, steps: list[str]) -> Young | None:
    """``{min_rows: 12, min_history: 44, except: [discord]}`` (see :class:`Young`); ``null`` or
    ``false`` for none (a series is then judged only once its steps have thresholds of their own)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise DetectError(f"young: a mapping like {{min_rows: 12, min_history: 44}}, got {value!r}.")
    _check_keys(value, {"min_rows", "min_history", "except"}, "young")
    try:
        min_rows = int(value.get("min_rows", Young.min_rows))
        min_history = int(value.get("min_history", Young.min_history))
    except (TypeError, ValueError) as exc:
        raise DetectError(f"young: min_rows and min_history are whole numbers of rows ({exc}).") from exc
    if min_rows < 2 or min_history < 2:
        raise DetectError("young: min_rows and min_history must be at least 2 rows.")
    skip = value.get("except") or []
    skip = [skip] if isinstance(skip, str) else list(skip)
    unknown = [str(n) for n in skip if n not in steps]
    if unknown:
        raise DetectError(f"young: except names steps of the rule set ({', '.join(steps)}), got {unknown}.")
    return Young(min_rows=min_rows, min_history=min_history, except_=tuple(str(n) for n in skip))


def parse_rules(spec: Mapping[str, Any]) -> RuleSet:
    """Validate a plain-dict rule set; errors name the offending part and the allowed values."""
    if not isinstance(spec, Mapping):
        raise DetectError(f"A rule set must be a mapping with `name` and `steps`, got {type(spec).__name__}.")
    if "extends" in spec:
        spec = _extend(spec)
    _check_keys(
        spec,
        {"name", "description", "expected", "steps", "aggregate", "incident", "calendar", "budget", "young"},
        "rule set",
    )
    steps = spec.get("steps")
    if not steps or not isinstance(steps, list):
        raise DetectError("rule set: `steps` must be a non-empty list of detector steps.")
    exp = dict(spec.get("expected") or {})
    _check_keys(exp, set(Expected.__dataclass_fields__), "expected")
    if "seasons" in exp:
        seasons = exp["seasons"] or []
        exp["seasons"] = tuple(str(s) for s in ([seasons] if isinstance(seasons, str) else seasons))
        for s in exp["seasons"]:
            try:
                if pd.Timedelta(s) <= pd.Timedelta(0):
                    raise ValueError
            except ValueError as exc:
                raise DetectError(
                    f"expected.seasons: {s!r} is not a positive duration like '1D' or '7D'."
                ) from exc
    if exp.get("average", "median") not in AVERAGES:
        raise DetectError(f"expected.average must be one of {', '.join(AVERAGES)}, got {exp['average']!r}.")
    if exp.get("scale", "global") not in SCALES:
        raise DetectError(f"expected.scale must be one of {', '.join(SCALES)}, got {exp['scale']!r}.")
    if exp.get("spread", "mean") not in SPREADS:
        raise DetectError(f"expected.spread must be one of {', '.join(SPREADS)}, got {exp['spread']!r}.")
    inc = dict(spec.get("incident") or {})
    _check_keys(inc, set(IncidentRule.__dataclass_fields__), "incident")
    if not isinstance(inc.get("recovery", False), bool):
        raise DetectError(f"incident: recovery must be true or false, got {inc['recovery']!r}.")
    if not isinstance(inc.get("rearm", 0.0), int | float) or not 0 <= inc.get("rearm", 0.0) < 1:
        raise DetectError(
            f"incident: rearm is a fraction of the threshold from 0 (off) to under 1, got {inc['rearm']!r}."
        )
    agg = spec.get("aggregate", "OrAggregator")
    if agg not in AGGREGATORS:
        raise DetectError(f"rule set: aggregate must be one of {', '.join(AGGREGATORS)}, got {agg!r}.")
    calendar = _calendar(spec.get("calendar"))
    budget = _budget(spec.get("budget"))
    parsed = [_step(s, i) for i, s in enumerate(steps)]
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise DetectError(f"rule set: step names must be unique, got {names}.")
    young = _young(spec.get("young"), names)
    by_name = {s.name: s for s in parsed}
    for s in parsed:
        for r in s.reanchor:
            if r not in by_name or r == s.name:
                raise DetectError(f"step {s.name!r}: reanchor names another step of the rule set, got {r!r}.")
            if by_name[r].input == "gauss":
                raise DetectError(
                    f"step {s.name!r}: reanchor on {r!r}, which uses gauss itself: its alarms would "
                    "depend on the window they restart."
                )
    try:
        return RuleSet(
            name=str(spec.get("name") or "custom"),
            steps=tuple(parsed),
            expected=Expected(**exp),
            aggregate=agg,
            incident=IncidentRule(**inc),
            description=str(spec.get("description") or ""),
            calendar=calendar,
            budget=budget,
            young=young,
        )
    except TypeError as exc:
        raise DetectError(f"rule set: {exc}") from exc


def load_rules(rules: str | Path | Mapping[str, Any] | RuleSet = "default") -> RuleSet:
    """A built-in name (``default``, ``classic``), a YAML/JSON file, a dict, or a RuleSet."""
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, Mapping):
        return parse_rules(rules)
    if isinstance(rules, str) and rules in BUILTIN:
        return parse_rules(BUILTIN[rules])
    path = Path(rules)
    if not path.is_file():
        raise DetectError(
            f"Unknown rule set {str(rules)!r}: not a built-in ({', '.join(BUILTIN)}) and no "
            "such file. Pass a built-in name or the path of a YAML/JSON rule file."
        )
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            spec = json.loads(text)
        else:
            spec = yaml.safe_load(text)
    except Exception as exc:  # yaml and json raise different types
        raise DetectError(f"{path}: cannot parse the rule file ({exc}). Fix the YAML/JSON syntax.") from exc
    return parse_rules(spec)


#: sensitivity -> multiplier of a rule set's false-alarm budget (:class:`Budget`): low alarms four
#: times rarer than the rules' own budget, high four times as often (the "Alert rules" page and
#: ``kpi detect --sensitivity``)
SENSITIVITY = {"low": 0.25, "medium": 1.0, "high": 4.0}


def with_budget(rules: Any, scale: float) -> Any:
    """The rules with their false-alarm budget scaled by ``scale`` (see :data:`SENSITIVITY`)."""
    if scale == 1.0:
        return rules
    rs = load_rules(rules)
    return replace(rs, budget=replace(rs.budget, alarms=rs.budget.alarms * scale))
