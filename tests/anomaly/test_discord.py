"""The shape-novelty input (``input: discord``, tenth pass in kpi_lib/anomaly/README.md): each row's
distance from the last ``length`` rows, z-normalised, to their nearest earlier subsequence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly import detect, explain, load_rules
from kpi_lib.anomaly.discord import left_discord
from kpi_lib.anomaly.incidents import build
from kpi_lib.anomaly.protocol import causal_violations
from kpi_lib.errors import DetectError

from .conftest import CANDIDATES


def brute_force(
    x: np.ndarray, m: int, window: int, min_rows: int, floor: float, pieces: int = 12
) -> np.ndarray:
    """The definition, one row and one neighbour at a time."""
    subs = []
    for t in range(m - 1, len(x)):
        w = x[t - m + 1 : t + 1]
        if not np.isfinite(w).all():
            subs.append(None)
            continue
        sd = max(w.std(), floor * np.abs(w).mean())
        z = (w - w.mean()) / sd if sd > 0 else np.zeros(m)
        k = min(pieces, m)
        if k < m:
            edges = (np.arange(k) * m) // k
            z = np.add.reduceat(z, edges) / np.diff(np.append(edges, m))
        subs.append(z)
    out = np.full(len(x), np.nan)
    for j, z in enumerate(subs):
        earlier = [c for c in subs[max(0, j - window) : max(0, j - m + 1)] if c is not None]
        if z is not None and len(earlier) >= min_rows:
            out[j + m - 1] = min(np.sqrt(((z - c) ** 2).sum() / len(c)) for c in earlier)
    return out


def wavy(n: int = 900, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50 + 10 * np.sin(np.arange(n) / 5) + rng.normal(0, 2, n)


@pytest.mark.parametrize("m", [12, 30])
def test_it_is_the_distance_to_the_nearest_earlier_subsequence(m):
    x = wavy()
    x[[300, 301, 640]] = np.nan  # a subsequence with a gap is neither judged nor anyone's neighbour
    got = left_discord(x, m, 200, 50, 0.01)
    np.testing.assert_allclose(got, brute_force(x, m, 200, 50, 0.01), atol=1e-3)  # float32 products
    assert np.isnan(got[300 : 300 + m]).all() and np.isnan(got[640 : 640 + m]).all()
    assert np.isnan(got[: m - 1 + m + 50 - 1]).all()  # fewer than 50 earlier subsequences
    assert np.isfinite(got[m - 1 + m + 50]) and np.isfinite(got[-1])


def test_a_new_shape_stands_out_and_a_repeated_one_does_not():
    x = wavy(2000)
    x[1500:1512] = x[1500:1512].mean()  # the rhythm stops for an hour
    d = left_discord(x, 12, 6400, 100, 0.01)
    assert np.nanargmax(d[1000:]) + 1000 in range(1500, 1524)
    # a flat hour is z-normalised to zeros: 1 from every shape with a spread, above the calm rows'
    assert d[1511] == pytest.approx(1.0) and d[1511] > 1.3 * np.nanquantile(d[1000:1490], 0.99)


def test_a_level_that_moved_is_no_new_shape_once_it_has_moved():
    x = wavy(3000)
    x[2000:] += 60  # z-normalised, the wiggles after the step look like those before it
    d = left_discord(x, 12, 6400, 100, 0.01)
    assert d[2012:].max() <= 1.2 * np.nanmax(d[1000:2000])


def test_flat_stretches_do_not_blow_noise_up():
    x = np.full(1200, 100.0)
    x[::7] += 1e-9  # rounding noise on a flat line
    d = left_discord(x, 12, 6400, 100, 0.01)
    assert np.nanmax(d) < 1e-6


def test_it_never_reads_a_future_row():
    rng = np.random.default_rng(3)
    x = wavy(1500)
    full = left_discord(x, 24, 400, 50, 0.01)
    for i in (60, 130, 131, 700, 1000, 1499):
        future = x.copy()
        future[i + 1 :] = rng.normal(500, 300, len(x) - i - 1)
        np.testing.assert_array_equal(left_discord(future, 24, 400, 50, 0.01)[: i + 1], full[: i + 1])


def test_the_discord_rule_sets_and_the_default_alarm_on_a_stuck_sensor_causally():
    idx = pd.date_range("2024-01-01", periods=3200, freq="5min")
    rng = np.random.default_rng(5)
    x = 100 + 30 * np.sin(np.arange(3200) / 288 * 2 * np.pi) + rng.normal(0, 1, 3200)
    x[2900:2948] = np.round(x[2900])  # the sensor repeats one value for 4 hours, inside its range
    s = pd.Series(x, index=idx)
    discord12, discord48 = (
        load_rules(CANDIDATES / f) for f in ("default_discord12.yml", "default36_with_discord.yml")
    )
    for m, rules in ((12, discord12), (48, discord48), (0, load_rules("default"))):
        assert [st.length for st in rules.steps if st.input == "discord"] == ([m] if m else [])
        result = detect(s, rules)
        onsets = np.flatnonzero(result["is_anomaly"].to_numpy())
        assert [i for i in onsets if i >= 1000] and all(2900 <= i < 2960 for i in onsets if i >= 1000), onsets
        assert not causal_violations(s, lambda v, r=rules: detect(v, r)["is_anomaly"].to_numpy())
    # 48 rows see the stuck stretch as the newest shape after the warm-up; 12 rows at the cycle's flat
    # tops are mostly noise, z-normalised to full scale, and new every time
    shape = left_discord(x, 48, 6400, 100, 0.01)
    assert 2900 <= 1000 + np.nanargmax(shape[1000:]) < 2948 + 48
    assert np.nanmax(shape[2900:2996]) > 1.5 * np.nanmax(shape[1000:2890])


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"input": "discord"}, "needs one"),
        ({"input": "z", "length": 12}, "goes with input: discord"),
        ({"input": "discord", "length": 2}, "from 4 to 288"),
        ({"input": "discord", "length": 12.5}, "from 4 to 288"),
    ],
)
def test_a_wrong_length_is_a_clear_error(step, message):
    spec = {"steps": [{"name": "d", "detector": {"QuantileAD": {"high": 0.98}}, **step}]}
    with pytest.raises(DetectError, match=message):
        load_rules(spec)


def test_an_incident_the_pattern_step_opened_says_so_in_words():
    idx = pd.date_range("2015-01-01", periods=200, freq="30min")
    x = np.full(200, 15_000.0)
    x[150:160] = [14_700, 9_000, 2_000, 300, 8, 40, 900, 6_000, 11_000, 14_000]
    frame = pd.DataFrame(
        {
            "value": x,
            "expected": 15_800.0,
            "lower": 14_000.0,
            "upper": 17_000.0,
            "score": np.where(np.arange(200) == 159, 1.3, 0.2),
            "rule": np.where(np.arange(200) == 159, "discord", ""),
        },
        index=idx,
    )
    ids = np.where(np.arange(200) >= 159, 1, 0)
    (inc,) = build(frame, ids, label="Taxi trips", shape_steps={"discord": 12})
    assert inc.explanation == (
        "Taxi trips moved unlike anything in the previous 3 days: in the 6 hours to 2015-01-04 07:30 "
        "it ran between 8 and 15k (about 15.8k expected); still ongoing."
    )
    ended = build(
        frame, np.where((np.arange(200) >= 159) & (np.arange(200) < 170), 1, 0), shape_steps={"discord": 12}
    )[0]
    assert ended.explanation.endswith("(about 15.8k expected), until 2015-01-04 12:30.")
    assert ended.explanation.startswith("Value moved unlike anything")
    # without the step's length known, the pattern sentence: no value left the usual range
    assert build(frame, ids, label="Taxi trips")[0].explanation == (
        "Taxi trips showed a pattern not seen before from 2015-01-04 07:30 (14k, 11% below the expected "
        "15.8k; usual range 14k–17k); still ongoing."
    )


@pytest.mark.parametrize(
    ("t0", "t1", "words"),
    [
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-23"), "22 days"),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02 12:00"), "36 hours"),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 04:00"), "4 hours"),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 01:00"), "60 minutes"),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 00:01"), "60 seconds"),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 00:02"), "2 minutes"),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 00:00:01"), "1 second"),
        (100, 148, "48 rows"),
    ],
)
def test_durations_in_words(t0, t1, words):
    assert explain.duration(t0, t1) == words
