"""Warehouse scan: ``kpi_lib.anomaly.scan`` of every default KPI over two years, hour and day grain,
against a naive pandas read of gold + detect per series, in the same run (issue 5).

    .venv/bin/python benchmarks/bench_scan.py                       # 1 M and (when loaded) 10 M lines
    .venv/bin/python benchmarks/bench_scan.py --quick               # 1 M lines, no repeat scan
    .venv/bin/python benchmarks/bench_scan.py --lines 1000000 --grains day --classic-sample 0

It reuses the demo warehouses ``benchmarks/results/warehouse-N`` that ``bench_load.py`` leaves
(N lines, 730 days, seed 42); a size whose warehouse does not hold exactly that demo is skipped
(``--load`` loads it first). Detection speed on one 20,000-point series is ``bench_anomaly.py``'s
``timing`` section and is not repeated here.

Per size and grain (``hour``, ``day``), in this order:

* ``scan``: ``scan(since=<now - 730 days>, grains=(grain,))`` in a fresh process (L1 cache empty):
  every KPI catalog.yml scans at that grain, overall and by region and category, with the rules
  catalog.yml gives it. Series, incidents found (new to ``ops.anomalies`` / updated), seconds, and
  the split: ``read`` (the ``kpi_lib.query`` calls), ``detect`` (the rule pipelines), ``incidents``
  (turning alarms into incidents), ``store`` (the upsert), the rest (attribution, bookkeeping).
  The split comes from timers wrapped around those functions in this process, not from the library.
* ``naive``: what an analyst would write without ``kpi_lib.query`` and its cache: one
  ``select ... from gold.<hourly|daily table>`` per relation for the same range (read with psycopg,
  into pandas), each KPI computed per series in pandas (sums, ratios, distinct customers), periods
  with no rows filled with 0 for additive KPIs (as ``kpi_lib.query`` does), then ``detect`` +
  ``incidents`` per series with the same rules; nothing stored. ``incidents`` should equal the scan's
  (``same_incidents``).
* ``scan_repeat``: the same scan again in the same process (L1 cache warm, incidents updated).
* ``classic``: the naive series through the built-in ``classic`` rules (the ADTK trio made causal,
  refitted as it goes): every series at day grain; at hour grain only the first
  ``--classic-sample`` series (default 2; it takes minutes per two-year hourly series), with the time
  for all of them extrapolated. Seconds and alarms in the window.

``start_artifacts`` counts the incidents that start in the first week of data: the window starts
where the business starts, so the rules see two months of zeros (filled, no data yet) before it.

Incidents this run added to ``ops.anomalies`` are deleted at the end (``--keep-incidents`` keeps
them), so the reused warehouse is left as it was found; the embedded server is stopped only when this
script started it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import RESULTS, finish, json_stdout, log, machine, server_version  # noqa: E402

DAYS, SEED = 730, 42


# --- timers around the scan's parts -------------------------------------------------------------


class ScanTimers:
    """Wrap ``_series``, ``detect``, ``incidents`` and ``store`` in kpi_lib.anomaly.scan's namespace
    (observation only: the same functions run, their time is added up)."""

    PARTS = ("_series", "detect", "incidents", "store")

    def __init__(self) -> None:
        import kpi_lib.anomaly.scan  # noqa: F401  (kpi_lib.anomaly.scan the attribute is the function)

        mod = sys.modules["kpi_lib.anomaly.scan"]
        self.mod = mod
        self.orig = {p: getattr(mod, p) for p in self.PARTS}
        self.t: dict[str, float] = defaultdict(float)
        self.points = 0

    def __enter__(self) -> ScanTimers:
        orig, t = self.orig, self.t

        def _series(*a, **k):
            t0 = time.perf_counter()
            out = list(orig["_series"](*a, **k))
            t["read"] += time.perf_counter() - t0
            self.points += sum(len(s) for _, s in out)
            return out

        def timed(name, key):
            fn = orig[name]

            def wrapper(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    t[key] += time.perf_counter() - t0

            return wrapper

        self.mod._series = _series
        self.mod.detect = timed("detect", "detect")
        self.mod.incidents = timed("incidents", "incidents")
        self.mod.store = timed("store", "store")
        return self

    def __exit__(self, *exc) -> None:
        for p, fn in self.orig.items():
            setattr(self.mod, p, fn)


def run_scan(since, now, grain: str) -> tuple[dict, list[int]]:
    from kpi_lib.anomaly.scan import scan

    with ScanTimers() as tm:
        t0 = time.perf_counter()
        res = scan(since=since, grains=(grain,), now=now)
        wall = time.perf_counter() - t0
    split = {f"{k}_s": round(tm.t[k], 2) for k in ("read", "detect", "incidents", "store")}
    split["other_s"] = round(wall - sum(tm.t[k] for k in ("read", "detect", "incidents", "store")), 2)
    return {
        "series": res.series,
        "points": tm.points,
        "incidents": res.incidents,
        "new": res.new,
        "updated": res.updated,
        "seconds": round(wall, 2),
        "split": split,
        "errors": res.errors[:10],
    }, list(res.new_ids)


# --- the naive baseline -----------------------------------------------------------------------------

MEASURES = ["revenue", "orders", "units", "costed_revenue", "cost", "units_returned", "units_sold"]


def _frame(conn, sql: str, params) -> pd.DataFrame:  # noqa: F821
    import pandas as pd

    cur = conn.execute(sql, params)
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def naive_read(grain: str, start, end) -> dict:
    """One plain SELECT per gold relation for [start, end) (business-time wall clock), into pandas."""
    import pandas as pd

    from kpi_lib import warehouse
    from kpi_lib.config import settings

    tz = settings().timezone
    cols = ", ".join(MEASURES)
    frames = {}
    with warehouse.connect_raw() as conn:
        if grain == "hour":
            rng = "hour >= (%(s)s::timestamp at time zone ops.business_tz()) and hour < (%(e)s::timestamp at time zone ops.business_tz())"
            frames["sales"] = _frame(
                conn,
                f"select hour as period, region, {cols} from gold.sales_hourly where {rng}",
                {"s": start, "e": end},
            )
            frames["category"] = _frame(
                conn,
                f"select hour as period, region, category, {cols} from gold.category_hourly where {rng}",
                {"s": start, "e": end},
            )
            frames["customers"] = _frame(
                conn,
                f"select hour as period, region, customer_id from gold.customer_hourly where {rng}",
                {"s": start, "e": end},
            )
        else:
            rng = "day >= %(s)s::date and day < %(e)s::date"
            frames["sales"] = _frame(
                conn,
                f"select day as period, region, {cols}, new_customers from gold.sales_daily where {rng}",
                {"s": start, "e": end},
            )
            frames["category"] = _frame(
                conn,
                f"select day as period, region, category, {cols} from gold.category_daily where {rng}",
                {"s": start, "e": end},
            )
            hr = "hour >= (%(s)s::timestamp at time zone ops.business_tz()) and hour < (%(e)s::timestamp at time zone ops.business_tz())"
            frames["customers"] = _frame(
                conn,
                f"select hour as period, region, customer_id from gold.customer_hourly where {hr}",
                {"s": start, "e": end},
            )
    for _name, df in frames.items():
        p = df["period"]
        if isinstance(p.dtype, pd.DatetimeTZDtype) or (len(p) and getattr(p.iloc[0], "tzinfo", None)):
            p = pd.to_datetime(p, utc=True).dt.tz_convert(tz).dt.tz_localize(None)
        else:
            p = pd.to_datetime(p)
        if grain == "day":
            p = p.dt.floor("D")
        df["period"] = p
        for c in df.columns:
            if c in MEASURES or c == "new_customers":
                df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return frames


_SUMS = {"revenue": "revenue", "orders": "orders", "units": "units", "new_customers": "new_customers"}


def naive_series(frames: dict, kpi, dim: str | None, grain: str, start, end):
    """(value, series) per series of one KPI and dimension, computed in pandas."""
    import pandas as pd

    keys = ["period"] + ([dim] if dim else [])
    if kpi.name == "customers":
        g = frames["customers"].groupby(keys)["customer_id"].nunique().astype(float)
    else:
        src = frames["category"] if dim == "category" else frames["sales"]
        s = src.groupby(keys)[[c for c in [*MEASURES, "new_customers"] if c in src.columns]].sum()
        if kpi.name in _SUMS:
            g = s[_SUMS[kpi.name]]
        elif kpi.name == "aov":
            g = s["revenue"] / s["orders"].where(s["orders"] != 0)
        elif kpi.name == "gross_margin":
            g = (s["costed_revenue"] - s["cost"]) / s["costed_revenue"].where(s["costed_revenue"] != 0)
        elif kpi.name == "return_rate":
            g = s["units_returned"] / s["units_sold"].where(s["units_sold"] != 0)
        else:
            raise ValueError(f"naive baseline does not know KPI {kpi.name!r}")
        g = g.dropna()
    periods = pd.date_range(start, end, freq={"hour": "h", "day": "D"}[grain], inclusive="left")
    groups = [(None, g)] if dim is None else [(str(v), x.droplevel(dim)) for v, x in g.groupby(level=dim)]
    for value, x in groups:
        x = x.sort_index()
        if kpi.additive:
            x = x.reindex(periods, fill_value=0.0)
        x.index.name = "period"
        yield value, x.rename("value")


def run_naive(since, now, grain: str, classic: int | None) -> dict:
    import pandas as pd

    from kpi_lib import kpis as semantic
    from kpi_lib.anomaly import detect, incidents
    from kpi_lib.anomaly.scan import DIMENSIONS, HISTORY, label_for, rules_for

    t0 = time.perf_counter()
    end = semantic.floor_period(now, grain)
    window_start = semantic.floor_period(pd.Timestamp(since).to_pydatetime(), grain)
    start = semantic.floor_period(window_start - HISTORY[grain], grain)
    frames = naive_read(grain, start, end)
    t_read = time.perf_counter() - t0
    rows = sum(len(f) for f in frames.values())
    t_compute = t_detect = t_classic = 0.0
    n_series = n_inc = points = classic_alarms = classic_series = 0
    for k in semantic.definitions().values():
        rules = rules_for(k, grain)
        if rules is None:
            continue
        for dim in DIMENSIONS.get(grain, (None,)):
            if dim is not None and dim not in k.dimensions:
                continue
            t1 = time.perf_counter()
            groups = list(naive_series(frames, k, dim, grain, start, end))
            t_compute += time.perf_counter() - t1
            for value, s in groups:
                n_series += 1
                points += len(s)
                label = label_for(k, dim, value)
                t1 = time.perf_counter()
                frame = detect(s, rules, label=label, fmt=k.format_compact)
                n_inc += sum(
                    1
                    for inc in incidents(frame, label=label, fmt=k.format_compact)
                    if pd.Timestamp(inc.start) >= pd.Timestamp(window_start)
                )
                t_detect += time.perf_counter() - t1
                if classic is None or classic_series < classic:
                    t1 = time.perf_counter()
                    f2 = detect(s, "classic")
                    t_classic += time.perf_counter() - t1
                    classic_series += 1
                    classic_alarms += int(f2.loc[f2.index >= pd.Timestamp(window_start), "is_anomaly"].sum())
    out = {
        "series": n_series,
        "points": points,
        "rows_read": rows,
        "incidents": n_inc,
        "seconds": round(time.perf_counter() - t0 - t_classic, 2),
        "split": {
            "read_s": round(t_read, 2),
            "compute_s": round(t_compute, 2),
            "detect_s": round(t_detect, 2),
        },
    }
    if classic_series:
        out["classic"] = {
            "series": classic_series,
            "seconds": round(t_classic, 2),
            "alarms": classic_alarms,
            "per_series_s": round(t_classic / classic_series, 2),
            "all_series_s_estimated": round(t_classic / classic_series * n_series, 1),
        }
    return out


# --- one warehouse ------------------------------------------------------------------------------------


def start_artifacts(ids: list[int], first_order) -> dict:
    """Incidents (of ``ids``) starting within 7 days of the first order, by KPI."""
    from kpi_lib import warehouse

    if not ids or first_order is None:
        return {"count": 0}
    with warehouse.connect_raw() as conn:
        rows = conn.execute(
            "select kpi, count(*) from ops.anomalies where id = any(%s) and started_at < %s + interval '7 days'"
            " group by kpi order by kpi",
            [ids, first_order],
        ).fetchall()
    return {"count": sum(n for _, n in rows), "by_kpi": dict(rows)}


def one_size(lines: int, grains: list[str], args) -> dict:
    from kpi_lib import cache, warehouse
    from kpi_lib import kpis as semantic

    home = RESULTS / f"warehouse-{lines}"
    common.use_home(home)
    was_running = warehouse.status().running
    out: dict = {"lines": lines, "home": str(home), "server_was_running": was_running}
    created: list[int] = []
    before = None
    try:
        if not common.demo_loaded(lines, DAYS, SEED):
            if not args.load:
                out["skipped"] = (
                    f"{home} does not hold the {lines:,}-line demo (run bench_load.py, or pass --load)"
                )
                log(out["skipped"])
                return out
            from kpi_lib import demo, gold

            log(f"loading the {lines:,}-line demo into {home}")
            gold.init()
            demo.load_demo(lines, DAYS, SEED, force=True)
        with warehouse.connect_raw(autocommit=True) as conn:
            first, last, n_orders = conn.execute(
                "select min(ordered_at), max(ordered_at), count(*) from silver.orders"
            ).fetchone()
            before = conn.execute("select coalesce(max(id), 0) from ops.anomalies").fetchone()[0]
        now = semantic.local_now()
        since = now - timedelta(days=args.days)
        out.update({"orders": n_orders, "first_order": first, "last_order": last, "since": since, "now": now})
        for grain in grains:
            cache.clear()
            log(f"{lines:,} lines, {grain}: scan (cold L1)")
            r: dict = {}
            r["scan"], new_ids = run_scan(since, now, grain)
            created += new_ids
            log(
                f"  {r['scan']['series']} series, {r['scan']['incidents']} incidents in {r['scan']['seconds']} s "
                f"{r['scan']['split']}"
            )
            r["start_artifacts"] = start_artifacts(new_ids, first)
            if not args.no_naive:
                log(f"{lines:,} lines, {grain}: naive pandas read + detect per series")
                classic = None if grain == "day" else args.classic_sample
                r["naive"] = run_naive(since, now, grain, classic)
                log(
                    f"  {r['naive']['series']} series, {r['naive']['incidents']} incidents in "
                    f"{r['naive']['seconds']} s {r['naive']['split']}"
                )
                r["same_incidents"] = r["naive"]["incidents"] == r["scan"]["incidents"]
                r["scan_vs_naive"] = round(r["scan"]["seconds"] / r["naive"]["seconds"], 2)
            if args.repeat:
                log(f"{lines:,} lines, {grain}: scan again (warm L1)")
                r["scan_repeat"], more = run_scan(since, now, grain)
                created += more
                log(f"  {r['scan_repeat']['seconds']} s {r['scan_repeat']['split']}")
            out[grain] = r
        out["postgres"] = server_version()
    finally:
        if created and args.keep_incidents:
            out["incidents_kept"] = len(created)
        elif created:  # leave the reused warehouse as it was found (also when interrupted)
            with warehouse.connect_raw() as conn:
                out["incidents_deleted_after"] = conn.execute(
                    "delete from ops.anomalies a where id = any(%s) and id > %s and not exists"
                    " (select 1 from ops.alert_notifications n where n.anomaly_id = a.id)",
                    [created, before],
                ).rowcount
                conn.commit()
        if was_running:
            warehouse.dispose()
            log(f"left the server in {home} running (it was running before)")
        else:
            common.stop_server()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", default="1000000,10000000", help="comma-separated demo sizes")
    ap.add_argument("--grains", default="hour,day")
    ap.add_argument("--days", type=int, default=730, help="scan window: since = now - DAYS")
    ap.add_argument("--quick", action="store_true", help="1 M lines only, no repeat scan")
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument(
        "--classic-sample",
        type=int,
        default=2,
        help="hour grain: classic rules on this many series only (day grain: all of them)",
    )
    ap.add_argument("--no-repeat", dest="repeat", action="store_false")
    ap.add_argument(
        "--load", action="store_true", help="load a size whose warehouse is missing (slow at 10 M)"
    )
    ap.add_argument("--keep-incidents", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.lines.split(",") if x.strip()]
    if args.quick:
        sizes, args.repeat = sizes[:1], False
    grains = [g.strip() for g in args.grains.split(",") if g.strip()]

    with json_stdout() as emit:
        doc: dict = {
            "benchmark": "scan",
            "days": args.days,
            "grains": grains,
            "machine": machine(),
            "runs": [],
        }
        for n in sizes:
            doc["runs"].append(one_size(n, grains, args))
        summary = {}
        for r in doc["runs"]:
            for g in grains:
                if g in r:
                    x = r[g]
                    summary[f"{r['lines']}:{g}"] = {
                        "series": x["scan"]["series"],
                        "incidents": x["scan"]["incidents"],
                        "scan_s": x["scan"]["seconds"],
                        "naive_s": x.get("naive", {}).get("seconds"),
                        "scan_repeat_s": x.get("scan_repeat", {}).get("seconds"),
                        "start_artifacts": x["start_artifacts"]["count"],
                    }
        doc["summary"] = summary
        emit(finish(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
