"""Soak: a real `kpi serve` held under live load for N minutes (issue 17, item 5). Not in `make test`.

    .venv/bin/python benchmarks/bench_soak.py                  # 30 minutes, 200k order lines
    .venv/bin/python benchmarks/bench_soak.py --minutes 6      # a short soak

Prints ONE JSON document on stdout (progress on stderr; a copy goes to benchmarks/results/).

Load: 10 live executive sessions held by bench_dashboards' light websocket client (DESIGN.md: not
10 Chromium tabs on 2 cores), one real Chromium page on the executive dashboard for the freshness
probe, and the demo simulator (`kpi simulate --rate 50`) streaming orders the whole time. Every
``--churn-every`` s (30) one light session closes and a new one opens in its place, as people come
and go: a session's memory must leave with it.

Measured:

* memory: RSS of every process (front door, each Panel worker, Voila and each of its kernels, the
  API, the simulator) every ``--sample-every`` s; per process the start/end values and a
  least-squares slope in MB/hour, over the whole soak and over its last half;
* freshness: a marker order ingested every ``--probe-every`` s -> the open page's revenue tile
  holds it; p95 (and the count of probes) per ``--window-minutes`` window;
* errors: HTTP 5xx (in the logs of every part, and on the soak's own /healthz polls), websocket
  disconnects of the live sessions (each is reopened so 10 stay live) and of the Chromium page,
  lines with 'Traceback' / 'ERROR' in the logs, during the soak and during start-up;
* a verdict: a process grows when it is still growing at the end: its slope over the soak's last
  half is above ``--slope-limit`` MB/hour. (A bounded cache filling to its budget early on is not
  growth; a leak keeps its slope to the end. The whole-soak slope is reported beside it.) Freshness
  holds when every window's p95 is <= 1 s and no marker was missed.

The warehouse is a small demo (``--lines``, default 200k) in its own KPI_HOME
(``benchmarks/results/warehouse-soak-N``), so no 10 M warehouse is needed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from bench_dashboards import (  # noqa: E402
    DAYS,
    EXEC_PATH,
    Bench,
    PanelLightSession,
    _tree,
    ensure_warehouse,
    freshness_probe,
)
from common import log, pct  # noqa: E402

HTTP_5XX = re.compile(r"\b5\d\d (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) ")


# --- memory -------------------------------------------------------------------------------------


def role(proc, front_door_pid: int) -> str | None:
    """What a process of the served tree is, from its command line (None: not ours to watch)."""
    if proc.pid == front_door_pid:
        return "front_door"
    cmd = " ".join(proc.cmdline())
    if "ipykernel" in cmd:
        return "voila_kernel"
    if "panel serve" in cmd or "/panel " in cmd:
        return "panel"
    if "voila" in cmd:
        return "voila"
    if "kpi_lib.api" in cmd or "uvicorn" in cmd:
        return "api"
    return Path(proc.cmdline()[0]).name if proc.cmdline() else None


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB/hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if not sxx:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return round(sxy / sxx * 3600, 1)


class MemorySeries:
    """RSS of each process of `kpi serve` and of the simulator, sampled every ``every`` s in a thread.

    Processes are keyed by role and pid (``panel:1234``), so a kernel Voila replaces shows as a new
    series; ``voila_tree`` (Voila and its kernels) and ``total`` sum them per sample.
    """

    def __init__(self, serve_pid: int, sim_pid: int | None, every: float) -> None:
        import psutil

        self.root, self.every = psutil.Process(serve_pid), every
        self.sim = psutil.Process(sim_pid) if sim_pid else None
        self.t0 = time.monotonic()
        self.series: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemorySeries:
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        import psutil

        t = round(time.monotonic() - self.t0, 1)
        sums: dict[str, float] = {}
        procs = [(p, role(p, self.root.pid)) for p in _tree(self.root)]
        procs += [(p, "simulator") for p in _tree(self.sim)] if self.sim is not None else []
        for p, what in procs:
            if what is None:
                continue
            try:
                mb = round(p.memory_info().rss / 2**20, 1)
            except psutil.Error:
                continue
            self.series.setdefault(f"{what}:{p.pid}", []).append((t, mb))
            if what in ("voila", "voila_kernel"):
                sums["voila_tree"] = sums.get("voila_tree", 0.0) + mb
            sums["total"] = sums.get("total", 0.0) + mb
        for k, v in sums.items():
            self.series.setdefault(k, []).append((t, round(v, 1)))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()

    def report(self, limit: float) -> dict:
        out = {}
        for name, pts in sorted(self.series.items()):
            half = [p for p in pts if p[0] >= pts[-1][0] / 2]
            slope, last_half = slope_mb_per_hour(pts), slope_mb_per_hour(half)
            out[name] = {
                "samples": len(pts),
                "first_s": pts[0][0],
                "last_s": pts[-1][0],
                "start_mb": pts[0][1],
                "end_mb": pts[-1][1],
                "peak_mb": max(v for _, v in pts),
                "slope_mb_per_hour": slope,
                "slope_last_half_mb_per_hour": last_half,
                "grows": bool(last_half is not None and last_half > limit),
                "rss_mb": [[t, v] for t, v in pts],
            }
        return out


# --- logs -----------------------------------------------------------------------------------------


def log_files(home: Path) -> list[Path]:
    return sorted({*home.glob("*.log"), *(home / "logs").glob("*.log")})


def log_sizes(home: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in log_files(home)}


def scan_logs(home: Path, start: dict[Path, int], since: dict[Path, int]) -> dict:
    """5xx responses, 'Traceback' and 'ERROR' lines per log file, during the soak (after the sizes in
    ``since``) and before it (start-up and warm-up: after the sizes in ``start``)."""
    out: dict = {"during_soak": {}, "before_soak": {}}
    for p in log_files(home):
        data = p.read_bytes()
        first, cut = start.get(p, 0), since.get(p, 0)
        for part, text in (("before_soak", data[first:cut]), ("during_soak", data[cut:])):
            lines = text.decode(errors="replace").splitlines()
            counts = {
                "http_5xx": sum(1 for ln in lines if HTTP_5XX.search(ln)),
                "traceback": sum(1 for ln in lines if "Traceback" in ln),
                "error_lines": sum(1 for ln in lines if "ERROR" in ln),
            }
            if any(counts.values()):
                counts["examples"] = [ln[:300] for ln in lines if "ERROR" in ln or "Traceback" in ln][:3]
                out[part][p.name] = counts
    for part in ("during_soak", "before_soak"):
        files = out[part].values()
        out[part + "_total"] = {k: sum(f[k] for f in files) for k in ("http_5xx", "traceback", "error_lines")}
    return out


# --- the soak ---------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args, home: Path, doc: dict) -> None:
        self.args, self.home = args, home
        self.bench = Bench(args, home)  # serve, sign-in, browser, light sessions, simulator, markers
        self.bench.doc = doc
        self.page_ws_closed = 0
        self.disconnects: list[dict] = []
        self.churned = 0  # light sessions closed and replaced by a new one (--churn-every)
        self.healthz = {"polls": 0, "http_5xx": 0, "failed": 0}

    def watch_page_websockets(self, page) -> None:
        def on_ws(ws) -> None:
            ws.on("close", lambda _ws: setattr(self, "page_ws_closed", self.page_ws_closed + 1))

        page.on("websocket", on_ws)

    def poll_healthz(self) -> None:
        self.healthz["polls"] += 1
        try:
            urllib.request.urlopen(self.bench.serve.base + "/healthz", timeout=10)
        except urllib.error.HTTPError as exc:
            self.healthz["http_5xx" if exc.code >= 500 else "failed"] += 1
        except OSError:
            self.healthz["failed"] += 1

    def sign_in(self) -> str:
        """A sign-in session of its own, as the Cookie header of a client."""
        return self.bench.cookie_of(self.bench.sign_in())

    def open_light(self, n: int) -> dict:
        """``n`` live executive sessions, each of its own sign-in, so the front door spreads them
        over the Panel workers as it would spread ``n`` people (bench_dashboards shares one)."""
        b, times = self.bench, []
        for _ in range(n):
            s = PanelLightSession(b.serve.base, self.sign_in())
            times.append(b.loop.run(s.open(), timeout=300))
            b.light.append(s)
        workers = [s.worker for s in b.light]
        return {
            "n": n,
            "own_sign_in_each": True,
            "open_and_sync": pct(times, 1),
            "sessions_per_panel_worker": {w: workers.count(w) for w in sorted(set(map(str, workers)))},
        }

    def keep_sessions(self, t: float) -> None:
        """Reopen every light session whose websocket went away (and count it as a disconnect)."""
        b = self.bench
        for i, s in enumerate(b.light):
            if s.error is None:
                continue
            self.disconnects.append({"t_s": round(t, 1), "session": i, "error": s.error[:200]})
            log(f"  light session {i} disconnected: {s.error[:120]}; reopening")
            fresh = PanelLightSession(b.serve.base, s.cookie)  # the same sign-in, so the same worker
            try:
                b.loop.run(fresh.open(), timeout=120)
            except Exception as exc:  # noqa: BLE001 - counted; tried again at the next check
                s.error = f"reopen failed: {exc!r}"
                self.disconnects[-1]["reopen_failed"] = True
                continue
            b.light[i] = fresh

    def churn(self) -> None:
        """One person leaves and another arrives: close the longest-open light session and open a
        new one on the same sign-in (so on the same worker). A session's memory must go with it."""
        b = self.bench
        i = self.churned % len(b.light)
        old = b.light[i]
        b.loop.run(old.close(), timeout=30)
        fresh = PanelLightSession(b.serve.base, old.cookie)
        try:
            b.loop.run(fresh.open(), timeout=120)
        except Exception as exc:  # noqa: BLE001 - counted as a disconnect and reopened at the next check
            fresh.error = f"churn reopen failed: {exc!r}"
        b.light[i] = fresh
        self.churned += 1

    def run(self) -> dict:
        a, b = self.args, self.bench
        from kpi_lib import kpis, warehouse

        with warehouse.connect_raw(autocommit=True) as conn:
            b.doc["warehouse"]["order_lines"] = conn.execute(
                "select count(*) from silver.order_lines"
            ).fetchone()[0]
            b.product = conn.execute("select product_id from silver.products order by 1 limit 1").fetchone()[
                0
            ]
        b.region = kpis.dimension_values("region")[0]
        at_start = log_sizes(self.home)  # the logs append: earlier runs in this KPI_HOME are not counted
        b.setup()
        b.sampler.stop()  # bench_dashboards' per-phase peak sampler: the soak keeps its own series
        b.start_sim()
        log(f"opening {a.sessions} light sessions, each signed in on its own (the workers are per sign-in)")
        opened = self.open_light(a.sessions)
        b.ctx.on("page", self.watch_page_websockets)  # before the page navigates: its first websocket too
        page = b.navigate_exec(b.ctx, keep_open=True)["page"]
        opened["chromium_page_worker"] = b.ctx.request.get(b.serve.base + EXEC_PATH).headers.get(
            "x-kpi-worker"
        )
        log(f"warming up {a.warmup_minutes:g} min under load before measuring")
        time.sleep(a.warmup_minutes * 60)

        since = log_sizes(self.home)
        mem = MemorySeries(b.serve.proc.pid, b.sim.proc.pid, a.sample_every).start()
        patches0 = [s.patches for s in b.light]
        t0, t0_wall = time.monotonic(), time.time()
        end = t0 + a.minutes * 60
        probes: list[dict] = []
        next_probe = next_check = t0
        next_churn = t0 + a.churn_every if a.churn_every > 0 else math.inf
        log(f"soaking for {a.minutes:g} min")
        while (now := time.monotonic()) < end:
            if now >= next_churn:
                next_churn = now + a.churn_every
                self.churn()
            if now >= next_check:
                next_check = now + a.sample_every
                self.poll_healthz()
                self.keep_sessions(now - t0)
            if now >= next_probe:
                next_probe = now + a.probe_every
                order = b.marker(a.marker)
                r = freshness_probe(page, order, "bench-soak", timeout_ms=int(a.probe_timeout * 1000))
                r["t_s"] = round(r.pop("t_hand") - t0_wall, 1)
                probes.append(r)
                seen = "not visible" if r["visible_s"] is None else f"{r['visible_s'] * 1000:.0f} ms"
                log(
                    f"  t={r['t_s']:6.0f}s freshness {seen}; total RSS "
                    f"{mem.series.get('total', [(0, 0)])[-1][1]:.0f} MB; sessions live "
                    f"{sum(s.error is None for s in b.light)}/{len(b.light)}"
                )
            time.sleep(max(0.0, min(next_probe, next_check, next_churn, end) - time.monotonic()))
        soaked = time.monotonic() - t0
        mem.stop()
        self.poll_healthz()
        self.keep_sessions(soaked)
        light = b.light_status()
        light["patch_docs_during_soak"] = [s.patches - p for s, p in zip(b.light, patches0, strict=False)]
        sim = b.stop_sim()
        page.close()
        return {
            "soaked_s": round(soaked),
            "memory": mem.report(a.slope_limit),
            "freshness": self.freshness_windows(probes),
            "errors": {
                "logs": scan_logs(self.home, at_start, since),
                "healthz_polls": self.healthz,
                "light_session_disconnects": len(self.disconnects),
                "light_session_disconnect_log": self.disconnects[:20],
                "chromium_page_websocket_closes": self.page_ws_closed,
            },
            "light_sessions": {"opened": opened, "at_end": light, "replaced_during_soak": self.churned},
            "simulator": sim,
        }

    def freshness_windows(self, probes: list[dict]) -> dict:
        width = self.args.window_minutes * 60
        windows = []
        for w in range(max(1, int(-(-self.args.minutes * 60 // width)))):
            inside = [p for p in probes if w * width <= p["t_s"] < (w + 1) * width]
            seen = [p["visible_s"] for p in inside if p["visible_s"] is not None]
            windows.append(
                {
                    "window": f"{w * width / 60:g}-{min((w + 1) * width, self.args.minutes * 60) / 60:g} min",
                    "probes": len(inside),
                    "not_visible": len(inside) - len(seen),
                    "ingest_to_visible_in_page": pct(seen, 1),
                    "of_which_ingest_committed": pct([p["committed_s"] for p in inside], 1),
                }
            )
        return {
            "probe_every_s": self.args.probe_every,
            "marker_revenue": self.args.marker,
            "windows": windows,
            "all": pct([p["visible_s"] for p in probes if p["visible_s"] is not None], 1),
            "probes": [[p["t_s"], p["visible_s"] and round(p["visible_s"] * 1000)] for p in probes],
        }

    def close(self) -> None:
        self.bench.close()


def verdict(res: dict, args) -> dict:
    mem = res["memory"]
    growing = {
        k: v["slope_mb_per_hour"]
        for k, v in mem.items()
        if v["grows"] and k != "total"  # the sum follows its parts
    }
    windows = res["freshness"]["windows"]
    p95s = [w["ingest_to_visible_in_page"].get("p95_ms") for w in windows]
    fresh = all(p is not None and p <= 1000 for p in p95s) and not any(w["not_visible"] for w in windows)
    errs = res["errors"]
    logs = errs["logs"]["during_soak_total"]
    return {
        "no_growth_beyond_noise": not growing,
        "growing_processes_mb_per_hour": growing,
        "growth_rule": f"slope over the soak's last half > {args.slope_limit:g} MB/hour",
        "freshness_held": fresh,
        "freshness_p95_ms_per_window": p95s,
        "freshness_rule": "p95 <= 1000 ms in every window, no marker missed",
        "errors_during_soak": {
            "http_5xx": logs["http_5xx"] + errs["healthz_polls"]["http_5xx"],
            "light_session_disconnects": errs["light_session_disconnects"],
            "chromium_page_websocket_closes": errs["chromium_page_websocket_closes"],
            "traceback_lines": logs["traceback"],
            "error_lines": logs["error_lines"],
        },
        "short_run": args.minutes < 30,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the soak (default 30)")
    ap.add_argument("--warmup-minutes", type=float, default=1.0, help="under load before measuring")
    ap.add_argument("--lines", type=int, default=200_000, help="order lines of the demo (default 200k)")
    ap.add_argument("--home", type=Path, help="KPI_HOME (default benchmarks/results/warehouse-soak-N)")
    ap.add_argument("--reuse", action="store_true", help="keep the warehouse of an earlier soak")
    ap.add_argument("--sessions", type=int, default=10, help="live sessions held by the light client")
    ap.add_argument("--sim-rate", type=float, default=50.0, help="simulator orders/s")
    ap.add_argument("--panel-procs", type=int, default=2, help="Panel workers behind the front door")
    ap.add_argument("--voila-pool", type=int, default=2)
    ap.add_argument(
        "--churn-every",
        type=float,
        default=30.0,
        help="s between one session closing and a new one opening (0: off)",
    )
    ap.add_argument("--sample-every", type=float, default=10.0, help="s between memory samples")
    ap.add_argument("--probe-every", type=float, default=20.0, help="s between freshness markers")
    ap.add_argument("--probe-timeout", type=float, default=30.0, help="s a marker may take to show")
    ap.add_argument("--window-minutes", type=float, default=5.0, help="freshness window")
    ap.add_argument("--marker", type=float, default=1_000_000.0, help="revenue of each marker order")
    ap.add_argument(
        "--cache-max-mb",
        type=int,
        help="KPI_CACHE_MAX_MB for kpi serve (the L1 budget of each process; default: the setting's)",
    )
    ap.add_argument("--slope-limit", type=float, default=20.0, help="MB/hour counted as growth")
    args = ap.parse_args()
    home = (args.home or common.RESULTS / f"warehouse-soak-{args.lines}").resolve()
    if args.cache_max_mb is not None:  # kpi serve and its workers inherit it
        os.environ["KPI_CACHE_MAX_MB"] = str(args.cache_max_mb)

    with common.json_stdout() as emit:
        doc = {
            "benchmark": "soak",
            "machine": common.machine(),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
        soak = None
        try:
            # no source to clone for a small demo: ensure_warehouse loads it (or reuses it)
            doc["warehouse"] = ensure_warehouse(args.lines, home, home / "no-source", args.reuse)
            doc["warehouse"].update(postgres=common.server_version(), days=DAYS)
            soak = Soak(args, home, doc)
            res = soak.run()
            doc["results"] = res
            doc["verdict"] = verdict(res, args)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            doc["error"] = repr(exc)
        finally:
            if soak is not None:
                soak.close()
            common.stop_server()
            emit(common.finish(doc))


if __name__ == "__main__":
    main()
