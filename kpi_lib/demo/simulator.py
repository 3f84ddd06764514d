"""The live simulator: continues the business in real time, through the same ingest path as any source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from ..errors import KpiError
from .anomalies import Anomaly, active_injections, inject
from .business import Business, to_events

# --- the live simulator -------------------------------------------------------------------------


@dataclass
class SimulationStats:
    orders: int = 0
    seconds: float = 0.0
    label: str | None = None


def business_for_live(seed: int | None = None) -> Business:
    """The same business the warehouse holds (same products and customers), from the demo settings."""
    import json

    from .. import warehouse

    params = {"lines": 1_000_000, "days": 730, "seed": 42}
    with warehouse.connect_raw(autocommit=True) as conn:
        row = conn.execute("select value from ops.settings where key = 'demo'").fetchone()
    if row:
        params.update(json.loads(row[0]))
    if seed is not None:
        params["seed"] = seed
    return Business(lines=params["lines"], days=params["days"], seed=params["seed"])


def natural_rate() -> float:
    """Orders per second the demo business itself placed over the last week of its history.

    Simulating at this pace continues the business as it was; a faster stream is itself a surge
    that the hourly and daily rules (which learned from the history) rightly report.
    """
    from .. import warehouse

    with warehouse.connect_raw(autocommit=True) as conn:
        n = conn.execute(
            "with last as (select max(ordered_at) t from silver.orders where order_id like 'SO%%') "
            "select count(*) from silver.orders, last "
            "where order_id like 'SO%%' and ordered_at > last.t - interval '7 days'"
        ).fetchone()[0]
    if not n:
        raise KpiError("No demo history to take a pace from: run `kpi demo` first, or give --rate.")
    return n / (7 * 86400)


def simulate(
    rate: float | None = None,
    duration: float | None = None,
    anomaly: str | None = None,
    anomaly_after: float = 0.0,
    anomaly_minutes: float = 10.0,
    seed: int | None = None,
    tick: float = 0.2,
    stop=None,
    on_tick: Callable[[SimulationStats], None] | None = None,
) -> SimulationStats:
    """Stream live orders continuing the demo business into the warehouse, in real time.

    ``rate`` is the average orders per second (busier at the business's peak hours); None takes
    the business's own pace (:func:`natural_rate`). ``anomaly``
    injects a labelled incident (see ``LIVE_ANOMALIES``) ``anomaly_after`` seconds in, lasting
    ``anomaly_minutes`` (:func:`inject`); incidents injected elsewhere apply too.
    Runs until ``duration`` seconds pass or ``stop`` (a threading.Event) is set.
    """
    import time as _time

    from .. import stream, warehouse

    biz = business_for_live(seed)
    rate = natural_rate() if rate is None else rate
    rng = np.random.default_rng()
    stats = SimulationStats()
    extra: list[Anomaly] = []
    ing = stream.Ingestor("simulator")
    t_start = _time.monotonic()
    next_tick = t_start
    next_poll = t_start
    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            while True:
                now_m = _time.monotonic()
                if duration is not None and now_m - t_start >= duration:
                    break
                if stop is not None and stop.is_set():
                    break
                now = datetime.now(UTC)
                if anomaly and stats.label is None and now_m - t_start >= anomaly_after:
                    stats.label = inject(anomaly, anomaly_minutes).label_id
                    next_poll = now_m
                if now_m >= next_poll:  # incidents injected by anyone, e.g. `kpi inject`
                    extra = active_injections(conn)
                    next_poll = now_m + 2.0
                orders, lines = biz.live_orders(now - timedelta(seconds=tick), tick, rate, rng, extra)
                for ev in to_events(orders, lines, prefix="sim"):
                    ing.put(ev)
                stats.orders += len(orders)
                stats.seconds = now_m - t_start
                if on_tick:
                    on_tick(stats)
                next_tick += tick
                _time.sleep(max(0.0, next_tick - _time.monotonic()))
    finally:
        ing.close()
    return stats
