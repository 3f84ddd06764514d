"""CPU per ``/api/query`` inside the API process: the ASGI app called in-process (no network, no
client), the executive page's questions in bursts of 50 as 50 clients would arrive.

    .venv/bin/python benchmarks/bench_api_cpu.py --home benchmarks/results/warehouse-200000

Prints ONE JSON document: CPU ms per request (every thread of this process: the audit writer
included) and how many answers were kept. Run it with another checkout's python for an A/B.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import common

SECRET = "bench-api-cpu"


async def _call(app, q: dict) -> dict:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/query",
        "raw_path": b"/api/query",
        "query_string": urlencode(list(q.items())).encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"x-kpi-user", b"bench-api"), (b"x-kpi-proxy", SECRET.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    out: dict = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"], out["headers"] = msg["status"], dict(msg["headers"])

    await app(scope, receive, send)
    return out


async def run(app, qs: list[dict], n: int) -> dict:
    for q in qs:  # warm
        r = await _call(app, q)
        assert r["status"] == 200, r
    t0, w0, kept = time.process_time(), time.perf_counter(), 0
    for i in range(n // 50):
        rs = await asyncio.gather(*(_call(app, qs[(i + j) % len(qs)]) for j in range(50)))
        kept += sum(1 for r in rs if r["headers"].get(b"x-kpi-answer") == b"kept")
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    return {
        "requests": n,
        "cpu_ms_per_request": round(cpu * 1000 / n, 3),
        "wall_s": round(wall, 2),
        "kept": kept,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=common.RESULTS / "warehouse-200000")
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_api

    with common.json_stdout() as emit:
        common.use_home(args.home.resolve())
        os.environ["KPI_PROXY_SECRET"] = SECRET
        from kpi_lib import auth, kpis
        from kpi_lib.api.app import create_app

        auth.set_user("bench-api", "bench-api-password", ["executive"])
        qs = bench_api.questions(kpis.latest_data())
        doc = {
            "benchmark": "bench_api_cpu",
            "machine": common.machine(),
            "code": str(Path(kpis.__file__).parents[2]),
        }
        doc["api_query"] = asyncio.run(run(create_app(), qs, args.requests))
        common.stop_server()
        emit(common.finish(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
