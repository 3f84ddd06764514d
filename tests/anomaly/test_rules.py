"""Rule sets: plain dicts, files and names; clear errors; ADTK's decision rule refit causally."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from kpi_lib.anomaly import BUILTIN, detect, load_rules
from kpi_lib.anomaly.engine import _bound
from kpi_lib.anomaly.rules import DEFAULT, Step
from kpi_lib.errors import DetectError

from .conftest import hourly_revenue


def test_builtins_load_and_round_trip_through_plain_dicts():
    for name in BUILTIN:
        rs = load_rules(name)
        assert rs.name == name and rs.steps
        assert load_rules(rs.to_dict()) == rs
    assert load_rules(DEFAULT).expected.seasons == ("1D", "7D")


@pytest.mark.parametrize("suffix", [".yml", ".json"])
def test_rules_load_from_yaml_and_json_files(tmp_path, suffix):
    spec = {
        "name": "drops-only",
        "steps": [
            {
                "name": "drop",
                "input": "z",
                "side": "negative",
                "detector": {"QuantileAD": {"high": 0.99}},
                "margin": 1.5,
                "min": 4,
            }
        ],
    }
    path = tmp_path / f"rules{suffix}"
    path.write_text(yaml.safe_dump(spec) if suffix == ".yml" else json.dumps(spec))
    rs = load_rules(path)
    assert rs.name == "drops-only" and rs.steps[0].side == "negative"
    s, at = hourly_revenue(), 24 * 33 + 14
    up, down = s.copy(), s.copy()
    up.iloc[at] *= 3
    down.iloc[at] *= 0.2
    assert detect(up, rules="default")["is_anomaly"].iloc[at] == 1
    assert detect(up, rules=str(path))["is_anomaly"].iloc[at] == 0
    assert detect(down, rules=path)["is_anomaly"].iloc[at] == 1


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"steps": []}, "non-empty list"),
        (
            {"steps": [{"name": "a", "detector": {"MagicAD": {}}}]},
            "unknown detector 'MagicAD'. Use one of: Thresh",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "detector": "QuantileAD",
                        "transform": {"RollingAggregate": {"window": 5, "center": True}},
                    }
                ]
            },
            "looks ahead",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "detector": "QuantileAD",
                        "transform": {"RollingAggregate": {"window": "1h"}},
                    }
                ]
            },
            "number of rows",
        ),
        ({"steps": [{"name": "a", "detector": {"SeasonalAD": {}}}]}, "freq="),
        ({"steps": [{"name": "a", "detector": "QuantileAD", "input": "price"}]}, "input must be one of"),
        ({"steps": [{"name": "a", "detector": "QuantileAD", "thresh": 3}]}, "unknown key"),
        (
            {"steps": [{"name": "a", "detector": "QuantileAD"}], "expected": {"seasons": ["weekly"]}},
            "positive duration",
        ),
        (
            {"steps": [{"name": "a", "detector": "QuantileAD"}], "aggregate": "MaxAggregator"},
            "aggregate must be",
        ),
    ],
)
def test_bad_rule_sets_say_what_is_wrong(spec, message):
    with pytest.raises(DetectError, match=message):
        load_rules(spec)


def test_unknown_name_and_broken_file(tmp_path):
    with pytest.raises(DetectError, match="not a built-in"):
        load_rules("fancy")
    bad = tmp_path / "bad.yml"
    bad.write_text("steps: [unclosed")
    with pytest.raises(DetectError, match="cannot parse"):
        load_rules(bad)


@pytest.mark.parametrize(
    "detector, params", [("QuantileAD", {"high": 0.95}), ("InterQuartileRangeAD", {"c": 3.0})]
)
def test_causal_bound_is_adtk_refit_on_past_rows(detector, params):
    """At each row, the vectorised bound makes the decision ADTK makes after fit(previous rows)."""
    from adtk import detector as adtk_detector

    rng = np.random.default_rng(3)
    f = np.abs(rng.standard_t(3, 400))
    step = Step(name="s", detector=detector, params=params, history=120)
    bound = _bound(step, f)
    s = pd.Series(f, index=pd.date_range("2024-01-01", periods=len(f), freq="min"))
    for i in (60, 121, 250, 399):
        model = getattr(adtk_detector, detector)(**params)
        model.fit(s.iloc[max(0, i - 120) : i])
        assert bool(model.predict(s.iloc[i : i + 1]).iloc[0]) == bool(f[i] > bound[i])
        if detector == "QuantileAD":
            assert np.isclose(model.abs_high_, bound[i])
