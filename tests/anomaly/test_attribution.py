"""attribute(): each dimension value's share of an incident's deviation, in one English fragment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import attribute, detect, incidents
from kpi_lib.errors import DetectError

from .conftest import hourly_revenue


def _regions(drop: dict[str, float], at: int = 24 * 30 + 10, hours: int = 5) -> dict[str, pd.Series]:
    """Hourly revenue for four regions of different sizes; `drop` = factor applied during the window."""
    sizes = {"North America": 1.0, "Europe": 0.8, "Asia Pacific": 0.6, "Latin America": 0.25}
    out = {}
    for i, (name, size) in enumerate(sizes.items()):
        s = hourly_revenue(seed=10 + i) * size
        s.iloc[at : at + hours] *= drop.get(name, 1.0)
        out[name] = s
    return out


def _window(s: pd.Series, at: int = 24 * 30 + 10, hours: int = 5):
    return s.index[at], s.index[at + hours - 1]


def test_one_region_explains_the_drop():
    data = _regions({"Europe": 0.1})
    a = attribute(data, _window(data["Europe"]), dimension="region")
    assert a.top == "Europe" and a.direction == "drop"
    assert a.shares.loc["Europe", "share"] > 0.85
    assert a.shares["share"].sum() == pytest.approx(1.0)
    assert a.shares.loc["Europe", "change"] == pytest.approx(-0.9, abs=0.08)  # against its own expected value
    assert a.text.startswith("Europe accounts for ") and a.text.endswith("of the drop")


def test_a_shared_drop_names_several_regions_by_size():
    data = _regions({"North America": 0.5, "Europe": 0.5, "Asia Pacific": 0.5, "Latin America": 0.5})
    a = attribute(data, _window(data["Europe"]))
    assert list(a.shares.index[:3]) == [
        "North America",
        "Europe",
        "Asia Pacific",
    ]  # the largest lose the most
    assert a.text.startswith("North America (") and " and " in a.text and "account for" in a.text


def test_a_rise_and_the_long_frame_form():
    data = _regions({"Asia Pacific": 4.0})
    long = pd.concat(
        [pd.DataFrame({"period": s.index, "region": k, "value": s.to_numpy()}) for k, s in data.items()]
    )
    a = attribute(long, _window(data["Europe"]))
    assert a.dimension == "region" and a.direction == "rise" and a.top == "Asia Pacific"
    assert "of the rise" in a.text


def test_an_incident_can_be_the_window_and_detect_frames_the_breakdown():
    data = _regions({"Latin America": 0.0}, hours=6)
    frames = {k: detect(s, "business_hourly") for k, s in data.items()}
    inc = incidents(frames["Latin America"])[0]
    a = attribute(frames, inc)
    assert a.top == "Latin America"


def test_no_movement_and_bad_input_say_so():
    data = _regions({})
    flat = attribute(data, _window(data["Europe"]))  # only noise: a person sees no drop to explain
    assert flat.text.startswith("no value stands out: the total did not move") and flat.top is None
    slight = _regions({"Europe": 0.9})  # a 3% dip overall is a movement, and Europe made it
    assert attribute(slight, _window(slight["Europe"])).top == "Europe"
    with pytest.raises(DetectError, match="dimension column"):
        attribute(pd.DataFrame({"period": [1], "a": [1], "b": [2], "value": [3]}), (0, 1))
    with pytest.raises(DetectError, match="empty"):
        attribute({}, (0, 1))
    with pytest.raises(DetectError, match="takes a dict"):
        attribute([1, 2, 3], (0, 1))
    with pytest.raises(DetectError, match="expected columns"):
        attribute({"x": pd.DataFrame({"value": [1.0]})}, (0, 1))


def test_others_moving_the_other_way_are_reported():
    data = _regions({"Europe": 0.1, "Asia Pacific": 1.3})
    a = attribute(data, _window(data["Europe"]))
    assert a.shares.loc["Asia Pacific", "share"] < 0
    assert a.shares.loc["Europe", "share"] > 1
    assert a.text == "Europe accounts for all of the drop (the others moved the other way)"
    assert np.isfinite(a.total) and a.total < 0
