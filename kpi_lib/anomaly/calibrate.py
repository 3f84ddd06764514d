"""Alarm thresholds calibrated on each series' own past, for a false-alarm budget.

A step's feature (|z|, a rolling mean of z, ...) alarms beyond the value that this series' own
past feature values exceed with probability ``risk`` per row, where ``risk`` comes from the rule
set's budget (e.g. one false alarm per week at the series' own sampling interval, see
:class:`kpi_lib.anomaly.rules.Budget`). Such rare quantiles (1 in 6,000 rows) cannot be read off a
few thousand past rows, so the tail is extrapolated with extreme value theory, as in SPOT (Siffer et
al., KDD 2017, "Anomaly detection in streams with extreme value theory"):

* ``u`` = the ``level`` quantile of the past values (ADTK's ``QuantileAD(high=level)`` bound), with
  at least ``MIN_EXCESSES`` values above it;
* the excesses over ``u`` are fitted with a generalised Pareto distribution (method of moments,
  shape clipped to [0, 0.5]: at least an exponential tail, so light tails are extrapolated
  conservatively, and heavy tails such as bursty counts get a threshold far out);
* the scale is widened by one standard error of its estimate (``1 / sqrt(independent excesses)``),
  so a short history, or a rolling mean whose values repeat each other, gets a cautious threshold:
  this is the warm-up, measured rather than fixed;
* the budget counts alarms, not rows: rows above a high level come in episodes (a 72-row mean stays
  up for dozens of rows, and an incident opens once), so the per-row risk is divided by the series'
  own extremal index at ``u`` (episodes per row above ``u``, the runs estimator), which makes "one
  false alarm a week" mean about one alarm a week rather than one row a week;
* threshold = ``u + sigma / xi * ((p_u / risk) ** xi - 1)`` (``u + sigma * ln(p_u / risk)`` for
  ``xi = 0``), ``p_u`` the fraction of past values above ``u``.

Causal and online: the threshold of a block of rows is fitted on earlier rows only (block edges
depend on row numbers only, so cutting a series never changes an earlier block's threshold). A row
that exceeded its threshold teaches later fits only its threshold (it is winsorised), so an incident
does not teach the series that incidents are normal (SPOT leaves such rows out; capping them keeps
the count of tail rows honest, which matters for heavy-tailed series whose normal bursts do cross).
When more than ``MAX_EXCLUDED`` of the recent rows crossed, the threshold is what is wrong and rows
teach in full again.
"""

from __future__ import annotations

import math

import numpy as np

#: smallest number of excesses over ``u`` worth fitting a tail to
MIN_EXCESSES = 8
#: at most this share of the past may be set aside as alarms: a series that "alarms" more often
#: than that is not having incidents, its threshold is wrong, and it must learn from those rows
MAX_EXCLUDED = 0.005
#: the shape is clipped to [0, XI_MAX]: at least an exponential tail, at most a tail index of 2
XI_MAX = 0.5
#: refit at most every this many rows once the history is long (the tail moves slowly by then)
MAX_BLOCK = 256


def extremal_index(past: np.ndarray, u: float) -> float:
    """Runs estimate of the extremal index at level ``u``: alarm episodes per row above ``u``
    (1 = exceedances come alone; 1/10 = in clusters of ten rows, as a rolling mean's do)."""
    above = past > u
    rows = int(above.sum())
    if rows == 0:
        return 1.0
    episodes = int((above & ~np.r_[False, above[:-1]]).sum())
    return episodes / rows


def tail_threshold(past: np.ndarray, risk: float, level: float = 0.98, span: int = 1) -> float:
    """The value whose exceedances *begin* with probability ``risk`` per row (one alarm per episode
    above it), extrapolated from ``past`` (finite values, in time order). NaN when there are too few
    values to say. ``span``: how many rows each value averages
    (a rolling mean repeats itself), which makes its history worth fewer independent values."""
    n = len(past)
    if n < MIN_EXCESSES * 2 or not (0 < risk < 1):
        return math.nan
    m = max(MIN_EXCESSES, int(math.ceil((1.0 - level) * n)))  # values above u
    if risk * n >= m:  # the budget is not even in the tail: read it off the data
        return float(np.quantile(past, 1.0 - risk))
    part = np.partition(past, n - m - 1)
    u = float(part[n - m - 1])
    # the budget counts alarms, and rows above a threshold come in episodes (a rolling mean stays
    # up for many rows; an incident opens once): per row, the budget is alarms x rows per episode
    risk = risk / extremal_index(past, u)
    if risk * n >= m:
        return float(np.quantile(past, 1.0 - min(risk, 0.5)))
    y = part[n - m :] - u
    y = y[y > 0]
    if len(y) < 2:  # (almost) constant past: nothing beyond u has ever happened
        return u
    p_u = len(y) / n
    mean = float(y.mean())
    var = float(y.var(ddof=1))
    if var <= 0:
        xi, sigma = 0.0, mean
    else:  # generalised Pareto by the method of moments
        r = mean * mean / var
        xi = min(max(0.5 * (1.0 - r), 0.0), XI_MAX)
        sigma = 0.5 * mean * (r + 1.0) if xi > 0 else mean
    # the fit is only as good as its number of independent excesses: widen the scale by one
    # standard error of its estimate, so a short or repetitive history gives a more cautious bound
    sigma *= 1.0 + 1.0 / math.sqrt(max(len(y) / max(span, 1), 1.0))
    t = p_u / risk
    if xi < 1e-6:
        return u + sigma * math.log(t)
    return u + sigma / xi * (t**xi - 1.0)


def online_threshold(
    feature: np.ndarray,
    risk: float | np.ndarray,
    *,
    history: int,
    min_history: int,
    level: float = 0.98,
    every: int = 32,
    exclude: np.ndarray | None = None,
    floor: float = 0.0,
    group: np.ndarray | None = None,
    span: int = 1,
    borrow_from: int | None = None,
    fit_when_ready: bool = False,
) -> np.ndarray:
    """Per row, the budget threshold fitted on earlier rows (NaN until ``min_history`` values).
    ``risk`` is per row or one for all rows; a refit block takes the risk of its first row.

    ``feature`` must be non-negative where finite (sided). The threshold is at least ``floor``.
    With ``group`` (e.g. which expectation each row used), a row's threshold is fitted on earlier
    rows of its own group only. Rows in ``exclude`` (calendar days) never teach later fits, nor do
    rows above their own threshold (unless more than ``MAX_EXCLUDED`` of the recent past already
    were: then the threshold is what is wrong). Blocks are refit every ``every`` rows, growing to
    ``MAX_BLOCK`` as the history grows; block edges depend on row numbers only (causal).
    ``borrow_from``: from this row on, a group with fewer than ``min_history`` past values of its
    own takes the threshold fitted on every group's past, instead of none. ``fit_when_ready``: one
    more block edge, on the first row with ``min_history`` learnable values before it, so the first
    threshold does not wait for the next regular edge (which stay where they were).
    """
    n = len(feature)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    learn = np.isfinite(feature)
    if exclude is not None:
        learn &= ~exclude
    fired = np.zeros(n, dtype=bool)  # rows set aside because they exceeded their threshold
    taught = feature.copy()  # what each row teaches later fits (alarms are capped at their bound)
    for start, end in _blocks(n, every, history, _ready_row(learn, min_history) if fit_when_ready else None):
        lo = max(0, start - history)
        learning = fired[lo:start].sum() < MAX_EXCLUDED * (start - lo)
        # one threshold per group among this block's rows, each from that group's own past: a
        # block spans up to MAX_BLOCK rows, and the expectation a row uses can change inside it
        for rows, g in _rows_by_group(group, start, end):
            keep = learn[lo:start]
            if group is not None:
                keep = keep & (group[lo:start] == g)
            past = taught[lo:start][keep]
            if (
                borrow_from is not None
                and start >= borrow_from
                and group is not None
                and len(past) < min_history
            ):
                past = taught[lo:start][learn[lo:start]]  # every expectation's past, pooled
            r = float(risk[start]) if np.ndim(risk) else risk
            t = tail_threshold(past, r, level, span) if len(past) >= min_history else math.nan
            if not math.isfinite(t):
                continue
            t = max(t, floor)
            out[rows] = t
            if learning:
                with np.errstate(invalid="ignore"):
                    over = feature[rows] > t
                fired[rows] = over
                taught[rows] = np.where(over, t, taught[rows])
    return out


def _blocks(n: int, every: int, history: int, extra: int | None = None) -> list[tuple[int, int]]:
    """The refit blocks (start, end) over rows 0..n-1: edges every ``every`` rows, growing with the
    history to ``MAX_BLOCK``; they depend on row numbers only (cutting a series keeps every earlier
    edge). ``extra``: one more edge there (see ``fit_when_ready``)."""
    edges = []
    start = every
    while start < n:
        edges.append(start)
        start += min(MAX_BLOCK, max(every, (start - max(0, start - history)) // 32))
    if extra is not None and 0 < extra < n and extra not in edges:
        edges = sorted([*edges, extra])
    return list(zip(edges, [*edges[1:], n], strict=False))  # no edge: no block (n is dropped)


def _ready_row(learn: np.ndarray, min_history: int) -> int | None:
    """The first row with ``min_history`` learnable values before it (None: no such row)."""
    seen = np.flatnonzero(learn)
    return int(seen[min_history - 1]) + 1 if min_history >= 1 and len(seen) >= min_history else None


def _rows_by_group(group: np.ndarray | None, start: int, end: int) -> list[tuple[slice | np.ndarray, object]]:
    """Rows start..end-1 split by their group, with the group (one slice when they share one)."""
    if group is None:
        return [(slice(start, end), None)]
    block = group[start:end]
    if (block == block[0]).all():  # the usual case: one expectation for the whole block
        return [(slice(start, end), block[0])]
    return [(np.flatnonzero(block == g) + start, g) for g in dict.fromkeys(block.tolist())]


def rows_per(period_ns: int, ts: np.ndarray) -> float:
    """How many rows a period spans at this series' own sampling interval (median time step)."""
    d = np.diff(ts) if len(ts) > 2 else np.array([], dtype=np.int64)
    d = d[d > 0]
    if not len(d):
        return 1.0
    return max(period_ns / float(np.median(d)), 1.0)
