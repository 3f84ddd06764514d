"""Load throughput: the COPY path (``kpi_lib.demo.load_demo``) vs a row-by-row INSERT loop, same run.

    .venv/bin/python benchmarks/bench_load.py                 # full: 1 M and 10 M order lines (~20 min)
    .venv/bin/python benchmarks/bench_load.py --quick         # 200 k lines, 20 k-row INSERT sample (< 2 min)
    .venv/bin/python benchmarks/bench_load.py --lines 1000000 --insert-sample 100000

For each size N the script loads the seeded demo business (730 days, seed 42) into a fresh
throw-away warehouse ``benchmarks/results/warehouse-N`` (or ``--home``) with ``load_demo`` and
reports its phases separately (``DemoSummary.seconds``):

* ``generate``: the synthetic business drawn in pandas (not a database cost);
* ``copy``: COPY of orders and lines into silver, plus rebuilding the order-lines primary key;
* ``silver``: products and the derived customers table;
* ``gold``: the hourly gold rollups for the whole range; ``views``: the materialized views;
* ``total``: all of the above plus ANALYZE, as ``load_demo`` times it;
* ``setup``: what ``load_demo`` does before its own clock starts (building the seeded ``Business``,
  ``gold.init()``); ``wall``: the whole ``load_demo`` call.

``copy_lines_per_s`` (= ``DemoSummary.lines_per_second``, lines / ``copy``) is the COPY-path figure
the quality bar speaks of (>= 100 k lines/s at 10 M); ``end_to_end_lines_per_s`` is lines / ``wall``:
from nothing to queryable gold.

Baseline, in the same run: the same generated order lines (same seed, so the same rows) inserted one
``INSERT`` per row (psycopg ``execute``, server-side prepared after 5 runs, one transaction) into a
scratch copy of ``silver.order_lines`` (``like ... including all``: same columns, checks and key).
When N is larger than ``--insert-sample`` (default 200 k) only the first sample rows are inserted and
the time for N rows is extrapolated linearly; the JSON says so (``extrapolated: true``). The baseline
inserts lines only, no orders, no gold: it is flattering to the baseline.

The warehouse of the last size is kept (server stopped) so ``bench_query.py --reuse`` can use it;
``--clean`` deletes it instead. Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

# the checkout's kpi_lib (not whatever an editable install maps), then the shared helpers
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import common  # noqa: E402
from common import log  # noqa: E402

from kpi_lib.schema import LINE_COLUMNS  # noqa: E402

BAR_LINES_PER_S = 100_000
BAR_AT_LINES = 10_000_000


def load_copy(lines: int, days: int, seed: int) -> dict:
    """One load_demo run; its phase timings and rates."""
    from kpi_lib import gold, warehouse
    from kpi_lib.demo import load_demo

    gold.init()
    last = [0.0]

    def progress(done: int, total: int, what: str) -> None:
        if time.monotonic() - last[0] > 15 or done >= total:
            last[0] = time.monotonic()
            log(f"  load_demo: {done:,}/{total:,} {what}")

    t0 = time.perf_counter()
    s = load_demo(lines=lines, days=days, seed=seed, progress=progress)
    wall = time.perf_counter() - t0
    secs = {k: round(v, 2) for k, v in s.seconds.items()}
    secs["setup"] = round(wall - s.seconds["total"], 2)  # Business() calibration, init: outside `total`
    secs["wall"] = round(wall, 2)
    with warehouse.connect_raw() as conn:
        # The copy phase includes rebuilding the order-lines key: time that step again on its own
        # (same table, same data) to split the phase into COPY proper and index build.
        t0 = time.perf_counter()
        conn.execute("alter table silver.order_lines drop constraint order_lines_pkey")
        conn.execute("alter table silver.order_lines add primary key (order_id, line_no)")
        conn.commit()
        pk_s = time.perf_counter() - t0
        db_bytes = conn.execute("select pg_database_size(current_database())").fetchone()[0]
    rows_s = s.seconds["copy"] - pk_s
    return {
        "lines": s.lines,
        "orders": s.orders,
        "customers": s.customers,
        "seconds": secs,
        "copy_lines_per_s": round(s.lines_per_second),
        "end_to_end_lines_per_s": round(s.lines / wall),
        "copy_phase_split": {
            "primary_key_rebuild_s": round(pk_s, 2),
            "copy_rows_s": round(rows_s, 2),
            "copy_rows_only_lines_per_s": round(s.lines / rows_s) if rows_s > 0 else None,
            "note": "primary key rebuild re-timed on its own after the load; copy_rows_s = copy - that",
        },
        "database_mb": round(db_bytes / 2**20),
    }


def sample_lines(lines: int, days: int, seed: int, rows: int) -> list[tuple]:
    """The first ``rows`` order lines the demo generator produces for this business (same seed)."""
    from kpi_lib.demo import Business

    biz = Business(lines=lines, days=days, seed=seed)
    out: list[tuple] = []
    for _orders, chunk in biz.history():
        df = chunk[LINE_COLUMNS]
        out.extend(df.astype(object).where(df.notna(), None).itertuples(index=False, name=None))
        if len(out) >= rows:
            break
    return out[:rows]


def load_insert(lines: int, days: int, seed: int, sample: int) -> dict:
    """The row-by-row INSERT baseline into a scratch copy of silver.order_lines."""
    from kpi_lib import warehouse

    n = min(lines, sample)
    t0 = time.perf_counter()
    rows = sample_lines(lines, days, seed, n)
    gen_s = time.perf_counter() - t0
    log(f"  INSERT baseline: {len(rows):,} rows generated in {gen_s:.1f}s; inserting one row per statement")
    cols = ", ".join(LINE_COLUMNS)
    sql = f"insert into bench_scratch.order_lines ({cols}) values ({', '.join(['%s'] * len(LINE_COLUMNS))})"
    with warehouse.connect_raw() as conn:
        conn.execute("create schema if not exists bench_scratch")
        conn.execute("drop table if exists bench_scratch.order_lines")
        conn.execute("create table bench_scratch.order_lines (like silver.order_lines including all)")
        conn.commit()
        cur = conn.cursor()
        t0 = time.perf_counter()
        last = t0
        for i, row in enumerate(rows, 1):
            cur.execute(sql, row)
            if i % 50_000 == 0 and time.perf_counter() - last > 15:
                last = time.perf_counter()
                log(f"  INSERT baseline: {i:,}/{len(rows):,} rows, {i / (last - t0):,.0f} rows/s")
        conn.commit()
        secs = time.perf_counter() - t0
        conn.execute("drop schema bench_scratch cascade")
        conn.commit()
    rate = len(rows) / secs
    return {
        "method": "one INSERT per row (psycopg execute, prepared), one transaction, into a scratch copy of "
        "silver.order_lines with its primary key and checks; lines only (no orders, no gold)",
        "rows_inserted": len(rows),
        "seconds_measured": round(secs, 2),
        "lines_per_s": round(rate),
        "extrapolated": len(rows) < lines,
        "seconds_for_all_lines": round(lines / rate, 1),
        "note": (
            f"timed on the first {len(rows):,} of {lines:,} generated lines; time for all lines extrapolated linearly"
            if len(rows) < lines
            else "all lines inserted and timed"
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--lines",
        default="1000000,10000000",
        help="comma-separated sizes in order lines (default 1000000,10000000)",
    )
    ap.add_argument("--quick", action="store_true", help="200 k lines and a 20 k-row INSERT sample (< 2 min)")
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--insert-sample", type=int, default=200_000, help="rows timed for the INSERT baseline")
    ap.add_argument("--home", type=Path, help="warehouse folder (default benchmarks/results/warehouse-N)")
    ap.add_argument("--clean", action="store_true", help="delete the warehouses afterwards")
    args = ap.parse_args()
    sizes = [200_000] if args.quick else [int(float(x)) for x in args.lines.split(",") if x.strip()]
    sample = 20_000 if args.quick else args.insert_sample

    with common.json_stdout() as emit:
        doc: dict = {
            "benchmark": "load",
            "machine": common.machine(),
            "params": {"sizes": sizes, "days": args.days, "seed": args.seed, "insert_sample": sample},
            "runs": [],
        }
        homes = []
        for n in sizes:
            home = common.use_home(args.home or common.RESULTS / f"warehouse-{n}", fresh=True)
            homes.append(home)
            log(f"== {n:,} order lines in {home}")
            try:
                copy = load_copy(n, args.days, args.seed)
                log(
                    f"  COPY path: {copy['copy_lines_per_s']:,} lines/s (copy phase), "
                    f"{copy['end_to_end_lines_per_s']:,} lines/s end to end; {copy['seconds']}"
                )
                ins = load_insert(n, args.days, args.seed, sample)
                log(f"  INSERT baseline: {ins['lines_per_s']:,} lines/s")
                doc.setdefault("postgres", common.server_version())
            finally:
                common.stop_server()
            doc["runs"].append(
                {
                    "lines_requested": n,
                    "copy_path": copy,
                    "insert_baseline": ins,
                    "copy_vs_insert": common.ratio(copy["copy_lines_per_s"], ins["lines_per_s"]),
                    "end_to_end_vs_insert": common.ratio(copy["end_to_end_lines_per_s"], ins["lines_per_s"]),
                }
            )
        at_bar = [r for r in doc["runs"] if r["lines_requested"] >= BAR_AT_LINES]
        doc["bars"] = {
            "copy_lines_per_s_at_10M >= 100k": (
                {
                    "measured": at_bar[-1]["copy_path"]["copy_lines_per_s"],
                    "met": at_bar[-1]["copy_path"]["copy_lines_per_s"] >= BAR_LINES_PER_S,
                }
                if at_bar
                else {"measured": None, "met": None, "note": "no 10 M run (quick mode)"}
            ),
        }
        if args.clean:
            for home in homes:
                shutil.rmtree(home, ignore_errors=True)
        else:
            doc["kept_warehouses"] = [str(h) for h in homes]
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
