"""Synthetic families with known ground truth, unlike the NAB dev series: the default rules must stay
within their false-alarm budget on normal series of every kind, and find what was injected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, load_rules
from kpi_lib.anomaly.engine import budget_risk
from kpi_lib.anomaly.families import FAMILIES, generate, score

SEEDS = range(4)
NO_ANOMALY = [f for f in FAMILIES if f.startswith("no_anomaly_")]


def _budget_per_week(case) -> float:
    """Alarms a week the default budget allows this series (1 a week, at most 1 per 2,016 rows)."""
    rules = load_rules("default")
    ts = case.series.index.asi8
    tails = sum(1 for s in rules.steps if s.bound == "tail")
    per_row = budget_risk(ts, rules) * tails
    step = pd.Timedelta(np.median(np.diff(ts)))
    return per_row * (pd.Timedelta(days=7) / step)


@pytest.mark.parametrize("family", NO_ANOMALY)
def test_normal_series_of_every_kind_stay_within_the_false_alarm_budget(family):
    false_alarms, weeks, allowed = 0, 0.0, 0.0
    for seed in SEEDS:
        case = generate(family, seed)
        s = score(case, detect(case.series))
        false_alarms += s.false_alarms
        weeks += s.weeks
        allowed += _budget_per_week(case) * s.weeks
    # Gaussian, AR(1), random walk, slow drift, daily cycle, Poisson counts, Pareto tails: the
    # thresholds are each series' own, calibrated so that a normal series alarms about as often as
    # the budget says (alarms, not rows), so its count is at most Poisson around the budget: allow
    # two standard deviations of that count, not a rate above the budget
    limit = allowed + 2.0 * np.sqrt(allowed)
    assert false_alarms <= max(limit, 1.0), (family, false_alarms, round(allowed, 1), round(weeks, 1))


def test_heavy_tails_learn_their_own_threshold_where_fixed_multiples_flood():
    legacy = new = 0
    for seed in SEEDS:
        case = generate("no_anomaly_heavy_tails", seed)
        legacy += score(case, detect(case.series, "legacy")).false_alarms
        new += score(case, detect(case.series)).false_alarms
    # 1.5 x the past 99th percentile is no bound for a Pareto tail: legacy alarms several times a week
    assert legacy >= 20 and new <= legacy / 5, (legacy, new)


def test_a_regime_change_is_one_incident_then_the_new_normal():
    for seed in SEEDS:
        case = generate("regime_change", seed)
        out = detect(case.series)
        (start, end) = case.truth[0]
        onsets = np.flatnonzero(out["is_anomaly"].to_numpy())
        assert [i for i in onsets if start <= i <= end + case.grace], f"seed {seed}: the step was not alarmed"
        assert not [i for i in onsets if i > end + case.grace], (
            f"seed {seed}: alarms after the new level settled"
        )
        assert out["incident"].iloc[-288:].eq(0).all()  # a day later the new level is normal


def test_weekly_business_with_holidays_finds_the_drop_and_not_the_holidays():
    for seed in SEEDS:
        case = generate("weekly_business", seed)
        out = detect(case.series, case.rules("business_daily"))
        s = score(case, out)
        assert s.found == 1 and s.lags[0] <= 2, (seed, s)
        assert s.false_alarms <= 1, (seed, s)
        holidays = case.series.index.month.isin([11, 12, 1]) & (out["is_anomaly"] == 1)
        assert not holidays.any(), out[holidays]


def test_bursty_counts_find_the_surge_and_the_outage_and_ignore_the_bursts():
    surges = outages = false_alarms = 0
    allowed = 0.0
    for seed in range(12):
        case = generate("bursty_counts", seed)
        out = detect(case.series)
        onsets = np.flatnonzero(out["is_anomaly"].to_numpy())
        (oa, ob), (sa, sb) = case.truth  # the 6-hour outage at the daily peak, the 6x surge
        outages += any(oa <= i <= ob + case.grace for i in onsets)
        surges += any(sa <= i <= sb + case.grace for i in onsets)
        s = score(case, out)
        false_alarms += s.false_alarms
        allowed += _budget_per_week(case) * s.weeks
    # the surge is found almost always; the outage (six zeros where 0-6 orders an hour are normal,
    # bursts and overdispersion included) was found in 0 of these 12 before the outage step, 5 now
    # (26 of 48 fresh seeds, against 6); false alarms within the budget (+2 sd), as for the normal
    # families, over 12 seeds (11 against a limit of 13.7; 11 before the outage step too)
    assert surges >= 11 and outages >= 4, (surges, outages)
    assert false_alarms <= allowed + 2.0 * np.sqrt(allowed), (false_alarms, round(allowed, 1))


@pytest.mark.parametrize("factor", [1e-6, 1e6])
def test_alarms_do_not_depend_on_the_unit(factor):
    for family in ("heavy_tails", "regime_change", "no_anomaly_poisson"):
        case = generate(family, 1)
        # small counts have no unit (0-4 orders an hour are judged by a Poisson tail, 0-4 million
        # or 0.000004 are not counts of a handful): Poisson counts are compared in another unit
        series = case.series * 1.5 if family == "no_anomaly_poisson" else case.series
        base = detect(series)["is_anomaly"].to_numpy()
        scaled = detect(series * factor)["is_anomaly"].to_numpy()
        assert np.array_equal(base, scaled), family


def test_weekly_retail_has_a_holiday_season_and_nothing_to_find():
    starts = set()
    for seed in range(4):
        case = generate("no_anomaly_short_weekly_retail", seed)
        s = case.series
        assert case.truth == [] and len(s) == 156 and (s.index.dayofweek == 0).all()
        woy = s.index.isocalendar().week.to_numpy()
        peak, usual = s[woy >= 50].mean(), s[(woy >= 20) & (woy <= 40)].mean()
        assert 1.4 < peak / usual < 2.2, peak / usual  # late December, against the summer and autumn
        starts.add(s.index[0])
    assert len(starts) > 1  # the series start in different weeks of the year
