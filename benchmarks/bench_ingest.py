"""Streaming ingest: throughput of ``kpi_lib.stream.ingest`` vs a row-by-row INSERT loop, and freshness.

    .venv/bin/python benchmarks/bench_ingest.py            # full: 1 M-line base, 200 k events, 60 markers (~8 min)
    .venv/bin/python benchmarks/bench_ingest.py --quick    # 100 k-line base, 20 k events, 20 markers (< 2 min)

The warehouse is a fresh throw-away ``benchmarks/results/warehouse-ingest`` (or ``--home``) holding the
seeded demo business (``--base-lines``), because ingest appends to it.

(a) Throughput. ``--events`` realistic live orders (``Business.live_orders`` over the last 30 minutes,
``demo.to_events``, at most 3 lines each: lines beyond the third are dropped) are generated first
(not timed), then handed to ``stream.ingest(events, source)`` with the default micro-batch size
(``KPI_BATCH_MAX_EVENTS``): validation, COPY into bronze and staging, silver upsert, incremental gold,
version bump and NOTIFY, one transaction per batch. Figure: events/s = events loaded / wall time.
In the same run:

* ``insert_loop``: ``--insert-sample`` other events of the same kind, each written the naive way:
  one transaction per event, one INSERT per row (its bronze row with the JSON payload, its order row,
  each of its line rows) into scratch copies of bronze.events, silver.orders and silver.order_lines
  (same keys and indexes). No gold, no de-duplication, no notification: flattering to the baseline.
  Also reported with the whole sample in ONE transaction (a stronger baseline).
* ``bronze_copy``: the same events serialised to JSON and COPY'd into a scratch copy of bronze.events
  in batches of the same size: the landing rate of raw events alone (the ceiling of the COPY path).

Interleaved (``--rounds``, default 4; each round ``--events / rounds`` events per design, so that the
machine's load weighs on all three alike): the one-transaction design (``stream.ingest``), the fast path
(``stream.Lander``: raw events COPY'd into bronze.landed_events, acknowledged; this process's mover
validates in SQL and moves to silver and gold at the same time) -- ``acked_events_per_s`` until the
last batch landed, ``gold_events_per_s`` until the last landing was moved -- and the INSERT loop
(``--insert-sample / rounds``). ``fast_land_then_move``: each half of the fast path alone (land a
burst with no mover running, then drain it), with the mover's SQL steps in us per event. The freshness
part adds markers through a long-lived ``stream.Lander`` (``via_fast_lander``).

Diagnostics: ``batch_size_sweep`` (``--sweep``: ``stream.ingest`` again with other micro-batch sizes)
and ``profile_one_batch``: one more default-size batch, its validation time and each statement of
``stream.write_batch`` timed separately (what to optimise first).

(b) Freshness. ``demo.simulate(rate=200)`` runs in a separate process (the live feed). This process
subscribes (``stream.subscribe``) like a dashboard server. Each marker is one order in its own,
unique region ("Marker <run>-<i>") with a known revenue; the clock starts when the marker is handed to
``stream.ingest([marker])`` and stops when the subscriber, on a notification, runs
``kpi_lib.query("revenue", "total", today, where={"region": <marker region>})`` (cache on, as a
dashboard would) and gets the marker's revenue. Also reported: the time until ``ingest`` returned
(committed) and until the notification arrived. The same is measured for markers put into a
long-lived ``stream.Ingestor`` with the default batch interval (``KPI_BATCH_INTERVAL_MS``), the way a
broker consumer feeds it. Markers are spaced 0.1-0.4 s apart at random.

Bars (DESIGN.md): ingest >= 50,000 events/s and >= 20x the INSERT loop; freshness p95 <= 1 s.
Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
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


def run_ingest(events: list[dict], source: str, batch_size: int | None = None) -> dict:
    from kpi_lib import stream
    from kpi_lib.config import settings

    t0 = time.perf_counter()
    res = stream.ingest(events, source=source, batch_size=batch_size)
    secs = time.perf_counter() - t0
    return {
        "events": len(events),
        "loaded": res.loaded,
        "rejected": res.rejected,
        "duplicates": res.duplicates,
        "batches": res.batches,
        "batch_size": batch_size or settings().batch_max_events,
        "seconds": round(secs, 3),
        "events_per_s": round(res.loaded / secs),
        "db_seconds_in_write_batch": round(res.seconds, 3),
        "mean_batch_ms": round(1000 * res.seconds / max(res.batches, 1), 1),
    }


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
        t0 = time.perf_counter()
        for ev in events:
            cur.execute(SQL_EVENT, (ev["event_id"], source, json.dumps(ev, default=str)))
            cur.execute(SQL_ORDER, _order_row(ev, source))
            for row in _line_rows(ev):
                cur.execute(SQL_LINE, row)
            statements += 2 + len(ev["lines"])
            if per_event_txn:
                conn.commit()
        conn.commit()
        secs = time.perf_counter() - t0
        conn.execute("drop schema bench_scratch cascade")
        conn.commit()
    return {
        "events": len(events),
        "statements": statements,
        "transactions": len(events) if per_event_txn else 1,
        "seconds": round(secs, 3),
        "events_per_s": round(len(events) / secs),
    }


def profile_batch(events: list[dict], source: str) -> dict:
    """Where one micro-batch's time goes: validation, then every statement of ``stream.write_batch``
    (timed by wrapping the connection's ``execute`` and ``stream._copy_rows``; functions in SQL, such
    as ``gold.apply_new_orders()``, count as one statement). Diagnostic only."""
    from kpi_lib import stream, warehouse

    t0 = time.perf_counter()
    batch = stream.validate(events, source)
    validate_s = time.perf_counter() - t0
    steps: dict[str, float] = {}

    def add(name: str, secs: float) -> None:
        steps[name] = steps.get(name, 0.0) + secs

    real_copy = stream._copy_rows
    with warehouse.connect_raw() as conn:
        stream.write_batch(
            conn, stream.validate([], source), source
        )  # temp tables exist, as in a live worker
        real_execute = conn.execute

        def execute(query, *a, **k):
            t = time.perf_counter()
            try:
                return real_execute(query, *a, **k)
            finally:
                text = " ".join(str(query).split())
                add(text[:80], time.perf_counter() - t)

        def copy_rows(c, table, columns, rows):
            t = time.perf_counter()
            real_copy(c, table, columns, rows)
            add(f"COPY {table} ({len(rows)} rows)", time.perf_counter() - t)

        conn.execute = execute
        stream._copy_rows = copy_rows
        try:
            t0 = time.perf_counter()
            res = stream.write_batch(conn, batch, source)
            write_s = time.perf_counter() - t0
        finally:
            stream._copy_rows = real_copy
    timed_s = sum(steps.values())
    return {
        "events": len(events),
        "loaded": res.loaded,
        "validate_ms": round(validate_s * 1000, 1),
        "validate_us_per_event": round(validate_s * 1e6 / max(len(events), 1), 1),
        "write_batch_ms": round(write_s * 1000, 1),
        "statements_ms": {k: round(v * 1000, 1) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        "untimed_ms (commit, Python)": round((write_s - timed_s) * 1000, 1),
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


# --- the fast path (issue 17): land raw, move set-based apart ------------------------------------------


def _wait_moved(timeout: float = 600.0) -> None:
    from kpi_lib import stream, warehouse

    with warehouse.connect_raw() as conn:
        t0 = time.monotonic()
        while stream.waiting(conn)[0]:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("the mover did not catch up")
            time.sleep(0.005)


def _landed_totals(conn, source: str) -> tuple[int, int, int]:
    row = conn.execute(
        "select coalesce(sum(loaded), 0), coalesce(sum(duplicates), 0), coalesce(sum(rejected), 0) "
        "from bronze.landings where source = %s",
        [source],
    ).fetchone()
    conn.commit()
    return row


def run_fast(events: list[dict], source: str, batch_size: int | None = None, validate: str = "sql") -> dict:
    """The fast path as a burst meets it: a Lander acknowledges batches (landed raw) while this
    process's background mover validates and moves them to silver and gold, both at once on the
    machine's two cores. ``acked``: until the last batch was landed; ``gold``: until every landing
    was moved (validated, in silver and gold, NOTIFY sent)."""
    import os

    from kpi_lib import stream, warehouse
    from kpi_lib.config import settings

    os.environ["KPI_MOVE_VALIDATE"] = validate  # read by the mover at each move
    stream.start_mover()
    try:
        t0 = time.perf_counter()
        ing = stream.Lander(source, interval_ms=3_600_000, max_events=batch_size)
        for ev in events:
            ing.put(ev)
        res = ing.close()
        t_ack = time.perf_counter() - t0
        _wait_moved()
        t_gold = time.perf_counter() - t0
    finally:
        os.environ.pop("KPI_MOVE_VALIDATE", None)
    with warehouse.connect_raw() as conn:
        loaded, dups, rejected = _landed_totals(conn, source)
    return {
        "events": len(events),
        "landed": res.landed,
        "loaded": loaded,
        "duplicates": dups,
        "rejected": rejected,
        "batches": res.batches,
        "batch_size": batch_size or settings().batch_max_events,
        "acked_seconds": round(t_ack, 3),
        "acked_events_per_s": round(res.landed / t_ack),
        "gold_seconds": round(t_gold, 3),
        "gold_events_per_s": round(loaded / t_gold),
    }


def run_land_then_move(
    events: list[dict], source: str, batch_size: int | None = None, validate: str = "sql"
) -> dict:
    """Each half alone: land the whole burst with no mover running, then one mover drains the
    backlog (batches as large as MOVE_MAX_EVENTS). Per-step timings of the mover's SQL."""
    from kpi_lib import stream

    stream.move._mover.stop()
    t0 = time.perf_counter()
    ing = stream.Lander(source, interval_ms=3_600_000, max_events=batch_size, mover=False)
    for ev in events:
        ing.put(ev)
    res = ing.close()
    t_land = time.perf_counter() - t0
    t1 = time.perf_counter()
    moved = stream.drain(validate=validate)
    t_move = time.perf_counter() - t1
    return {
        "events": len(events),
        "land_seconds": round(t_land, 3),
        "land_events_per_s": round(res.landed / t_land),
        "move_seconds": round(t_move, 3),
        "move_events_per_s": round(moved.events / t_move),
        "landings": moved.landings,
        "loaded": moved.loaded,
        "move_us_per_event": {k: round(1e6 * v / max(moved.events, 1), 1) for k, v in moved.timings.items()},
    }


def interleaved(biz, rng, n: int, sample: int, rounds: int) -> dict:
    """Today's design, the fast path and the INSERT loop, round after round in one run (each round:
    n / rounds events per design), so that the machine's load weighs on all three alike."""
    per, per_sample = n // rounds, max(1, sample // rounds)
    out: dict = {"rounds": [], "events_per_design": per * rounds}
    for r in range(rounds):
        row: dict = {}
        log(f"  round {r + 1}/{rounds}: one-transaction design ({per:,} events)")
        row["one_txn"] = run_ingest(make_events(biz, per, f"BT{r}x", rng), f"bench-one-{r}")
        log(f"    {row['one_txn']['events_per_s']:,} events/s; both fast paths (order alternating)")
        modes = [("fast", "sql", "BF"), ("fast_py", "python", "BY")]
        for key, validate, prefix in modes if r % 2 == 0 else modes[::-1]:
            row[key] = run_fast(
                make_events(biz, per, f"{prefix}{r}x", rng), f"bench-{key}-{r}", validate=validate
            )
            log(
                f"    {key} (mover validating in {validate}): acknowledged {row[key]['acked_events_per_s']:,} "
                f"events/s, gold {row[key]['gold_events_per_s']:,} events/s"
            )
        log(f"    INSERT loop ({per_sample:,})")
        row["insert_loop"] = run_insert_loop(
            make_events(biz, per_sample, f"BS{r}x", rng), "bench-insert", per_event_txn=True
        )
        log(f"    {row['insert_loop']['events_per_s']:,} events/s; uptime {common_load()}")
        row["load_average"] = common_load()
        out["rounds"].append(row)

    def total(design: str, events_key: str, secs_key: str) -> int:
        ev = sum(rw[design][events_key] for rw in out["rounds"])
        secs = sum(rw[design][secs_key] for rw in out["rounds"])
        return round(ev / secs)

    out["one_txn_events_per_s"] = total("one_txn", "loaded", "seconds")
    out["fast_acked_events_per_s"] = total("fast", "landed", "acked_seconds")
    out["fast_gold_events_per_s"] = total("fast", "loaded", "gold_seconds")
    out["fast_py_acked_events_per_s"] = total("fast_py", "landed", "acked_seconds")
    out["fast_py_gold_events_per_s"] = total("fast_py", "loaded", "gold_seconds")
    out["fast_py_gold_vs_one_txn"] = common.ratio(
        out["fast_py_gold_events_per_s"], out["one_txn_events_per_s"]
    )
    out["insert_loop_events_per_s"] = total("insert_loop", "events", "seconds")
    out["fast_acked_vs_one_txn"] = common.ratio(out["fast_acked_events_per_s"], out["one_txn_events_per_s"])
    out["fast_gold_vs_one_txn"] = common.ratio(out["fast_gold_events_per_s"], out["one_txn_events_per_s"])
    out["fast_acked_vs_insert_loop"] = common.ratio(
        out["fast_acked_events_per_s"], out["insert_loop_events_per_s"]
    )
    out["one_txn_vs_insert_loop"] = common.ratio(out["one_txn_events_per_s"], out["insert_loop_events_per_s"])
    return out


def common_load() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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

    if mode == "ingestor":
        ing = stream.Ingestor("marker-feed")
    elif mode == "fast":  # landed raw, moved by this process's mover (the fast path)
        ing = stream.Lander("marker-fast")
    else:
        ing = None
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
        log(f"  {markers} markers through a long-lived stream.Lander (fast path, its mover moving)")
        out["via_fast_lander"] = run_freshness(watcher, markers, run, "fast")
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
    ap.add_argument("--events", type=int, default=200_000, help="events for the throughput run (>= 100 k)")
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
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds of the three designs")
    ap.add_argument("--skip-extras", action="store_true", help="no one-txn loop, bronze copy, profile, sweep")
    args = ap.parse_args()
    if args.quick:
        args.base_lines, args.base_days, args.events, args.insert_sample, args.markers = (
            100_000,
            60,
            20_000,
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
                "events": args.events,
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

            log(f"loading the {args.base_lines:,}-line base business into {home}")
            gold.init()
            demo.load_demo(lines=args.base_lines, days=args.base_days, seed=42)
            doc["postgres"] = common.server_version()
            biz = demo.business_for_live()
            rng = np.random.default_rng(7)
            log(f"generating {args.events:,} + {args.insert_sample:,} events")
            events = make_events(biz, args.events, "BI", rng)
            sample = make_events(biz, args.insert_sample, "BS", rng)
            n_lines = [len(e["lines"]) for e in events]
            doc["params"]["lines_per_event"] = {
                "mean": round(float(np.mean(n_lines)), 2),
                "share": {str(k): round(n_lines.count(k) / len(n_lines), 3) for k in range(1, MAX_LINES + 1)},
            }

            log("(a) throughput: one-transaction design, fast path and INSERT loop, interleaved")
            a: dict = {"interleaved": interleaved(biz, rng, args.events, args.insert_sample, args.rounds)}
            il = a["interleaved"]
            a["copy_path"] = {
                "events_per_s": il["one_txn_events_per_s"],
                "batch_size": il["rounds"][0]["one_txn"]["batch_size"],
            }
            a["insert_loop"] = {"events_per_s": il["insert_loop_events_per_s"]}
            log(
                f"  one-transaction {il['one_txn_events_per_s']:,}/s; fast path acknowledged "
                f"{il['fast_acked_events_per_s']:,}/s, in gold {il['fast_gold_events_per_s']:,}/s; "
                f"INSERT loop {il['insert_loop_events_per_s']:,}/s"
            )
            log("    fast path, each half alone: land a burst with no mover, then drain it")
            chunk = max(1, len(events) // args.rounds)
            a["fast_land_then_move"] = run_land_then_move(events[:chunk], "bench-ltm")
            a["fast_land_then_move_py"] = run_land_then_move(
                events[chunk : 2 * chunk], "bench-ltm-py", validate="python"
            )
            for key in ("fast_land_then_move", "fast_land_then_move_py"):
                log(
                    f"  {key}: land alone {a[key]['land_events_per_s']:,}/s, "
                    f"move alone {a[key]['move_events_per_s']:,}/s"
                )
            if args.skip_extras:
                args.sweep = []
            if not args.skip_extras:
                log("    INSERT loop, one transaction for the sample")
                a["insert_loop_one_txn"] = run_insert_loop(sample, "bench-insert", per_event_txn=False)
                log(f"  INSERT loop (one txn): {a['insert_loop_one_txn']['events_per_s']:,} events/s")
                a["bronze_copy"] = run_bronze_copy(events, "bench-bronze", a["copy_path"]["batch_size"])
                log(f"  bronze-only COPY: {a['bronze_copy']['events_per_s']:,} events/s")
                log("    profile of one micro-batch")
                a["profile_one_batch"] = profile_batch(
                    make_events(biz, a["copy_path"]["batch_size"], "BP", rng), "bench-profile"
                )
            a["insert_loop"]["method"] = (
                "per event: BEGIN, INSERT bronze row (JSON payload), INSERT order row, INSERT each line row, "
                "COMMIT; scratch copies of the real tables with their keys; no gold, no dedup, no NOTIFY"
            )
            if args.sweep:
                a["batch_size_sweep"] = []
                for size in args.sweep:
                    evs = make_events(biz, args.sweep_events, f"BW{size}x", rng)
                    r = run_ingest(evs, "bench-sweep", batch_size=size)
                    log(f"  batch size {size:,}: {r['events_per_s']:,} events/s")
                    a["batch_size_sweep"].append(r)
            a["copy_vs_insert_loop"] = common.ratio(
                a["copy_path"]["events_per_s"], a["insert_loop"]["events_per_s"]
            )
            a["copy_vs_insert_loop_one_txn"] = common.ratio(
                a["copy_path"]["events_per_s"], a.get("insert_loop_one_txn", {}).get("events_per_s")
            )
            doc["throughput"] = a

            log(f"(b) freshness with the simulator at {args.rate:g} orders/s")
            doc["freshness"] = freshness(args.markers, args.rate)
            f = doc["freshness"]
            doc["bars"] = {
                "ingest_events_per_s >= 50k": {
                    "measured": a["copy_path"]["events_per_s"],
                    "met": a["copy_path"]["events_per_s"] >= BAR_EVENTS_PER_S,
                    "fast_path_acknowledged": il["fast_acked_events_per_s"],
                    "fast_path_acknowledged_met": il["fast_acked_events_per_s"] >= BAR_EVENTS_PER_S,
                    "fast_path_in_gold": il["fast_gold_events_per_s"],
                },
                "ingest >= 20x insert loop": {
                    "measured": a["copy_vs_insert_loop"],
                    "met": (a["copy_vs_insert_loop"] or 0) >= BAR_RATIO,
                    "vs_one_txn_loop": a["copy_vs_insert_loop_one_txn"],
                },
                "freshness_p95_ms <= 1000": {
                    "measured_via_ingest": f["via_ingest"]["visible"].get("p95_ms"),
                    "measured_via_ingestor": f["via_ingestor"]["visible"].get("p95_ms"),
                    "measured_via_fast_lander": f["via_fast_lander"]["visible"].get("p95_ms"),
                    "met": (f["via_ingest"]["visible"].get("p95_ms") or 1e9) <= BAR_FRESHNESS_P95_MS
                    and f["via_ingest"]["missed"] == 0,
                },
            }
        finally:
            from kpi_lib import stream

            stream.move._mover.stop()  # before the server stops: no reconnect attempts
            common.stop_server()
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
