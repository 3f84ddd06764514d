"""A young series, in `default` since the twenty-third pass (kpi_lib/anomaly/README.md): its first
rows are judged by the same steps with shorter floors (`young`), a newly chosen expectation borrows
the pooled threshold (`budget: {borrow: true}`), neither before the series spans its longest
season, and neither teaches the thresholds a mature series is judged by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, load_rules
from kpi_lib.anomaly.detect import _timestamps
from kpi_lib.anomaly.engine import evaluate
from kpi_lib.anomaly.families import generate
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.errors import DetectError

from .conftest import hourly_revenue, spiky

YOUNG = "default"
#: the default before the twenty-third pass: a series judged only once its steps have thresholds
OLD = {"extends": "default", "young": None, "budget": {"borrow": False}}


def weekly_signups(collapse_at: int = 140) -> pd.Series:
    """Three years of weekly signups (156 rows), 6% noise, one week at 40%."""
    rng = np.random.default_rng(7)
    weeks = pd.date_range("2015-01-05", periods=156, freq="W-MON")
    x = 1_000 * (1 + 0.3 * np.arange(156) / 156) * (1 + 0.06 * rng.standard_normal(156))
    x[collapse_at] *= 0.4
    return pd.Series(x, weeks, name="signups")


def test_three_years_of_weeks_are_judged_and_the_bad_week_found():
    s = weekly_signups()
    plain, young = detect(s, OLD), detect(s, YOUNG, label="Signups")
    assert plain.attrs["judged_from"] is None and plain["is_anomaly"].sum() == 0
    assert young.attrs["judged_from"] < 140
    onsets = young.index[young["is_anomaly"] == 1]
    assert list(onsets) == [s.index[140]], young.loc[young["is_anomaly"] == 1, "explanation"]
    said = young.loc[s.index[140], "explanation"]
    assert said.startswith("Signups were") and "% below the expected" in said and "2017-09-11" in said


def test_once_every_step_has_its_own_threshold_nothing_changes():
    # a long hourly series with a real incident: from the last step's first threshold on, scores,
    # alarms and bands are the rule set's own, bit for bit
    s = hourly_revenue(days=120)
    s.iloc[24 * 100 + 10 : 24 * 100 + 14] = 0.0
    rules, young = load_rules({"extends": "default", "young": False}), load_rules(YOUNG)
    ts = _timestamps(s.index)
    a, b = evaluate(s.to_numpy(), ts, rules), evaluate(s.to_numpy(), ts, young)
    mature = max(int(np.argmax(a.armed_by[k])) for k in a.armed_by if k not in a.idle and a.armed_by[k].any())
    assert 0 < mature < len(s)
    for field in ("score", "fired", "expected", "lower", "upper"):
        np.testing.assert_array_equal(getattr(a, field)[mature:], getattr(b, field)[mature:], err_msg=field)
    assert b.judged[:mature].sum() > a.judged[:mature].sum()  # the young rows are judged
    assert detect(s, YOUNG)["is_anomaly"].iloc[24 * 100 + 10] == 1


def test_a_step_idle_on_the_series_stays_idle_and_young_rows_stay_causal():
    s = spiky(n=1500)
    b = evaluate(s.to_numpy(), _timestamps(s.index), load_rules(YOUNG))
    assert "outage" in b.idle and not b.ratios["outage"].any()
    weekly = weekly_signups()
    alarms = lambda x: detect(x, YOUNG)["is_anomaly"].to_numpy()  # noqa: E731
    assert not causal_violations(weekly, alarms, cuts=(0.3, 0.45, 0.7))
    assert not causal_violations(s, alarms, cuts=(0.1, 0.5))


@pytest.mark.parametrize(
    "young, message",
    [
        ({"min_rows": 1}, "at least 2 rows"),
        ({"except": ["nope"]}, r"except names steps of the rule set \(spike, shift"),
        ({"often": 3}, "unknown key"),
        ("soon", "a mapping like"),
    ],
)
def test_young_errors_say_what_to_write(young, message):
    with pytest.raises(DetectError, match=message):
        load_rules({"extends": "default", "young": young})


def test_the_young_key_round_trips():
    rs = load_rules(YOUNG)
    assert load_rules(rs.to_dict()) == rs
    assert rs.young_rules().expected.min_rows == 12
    assert {s.name: s.min_history for s in rs.young_rules().steps}["spike"] == 44
    assert {s.name: s.min_history for s in rs.young_rules().steps}["novelty_48"] == 1000


def test_an_hourly_series_is_not_judged_before_its_first_week():
    # weekends 30% lower: the first Saturday, judged against five weekdays, would read "31% below
    # the expected"; young rows and borrowed thresholds wait until the series spans 7 days, and a
    # young step until its own input does (its errors start after the expectation's 12 rows): the
    # first Monday, against a past of one weekend, would otherwise read "46% above the expected"
    s = hourly_revenue(days=30)
    s.iloc[24 * 25 + 10 : 24 * 25 + 14] = 0.0
    out = detect(s)
    assert 24 * 7 + 12 <= out.attrs["judged_from"] < 224  # where the old default needed 224 rows
    assert out.index[out["is_anomaly"] == 1].tolist() == [s.index[24 * 25 + 10]]
    assert detect(s, OLD).attrs["judged_from"] == 224


def test_a_newly_chosen_expectation_borrows_the_pooled_threshold():
    # a series turns seasonal after a flat month: the same-hour-yesterday expectation starts to win
    # and, without a past of its own, had no threshold; borrowing judges those rows
    idx = pd.date_range("2024-01-01", periods=24 * 60, freq="h")
    rng = np.random.default_rng(5)
    cycle = np.where(np.arange(len(idx)) >= 24 * 30, 40 * np.sin(idx.hour.to_numpy() / 24 * 2 * np.pi), 0)
    s = pd.Series(500 + cycle + rng.normal(0, 5, len(idx)), idx)
    ts = _timestamps(s.index)
    own = evaluate(s.to_numpy(), ts, load_rules({"extends": "default", "budget": {"borrow": False}}))
    borrowed = evaluate(s.to_numpy(), ts, load_rules(YOUNG))
    assert borrowed.armed_by["spike"].sum() > own.armed_by["spike"].sum()
    blind = ~own.armed_by["spike"] & borrowed.armed_by["spike"]
    assert blind[24 * 30 :].any()  # the rows after the switch the old rules left unjudged


def test_a_rules_file_with_steps_of_its_own_keeps_the_young_rows():
    # default's young rows skip its novelty steps; a file that replaces the steps has none to skip
    spike = next(s for s in load_rules("default").to_dict()["steps"] if s["name"] == "spike")
    rs = load_rules({"extends": "default", "steps": [spike]})
    assert rs.young is not None and rs.young.except_ == ()
    assert detect(weekly_signups(), rs).attrs["judged_from"] < 140


def test_the_band_shown_on_young_rows_is_the_one_a_point_is_judged_by():
    # a year of daily revenue with a day at 35% on day 103: judged by the young spike threshold,
    # so the chart and the sentence must show the young band, not 3 typical errors around the
    # rule set's own expected value (which put that day outside the band with no alarm)
    rng = np.random.default_rng(3)
    days = pd.date_range("2016-01-04", periods=365, freq="D")
    week = np.array([1.0, 1.05, 1.05, 1.1, 1.15, 0.6, 0.55])[days.dayofweek]
    x = 3_000 * week * (1 + 0.08 * rng.standard_normal(365))
    x[103] *= 0.35
    s = pd.Series(x, days, name="revenue")
    ts = _timestamps(s.index)
    ev = evaluate(x, ts, load_rules(YOUNG))
    mature = int(np.argmax(evaluate(x, ts, load_rules(OLD)).armed_by["spike"]))
    young = ev.armed_by["spike"] & (np.arange(365) < mature)
    assert young[103] and young.sum() > 100  # the rows in question are judged by the young spike
    outside = (x < ev.lower) | (x > ev.upper)
    spike = ev.ratios["spike"] > 1
    np.testing.assert_array_equal(outside[young], spike[young])
    out = detect(s, YOUNG, label="Revenue")
    said = out.loc[days[103], "explanation"]
    lower, upper = out.loc[days[103], ["lower", "upper"]]
    assert (x[103] < lower) == bool(out["is_anomaly"].iloc[103]), (said, lower, upper)


def test_three_years_of_weekly_retail_raise_nothing_on_their_holidays():
    # a shop's weekly revenue: November +30%, the last weeks of December +70%, early January -30%,
    # 20% growth a year, 6% noise, starting in any week of the year. The expectation cannot know a
    # yearly season before it repeats: floors of 16 rows judged the first holidays of every series
    # (twenty-sixth pass), and with errors starting at row 28, a series that began in the autumn
    # had its first holidays before them, so its second alarmed (30 of 100; twenty-seventh pass)
    for seed in range(10):
        case = generate("no_anomaly_short_weekly_retail", seed)
        out = detect(case.series, YOUNG, label="Revenue")
        assert out.attrs["judged_from"] > 52, out.attrs["judged_from"]
        assert out["is_anomaly"].sum() == 0, (seed, out.loc[out["is_anomaly"] == 1, "explanation"].tolist())
