"""A seeded, believable retail business: history for the warehouse, live orders for the simulator.

The model is small and explicit. Orders arrive per hour, region and channel with an intensity made
of growth, yearly, weekly and daily seasonality (in each region's local time), holidays and
promotions. Customers have a home region, a favourite channel and a propensity to come back.
Products belong to categories with their own prices, margins and return rates. Returns are later
orders with negative quantities. A handful of labelled anomalies (an outage, a pricing bug, a bot
surge, a slow decline, ...) are injected so detection can be measured against ground truth.

    >>> biz = Business(lines=50_000, days=90, seed=7)            # doctest: +SKIP
    >>> for orders, lines in biz.history(): ...                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .. import loader
from ..loader import DemoSummary
from .anomalies import LIVE_ANOMALIES, Anomaly, inject
from .business import Business, to_events
from .simulator import SimulationStats, business_for_live, natural_rate, simulate

ProgressFn = Callable[[int, int, str], None]  # (done, total, what)


def load_demo(
    lines: int = 1_000_000,
    days: int = 730,
    seed: int = 42,
    end: datetime | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> DemoSummary:
    """Replace the warehouse's data with a freshly generated demo business and build gold."""
    biz = Business(lines=lines, days=days, seed=seed, end=end)
    return loader.load_business(biz, progress=progress, force=force)


__all__ = [
    "LIVE_ANOMALIES",
    "Anomaly",
    "Business",
    "DemoSummary",
    "SimulationStats",
    "business_for_live",
    "inject",
    "load_demo",
    "natural_rate",
    "simulate",
    "to_events",
]
