"""What row scopes cost: the dashboard's queries as the owner (no row security) against the same
SQL as the reader role, unscoped and scoped to one region, interleaved in one run.

    .venv/bin/python benchmarks/bench_scope.py [--home WAREHOUSE] [--repeats 15]

Prints JSON: per query and overall, p50 milliseconds of the three paths and the reader's overhead.
Uses an existing warehouse (KPI_HOME or --home); `kpi demo --lines 1000000` makes one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="warehouse folder (default: KPI_HOME)")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    if args.home:
        os.environ["KPI_HOME"] = str(args.home.resolve())
    import sqlalchemy as sa

    from kpi_lib import config, gold, kpis, warehouse
    from kpi_lib.scope import EVERYTHING, RowScope

    config.reset()
    gold.init()
    latest = kpis.latest_data()
    end = kpis.next_period(latest, "day")
    start = end - timedelta(days=30)
    region = kpis.dimension_values("region")[0]
    questions = [(k, "total", ()) for k in ("revenue", "orders", "aov", "customers", "gross_margin")]
    questions += [
        ("revenue", "day", ()),
        ("revenue", "total", ("region",)),
        ("orders", "total", ("category",)),
    ]
    scoped = RowScope.of({"region": [region]})
    plans = []
    for kpi, grain, by in questions:
        sql, params, _, _ = kpis.plan_sql(kpis.get(kpi), grain, start, end, by, {})
        plans.append((f"{kpi}:{grain}:{','.join(by) or '-'}", sql, params))
    owner = warehouse.engine()

    def run(path: str, sql: str, params: dict) -> float:
        t0 = time.perf_counter()
        if path == "owner":
            with owner.connect() as conn:
                conn.execute(sa.text(sql), params).fetchall()
        else:
            with warehouse.read(EVERYTHING if path == "reader" else scoped) as conn:
                conn.execute(sa.text(sql), params).fetchall()
        return (time.perf_counter() - t0) * 1000

    out: dict = {"lines": None, "queries": {}, "region": region}
    with owner.connect() as conn:
        out["lines"] = conn.exec_driver_sql("select count(*) from silver.order_lines").scalar()
    totals = {"owner": [], "reader": [], "reader_scoped": []}
    for name, sql, params in plans:
        times = {p: [] for p in totals}
        for _ in range(args.repeats):
            for path in totals:  # interleaved: the machine's noise hits all three alike
                times[path].append(run(path, sql, params))
        row = {p: round(statistics.median(v), 2) for p, v in times.items()}
        row["reader_overhead_ms"] = round(row["reader"] - row["owner"], 2)
        out["queries"][name] = row
        for p in totals:
            totals[p].append(statistics.median(times[p]))
    out["sum_of_p50_ms"] = {p: round(sum(v), 1) for p, v in totals.items()}
    o = out["sum_of_p50_ms"]
    out["reader_vs_owner"] = round(o["reader"] / o["owner"], 3) if o["owner"] else None
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
