"""The ADTK shim: every ADTK piece kpi_lib.anomaly uses runs on the pinned pandas/numpy/matplotlib."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import kpi_lib.anomaly  # noqa: E402,F401  (applies the shim)
from kpi_lib.anomaly import compat, rules  # noqa: E402


@pytest.fixture
def s() -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=24 * 20, freq="h")
    rng = np.random.default_rng(0)
    v = 10 + np.sin(np.arange(len(idx)) / 24 * 2 * np.pi) + 0.1 * rng.standard_normal(len(idx))
    v[300:306] += 5
    return pd.Series(v, index=idx)


def _detector(name: str):
    from adtk import detector

    params = {
        "SeasonalAD": {"freq": 24},
        "LevelShiftAD": {"window": 5},
        "VolatilityShiftAD": {"window": 10},
        "ThresholdAD": {"high": 12},
        "QuantileAD": {"high": 0.99},
    }.get(name, {})
    return getattr(detector, name)(**params)


@pytest.mark.parametrize("name", rules.BOUND_DETECTORS + rules.REFIT_DETECTORS)
def test_every_detector_runs_without_warnings(s, name):
    model = _detector(name)
    with warnings.catch_warnings(record=True) as seen:
        out = model.detect(s) if name == "ThresholdAD" else model.fit_detect(s)
    assert len(out) == len(s)
    assert out.fillna(False).astype(bool).any(), f"{name} found nothing in an obvious +5 shift"
    assert not [w for w in seen if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("name", rules.TRANSFORMERS)
def test_every_transformer_runs(s, name):
    from adtk import transformer

    out = getattr(transformer, name)(window=3, agg="mean", center=False).transform(s)
    assert len(out) == len(s) and out.iloc[10:].notna().all()


def test_double_rolling_with_time_window_needs_series_append(s):
    from adtk.transformer import DoubleRollingAggregate

    out = DoubleRollingAggregate(window="3h", center=False, agg="mean").transform(s)
    assert out.iloc[10:].notna().all()


@pytest.mark.parametrize("name", rules.AGGREGATORS)
def test_every_aggregator_runs_without_warnings(s, name):
    from adtk import aggregator, detector

    frame = pd.DataFrame(
        {"a": detector.PersistAD().fit_detect(s), "b": detector.LevelShiftAD(window=5).fit_detect(s)}
    )
    with warnings.catch_warnings(record=True) as seen:
        out = getattr(aggregator, name)().aggregate(frame)
    assert len(out) == len(s)
    assert not [w for w in seen if issubclass(w.category, FutureWarning)]


def test_pipenet_summary(s, capsys):
    from adtk.aggregator import OrAggregator
    from adtk.detector import LevelShiftAD, PersistAD
    from adtk.pipe import Pipenet

    pipe = Pipenet(
        {
            "persist": {"model": PersistAD(), "input": "original"},
            "shift": {"model": LevelShiftAD(window=5), "input": "original"},
            "any": {"model": OrAggregator(), "input": ["persist", "shift"]},
        }
    )
    pipe.fit(s)
    pipe.summary()
    text = capsys.readouterr().out
    assert "LevelShiftAD" in text and "OrAggregator" in text


def test_visualization_plot_with_agg(s, tmp_path):
    from adtk.detector import PersistAD
    from adtk.visualization import plot

    anomalies = PersistAD().fit_detect(s)
    axes = plot(s, anomaly=anomalies, anomaly_tag="span")
    axes = plot(s, anomaly=anomalies, anomaly_tag="marker")
    axes[0].figure.savefig(tmp_path / "adtk.png")
    assert (tmp_path / "adtk.png").stat().st_size > 1000


def test_apply_is_idempotent_and_only_fills_gaps():
    before = pd.DataFrame.append
    compat.apply()
    compat.apply()
    assert pd.DataFrame.append is before
    df = pd.DataFrame({"a": [1]}).append(pd.DataFrame({"a": [2]}), ignore_index=True)
    assert df["a"].tolist() == [1, 2]
    assert pd.Series([1]).append(pd.Series([2]), ignore_index=True).tolist() == [1, 2]
