"""Streaming ingest: the split (land in bronze, move to silver and gold) vs the one-transaction
micro-batch it replaced vs a row-by-row INSERT loop, and freshness.

    .venv/bin/python benchmarks/bench_ingest.py            # full: 1 M-line base, 3 rounds x 50 k events, 60 markers
    .venv/bin/python benchmarks/bench_ingest.py --quick    # 100 k-line base, 2 rounds x 20 k events, 20 markers

The warehouse is a fresh throw-away ``benchmarks/results/warehouse-ingest`` (or ``--home``) holding the
seeded demo business (``--base-lines``), because ingest appends to it.

(a) Throughput. Realistic live orders (``Business.live_orders`` over the last 30 minutes,
``demo.to_events``, at most 3 lines each: lines beyond the third are dropped), ``--events`` of them per
run, generated before each run (not timed). ``--rounds`` rounds; each round runs the three designs on
fresh events in an order that rotates (interleaved: load from other processes falls on all alike),
with the default micro-batch size (``KPI_BATCH_MAX_EVENTS``):

* ``one_txn``: the design before the split (``ingest_one_txn.py``, that commit's ``write_batch``):
  validation, COPY into bronze and staging, silver upsert, incremental gold, version bump and NOTIFY,
  one transaction per batch;
* ``wait``: the split as ``stream.ingest`` runs it: every batch landed (one COPY transaction each:
  bronze, pending rows), then moved in as few moves as the backlog allows; ``land`` and ``move``
  reported apart;
* ``fast``: ``stream.ingest(wait=False)``: the landing rate, i.e. events acknowledged, while this
  process's background mover moves concurrently; ``moved``: until the last one is in gold.

Each run reports wall-clock events/s, and CPU microseconds per event of this process (validation, COPY
rows, all threads) and of the PostgreSQL server (all its processes). The machine is shared, so wall
time stretches with other people's load while CPU time mostly does not; ``idle_2_core_estimate`` is
events / max(client CPU, server CPU): the rate with Python on one core and PostgreSQL on the other,
perfectly overlapped (an upper estimate, not a measurement). In the same run:

* ``insert_loop``: ``--insert-sample`` other events of the same kind, each written the naive way:
  one transaction per event, one INSERT per row (its bronze row with the JSON payload, its order row,
  each of its line rows) into scratch copies of bronze.events, silver.orders and silver.order_lines
  (same keys and indexes). No gold, no de-duplication, no notification: flattering to the baseline.
  Also reported with the whole sample in ONE transaction (a stronger baseline).
* ``bronze_copy``: the same events serialised to JSON and COPY'd into a scratch copy of bronze.events
  in batches of the same size: the landing rate of raw events alone (the ceiling of the COPY path).

Diagnostics: ``batch_size_sweep`` (``--sweep``: the fast path with other micro-batch sizes) and
``profile_one_batch``: one more default-size batch, its validation, its landing and each statement of
the move that takes it to gold, timed apart (what to optimise first).

(b) Freshness. ``demo.simulate(rate=200)`` runs in a separate process (the live feed). This process
subscribes (``stream.subscribe``) like a dashboard server. Each marker is one order in its own,
unique region ("Marker <run>-<i>") with a known revenue; the clock starts when the marker is handed to
``stream.ingest([marker])`` and stops when the subscriber, on a notification, runs
``kpi_lib.query("revenue", "total", today, where={"region": <marker region>})`` (cache on, as a
dashboard would) and gets the marker's revenue. Also reported: the time until ``ingest`` returned
(committed) and until the notification arrived. The same is measured for markers put into a
long-lived ``stream.Ingestor`` with the default batch interval (``KPI_BATCH_INTERVAL_MS``), the way a
broker consumer feeds it (it waits for each batch's move), and into a fast-path ``Ingestor(wait=False)``
whose batches this process's background mover moves. Markers are spaced 0.1-0.4 s apart at random.

Bars (DESIGN.md): ingest >= 50,000 events/s (the fast path's acknowledged landing rate) and >= 20x
the INSERT loop; freshness p95 <= 1 s.
Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

# the checkout's kpi_lib (not whatever an editable install maps), then the shared helpers
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import common  # noqa: E402
from common import log  # noqa: E402

BAR_EVENTS_PER_S = 50_000
BAR_RATIO = 20
BAR_FRESHNESS_P95_MS = 1000
MAX_LINES = 3


# --- events -------------------------------------------------------------------------------------------


def make_events(biz, n: int, prefix: str, rng: np.random.Generator, minutes: float = 30) -> list[dict]:
    """About ``n`` live orders spread over the last ``minutes``, as ingest events (1-3 lines each)."""
    from kpi_lib.demo import to_events

    end = datetime.now(UTC) - timedelta(seconds=5)
    start = end - timedelta(minutes=minutes)
    events: list[dict] = []
    step = 60.0
    t = start
    rate = n / (minutes * 60)
    while t < end:
        orders, lines = biz.live_orders(t, step, rate, rng, prefix=prefix)
        events.extend(to_events(orders, lines, prefix=prefix))
        t += timedelta(seconds=step)
    while len(events) < n:  # the seasonality made fewer than asked for: top up at the end
        orders, lines = biz.live_orders(
            end - timedelta(seconds=step), step, rate, rng, prefix=f"{prefix}x{len(events)}"
        )
        events.extend(to_events(orders, lines, prefix=f"{prefix}x{len(events)}"))
    events = events[:n]
    for ev in events:
        del ev["lines"][MAX_LINES:]
    return events


# --- (a) throughput -----------------------------------------------------------------------------------


def server_cpu_s() -> float:
    """CPU seconds the embedded PostgreSQL has used so far: the postmaster, its live children and
    the children it already reaped (its cutime/cstime). Load from other processes on this shared
    machine stretches wall time, not CPU time, so CPU per event is the steadier figure."""
    from kpi_lib.config import settings

    tick = os.sysconf("SC_CLK_TCK")
    pid = (settings().pgdata / "postmaster.pid").read_text().split()[0]

    def fields(p: str) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    f = fields(pid)
    total = sum(int(x) for x in f[11:15])
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                c = fields(proc.name)
            except OSError:
                continue
            if c[1] == pid:
                total += int(c[11]) + int(c[12])
    return total / tick


class Clock:
    """Wall time, this process's CPU and the server's CPU since it started."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.db = time.perf_counter(), time.process_time(), server_cpu_s()

    def since(self, n: int) -> dict:
        wall = time.perf_counter() - self.wall
        cpu, db = time.process_time() - self.cpu, server_cpu_s() - self.db
        return {
            "seconds": round(wall, 3),
            "events_per_s": round(n / wall),
            "client_cpu_us_per_event": round(cpu * 1e6 / n, 1),
            "server_cpu_us_per_event": round(db * 1e6 / n, 1),
            # with this machine to itself: Python on one core, PostgreSQL on the other, overlapped
            "idle_2_core_estimate_events_per_s": round(n / max(cpu, db)),
        }


def run_ingest(events: list[dict], source: str, batch_size: int | None = None, mode: str = "wait") -> dict:
    """One throughput run. ``mode``:

    * ``one_txn``: the design before the split, every batch in one transaction (``ingest_one_txn``);
    * ``wait``: the split as ``stream.ingest`` runs it: land every batch (no mover meanwhile), then
      move them in as few moves as ``MOVE_MAX_EVENTS`` allows; ``land`` and ``move`` timed apart;
    * ``fast``: ``stream.ingest(wait=False)``: events/s is the landing rate (the events the caller was
      acknowledged) while this process's background mover moves concurrently; ``moved`` counts until
      the last one is in silver and gold.
    """
    import ingest_one_txn

    from kpi_lib import stream, warehouse

    n = len(events)
    out: dict = {"mode": mode, "events": n}
    clock = Clock()
    if mode == "one_txn":
        res = ingest_one_txn.ingest(events, source=source, batch_size=batch_size)
        out.update(clock.since(n), loaded=res.loaded, batches=res.batches)
        return out
    if mode == "wait":
        ing = stream.Ingestor(source, interval_ms=3_600_000, max_events=batch_size, wait=False, mover=False)
    else:
        ing = stream.Ingestor(source, interval_ms=3_600_000, max_events=batch_size, wait=False)
    for ev in events:
        ing.put(ev)
    res = ing.close()
    out.update(clock.since(n), landed=res.landed, batches=res.batches)
    move_clock = Clock()
    with warehouse.connect_raw() as conn:
        moved = stream.write.moved_result(conn, res.land_ids)  # moves here, or waits for the mover
    out["loaded"] = moved.loaded
    if mode == "wait":
        out["land"] = {k: out.pop(k) for k in list(clock.since(n))}
        out["move"] = move_clock.since(n)
        out.update(clock.since(n))
    else:
        out["moved"] = clock.since(n)
    return out


def throughput_rounds(biz, rng, n: int, rounds: int) -> dict:
    """The three designs on fresh events of the same kind, interleaved (the order rotates each round)
    so that load from other processes on this shared machine falls on all of them alike."""
    modes = ["one_txn", "wait", "fast"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(rounds):
        for mode in modes[r % 3 :] + modes[: r % 3]:
            evs = make_events(biz, n, f"B{mode[0]}{r}x", rng)
            out = run_ingest(evs, f"bench-{mode}", mode=mode)
            log(
                f"  round {r + 1} {mode}: {out['events_per_s']:,} events/s, CPU us/event client "
                f"{out['client_cpu_us_per_event']} server {out['server_cpu_us_per_event']}"
                + (f"; moved {out['moved']['events_per_s']:,}/s" if mode == "fast" else "")
            )
            runs[mode].append(out)

    def med(rs: list[dict], key: str) -> float:
        return float(np.median([r[key] for r in rs]))

    keys = (
        "events_per_s",
        "client_cpu_us_per_event",
        "server_cpu_us_per_event",
        "idle_2_core_estimate_events_per_s",
    )
    summary: dict = {}
    for mode, rs in runs.items():
        summary[mode] = {f"{k}_median": med(rs, k) for k in keys}
        summary[mode]["events_per_s"] = [r["events_per_s"] for r in rs]
        summary[mode]["loaded"] = sum(r["loaded"] for r in rs)
        summary[mode]["events"] = sum(r["events"] for r in rs)
        for part in ("land", "move", "moved"):
            if part in rs[0]:
                summary[mode][part] = {f"{k}_median": med([r[part] for r in rs], k) for k in keys}
    return {"events_per_run": n, "rounds": rounds, "summary": summary, "runs": runs}


def _scratch(conn) -> None:
    conn.execute("create schema if not exists bench_scratch")
    for name, like in (
        ("events", "bronze.events"),
        ("orders", "silver.orders"),
        ("order_lines", "silver.order_lines"),
    ):
        conn.execute(f"drop table if exists bench_scratch.{name}")
        conn.execute(f"create table bench_scratch.{name} (like {like} including all)")
    conn.commit()


def _order_row(ev: dict, source: str) -> tuple:
    return (
        ev["order_id"],
        ev["ordered_at"],
        ev["customer_id"],
        ev["region"],
        ev["channel"],
        ev["event_id"],
        source,
    )


def _line_rows(ev: dict) -> list[tuple]:
    return [
        (
            ev["order_id"],
            i,
            ln["product_id"],
            ln["product_name"],
            ln["category"],
            ln["quantity"],
            ln["unit_price"],
            ln["discount"],
            ln["unit_cost"],
        )
        for i, ln in enumerate(ev["lines"], 1)
    ]


SQL_EVENT = "insert into bench_scratch.events (event_id, source, payload) values (%s, %s, %s)"
SQL_ORDER = (
    "insert into bench_scratch.orders (order_id, ordered_at, customer_id, region, channel, event_id, source) "
    "values (%s, %s, %s, %s, %s, %s, %s)"
)
SQL_LINE = (
    "insert into bench_scratch.order_lines (order_id, line_no, product_id, product_name, category, quantity, "
    "unit_price, discount, unit_cost) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def run_insert_loop(events: list[dict], source: str, per_event_txn: bool) -> dict:
    from kpi_lib import warehouse

    with warehouse.connect_raw() as conn:
        _scratch(conn)
        cur = conn.cursor()
        statements = 0
        clock = Clock()
        for ev in events:
            cur.execute(SQL_EVENT, (ev["event_id"], source, json.dumps(ev, default=str)))
            cur.execute(SQL_ORDER, _order_row(ev, source))
            for row in _line_rows(ev):
                cur.execute(SQL_LINE, row)
            statements += 2 + len(ev["lines"])
            if per_event_txn:
                conn.commit()
        conn.commit()
        timing = clock.since(len(events))
        conn.execute("drop schema bench_scratch cascade")
        conn.commit()
    return {
        "events": len(events),
        "statements": statements,
        "transactions": len(events) if per_event_txn else 1,
        **timing,
    }


def profile_batch(events: list[dict], source: str) -> dict:
    """Where one batch's time goes: validation, its landing (``stream.land_batch``, one COPY
    transaction), then every statement of the move that takes it to silver and gold
    (``stream.move_once``, timed by wrapping the connection's ``execute``; functions in SQL, such as
    ``gold.apply_new_orders()``, count as one statement). Diagnostic only."""
    from kpi_lib import stream, warehouse

    stream.drain()  # nothing else waiting: the move takes this batch alone
    t0 = time.perf_counter()
    batch = stream.validate(events, source)
    validate_s = time.perf_counter() - t0
    steps: dict[str, float] = {}
    with warehouse.connect_raw() as conn:
        t0 = time.perf_counter()
        stream.land_batch(conn, batch, source)
        land_s = time.perf_counter() - t0
        real_execute = conn.execute

        def execute(query, *a, **k):
            t = time.perf_counter()
            try:
                return real_execute(query, *a, **k)
            finally:
                text = " ".join(str(query).split())
                steps[text[:80]] = steps.get(text[:80], 0.0) + time.perf_counter() - t

        conn.execute = execute
        t0 = time.perf_counter()
        moved = stream.move_once(conn)
        move_s = time.perf_counter() - t0
    timed_s = sum(steps.values())
    return {
        "events": len(events),
        "loaded": moved.loaded,
        "validate_ms": round(validate_s * 1000, 1),
        "validate_us_per_event": round(validate_s * 1e6 / max(len(events), 1), 1),
        "land_batch_ms": round(land_s * 1000, 1),
        "move_once_ms": round(move_s * 1000, 1),
        "move_statements_ms": {
            k: round(v * 1000, 1) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])
        },
        "move_untimed_ms (commit, Python)": round((move_s - timed_s) * 1000, 1),
    }


def run_bronze_copy(events: list[dict], source: str, batch: int) -> dict:
    """Serialise each event to JSON and COPY it into a scratch bronze.events, batch by batch (one
    transaction each). Reported whole, and with serialisation and COPY timed apart."""
    from kpi_lib import warehouse

    with warehouse.connect_raw() as conn:
        _scratch(conn)
        dumps_s = copy_s = 0.0
        t0 = time.perf_counter()
        for i in range(0, len(events), batch):
            t = time.perf_counter()
            rows = [(ev["event_id"], source, json.dumps(ev, default=str)) for ev in events[i : i + batch]]
            t1 = time.perf_counter()
            with conn.cursor().copy("copy bench_scratch.events (event_id, source, payload) from stdin") as cp:
                for row in rows:
                    cp.write_row(row)
            conn.commit()
            dumps_s += t1 - t
            copy_s += time.perf_counter() - t1
        secs = time.perf_counter() - t0
        conn.execute("drop schema bench_scratch cascade")
        conn.commit()
    n = len(events)
    return {
        "events": n,
        "batch_size": batch,
        "seconds": round(secs, 3),
        "events_per_s": round(n / secs),
        "json_dumps_events_per_s": round(n / dumps_s),
        "copy_only_events_per_s": round(n / copy_s),
    }


# --- (b) freshness ------------------------------------------------------------------------------------

SIMULATOR = """
import json, sys, threading
sys.path.insert(0, {root!r})
from kpi_lib.demo import simulate
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
s = simulate(rate={rate}, duration={max_s}, stop=stop)
print(json.dumps({{"orders": s.orders, "seconds": round(s.seconds, 1)}}), flush=True)
"""


class Watcher:
    """The dashboard side: on every notification, ask the query layer whether the marker is visible."""

    def __init__(self) -> None:
        import kpi_lib
        from kpi_lib import kpis

        self.kpi_lib, self.kpis = kpi_lib, kpis
        self.lock = threading.Lock()
        self.target: tuple[str, float] | None = None
        self.seen = threading.Event()
        self.seen_at = 0.0
        self.changes: list[tuple[float, int, str | None]] = []  # (perf_counter, version, source)
        self.queries = 0
        self.query_s: list[float] = []

    def __call__(self, change) -> None:
        now = time.perf_counter()
        self.changes.append((now, change.version, change.source))
        with self.lock:
            target = self.target
        if target is None or self.seen.is_set():
            return
        region, expected = target
        today = self.kpis.floor_period(self.kpis.local_now(), "day")
        t0 = time.perf_counter()
        r = self.kpi_lib.query(
            "revenue", "total", start=today, end=today + timedelta(days=1), where={"region": region}
        )
        self.query_s.append(time.perf_counter() - t0)
        self.queries += 1
        if r.value is not None and abs(r.value - expected) < 1e-6:
            self.seen_at = time.perf_counter()
            self.seen.set()

    def expect(self, region: str, expected: float) -> None:
        with self.lock:
            self.seen.clear()
            self.target = (region, expected)

    def notified_at(self, version: int | None, after: float) -> float | None:
        if version is None:
            return None
        for t, v, _src in list(self.changes):
            if t >= after and v >= version:
                return t
        return None


def marker_event(run: str, i: int, mode: str) -> tuple[dict, str, float]:
    region = f"Marker {run}-{mode}-{i}"
    price = round(1000 + i + random.random(), 2)
    ev = {
        "event_id": f"mk-{run}-{mode}-{i}",
        "order_id": f"MK{run}{mode}{i:04d}",
        "ordered_at": datetime.now(UTC).isoformat(),
        "customer_id": f"CMK{run}",
        "region": region,
        "channel": "Web",
        "lines": [
            {
                "product_id": "PMK",
                "product_name": "Benchmark marker",
                "category": "Markers",
                "quantity": 1,
                "unit_price": price,
                "discount": 0,
                "unit_cost": None,
            }
        ],
    }
    return ev, region, price


def run_freshness(watcher: Watcher, markers: int, run: str, mode: str, timeout: float = 10.0) -> dict:
    from kpi_lib import stream

    ing = None
    if mode in ("ingestor", "fast"):
        ing = stream.Ingestor(f"marker-{mode}", wait=mode == "ingestor")
    visible, committed, notified, missed = [], [], [], 0
    try:
        for i in range(markers):
            time.sleep(random.uniform(0.1, 0.4))
            ev, region, price = marker_event(run, i, mode)
            watcher.expect(region, price)
            t0 = time.perf_counter()
            if ing is None:
                res = stream.ingest([ev], source="marker")
                committed.append(time.perf_counter() - t0)
                version = res.version
            else:
                ing.put(ev)
                version = None
            if not watcher.seen.wait(timeout):
                missed += 1
                log(f"  marker {i} not visible after {timeout:.0f}s")
                continue
            visible.append(watcher.seen_at - t0)
            t_note = watcher.notified_at(version, t0)
            if t_note is not None:
                notified.append(t_note - t0)
    finally:
        if ing is not None:
            ing.close()
    out = {
        "markers": markers,
        "missed": missed,
        "visible": common.pct(visible),
    }
    if committed:
        out["ingest_returned"] = common.pct(committed)
    if notified:
        out["notified"] = common.pct(notified)
    return out


def freshness(markers: int, rate: float) -> dict:
    from kpi_lib import stream

    run = datetime.now(UTC).strftime("%H%M%S")
    max_s = 600
    sim = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR.format(root=str(common.ROOT), rate=rate, max_s=max_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    watcher = Watcher()
    sub = stream.subscribe(watcher)
    out: dict = {"simulator_rate_orders_per_s": rate}
    try:
        stream.wait_connected(10)
        log(f"  simulator pid {sim.pid} started; waiting for its first batches")
        t_wait = time.monotonic()
        while not any(src == "simulator" for _, _, src in watcher.changes):
            if time.monotonic() - t_wait > 120 or sim.poll() is not None:
                raise RuntimeError("the simulator did not produce a batch within 120 s")
            time.sleep(0.2)
        time.sleep(3)  # let it settle into its rhythm
        t_start = time.perf_counter()
        n_changes = len(watcher.changes)
        log(f"  {markers} markers through stream.ingest")
        out["via_ingest"] = run_freshness(watcher, markers, run, "ingest")
        log(f"  {markers} markers through a long-lived stream.Ingestor (default batch interval)")
        out["via_ingestor"] = run_freshness(watcher, markers, run, "ingestor")
        log(f"  {markers} markers through a fast-path stream.Ingestor (wait=False, this process's mover)")
        out["via_fast_ingestor"] = run_freshness(watcher, markers, run, "fast")
        secs = time.perf_counter() - t_start
        sim_batches = sum(1 for t, _, src in watcher.changes[n_changes:] if src == "simulator")
        out["notifications_per_s"] = round((len(watcher.changes) - n_changes) / secs, 1)
        out["simulator_batches_per_s"] = round(sim_batches / secs, 1)
        out["subscriber_queries"] = watcher.queries
        out["subscriber_query"] = common.pct(watcher.query_s)
    finally:
        sub.close()
        stream._hub.stop()
        try:
            stdout, _ = sim.communicate(input="", timeout=60)  # closing its stdin stops the simulator
            out["simulator"] = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            sim.terminate()
            sim.wait(10)
            out["simulator"] = None
    if out.get("simulator"):
        s = out["simulator"]
        out["simulator_achieved_orders_per_s"] = (
            round(s["orders"] / s["seconds"], 1) if s["seconds"] else None
        )
    return out


# --- main --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small base, 20 k events, 20 markers (< 2 min)")
    ap.add_argument("--base-lines", type=int, default=1_000_000, help="demo order lines loaded first")
    ap.add_argument("--base-days", type=int, default=730)
    ap.add_argument(
        "--events", type=int, default=50_000, help="events per throughput run (each design, each round)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three designs")
    ap.add_argument("--insert-sample", type=int, default=5_000, help="events for the INSERT-loop baseline")
    ap.add_argument("--markers", type=int, default=60, help="freshness markers per mode (>= 50)")
    ap.add_argument("--rate", type=float, default=200.0, help="simulator orders/s during the freshness run")
    ap.add_argument(
        "--home", type=Path, help="warehouse folder (default benchmarks/results/warehouse-ingest)"
    )
    ap.add_argument(
        "--sweep",
        default="1000,20000",
        help="other micro-batch sizes to measure stream.ingest with ('' for none)",
    )
    ap.add_argument("--sweep-events", type=int, default=40_000, help="events per sweep size")
    args = ap.parse_args()
    if args.quick:
        args.base_lines, args.base_days, args.events, args.rounds, args.insert_sample, args.markers = (
            100_000,
            60,
            20_000,
            2,
            1_000,
            20,
        )
        args.sweep = ""
    args.sweep = [int(float(x)) for x in args.sweep.split(",") if x.strip()]
    home = common.use_home(args.home or common.RESULTS / "warehouse-ingest", fresh=True)

    with common.json_stdout() as emit:
        doc: dict = {
            "benchmark": "ingest",
            "machine": common.machine(),
            "params": {
                "base_lines": args.base_lines,
                "base_days": args.base_days,
                "events_per_run": args.events,
                "rounds": args.rounds,
                "insert_sample": args.insert_sample,
                "markers_per_mode": args.markers,
                "simulator_rate": args.rate,
                "batch_size_sweep": args.sweep,
                "sweep_events": args.sweep_events,
                "max_lines_per_event": MAX_LINES,
                "home": str(home),
            },
        }
        try:
            from kpi_lib import demo, gold
            from kpi_lib.config import settings

            log(f"loading the {args.base_lines:,}-line base business into {home}")
            gold.init()
            demo.load_demo(lines=args.base_lines, days=args.base_days, seed=42)
            doc["postgres"] = common.server_version()
            biz = demo.business_for_live()
            rng = np.random.default_rng(7)
            log(f"generating {args.insert_sample:,} events for the INSERT loop")
            sample = make_events(biz, args.insert_sample, "BS", rng)
            n_lines = [len(e["lines"]) for e in sample]
            doc["params"]["lines_per_event"] = {
                "mean": round(float(np.mean(n_lines)), 2),
                "share": {str(k): round(n_lines.count(k) / len(n_lines), 3) for k in range(1, MAX_LINES + 1)},
            }

            log(f"(a) throughput: {args.rounds} rounds of one_txn / wait / fast, {args.events:,} events each")
            a: dict = throughput_rounds(biz, rng, args.events, args.rounds)
            s = a["summary"]
            log("    INSERT loop, one transaction per event")
            a["insert_loop"] = run_insert_loop(sample, "bench-insert", per_event_txn=True)
            log(f"  INSERT loop: {a['insert_loop']['events_per_s']:,} events/s")
            log("    INSERT loop, one transaction for the sample")
            a["insert_loop_one_txn"] = run_insert_loop(sample, "bench-insert", per_event_txn=False)
            log(f"  INSERT loop (one txn): {a['insert_loop_one_txn']['events_per_s']:,} events/s")
            a["insert_loop"]["method"] = (
                "per event: BEGIN, INSERT bronze row (JSON payload), INSERT order row, INSERT each line row, "
                "COMMIT; scratch copies of the real tables with their keys; no gold, no dedup, no NOTIFY"
            )
            events = make_events(biz, args.events, "BC", rng)
            a["bronze_copy"] = run_bronze_copy(events, "bench-bronze", settings().batch_max_events)
            log(f"  bronze-only COPY: {a['bronze_copy']['events_per_s']:,} events/s")
            log("    profile of one landing and its move")
            a["profile_one_batch"] = profile_batch(
                make_events(biz, settings().batch_max_events, "BP", rng), "bench-profile"
            )
            if args.sweep:
                a["batch_size_sweep"] = []
                for size in args.sweep:
                    evs = make_events(biz, args.sweep_events, f"BW{size}x", rng)
                    r = run_ingest(evs, "bench-sweep", batch_size=size, mode="fast")
                    log(f"  fast path, batch size {size:,}: {r['events_per_s']:,} events/s")
                    a["batch_size_sweep"].append(r)
            loop = a["insert_loop"]["events_per_s"]
            a["vs_insert_loop"] = {m: common.ratio(s[m]["events_per_s_median"], loop) for m in s}
            a["vs_insert_loop_idle_2_core_estimate"] = {
                m: common.ratio(
                    s[m]["idle_2_core_estimate_events_per_s_median"],
                    a["insert_loop"]["idle_2_core_estimate_events_per_s"],
                )
                for m in s
            }
            a["fast_vs_one_txn"] = common.ratio(
                s["fast"]["events_per_s_median"], s["one_txn"]["events_per_s_median"]
            )
            doc["throughput"] = a

            log(f"(b) freshness with the simulator at {args.rate:g} orders/s")
            doc["freshness"] = freshness(args.markers, args.rate)
            f = doc["freshness"]
            doc["bars"] = {
                "ingest_events_per_s >= 50k (fast path: landed, acknowledged)": {
                    "measured": s["fast"]["events_per_s_median"],
                    "met": s["fast"]["events_per_s_median"] >= BAR_EVENTS_PER_S,
                    "idle_2_core_estimate_landing_alone": s["wait"]["land"][
                        "idle_2_core_estimate_events_per_s_median"
                    ],
                    "moved_to_gold_events_per_s": s["fast"]["moved"]["events_per_s_median"],
                },
                "ingest >= 20x insert loop": {
                    "measured": a["vs_insert_loop"]["fast"],
                    "met": (a["vs_insert_loop"]["fast"] or 0) >= BAR_RATIO,
                },
                "freshness_p95_ms <= 1000": {
                    "measured_via_ingest": f["via_ingest"]["visible"].get("p95_ms"),
                    "measured_via_ingestor": f["via_ingestor"]["visible"].get("p95_ms"),
                    "measured_via_fast_ingestor": f["via_fast_ingestor"]["visible"].get("p95_ms"),
                    "met": all(
                        (f[k]["visible"].get("p95_ms") or 1e9) <= BAR_FRESHNESS_P95_MS and f[k]["missed"] == 0
                        for k in ("via_ingest", "via_ingestor", "via_fast_ingestor")
                    ),
                },
            }
        finally:
            from kpi_lib import stream

            stream.move._mover.stop()  # no reconnect attempts against the server about to stop
            common.stop_server()
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
