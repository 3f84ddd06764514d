"""Which dimension values explain an incident: each value's share of the total deviation.

    from kpi_lib.anomaly import attribute

    by_region = {"Europe": s_eu, "Asia Pacific": s_ap, ...}          # orders per hour, per region
    a = attribute(by_region, (incident.start, incident.end), dimension="region")
    a.text        # 'Europe accounts for 92% of the drop'
    a.shares      # value, actual, expected, deviation, change (vs its own expected), share

Each value's deviation is its actual minus its *own* expected value (from :func:`detect` with the
rule set for its grain), summed over the window. Shares are of the total deviation, so they add up
to 100% across values; a value that moved the other way gets a negative share. That split is
exact for additive KPIs (revenue, orders, units). For a ratio KPI, attribute its numerator or
denominator (e.g. revenue and orders for AOV): deviations of per-region ratios do not add up to
the overall ratio's deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kpi_lib.errors import DetectError

#: a value's share of the deviation from which it is named (after the largest one)
MIN_SHARE = 0.15


@dataclass(frozen=True)
class Attribution:
    """The split of an incident's deviation over one dimension's values."""

    dimension: str | None
    direction: str  # "drop", "rise" or "" (no deviation)
    total: float  # summed deviation over the window (actual - expected), all values
    shares: pd.DataFrame  # one row per value, largest share first
    text: str  # e.g. "Europe accounts for 92% of the drop"

    @property
    def top(self) -> str | None:
        """The value that explains most of the deviation (None if there is none)."""
        return None if self.shares.empty or not self.direction else str(self.shares.index[0])


def _as_dict(
    breakdown: Any, period: str, value: str, dimension: str | None
) -> tuple[dict[str, Any], str | None]:
    if isinstance(breakdown, Mapping):
        return dict(breakdown), dimension
    if isinstance(breakdown, pd.DataFrame):
        if period not in breakdown.columns or value not in breakdown.columns:
            raise DetectError(
                f"attribute(): a long frame needs columns {period!r} and {value!r} plus one "
                f"dimension column; got {list(breakdown.columns)}."
            )
        dims = [c for c in breakdown.columns if c not in (period, value)]
        dim = dimension if dimension in dims else (dims[0] if len(dims) == 1 else None)
        if dim is None:
            raise DetectError(f"attribute(): cannot tell the dimension column among {dims}; pass dimension=.")
        out = {k: g.set_index(period)[value].sort_index() for k, g in breakdown.groupby(dim, sort=False)}
        return out, dim
    raise DetectError(
        f"attribute() takes a dict of value -> Series (or detect() frames) or a long frame "
        f"(period, dimension, value); got {type(breakdown).__name__}."
    )


def _rules_for(index: pd.Index) -> str:
    """business_hourly for sub-daily data, business_daily for daily data, else the default."""
    if isinstance(index, pd.DatetimeIndex) and len(index) > 2:
        step = pd.Series(index).diff().median()
        if step >= pd.Timedelta("1D"):
            return "business_daily"
        if step >= pd.Timedelta("1h"):
            return "business_hourly"
    return "default"


def _window(window: Any) -> tuple[Any, Any]:
    if hasattr(window, "start") and hasattr(window, "end"):  # an Incident
        return window.start, window.end
    start, end = window
    return start, end


def _phrase(names: list[str], shares: list[float], direction: str) -> str:
    total = sum(shares)
    others = " (the others moved the other way)" if total > 1.05 else ""
    if len(names) == 1:
        if shares[0] >= 0.995:
            return f"{names[0]} accounts for all of the {direction}{others}"
        return f"{names[0]} accounts for {shares[0]:.0%} of the {direction}"
    if total >= 0.995:
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        return f"{listed} account for all of the {direction}{others}"
    parts = [f"{n} ({s:.0%})" for n, s in zip(names, shares, strict=True)]
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return f"{listed} account for {total:.0%} of the {direction}"


#: a total within this share of its expected value did not move: noise is no drop to explain
MIN_MOVE = 0.005


def attribute(
    breakdown: Mapping[str, pd.Series | pd.DataFrame] | pd.DataFrame,
    window: Any,
    dimension: str | None = None,
    rules: Any = None,
    period: str = "period",
    value: str = "value",
    top: int = 3,
    min_share: float = MIN_SHARE,
) -> Attribution:
    """Split the deviation in ``window`` (``(start, end)`` inclusive, or an :class:`Incident`;
    ``end=None`` = to the last row) over the values of one dimension.

    ``breakdown`` maps each value to its series (or to its :func:`detect` frame, whose ``expected``
    column is then used as is), or is a long frame with ``period``, the dimension and ``value``.
    ``rules`` is the rule set for the expected values (default: by the data's spacing,
    ``business_hourly`` / ``business_daily``). The sentence names the largest contributor and then
    the next ones while each explains at least ``min_share``, at most ``top`` values.
    """
    from kpi_lib.anomaly.detect import detect

    series, dimension = _as_dict(breakdown, period, value, dimension)
    if not series:
        raise DetectError("attribute(): the breakdown is empty.")
    start, end = _window(window)
    rows = []
    for name, s in series.items():
        if isinstance(s, pd.DataFrame):
            if not {"value", "expected"} <= set(s.columns):
                raise DetectError(
                    f"attribute(): the frame for {name!r} needs detect()'s value and expected columns."
                )
            frame = s
        else:
            frame = detect(s, rules=rules or _rules_for(s.index))
        idx = frame.index
        lo = pd.Timestamp(start) if isinstance(idx, pd.DatetimeIndex) else start
        if isinstance(idx, pd.DatetimeIndex) and lo.tzinfo is None and idx.tz is not None:
            lo = lo.tz_localize(idx.tz)
        mask = idx >= lo
        if end is not None:
            hi = pd.Timestamp(end) if isinstance(idx, pd.DatetimeIndex) else end
            if isinstance(idx, pd.DatetimeIndex) and hi.tzinfo is None and idx.tz is not None:
                hi = hi.tz_localize(idx.tz)
            mask &= idx <= hi
        part = frame.loc[mask, ["value", "expected"]].dropna()
        actual, expected = float(part["value"].sum()), float(part["expected"].sum())
        rows.append(
            {
                "value": str(name),
                "actual": actual,
                "expected": expected,
                "deviation": actual - expected,
                "change": (actual - expected) / abs(expected) if abs(expected) > 1e-12 else np.nan,
            }
        )
    table = pd.DataFrame(rows).set_index("value")
    total = float(table["deviation"].sum())
    scale = float(table["expected"].abs().sum())
    if not math.isfinite(total) or abs(total) <= MIN_MOVE * max(scale, 1e-9):
        table["share"] = np.nan
        moved = f" (it moved {total / scale:+.1%})" if scale and math.isfinite(total) and total else ""
        return Attribution(dimension, "", total, table, f"no value stands out: the total did not move{moved}")
    direction = "drop" if total < 0 else "rise"
    table["share"] = table["deviation"] / total
    table = table.sort_values("share", ascending=False)
    names, shares = [], []
    for name, share in table["share"].items():
        if len(names) >= top or (names and share < min_share) or share <= 0:
            break
        names.append(str(name))
        shares.append(float(share))
    return Attribution(dimension, direction, total, table, _phrase(names, shares, direction))
