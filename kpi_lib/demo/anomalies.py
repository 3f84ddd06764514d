"""Labelled incidents: those the history carries, and live ones the simulator injects on request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from .world import CHANNELS, REGIONS


@dataclass(frozen=True)
class Anomaly:
    """An injected incident, with the KPI series on which it should be visible."""

    label_id: str
    kind: str
    description: str
    kpi: str
    grain: str
    dimension: str | None
    dim_value: str | None
    starts_at: datetime
    ends_at: datetime
    # multiplier on order intensity for matching (region, channel) cells, 1 = no effect
    region: str | None = None
    channel: str | None = None
    category: str | None = None
    demand: float = 1.0
    price: float = 1.0
    returns: float = 1.0
    ramp: bool = False  # effect grows linearly from 1 to `demand` over the window


LIVE_ANOMALIES = {
    "region_outage": dict(
        description="Checkout outage in Europe: orders fell to a trickle",
        kpi="orders",
        dimension="region",
        dim_value="Europe",
        region="Europe",
        demand=0.05,
    ),
    "payment_outage": dict(
        description="Payment provider outage: most orders fail",
        kpi="orders",
        dimension=None,
        dim_value=None,
        demand=0.1,
    ),
    "traffic_spike": dict(
        description="Bot traffic spike on the Mobile App in Asia Pacific",
        kpi="orders",
        dimension="region",
        dim_value="Asia Pacific",
        region="Asia Pacific",
        channel="Mobile App",
        demand=8.0,
    ),
    "price_bug": dict(
        description="Pricing bug: Electronics sold at half price",
        kpi="revenue",
        dimension="category",
        dim_value="Electronics",
        category="Electronics",
        price=0.5,
    ),
}


def live_anomaly(kind: str, start: datetime, minutes: float) -> Anomaly:
    """A labelled incident injected by the simulator (`kpi simulate --anomaly KIND`)."""
    if kind not in LIVE_ANOMALIES:
        raise ValueError(f"Unknown anomaly {kind!r}. Kinds: {', '.join(LIVE_ANOMALIES)}.")
    spec = dict(LIVE_ANOMALIES[kind])
    label = f"sim-{kind}-{start:%Y%m%dT%H%M%S}"
    kind_name = {"traffic_spike": "bot_surge", "price_bug": "pricing_bug"}.get(kind, kind)
    return Anomaly(
        label,
        kind_name,
        spec.pop("description"),
        spec.pop("kpi"),
        "minute",
        spec.pop("dimension"),
        spec.pop("dim_value"),
        start,
        start + timedelta(minutes=minutes),
        **spec,
    )


def demand_multipliers(anomalies, hours: pd.DatetimeIndex) -> np.ndarray:
    """Per (hour, region, channel) factor on order intensity from the anomalies that change demand."""
    mult = np.ones((len(hours), len(REGIONS), len(CHANNELS)))
    for a in anomalies:
        if a.demand == 1.0:
            continue
        s, e = pd.Timestamp(a.starts_at), pd.Timestamp(a.ends_at)
        inside = (hours >= s) & (hours < e)
        if not inside.any():
            continue
        if a.ramp:  # grows linearly to the full effect over the first two thirds of the window
            frac = np.clip((hours[inside] - s) / (e - s), 0, 1)
            factor = 1 + (a.demand - 1) * np.minimum(1.0, frac * 1.5)
        else:
            factor = np.full(inside.sum(), a.demand)
        rs = [REGIONS.index(a.region)] if a.region else range(len(REGIONS))
        cs = [CHANNELS.index(a.channel)] if a.channel else range(len(CHANNELS))
        for r in rs:
            for c in cs:
                mult[inside, r, c] *= factor
    return mult


def inject(kind: str, minutes: float = 10.0, after_s: float = 0.0) -> Anomaly:
    """Label a live incident; every running simulator applies it from its start to its end.

    This is how `kpi inject` (and `kpi simulate --anomaly`) reaches the simulator `kpi serve`
    runs: through ``ops.anomaly_labels`` (source 'simulator'), which is also the ground truth.
    """
    from .. import warehouse

    a = live_anomaly(kind, datetime.now(UTC) + timedelta(seconds=after_s), minutes)
    with warehouse.connect_raw(autocommit=True) as conn:
        conn.execute(
            "insert into ops.anomaly_labels (label_id, kind, description, kpi, grain, dimension, dim_value,"
            " starts_at, ends_at, source) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'simulator')"
            " on conflict (label_id) do nothing",
            [
                a.label_id,
                a.kind,
                a.description,
                a.kpi,
                a.grain,
                a.dimension,
                a.dim_value,
                a.starts_at,
                a.ends_at,
            ],
        )
    return a


def active_injections(conn) -> list[Anomaly]:
    """The simulator labels in force now (their kind is in the label id: sim-<kind>-<time>)."""
    rows = conn.execute(
        "select label_id, starts_at, ends_at from ops.anomaly_labels where source = 'simulator' "
        "and ends_at > now() and starts_at <= now() + interval '1 minute'"
    ).fetchall()
    out = []
    for label_id, starts_at, ends_at in rows:
        kind = next((k for k in LIVE_ANOMALIES if label_id.startswith(f"sim-{k}-")), None)
        if kind:
            a = live_anomaly(kind, starts_at, (ends_at - starts_at).total_seconds() / 60)
            out.append(a)
    return out
