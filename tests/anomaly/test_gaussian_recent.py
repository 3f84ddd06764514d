"""The windowed Gaussian gated by a recent window (``recent: R``, ninth pass in
kpi_lib/anomaly/README.md): the input is the smaller of the surprise against the previous 6,400 raw
values and against the previous R only, so a new level stops being surprising once it has held for R
rows while a spike stays surprising against both."""

from __future__ import annotations

import numpy as np
import pytest

from kpi_lib.anomaly import detect, engine, load_rules
from kpi_lib.anomaly.engine import windowed_gaussian
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.errors import DetectError

from .conftest import CANDIDATES, gauss_rules, stepped

WARM = 100  # the default's expected.min_rows: the long window's warm-up


@pytest.mark.parametrize("recent", [48, 288])
def test_it_is_the_smaller_of_the_long_and_the_recent_surprise(recent):
    x = stepped().to_numpy()
    x[[700, 1500]] = np.nan  # a missing value has no input, and windows skip it
    long = windowed_gaussian(x, 6400, WARM, 0.01)
    short = windowed_gaussian(x, recent, min(recent, WARM), 0.01)
    out = windowed_gaussian(x, 6400, WARM, 0.01, recent=recent)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(long))  # NaN exactly where the long one is
    both = np.isfinite(long) & np.isfinite(short)
    np.testing.assert_array_equal(out[both], np.minimum(long, short)[both])
    assert np.isnan(out[[700, 1500]]).all()
    np.testing.assert_array_equal(windowed_gaussian(x, 6400, WARM, 0.01, recent=0), long)


def test_where_the_recent_window_is_short_the_long_surprise_is_used_alone():
    x = stepped().to_numpy()
    x[1000:1250] = np.nan  # a long gap: the 288-row window holds fewer than 100 values after it
    long = windowed_gaussian(x, 6400, WARM, 0.01)
    out = windowed_gaussian(x, 6400, WARM, 0.01, recent=288)
    # rows 1250..1287 have 38 known values or fewer in their recent window (< min(288, 100))
    np.testing.assert_array_equal(out[1250:1288], long[1250:1288])
    assert (out[1400:1990] <= long[1400:1990]).all()


def test_it_never_reads_a_future_row():
    rng = np.random.default_rng(11)
    x = stepped(n=1500, at=900).to_numpy()
    for recent in (48, 288):
        full = windowed_gaussian(x, 400, 50, 0.01, recent=recent)
        for i in (40, 99, 150, 300, 899, 900, 901, 947, 948, 1190, 1350):
            future = x.copy()
            future[i + 1 :] = rng.normal(500, 300, len(x) - i - 1)  # anything at all after row i
            out = windowed_gaussian(future, 400, 50, 0.01, recent=recent)
            np.testing.assert_array_equal(out[: i + 1], full[: i + 1])


@pytest.mark.parametrize("recent", [48, 288])
def test_after_a_level_change_the_surprise_falls_back_once_r_new_rows_are_in(recent):
    at = 2000
    x = stepped(at=at).to_numpy()
    long = windowed_gaussian(x, 6400, WARM, 0.01)
    out = windowed_gaussian(x, 6400, WARM, 0.01, recent=recent)
    before = long[WARM:at]
    # the step itself is surprising against both windows
    assert out[at] > 10 * np.nanquantile(before, 0.99)
    # once the recent window holds only the new level, it looks like the old one did
    assert np.nanquantile(out[at + recent :], 0.99) < 2 * np.nanquantile(before, 0.99)
    # while the long window alone still finds the new normal far more surprising
    later = slice(at + recent, at + recent + 300)
    assert np.nanmedian(long[later]) > 3 * np.nanmedian(out[later])
    assert np.nanmedian(long[later]) > 3 * np.nanmedian(before)


@pytest.mark.parametrize("recent", [48, 288])
def test_the_gated_step_alarms_at_the_change_and_then_stops(recent):
    s = stepped()
    ev_plain = engine.evaluate(s.to_numpy(), s.index.asi8, load_rules(gauss_rules()))
    ev = engine.evaluate(s.to_numpy(), s.index.asi8, load_rules(gauss_rules(recent=recent)))
    for name in ev.ratios:  # the other steps are untouched
        if name != "gaussian":
            np.testing.assert_array_equal(ev.ratios[name], ev_plain.ratios[name])
    g = ev.ratios["gaussian"]
    assert g[2000:2006].max() > 1  # the step is an alarm of this step too
    assert g[2000 + recent + 6 :].max() < 1  # the new normal is not
    # the ungated step re-alarms on the new normal after the 48-row mark (its threshold relearns
    # in fits and starts; on this short series it is quiet again by row 2,300)
    assert ev_plain.ratios["gaussian"][2000 + 48 + 6 :].max() > 1


def test_a_spike_is_still_surprising():
    s = stepped(n=3000, at=3000)  # no level change
    s.iloc[2500] += 40  # one value 20 sd out
    rules = gauss_rules(recent=48)
    ev = engine.evaluate(s.to_numpy(), s.index.asi8, load_rules(rules))
    long = windowed_gaussian(s.to_numpy(), 6400, WARM, 0.01)
    gated = windowed_gaussian(s.to_numpy(), 6400, WARM, 0.01, recent=48)
    assert gated[2500] > 100 and gated[2500] >= 0.9 * long[2500]
    assert ev.ratios["gaussian"][2500] > 1
    assert detect(s, rules)["is_anomaly"].iloc[2500] == 1


def test_gated_detection_is_causal():
    s = stepped()
    rules = gauss_rules(recent=48)
    cuts = [(k + 0.5) / len(s) for k in (1999, 2000, 2001, 2030, 2048, 2060, 2500)]
    assert not causal_violations(s, lambda v: detect(v, rules)["is_anomaly"].to_numpy(), cuts)


@pytest.mark.parametrize(
    ("recent", "message"),
    [
        (1, "recent must be a whole number of rows from 2 to 6399"),
        (6400, "recent must be a whole number of rows from 2 to 6399"),
        (-48, "recent must be a whole number of rows from 2 to 6399"),
        (48.5, "recent must be a whole number of rows"),
        ("48", "recent must be a whole number of rows"),
        (True, "recent must be a whole number of rows"),
    ],
)
def test_a_bad_recent_window_is_a_clear_error(recent, message):
    with pytest.raises(DetectError, match=message):
        load_rules(gauss_rules(recent=recent))


def test_recent_needs_a_gauss_step():
    spike = {"name": "spike", "input": "z", "detector": {"QuantileAD": {"high": 0.98}}, "recent": 48}
    with pytest.raises(DetectError, match="recent gates a gauss window; it needs input: gauss"):
        load_rules({"name": "bad", "steps": [spike]})


def test_recent_round_trips_and_the_candidates_use_it():
    rs = load_rules(gauss_rules(recent=48))
    assert rs.steps[-1].recent == 48
    assert load_rules(rs.to_dict()) == rs
    assert "recent" not in load_rules(gauss_rules()).to_dict()["steps"][-1]  # off unless asked for
    assert all(s.recent == 0 for s in load_rules("default").steps)
    plain = load_rules(CANDIDATES / "default_gaussian.yml").steps
    for r in (48, 288):
        steps = load_rules(CANDIDATES / f"default_gaussian_recent{r}.yml").steps
        assert steps[-1].recent == r
        assert [s.name for s in steps] == [s.name for s in plain]
        assert steps[:-1] == plain[:-1]  # otherwise default_gaussian, step for step
