"""Helpers shared by the benchmark scripts (bench_load, bench_query, bench_ingest).

Every benchmark:

* runs against a throw-away warehouse: ``KPI_HOME`` points under ``benchmarks/results/`` (git-ignored)
  or wherever ``--home`` says, never at the project's ``var/``; ``DATABASE_URL`` and ``REDIS_URL`` are
  ignored so the figures are for the embedded PostgreSQL and the in-process cache (L1);
* prints exactly ONE JSON document on stdout; progress goes to stderr. While a benchmark runs, file
  descriptor 1 is pointed at stderr so nothing else (libraries, subprocesses) can pollute stdout;
* measures its naive baseline in the same run, because the machines here are small and shared;
* asserts nothing about timings: it reports figures and whether each quality bar was met.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

_t_start = time.monotonic()


def log(msg: str) -> None:
    """Progress on stderr, with the seconds since the script started."""
    print(f"[{time.monotonic() - _t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)


def use_home(home: Path, fresh: bool = False) -> Path:
    """Point kpi_lib at ``home`` (a throw-away KPI_HOME). Call before touching the warehouse.

    ``fresh=True`` stops any server left running there and deletes the folder first.
    """
    home = Path(home).expanduser().resolve()
    if home == (ROOT / "var").resolve():
        raise SystemExit("refusing to benchmark in ./var: pass a throw-away --home")
    os.environ["KPI_HOME"] = str(home)
    for var in ("DATABASE_URL", "REDIS_URL", "KPI_CATALOG", "KPI_TIMEZONE"):
        os.environ.pop(var, None)
    from kpi_lib import config

    config.reset()
    if fresh and home.exists():
        stop_server()
        import shutil

        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    # the embedded server runs as its own system user: it must reach its folder
    home.chmod(0o755)
    if home.is_relative_to(RESULTS):  # ... and the folders between it and benchmarks/results
        for d in home.parents:
            d.chmod(0o755)
            if d == RESULTS:
                break
    return home


def stop_server() -> None:
    """Stop the embedded PostgreSQL of the current KPI_HOME (if it runs)."""
    from kpi_lib import cache, warehouse

    # kpi_lib.cache flushes its counters at exit (atexit) over a connection that would start the
    # embedded server again: flush them now, while it runs, so nothing is left to flush.
    cache.flush_stats()
    cache._dirty = False
    try:
        conn = getattr(cache._local, "conn", None)
        if conn is not None:
            conn.close()
            cache._local.conn = None
    except Exception:
        pass
    warehouse.dispose()
    if warehouse.stop():
        log(f"stopped the embedded PostgreSQL in {os.environ.get('KPI_HOME')}")


def pct(samples_s: list[float], digits: int = 3) -> dict:
    """p50/p95/mean/min/max in milliseconds of a list of durations in seconds."""
    if not samples_s:
        return {"n": 0}
    xs = sorted(samples_s)

    def q(p: float) -> float:  # linear interpolation (numpy's default)
        k = (len(xs) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    r = lambda v: round(v * 1000, digits)  # noqa: E731
    return {
        "n": len(xs),
        "p50_ms": r(q(0.50)),
        "p95_ms": r(q(0.95)),
        "mean_ms": r(sum(xs) / len(xs)),
        "min_ms": r(xs[0]),
        "max_ms": r(xs[-1]),
    }


def ratio(a: float | None, b: float | None, digits: int = 1) -> float | None:
    if not a or not b or any(map(math.isnan, (a, b))):
        return None
    return round(a / b, digits)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "kpi_lib"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() + ("+dirty(kpi_lib)" if dirty.stdout.strip() else "")
    except Exception:
        return None


def machine() -> dict:
    """Where and when the figures were measured (the run's context, for the README table)."""
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "mem_gb": mem_gb,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "commit": git_commit(),
    }


def server_version() -> str | None:
    from kpi_lib import warehouse

    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            return conn.execute("show server_version").fetchone()[0]
    except Exception:
        return None


@contextmanager
def json_stdout():
    """Route fd 1 to stderr while the benchmark runs; yields ``emit(doc)`` that prints the one JSON
    document on the real stdout (and keeps a copy under benchmarks/results/)."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    docs: list[dict] = []
    try:
        yield docs.append
    finally:
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)
        for doc in docs:
            text = json.dumps(doc, indent=2, default=str)
            print(text, flush=True)
            try:
                RESULTS.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                (RESULTS / f"{doc.get('benchmark', 'bench')}-{stamp}.json").write_text(text + "\n")
            except OSError:
                pass


def finish(doc: dict) -> dict:
    """Stamp the end-of-run context onto a result document."""
    doc.setdefault("machine", {})["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["wall_seconds"] = round(time.monotonic() - _t_start, 1)
    return doc


def demo_loaded(lines: int, days: int, seed: int) -> bool:
    """Does the current KPI_HOME hold exactly this demo business, fully loaded?"""
    from kpi_lib import warehouse

    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            row = conn.execute("select value from ops.settings where key = 'demo'").fetchone()
            if not row or json.loads(row[0]) != {"lines": lines, "days": days, "seed": seed}:
                return False
            views = conn.execute("select count(*) from ops.mv_state").fetchone()[0]
            other = conn.execute(
                "select exists (select 1 from silver.orders where source <> 'demo')"
            ).fetchone()[0]
            return views >= 4 and not other
    except Exception:
        return False
