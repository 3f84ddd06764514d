"""What an incident's sentence says when no value left the usual range (a sustained move, a jumpy
stretch), and a usual range that never goes below zero for a series that never has."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, incidents
from kpi_lib.anomaly.incidents import build


def shop(seed: int = 42) -> pd.Series:
    """A shop's hourly takings in pounds, 2019: shut at night and on Sundays, a till outage, a
    price error: an export from years ago, not the demo business."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2019-01-01", "2019-12-31 23:00", freq="h")
    h, dow = idx.hour.to_numpy(), idx.dayofweek.to_numpy()
    rate = np.where((h >= 8) & (h < 20) & (dow < 6), 6 * np.sin((h - 8) / 12 * np.pi) + 1, 0.0)
    gbp = np.array([rng.gamma(2.0, 17.5, k).sum() for k in rng.poisson(rate)]).round(2)
    gbp[(idx >= "2019-09-10 10:00") & (idx < "2019-09-10 16:00")] = 0.0
    gbp[(idx >= "2019-10-16 12:00") & (idx < "2019-10-16 18:00")] *= 10
    return pd.Series(gbp, index=idx, name="revenue")


def pounds(v: float) -> str:
    return f"£{v:,.0f}"


def test_a_never_negative_series_has_a_usual_range_from_zero_up():
    result = detect(shop(), label="Revenue", fmt=pounds)
    known = result["lower"].notna()
    assert (result.loc[known, "lower"] >= 0).all()
    assert (result.loc[known, "expected"] - result.loc[known, "lower"] > 0).any()  # not all clipped
    assert not any("£-" in e for e in result["explanation"])
    # the price error is found, in pounds, with a range that starts at £0
    (error,) = [
        i
        for i in incidents(result, label="Revenue", fmt=pounds)
        if i.start == pd.Timestamp("2019-10-16 12:00")
    ]
    assert error.explanation.startswith("Revenue was ") and "above the expected £" in error.explanation
    assert "(£0–£" in error.explanation


def test_the_range_goes_below_zero_once_the_series_has():
    s = shop() - 0.0
    s.iloc[5000] = -30.0  # a refund hour: from here on, negative values are possible
    lower = detect(s)["lower"].to_numpy()
    assert (lower[:5000][np.isfinite(lower[:5000])] >= 0).all()
    assert (lower[5000:] < 0).any()
    s.iloc[5001] = np.nan  # a missing hour right after it does not forget the refund
    assert detect(s)["lower"].iloc[5001] < 0


def test_every_sentence_matches_where_its_value_was():
    for inc in incidents(detect(shop(7), label="Revenue"), label="Revenue"):
        inside = inc.lower <= inc.value <= inc.upper
        assert inc.explanation.startswith("Revenue showed " if inside else "Revenue was "), inc


def _frame(rule: str) -> tuple[pd.DataFrame, np.ndarray]:
    idx = pd.date_range("2019-03-13", periods=48, freq="h")
    x = np.full(48, 150.0)
    x[20:26] = [400, 30, 522, 60, 380, 90]
    frame = pd.DataFrame(
        {
            "value": x,
            "expected": 144.0,
            "lower": 0.0,
            "upper": 843.0,
            "score": np.where((np.arange(48) >= 22) & (np.arange(48) <= 25), 1.4, 0.3),
            "rule": np.where(np.arange(48) == 22, rule, ""),
        },
        index=idx,
    )
    return frame, np.where((np.arange(48) >= 22) & (np.arange(48) <= 25), 1, 0)


def test_an_in_range_incident_says_what_its_step_saw():
    frame, ids = _frame("volatility")
    (inc,) = build(frame, ids, label="Revenue", fmt=pounds)
    assert inc.explanation == (
        "Revenue showed unusually jumpy values from 2019-03-13 22:00 to 2019-03-14 01:00 "
        "(£522, 262% above the expected £144; usual range £0–£843)."
    )
    frame, ids = _frame("my_rule")  # a user's own step, named as it is
    (inc,) = build(frame, ids, label="Revenue", fmt=pounds)
    assert inc.explanation.startswith("Revenue showed an alarm from its my_rule rule from 2019-03-13 22:00")


def test_a_one_row_incident_of_a_rolling_step_is_told_over_its_window():
    # the 12-row mean of z crossed on one row: what it judged was the 12 hours to that row, so the
    # sentence says what they did on average (not "a sustained move at 15:00" with that row's value)
    idx = pd.date_range("2019-09-10", periods=24, freq="h")
    x = np.full(24, 200.0)
    x[10:16] = 0.0  # a till outage, 10:00-15:59
    frame = pd.DataFrame(
        {"value": x, "expected": 180.0, "lower": 0.0, "upper": 700.0, "score": 0.3, "rule": ""}, index=idx
    )
    frame.loc[idx[15], ["score", "rule"]] = [1.2, "shift"]
    ids = (np.arange(24) == 15).astype(int)
    (inc,) = build(frame, ids, label="Revenue", fmt=pounds, window_steps={"shift": 12})
    assert inc.explanation == (
        "Revenue showed a sustained move in the 12 hours to 2019-09-10 15:00 "
        "(on average £100, 44% below the expected £180)."
    )
    assert round(inc.deviation_pct) == -44  # the card's percentage is the sentence's, not the row's -100%
    (inc,) = build(frame, ids, label="Revenue", fmt=pounds)  # a step with no window: the row itself
    assert inc.explanation.startswith("Revenue showed a sustained move at 2019-09-10 15:00 (£0, 100% below")


def test_an_ongoing_incident_of_a_rolling_step_is_told_over_the_window_to_its_alarm():
    # a day-long shortfall still open: its alarm hour was busier than expected, the 24 hours to it
    # were not; told by that hour it read "a day-long shortfall ($12, 73% above the expected $7)"
    idx = pd.date_range("2019-09-10", periods=48, freq="h")
    x = np.full(48, 200.0)
    x[20:44] = 20.0
    x[44] = 260.0  # the alarm's own hour, above the expected 180
    frame = pd.DataFrame(
        {"value": x, "expected": 180.0, "lower": 0.0, "upper": 700.0, "score": 0.3, "rule": ""}, index=idx
    )
    frame.loc[idx[44], ["score", "rule"]] = [1.3, "slump_24h"]
    frame.loc[idx[45:], "score"] = 1.1
    ids = (np.arange(48) >= 44).astype(int)
    (inc,) = build(frame, ids, label="Revenue", fmt=pounds, window_steps={"slump_24h": 24})
    assert inc.explanation == (
        "Revenue showed a day-long shortfall in the 24 hours to 2019-09-11 20:00 "
        "(on average £30, 83% below the expected £180); still ongoing."
    )
    assert round(inc.deviation_pct) == -83


def test_detect_tells_a_rolling_steps_one_row_incidents_over_their_window():
    told = [
        i.explanation
        for seed in (3, 7, 42)
        for i in incidents(detect(shop(seed), label="Revenue", fmt=pounds), label="Revenue", fmt=pounds)
        if i.end == i.start and i.explanation.startswith("Revenue showed ")
    ]
    assert told and all(" in the " in t and "on average £" in t for t in told), told


def test_a_sustained_decline_is_told_by_its_two_windows_averages():
    """The business rules' trend step (the mean of the last 14 days against the 28 before) was told by
    its alarm day alone: "Orders showed a sustained decline at 2019-01-11 (47, 26% above the expected
    37)" on a user's own export."""
    rng = np.random.default_rng(3)
    idx = pd.date_range("2018-03-01", periods=420, freq="D")
    base = 40 + 8 * np.sin(2 * np.pi * np.arange(420) / 7)
    v = rng.poisson(base).astype(float)
    v[300:] = rng.poisson(base[300:] * 0.65)  # business slows by a third from day 300
    s = pd.Series(v, index=idx)
    found = incidents(detect(s, "business_daily"), label="Orders", rules="business_daily")
    trend = [i for i in found if i.rule == "trend"]
    assert trend, [i.explanation for i in found]
    first = trend[0]
    at = idx.get_loc(first.start)  # the trend step does not reach back: it opens on its alarm
    recent, earlier = v[at - 13 : at + 1].mean(), v[at - 41 : at - 13].mean()
    m = re.fullmatch(
        r"Orders showed a sustained decline: ([\d.]+) on average in the 14 days to (\S+), (\d+)% below the "
        r"([\d.]+) of the 28 days before\.(?:.*)",
        first.explanation,
    )
    assert m, first.explanation
    assert float(m.group(1)) == pytest.approx(recent, abs=0.05) and float(m.group(4)) == pytest.approx(
        earlier, abs=0.05
    )
    assert int(m.group(3)) == round((1 - recent / earlier) * 100)
