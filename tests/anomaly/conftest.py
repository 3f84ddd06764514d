"""Synthetic series shared by the anomaly tests: small, seeded, realistic shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def hourly_revenue(days: int = 42, seed: int = 0, start: str = "2024-01-01") -> pd.Series:
    """Revenue per hour: a strong daily cycle (near zero at night), a weekly cycle, 3% noise."""
    idx = pd.date_range(start, periods=days * 24, freq="h")
    hour, dow = idx.hour.to_numpy(), idx.dayofweek.to_numpy()
    daily = 0.15 + 0.85 * np.clip(np.sin((hour - 6) / 16 * np.pi), 0, None)
    weekly = np.where(dow >= 5, 0.7, 1.0)
    rng = np.random.default_rng(seed)
    values = 12_000 * daily * weekly * (1 + 0.03 * rng.standard_normal(len(idx)))
    return pd.Series(values, index=idx, name="revenue")


def random_walk(n: int = 2500, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="5min")
    return pd.Series(100 + np.cumsum(rng.standard_normal(n)), index=idx, name="rw")


def spiky(n: int = 2500, seed: int = 2) -> pd.Series:
    """Mostly low values with frequent normal bursts, like CPU or request counts."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="5min")
    v = rng.gamma(2.0, 1.0, n) + np.where(rng.random(n) < 0.03, rng.uniform(5, 15, n), 0)
    v[int(n * 0.8) : int(n * 0.8) + 30] += 40  # one real incident
    return pd.Series(v, index=idx, name="cpu")


@pytest.fixture
def revenue() -> pd.Series:
    return hourly_revenue()


CANDIDATES = Path(__file__).resolve().parents[2] / "benchmarks" / "candidates"


def gauss_step(**extra) -> dict:
    """The seventh pass's gaussian step, as its candidate file has it (6-row mean, threshold fitted
    on at least 1,000 past values), with ``extra`` keys (``reanchor``, ``recent``)."""
    from kpi_lib.anomaly import load_rules

    steps = load_rules(CANDIDATES / "default_gaussian.yml").to_dict()["steps"]
    return {**next(s for s in steps if s["name"] == "gaussian"), **extra}


def gauss_rules(**extra) -> dict:
    """default's steps + that gaussian step."""
    from kpi_lib.anomaly import load_rules

    steps = load_rules("default").to_dict()["steps"]
    return {"extends": "default", "name": "gauss_test", "steps": [*steps, gauss_step(**extra)]}


def stepped(n: int = 3000, at: int = 2000, seed: int = 5) -> pd.Series:
    """5-minute values around 50 (sd 2), then a permanent step of +20 (10 sd) at row ``at``."""
    rng = np.random.default_rng(seed)
    x = 50 + rng.normal(0, 2, n)
    x[at:] += 20
    return pd.Series(x, pd.date_range("2024-01-01", periods=n, freq="5min"), name="latency")
