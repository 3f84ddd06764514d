"""The one spec of a KPI question, shared by every caller: ``kpis.query``, Ask, pages and jobs.

    >>> q = Question("revenue", "total", start="2025-03-01", end="2025-04-01", where={"region": "Europe"})
    >>> q.where                       # (('region', ('Europe',)),): canonical and hashable
    >>> q.to_dict()["end"]            # '2025-04-01T00:00:00' (exclusive)

It is frozen and typed: filters are stored sorted, as tuples, so equal questions compare and hash
equal (cache keys, the audit trail of ``ops.questions``). Nothing in it is SQL; the planner turns
a resolved question (with concrete ``start`` and ``end``) into SQL with bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..errors import QueryError
from .definitions import COMPARES, GRAINS, Kpi
from .periods import as_local, default_range

Filters = tuple[tuple[str, tuple[str, ...]], ...]
ORDERS = ("desc", "asc")


def _filters(value: Mapping[str, Any] | Iterable | None, what: str) -> Filters:
    """dimension -> value(s), as sorted tuples; empty values are dropped (no filter)."""
    if not value:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    out: dict[str, tuple[str, ...]] = {}
    for dim, v in items:
        if v is None or v == "" or v == [] or v == ():
            continue
        values = (v,) if isinstance(v, str) else tuple(str(x) for x in v)
        out[str(dim)] = tuple(sorted(set(values)))
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class Question:
    """kpi, grain, start, end (exclusive), by, where, exclude, top, order, compare."""

    kpi: str
    grain: str = "day"
    start: datetime | None = None
    end: datetime | None = None
    by: tuple[str, ...] = ()
    where: Filters = ()
    exclude: Filters = ()
    top: int | None = None
    order: str = "desc"  # top N largest (desc) or smallest (asc)
    compare: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "start", as_local(self.start, "start"))
        set_(self, "end", as_local(self.end, "end"))
        by = (self.by,) if isinstance(self.by, str) else tuple(self.by or ())
        set_(self, "by", by)
        set_(self, "where", _filters(self.where, "where"))
        set_(self, "exclude", _filters(self.exclude, "exclude"))
        if self.top is not None:
            set_(self, "top", int(self.top))
        if self.grain not in GRAINS:
            raise QueryError(f"Unknown grain {self.grain!r}. Grains: {', '.join(GRAINS)}.")
        if self.compare is not None and self.compare not in COMPARES:
            raise QueryError(f"Unknown comparison {self.compare!r}. Use one of: {', '.join(COMPARES)}.")
        if self.order not in ORDERS:
            raise QueryError(f"Unknown order {self.order!r}: 'desc' (largest first) or 'asc'.")
        if len(set(by)) != len(by):
            raise QueryError(f"Dimension listed twice in by={list(by)}.")
        if self.top is not None and len(by) != 1:
            raise QueryError("top=N needs exactly one dimension in by, e.g. by=['region'], top=3.")
        if self.top is not None and self.top < 1:
            raise QueryError(f"top={self.top} should be 1 or more.")

    # --- views ------------------------------------------------------------------------------

    @property
    def where_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.where)

    @property
    def exclude_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.exclude)

    def replace(self, **changes: Any) -> Question:
        return replace(self, **changes)

    def check(self, k: Kpi) -> Question:
        """Every dimension asked for exists for this KPI (raises QueryError saying which do)."""
        for d in self.by:
            if d not in k.dimensions:
                raise QueryError(
                    f"{k.label} cannot be broken down by {d!r}. Dimensions for {k.name}: {', '.join(k.dimensions)}."
                )
        for d, _ in (*self.where, *self.exclude):
            if d not in k.dimensions:
                raise QueryError(
                    f"{k.label} cannot be filtered by {d!r}. Dimensions for {k.name}: {', '.join(k.dimensions)}."
                )
        return self

    def resolved(self, as_of: Any = None) -> Question:
        """The same question with concrete start and end (missing ones count back from the as-of)."""
        if self.start is not None and self.end is not None:
            if self.start >= self.end:
                default_range(self.grain, self.start, self.end)  # raises the usual message
            return self
        s, e = default_range(self.grain, self.start, self.end, as_of)
        return replace(self, start=s, end=e)

    def to_dict(self) -> dict[str, Any]:
        """The JSON spec: kpi, grain, start, end (exclusive, ISO), by, where, exclude, top, order, compare."""
        iso = lambda t: None if t is None else t.isoformat(timespec="seconds")  # noqa: E731
        return {
            "kpi": self.kpi,
            "grain": self.grain,
            "start": iso(self.start),
            "end": iso(self.end),
            "by": list(self.by),
            "where": {d: list(v) for d, v in self.where},
            "exclude": {d: list(v) for d, v in self.exclude},
            "top": self.top,
            "order": self.order,
            "compare": self.compare,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Question:
        keys = ("kpi", "grain", "start", "end", "by", "where", "exclude", "top", "order", "compare")
        return cls(**{k: d[k] for k in keys if k in d and d[k] is not None})
