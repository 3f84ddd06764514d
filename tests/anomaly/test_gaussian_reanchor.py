"""The windowed Gaussian re-anchored at a level shift (``reanchor:``, eighth pass in
kpi_lib/anomaly/README.md): after a permanent step, the trailing window of raw values starts again
from the step instead of comparing the new level with weeks of the old one."""

from __future__ import annotations

import numpy as np
import pytest

from kpi_lib.anomaly import detect, engine, load_rules
from kpi_lib.anomaly.engine import onsets, windowed_gaussian
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.errors import DetectError

from .conftest import CANDIDATES, gauss_rules, gauss_step, stepped

WARM = 100  # the default's expected.min_rows: the window's warm-up, at the start and after a restart


def test_without_restarts_it_is_the_plain_windowed_gaussian():
    x = stepped().to_numpy()
    plain = windowed_gaussian(x, 6400, WARM, 0.01)
    for restart in (None, np.array([], dtype=int), np.array([0, -3, len(x), len(x) + 5])):
        np.testing.assert_array_equal(windowed_gaussian(x, 6400, WARM, 0.01, restart=restart), plain)


def test_a_restart_starts_the_window_again_with_its_warm_up():
    x = stepped(at=2000).to_numpy()
    plain = windowed_gaussian(x, 6400, WARM, 0.01)
    out = windowed_gaussian(x, 6400, WARM, 0.01, restart=np.array([2003]))
    np.testing.assert_array_equal(out[:2003], plain[:2003])  # rows before the restart: unchanged
    assert np.isnan(out[2003 : 2003 + WARM]).all()  # no opinion until 100 values of the new level
    # ... then exactly the plain statistic of the rows from the restart on
    np.testing.assert_allclose(out[2003:], windowed_gaussian(x[2003:], 6400, WARM, 0.01), equal_nan=True)
    # and back to normal: the new level judged against itself looks like the old one did
    before, after = plain[WARM:2000], out[2003 + WARM :]
    assert np.nanquantile(after, 0.99) < 2 * np.nanquantile(before, 0.99)
    # while the un-restarted window still holds the old level: the new normal looks extreme for weeks
    assert np.nanmedian(plain[2000 : 2000 + 300]) > np.nanquantile(before, 0.99)
    assert np.nanmin(plain[2000 : 2000 + 900]) > np.nanmedian(before)


def test_it_never_reads_a_future_row():
    rng = np.random.default_rng(11)
    x = stepped(n=1500, at=900).to_numpy()
    restart = np.array([300, 903, 1200])
    full = windowed_gaussian(x, 400, 50, 0.01, restart=restart)
    for i in (150, 299, 300, 301, 420, 902, 903, 904, 1003, 1199, 1350):
        future = x.copy()
        future[i + 1 :] = rng.normal(500, 300, len(x) - i - 1)  # anything at all after row i
        for later in ([], [i + 1, i + 7], [i + 60]):  # ... and restarts decided after row i
            out = windowed_gaussian(future, 400, 50, 0.01, restart=np.r_[restart[restart <= i], later])
            np.testing.assert_array_equal(out[: i + 1], full[: i + 1])


def test_onsets_are_the_first_rows_of_each_alarm_episode():
    fired = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    np.testing.assert_array_equal(onsets(fired), [0, 4, 6])
    assert onsets(np.zeros(5, dtype=bool)).size == 0


def test_after_a_level_shift_the_gaussian_step_stops_alarming_on_the_new_normal():
    s = stepped()
    ev_plain = engine.evaluate(s.to_numpy(), s.index.asi8, load_rules(gauss_rules()))
    ev = engine.evaluate(s.to_numpy(), s.index.asi8, load_rules(gauss_rules(reanchor=["level_shift"])))
    ls = onsets(ev.ratios["level_shift"] > 1)
    assert ls.size and 2000 <= ls[0] <= 2006  # level_shift sees the step within its 6-row window
    a = int(ls[0])
    # the other steps are untouched by the re-anchoring
    for name in ev.ratios:
        if name != "gaussian":
            np.testing.assert_array_equal(ev.ratios[name], ev_plain.ratios[name])
    # before the onset the step is the plain one; from it on, silent through the warm-up
    np.testing.assert_array_equal(ev.ratios["gaussian"][:a], ev_plain.ratios["gaussian"][:a])
    assert (ev.ratios["gaussian"][a : a + WARM] == 0).all()
    # then judged against the new level only: under its threshold, where the plain window (still
    # holding 2,000 rows of the old level) keeps the step over it after the same rows
    assert ev.ratios["gaussian"][a + WARM + 6 :].max() < 1
    assert ev_plain.ratios["gaussian"][a + WARM + 6 :].max() > 1


def test_re_anchored_detection_is_causal_and_finds_the_step_once():
    s = stepped()
    rules = gauss_rules(reanchor=["level_shift"])
    out = detect(s, rules)
    on = np.flatnonzero(out["is_anomaly"].to_numpy())
    assert any(2000 <= i <= 2006 for i in on)
    assert not [i for i in on if i > 2012]  # the new normal raises no second incident
    # cut just before the level-shift onset, right at it, just after it, inside the warm-up that
    # follows and after it
    ev = engine.evaluate(s.to_numpy(), s.index.asi8, load_rules(rules))
    a = int(onsets(ev.ratios["level_shift"] > 1)[0])
    cuts = [(k + 0.5) / len(s) for k in (a, a + 1, a + 2, a + 50, a + WARM + 20)]
    assert not causal_violations(s, lambda v: detect(v, rules)["is_anomaly"].to_numpy(), cuts)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"reanchor": ["nope"]}, "reanchor names another step"),
        ({"reanchor": ["gaussian"]}, "reanchor names another step"),
    ],
)
def test_reanchor_must_name_another_step(extra, message):
    with pytest.raises(DetectError, match=message):
        load_rules(gauss_rules(**extra))


def test_reanchor_needs_a_gauss_step_and_cannot_restart_on_a_gauss_step():
    spike = {"name": "spike", "input": "z", "detector": {"QuantileAD": {"high": 0.98}}, "reanchor": ["x"]}
    with pytest.raises(DetectError, match="needs input: gauss"):
        load_rules({"name": "bad", "steps": [spike]})
    other = {**gauss_step(), "name": "gaussian2"}
    rules = gauss_rules(reanchor=["gaussian2"])
    rules["steps"].append(other)
    with pytest.raises(DetectError, match="uses gauss itself"):
        load_rules(rules)


def test_reanchor_round_trips_and_the_candidates_use_it():
    rs = load_rules(gauss_rules(reanchor=["level_shift", "shift"]))
    assert rs.steps[-1].reanchor == ("level_shift", "shift")
    assert load_rules(rs.to_dict()) == rs
    names = {p.stem: load_rules(p) for p in CANDIDATES.glob("default_gaussian_reanchor*.yml")}
    assert names["default_gaussian_reanchor"].steps[-1].reanchor == ("level_shift",)
    assert len(names) >= 2
