"""Business materiality: which statistically unusual incidents are worth a person's attention, and
how severe they are, judged by what they mean for the KPI's total rather than by a z-score.

A detector finds what is *unusual* for a series; a single order in a country that sells one a month
is unusual. The warehouse scan keeps an incident only if it is also *material*:

* **volume**: the slice (one country, one category) holds at least ``min_volume_share`` of the
  orders (``volume_kpi``) over the history read, and the incident involves at least ``min_units``
  orders (usual or actual, over the periods that carry it): a day's revenue of a country that sees
  one order a day is one customer's basket, while a week without its usual 2.4 orders a day, or a
  day with 14 instead of 6, is an incident;
* **impact**: the deviation at the incident's peak is at least ``min_impact_share`` of the KPI
  overall's expected value in that period (ratios: the slice's volume share times the relative
  change), and for counts at least ``min_units`` (a single order is never an incident);
* **a deviation at all**: value and expected differ.

Before any of that, a ratio's period with fewer than ``min_ratio_volume`` orders behind it is not
judged (:func:`kpi_lib.anomaly.detect`'s ``thin``): an hour with one order and a refund has an
average order value of -$360.

Severity comes from the impact: ``high`` from ``high_share`` of the total (or a change of at least
``high_change`` on at least ``high_share_with_change``), ``medium`` from ``medium_share`` (or
``medium_change`` on ``medium_share_with_change``), else ``low``. A 100% outage of a region holding
5% of revenue is high; a 40% dip of a country holding 1.5% is low.

Defaults below; override any of them in catalog.yml ``metadata.materiality``. Minute grain (the live
alert listener) is not judged by default: its rules have their own minimum move (``min_dev``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from kpi_lib.errors import DetectError


@dataclass(frozen=True)
class Policy:
    """Materiality thresholds (shares are fractions: 0.01 = 1%)."""

    min_volume_share: float = 0.01
    min_impact_share: float = 0.01
    min_units: float = 3.0  # for count KPIs (unit: count)
    #: the fewest orders (``volume_kpi``) behind a ratio's period for it to be judged at all: a return
    #: rate over 3 orders swings from 0% to 100% (the demo's hourly return rates read 1,000% above
    #: the expected 9% at 5 orders; none at 10)
    min_ratio_volume: float = 10.0
    volume_kpi: str = "orders"  # a ratio slice's volume is its share of this KPI
    grains: tuple[str, ...] = ("hour", "day")
    high_share: float = 0.10
    high_change: float = 0.5
    high_share_with_change: float = 0.03
    medium_share: float = 0.03
    medium_change: float = 0.25
    medium_share_with_change: float = 0.015


def policy(spec: Mapping[str, Any] | None = None) -> Policy:
    """The policy from a catalog ``materiality`` mapping (missing keys keep their defaults)."""
    if not spec:
        return Policy()
    if not isinstance(spec, Mapping):
        raise DetectError(f"catalog.yml metadata.materiality must be a mapping, got {spec!r}.")
    known = {f.name: f for f in fields(Policy)}
    extra = sorted(set(spec) - set(known))
    if extra:
        raise DetectError(
            f"catalog.yml metadata.materiality: unknown key(s) {', '.join(extra)}. "
            f"Allowed: {', '.join(known)}."
        )
    values: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "grains":
            values[key] = tuple(str(g) for g in ([value] if isinstance(value, str) else value or ()))
        elif key == "volume_kpi":
            values[key] = str(value)
        else:
            try:
                values[key] = float(value)
            except (TypeError, ValueError) as exc:
                raise DetectError(
                    f"catalog.yml metadata.materiality.{key} must be a number, got {value!r}."
                ) from exc
            if values[key] < 0:
                raise DetectError(f"catalog.yml metadata.materiality.{key} must be 0 or more.")
    return Policy(**values)


@dataclass(frozen=True)
class Verdict:
    """Whether an incident is material, why not if not, and its business severity."""

    material: bool
    reason: str  # '' when material, else why not in words
    impact: float  # |deviation| at the peak as a share of the KPI's typical total per period
    volume: float  # the slice's share of the KPI's total (1.0 for the KPI overall)
    severity: str  # low | medium | high (by impact)


def severity(impact: float, change: float, p: Policy) -> str:
    """Business severity from the impact share and the relative change (both fractions)."""
    change = change if math.isfinite(change) else math.inf
    if impact >= p.high_share or (change >= p.high_change and impact >= p.high_share_with_change):
        return "high"
    if impact >= p.medium_share or (change >= p.medium_change and impact >= p.medium_share_with_change):
        return "medium"
    return "low"


def judge(
    *,
    value: float,
    expected: float,
    additive: bool,
    count: bool,
    volume_share: float,
    total: float,
    p: Policy,
    volume_in_incident: float | None = None,
) -> Verdict:
    """Judge one incident at its peak.

    ``volume_share``: the slice's share of ``volume_kpi`` (orders) over the history read, 1.0 for
    the KPI overall or when unknown; ``volume_in_incident``: the slice's orders over the periods that
    carry the incident, usual or actual, whichever is larger (None when unknown). ``total``: the KPI
    overall's expected value at the peak (additive KPIs; ignored for ratios).
    """
    dev = abs(value - expected) if math.isfinite(value) and math.isfinite(expected) else math.nan
    change = dev / abs(expected) if math.isfinite(dev) and abs(expected) > 1e-12 else math.inf
    if not math.isfinite(dev) or dev <= 1e-9 * max(1.0, abs(expected)):
        return Verdict(False, "no deviation", 0.0, volume_share, "low")
    if additive:
        impact = dev / total if total > 0 else 1.0  # NaN total (unknown): judged on volume alone
    else:
        impact = volume_share * (change if math.isfinite(change) else 1.0)
    sev = severity(impact, change, p)
    if volume_share < p.min_volume_share:
        return Verdict(
            False,
            f"volume {volume_share:.2%} of the total is under {p.min_volume_share:.2%}",
            impact,
            volume_share,
            sev,
        )
    if volume_in_incident is not None and volume_in_incident < p.min_units:
        return Verdict(
            False,
            f"volume of {volume_in_incident:.1f} {p.volume_kpi} in the incident is under {p.min_units:g}",
            impact,
            volume_share,
            sev,
        )
    if impact < p.min_impact_share:
        return Verdict(
            False,
            f"impact {impact:.2%} of the total is under {p.min_impact_share:.2%}",
            impact,
            volume_share,
            sev,
        )
    if count and dev < p.min_units:
        return Verdict(
            False, f"a deviation of {dev:g} is under {p.min_units:g} units", impact, volume_share, sev
        )
    return Verdict(True, "", impact, volume_share, sev)
