"""The HTTP API under load: ``/api/query`` for the executive dashboard's queries, 50 concurrent
clients on loopback through the front door (bearer token), against naive baselines in the same run;
and push freshness over ``/api/live`` with 100 WebSocket clients.

    .venv/bin/python benchmarks/bench_api.py --reuse                  # 1 M order lines (default)
    .venv/bin/python benchmarks/bench_api.py --lines 10000000 --reuse # the brief's 10 M

Prints ONE JSON document on stdout (progress on stderr; a copy goes to benchmarks/results/).
The warehouse is ``benchmarks/results/warehouse-N`` (bench_query.py's; ``--reuse`` keeps it). The
run adds a user, a token and audit rows to it, and for the push phase a few marker orders on the
last day of data (``--reuse`` here still reuses it; bench_query's ``--reuse`` wants demo rows only
and reloads).

Measured:
* api: 50 clients, each looping over the dashboard's questions through ``kpi serve``'s front door
  (warm: every question asked once before timing): p50/p99 ms, requests/s, and the front door
  process's CPU ms per request (steadier than latency on a busy machine);
* api_one_client: the same, one client (latency without queueing);
* api_direct_no_front_door: 50 clients straight to the API process (what the front door adds);
* baselines, in this process: ``kpis.query`` warm (the library's floor), ``kpis.query`` without
  the cache (what every request would cost uncached), serially and with 50 threads;
* push: 100 /api/live clients subscribed to ``orders``; ``stream.ingest`` of one order -> each client
  has the ``kpi_update`` carrying its version (freshness p50/p95).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import common
from common import log

BARS = {"p50_ms": 10.0, "p99_ms": 50.0, "push_p95_ms": 1000.0}
BRIEF_API_MS = 287  # the product brief's "API response time"


def questions(latest) -> list[dict]:
    """The executive page's questions: five tile totals, the trend, two breakdowns (last 30 days)."""
    from kpi_lib import kpis

    end = kpis.next_period(latest, "day")
    start = end - timedelta(days=30)
    span = {"start": start.isoformat(), "end": end.isoformat()}
    out = [
        {"kpi": k, "grain": "total", **span}
        for k in ("revenue", "orders", "aov", "customers", "gross_margin")
    ]
    out += [
        {"kpi": "revenue", "grain": "day", **span},
        {"kpi": "revenue", "grain": "total", "by": "region", **span},
        {"kpi": "orders", "grain": "total", "by": "category", **span},
    ]
    return out


def pct(xs: list[float]) -> dict:
    d = common.pct(xs)
    if xs:
        s = sorted(xs)
        d["p99_ms"] = round(s[min(len(s) - 1, int(0.99 * (len(s) - 1) + 0.5))] * 1000, 3)
    return d


SECRET = uuid.uuid4().hex  # the back ends' secret for this run, so the API can also be timed directly


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = common_free_port()
    logf = open(home / "bench-api-serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("kpi")),
            "serve",
            "--port",
            str(port),
            "--no-alerts",
            "--no-mail-sink",
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # the rate limit is not what is measured
        env={**os.environ, "KPI_API_RATE": "1000000/minute", "KPI_PROXY_SECRET": SECRET},
    )
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kpi serve exited; see {logf.name}")
        try:
            requests.get(base + "/healthz", timeout=2)
            return proc, base
        except requests.RequestException:
            time.sleep(0.5)
    raise SystemExit("kpi serve did not start within 240 s")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def common_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(base: str, headers: dict, qs: list[dict], clients: int, per_client: int) -> dict:
    """``clients`` loops, each asking the questions in turn. aiohttp, not httpx: httpx's client cost
    ~4x the CPU per request, and on 2 cores the client's CPU is taken from the server measured."""
    import aiohttp

    lat: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as c:

        async def worker(i: int) -> None:
            nonlocal errors
            for n in range(per_client):
                q = qs[(i + n) % len(qs)]
                t0 = time.perf_counter()
                async with c.get("/api/query", params=q, timeout=aiohttp.ClientTimeout(total=60)) as r:
                    body = await r.read()
                lat.append(time.perf_counter() - t0)
                if r.status != 200:
                    errors += 1
                    if errors == 1:
                        log(f"first error: {r.status} {body[:300]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    return {**pct(lat), "requests_per_s": round(len(lat) / wall, 1), "errors": errors, "clients": clients}


def library(qs: list[dict], use_cache: bool, repeats: int, threads: int = 1) -> dict:
    from kpi_lib import kpis

    def one(q: dict) -> float:
        t0 = time.perf_counter()
        by = [q["by"]] if "by" in q else []
        kpis.query(q["kpi"], q["grain"], start=q["start"], end=q["end"], by=by, use_cache=use_cache)
        return time.perf_counter() - t0

    work = [q for _ in range(repeats) for q in qs]
    t0 = time.perf_counter()
    if threads == 1:
        lat = [one(q) for q in work]
    else:
        with ThreadPoolExecutor(threads) as pool:
            lat = list(pool.map(one, work))
    wall = time.perf_counter() - t0
    return {**pct(lat), "requests_per_s": round(len(lat) / wall, 1), "threads": threads}


def _order(at) -> dict:
    oid = f"BAPI{uuid.uuid4().hex[:10]}"
    line = {"product_id": "P1001", "product_name": "Bench Widget", "category": "Electronics", "quantity": 1}
    line |= {"unit_price": 10.0, "discount": 0.0, "unit_cost": 5.0}
    return {
        "event_id": f"ev-{oid}",
        "order_id": oid,
        "ordered_at": at.isoformat(),
        "customer_id": "C900001",
        "region": "Europe",
        "channel": "Web",
        "lines": [line],
    }


async def push(base: str, token: str, latest, n_clients: int, rounds: int) -> dict:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    from kpi_lib import stream

    as_of = latest.replace(microsecond=0).isoformat()
    sockets = []
    for _ in range(n_clients):
        req = HTTPRequest(
            base.replace("http", "ws", 1) + "/api/live", headers={"Authorization": f"Bearer {token}"}
        )
        ws = await websocket_connect(req)
        ws.write_message(
            json.dumps({"type": "subscribe", "kpis": ["orders"], "grain": "day", "as_of": as_of})
        )
        sockets.append(ws)

    async def until(ws, pred) -> float:
        while True:
            msg = json.loads(await ws.read_message())
            if pred(msg):
                return time.perf_counter()

    await asyncio.gather(*(until(ws, lambda m: m["type"] == "kpi_update") for ws in sockets))
    samples: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = await asyncio.to_thread(stream.ingest, [_order(latest)], "bench-api")
        got = await asyncio.wait_for(
            asyncio.gather(
                *(
                    until(ws, lambda m, v=res.version: m["type"] == "kpi_update" and m["data_version"] >= v)
                    for ws in sockets
                )
            ),
            60,
        )
        samples += [t - t0 for t in got]
        await asyncio.sleep(0.3)
    for ws in sockets:
        ws.close()
    return {**pct(samples), "clients": n_clients, "rounds": rounds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=200, help="requests per client")
    ap.add_argument("--ws-clients", type=int, default=100)
    ap.add_argument("--ws-rounds", type=int, default=10)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_query

    home = (args.home or common.RESULTS / f"warehouse-{args.lines}").resolve()
    with common.json_stdout() as emit:
        doc: dict = {"benchmark": "bench_api", "machine": common.machine(), "lines": args.lines}
        if args.reuse and (home / "pgdata").exists():  # this run's marker orders do not stop a reuse
            common.use_home(home)
            from kpi_lib import warehouse

            doc["warehouse"] = {"reused": True, "migrations_applied": warehouse.init()}
        else:
            doc["warehouse"] = bench_query.ensure_warehouse(args.lines, home, args.reuse)
        from kpi_lib import auth, kpis
        from kpi_lib.auth import tokens

        auth.set_user("bench-api", "bench-api-password", ["executive"])
        tokens.revoke_all("bench-api")
        token = tokens.add("bench-api", "bench")
        latest = kpis.latest_data()
        qs = questions(latest)
        proc, base = start_server(home)
        try:
            import requests

            h = {"Authorization": f"Bearer {token}"}
            for q in qs:  # warm: every question once (the API process's cache)
                r = requests.get(base + "/api/query", params=q, headers=h, timeout=120)
                r.raise_for_status()
            time.sleep(20)  # Voila's pre-heated kernel has run its notebook: no start-up work left
            log(f"warm; {args.clients} clients x {args.per_client} requests")
            cpu0 = cpu_s(proc.pid)
            doc["api"] = asyncio.run(load(base, h, qs, args.clients, args.per_client))
            # the front door's own CPU per request: steadier than latency when the machine is busy
            doc["api"]["front_door_cpu_ms_per_request"] = round(
                (cpu_s(proc.pid) - cpu0) * 1000 / doc["api"]["n"], 3
            )
            log(f"api: {doc['api']}")
            doc["api_one_client"] = asyncio.run(load(base, h, qs, 1, 5 * len(qs)))
            # the API process alone (its port, with the back ends' secret): what the front door adds
            api_port = json.loads((home / "serve.json").read_text())["api_port"]
            direct = {"X-KPI-User": "bench-api", "X-KPI-Proxy": SECRET}
            doc["api_direct_no_front_door"] = asyncio.run(
                load(f"http://127.0.0.1:{api_port}", direct, qs, args.clients, args.per_client)
            )
            log(f"direct: {doc['api_direct_no_front_door']}")
            doc["baseline_library_warm"] = library(qs, True, 5)
            doc["baseline_library_uncached"] = library(qs, False, 3)
            doc["baseline_library_uncached_50_threads"] = library(qs, False, 5, threads=args.clients)
            log(f"baselines done; push with {args.ws_clients} clients")
            doc["push"] = asyncio.run(push(base, token, latest, args.ws_clients, args.ws_rounds))
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)
        a, u = doc["api"], doc["baseline_library_uncached_50_threads"]
        doc["bars"] = {
            "api_p50_ms": {
                "bar": BARS["p50_ms"],
                "measured": a["p50_ms"],
                "met": a["p50_ms"] <= BARS["p50_ms"],
            },
            "api_p99_ms": {
                "bar": BARS["p99_ms"],
                "measured": a["p99_ms"],
                "met": a["p99_ms"] <= BARS["p99_ms"],
            },
            "push_p95_ms": {
                "bar": BARS["push_p95_ms"],
                "measured": doc["push"]["p95_ms"],
                "met": doc["push"]["p95_ms"] <= BARS["push_p95_ms"],
            },
            "brief_api_ms": BRIEF_API_MS,
        }
        doc["api_vs_uncached_throughput"] = common.ratio(a["requests_per_s"], u["requests_per_s"])
        common.stop_server()
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
