"""Materiality: an incident must matter to the business (volume, impact on the total, a deviation
at all), and its severity is that impact, not a z-score."""

from __future__ import annotations

import math

import pytest

from kpi_lib.anomaly.materiality import Policy, judge, policy, severity
from kpi_lib.errors import DetectError

P = Policy()


def _judge(**kw):
    args = dict(value=0.0, expected=10.0, additive=True, count=True, volume_share=1.0, total=10.0, p=P)
    return judge(**{**args, **kw})


def test_a_single_order_in_a_sparse_country_is_not_an_incident():
    # "Orders in Iceland was 1 above the expected 0": 0.06% of the orders, one order involved
    v = _judge(value=1.0, expected=0.0, volume_share=0.0006, total=70.0, volume_in_incident=1.0)
    assert not v.material and v.reason.startswith("volume 0.06%")
    # the same country, but a big enough share: still one order in the incident
    v = _judge(value=1.0, expected=0.0, volume_share=0.02, total=70.0, volume_in_incident=1.0)
    assert not v.material and "orders in the incident is under 3" in v.reason


def test_no_deviation_no_incident():
    # "Revenue in Cyprus was $0 below the expected $0"
    v = _judge(value=0.0, expected=0.0, count=False, volume_share=0.2, total=1000.0)
    assert (v.material, v.reason) == (False, "no deviation")


def test_impact_is_measured_against_the_kpi_total():
    # a 40% dip in a country holding 2% of revenue moves the total by 0.8%: not material
    v = _judge(value=60.0, expected=100.0, count=False, volume_share=0.02, total=5000.0)
    assert not v.material and v.impact == pytest.approx(0.008)
    # the same dip in a country holding 25% of it is: 10% of the total, high
    v = _judge(value=750.0, expected=1250.0, count=False, volume_share=0.25, total=5000.0)
    assert v.material and v.impact == pytest.approx(0.10) and v.severity == "high"


@pytest.mark.parametrize(
    "impact, change, expected",
    [
        (0.12, 0.15, "high"),  # a tenth of the business
        (0.05, 1.00, "high"),  # an outage of a region holding 5%
        (0.05, 0.10, "medium"),
        (0.02, 0.40, "medium"),
        (0.012, 0.40, "low"),  # a 40% dip of a country holding 3%
        (0.012, math.inf, "low"),  # from an expected 0
    ],
)
def test_severity_comes_from_business_impact(impact, change, expected):
    assert severity(impact, change, P) == expected


def test_ratio_slices_are_weighed_by_their_volume():
    # AOV of a country holding 2% of orders up 50%: 1% of the overall picture, material but low
    v = _judge(value=150.0, expected=100.0, additive=False, count=False, volume_share=0.02, total=math.nan)
    assert v.material and v.impact == pytest.approx(0.01) and v.severity == "low"


def test_policy_from_the_catalog_with_clear_errors():
    p = policy({"min_volume_share": 0.02, "grains": "day"})
    assert p.min_volume_share == 0.02 and p.grains == ("day",) and p.min_units == 3
    assert p.min_ratio_volume == 10 and policy({"min_ratio_volume": 25}).min_ratio_volume == 25
    with pytest.raises(DetectError, match="unknown key"):
        policy({"min_volume": 1})
    with pytest.raises(DetectError, match="must be a number"):
        policy({"min_units": "three"})
