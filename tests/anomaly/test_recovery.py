"""A return to where the series was is the previous incident's recovery, not a new incident
(``incident: {recovery: true}``): a user's daily revenue in euros with a two-week drop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, incidents, load_rules
from kpi_lib.anomaly.incidents import mark
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.errors import DetectError

RECOVERY = {"extends": "default", "incident": {"recovery": True}}


def euros(seed: int = 5) -> pd.Series:
    """Daily revenue in €, 2016-2019, weekdays 30% busier, and 45% down for two weeks of June 2018."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2016-01-01", "2019-12-31", freq="D")
    x = 5000 * (1 + 0.3 * (idx.dayofweek.to_numpy() < 5)) * rng.lognormal(0, 0.12, len(idx))
    x[(idx >= "2018-06-04") & (idx < "2018-06-18")] *= 0.55
    return pd.Series(x.round(2), index=idx, name="revenue")


def eur(v: float) -> str:
    return f"€{v:,.0f}"


def test_a_two_week_drop_and_its_end_are_one_incident():
    s = euros()
    told = incidents(detect(s, RECOVERY, label="Revenue", fmt=eur), label="Revenue", fmt=eur, rules=RECOVERY)
    (drop,) = [i for i in told if pd.Timestamp("2018-06-01") <= i.start <= pd.Timestamp("2018-06-18")]
    assert drop.end is not None and drop.end >= pd.Timestamp("2018-06-18")  # runs through the return
    assert drop.value < drop.expected  # it is told as the drop it was
    assert not [i for i in told if pd.Timestamp("2018-06-18") < i.start <= pd.Timestamp("2018-08-01")]
    # without the rule, the return to normal is a second incident, a "surge" against the learned low
    plain = incidents(detect(s, label="Revenue", fmt=eur), label="Revenue", fmt=eur)
    after = [i for i in plain if pd.Timestamp("2018-06-18") < i.start <= pd.Timestamp("2018-08-01")]
    assert after and after[0].value > after[0].expected


def test_recovery_is_decided_from_the_past_only():
    s = euros()
    assert not causal_violations(
        s, lambda x: detect(x, RECOVERY)["is_anomaly"].to_numpy(), cuts=(0.62, 0.63, 0.9)
    )


def _drop_then_alarm(at_30: float, learned: bool) -> np.ndarray:
    """A drop at rows 5-9 (incident 1), the expectation learning it (or not), an alarm at row 30."""
    n = 40
    value, expected = np.full(n, 100.0), np.full(n, 100.0)
    fired, score, outside = np.zeros(n, bool), np.zeros(n), np.zeros(n, bool)
    value[5:10] = 50.0
    fired[5], score[5:10], outside[5:10] = True, 2.0, True
    if learned:
        expected[10:31] = 50.0
    fired[30], score[30], value[30] = True, 2.0, at_30
    window = np.ones(n, dtype=np.int64)
    return mark(fired, score, outside, recover=3, release=1.0, recovery=(value, expected, window))


def test_only_a_return_the_expectation_lags_behind_is_a_recovery():
    ids = _drop_then_alarm(105.0, learned=True)  # back near 100 while 50 was expected
    assert ids.max() == 1 and ids[5] == 1 and ids[30] == 1  # one incident, through the return
    assert _drop_then_alarm(45.0, learned=True).max() == 2  # further down: a new incident
    # the expectation never learned the drop (a short burst does not move a median): a move up
    # from there is news, not a return
    assert _drop_then_alarm(140.0, learned=False).max() == 2


def test_recovery_must_be_true_or_false():
    assert load_rules(RECOVERY).incident.recovery is True
    assert load_rules("default").incident.recovery is False
    with pytest.raises(DetectError, match="recovery must be true or false"):
        load_rules({"extends": "default", "incident": {"recovery": "yes"}})
