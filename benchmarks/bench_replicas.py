"""What reading from a streaming replica costs: KPI queries (cache off) on the primary against the
same queries routed to a real replica (read-your-version check included), quiet and under a live
stream, interleaved in one run.

    .venv/bin/python benchmarks/bench_replicas.py [--lines 200000] [--repeats 15] [--quick]

Builds a private primary on a free port (the embedded server's binaries; tests/pgnode.py), loads a
demo business, makes a replica with ``pg_basebackup -R`` and removes both at the end. Prints JSON:
p50/p95 per path, and under the stream the share of reads the replica served (the rest waited past
KPI_REPLICA_WAIT_MS and went to the primary), with the primary's synchronous_commit on (PostgreSQL's
default) and off (the embedded server's setting). One machine: this measures the routing's cost, not
the capacity a second host adds.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # pgnode: private servers

from common import finish, json_stdout, log, machine, pct  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="50 k lines, 8 repeats")
    args = ap.parse_args()
    if args.quick:
        args.lines, args.repeats = 50_000, 8
    with json_stdout() as emit:
        emit(finish(run(args)))


def run(args) -> dict:
    import psycopg
    from pgnode import PgNode

    from kpi_lib import cache, config, kpis, replicas, stream, warehouse
    from kpi_lib.demo import load_demo

    home = Path(tempfile.mkdtemp(prefix="kpi_bench_replicas_"))
    primary = PgNode(free_port()).init().start()
    replica = PgNode(free_port())
    os.environ.update(DATABASE_URL=primary.url("kpi"), KPI_HOME=str(home))
    os.environ.pop("REDIS_URL", None)
    replica_url = f"postgresql://postgres@127.0.0.1:{replica.port}/kpi"
    doc: dict = {"benchmark": "bench_replicas", "machine": machine(), "lines": args.lines}
    stop = threading.Event()
    try:
        with psycopg.connect(primary.url(), autocommit=True) as admin:
            admin.execute("create database kpi")
        config.reset()
        warehouse.init()
        log(f"loading {args.lines:,} demo lines on the primary")
        load_demo(lines=args.lines, days=120, seed=7)
        replica.replica_of(primary).start()
        latest = kpis.latest_data()
        end = kpis.next_period(latest, "day")
        start = end - timedelta(days=30)
        questions = [
            ("revenue", "total", ()),
            ("orders", "total", ()),
            ("customers", "total", ()),
            ("revenue", "day", ()),
            ("revenue", "total", ("region",)),
        ]

        def use(path: str) -> None:
            if path == "replica":
                os.environ["DATABASE_REPLICA_URL"] = replica_url
            else:
                os.environ.pop("DATABASE_REPLICA_URL", None)
            config.reset()

        def ask(path: str) -> float:
            use(path)
            t = 0.0
            for kpi, grain, by in questions:
                t0 = time.perf_counter()
                kpis.query(kpi, grain, start=start, end=end, by=by, use_cache=False)
                t += time.perf_counter() - t0
            return t

        def measure(label: str) -> dict:
            times: dict[str, list[float]] = {"primary": [], "replica": []}
            replicas.stats.clear()
            for _ in range(args.repeats):
                for path in times:  # interleaved: the machine's noise hits both alike
                    times[path].append(ask(path))
            out = {p: pct(v, 2) for p, v in times.items()}
            served = dict(replicas.stats)
            total = sum(served.get(k, 0) for k in ("replica", "lagging", "down")) or 1
            out["replica_share"] = round(served.get("replica", 0) / total, 3)
            out["reads"] = served
            log(f"{label}: {out}")
            return out

        for path in ("primary", "replica"):  # warm both servers' caches first
            ask(path)
            ask(path)
        doc["quiet"] = measure("quiet")

        at = datetime.now(UTC) - timedelta(minutes=5)
        batches = [0]

        def produce() -> None:  # a live stream: ten one-order batches a second
            while not stop.is_set():
                oid = f"B{uuid.uuid4().hex[:10]}"
                ev = {
                    "event_id": oid,
                    "order_id": oid,
                    "ordered_at": at.isoformat(),
                    "customer_id": "CB1",
                    "region": "Europe",
                    "channel": "Web",
                    "lines": [{"product_id": "P1", "quantity": 1, "unit_price": 5.0}],
                }
                stream.ingest([ev], source="bench-replicas")
                batches[0] += 1
                stop.wait(0.1)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        # PostgreSQL's default flushes WAL at each commit, so it streams at once; with
        # synchronous_commit=off (the embedded single-box setting) WAL leaves in wal_writer_delay steps
        for mode in ("on", "off"):
            with psycopg.connect(primary.url("kpi"), autocommit=True) as admin:
                admin.execute(f"alter system set synchronous_commit = {mode}")
                admin.execute("select pg_reload_conf()")
            warehouse.dispose()  # new sessions read the new setting
            time.sleep(0.5)
            batches[0], t0 = 0, time.monotonic()
            key = f"live_stream_synchronous_commit_{mode}"
            doc[key] = measure(key)
            doc[key]["batches_per_s"] = round(batches[0] / (time.monotonic() - t0), 1)
        doc["questions"] = [f"{k}:{g}:{','.join(b) or '-'}" for k, g, b in questions]
        doc["note"] = (
            "ms per round of the questions above, cache off; replica = kpi_lib.replicas routing "
            "(WAL position check, fallback to the primary when behind)"
        )
        return doc
    finally:
        stop.set()
        replicas.dispose()
        warehouse.dispose()
        cache.clear()
        replica.remove()
        primary.remove()


if __name__ == "__main__":
    main()
