"""The keep/reject protocol for a change to the ``default`` rule set (issue 15).

The dev split is only a proxy for unseen series, so a change is kept only if:

(a) both held-out halves of the dev split score at least as well as before (:func:`halves`: the
    series of each category, sorted by name, alternately into A and B; nothing is fitted, so both
    are held out, and the point is whether a change helps in both, not on average);
(b) the synthetic families with no anomaly at all (:mod:`kpi_lib.anomaly.families`, seeds 0-95
    since the twelfth pass: 672 series) raise no more false alarms than before;
(c) it stays causal (:func:`causal_violations`: a series cut short gives the same alarms on the
    rows it keeps).

``benchmarks/bench_anomaly.py --candidate RULES`` measures a candidate rule set against ``default``
in one run and prints :func:`verdict`'s answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd


def halves(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split ``category/name`` keys into halves A and B: within each category, sorted by name,
    alternately A, B, A, ... (every category lands in both halves)."""
    by_cat: dict[str, list[str]] = {}
    for k in sorted(keys):
        by_cat.setdefault(k.split("/")[0], []).append(k)
    a: list[str] = []
    b: list[str] = []
    for names in by_cat.values():
        for i, k in enumerate(names):
            (a if i % 2 == 0 else b).append(k)
    return a, b


def causal_violations(
    series: pd.Series,
    alarms: Callable[[pd.Series], np.ndarray],
    cuts: Iterable[float] = (0.3, 0.6, 0.9),
) -> list[float]:
    """The cut fractions at which ``alarms`` (series -> 0/1 per row) gives different alarms on
    the kept rows of the series cut there than on the whole series (empty = causal here)."""
    full = np.asarray(alarms(series), dtype=float)
    bad = []
    for c in cuts:
        n = int(c * len(series))
        if n < 1:
            continue
        part = np.asarray(alarms(series.iloc[:n]), dtype=float)
        if not np.array_equal(part, full[:n]):
            bad.append(c)
    return bad


@dataclass(frozen=True)
class Figures:
    """What the protocol compares, for one rule set, measured in one run."""

    nab: float  # NAB standard on the whole dev split (reported, not a criterion)
    half_a: float  # NAB standard on half A
    half_b: float  # NAB standard on half B
    no_anomaly_false_alarms: int  # false alarms over the no-anomaly families (all seeds)
    causal_violations: int


def verdict(base: Figures, candidate: Figures) -> tuple[bool, list[str]]:
    """(keep, reasons to reject): keep only if both halves hold or improve, the no-anomaly
    families raise no more false alarms, and nothing looks ahead."""
    why = []
    for name, was, now in (
        ("half A", base.half_a, candidate.half_a),
        ("half B", base.half_b, candidate.half_b),
    ):
        if now < was:
            why.append(f"{name} {was:.2f} -> {now:.2f}")
    if candidate.no_anomaly_false_alarms > base.no_anomaly_false_alarms:
        why.append(
            f"no-anomaly false alarms {base.no_anomaly_false_alarms} -> {candidate.no_anomaly_false_alarms}"
        )
    if candidate.causal_violations:
        why.append(f"{candidate.causal_violations} causal violation(s)")
    return not why, why
