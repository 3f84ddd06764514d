"""`kpi load lines` throughput on a user's export: lines per second from a CSV file to queryable gold.

    .venv/bin/python benchmarks/bench_load_lines.py                  # 500 k lines (~1-2 min here)
    .venv/bin/python benchmarks/bench_load_lines.py --lines 100000

Writes a realistic export (Online-Retail-like columns: InvoiceNo, StockCode, Description, Quantity,
day-first InvoiceDate, UnitPrice, CustomerID, Country, Currency GBP; a year that ended long ago;
0.5 % bad rows: unreadable dates and prices), then loads it into a fresh throw-away warehouse with
:func:`kpi_lib.loader.load_lines_file`, the function behind `kpi load lines` (the CLI adds only its
import time and printing). It then loads the same file again: a reload replaces the file's orders,
the path a nightly refresh takes. Reports rows read, loaded, rejected, seconds and lines/s for both,
and checks that loaded + rejected equals the rows read. The catalog is a copy in the throw-away home
(the file's currency column is recorded in it). Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import common  # noqa: E402
from common import log  # noqa: E402


def write_export(path: Path, lines: int, seed: int = 7) -> int:
    """``lines`` order lines over 2011, 1-6 lines an order; returns the bad rows written."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    per_order = rng.integers(1, 7, size=lines)  # more than enough orders
    order_of_line = np.repeat(np.arange(len(per_order)), per_order)[:lines]
    n_orders = int(order_of_line[-1]) + 1
    start = pd.Timestamp("2011-01-01 08:00").value // 10**9
    order_at = np.sort(rng.integers(start, start + 364 * 86400, size=n_orders))
    at = pd.to_datetime(order_at[order_of_line], unit="s").strftime("%d/%m/%Y %H:%M").to_numpy(dtype=object)
    stock = rng.integers(20000, 23000, size=lines)
    df = pd.DataFrame(
        {
            "InvoiceNo": (536000 + order_of_line).astype(str),
            "StockCode": stock.astype(str),
            "Description": np.char.add("ITEM ", stock.astype(str)),
            "Quantity": rng.integers(1, 25, size=lines),
            "InvoiceDate": at,
            "UnitPrice": rng.choice([0.42, 0.85, 1.25, 2.55, 4.95, 12.75], size=lines).astype(object),
            "CustomerID": rng.integers(12000, 18000, size=lines),
            "Country": rng.choice(["United Kingdom", "France", "Germany", "EIRE", "Spain"], size=lines),
            "Currency": "GBP",
        }
    )
    bad = rng.choice(lines, size=lines // 200, replace=False)
    half = len(bad) // 2
    df.loc[bad[:half], "InvoiceDate"] = "not a date"
    df.loc[bad[half:], "UnitPrice"] = "n/a"
    df.to_csv(path, index=False)
    return len(bad)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--home", type=Path, default=common.RESULTS / "warehouse-load-lines")
    args = ap.parse_args()

    with common.json_stdout() as emit:
        home = common.use_home(args.home, fresh=True)
        catalog = home / "catalog.yml"
        shutil.copy(common.ROOT / "catalog.yml", catalog)
        os.environ["KPI_CATALOG"] = str(catalog)
        from kpi_lib import config

        config.reset()
        from kpi_lib import gold
        from kpi_lib.loader import load_lines_file

        export = home / f"export-{args.lines}.csv"
        t0 = time.perf_counter()
        bad = write_export(export, args.lines)
        log(
            f"wrote {args.lines:,} lines ({export.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        gold.init()
        setup_s = time.perf_counter() - t0
        runs = {}
        for run in ("first load", "reload (replaces the file's orders)"):
            t0 = time.perf_counter()
            s = load_lines_file(export, dayfirst=True)
            seconds = time.perf_counter() - t0
            assert s.loaded + s.rejected == s.rows == args.lines, s
            runs[run] = {
                "rows": s.rows,
                "loaded": s.loaded,
                "rejected": s.rejected,
                "orders": s.orders,
                "replaced_orders": s.replaced_orders,
                "currency": getattr(s, "currency", None),  # main before #13 has none
                "seconds": round(seconds, 2),
                "lines_per_s": round(s.rows / seconds),
            }
            log(f"{run}: {s.rows:,} rows in {seconds:.1f} s ({s.rows / seconds:,.0f} lines/s)")
        common.stop_server()
        emit(
            common.finish(
                {
                    "benchmark": "load_lines",
                    "commit": common.git_commit(),
                    "machine": common.machine(),
                    "lines": args.lines,
                    "bad_rows_written": bad,
                    "warehouse_setup_s": round(setup_s, 2),
                    "runs": runs,
                }
            )
        )


if __name__ == "__main__":
    main()
