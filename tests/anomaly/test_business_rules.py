"""The business rule-set options: extends, calendars, volume-aware error scale, trimmed/adjusted
seasonal expectation. Synthetic series, each test small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import BUSINESS_RULES, detect, incidents, load_rules
from kpi_lib.anomaly.baseline import _seasonal
from kpi_lib.anomaly.rules import BUSINESS_DAILY, Calendar, calendar_days
from kpi_lib.errors import DetectError


def _poisson_hours(amplitude: float, seed: int, days: int = 70) -> pd.Series:
    """Orders per hour of a small shop: 0 at night, `amplitude` at the afternoon peak."""
    idx = pd.date_range("2024-01-01", periods=24 * days, freq="h")
    lam = np.clip(amplitude * np.sin((idx.hour.to_numpy() - 6) / 16 * np.pi), 0, None) + 0.05
    return pd.Series(np.random.default_rng(seed).poisson(lam).astype(float), index=idx)


def _daily_orders(days: int = 500, seed: int = 0) -> pd.Series:
    idx = pd.date_range("2024-05-01", periods=days, freq="D")
    rng = np.random.default_rng(seed)
    weekly = np.where(idx.dayofweek >= 5, 1.15, 1.0)
    return pd.Series(rng.poisson(400 * weekly).astype(float), index=idx)


def test_business_built_ins_exist_for_sums_and_ratios():
    assert BUSINESS_RULES == {
        "additive": {"hour": "business_hourly", "day": "business_daily"},
        "ratio": {"hour": "business_hourly_ratio", "day": "business_daily_ratio"},
    }
    for kind in BUSINESS_RULES.values():
        for name in kind.values():
            rs = load_rules(name)
            assert rs.calendar.days == ("retail",) and load_rules(rs.to_dict()) == rs


def test_extends_replaces_parts_of_a_built_in():
    rs = load_rules(
        {"extends": "business_daily", "calendar": {"days": ["retail", "07-15"]}, "expected": {"min_rows": 90}}
    )
    base = load_rules("business_daily")
    assert rs.name == "business_daily (custom)" and rs.steps == base.steps
    assert rs.calendar == Calendar(days=("retail", "07-15"), before=1, after=1)  # merged key by key
    assert rs.expected.min_rows == 90 and rs.expected.cycles == base.expected.cycles
    trend = next(s for s in BUSINESS_DAILY["steps"] if s["name"] == "trend")
    only_trend = load_rules({"extends": "business_daily", "steps": [trend]})
    assert [s.name for s in only_trend.steps] == ["trend"]
    with pytest.raises(DetectError, match="extends must name a built-in"):
        load_rules({"extends": "fancy"})


def test_calendar_knows_the_moving_holidays():
    days = calendar_days(
        Calendar(days=("black_friday", "cyber_monday", "07-15", "2025-03-03")),
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2025-12-31"),
    )
    assert {
        "2024-11-29",
        "2025-11-28",
        "2024-12-02",
        "2025-12-01",
        "2024-07-15",
        "2025-07-15",
        "2025-03-03",
    } == set(days.strftime("%Y-%m-%d"))
    wide = calendar_days(
        Calendar(days=("christmas",), before=1, after=1),
        pd.Timestamp("2025-01-01"),
        pd.Timestamp("2025-12-31"),
    )
    assert list(wide.strftime("%m-%d")) == ["12-24", "12-25", "12-26"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"calendar": ["easter"]}, "neither a holiday name"),
        ({"calendar": {"days": ["retail"], "before": -1}}, "zero or more"),
        ({"calendar": {"days": ["retail"], "around": 1}}, "unknown key"),
        ({"expected": {"scale": "poisson"}}, "expected.scale must be one of"),
        ({"expected": {"average": "mode"}}, "expected.average must be one of"),
    ],
)
def test_bad_business_options_say_what_is_wrong(spec, message):
    with pytest.raises(DetectError, match=message):
        load_rules({"steps": [{"name": "a", "detector": "QuantileAD"}], **spec})


def test_black_friday_is_a_known_day_not_an_incident():
    s = _daily_orders()
    bf = pd.Timestamp("2024-11-29")
    s[bf] *= 2.3
    s[bf + pd.Timedelta(days=3)] *= 1.9  # Cyber Monday
    s[pd.Timestamp("2025-07-15")] *= 0.3  # an ordinary day that really is broken
    known = detect(s, "business_daily")
    unknown = detect(s, {"extends": "business_daily", "calendar": []})
    assert known.loc[bf - pd.Timedelta(days=1) : bf + pd.Timedelta(days=5), "is_anomaly"].sum() == 0
    assert known.loc[bf, "score"] == 0
    assert known.loc["2025-07-15", "is_anomaly"] == 1
    assert unknown.loc[bf : bf + pd.Timedelta(days=3), "is_anomaly"].sum() >= 1


def test_quiet_hours_of_a_small_shop_do_not_flood():
    """0-3 orders an hour: the default rule set alarms on Poisson noise, business_hourly does not."""
    default = business = 0
    for seed in range(6):
        s = _poisson_hours(2.5, seed)
        default += int(detect(s)["is_anomaly"].sum())
        business += int(detect(s, "business_hourly")["is_anomaly"].sum())
    assert business == 0
    assert default > business  # the general rules do alarm on it: the business rules are why it is quiet


def test_a_real_outage_of_a_mid_sized_count_series_is_still_found():
    s = _poisson_hours(40, seed=1)
    at = s.index.get_loc(pd.Timestamp("2024-02-27 12:00"))
    s.iloc[at : at + 4] = np.round(s.iloc[at : at + 4] * 0.1)
    out = detect(s, "business_hourly")
    assert out["is_anomaly"].sum() == 1
    onset = out.index[out["is_anomaly"] == 1][0]
    assert s.index[at] <= onset <= s.index[at + 2] and out.loc[onset, "rule"].startswith("drop")


def test_ratios_of_a_few_orders_stay_quiet_with_the_ratio_rules():
    flagged = {"default": 0, "business_hourly_ratio": 0}
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        sold = rng.poisson(_poisson_hours(5, seed).to_numpy() + 0.5)
        back = rng.binomial(sold, 0.1)
        ratio = pd.Series(
            np.where(sold > 0, back / np.maximum(sold, 1), np.nan), index=_poisson_hours(5, 0).index
        )
        ratio.iloc[-200] = 3.0  # one hour with 1 sold and 3 returned: noise, not an incident
        for name in flagged:
            flagged[name] += int(detect(ratio, name)["is_anomaly"].sum())
    assert flagged["business_hourly_ratio"] == 0
    assert flagged["default"] >= 1


def test_trimmed_and_level_adjusted_seasonal_expectation():
    day = pd.Timedelta("1D").value
    ts = np.arange(10) * day
    x = np.array([1.0, 2, 3, 100, 5, 6, 7, 8, 9, 10])
    # row 9, 8 cycles of one day back: values 2..9 with the outlier 100 -> trimmed drops 2, 3 and 9, 100
    assert _seasonal(ts, x, day, 8, how="trimmed")[9] == pytest.approx(np.mean([5, 6, 7, 8]))
    assert _seasonal(ts, x, day, 8, how="median")[9] == pytest.approx(6.5)
    assert np.isnan(_seasonal(ts, x, day, 8, how="mean")[1])  # one cycle is not enough for a mean
    level = np.arange(1.0, 11.0)  # the level doubled between row 4 and row 9
    adjusted = _seasonal(ts, x, day, 1, level=level)
    assert adjusted[9] == pytest.approx(9 * 10 / 9)


def test_growth_does_not_bias_the_adjusted_daily_expectation():
    idx = pd.date_range("2024-01-01", periods=300, freq="D")
    growth = np.exp(np.arange(300) * 0.004)  # +2.8% a week
    s = pd.Series(1000 * growth * np.where(idx.dayofweek >= 5, 1.2, 1.0), index=idx)
    plain = detect(s, {"extends": "business_daily", "expected": {"adjust": False}})
    adjusted = detect(s, "business_daily")
    bias = lambda out: float(((out["value"] - out["expected"]) / out["value"]).iloc[100:].mean())  # noqa: E731
    assert bias(plain) > 0.05 and abs(bias(adjusted)) < 0.01


def test_a_surge_right_after_a_quiet_night_is_reported_on_its_own_hours():
    """Night hours are too small to judge one by one (`min_volume`); a window step must still see
    the two surge hours that follow them, on the second one, with the surge's own number."""
    s = _poisson_hours(40, seed=3)
    day = pd.Timestamp("2024-03-05")  # a Tuesday, no retail holiday
    assert not len(calendar_days(load_rules("business_hourly").calendar, day, day))
    first, second = day + pd.Timedelta(hours=7), day + pd.Timedelta(hours=8)  # the night ends at 07:00
    s[first], s[second] = 60.0, 75.0  # about 8 and 15 expected
    out = detect(s, "business_hourly", label="Units")
    onsets = out.index[out["is_anomaly"] == 1]
    assert list(onsets) == [second]
    assert out.loc[second, "rule"] == "surge"
    # the alarm is raised on the second hour, but the surge, and so the incident, began on the first
    assert out.loc[first, "incident"] == out.loc[second, "incident"] > 0
    # told with the surge's own numbers: before, the alarm came at 09:00 and read "12% below the
    # expected" there; until the incident reached back, it began at 08:00
    expected = out.loc[first, "expected"]
    assert 4 < expected < 15
    assert out.loc[second, "explanation"].startswith(f"Units were {60 / expected - 1:.0%} above the expected")
    assert "from 2024-03-05 07:00" in out.loc[second, "explanation"]


def test_a_drop_is_told_by_its_low_hours_even_when_a_busy_hour_falls_inside_it():
    """A 40% drop stays open for hours; a busy afternoon hour inside it (three times the usual) is
    not the drop. Before, the incident was told by that hour: "Orders was 106% above the expected"."""
    hours = pd.date_range("2024-01-01", periods=60 * 24, freq="h")
    rate = 40 + 30 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi)
    rate[-36:] *= 0.6
    busy = hours[-8]  # 16:00, the afternoon peak
    rate[-8] *= 3
    s = pd.Series(np.random.default_rng(0).poisson(rate).astype(float), hours)
    out = detect(s, "business_hourly", label="Orders")
    (inc,) = [i for i in incidents(out, label="Orders", rules="business_hourly") if i.start >= hours[-36]]
    assert inc.rule == "drop" and inc.start < busy and inc.end is None  # the busy hour is inside it
    assert out.loc[busy, "value"] > out.loc[busy, "upper"]  # and outside the band, above
    assert inc.value < inc.lower and inc.peak != busy
    assert inc.explanation.startswith("Orders were ") and "% below the expected" in inc.explanation


def test_a_ratio_over_too_few_orders_is_not_judged_but_the_series_still_is():
    """An hour whose average order value is one refund (-$400 against about $42) is not news: it
    says nothing about baskets. Flagged ``thin``, such hours are missing, count as usual inside the
    24-hour window, and teach nothing; the rest of the series is judged as before."""
    hours = pd.date_range("2026-04-18", periods=60 * 24, freq="h")
    rng = np.random.default_rng(0)
    orders = rng.poisson(12 + 10 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi))
    aov = np.array([rng.lognormal(np.log(40), 0.4, n).mean() if n else np.nan for n in orders])
    refunds = hours[-22:-19]  # 02:00-04:00 on the last day: one refund an hour, nothing else
    orders[-22:-19], aov[-22:-19] = 1, -400.0
    s = pd.Series(aov, hours)
    rules = "business_hourly_ratio"
    recent = lambda out: [i for i in incidents(out, label="AOV", rules=rules) if i.start >= hours[-48]]  # noqa: E731
    (noise,) = recent(detect(s, rules, label="AOV"))
    assert noise.start in refunds and "below the expected" in noise.explanation  # what it said before
    out = detect(s, rules, label="AOV", thin=orders < 3)
    assert recent(out) == []
    assert out.loc[refunds, "value"].isna().all() and out.loc[refunds, "expected"].notna().all()
    assert (
        out.attrs["judged_from"] is not None and out["score"].iloc[-12:].gt(0).all()
    )  # the busy hours are judged
    with pytest.raises(DetectError, match="one per row"):
        detect(s, rules, thin=orders[:-1] < 3)


def test_a_surge_ends_on_its_own_hours_not_on_a_quiet_hour_the_next_evening():
    """An hourly incident stays open through 24 calm hours; an empty hour 20 hours after a two-hour
    surge (below the band, but no alarm) is not the surge, nor is a busy hour just above it. Before,
    the incident ended there, and its chart shaded the whole day (the demo's bot surge, 23 hours)."""
    hours = pd.date_range("2024-01-01", periods=60 * 24, freq="h")
    rate = 20 + 15 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi)
    rate[-48:-46] *= 5  # 00:00-01:00 on the day before last
    x = np.random.default_rng(0).poisson(rate).astype(float)
    quiet = hours[-28]  # 20:00 that day
    x[-28] = 0.0
    out = detect(pd.Series(x, hours), "business_hourly", label="Orders")
    assert out.loc[quiet, "value"] < out.loc[quiet, "lower"] and out.loc[quiet, "rule"] == ""
    (inc,) = [i for i in incidents(out, label="Orders", rules="business_hourly") if i.start >= hours[-50]]
    assert inc.rule == "surge" and (inc.start, inc.end) == (hours[-48], hours[-47])
    assert out.loc[quiet, "incident"] == 0
    # nor on a busy hour just above the band (the surge's side) long after its last alarm
    x[-28] = np.ceil(out.loc[quiet, "upper"]) + 1  # the band there comes from earlier hours only
    out = detect(pd.Series(x, hours), "business_hourly", label="Orders")
    assert out.loc[quiet, "value"] > out.loc[quiet, "upper"] and out.loc[quiet, "rule"] == ""
    (inc,) = [i for i in incidents(out, label="Orders", rules="business_hourly") if i.start >= hours[-50]]
    assert (inc.start, inc.end) == (hours[-48], hours[-47])


def test_a_week_with_nothing_at_all_is_an_incident_on_a_shop_shut_on_sundays():
    """A Swiss shop's own export (about 30 orders a day, shut on Sundays and a few odd days) had a week
    with no orders at all, and no surface said so: the expected range starts at 0 on such a series, so
    zeros never leave it. Five days in a row with nothing, more than ever before, are an incident."""
    rng = np.random.default_rng(11)
    idx = pd.date_range("2018-03-01", "2019-08-31", freq="D")
    orders = rng.poisson(30, len(idx)).astype(float)
    orders[idx.dayofweek == 6] = 0  # shut on Sundays
    orders[rng.random(len(idx)) < 0.04] = 0  # and now and then
    orders[(idx >= "2019-05-13") & (idx <= "2019-05-19")] = 0  # Monday to Sunday: nothing
    s = pd.Series(orders, index=idx)
    found = incidents(detect(s, "business_daily"), label="Orders", rules="business_daily")
    (week,) = [i for i in found if pd.Timestamp("2019-05-13") <= i.start <= pd.Timestamp("2019-05-19")]
    # it lasts as long as the empty days a step alarms on (to Saturday: Sundays are shut anyway); the
    # band reaches 0 after the first of them, and the incident used to end on the day it began
    assert week.end == pd.Timestamp("2019-05-18"), (week.start, week.end)
    # the silence step on its own: the week, and nothing else (odd shut days next to a Sunday are 2)
    alone = {
        "extends": "business_daily",
        "steps": [st for st in BUSINESS_DAILY["steps"] if st["name"] == "silence"],
    }
    found = incidents(detect(s, alone), label="Orders", rules=alone)
    assert [(f"{i.start:%Y-%m-%d}", i.explanation) for i in found] == [
        (
            "2019-05-16",
            "Orders were 0 for 5 days in a row, 2019-05-12 to 2019-05-16: the longest such run in the data "
            "before it (since 2018-03-01) was 2 days.",
        )
    ]
