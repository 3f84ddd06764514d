"""The semantic layer: KPI definitions from catalog.yml turned into parameterised SQL over gold.

    >>> r = query("revenue", "day", start="2025-01-01", end="2025-02-01", by=["region"])  # doctest: +SKIP
    >>> r.df.head()          # period, region, value
    >>> r.sql, r.params      # what ran; every value is a bound parameter
    >>> r.cache_level        # L1 / L2 (cache), L3 (materialized view), L4 (base tables), L3+L4
    >>> query(Question("revenue", "total", start="2025-01-01", end="2025-02-01", by=["region"], top=2))

A question is one frozen, typed :class:`Question` (kpi, grain, start, end, by, where, exclude, top,
order, compare) that every caller speaks, Ask included. The package splits the work:

- ``definitions``: KPIs, facts and dimensions as catalog.yml defines them;
- ``periods``: the business clock, the as-of ("now" for default windows), periods and ranges;
- ``question``: the :class:`Question`;
- ``planner``: a resolved question -> SQL, parameters, catalog entries (the fact and layer choice);
- ``query``: :func:`query`, the cache around the planner, and splits at today for live data.

Times are wall-clock times in the business time zone (``KPI_TIMEZONE``); ``end`` is exclusive.
"""

from __future__ import annotations

from ..config import settings
from ..errors import QueryError
from . import orders
from .definitions import (
    COMPARES,
    GRAINS,
    Fact,
    Kpi,
    components,
    definitions,
    dimension_values,
    dimensions,
    facts,
    fiscal_year_set,
    fiscal_year_start,
    get,
    vocabulary,
)
from .periods import (
    DEFAULT_SPAN,
    LIVE_WINDOW,
    AsOf,
    add_months,
    as_local,
    as_of,
    default_range,
    earliest_data,
    floor_period,
    latest_data,
    local_now,
    next_period,
    period_label,
    shift_range,
)
from .planner import _DISTINCT, _fill, _normalise_where, _pick_fact, _run, plan_sql, sync_versions
from .query import QueryResult, query
from .question import Question

_sync_versions = sync_versions

__all__ = [
    "COMPARES",
    "DEFAULT_SPAN",
    "GRAINS",
    "LIVE_WINDOW",
    "AsOf",
    "Fact",
    "Kpi",
    "QueryResult",
    "Question",
    "_DISTINCT",
    "_fill",
    "_normalise_where",
    "_pick_fact",
    "_run",
    "add_months",
    "as_local",
    "as_of",
    "components",
    "default_range",
    "definitions",
    "dimension_values",
    "dimensions",
    "facts",
    "fiscal_year_set",
    "fiscal_year_start",
    "floor_period",
    "earliest_data",
    "get",
    "latest_data",
    "local_now",
    "next_period",
    "period_label",
    "orders",
    "plan_sql",
    "QueryError",
    "query",
    "settings",
    "shift_range",
    "sync_versions",
    "vocabulary",
]
