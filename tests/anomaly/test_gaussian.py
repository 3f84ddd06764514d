"""The windowed-Gaussian input (``input: gauss``, NAB's windowedGaussian idea, calibrated like the
other steps): how far outside the range of its previous rows a raw value is. Opt-in: the default
rule set does not use it (kpi_lib/anomaly/README.md, "Seventh pass")."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect
from kpi_lib.anomaly.engine import windowed_gaussian
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.anomaly.rules import load_rules

CANDIDATES = Path(__file__).resolve().parents[2] / "benchmarks" / "candidates"

GAUSSIAN_ONLY = {
    "extends": "default",
    "name": "gaussian_only",
    "steps": [
        {
            "name": "gaussian",
            "input": "gauss",
            "side": "positive",
            "transform": {"RollingAggregate": {"window": 6, "agg": "mean"}},
            "detector": {"QuantileAD": {"high": 0.98}},
            "bound": "tail",
            "min_history": 100,
        }
    ],
}


def test_windowed_gaussian_is_the_two_sided_tail_under_the_previous_rows():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 11.0, np.nan, 3.0])
    out = windowed_gaussian(x, window=5, min_rows=5, floor=0.01)
    assert np.isnan(out[:5]).all()  # fewer than 5 past values: no opinion
    m, s = 3.0, float(np.std([1, 2, 3, 4, 5], ddof=1))  # the previous 5 rows only, not row 5 itself
    p = math.erfc(abs(11.0 - m) / s / math.sqrt(2))  # P(|X - m| >= 8), X ~ Normal(m, s)
    assert out[5] == pytest.approx(-math.log(p))
    assert np.isnan(out[6])  # a missing value (or a calendar day): no opinion
    past = np.array([3.0, 4.0, 5.0, 11.0])  # the NaN row is skipped, the window keeps 4 values
    assert np.isnan(out[7])  # ... fewer than min_rows
    out = windowed_gaussian(x, window=5, min_rows=4, floor=0.01)
    z = abs(3.0 - past.mean()) / past.std(ddof=1)
    assert out[7] == pytest.approx(-math.log(math.erfc(z / math.sqrt(2))))


def test_a_flat_past_is_floored_not_infinitely_surprising():
    x = np.r_[np.full(20, 10.0), 10.0, 10.05, 30.0]
    out = windowed_gaussian(x, window=20, min_rows=20, floor=0.01)
    assert out[20] == pytest.approx(0.0)  # the same value again: no surprise
    assert 0 < out[21] < 2  # half the floor (0.01 x 10) away: P = 0.62
    assert np.isfinite(out[22]) and out[22] > 100  # 200 floors away: very surprising, but finite


def test_a_gaussian_step_alarms_on_a_run_outside_the_range_and_is_causal():
    rng = np.random.default_rng(3)
    n = 4000
    idx = pd.date_range("2024-01-01", periods=n, freq="5min")
    x = 50 + rng.normal(0, 2, n)
    x[3500:3512] -= 14  # an hour 7 sd below anything in the last 2 weeks
    s = pd.Series(x, idx, name="latency")
    out = detect(s, GAUSSIAN_ONLY)
    onsets = np.flatnonzero(out["is_anomaly"].to_numpy())
    assert any(3500 <= i <= 3506 for i in onsets)
    assert set(out["rule"].iloc[3500:3512]) >= {"gaussian"}
    assert len(onsets[(onsets < 3500) & (onsets >= 1000)]) <= 1  # about the budget over 10 days, not a flood
    assert not causal_violations(
        s, lambda v: detect(v, GAUSSIAN_ONLY)["is_anomaly"].to_numpy(), (0.6, 0.8, 0.876)
    )


def test_the_default_does_not_use_it_and_the_candidates_load():
    assert all(step.input != "gauss" for step in load_rules("default").steps)
    for path in sorted(CANDIDATES.glob("default_gaussian*.yml")):
        rules = load_rules(path)
        assert any(step.input == "gauss" for step in rules.steps), path.name
