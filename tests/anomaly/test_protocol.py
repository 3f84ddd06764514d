"""The keep/reject protocol: held-out halves, the causal check, the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpi_lib.anomaly import detect
from kpi_lib.anomaly.protocol import Figures, causal_violations, halves, verdict


def test_halves_alternate_within_each_category():
    keys = ["b/y.csv", "a/3.csv", "a/1.csv", "b/x.csv", "a/2.csv", "c/only.csv"]
    a, b = halves(keys)
    assert a == ["a/1.csv", "a/3.csv", "b/x.csv", "c/only.csv"]
    assert b == ["a/2.csv", "b/y.csv"]
    assert sorted(a + b) == sorted(keys)


def _series(n: int = 3000) -> pd.Series:
    rng = np.random.default_rng(3)
    v = 100 + rng.normal(0, 2, n)
    v[2200:2230] += 25
    return pd.Series(v, index=pd.date_range("2024-01-01", periods=n, freq="5min"))


def test_causal_check_passes_the_default_rules_and_catches_look_ahead():
    s = _series()
    assert causal_violations(s, lambda x: detect(x)["is_anomaly"].to_numpy()) == []

    def peeks(x: pd.Series) -> np.ndarray:  # judged against the mean of the whole series, future included
        return (x > x.mean() + 3 * x.std()).to_numpy().astype(int)

    # cut before the incident at row 2,200, the whole-series mean and spread differ: caught
    assert causal_violations(s, peeks) == [0.3, 0.6]


BASE = Figures(nab=59.78, half_a=64.95, half_b=54.41, no_anomaly_false_alarms=29, causal_violations=0)


def test_verdict_keeps_only_what_holds_on_both_halves_and_the_no_anomaly_families():
    assert verdict(BASE, BASE) == (True, [])
    better = Figures(nab=61.0, half_a=66.0, half_b=55.0, no_anomaly_false_alarms=27, causal_violations=0)
    assert verdict(BASE, better) == (True, [])

    one_half = Figures(nab=59.72, half_a=64.52, half_b=54.74, no_anomaly_false_alarms=25, causal_violations=0)
    keep, why = verdict(BASE, one_half)
    assert not keep and why == ["half A 64.95 -> 64.52"]

    noisier = Figures(nab=60.5, half_a=66.0, half_b=55.0, no_anomaly_false_alarms=30, causal_violations=0)
    keep, why = verdict(BASE, noisier)
    assert not keep and why == ["no-anomaly false alarms 29 -> 30"]

    peeking = Figures(nab=70.0, half_a=70.0, half_b=70.0, no_anomaly_false_alarms=0, causal_violations=1)
    assert verdict(BASE, peeking) == (False, ["1 causal violation(s)"])
