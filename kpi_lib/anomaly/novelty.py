"""Raw novelty: how far the last ``length`` rows, as they are (level and amplitude included), lie
from anything the series did before. ARTime-like prototype novelty (Hao et al.'s NAB entry), as
the left matrix-profile distance of :func:`discord.left_discord` with ``raw=True``.

A new level is news for a series that returns to its level, and routine for one that wanders: a
random walk reaches new levels by itself, one ordinary move at a time. So the level's novelty is
guarded as far as the series' own past wanders (:func:`wander`, from the rows before the stretch
judged): there a stretch counts as new only as far as its moves (first differences) are new too.
Each novelty is taken as a multiple of its own past median, so the two compare in their own units.

All causal: row t reads rows up to t only.
"""

from __future__ import annotations

import numpy as np

from kpi_lib.anomaly.discord import left_discord

#: the horizon (rows) at which a series' spread is compared with its moves': a day at 5 minutes
WANDER_LAG = 288
#: a wander below this is none (a row's guard weight is 0), so a series that never wanders this much
#: is not charged for the moves' novelty
MIN_WANDER = 0.01


def wander(value: np.ndarray, lag: int = WANDER_LAG) -> np.ndarray:
    """Per row, from the rows up to it: ``var(x[t] - x[t - lag]) / (lag var(x[t] - x[t - 1]))``,
    clipped to [0, 1]. A random walk's spread grows with the horizon: about 1. A series that returns
    to its level within ``lag`` rows: about ``2 var(x) / (lag var(moves))``, near 0 (a day of
    5-minute noise: 1/288). NaN until each variance has ``2 lag`` differences."""
    x = np.asarray(value, dtype=float)
    ok = np.isfinite(x)
    first = x[ok][0] if ok.any() else 0.0
    x = x - first  # sums of squares keep their digits on a large level

    def running_var(d: np.ndarray) -> np.ndarray:
        ok = np.isfinite(d)
        n = np.cumsum(ok)
        d0 = np.where(ok, d, 0.0)
        s1, s2 = np.cumsum(d0), np.cumsum(d0 * d0)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = s2 / n - (s1 / n) ** 2
        v[n < 2 * lag] = np.nan
        return v

    moves = np.full(len(x), np.nan)
    moves[1:] = np.diff(x)
    spread = np.full(len(x), np.nan)
    spread[lag:] = x[lag:] - x[:-lag]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(running_var(spread) / (lag * running_var(moves)), 0.0, 1.0)


def past_median(x: np.ndarray) -> np.ndarray:
    """Per row, the median of the finite values before it, refit every 32 rows (every 256 once the
    past is long): NaN until there is one."""
    out = np.full(len(x), np.nan)
    ok = np.isfinite(x)
    start = 32
    while start < len(x):
        stop = min(len(x), start + min(256, max(32, start // 8)))
        past = x[:start][ok[:start]]
        if len(past):
            out[start:stop] = np.median(past)
        start = stop
    return out


def novelty(
    value: np.ndarray, length: int, window: int, min_rows: int, floor: float, centred: bool = False
) -> np.ndarray:
    """Per row, the raw novelty of the last ``length`` rows (``centred``: each stretch less its own
    mean, so amplitude and shape, not level), guarded where the series wanders (module docstring)."""
    v = np.asarray(value, dtype=float)
    level = left_discord(v, length, window, min_rows, floor, raw=True, centred=centred)
    w = np.full(len(v), np.nan)
    w[length:] = wander(v)[:-length]  # from the rows before the stretch: its own move would count
    w = np.where(w >= MIN_WANDER, w, 0.0)  # NaN too: too short a past to say
    if not w.any():
        return level
    moves = np.full(len(v), np.nan)
    moves[1:] = np.diff(v)
    moved = left_discord(moves, length, window, min_rows, floor, raw=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (moved / past_median(moved)) / (level / past_median(level))
    # a median of 0 (runs of exact repeats, such as zero counts) says nothing: no guard there
    guard = np.where(np.isfinite(ratio), np.minimum(1.0, ratio), 1.0)
    return level * ((1 - w) + w * guard)
