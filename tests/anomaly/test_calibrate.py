"""Budget thresholds from a series' own past: the right rate of exceedances, causal, and no blind spot
after an incident."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, load_rules
from kpi_lib.anomaly.calibrate import online_threshold, tail_threshold
from kpi_lib.anomaly.engine import budget_risk
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.anomaly.rules import WINDOWED_INPUTS
from kpi_lib.errors import DetectError

RISK = 1e-4


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: np.abs(rng.standard_normal(n)),  # light tail
        lambda rng, n: rng.pareto(3.0, n),  # heavy tail, index 3
        lambda rng, n: rng.exponential(1.0, n),
    ],
)
def test_thresholds_are_exceeded_about_as_often_as_the_budget_says(draw):
    rng = np.random.default_rng(3)
    f = draw(rng, 200_000)
    th = online_threshold(f, RISK, history=10_000, min_history=100)
    rate = np.mean(f[20_000:] > th[20_000:])
    # extrapolated from the 98th percentile to 1 in 10,000: on the cautious side for light tails,
    # within a factor of about 2 for a Pareto tail (the shape estimate is clipped at 0.5)
    assert RISK / 6 <= rate <= 3 * RISK, rate


def test_thresholds_use_earlier_rows_only():
    rng = np.random.default_rng(4)
    f = np.abs(rng.standard_normal(5_000))
    full = online_threshold(f, RISK, history=2_000, min_history=100)
    for cut in (777, 2_500, 4_001):
        part = online_threshold(f[:cut], RISK, history=2_000, min_history=100)
        np.testing.assert_array_equal(part, full[:cut])


def test_an_incident_does_not_teach_the_series_that_incidents_are_normal():
    rng = np.random.default_rng(5)
    f = np.abs(rng.standard_normal(6_000))
    before = online_threshold(f, RISK, history=10_000, min_history=100)[3_999]
    f[4_000:4_010] = 40.0  # ten rows of a real incident, ten times the threshold
    after = online_threshold(f, RISK, history=10_000, min_history=100)
    # its rows teach only their threshold: the bound moves a little, it is not blinded for weeks
    assert after[4_005] == before and after[5_000] < 1.5 * before, (before, after[5_000])


def test_a_short_history_gives_a_cautious_threshold():
    rng = np.random.default_rng(6)
    f = np.abs(rng.standard_normal(20_000))
    assert tail_threshold(f[:150], RISK) > tail_threshold(f, RISK)
    assert np.isnan(tail_threshold(f[:10], RISK))


def test_a_first_threshold_comes_as_soon_as_its_history_is_there():
    # 40 values of history are needed; the regular refit edges fall at rows 32, 64, 96, ...
    rng = np.random.default_rng(8)
    f = np.abs(rng.standard_normal(3_000))
    f[:5] = np.nan  # the input starts at row 5, so the 40th value is row 44
    plain = online_threshold(f, RISK, history=10_000, min_history=40)
    ready = online_threshold(f, RISK, history=10_000, min_history=40, fit_when_ready=True)
    assert int(np.flatnonzero(np.isfinite(plain))[0]) == 64
    assert int(np.flatnonzero(np.isfinite(ready))[0]) == 45
    # one more edge, and no other: from the next regular edge on, nothing changes
    np.testing.assert_array_equal(ready[64:], plain[64:])
    for cut in (45, 50, 700):  # and it stays causal
        part = online_threshold(f[:cut], RISK, history=10_000, min_history=40, fit_when_ready=True)
        np.testing.assert_array_equal(part, ready[:cut])
    with pytest.raises(DetectError, match="fit_when_ready is true or false"):
        load_rules({"extends": "default", "budget": {"fit_when_ready": "yes"}})


def test_the_budget_is_per_week_and_never_more_than_one_per_2016_rows():
    rules = load_rules("default")
    tails = sum(s.share for s in rules.steps if s.bound == "tail")  # three novelty horizons share one
    five_min = np.arange(0, 4000, dtype=np.int64) * 300 * 10**9
    daily = np.arange(0, 400, dtype=np.int64) * 86_400 * 10**9
    assert budget_risk(five_min, rules) * tails == pytest.approx(1 / 2016)  # one a week
    assert budget_risk(daily, rules) * tails == pytest.approx(1 / 2016)  # one per 2,016 days
    hourly = np.arange(0, 400, dtype=np.int64) * 3_600 * 10**9
    custom = load_rules({"extends": "default", "budget": {"alarms": 1, "per": "28D", "min_rows": 100}})
    assert budget_risk(hourly, custom) * tails == pytest.approx(1 / (28 * 24))


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"budget": {"alarms": 0}}, "more than 0"),
        ({"budget": {"per": "soon"}}, "duration"),
        ({"budget": {"often": 1}}, "unknown key"),
        ({"budget": {"share": "some"}}, "share must be one of all, armed"),
        (
            {"steps": [{"name": "x", "detector": {"ThresholdAD": {"high": 1}}, "bound": "tail"}]},
            "bound: tail extrapolates QuantileAD",
        ),
    ],
)
def test_budget_and_bound_errors_say_what_to_write(spec, message):
    with pytest.raises(DetectError, match=message):
        load_rules({"extends": "default", **spec})


def test_each_row_is_judged_by_the_threshold_of_its_own_expectation():
    # a series judged by the rolling median (group "level": small errors) that turns seasonal (group
    # "1D": errors ten times larger) in the middle of a refit block: the seasonal rows must be judged
    # by the seasonal rows' own past, not by the small threshold the block started with, and not
    # left without a threshold because the block started with a group that had too little past
    rng = np.random.default_rng(5)
    n = 20_000
    group = np.where((np.arange(n) // 3_000) % 2 == 0, "level", "1D").astype(object)
    f = np.abs(rng.standard_normal(n)) * np.where(group == "1D", 10.0, 1.0)
    th = online_threshold(f, RISK, history=10_000, min_history=100, group=group)
    late = np.arange(n) >= 8_000  # both groups have thousands of past rows by then
    seasonal = late & (group == "1D")
    assert np.isfinite(th[late]).all()
    # the seasonal rows' threshold is about ten times the other's, as their errors are
    assert np.median(th[seasonal]) > 5 * np.median(th[late & (group == "level")])
    # and its ordinary rows do not alarm: at most about the budget's share (1 in 10,000), not the
    # few percent of seasonal errors that exceed the small threshold
    assert np.mean(f[seasonal] > th[seasonal]) <= 5 * RISK


def test_thresholds_per_group_use_earlier_rows_only():
    rng = np.random.default_rng(6)
    n = 6_000
    group = np.where((np.arange(n) // 700) % 3 == 0, "level", "7D").astype(object)
    f = np.abs(rng.standard_normal(n)) * np.where(group == "7D", 4.0, 1.0)
    full = online_threshold(f, RISK, history=2_000, min_history=100, group=group)
    for cut in (1_111, 3_333, 5_001):
        part = online_threshold(f[:cut], RISK, history=2_000, min_history=100, group=group[:cut])
        np.testing.assert_array_equal(part, full[:cut])


ARMED = {"extends": "default", "budget": {"share": "armed"}}


def _without_novelty() -> dict:
    spec = load_rules(ARMED).to_dict()
    spec["steps"] = [s for s in spec["steps"] if s["input"] not in WINDOWED_INPUTS]
    spec["young"]["except"] = []  # young rows skipped the novelty steps; there are none now
    return spec


def _weekly_orders(rows: int, seed: int = 3) -> pd.Series:
    """A shop's hourly orders with a daily rhythm, a bad afternoon and a busy evening."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2019-03-04", periods=rows, freq="h")
    rhythm = 40 + 25 * np.sin(2 * np.pi * (idx.hour.to_numpy() - 9) / 24)
    x = rhythm + rng.normal(0, 4, rows)
    x[rows // 2 : rows // 2 + 5] *= 0.35
    x[rows - 200 : rows - 197] *= 1.9
    return pd.Series(np.round(x, 1), index=idx)


def test_armed_share_gives_a_short_series_the_alarms_of_the_steps_that_can_alarm():
    # 1,000 rows: the novelty steps need 1,000 past values and never arm, so with `share: armed`
    # they take no share and the others alarm as in a rule set without them (with `share: all` they
    # get 5/6 of the budget, and their thresholds are further out)
    s = _weekly_orders(1000)
    armed, without, shared = (detect(s, r) for r in (ARMED, _without_novelty(), "default"))
    pd.testing.assert_series_equal(armed["score"], without["score"])
    pd.testing.assert_series_equal(armed["is_anomaly"], without["is_anomaly"])
    assert armed["is_anomaly"].sum() >= 1
    # where they first part, the whole budget's thresholds are nearer: the score is higher
    first = np.flatnonzero(~np.isclose(armed["score"], shared["score"]))[0]
    assert armed["score"].iloc[first] > shared["score"].iloc[first]


def test_armed_share_splits_the_budget_six_ways_once_the_novelty_steps_arm():
    s = _weekly_orders(3000)
    rules = load_rules(ARMED)
    ts = s.index.asi8
    tails = sum(st.share for st in rules.steps if st.bound == "tail" and st.input != "count_run")
    armed = np.r_[np.full(200, 0.0), np.full(948, tails - 1.0), np.full(1852, float(tails))]
    risk = budget_risk(ts, rules, frozenset({"count_deficit", "count_run"}), armed)
    assert risk[500] == pytest.approx(
        budget_risk(ts, rules, frozenset({"count_deficit", "count_run"})) * tails / (tails - 1)
    )
    assert risk[2000] == pytest.approx(budget_risk(ts, rules, frozenset({"count_deficit", "count_run"})))
    assert not causal_violations(
        s, lambda x: detect(x, ARMED)["is_anomaly"].to_numpy(), cuts=(0.2, 0.38, 0.7)
    )
