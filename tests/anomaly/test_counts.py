"""Small counts (a shop's hourly orders): a run of zeros at the daily peak is an outage, judged by its
Poisson tail probability against the expected count, not by a z whose spread the bursts set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect
from kpi_lib.anomaly.engine import budget_risk, count_deficit, count_run, small_counts
from kpi_lib.anomaly.families import _daily_shape
from kpi_lib.anomaly.rules import load_rules


def _hourly_counts(seed: int, outage_hours: int = 0) -> tuple[pd.Series, int]:
    """Eight weeks of Poisson orders an hour (0-5, daily cycle); optionally zeros from 11:00 on a
    weekday of week 8 for ``outage_hours`` hours. Returns the series and the outage's first row."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2011-01-03", periods=8 * 7 * 24, freq="h")
    x = rng.poisson(0.3 + 5 * _daily_shape(idx, low=0.0)).astype(float)
    at = (7 * 7 + int(rng.integers(0, 5))) * 24 + 11
    x[at : at + outage_hours] = 0
    return pd.Series(x, idx, name="orders"), at


def test_count_deficit_is_the_poisson_tail_of_a_low_count():
    x = np.array([0.0, 0.0, 5.0, 7.0, 2.0])
    mu = np.array([5.0, 0.0, 5.0, 5.0, np.nan])
    out = count_deficit(x, mu)
    assert out[0] == pytest.approx(5.0)  # P(0 | 5) = e^-5
    assert out[1] == 0.0 and out[2] == 0.0 and out[3] == 0.0  # nothing expected, on or above: no surprise
    assert np.isnan(out[4])  # no expectation, no opinion


def test_count_run_judges_the_window_as_one_count():
    x = np.array([5.0, 1.0, 9.0, 0.0, 0.0, 0.0])
    mu = np.full(6, 5.0)
    out = count_run(x, mu, 3)
    assert np.isnan(out[:2]).all()  # a window needs all its rows
    assert out[2] == 0.0  # 15 where 15 were expected: a low hour and a high one cancel
    assert out[5] == pytest.approx(15.0)  # three zeros where 15 were expected: e^-15
    assert 0 < out[3] < count_deficit(x, mu)[1:4].sum()  # 10 of 15 surprises less than its rows summed


def test_a_fraction_ends_the_counts_from_that_row_on_only():
    x = np.array([1.0, 0.0, 2.5, 0.0, 3.0])
    out = count_deficit(x, np.full(5, 4.0))
    assert np.isfinite(out[:2]).all() and np.isnan(out[2:]).all()  # rows before it are unchanged: causal


def test_small_counts_are_decided_on_the_first_rows():
    assert small_counts(np.r_[np.zeros(50), np.ones(50) * 3, np.full(100, 0.5)], 100)
    assert not small_counts(np.full(100, 48.0), 100)  # request counts in the dozens: z already sees them
    assert not small_counts(np.r_[np.zeros(99), 0.5], 100)


def test_the_outage_step_takes_a_budget_share_only_on_small_counts():
    rules = load_rules("default")
    ts = pd.date_range("2024-01-01", periods=3000, freq="5min").asi8
    tails = sum(s.share for s in rules.steps if s.bound == "tail")
    assert budget_risk(ts, rules, frozenset({"count_run"})) * (tails - 1) == pytest.approx(
        budget_risk(ts, rules) * tails
    )


def test_a_six_hour_outage_of_small_counts_is_found():
    found = 0
    for seed in range(6):
        s, at = _hourly_counts(seed, outage_hours=6)
        onsets = np.flatnonzero(detect(s)["is_anomaly"].to_numpy())
        found += bool(((onsets >= at) & (onsets <= at + 8)).any())
    # six zeros against an expected 4-6 an hour (a run of probability about e^-30): the default
    # before the outage step found 3 of these 6 (z of 1-2 typical errors a row)
    assert found >= 5, found


def test_the_same_series_without_an_outage_is_quiet_there():
    for seed in range(6):
        s, at = _hourly_counts(seed, outage_hours=0)
        result = detect(s)
        assert not result["is_anomaly"].iloc[at : at + 9].any(), seed
        assert result["is_anomaly"].iloc[14 * 24 :].sum() <= 2, seed  # budget: ~0.5 over 6 weeks


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_the_outage_step_is_causal(cut):
    s, at = _hourly_counts(3, outage_hours=6)
    s.iloc[-20] = 2.5  # a fraction near the end: the counts end there, and earlier rows must not know
    full = detect(s)
    k = int(len(s) * cut)
    part = detect(s.iloc[:k])
    cols = ["is_anomaly", "score", "expected", "lower", "upper"]
    pd.testing.assert_frame_equal(part[cols], full[cols].iloc[:k])
