"""Raw novelty (``input: novelty``, thirty-seventh look in kpi_lib/anomaly/README.md): how far the
last ``length`` rows, as they are, lie from every earlier stretch, guarded where the series' own
past wanders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, engine, load_rules
from kpi_lib.anomaly.discord import left_discord
from kpi_lib.anomaly.incidents import build
from kpi_lib.anomaly.novelty import novelty, past_median, wander
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.errors import DetectError

from .conftest import CANDIDATES


def brute_force_raw(x: np.ndarray, m: int, window: int, min_rows: int, centred: bool = False) -> np.ndarray:
    """The raw definition, one row and one neighbour at a time: 12 piece means, less the first
    rows' median (or the stretch's own mean), in units of the first rows' mean absolute deviation."""
    head = x[:min_rows][np.isfinite(x[:min_rows])]
    centre = np.median(head)
    unit = np.mean(np.abs(head - centre)) or max(abs(centre), 1.0)
    k = min(12, m)
    edges = (np.arange(k) * m) // k
    subs = []
    for t in range(m - 1, len(x)):
        w = x[t - m + 1 : t + 1]
        if not np.isfinite(w).all():
            subs.append(None)
            continue
        pieces = np.add.reduceat(w, edges) / np.diff(np.append(edges, m))
        subs.append((pieces - (w.mean() if centred else centre)) / unit)
    out = np.full(len(x), np.nan)
    for j, z in enumerate(subs):
        earlier = [c for c in subs[max(0, j - window) : max(0, j - m + 1)] if c is not None]
        if z is not None and len(earlier) >= min_rows:
            out[j + m - 1] = min(np.sqrt(((z - c) ** 2).sum() / len(c)) for c in earlier)
    return out


def bounded(n: int, seed: int = 0) -> np.ndarray:
    """A series that returns to its level: a daily rhythm at 5 minutes, with noise."""
    rng = np.random.default_rng(seed)
    return 100 + 20 * np.sin(np.arange(n) / 288 * 2 * np.pi) + rng.normal(0, 2, n)


def walk(n: int, seed: int = 0) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(seed).standard_normal(n))


@pytest.mark.parametrize(("m", "centred"), [(12, False), (30, False), (30, True)])
def test_raw_novelty_is_the_distance_to_the_nearest_earlier_stretch_as_it_is(m, centred):
    x = bounded(700)
    x[300] = np.nan  # a stretch with a gap is neither judged nor anyone's neighbour
    got = left_discord(x, m, 200, 50, 0.01, raw=True, centred=centred)
    np.testing.assert_allclose(got, brute_force_raw(x, m, 200, 50, centred), rtol=1e-3, atol=1e-3)
    assert np.isnan(got[300 : 300 + m]).all() and np.isfinite(got[-1])


def test_wander_tells_a_random_walk_from_a_series_that_returns_to_its_level():
    n = 4032  # two weeks at 5 minutes
    assert 0.5 < wander(walk(n))[-1] <= 1.0
    assert wander(bounded(n))[-1] < 0.01
    assert wander(np.random.default_rng(1).normal(10, 1, n))[-1] < 0.01  # noise: about 1/288
    # a random walk at any level and scale
    assert wander(1e9 + 1e6 * walk(n))[-1] == pytest.approx(wander(walk(n))[-1], rel=1e-6)
    assert np.isnan(wander(walk(n))[: 2 * 288 + 287]).all()  # too few day-long moves to say


def test_a_new_level_is_news_on_a_bounded_series_and_routine_on_a_random_walk():
    n = 4032
    x = bounded(n)
    x[3500:3560] += 45  # five hours above anything the rhythm reached
    nov = novelty(x, 12, 6400, 100, 0.01)
    assert 3500 <= 1000 + np.nanargmax(nov[1000:]) < 3572
    assert np.nanmax(nov[3500:3572]) > 3 * np.nanquantile(nov[1000:3490], 0.999)

    # a random walk's records: its level novelty is high at each new level, the guarded one is not
    y = walk(n, seed=4)
    raw = left_discord(y, 12, 6400, 100, 0.01, raw=True)
    guarded = novelty(y, 12, 6400, 100, 0.01)
    assert np.all(guarded[np.isfinite(raw)] <= raw[np.isfinite(raw)] + 1e-12)
    top = np.flatnonzero(raw >= np.nanquantile(raw[1000:], 0.99))
    top = top[top >= 1000]
    assert np.median(guarded[top] / raw[top]) < 0.5


def test_past_median_reads_only_earlier_rows():
    x = np.arange(1000.0)
    m = past_median(x)
    assert np.isnan(m[:32]).all()
    # each row's is the median of the rows before a refit at most 256 rows back: arange's median of
    # its first b rows is (b - 1) / 2
    start = 2 * m[32:] + 1
    assert (start <= np.arange(32, 1000)).all() and (start > np.arange(32, 1000) - 256).all()
    assert len(np.unique(m[32:])) > 10  # refit as it goes


@pytest.mark.parametrize("centred", [False, True])
def test_it_never_reads_a_future_row(centred):
    rng = np.random.default_rng(3)
    x = walk(1500, seed=2)
    assert np.nanmax(wander(x)[:1400]) > 0.5  # it wanders: the guard is on
    full = novelty(x, 24, 400, 50, 0.01, centred=centred)
    for i in (60, 700, 1000, 1499):
        future = x.copy()
        future[i + 1 :] = rng.normal(500, 300, len(x) - i - 1)
        np.testing.assert_array_equal(
            novelty(future, 24, 400, 50, 0.01, centred=centred)[: i + 1], full[: i + 1]
        )


def test_the_candidate_alarms_on_a_new_level_causally():
    rules = load_rules(CANDIDATES / "default37_wander.yml")
    assert [s.share for s in rules.steps if s.input.startswith("novelty")] == pytest.approx([1 / 3] * 3)
    idx = pd.date_range("2024-01-01", periods=4032, freq="5min")
    x = bounded(4032, seed=5)
    x[3500:3560] += 45
    s = pd.Series(x, index=idx)
    result = detect(s, rules)
    onsets = [i for i in np.flatnonzero(result["is_anomaly"].to_numpy()) if i >= 1000]
    assert onsets and all(3500 <= i < 3572 for i in onsets), onsets
    assert not causal_violations(s, lambda v: detect(v, rules)["is_anomaly"].to_numpy())


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"input": "novelty"}, "needs one"),
        ({"input": "novelty_centred", "length": 500}, "from 4 to 288"),
        ({"input": "novelty", "length": 12, "share": 0}, "more than 0 and at most 1"),
        ({"input": "novelty", "length": 12, "share": True}, "more than 0 and at most 1"),
    ],
)
def test_a_wrong_step_is_a_clear_error(step, message):
    spec = {"steps": [{"name": "n", "detector": {"QuantileAD": {"high": 0.98}}, **step}]}
    with pytest.raises(DetectError, match=message):
        load_rules(spec)


def test_a_novelty_incident_counts_the_week_its_search_reached_back():
    rules = load_rules("default")
    assert engine.shape_windows(rules) == {"novelty_12": 2016, "novelty_48": 2016, "novelty_288": 2016}
    idx = pd.date_range("2024-03-01", periods=5000, freq="5min")
    alarm = 4800
    frame = pd.DataFrame(
        {
            "value": np.where(np.arange(5000) >= alarm - 47, 180.0, 100.0),
            "expected": 100.0,
            "lower": 90.0,
            "upper": 110.0,
            "score": np.where(np.arange(5000) == alarm, 1.4, 0.2),
            "rule": np.where(np.arange(5000) == alarm, "novelty_48", ""),
        },
        index=idx,
    )
    ids = np.where(np.arange(5000) >= alarm, 1, 0)
    (inc,) = build(
        frame,
        ids,
        label="Latency",
        shape_steps=engine.shape_lengths(rules),
        shape_windows=engine.shape_windows(rules),
    )
    assert inc.explanation.startswith(
        "Latency moved unlike anything in the previous 7 days: in the 4 hours to "
    )
