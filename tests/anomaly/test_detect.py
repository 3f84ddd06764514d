"""detect()/incidents(): causality, robustness to messy series, incidents and their explanations."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import compact, detect, incidents
from kpi_lib.errors import DetectError

from .conftest import hourly_revenue, random_walk, spiky

CAUSAL_COLUMNS = ["is_anomaly", "score", "expected", "lower", "upper"]


def _with_drop(s: pd.Series, start: int, length: int, factor: float) -> pd.Series:
    out = s.copy()
    out.iloc[start : start + length] *= factor
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: _with_drop(hourly_revenue(), 24 * 30 + 9, 24, 0.6),
        lambda: random_walk(),
        lambda: spiky(),
    ],
)
@pytest.mark.parametrize("cut", [0.5, 0.83])
def test_alarms_on_a_truncated_series_equal_the_full_run(make, cut):
    s = make()
    full = detect(s)
    k = int(len(s) * cut)
    part = detect(s.iloc[:k])
    pd.testing.assert_frame_equal(part[CAUSAL_COLUMNS], full[CAUSAL_COLUMNS].iloc[:k])
    assert full["is_anomaly"].iloc[:k].sum() == part["is_anomaly"].sum()


def test_classic_rules_are_causal_too():
    rng = np.random.default_rng(0)
    s = pd.Series(10 + rng.standard_normal(600), index=pd.date_range("2024-01-01", periods=600, freq="h"))
    s.iloc[400:] -= 8
    full = detect(s, rules="classic")
    assert full["is_anomaly"].iloc[400] == 1
    assert "level_shift" in set(full["rule"].iloc[401:410])  # LevelShiftAD, delayed by its look-ahead
    for k in (402, 405, 450):  # inside the shift: LevelShiftAD's look-ahead would show here
        part = detect(s.iloc[:k], rules="classic")
        pd.testing.assert_frame_equal(
            part[CAUSAL_COLUMNS + ["rule"]], full[CAUSAL_COLUMNS + ["rule"]].iloc[:k]
        )


def _stepped(seed: int, delta: float, n: int = 3000, at: int = 2500) -> pd.Series:
    rng = np.random.default_rng(seed)
    v = 120 + rng.normal(0, 5, n)
    v[at:] += delta
    return pd.Series(v, index=pd.date_range("2024-01-01", periods=n, freq="h"))


def test_a_moderate_level_step_is_explained_as_a_step_between_levels():
    # a 2.4-sd step down: no single point stands out, and the rolling median follows it within a
    # few rows (z forgets it); the level_shift step compares the recent median with the one before
    s = _stepped(seed=3, delta=-12)
    out = detect(s, label="Orders")
    onsets = out[out["is_anomaly"] == 1]
    assert len(onsets) == 1
    assert onsets["rule"].iloc[0] == "level_shift"
    assert s.index[2500] <= onsets.index[0] <= s.index[2510]
    m = re.fullmatch(
        r"Orders stepped down from about (\d+) to about (\d+) at 2024-04-14 \d\d:00\.",
        onsets["explanation"].iloc[0],
    )
    assert m, onsets["explanation"].iloc[0]
    assert 115 <= int(m.group(1)) <= 125 and 98 <= int(m.group(2)) <= 114
    again = incidents(out, label="Orders")  # re-worded from the frame: the same kind of sentence
    assert again[0].explanation.startswith("Orders stepped down from about")
    for k in (2503, 2506, 2540):  # just before, at and after the onset: the same alarms
        part = detect(s.iloc[:k])
        pd.testing.assert_frame_equal(
            part[CAUSAL_COLUMNS + ["rule"]], out[CAUSAL_COLUMNS + ["rule"]].iloc[:k]
        )


def test_clean_seasonal_business_kpi_does_not_alarm_every_night(revenue):
    out = detect(revenue)
    assert out["is_anomaly"].sum() == 0
    assert (out["expected"].iloc[24 * 14 :] - revenue.iloc[24 * 14 :]).abs().median() < 0.05 * revenue.mean()


def test_flat_series_is_quiet_and_then_one_step_is_one_alarm():
    idx = pd.date_range("2024-01-01", periods=600, freq="h")
    flat = pd.Series(45.0, index=idx)
    assert detect(flat)["is_anomaly"].sum() == 0
    bumped = flat.copy()
    bumped.iloc[400:] = 55.0  # zero-variance history: the scale floor keeps this finite and sane
    out = detect(bumped)
    assert out["is_anomaly"].sum() == 1
    assert out.index[out["is_anomaly"] == 1][0] == idx[400]


@pytest.mark.parametrize("n", [0, 1, 5, 30, 120])
def test_short_series_do_not_crash_or_alarm(n):
    s = hourly_revenue(days=6).iloc[:n]
    out = detect(s)
    assert len(out) == n and out["is_anomaly"].sum() == 0
    assert list(out.columns[:8]) == [
        "value",
        "expected",
        "lower",
        "upper",
        "score",
        "is_anomaly",
        "severity",
        "explanation",
    ]


def test_gaps_duplicates_nans_and_disorder_keep_rows_and_stay_quiet(revenue):
    s = revenue.drop(revenue.index[24 * 10 : 24 * 12])  # a two-day gap
    s = pd.concat([s.iloc[:300], s.iloc[290:300], s.iloc[300:]])  # ten duplicated timestamps
    s.iloc[[50, 400, 401, 700]] = np.nan
    s.iloc[[500, 501]] = s.iloc[[501, 500]].to_numpy()  # two rows out of order
    out = detect(s)
    assert out.index.equals(s.index) and out.index.has_duplicates
    assert np.array_equal(out["value"].to_numpy(), s.to_numpy(), equal_nan=True)
    assert out["is_anomaly"].sum() <= 2
    assert (out.loc[out["value"].isna(), "is_anomaly"] == 0).all()


def test_business_daily_rules_take_a_file_whose_timestamps_go_back():
    # a daily export with one day's row appended after the next day's (the growth-adjusted seasonal
    # expectation used to raise "index values must be monotonic" here): the rows are kept and the
    # planted 4-day drop is still found
    from kpi_lib.anomaly.families import generate, score

    case = generate("weekly_business", seed=1)
    order = np.arange(len(case.series))
    order[[200, 201]] = [201, 200]
    s = case.series.iloc[order]
    assert not s.index.is_monotonic_increasing
    out = detect(s, case.rules("business_daily"))
    assert out.index.equals(s.index)
    assert score(case, out).found == 1


def test_non_numeric_values_are_missing_not_fatal():
    s = hourly_revenue(days=10).astype(object)
    s.iloc[100] = "n/a"
    out = detect(s)
    assert np.isnan(out["value"].iloc[100]) and len(out) == len(s)


def test_a_pricing_bug_is_found_early_with_the_right_numbers(revenue):
    start = 24 * 35 + 9
    s = _with_drop(revenue, start, 24, 0.6)
    out = detect(s, label="Revenue in EMEA")
    onsets = out.index[out["is_anomaly"] == 1]
    assert len(onsets) == 1
    first = s.index.get_loc(onsets[0])
    assert start <= first <= start + 3
    row = out.iloc[first]
    assert row["explanation"].startswith("Revenue in EMEA was ")
    inc = incidents(out)[0]
    assert inc.start == onsets[0] and inc.end is not None and inc.end <= s.index[start + 24]
    assert -45 < inc.deviation_pct < -35  # a 40% drop against a good expectation
    true_normal = revenue.loc[inc.peak]
    assert abs(inc.expected - true_normal) < 0.1 * true_normal
    pct = f"{abs(inc.deviation_pct) / 100:.0%}"
    assert f"{pct} below the expected {compact(inc.expected)}" in inc.explanation
    assert f"({compact(inc.lower)}–{compact(inc.upper)})" in inc.explanation


def test_an_outage_to_zero_is_high_severity_and_ongoing_when_unresolved(revenue):
    start = 24 * 30 + 12
    s = revenue.copy()
    s.iloc[start : start + 4] = 0.0
    out = detect(s.iloc[: start + 3], fmt=lambda v: f"${v:,.0f}")
    inc = incidents(out)[-1]
    assert inc.start == s.index[start] and inc.end is None and inc.ongoing
    assert inc.severity == "high"
    assert inc.explanation.endswith("still ongoing.")
    money = r"100% below the expected \$[\d,]+ \(\$[\d,]+–\$[\d,]+\) from 2024-01-31 12:00; still ongoing"
    assert re.search(money, out["explanation"].iloc[start])
    assert re.search(money, incidents(out, fmt=lambda v: f"${v:,.0f}")[-1].explanation)
    finished = incidents(detect(s))
    assert finished[-1].end == s.index[start + 3]


def test_a_single_spike_is_one_point_incident(revenue):
    s = revenue.copy()
    at = 24 * 33 + 14
    s.iloc[at] *= 5
    out = detect(s)
    (inc,) = incidents(out)
    assert inc.start == inc.peak == inc.end == s.index[at]
    assert inc.rule == "spike" and inc.deviation_pct > 300
    assert out["explanation"].iloc[at].endswith(f"at {s.index[at]:%Y-%m-%d %H:%M}.")


def test_consecutive_points_form_one_incident_with_onset_only_alarm():
    s = random_walk(n=3000, seed=5)
    s.iloc[2000:2010] -= 60
    out = detect(s)
    window = out.iloc[1995:2060]
    assert window["is_anomaly"].sum() == 1
    ids = window["incident"][window["incident"] > 0].unique()
    assert len(ids) == 1
    rows = out[out["incident"] == ids[0]]
    assert rows["is_anomaly"].iloc[0] == 1 and rows["is_anomaly"].iloc[1:].sum() == 0
    assert set(rows["severity"]) <= {"low", "medium", "high"}
    assert (rows["explanation"].iloc[1:] == "").all()
    assert (out.loc[out["incident"] == 0, "severity"] == "").all()


def test_scores_are_comparable_and_bands_contain_the_expectation(revenue):
    out = detect(_with_drop(revenue, 24 * 35, 6, 0.2))
    ok = out["expected"].notna()
    assert (out.loc[ok, "lower"] <= out.loc[ok, "expected"]).all()
    assert (out.loc[ok, "expected"] <= out.loc[ok, "upper"]).all()
    assert (out["score"] >= 0).all()
    assert (out.loc[out["is_anomaly"] == 1, "score"] > 1).all()


def test_wrong_inputs_are_clear_errors():
    with pytest.raises(DetectError, match="one series"):
        detect(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.raises(DetectError, match="Unknown rule set 'nope'"):
        detect(hourly_revenue(days=2), rules="nope")
    with pytest.raises(DetectError, match="missing column"):
        incidents(pd.DataFrame({"value": [1.0]}))
