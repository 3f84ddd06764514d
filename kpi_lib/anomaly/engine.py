"""Run a rule set over one series, causally: row i's outputs depend on rows 0..i only.

How each ADTK piece is kept causal:

* Transformers (``RollingAggregate``, ``DoubleRollingAggregate``) run with ``center=False``: their
  windows end at the current row.
* Bound detectors (``ThresholdAD``, ``QuantileAD``, ``InterQuartileRangeAD``) apply ADTK's rule with
  the bound refit at *every* row on the previous ``history`` rows only. That is the same decision
  ADTK makes after ``fit(past)``, computed with vectorised rolling quantiles instead of a loop.
  ``margin`` and ``min`` widen the bound: alarm only beyond ``max(min, margin x bound)``.
* Other detectors (``PersistAD``, ``LevelShiftAD``, ...) are refit every ``every`` rows on the
  previous ``history`` rows and predict the next block. Two-sided windows (``LevelShiftAD``,
  ``VolatilityShiftAD`` look ``right window - 1`` rows ahead) are delayed by that many rows.

Each step yields ``ratio`` = feature / bound (1.0 = at the bound, comparable across steps and
series) and ``fired`` (ratio > 1). The ADTK aggregator combines the fired flags; the score is the
largest ratio (``OrAggregator``) or the smallest (``AndAggregator``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from adtk import aggregator as adtk_aggregator
from adtk import detector as adtk_detector
from adtk import transformer as adtk_transformer
from scipy import stats
from scipy.special import log_ndtr

from kpi_lib.anomaly import baseline, calibrate
from kpi_lib.anomaly.discord import left_discord
from kpi_lib.anomaly.novelty import novelty
from kpi_lib.anomaly.rules import (
    BOUND_DETECTORS,
    DISCORD_WINDOW,
    GAUSS_WINDOW,
    NOVELTY_WINDOW,
    WINDOWED_INPUTS,
    RuleSet,
    Step,
    calendar_days,
)

log = logging.getLogger(__name__)

_MIN_BOUND_ROWS = 50  # a refit detector needs this many past rows (bound steps: Step.min_history)
#: inputs that say themselves which rows they can judge (NaN = no opinion on that row)
_ROW_INPUTS = ("z", "abs_z", "level_z", "count_deficit", "count_run", "gauss", *WINDOWED_INPUTS)


@dataclass(frozen=True)
class Evaluation:
    """Everything detect() needs, per row, before incidents are formed."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    fired: np.ndarray
    rule: np.ndarray  # name of the step with the largest ratio where fired, else ""
    step: np.ndarray  # name of the step with the largest ratio on every row (what came closest)
    source: np.ndarray  # which expectation was used ("level", "1D", "7D", "")
    ratios: dict[str, np.ndarray] | None = None  # per step: feature / bound (what each step saw)
    fired_by: dict[str, np.ndarray] | None = None  # per step: its alarms
    armed_by: dict[str, np.ndarray] | None = None  # per step: rows where it had a threshold
    idle: frozenset[str] = frozenset()  # steps with nothing to judge on this series
    started: dict[str, int] | None = None  # per step: the first row its input had a value

    @property
    def judged(self) -> np.ndarray:
        """Rows where at least one step had a threshold (could fire)."""
        return np.any(np.vstack(list(self.armed_by.values())), axis=0)


def _as_adtk(v: np.ndarray) -> pd.Series:
    """ADTK wants a DatetimeIndex; windows count rows, so a regular synthetic index is exact."""
    return pd.Series(v, index=pd.date_range("2000-01-01", periods=len(v), freq="s"), dtype=float)


def _lookahead(step: Step) -> int:
    if step.detector in ("LevelShiftAD", "VolatilityShiftAD"):
        w = step.params.get("window")
        right = w[1] if isinstance(w, tuple) else w
        return int(right) - 1
    return 0


def _transform(step: Step, feature: np.ndarray) -> np.ndarray:
    if step.transform is None:
        return feature
    params = dict(step.transform_params)
    if step.transform == "DoubleRollingAggregate":
        params["center"] = False  # the right window ends at the current row
    model = getattr(adtk_transformer, step.transform)(**params)
    out = model.transform(_as_adtk(feature))
    if isinstance(out, pd.DataFrame):  # multi-output aggregations: take the first column
        out = out.iloc[:, 0]
    return out.to_numpy(dtype=float)


def _span(step: Step) -> int:
    """How many rows a step's transform averages (its feature repeats itself over that many)."""
    w = step.transform_params.get("window", 1) if step.transform else 1
    return int(max(w) if isinstance(w, (tuple, list)) else w)


def _sided(step: Step, f: np.ndarray) -> np.ndarray:
    if step.side == "positive":
        return np.clip(f, 0, None)
    if step.side == "negative":
        return np.clip(-f, 0, None)
    return np.abs(f)


def _bound(step: Step, f: np.ndarray) -> np.ndarray:
    """ADTK's upper bound, refit at every row on the previous `history` rows."""
    if step.detector == "ThresholdAD":
        return np.full(len(f), float(step.params.get("high", np.inf)))
    past = pd.Series(f).shift(1).rolling(step.history, min_periods=min(step.min_history, step.history))
    if step.detector == "QuantileAD":
        return past.quantile(float(step.params.get("high", 1.0))).to_numpy()
    c = step.params.get("c", 3.0)  # InterQuartileRangeAD
    c = c[1] if isinstance(c, (tuple, list)) else c
    q1, q3 = past.quantile(0.25).to_numpy(), past.quantile(0.75).to_numpy()
    return q3 + float(c) * (q3 - q1)


def _refit_blocks(step: Step, f: np.ndarray) -> np.ndarray:
    """Fire flags from an ADTK detector refit every `every` rows on past rows only."""
    n, every, hist = len(f), step.every, step.history
    fired = np.zeros(n, dtype=bool)
    series = _as_adtk(f)
    delay = _lookahead(step)
    start = max(every, _MIN_BOUND_ROWS)
    cls = getattr(adtk_detector, step.detector)
    while start < n:
        end = min(start + every, n)
        lo = max(0, start - hist)
        model = cls(**step.params)
        try:
            model.fit(series.iloc[lo:start])
            raw = model.predict(series.iloc[lo:end])
        except Exception as exc:  # e.g. too few non-NaN rows to fit yet: no alarms in this block
            log.debug("step %s: %s cannot fit rows %d-%d: %s", step.name, step.detector, lo, start, exc)
            start = end
            continue
        flags = pd.Series(raw).astype(float).fillna(0.0).to_numpy() > 0
        if delay:
            flags = np.concatenate([np.zeros(delay, dtype=bool), flags[:-delay]])
        fired[start:end] = flags[start - lo :]
        start = end
    return fired


def _run_step(
    step: Step,
    inputs: dict[str, np.ndarray],
    exclude: np.ndarray | None = None,
    typical: np.ndarray | None = None,
    risk: float | np.ndarray = 0.0,
    group: np.ndarray | None = None,
    borrow_from: int | None = None,
    fit_when_ready: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(ratio, fired, bound, started) for one step; bound is NaN for refit detectors, started the
    first row its input has a value (len(f) if none).

    Rows in `exclude` (calendar events) never fire and are left out of the learned bound. `risk`
    is the step's share of the false-alarm budget per row (``bound: tail`` steps).
    """
    small, thin = inputs.get("small"), inputs.get("thin")
    if step.input == "count_run":
        f = count_run(inputs["count_value"], inputs["count_expected"], _span(step))
    elif small is not None and step.transform is not None and step.input in ("z", "abs_z"):
        # inside a window, a row too small to judge on its own counts as on its expected value: a
        # surge in the two hours after a quiet night is judged when its second hour closes, not
        # once the night has left the window (and then reported on the hour after it)
        f = _transform(step, np.where(small, 0.0, inputs[step.input]))
        f[small] = np.nan  # the small row itself is still not judged, nor learned from
    elif thin is not None and step.transform is not None and step.input == "residual":
        # the same for a row with too little volume behind it (its value is missing): a missing row
        # would leave every window holding it (a 24-hour mean, each night) without an opinion
        f = _transform(step, np.where(thin, 0.0, inputs[step.input]))
        f[thin] = np.nan
    else:
        f = _transform(step, inputs[step.input])
    finite = np.isfinite(f)
    started = int(np.argmax(finite)) if finite.any() else len(f)
    if step.detector in BOUND_DETECTORS:
        f = _sided(step, f)
        if step.bound == "tail":
            learned = calibrate.online_threshold(
                f,
                risk,
                history=step.history,
                min_history=step.min_history,
                level=float(step.params.get("high", 0.98)),
                exclude=exclude,
                floor=step.min / step.margin if step.margin > 0 else step.min,
                # a Poisson tail probability is already relative to the row's own expectation,
                # whichever candidate gave it: one threshold from all past rows (per-candidate
                # thresholds left it blind for weeks after a weekly candidate started to win); the
                # windowed Gaussian ignores the expectation altogether
                group=None
                if step.input in ("count_deficit", "count_run", "gauss", *WINDOWED_INPUTS)
                else group,
                # a raw stretch's novelty repeats itself like a rolling mean of that many rows
                span=step.length if step.input in ("novelty", "novelty_centred") else _span(step),
                borrow_from=borrow_from,
                fit_when_ready=fit_when_ready,
            )
        else:
            learned = _bound(step, f if exclude is None else np.where(exclude, np.nan, f))
        bound = np.maximum(step.margin * learned, step.min)  # NaN until the bound is learned
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bound > 0, f / bound, np.where(f > 0, np.inf, 0.0))
        ratio = np.nan_to_num(ratio, nan=0.0, posinf=1e6)
        # a missing value, too little history or (for z) too small a row to judge: no opinion
        ratio[
            ~np.isfinite(inputs[step.input] if step.input in _ROW_INPUTS else inputs["ready"])
            | np.isnan(bound)
        ] = 0.0
        if step.min_dev > 0 and typical is not None:
            # the same deviation in the series' own units must be at least min_dev x its usual size
            residual = inputs["residual"] if thin is None else np.where(thin, 0.0, inputs["residual"])
            dev = _sided(step, _transform(step, residual))
            with np.errstate(invalid="ignore"):
                slight = ~(dev >= step.min_dev * typical)
            ratio = np.where(slight, np.minimum(ratio, 1.0), ratio)
        fired = ratio > 1.0
    else:
        fired = _refit_blocks(step, f)
        ratio, bound = fired.astype(float), np.full(len(f), np.nan)
    if exclude is not None:
        ratio, fired = np.where(exclude, 0.0, ratio), fired & ~exclude
    return ratio, fired, bound, started


def level_windows(rules: RuleSet) -> dict[str, tuple[int, int, str]]:
    """Steps that compare a recent level with the one before it, by name: (left rows, right rows,
    how a level is taken). A ``level_z`` step (``DoubleRollingAggregate``, ``diff: diff``) compares
    medians; a step on the values themselves (``diff`` or ``rel_diff`` of means: the business rules'
    ``trend``) compares means. Their incidents are explained as a move from one level to the other
    ("a sustained decline" told by its alarm day's value read "26% above the expected")."""
    out = {}
    for s in rules.steps:
        p = s.transform_params
        if s.transform != "DoubleRollingAggregate" or p.get("agg", "mean") not in ("median", "mean"):
            continue
        w = p.get("window")
        left, right = w if isinstance(w, tuple) else (w, w)
        if s.input == "level_z" and p.get("diff") == "diff":
            out[s.name] = (int(left), int(right), "median")
        elif s.input == "value" and p.get("diff") in ("diff", "rel_diff") and p.get("agg", "mean") == "mean":
            out[s.name] = (int(left), int(right), "mean")
    return out


def rolling_windows(rules: RuleSet) -> dict[str, int]:
    """Steps that judge a rolling window of rows (``RollingAggregate``), by name: its rows. A
    one-row incident of theirs is explained over that window ("in the 12 hours to 19:00")."""
    out = {}
    for s in rules.steps:
        w = s.transform_params.get("window")
        if s.transform == "RollingAggregate" and isinstance(w, int) and w > 1:
            out[s.name] = w
    return out


def judged_rows(rules: RuleSet, rule: np.ndarray) -> np.ndarray:
    """Per row, how many rows the step that fired there judged (1 where none did, or a point step):
    its rolling window, its subsequence length, or a level step's recent window."""
    rows = {**rolling_windows(rules), **shape_lengths(rules)}
    rows.update({name: right for name, (_, right, _) in level_windows(rules).items()})
    return np.array([rows.get(str(r), 1) for r in rule], dtype=np.int64)


def silence_steps(rules: RuleSet) -> dict[str, int]:
    """Steps on ``zero_run`` (rows in a row with nothing at all), by name: the rows of past they
    compare the run with. Their incidents are told as a run of empty periods against the longest
    such run before it."""
    return {s.name: int(s.history) for s in rules.steps if s.input == "zero_run"}


def shape_lengths(rules: RuleSet) -> dict[str, int]:
    """Steps that judge a pattern's novelty (input ``discord`` or ``novelty*``), by name: rows in the subsequence.
    Their incidents are explained as a pattern not seen before."""
    return {s.name: s.length for s in rules.steps if s.input in WINDOWED_INPUTS}


def shape_windows(rules: RuleSet) -> dict[str, int]:
    """The same steps, by name: how many rows back their nearest earlier subsequence is sought (what
    "unlike anything in the previous 7 days" counts)."""
    return {
        s.name: DISCORD_WINDOW if s.input == "discord" else NOVELTY_WINDOW
        for s in rules.steps
        if s.input in WINDOWED_INPUTS
    }


#: a series is "small counts" if its first rows are whole numbers >= 0 with a median at most this:
#: a handful of events per period, where a Gaussian z misjudges a count's skewed tail (a zero is
#: 2.2 sd below a mean of 5, but has probability e^-5 under a Poisson); above it, the Poisson tail
#: is a monotone function of z and the steps on z already see what it would
SMALL_COUNTS = 10.0


def small_counts(x: np.ndarray, rows: int) -> bool:
    """Whether the series is small counts, decided on its first ``rows`` values (before anything
    can alarm, so the decision is causal for every output)."""
    head = x[:rows]
    head = head[np.isfinite(head)]
    if not len(head):
        return False
    return bool(((head >= 0) & (head == np.round(head))).all() and np.median(head) <= SMALL_COUNTS)


def count_deficit(x: np.ndarray, expected: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """How surprising a low count is: ``-ln P(X <= x)`` for ``X ~ Poisson(expected)`` (0 when the
    count is at or above its expectation); NaN on rows after the first value that is not a whole
    number >= 0 (causal), and on calendar rows.

    Why a Poisson tail and not z: a shop's hourly orders have a spread dominated by their bursts (a
    right-skewed error), so a 6-hour outage at the daily peak (six zeros against an expected 4-5 an
    hour) is only 1-2 typical errors a row, while under a Poisson it is a run of probability e^-27.
    The Poisson model is only the shape of the surprise: overdispersed counts make it too large on
    ordinary rows too, and the step's threshold, calibrated on the series' own past like every other
    step's, absorbs that.
    """
    with np.errstate(invalid="ignore"):
        whole = ~np.isfinite(x) | ((x >= 0) & (x == np.round(x)))
    counts = np.logical_and.accumulate(whole) if len(x) else whole
    ok = counts & np.isfinite(x) & np.isfinite(expected)
    if exclude is not None:
        ok &= ~exclude
    mu = np.where(ok, np.maximum(expected, 0.0), 0.0)
    k = np.where(ok, x, 0.0)
    low = ok & (k < mu)
    out = np.zeros(len(x))
    if low.any():
        out[low] = -stats.poisson.logcdf(k[low], mu[low])
    return np.where(ok, out, np.nan)


def zero_run(x: np.ndarray) -> np.ndarray:
    """Per row, how many rows in a row up to it had nothing at all (0 or less: no sale, or only
    refunds); 0 on a row with something, NaN on a missing one (unknown, and the run goes on past it)."""
    x = np.asarray(x, dtype=float)
    empty = np.cumsum(np.isfinite(x) & (x <= 0))
    reset = np.isfinite(x) & (x > 0)
    since = pd.Series(np.where(reset, empty, np.nan)).ffill().fillna(0.0).to_numpy()
    return np.where(np.isfinite(x), empty - since, np.nan)


def count_run(x: np.ndarray, expected: np.ndarray, window: int) -> np.ndarray:
    """How surprising the last ``window`` rows' total count is when low: ``-ln P(K <= k)`` for
    ``K ~ Poisson(m)``, k the rows' total and m their expected total (a sum of Poisson counts is
    Poisson), 0 when the total is at or above it, NaN unless every row in the window is a judged
    count row (see :func:`count_deficit`).

    Against summing each row's own surprise, the run is judged as one count: six zeros where 30 were
    expected are e^-30 either way, but an ordinary stretch of a low hour and a high one (1 and 9
    where 5 and 5 were expected) is no surprise at all, while per row the 1 alone counts 3 nats; and
    a noisy per-row expectation (1 one day, 10 the next at the same hour) averages out over the run.
    """
    k = pd.Series(x).rolling(window, min_periods=window).sum().to_numpy()
    m = pd.Series(np.maximum(expected, 0.0)).rolling(window, min_periods=window).sum().to_numpy()
    out = np.full(len(x), np.nan)
    good = np.isfinite(k) & np.isfinite(m)
    out[good] = 0.0
    low = good & (k < m)
    if low.any():
        out[low] = -stats.poisson.logcdf(k[low], m[low])
    return out


def windowed_gaussian(
    value: np.ndarray,
    window: int,
    min_rows: int,
    floor: float,
    restart: np.ndarray | None = None,
    recent: int = 0,
) -> np.ndarray:
    """How far outside the series' own recent range each value is: ``-ln P(|X - m| >= |x - m|)``
    for ``X ~ Normal(m, s)``, ``m`` and ``s`` the mean and standard deviation of the previous
    ``window`` raw values (NAB's windowedGaussian detector, which alarms on ``1 - P``; the
    logarithm makes a rolling mean of it the surprise of the whole run under independence). NaN
    until ``min_rows`` past values, and where the value is missing (calendar days). ``s`` is at least
    ``floor`` x the window's mean |value|, so a flat stretch cannot make every later wiggle infinitely
    surprising. Causal: the window ends at the previous row.

    ``restart``: rows where the window starts again (a confirmed level shift: the old level is no
    longer the normal one). Row i's window then holds only rows from the last restart at or before
    i, and the input is NaN again until ``min_rows`` of them (row ``a`` itself has an empty window).
    Causal as long as a restart at row ``a`` is decided on rows ``0..a``.

    ``recent``: rows in a second window (0 = none). Each row's value is then the smaller of the
    surprise against the long window and against the previous ``recent`` raw values (same floor,
    same shift; a restart restarts both). The recent window needs ``min(recent, min_rows)`` values;
    until then, the long surprise alone. A spike is surprising against both; a new level that has
    held for ``recent`` rows, or a random walk near where it just was, is not.

    Why on raw values and not z: the other steps judge a row against its expected value in typical
    errors, and both adapt (a rolling median follows a new level; a holiday-inflated typical error
    makes a blizzard day's near-empty taxi trips only 3-7 typical errors). A value far outside the
    range of the last few weeks is evidence of its own."""
    n = len(value)
    cuts = [] if restart is None else sorted({int(a) for a in np.asarray(restart).ravel() if 0 < a < n})
    edges = [0, *cuts, n]
    parts = [
        _gated_surprise(value[lo:hi], window, min_rows, floor, recent)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return np.concatenate(parts) if parts else np.full(0, np.nan)


def _gated_surprise(value: np.ndarray, window: int, min_rows: int, floor: float, recent: int) -> np.ndarray:
    """The long window's surprise, or (``recent`` > 0) its minimum with the recent window's where
    both are known; NaN wherever the long one is."""
    long = _gaussian_surprise(value, window, min_rows, floor)
    if not recent:
        return long
    short = _gaussian_surprise(value, recent, min(recent, min_rows), floor)
    both = np.isfinite(long) & np.isfinite(short)
    return np.where(both, np.minimum(long, short), long)


def _gaussian_surprise(value: np.ndarray, window: int, min_rows: int, floor: float) -> np.ndarray:
    """:func:`windowed_gaussian` on one stretch of rows that shares its window (no restart inside)."""
    past = pd.Series(value).shift(1).rolling(window, min_periods=min_rows)
    mean, std = past.mean().to_numpy(), past.std().to_numpy()
    typical = pd.Series(np.abs(value)).shift(1).rolling(window, min_periods=min_rows).mean().to_numpy()
    std = np.maximum(std, floor * typical)
    known = np.isfinite(value) & np.isfinite(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(value - mean) / std
    z = np.where(known, np.nan_to_num(z, nan=0.0, posinf=1e6), np.nan)  # 0/0: a flat past, no change
    return -(log_ndtr(-np.minimum(z, 1e6)) + np.log(2.0))


def onsets(fired: np.ndarray) -> np.ndarray:
    """Rows that fire while the row before did not (where an alarm episode starts)."""
    fired = np.asarray(fired, dtype=bool)
    return np.flatnonzero(fired & ~np.r_[False, fired[:-1]])


def calendar_mask(ts: np.ndarray | None, rules: RuleSet) -> np.ndarray | None:
    """True on rows whose day is in the rule set's calendar (None when there is no calendar)."""
    if ts is None or not rules.calendar.days or not len(ts):
        return None
    days = pd.to_datetime(ts).normalize()
    known = calendar_days(rules.calendar, days.min(), days.max())
    return np.asarray(days.isin(known)) if len(known) else None


def budget_risk(
    ts: np.ndarray | None,
    rules: RuleSet,
    idle: frozenset[str] = frozenset(),
    armed: np.ndarray | None = None,
) -> float | np.ndarray:
    """Each ``bound: tail`` step's share of the false-alarm budget, per row. Steps on an ``idle``
    input (``count_deficit`` on a series that is not small counts) cannot alarm on this series and
    take no share. With ``armed`` (per row, how many tail steps are armed there: ``share: armed``)
    the budget is split among those, one risk per row."""
    tails = sum(s.share for s in rules.steps if s.bound == "tail" and s.input not in idle)
    if not tails:
        return 0.0
    b = rules.budget
    rows = float(b.min_rows)
    if ts is not None:
        rows = max(rows, calibrate.rows_per(pd.Timedelta(b.per).value, ts))
    if armed is not None:
        return np.minimum(b.alarms / rows / np.maximum(armed, 1), 0.5)
    return min(b.alarms / rows / tails, 0.5)


def armed_steps(rules: RuleSet, inputs: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Per row, how many ``bound: tail`` steps are armed there: their input has had at least their
    ``min_history`` finite values on earlier rows (the past alone says so). A step whose input is
    only made inside the step (a re-anchored or gated Gaussian) counts as armed throughout."""
    armed = np.zeros(n)
    for s in rules.steps:
        if s.bound != "tail":
            continue
        x = inputs.get(f"{s.input}:{s.length}" if s.input in WINDOWED_INPUTS else s.input)
        if x is None:
            armed += s.share
            continue
        seen = np.concatenate([[0], np.cumsum(np.isfinite(x))[:-1]])  # finite values before each row
        armed += (seen >= s.min_history) * s.share
    return armed


def _point_step(rules: RuleSet) -> Step | None:
    """The step on each row's own z (no transform): its threshold is the band a point must leave."""
    return next(
        (s for s in rules.steps if s.input == "z" and s.transform is None and s.detector in BOUND_DETECTORS),
        None,
    )


def seen_a_cycle(ts: np.ndarray | None, rules: RuleSet, since: int = 0) -> int:
    """The first row by which the series, from row ``since`` on, spans its longest season (``since``
    without time or seasons). Before it, no young or borrowed threshold judges a row: an hourly
    series' first weekend would be judged against weekdays only."""
    if ts is None or not rules.expected.seasons:
        return since
    if since >= len(ts):
        return len(ts)
    period = max(pd.Timedelta(s).value for s in rules.expected.seasons)
    part = ts[since:]
    spanned = np.flatnonzero(part - np.minimum.accumulate(part) >= period)
    return since + int(spanned[0]) if len(spanned) else len(ts)


def evaluate(
    x: np.ndarray, ts: np.ndarray | None, rules: RuleSet, thin: np.ndarray | None = None
) -> Evaluation:
    """Expected value, band, score and fired flags per row (see the module docstring).

    ``thin`` (optional, per row): rows with too little volume behind them to judge (a ratio over one
    order), missing in ``x``; like rows expected to be too small, they count as on their expected
    value inside windows instead of leaving every window that holds one without an opinion.

    With a ``young`` key, a row where a step has no threshold of its own yet is judged by that step
    of :meth:`RuleSet.young_rules` (shorter floors), evaluated on the rows up to the last such row;
    the young evaluation never teaches this one, so every row where all steps are armed is judged
    exactly as without the key. Young rows are judged only once the series spans its longest
    season (:func:`seen_a_cycle`)."""
    ev = _evaluate(x, ts, rules, thin)
    young = rules.young_rules()
    if young is None:
        return ev
    cycle = seen_a_cycle(ts, rules)
    # a step idle on this series (the outage step where the values are not small counts) stays idle
    kept = [s.name for s in rules.steps if s.name not in rules.young.except_ and s.name not in ev.idle]
    first = {k: int(np.argmax(ev.armed_by[k])) if ev.armed_by[k].any() else len(x) for k in kept}
    cut = max(first.values(), default=0)
    if cut <= cycle:
        return ev
    yv = _evaluate(x[:cut], None if ts is None else ts[:cut], young, None if thin is None else thin[:cut])
    ratios = {k: v.copy() for k, v in ev.ratios.items()}
    fired = {k: v.copy() for k, v in ev.fired_by.items()}
    armed = {k: v.copy() for k, v in ev.armed_by.items()}
    point = _point_step(rules)
    head = np.zeros(len(x), dtype=bool)  # rows shown with the young expected value and band
    head[:cut] = np.isnan(ev.expected[:cut])  # the rule set has none of its own yet
    for k in kept:
        # before the step's own first threshold only, and once the step's own input has values over
        # a whole longest season: a first Monday judged against a past of weekdays and one weekend
        # (a 72-row mean of errors that began on a Thursday) would look like a surge
        take = slice(min(max(cycle, seen_a_cycle(ts, rules, yv.started[k])), first[k]), first[k])
        ratios[k][take] = yv.ratios[k][take]
        fired[k][take] = yv.fired_by[k][take]
        armed[k][take] = yv.armed_by[k][take]
        if point is not None and k == point.name:
            # a point is judged against the young expected value and threshold here: show that band,
            # not the rule set's own expected value with a band of 3 typical errors
            head[take] = True
    any_fired, score, closest, rule = _aggregate(ratios, fired, rules.aggregate, len(x))

    def young_where_none(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
        return np.where(head, np.concatenate([theirs, mine[cut:]]), mine)

    return Evaluation(
        expected=young_where_none(ev.expected, yv.expected),
        lower=young_where_none(ev.lower, yv.lower),
        upper=young_where_none(ev.upper, yv.upper),
        score=score,
        fired=any_fired,
        rule=rule,
        step=closest,
        source=young_where_none(ev.source, yv.source),
        ratios=ratios,
        fired_by=fired,
        armed_by=armed,
        idle=ev.idle,
    )


def _aggregate(
    ratios: dict[str, np.ndarray], fired: dict[str, np.ndarray], aggregate: str, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(any alarm, score, the step that came closest, the step that fired or "") per row, from
    each step's ratio and alarms (in the rule set's order: ties in the score go to the first)."""
    frame = pd.DataFrame(fired, index=_as_adtk(np.zeros(n)).index)
    agg = getattr(adtk_aggregator, aggregate)()
    any_fired = agg.aggregate(frame).astype(float).fillna(0.0).to_numpy() > 0
    names = list(ratios)
    stacked = np.vstack([ratios[k] for k in names])
    score = stacked.min(axis=0) if aggregate == "AndAggregator" else stacked.max(axis=0)
    closest = np.array(names, dtype=object)[stacked.argmax(axis=0)]
    return any_fired, score, closest, np.where(any_fired, closest, "")


def _evaluate(
    x: np.ndarray, ts: np.ndarray | None, rules: RuleSet, thin: np.ndarray | None = None
) -> Evaluation:
    """:func:`evaluate` for the rule set itself (its own floors only)."""
    exclude = calendar_mask(ts, rules)
    base = baseline.fit(x, ts, rules.expected, exclude=exclude)
    small = base.small if thin is None else thin if base.small is None else base.small | thin
    borrow_from = seen_a_cycle(ts, rules) if rules.budget.borrow else None
    residual = x - base.expected
    with np.errstate(divide="ignore", invalid="ignore"):
        z = residual / base.scale
    if small is not None:  # too few expected events (or too little volume) to judge a row on its own
        z = np.where(small, np.nan, z)
    value = x
    if exclude is not None:  # a known event day is no evidence either way: windows skip it
        value, residual, z = (np.where(exclude, np.nan, v) for v in (x, residual, z))
    ready = np.where(
        np.isfinite(base.scale) & np.isfinite(residual), 1.0, np.nan
    )  # past min_rows, value known
    # the value in typical errors where the expectation is the rolling median (which follows a
    # level shift within a few rows, so z forgets it): a step compares its recent median with the
    # median before it. Seasonal expectations do not absorb a shift for cycles, z sees it there.
    with np.errstate(divide="ignore", invalid="ignore"):
        level_z = np.where((base.source == "level") & np.isfinite(z), value / base.scale, np.nan)
    counts = small_counts(x, rules.expected.min_rows)
    inputs = {
        "zero_run": zero_run(x)
        if any(s.input == "zero_run" for s in rules.steps)
        else np.full(len(x), np.nan),
        "value": value,
        "residual": residual,
        "z": z,
        "abs_z": np.abs(z),
        "ready": ready,
        "level_z": level_z,
        "count_deficit": count_deficit(x, base.expected, exclude) if counts else np.full(len(x), np.nan),
    }
    if small is not None:  # rows too small to judge on their own (not calendar rows: no evidence)
        inputs["small"] = small if exclude is None else small & ~exclude
    if thin is not None:  # ... and those of them with too little volume behind them (value missing)
        inputs["thin"] = thin if exclude is None else thin & ~exclude
    # raw values vs their window (steps with their own window, re-anchored or gated, compute theirs below)
    if any(s.input == "gauss" and not (s.reanchor or s.recent) for s in rules.steps):
        inputs["gauss"] = windowed_gaussian(
            value, GAUSS_WINDOW, rules.expected.min_rows, rules.expected.floor
        )
    # the run of the last rows as one count against its expected total (``count_run``)
    inputs["count_value"] = np.where(np.isfinite(inputs["count_deficit"]), x, np.nan)
    inputs["count_expected"] = np.where(np.isfinite(inputs["count_deficit"]), base.expected, np.nan)
    inputs["count_run"] = inputs["count_deficit"]  # which rows can be judged

    ratios, fired, armed_by, started, band_z = {}, {}, {}, {}, np.full(len(x), 3.0)
    point_step = _point_step(rules)
    for inp, length in {(s.input, s.length) for s in rules.steps if s.input in WINDOWED_INPUTS}:
        lim = (rules.expected.min_rows, rules.expected.floor)
        inputs[f"{inp}:{length}"] = (
            left_discord(value, length, DISCORD_WINDOW, *lim)
            if inp == "discord"
            else novelty(value, length, NOVELTY_WINDOW, *lim, centred=inp == "novelty_centred")
        )
    idle = frozenset() if counts else frozenset({"count_deficit", "count_run"})
    armed = armed_steps(rules, inputs, len(x)) if rules.budget.share == "armed" else None
    risk = budget_risk(ts, rules, idle, armed)
    # steps whose gauss window restarts at other steps' alarm onsets run after every other step
    # (rules.py forbids a reanchor on a gauss step, so those are all decided first: causal, no cycle)
    for step in sorted(rules.steps, key=lambda s: bool(s.reanchor)):
        step_inputs = inputs
        if step.input in WINDOWED_INPUTS:  # its own subsequence length
            step_inputs = {**inputs, step.input: inputs[f"{step.input}:{step.length}"]}
        elif step.input == "gauss" and (step.reanchor or step.recent):  # this step's own gauss input
            restart = (
                np.concatenate([onsets(fired[name]) for name in step.reanchor]) if step.reanchor else None
            )
            gauss = windowed_gaussian(
                value,
                GAUSS_WINDOW,
                rules.expected.min_rows,
                rules.expected.floor,
                restart=restart,
                recent=step.recent,
            )
            step_inputs = {**inputs, "gauss": gauss}
        r, f, bound, started[step.name] = _run_step(
            step,
            step_inputs,
            exclude,
            base.typical,
            risk * step.share,
            base.source,
            borrow_from,
            rules.budget.fit_when_ready,
        )
        ratios[step.name], fired[step.name] = r, f
        if step.detector in BOUND_DETECTORS:
            armed_by[step.name] = np.isfinite(bound)
        else:  # refit every `every` rows once the first fit has its past rows
            armed_by[step.name] = np.arange(len(x)) >= max(step.every, _MIN_BOUND_ROWS)
        if step is point_step:  # the band is what a single point must leave to fire
            band_z = np.where(np.isnan(bound), max(step.min, 3.0), bound)
    order = [s.name for s in rules.steps]  # back in the rule set's order (ties in the score go first)
    ratios = {k: ratios[k] for k in order}
    fired = {k: fired[k] for k in order}
    armed_by = {k: armed_by[k] for k in order}
    any_fired, score, closest, rule = _aggregate(ratios, fired, rules.aggregate, len(x))

    width = band_z * base.scale
    lower = base.expected - width
    # revenue, orders, a count: while nothing so far was negative, neither is the usual range
    never_negative = pd.Series(x).cummin().ffill().fillna(0.0).to_numpy() >= 0  # a gap keeps what came before
    lower = np.where(never_negative, np.maximum(lower, 0.0), lower)
    return Evaluation(
        expected=base.expected,
        lower=lower,
        upper=base.expected + width,
        score=score,
        fired=any_fired,
        rule=rule,
        step=closest,
        source=base.source,
        ratios=ratios,
        fired_by=fired,
        armed_by=armed_by,
        idle=frozenset(s.name for s in rules.steps if s.input in idle),
        started=started,
    )
