"""kpi_lib: the shared library behind the catalog, notebooks, dashboards and scheduled jobs.

    import kpi_lib
    r = kpi_lib.query("revenue", "day", start="2025-01-01", by=["region"])
    r.df          # period, region, value
    r.sql         # what ran, with bound parameters in r.params
    r.cache_level # L1 (in-process), L2 (Redis), L3 (materialized view), L4 (base tables)
    kpi_lib.ask("revenue in Europe last month")   # plain English, exact, with its sources

Modules import lazily so ``import kpi_lib`` stays fast in dashboards and CLI start-up.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "query": "kpi_lib.kpis",
    "definitions": "kpi_lib.kpis",
    "KpiError": "kpi_lib.errors",
    "ask": "kpi_lib.ask",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kpi_lib' has no attribute {name!r}")
