"""The demo business: the same seed gives the same business, and what it generates is a believable
silver model (orders in its span, returns as negative lines, labelled incidents inside the history)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pandas as pd
import pytest

from kpi_lib.demo import Business
from kpi_lib.schema import LINE_COLUMNS

END = datetime(2025, 11, 30, 18, 0, tzinfo=UTC)  # pinned: the demo's "now" is an argument


def _fingerprint(biz: Business) -> str:
    h = hashlib.sha256()
    for orders, lines in biz.history():
        h.update(pd.util.hash_pandas_object(orders, index=False).to_numpy().tobytes())
        h.update(pd.util.hash_pandas_object(lines, index=False).to_numpy().tobytes())
    return h.hexdigest()


def test_the_same_seed_is_the_same_business_and_another_seed_is_not():
    one = Business(lines=8_000, days=30, seed=5, end=END)
    assert _fingerprint(one) == _fingerprint(Business(lines=8_000, days=30, seed=5, end=END))
    assert _fingerprint(one) != _fingerprint(Business(lines=8_000, days=30, seed=6, end=END))


def test_history_is_silver_shaped_and_inside_its_span():
    biz = Business(lines=20_000, days=60, seed=9, end=END)
    frames = list(biz.history())
    orders = pd.concat([o for o, _ in frames], ignore_index=True)
    lines = pd.concat([ln for _, ln in frames], ignore_index=True)
    assert list(lines.columns)[: len(LINE_COLUMNS)] == LINE_COLUMNS
    at = pd.to_datetime(orders["ordered_at"], utc=True)
    assert at.min() >= pd.Timestamp(biz.start) and at.max() < pd.Timestamp(biz.end)
    assert len(lines) == pytest.approx(20_000, rel=0.1)  # about the lines asked for
    assert orders["order_id"].is_unique and set(lines["order_id"]) <= set(orders["order_id"])
    returns = lines[lines["quantity"] < 0]
    assert len(returns) and (returns["unit_price"] > 0).all()  # a return is a negative quantity
    assert {"North America", "Europe"} <= set(orders["region"])


def test_labelled_incidents_lie_inside_the_history():
    biz = Business(lines=20_000, days=120, seed=3, end=END)
    labels = biz.labels()
    assert len(labels) >= 1
    assert (pd.to_datetime(labels["starts_at"], utc=True) >= pd.Timestamp(biz.start)).all()
    assert (pd.to_datetime(labels["ends_at"], utc=True) <= pd.Timestamp(biz.end)).all()
    assert set(labels["kpi"]) <= {"revenue", "orders", "aov", "return_rate"}


def test_too_short_a_history_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least 14 days"):
        Business(lines=1_000, days=5, seed=1, end=END)
