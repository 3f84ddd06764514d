"""Hysteresis (``incident: {rearm: ...}``, in ``default``): a step that has alarmed opens a new
incident only once it has fallen well back below its threshold, so a series hovering at the line
alarms once, not every time it ticks over (flapping); a real return and a new breach alarm again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, load_rules
from kpi_lib.anomaly.incidents import rearmed
from kpi_lib.errors import DetectError


def disk_use() -> pd.Series:
    """A file server's disk use in %, every 5 minutes in March 2017: 80% for a while, then hovering
    at the 90% line for hours (91% for 5 minutes, 88% for 25), cleaned up to 30%, and full again."""
    hover = [91.0] + [88.0] * 5
    x = [80.0] * 48 + hover * 12 + [30.0] * 24 + [95.0] * 3 + [30.0] * 12
    idx = pd.date_range("2017-03-06 09:00", periods=len(x), freq="5min")
    return pd.Series(x, index=idx, name="disk_used_pct")


def rules(rearm: float) -> dict:
    return {
        "name": "disk",
        "steps": [{"name": "full", "input": "value", "detector": {"ThresholdAD": {"high": 90}}}],
        "incident": {"recover": 3, "release": 1.0, "rearm": rearm},
    }


def test_a_series_hovering_at_the_line_alarms_once_and_again_after_a_real_return():
    s = disk_use()
    plain = detect(s, rules(0.0))
    alarms = s.index[plain["is_anomaly"] == 1]
    assert len(alarms) == 13  # without hysteresis: every tick over 90%, and the refill
    calm = detect(s, rules(0.5))
    alarms = list(s.index[calm["is_anomaly"] == 1])
    assert alarms == [pd.Timestamp("2017-03-06 13:00"), pd.Timestamp("2017-03-06 21:00")]


def test_the_default_rules_rearm_at_half_their_threshold():
    assert load_rules("default").incident.rearm == 0.5


def test_rearmed_counts_only_a_steps_first_alarm_per_excursion():
    fired = {"a": np.array([0, 1, 0, 1, 0, 0, 1], bool), "b": np.array([0, 0, 0, 1, 0, 0, 0], bool)}
    ratios = {"a": np.array([0.1, 1.2, 0.9, 1.1, 0.4, 0.9, 1.3]), "b": np.array([0, 0, 0, 1.5, 0, 0, 0.0])}
    # a: row 1 is its first; row 3 comes without a fall below 0.5 (b's first alarm opens it anyway);
    # row 6 follows a fall to 0.4 on row 4
    assert rearmed(fired, ratios, 0.5).tolist() == [False, True, False, True, False, False, True]
    assert rearmed({"a": fired["a"]}, {"a": ratios["a"]}, 0.5).tolist() == [0, 1, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("bad", [1.0, -0.1, "half"])
def test_a_rearm_outside_0_to_1_is_a_clear_error(bad):
    with pytest.raises(DetectError, match="rearm is a fraction of the threshold"):
        load_rules({"extends": "default", "incident": {"rearm": bad}})
