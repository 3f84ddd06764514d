"""KPI query latency: ``kpi_lib.query`` warm and cold vs a naive ``pandas.read_sql`` of gold, same run.

    .venv/bin/python benchmarks/bench_query.py --reuse            # 10 M order lines (loads if needed: ~10 min)
    .venv/bin/python benchmarks/bench_query.py --quick --reuse    # 1 M lines, fewer repeats (< 2 min reused)
    .venv/bin/python benchmarks/bench_query.py --lines 1000000 --warm 200 --cold 20

The warehouse is ``benchmarks/results/warehouse-N`` (or ``--home``). With ``--reuse`` a warehouse that
already holds exactly this demo business (N lines, 730 days, seed 42, nothing else) is used as it is,
e.g. the one ``bench_load.py`` leaves behind; otherwise it is loaded from scratch first.

The queries are the executive dashboard's, anchored at the last day in the data (``D`` = the day
after the newest order, so ranges are whole days as the dashboard asks them):

* ``tile:<kpi>``: every KPI in catalog.yml, grain total, last 30 days, ``compare="previous_period"``;
* ``trend:revenue_by_day_90d``: revenue by day for 90 days;
* ``breakdown:revenue_by_<region|channel|category>_30d``: revenue totals by one dimension, 30 days;
* ``hourly:orders_by_hour_2d``: orders by hour for the last 2 days;
* ``top:products_in_<category>_30d``: the top 10 products by revenue in one category, 30 days;
* ``page``: all of the above in sequence, i.e. what one dashboard page load asks.

For each: ``warm`` = the answer is in the L1 cache (one call to fill it, then ``--warm`` timed calls,
each checked to be an L1 hit); ``cold`` = ``kpi_lib.cache.clear()`` before each call (empty L1 and
forgotten data versions, as in a fresh process), ``--cold`` timed calls; ``naive`` = what a notebook
without kpi_lib does: ``pandas.read_sql("select * from gold.<relation> where <date range>")`` of the
gold relation that holds the answer (sales_daily, sales_hourly, category_daily, product_daily,
customer_hourly), then filter/aggregate/compare in pandas. The naive answer is checked against
kpi_lib's (``max_rel_diff``). Cold and naive calls alternate so machine noise hits both alike.
Latencies are wall-clock around the call, in ms: p50/p95. Prints one JSON document on stdout.

Bars (DESIGN.md): warm p50 <= 2 ms and cold p50 <= 100 ms at 10 M order lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

# the checkout's kpi_lib (not whatever an editable install maps), then the shared helpers
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import common  # noqa: E402
from common import log  # noqa: E402

BAR_WARM_MS = 2.0
BAR_COLD_MS = 100.0
DAYS, SEED = 730, 42


@dataclass
class Case:
    name: str
    group: str
    call: Callable[[bool], object]  # use_cache -> QueryResult
    naive: Callable[[], pd.DataFrame]  # the same answer, the naive way
    check: Callable[[object, pd.DataFrame], float]  # max relative difference


def _rel(a, b) -> float:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.abs(a - b) / np.maximum(np.abs(b), 1e-9)
    d[both_nan] = 0.0
    return float(np.nanmax(d)) if d.size else 0.0


def _read(sql: str, params: dict) -> pd.DataFrame:
    from kpi_lib import warehouse

    with warehouse.engine().connect() as conn:
        return pd.read_sql(sa.text(sql), conn, params=params)


def _kpi_value(df: pd.DataFrame, kpi) -> float:
    """A KPI's expression evaluated on summed gold measure columns, in pandas."""
    s = df.sum(numeric_only=True)
    name = kpi.name
    if name in ("revenue", "orders", "units", "new_customers"):
        return float(s[name])
    if name == "aov":
        return float(s["revenue"] / s["orders"]) if s["orders"] else float("nan")
    if name == "gross_margin":
        return (
            float((s["costed_revenue"] - s["cost"]) / s["costed_revenue"]) if s["costed_revenue"] else np.nan
        )
    if name == "return_rate":
        return float(s["units_returned"] / s["units_sold"]) if s["units_sold"] else float("nan")
    raise KeyError(name)


def build_cases(d_end: datetime, category: str) -> list[Case]:
    from kpi_lib import kpis
    from kpi_lib import query as q

    d30, d60, d90, d2 = (d_end - timedelta(days=n) for n in (30, 60, 90, 2))
    cases: list[Case] = []

    # --- tiles: every KPI, total over 30 days with the previous 30 days --------------------------
    for name, kpi in kpis.definitions().items():

        def call(use_cache, name=name):
            return q(name, "total", start=d30, end=d_end, compare="previous_period", use_cache=use_cache)

        if name == "customers":

            def naive():
                df = _read(
                    "select * from gold.customer_hourly where hour >= :s and hour < :e",
                    {"s": d60, "e": d_end},
                )
                cur = df["hour"].dt.tz_convert(None) >= pd.Timestamp(d30)
                return pd.DataFrame(
                    {
                        "value": [df.loc[cur, "customer_id"].nunique()],
                        "previous": [df.loc[~cur, "customer_id"].nunique()],
                    }
                )

        else:

            def naive(kpi=kpi):
                df = _read(
                    "select * from gold.sales_daily where day >= :s and day < :e",
                    {"s": d60.date(), "e": d_end.date()},
                )
                cur = pd.to_datetime(df["day"]) >= pd.Timestamp(d30)
                return pd.DataFrame(
                    {"value": [_kpi_value(df[cur], kpi)], "previous": [_kpi_value(df[~cur], kpi)]}
                )

        cases.append(
            Case(
                f"tile:{name}",
                "tiles",
                call,
                naive,
                lambda r, n: _rel([r.value, r.previous], [n["value"].iloc[0], n["previous"].iloc[0]]),
            )
        )

    # --- trend: revenue by day, 90 days -----------------------------------------------------------
    def naive_trend():
        df = _read(
            "select * from gold.sales_daily where day >= :s and day < :e",
            {"s": d90.date(), "e": d_end.date()},
        )
        out = df.groupby("day", as_index=False)["revenue"].sum()
        days = pd.DataFrame({"day": pd.date_range(d90, d_end, freq="D", inclusive="left").date})
        return days.merge(out, on="day", how="left").fillna({"revenue": 0.0})

    cases.append(
        Case(
            "trend:revenue_by_day_90d",
            "trend",
            lambda use_cache: q("revenue", "day", start=d90, end=d_end, use_cache=use_cache),
            naive_trend,
            lambda r, n: _rel(r.df["value"].to_numpy(), n["revenue"].to_numpy()),
        )
    )

    # --- breakdowns: revenue by region / channel / category, 30 days --------------------------------
    for dim in ("region", "channel", "category"):
        rel = "gold.category_daily" if dim == "category" else "gold.sales_daily"

        def naive_bd(dim=dim, rel=rel):
            df = _read(
                f"select * from {rel} where day >= :s and day < :e", {"s": d30.date(), "e": d_end.date()}
            )
            return df.groupby(dim, as_index=False)["revenue"].sum().sort_values(dim, ignore_index=True)

        cases.append(
            Case(
                f"breakdown:revenue_by_{dim}_30d",
                "breakdowns",
                lambda use_cache, dim=dim: q(
                    "revenue", "total", start=d30, end=d_end, by=[dim], use_cache=use_cache
                ),
                naive_bd,
                lambda r, n, dim=dim: _rel(
                    r.df.sort_values(dim, ignore_index=True)["value"].to_numpy(), n["revenue"].to_numpy()
                ),
            )
        )

    # --- orders by hour, 2 days ------------------------------------------------------------------------
    def naive_hourly():
        df = _read(
            "select * from gold.sales_hourly where hour >= :s and hour < :e",
            {"s": pd.Timestamp(d2, tz="UTC"), "e": pd.Timestamp(d_end, tz="UTC")},
        )
        out = df.groupby("hour", as_index=False)["orders"].sum()
        hours = pd.DataFrame(
            {
                "hour": pd.date_range(
                    pd.Timestamp(d2, tz="UTC"), pd.Timestamp(d_end, tz="UTC"), freq="h", inclusive="left"
                )
            }
        )
        out["hour"] = out["hour"].dt.tz_convert("UTC")
        return hours.merge(out, on="hour", how="left").fillna({"orders": 0})

    cases.append(
        Case(
            "hourly:orders_by_hour_2d",
            "hourly",
            lambda use_cache: q("orders", "hour", start=d2, end=d_end, use_cache=use_cache),
            naive_hourly,
            lambda r, n: _rel(r.df["value"].to_numpy(), n["orders"].to_numpy()),
        )
    )

    # --- top 10 products in one category, 30 days ---------------------------------------------------
    def naive_top():
        df = _read(
            "select * from gold.product_daily where day >= :s and day < :e",
            {"s": d30.date(), "e": d_end.date()},
        )
        df = df[df["category"] == category]
        return df.groupby("product_name", as_index=False)["revenue"].sum().nlargest(10, "revenue")

    cases.append(
        Case(
            f"top:products_in_{category}_30d",
            "top_products",
            lambda use_cache: q(
                "revenue",
                "total",
                start=d30,
                end=d_end,
                by=["product"],
                where={"category": category},
                top=10,
                use_cache=use_cache,
            ),
            naive_top,
            lambda r, n: _rel(
                r.df.sort_values("value", ascending=False)["value"].to_numpy(), n["revenue"].to_numpy()
            ),
        )
    )
    return cases


def ensure_warehouse(lines: int, home: Path, reuse: bool) -> dict:
    """Use the warehouse at ``home`` when it holds this demo (and reuse is allowed), else load it."""
    from kpi_lib import gold, warehouse
    from kpi_lib.demo import load_demo

    common.use_home(home, fresh=False)
    if reuse and (home / "pgdata").exists() and common.demo_loaded(lines, DAYS, SEED):
        log(f"reusing the {lines:,}-line warehouse in {home}")
        t0 = time.perf_counter()
        applied = gold.init()  # a reused warehouse gets this checkout's schema first
        info = {"reused": True, "migrations_applied": applied}
        if applied:
            info["migrate_seconds"] = round(time.perf_counter() - t0, 1)
            log(f"applied {', '.join(applied)} in {info['migrate_seconds']} s")
    else:
        if (home / "pgdata").exists():
            common.use_home(home, fresh=True)
        log(f"loading {lines:,} order lines into {home} (pass --reuse next time)")
        gold.init()
        t0 = time.perf_counter()
        load_demo(lines=lines, days=DAYS, seed=SEED)
        info = {"reused": False, "load_seconds": round(time.perf_counter() - t0, 1)}
    with warehouse.connect_raw(autocommit=True) as conn:
        n_lines, n_orders = conn.execute(
            "select (select count(*) from silver.order_lines), (select count(*) from silver.orders)"
        ).fetchone()
        last = conn.execute(
            "select max(ordered_at at time zone ops.business_tz()) from silver.orders where source = 'demo'"
        ).fetchone()[0]
        rows = dict(
            conn.execute(
                "select relname, reltuples::bigint from pg_class where relnamespace = 'gold'::regnamespace "
                "and relkind in ('r', 'm') order by 1"
            ).fetchall()
        )
    info.update({"order_lines": n_lines, "orders": n_orders, "last_order_at": str(last), "gold_rows": rows})
    return info


def timed(fn: Callable[..., object], *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--lines", type=int, default=10_000_000, help="order lines in the warehouse (default 10 M)"
    )
    ap.add_argument("--quick", action="store_true", help="1 M lines and fewer repeats")
    ap.add_argument("--reuse", action="store_true", help="use an already-loaded warehouse of this size")
    ap.add_argument("--home", type=Path, help="warehouse folder (default benchmarks/results/warehouse-N)")
    ap.add_argument("--warm", type=int, default=300, help="timed warm calls per query")
    ap.add_argument("--cold", type=int, default=30, help="timed cold calls (and naive calls) per query")
    ap.add_argument(
        "--naive", type=int, default=10, help="timed naive calls per query (alternating with cold)"
    )
    ap.add_argument("--pages", type=int, default=10, help="timed whole-page loads: warm, cold and naive")
    ap.add_argument("--category", default="Electronics", help="category for the top-products query")
    args = ap.parse_args()
    if args.quick:
        args.lines = 1_000_000 if args.lines == 10_000_000 else args.lines
        args.warm, args.cold, args.naive, args.pages = 100, 10, 5, 3
    home = args.home or common.RESULTS / f"warehouse-{args.lines}"

    with common.json_stdout() as emit:
        doc: dict = {
            "benchmark": "query",
            "machine": common.machine(),
            "params": {
                "lines": args.lines,
                "days": DAYS,
                "seed": SEED,
                "warm_calls": args.warm,
                "cold_calls": args.cold,
                "naive_calls": min(args.naive, args.cold),
                "page_loads": args.pages,
                "home": str(home),
            },
        }
        try:
            from kpi_lib import cache

            doc["warehouse"] = ensure_warehouse(args.lines, home, args.reuse)
            doc["postgres"] = common.server_version()
            last = pd.Timestamp(doc["warehouse"]["last_order_at"]).to_pydatetime()
            d_end = (last + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            doc["params"]["range_end"] = str(d_end)
            cases = build_cases(d_end, args.category)
            results: dict[str, dict] = {}
            for case in cases:
                log(f"{case.name}")
                # prime: connections, plans, catalog; check the answers agree
                cache.clear()
                r = case.call(True)
                n = case.naive()
                diff = case.check(r, n)
                cold, naive, levels = [], [], set()
                for i in range(args.cold):
                    cache.clear()
                    t, r = timed(case.call, True)
                    cold.append(t)
                    levels.add(r.cache_level)
                    if i < args.naive:
                        naive.append(timed(case.naive)[0])
                warm, l1 = [], 0
                case.call(True)
                for _ in range(args.warm):
                    t, r = timed(case.call, True)
                    warm.append(t)
                    l1 += r.cache_level == "L1"
                res = {
                    "group": case.group,
                    "warm": common.pct(warm),
                    "warm_l1_hits": f"{l1}/{args.warm}",
                    "cold": common.pct(cold),
                    "cold_answered_from": sorted(levels),
                    "naive": common.pct(naive),
                    "max_rel_diff_vs_naive": diff,
                }
                res["naive_vs_cold_p50"] = common.ratio(res["naive"]["p50_ms"], res["cold"]["p50_ms"])
                res["naive_vs_warm_p50"] = common.ratio(res["naive"]["p50_ms"], res["warm"]["p50_ms"])
                results[case.name] = res
                log(
                    f"  warm p50 {res['warm']['p50_ms']} ms, cold p50 {res['cold']['p50_ms']} ms "
                    f"({'+'.join(sorted(levels))}), naive p50 {res['naive']['p50_ms']} ms, diff {diff:.2g}"
                )

            # whole page: every query above in sequence
            log("page (every query in sequence)")
            page_warm, page_cold, page_naive = [], [], []
            for _ in range(args.pages):
                cache.clear()
                page_cold.append(timed(lambda: [c.call(True) for c in cases])[0])
                page_warm.append(timed(lambda: [c.call(True) for c in cases])[0])
                page_naive.append(timed(lambda: [c.naive() for c in cases])[0])
            page = {
                "queries": len(cases),
                "warm": common.pct(page_warm),
                "cold": common.pct(page_cold),
                "naive": common.pct(page_naive),
            }
            page["naive_vs_cold_p50"] = common.ratio(page["naive"]["p50_ms"], page["cold"]["p50_ms"])
            page["naive_vs_warm_p50"] = common.ratio(page["naive"]["p50_ms"], page["warm"]["p50_ms"])

            all_warm = [v["warm"]["p50_ms"] for v in results.values()]
            all_cold = [v["cold"]["p50_ms"] for v in results.values()]
            doc["queries"] = results
            doc["page"] = page
            doc["summary"] = {
                "warm_p50_ms_worst_query": max(all_warm),
                "warm_p50_ms_median_query": float(np.median(all_warm)),
                "cold_p50_ms_worst_query": max(all_cold),
                "cold_p50_ms_median_query": float(np.median(all_cold)),
                "queries_failing_warm_bar": [
                    k for k, v in results.items() if v["warm"]["p50_ms"] > BAR_WARM_MS
                ],
                "queries_failing_cold_bar": [
                    k for k, v in results.items() if v["cold"]["p50_ms"] > BAR_COLD_MS
                ],
            }
            at_scale = args.lines >= 10_000_000
            doc["bars"] = {
                "warm_p50_ms <= 2 (every query)": {
                    "measured_worst": max(all_warm),
                    "met": max(all_warm) <= BAR_WARM_MS,
                    "at_10M_lines": at_scale,
                },
                "cold_p50_ms <= 100 (every query)": {
                    "measured_worst": max(all_cold),
                    "met": max(all_cold) <= BAR_COLD_MS,
                    "at_10M_lines": at_scale,
                },
            }
            doc["cache_stats"] = cache.stats.as_dict()
        finally:
            common.stop_server()
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
