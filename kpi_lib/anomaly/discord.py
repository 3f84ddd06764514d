"""Shape novelty: the left matrix-profile discord (Yeh et al. 2016; causal form as in DAMP, Lu et
al. 2022).

Row t's value is how unlike anything the series did before the last ``length`` rows are: the
distance from the subsequence ending at t to its nearest neighbour among the subsequences that end
between ``t - window`` and ``t - length`` (no overlap with it). Each subsequence is z-normalised, so
the question is about shape, at any scale: a spike, a flat line, a lost rhythm is new; a level that
moved is new only at the move, and an AR(1) or a random walk keeps repeating its own wiggles.

Blocked matrix products (BLAS) over a banded window: 20,000 rows x 6,400 neighbours x 12 pieces
take about a tenth of a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PIECES = 12  # a longer subsequence is compared by this many piecewise means (PAA)
_FAR = np.float32(1e30)  # "no neighbour": finite, so a product never meets inf x 0
_BLOCK = 256  # target rows per matrix product (a block of distances stays in cache)


def left_discord(
    value: np.ndarray,
    length: int,
    window: int,
    min_rows: int,
    floor: float,
    raw: bool = False,
    centred: bool = False,
) -> np.ndarray:
    """Per row, the z-normalised distance (per piece, so 0 to about 2) from the ``length``-row
    subsequence ending there to its nearest earlier one (see the module docstring). ``raw``: the
    subsequences as they are, level and amplitude included (in units of the first rows' mean
    deviation; ``centred``: each less its own mean, so amplitude and shape). NaN until
    ``min_rows`` earlier subsequences exist, and where a value in the subsequence is missing.
    A subsequence's standard deviation is at least ``floor`` x its mean |value|, so a nearly flat
    stretch is not its noise blown up to full scale. Causal: row t reads rows ``t - window - length``
    to t only."""
    x = np.asarray(value, dtype=float)
    n, m = len(x), int(length)
    out = np.full(n, np.nan)
    if n < m + 1:
        return out

    subs = n - m + 1  # subsequence j holds rows j .. j + m - 1
    valid = _rolling(np.isnan(x).astype(float), m, "sum")[m - 1 :] == 0
    mean = _rolling(x, m, "mean")[m - 1 :]
    sd = np.maximum(_rolling(x, m, "std")[m - 1 :], floor * _rolling(np.abs(x), m, "mean")[m - 1 :])
    k = min(PIECES, m)  # piecewise aggregate means of near-equal pieces (k = m: the values themselves)
    edges = np.append((np.arange(k) * m) // k, m)
    # the z-normalised piece means, one column at a time: memory grows with rows x pieces, not x m
    z = np.zeros((subs, k))
    means = {}
    for p in range(k):
        size = int(edges[p + 1] - edges[p])
        if size not in means:
            means[size] = _rolling(x, size, "mean")
        end = edges[p + 1] - 1  # the piece's last row, from the subsequence's first
        z[:, p] = means[size][end : end + subs]
    if raw:
        # one centre and unit per series, from its first rows (distances only scale, and the
        # threshold is the series' own), so float32 keeps its digits on large values (bytes, 1e8)
        head = x[: max(min_rows, 1)]
        head = head[np.isfinite(head)]
        centre = float(np.median(head)) if len(head) else 0.0
        unit = float(np.mean(np.abs(head - centre))) if len(head) else 0.0
        unit = unit if unit > 0 else max(abs(centre), 1.0)
        shift = mean[:, None] if centred else centre
        z = np.where(valid[:, None], (z - shift) / unit, 0.0)
    else:
        z = np.divide(
            z - mean[:, None], sd[:, None], out=np.zeros_like(z), where=(sd > 0)[:, None] & valid[:, None]
        )
    z = z.astype(np.float32)  # half the memory traffic of the products; distances to ~1e-4
    sq = np.einsum("ij,ij->i", z, z)
    # |c - t|^2 = |c|^2 - 2 c.t + |t|^2, the first two terms as one product: [c, |c|^2] . [-2t, 1]
    past = np.hstack([z, np.where(valid, sq, _FAR)[:, None]])  # a subsequence with a gap: nobody's neighbour
    now = np.hstack([-2.0 * z, np.ones((len(z), 1), np.float32)])
    # every block a full one (padded past the last row): a product's rounding depends on its shape,
    # and a row's distance must not change when later rows arrive (float32 on a level far from the
    # first rows' loses digits to |c|^2 - 2 c.t + |t|^2)
    pad = np.zeros((_BLOCK, k + 1), np.float32)
    past = np.vstack([past, pad + np.append(np.zeros(k, np.float32), _FAR)])
    now = np.vstack([now, pad])

    count = np.concatenate([[0], np.cumsum(valid)])  # earlier valid subsequences, by prefix sums
    best = np.full(subs + _BLOCK, np.inf)
    sq = np.append(sq, np.zeros(_BLOCK, np.float32))
    for j0 in range(m, subs, _BLOCK):
        j1 = j0 + _BLOCK
        c0, c1 = max(0, j0 - window), j1 - m  # every candidate of any target in the block
        d = past[c0:c1] @ now[j0:j1].T  # (candidates, targets)
        rows = np.arange(j0, j1)[None, :]
        # only the band's two edges hold candidates some targets of the block may not use
        lo = min(c1, max(c0, j1 - 1 - window))  # below: too old for some targets
        hi = max(c0, j0 - m + 1)  # from here: too recent for some targets
        d[: lo - c0][np.arange(c0, lo)[:, None] < rows - window] = _FAR
        d[hi - c0 :][np.arange(hi, c1)[:, None] > rows - m] = _FAR
        best[j0:j1] = d.min(axis=0) + sq[j0:j1]
    best = best[:subs]
    best[best >= _FAR / 2] = np.inf
    j = np.arange(subs)
    earlier = count[np.maximum(j - m + 1, 0)] - count[np.maximum(j - window, 0)]
    dist = np.sqrt(np.maximum(best, 0.0) / k)
    dist[~valid | (earlier < min_rows) | ~np.isfinite(best)] = np.nan
    out[m - 1 :] = dist
    return out


def _rolling(x: np.ndarray, size: int, how: str) -> np.ndarray:
    """Trailing ``size``-row mean / sum / population std at each row (NaN where a value inside is
    missing, or fewer than ``size`` rows so far); pandas' rolling sums are compensated, so a large
    level does not swamp a small spread."""
    r = pd.Series(x).rolling(size, min_periods=size)
    return (r.std(ddof=0) if how == "std" else getattr(r, how)()).to_numpy()
