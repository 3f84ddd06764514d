"""Dashboards in a real headless Chromium against a real `kpi serve` (issue 4's quality bars).

    .venv/bin/python benchmarks/bench_dashboards.py --reuse            # 10 M order lines (~40 min)
    .venv/bin/python benchmarks/bench_dashboards.py --quick --reuse    # 1 M lines, fewer repeats (~8 min)

Prints ONE JSON document on stdout (progress on stderr; a copy goes to benchmarks/results/).

Warehouse. The figures need the demo business at 10 M order lines, and this benchmark WRITES to
its warehouse (a live simulator, 40+ marker orders). ``bench_query.py --reuse`` only reuses a
warehouse that holds nothing but the demo, so this script never writes to
``benchmarks/results/warehouse-N``: it works on a clone, ``benchmarks/results/warehouse-dash-N``,
taken with ``pg_basebackup`` from ``warehouse-N`` (or loaded from scratch when there is none).
``--reuse`` keeps an existing clone (the simulated orders of earlier runs stay in it: a few
minutes of live data on top of two years); without it the clone is taken afresh.

What is measured (see benchmarks/README.md, "bench_dashboards.py", for the details):

* executive Panel dashboard: navigation (already signed in) -> every KPI tile shows its number
  (all ``[data-kpi-value]`` elements present with text), quiet / under the live simulator with
  1 session / with 10 other live sessions held by a light websocket client; repeat visit (same
  browser profile, HTTP cache warm) and first visit (new profile). The page's HTML carries the
  tiles, and its scripts do not hold them up; the probe can only run once those scripts have run,
  so it is an upper bound. ``tiles_painted_in_page`` is when the browser painted them (their
  element timing, ``elementtiming="kpi-tiles"``; the first contentful paint on pages without it);
* Voila ``revenue_explorer``: navigation -> first widget, pre-heated pool (through the front door
  and directly) vs a second Voila with pre-heating off, in the same run;
* freshness: ``stream.ingest`` of a big order -> the revenue tile's ``title`` holds the new value
  in the open page, under the simulator, with 1 and with 11 sessions;
* server memory: RSS of the Panel process tree with 1 vs 11 sessions, and of the Voila tree with
  its kernels with 1 vs 11 viewers; MB per extra session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import html as htmllib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import log, pct  # noqa: E402

from kpi_lib.web import chromium  # noqa: E402

DAYS, SEED = 730, 42
USER, PASSWORD = "bench-dash", "bench-dash-password-1"
BACKEND_SECRET = uuid.uuid4().hex  # what the front door adds; the "direct" runs present it themselves
EXEC_PATH = "/panel/executive"
VOILA_PATH = "/voila/voila/render/revenue_explorer.ipynb"
TIMEOUT_MS = 180_000
BOKEH_CLEANUP_S = 33  # Bokeh discards a closed page's session 15 s after, checked every 17 s

# --- in-page probes (Panel renders inside shadow DOM: search every shadow root) -----------------

DEEP = """
const deep = (selector) => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll(selector)) out.push(el);
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return out;
};
"""

TILES_READY = (
    "(n) => {"
    + DEEP
    + """
  const els = deep('[data-kpi-value]');
  if (els.length < n) return false;
  const titles = {};
  for (const el of els) {
    if (!el.textContent.trim()) return false;
    titles[el.dataset.kpiValue] = el.getAttribute('title');
  }
  return {t: performance.now(), titles};
}"""
)

TILE_TITLES = (
    "() => {"
    + DEEP
    + """
  const titles = {};
  for (const el of deep('[data-kpi-value]')) titles[el.dataset.kpiValue] = el.getAttribute('title');
  const status = deep('.bk-panel-models-markup-HTML').map(e => e.shadowRoot ? e.shadowRoot.textContent : '')
      .find(t => t.includes('Data version')) || null;
  return {titles, status};
}"""
)

CHARTS_READY = (
    "() => {"
    + DEEP
    + """
  const big = deep('canvas').filter(c => c.getBoundingClientRect().height > 100);
  return big.length >= 2 ? performance.now() : false;
}"""
)

# The page a person can use: the first-paint copy gone, no loading overlay, the filters (KPI and
# three dimension selects), both charts drawn and the breakdown table filled, and no chart has drawn
# for `quiet` ms. Returns the in-page time (ms since navigation) when all that first held, or the
# charts' last draw if later.
INTERACTIVE = (
    "(quiet) => {"
    + DEEP
    + """
  const p = window.__kpiProbe;
  if (document.getElementById('kpi-first-paint')) return false;
  if (document.querySelector('.pn-loading') || document.body.classList.contains('pn-loading')) return false;
  // one walk of the shadow roots per check, not one per selector: this check runs every 20 ms on
  // the page's own main thread, and three walks each time cost it ~60 ms per load (CPU profile)
  const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  }
  const count = (sel, keep) => roots.reduce((n, r) => n + [...r.querySelectorAll(sel)].filter(keep || (() => true)).length, 0);
  const selects = count('select');
  const charts = count('canvas', c => c.getBoundingClientRect().height > 100);
  const rows = count('table.panel-df tbody tr');
  if (selects < 4 || charts < 2 || rows < 1) return false;
  const now = performance.now();
  if (p.readyAt === undefined) p.readyAt = now;
  if (p.lastDraw !== null && now - p.lastDraw < quiet) return false;
  return {t: Math.max(p.readyAt, p.lastDraw || 0), ready: p.readyAt, lastDraw: p.lastDraw, msgs: p.msgs};
}"""
)
INTERACTIVE_QUIET_MS = 400

# The scripts the page fetched (resource timing): bytes to compile (decoded) and bytes that came over
# the network (0 when the browser used its own copy without asking), and the page's Bokeh models.
SCRIPT_BYTES = """() => {
  const s = performance.getEntriesByType('resource').filter(e => e.initiatorType === 'script');
  const d = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
  return {scripts: s.length, script_bytes: s.reduce((a, e) => a + e.decodedBodySize, 0),
          script_transfer_bytes: s.reduce((a, e) => a + e.transferSize, 0),
          models: d ? d.all_models.size : null};
}"""

REVENUE_AT_LEAST = (
    "(threshold) => {"
    + DEEP
    + """
  const el = deep('[data-kpi-value="revenue"]')[0];
  if (!el) return false;
  const v = parseFloat((el.getAttribute('title') || '').replace(/[^0-9.\\-]/g, ''));
  return v >= threshold ? Date.now() : false;
}"""
)

# Records when the page's websocket opened and when its session document (PULL-DOC-REPLY) arrived.
WS_PROBE = """
(() => {
  const Orig = window.WebSocket;
  const probe = window.__kpiProbe = {wsOpen: null, docHeader: null, docDone: null, msgs: 0, tilesPainted: null};
  // when the tiles' numbers (elementtiming="kpi-tiles", which the page's HTML carries) were painted;
  // pages without that mark: the first contentful paint (on those, the header and tiles)
  probe.fcp = null;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name === 'first-contentful-paint' && probe.fcp === null) probe.fcp = e.startTime;
    }
  }).observe({type: 'paint', buffered: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.identifier === 'kpi-tiles' && probe.tilesPainted === null) probe.tilesPainted = e.renderTime || e.loadTime;
    }
  }).observe({type: 'element', buffered: true});
  // when a chart (a canvas taller than 100 px) last drew: a chart drawn again after its first
  // paint (e.g. re-rendered on the server once the browser reported its size) is not settled yet
  probe.lastDraw = null;
  const C2D = CanvasRenderingContext2D.prototype;
  for (const m of ['fillRect', 'fill', 'stroke', 'fillText', 'drawImage']) {
    const orig = C2D[m];
    C2D[m] = function (...a) {
      if (this.canvas && this.canvas.height > 100) probe.lastDraw = performance.now();
      return orig.apply(this, a);
    };
  }
  let after = -1;
  function Probed(url, protocols) {
    const ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols);
    ws.addEventListener('open', () => { if (probe.wsOpen === null) probe.wsOpen = performance.now(); });
    ws.addEventListener('message', (ev) => {
      probe.msgs++;
      if (after > 0 && --after === 0) probe.docDone = performance.now();
      if (probe.docHeader === null && typeof ev.data === 'string' && ev.data.includes('"PULL-DOC-REPLY"')) {
        probe.docHeader = performance.now(); after = 2;  // then metadata and content
      }
    });
    return ws;
  }
  Probed.prototype = Orig.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Probed[k] = Orig[k];
  window.WebSocket = Probed;
})();
"""


def number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(re.sub(r"[^0-9.\-]", "", text))
    except ValueError:
        return None


def marker_order(revenue: float, region: str, product: str, prefix: str = "bench-dash") -> dict:
    """One big order (a single line worth ``revenue``) that the revenue tile cannot miss."""
    key = uuid.uuid4().hex[:12]
    return {
        "event_id": f"{prefix}-{key}",
        "order_id": f"BD-{key}",
        "ordered_at": datetime.now(UTC).isoformat(),
        "customer_id": f"C-BD-{key[:6]}",
        "region": region,
        "channel": "Web",
        "lines": [{"product_id": product, "quantity": 1, "unit_price": revenue, "discount": 0}],
    }


def freshness_probe(page, order: dict, source: str, before=None, timeout_ms: int = 30_000) -> dict:
    """Ingest ``order`` and wait until the open executive ``page`` shows its revenue.

    ``before(threshold)`` runs just before the ingest (to arm other watchers). Returns ``t_hand``
    (time.time() at the hand-over), ``committed_s`` and ``visible_s`` (None: not within the timeout).
    """
    from kpi_lib import stream

    revenue = sum(ln["unit_price"] * ln["quantity"] for ln in order["lines"])
    threshold = number(page.evaluate(TILE_TITLES)["titles"].get("revenue")) + revenue / 2
    if before is not None:
        before(threshold)
    t_hand = time.time()
    stream.ingest([order], source=source)
    out = {"t_hand": t_hand, "committed_s": time.time() - t_hand, "visible_s": None}
    try:
        seen_ms = page.wait_for_function(
            REVENUE_AT_LEAST, arg=threshold, polling=10, timeout=timeout_ms
        ).json_value()
        out["visible_s"] = seen_ms / 1000 - t_hand
    except Exception:  # noqa: BLE001 - reported as not visible
        pass
    return out


# --- warehouse: a clone of warehouse-N ------------------------------------------------------------


def _holds_demo(lines: int) -> bool:
    """The current KPI_HOME holds the demo business of ``lines`` lines (extra live orders allowed)."""
    from kpi_lib import warehouse

    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            row = conn.execute("select value from ops.settings where key = 'demo'").fetchone()
            if not row or json.loads(row[0]) != {"lines": lines, "days": DAYS, "seed": SEED}:
                return False
            return conn.execute("select count(*) from ops.mv_state").fetchone()[0] >= 4
    except Exception:
        return False


def _running(home: Path) -> bool:
    pid_file = home / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
        return True
    except (OSError, ValueError):
        return False


def ensure_warehouse(lines: int, home: Path, source: Path, reuse: bool) -> dict:
    """Use the clone at ``home`` (with --reuse), else clone ``source`` into it, else load the demo."""
    from kpi_lib import demo, warehouse

    common.use_home(home)
    if reuse and (home / "pgdata").exists() and _holds_demo(lines):
        log(f"reusing the clone {home}")
        return {"home": str(home), "reused": True}
    common.use_home(home, fresh=True)
    info: dict = {"home": str(home), "reused": False}
    if (source / "pgdata").exists():
        was_running = _running(source)
        common.use_home(source)
        try:
            if _holds_demo(lines):
                from kpi_lib import config

                socket_dir = config.settings().pgdata
                t0 = time.perf_counter()
                log(f"cloning {source} -> {home} with pg_basebackup (the source stays untouched)")
                dest = home / "pgdata"
                dest.mkdir(mode=0o700, parents=True)
                shutil.chown(dest, "pgserver", "pgserver")
                subprocess.run(
                    [
                        "runuser", "-u", "pgserver", "--",
                        str(warehouse.embedded_bin_dir() / "pg_basebackup"),
                        "-h", str(socket_dir), "-U", "postgres", "-D", str(dest),
                        "-X", "stream", "-c", "fast", "--no-sync",
                    ],
                    check=True,
                )  # fmt: skip
                for leftover in [
                    *dest.glob(".s.PGSQL.*"),
                    dest / ".handle_pids.json",
                    dest / "postmaster.pid",
                ]:
                    leftover.unlink(missing_ok=True)  # the source's socket lock would stop the clone starting
                info.update(cloned_from=str(source), clone_seconds=round(time.perf_counter() - t0, 1))
        finally:
            if not was_running:
                common.stop_server()  # we started it to check it and copy it
            common.use_home(home)
        if info.get("cloned_from"):
            if _holds_demo(lines):
                return info
            log("the clone does not hold the demo; loading instead")
            common.use_home(home, fresh=True)
    log(f"loading {lines:,} order lines into {home} (pass --reuse next time)")
    t0 = time.perf_counter()
    demo.load_demo(lines, DAYS, SEED)
    info["load_seconds"] = round(time.perf_counter() - t0, 1)
    return info


# --- processes --------------------------------------------------------------------------------------


# --browser-core: Chromium's cores (the rest: this script and the servers)
BROWSER_CORES: set[int] | None = None


def pin_browser() -> None:
    """Every Chromium process of this script on its own core (--browser-core), as if on the
    executive's computer. Called after each launch and new context: a process started before it
    (the network service starts with the browser) is moved then, and renderers forked later from
    pinned processes inherit the core."""
    if BROWSER_CORES is None:
        return
    import psutil

    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(Exception):
            if "chrom" in p.name().lower() and os.sched_getaffinity(p.pid) != BROWSER_CORES:
                os.sched_setaffinity(p.pid, BROWSER_CORES)


def _tree(proc) -> list:
    import psutil

    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


# --tab-start: "before" (the default) opens a visit's tab, then waits for Chromium to go quiet
# before navigating; "overlap" navigates at once, as every figure before 2026-12-05 19:30 UTC did
TAB_START = "before"
TAB_QUIET_CPU_S = 0.01  # Chromium's CPU per 100 ms below which its new tabs count as started
TAB_SETTLE_CAP_S = 5.0  # five new tabs took 2.5-2.7 s to go quiet here


def new_tabs(ctxs: list) -> list:
    """A new tab in each context, started before the visit is timed.

    A new tab costs Chromium ~0.65 CPU-s in the second after ``new_page()`` returns (its renderer
    starting: measured 0.62-0.71 CPU-s over four tabs, nothing loading). Navigating at once put
    that on the timed window, on the same 2 cores as the server: five tabs at once, ~3 CPU-s of
    start-up inside "five first loads". A person's browser starts its renderer before they
    navigate (Chromium keeps a spare one for the next tab), and on their own computer, so the
    visit is timed from a started tab."""
    pages = [c.new_page() for c in ctxs]
    if TAB_START == "before" and settle_browser() >= TAB_SETTLE_CAP_S:
        log(f"  Chromium still busy {TAB_SETTLE_CAP_S:.0f} s after opening {len(pages)} tab(s); timed anyway")
    return pages


def settle_browser() -> float:
    """Wait (at most TAB_SETTLE_CAP_S) until this script's Chromium processes use less than
    TAB_QUIET_CPU_S per 100 ms; the seconds waited."""
    import psutil

    def cpu() -> float:
        total = 0.0
        for p in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "chrom" in p.name().lower():
                    t = p.cpu_times()
                    total += t.user + t.system
        return total

    t0 = time.monotonic()
    last = cpu()
    while time.monotonic() - t0 < TAB_SETTLE_CAP_S:
        time.sleep(0.1)
        now = cpu()
        if 0 <= now - last < TAB_QUIET_CPU_S:  # a process that ended can make it negative
            break
        last = now
    return time.monotonic() - t0


def _find_child(root_pid: int, needle: str):
    """The first descendant of ``root_pid`` whose command line contains ``needle``."""
    import psutil

    for p in psutil.Process(root_pid).children(recursive=True):
        try:
            if needle in " ".join(p.cmdline()):
                return p
        except psutil.Error:
            continue
    return None


def tree_memory(proc, pss: bool = False) -> dict:
    """RSS (and PSS) in MB of a process and its descendants."""
    import psutil

    rss = pss_total = 0
    n = 0
    for p in _tree(proc):
        try:
            if pss:
                m = p.memory_full_info()
                pss_total += m.pss
                rss += m.rss
            else:
                rss += p.memory_info().rss
            n += 1
        except psutil.Error:
            continue
    out = {"rss_mb": round(rss / 2**20, 1), "processes": n}
    if pss:
        out["pss_mb"] = round(pss_total / 2**20, 1)
    return out


def _median(xs: list) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return round(xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2, 3)


def tree_cpu(proc) -> float:
    import psutil

    total = 0.0
    for p in _tree(proc):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


class Sampler:
    """Samples the RSS of the Panel and Voila trees every ``every`` s; the peak per phase."""

    def __init__(self, trees: dict, every: float = 0.5) -> None:
        self.trees, self.every = trees, every
        self.phase: str | None = None
        self.peaks: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            phase = self.phase
            if phase is None:
                continue
            for name, proc in self.trees.items():
                if proc is None:
                    continue
                rss = tree_memory(proc)["rss_mb"]
                peaks = self.peaks.setdefault(phase, {})
                peaks[name] = max(peaks.get(name, 0.0), rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Serve:
    """`kpi serve` in its own process group (front door + Panel + Voila), no alerts, no mail sink."""

    def __init__(
        self, home: Path, voila_pool: int, panel_procs: int, code: Path | None = None, tag: str = ""
    ) -> None:
        """``code``: serve another checkout's kpi_lib and dashboards (an A/B baseline) with this
        environment's packages."""
        from kpi_lib.serve import free_port

        self.env = {"PYTHONPATH": str(code)} if code else {}

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            str(Path(sys.executable).with_name("kpi")), "serve", "--port", str(self.port),
            "--no-alerts", "--no-mail-sink", "--voila-pool", str(voila_pool), "--panel-procs", str(panel_procs),
        ]  # fmt: skip
        self.log_path = home / f"bench-dashboards-serve{tag}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> float:
        t0 = time.perf_counter()
        out = open(self.log_path, "wb")  # noqa: SIM115
        # the back ends' secret is ours, so the "direct" Voila measurement can present it
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "KPI_PROXY_SECRET": BACKEND_SECRET, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kpi serve exited ({self.proc.returncode}): {self.log_path}")
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2)
                return time.perf_counter() - t0
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"kpi serve did not answer within {timeout:.0f} s")

    def children(self) -> dict:
        """The Panel server and the Voila server (each the root of its tree), and their ports."""
        panel = _find_child(self.proc.pid, "panel serve")
        if panel is None:
            panel = _find_child(self.proc.pid, "/panel")
        voila = _find_child(self.proc.pid, "/voila ") or _find_child(self.proc.pid, "bin/voila")

        def port(p, pattern):
            if p is None:
                return None
            m = re.search(pattern, " ".join(p.cmdline()))
            return int(m.group(1)) if m else None

        return {
            "panel": panel,
            "voila": voila,
            "panel_port": port(panel, r"--port (\d+)"),
            "voila_port": port(voila, r"--port=(\d+)"),
        }

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        kids = [p for p in _tree(__import__("psutil").Process(self.proc.pid))]
        os.killpg(self.proc.pid, signal.SIGTERM)  # kpi serve stops every child process group
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for p in kids:  # anything left of what it started (Voila kernels run in their own sessions)
            try:
                if p.is_running() and p.status() != "zombie":
                    p.kill()
            except Exception:
                pass


class Group:
    """A child process in its own process group (simulator, the second Voila)."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None) -> None:
        out = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=common.ROOT,
        )
        self.log_path = log_path

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> None:
        import psutil

        if self.proc.poll() is not None:
            return
        kids = _tree(psutil.Process(self.proc.pid))
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        for p in kids:
            try:
                if p.is_running() and p.status() != "zombie":
                    p.kill()
            except Exception:
                pass


# --- the light clients (one asyncio loop in a thread of its own) ----------------------------------


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 600):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


REVENUE_TITLE = re.compile(r'data-kpi-value="revenue" title="([^"]*)"')


def _revenue_in(fragment: str) -> float | None:
    """The revenue tile's exact value in a Bokeh message (the HTML pane's text, JSON- and HTML-escaped)."""
    if "data-kpi-value" not in fragment:
        return None
    text = htmllib.unescape(fragment.replace('\\"', '"'))
    found = REVENUE_TITLE.findall(text)
    return number(found[-1]) if found else None


DOCUMENT_READY = {
    "kind": "MessageSent",
    "msg_type": "bokeh_event",
    "msg_data": {"type": "event", "name": "document_ready", "values": {}},
}


class PanelLightSession:
    """What a browser tab does for the Bokeh server, minus rendering: GET the page through the front
    door with the session cookie, take the session token from it, open the Bokeh websocket
    (``/panel/executive/ws``, subprotocols ``bokeh`` + token), wait for ACK, send PULL-DOC-REQ, read
    the document, announce ``document_ready`` as BokehJS does once a page is idle (Panel starts the
    page's onload work, here its live updates, only then), then keep reading every message the
    server pushes (PATCH-DOC on live updates)."""

    def __init__(self, base: str, cookie: str) -> None:
        self.base, self.cookie = base, cookie
        self.ws = None
        self.messages = 0
        self.patches = 0
        self.bytes = 0
        self.revenue: float | None = None
        self.threshold: float | None = None
        self.crossed_at: float | None = None  # time.time() when revenue first >= threshold
        self.opened_s: float | None = None
        self.worker: str | None = None
        self.closed = False
        self.error: str | None = None

    async def _read(self) -> tuple[dict, str]:
        header = await self.ws.read_message()
        if header is None:
            raise ConnectionError("websocket closed")
        meta = await self.ws.read_message()
        content = await self.ws.read_message()
        h = json.loads(header)
        size = len(header) + len(meta or "") + len(content or "")
        for _ in range(h.get("num_buffers", 0)):
            a = await self.ws.read_message()
            b = await self.ws.read_message()
            size += len(a or "") + len(b or "")
        self.messages += 1
        self.bytes += size
        return h, content if isinstance(content, str) else content.decode()

    async def _send(self, msgtype: str, content: dict | None = None) -> None:
        header = {"msgid": uuid.uuid4().hex, "msgtype": msgtype}
        for part in (json.dumps(header), "{}", json.dumps(content or {})):
            await self.ws.write_message(part)

    async def open(self) -> float:
        import tornado.httpclient
        import tornado.websocket

        t0 = time.perf_counter()
        resp = await tornado.httpclient.AsyncHTTPClient().fetch(
            self.base + EXEC_PATH, headers={"Cookie": self.cookie}, request_timeout=300
        )
        page = resp.body.decode()
        self.worker = resp.headers.get("X-KPI-Worker")  # which Panel worker (with --panel-procs > 1)
        m = re.search(r'"token"\s*:\s*"([^"]+)"', page) or re.search(r'\\"token\\"\s*:\s*\\"([^"\\]+)', page)
        if not m:
            raise RuntimeError("no Bokeh session token in the page")
        url = "ws" + self.base[4:] + EXEC_PATH + "/ws"
        req = tornado.httpclient.HTTPRequest(
            url, headers={"Cookie": self.cookie, "Origin": self.base}, request_timeout=300
        )
        self.ws = await tornado.websocket.websocket_connect(
            req, subprotocols=["bokeh", m.group(1)], max_message_size=256 * 2**20
        )
        h, _ = await self._read()
        if h["msgtype"] != "ACK":
            raise RuntimeError(f"first message was {h['msgtype']}, not ACK")
        await self._send("PULL-DOC-REQ")
        while True:
            h, content = await self._read()
            if h["msgtype"] == "PULL-DOC-REPLY":
                self.revenue = _revenue_in(content)
                break
        # what BokehJS sends once the page is idle: the page's onload work (its live updates) starts
        await self._send("PATCH-DOC", {"events": [DOCUMENT_READY]})
        self.opened_s = time.perf_counter() - t0
        asyncio.ensure_future(self._listen())
        return self.opened_s

    async def _listen(self) -> None:
        try:
            while True:
                h, content = await self._read()
                if h["msgtype"] == "PATCH-DOC":
                    self.patches += 1
                    v = _revenue_in(content)
                    if v is not None:
                        self.revenue = v
                        if self.threshold is not None and self.crossed_at is None and v >= self.threshold:
                            self.crossed_at = time.time()
        except Exception as exc:  # noqa: BLE001
            if not self.closed:
                self.error = repr(exc)

    async def close(self) -> None:
        self.closed = True
        if self.ws is not None:
            self.ws.close()


class VoilaLightSession:
    """A Voila viewer without a browser: GET the notebook page through the front door (Voila hands
    it a kernel of its own and runs the notebook in it, or takes a pre-heated one), then open that
    kernel's channels websocket as the page's JavaScript does. No widget traffic follows, so the
    page heartbeat the explorer's live refresh waits for never comes (live refresh stays paused)."""

    def __init__(self, base: str, cookie: str) -> None:
        self.base, self.cookie = base, cookie
        self.ws = None
        self.kernel_id: str | None = None

    async def open(self) -> float:
        import tornado.httpclient
        import tornado.websocket

        t0 = time.perf_counter()
        resp = await tornado.httpclient.AsyncHTTPClient().fetch(
            self.base + VOILA_PATH, headers={"Cookie": self.cookie}, request_timeout=300
        )
        m = re.search(r'"kernelId"\s*:\s*"([0-9a-f-]+)"', resp.body.decode())
        if not m:
            raise RuntimeError("no kernel id in the Voila page")
        self.kernel_id = m.group(1)
        url = f"ws{self.base[4:]}/voila/api/kernels/{self.kernel_id}/channels?session_id={uuid.uuid4()}"
        req = tornado.httpclient.HTTPRequest(url, headers={"Cookie": self.cookie, "Origin": self.base})
        # the v1 kernel protocol, as the page's JavaScript asks: with the legacy one, Voila 0.5
        # reads each binary message's first 8 bytes as a count of offsets and loops that many
        # times, which pinned its event loop (every later request failed with HTTP 500)
        self.ws = await tornado.websocket.websocket_connect(
            req, max_message_size=64 * 2**20, subprotocols=["v1.kernel.websocket.jupyter.org"]
        )
        return time.perf_counter() - t0

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


# --- the benchmark --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, home: Path) -> None:
        self.args = args
        self.home = home
        self.doc: dict = {}
        self.serve: Serve | None = None
        self.sim: Group | None = None
        self.cold_voila = None
        self.loop = Loop()
        self.light: list[PanelLightSession] = []
        self.vlight: list[VoilaLightSession] = []
        self.sampler: Sampler | None = None

    # -- setup ---------------------------------------------------------------------------------

    def setup(self) -> None:
        from playwright.sync_api import sync_playwright

        from kpi_lib import auth, kpis

        auth.set_user(USER, PASSWORD, ["executive"], name="Bench Executive")
        user = auth.user(USER)
        self.n_tiles = sum(
            1
            for k in (
                "revenue",
                "orders",
                "aov",
                "units",
                "customers",
                "new_customers",
                "gross_margin",
                "return_rate",
            )
            if k in kpis.definitions() and user.can_see(k)
        )
        self.serve = Serve(self.home, self.args.voila_pool, self.args.panel_procs)
        log(f"starting kpi serve on {self.serve.base} ({' '.join(self.serve.cmd[1:])})")
        started = self.serve.start()
        kids = self.serve.children()
        self.panel, self.voila = kids["panel"], kids["voila"]
        self.panel_port, self.voila_port = kids["panel_port"], kids["voila_port"]
        self.doc["server"] = {
            "command": " ".join(["kpi", *self.serve.cmd[1:]]),
            "panel_flags": "--num-procs N --warm --global-loading-spinner (kpi_lib.serve)",
            "healthz_after_s": round(started, 1),
            "panel_pid": self.panel.pid if self.panel else None,
            "voila_pid": self.voila.pid if self.voila else None,
        }
        self.sampler = Sampler({"panel": self.panel, "voila": self.voila}).start()
        self.pw = sync_playwright().start()
        path = chromium.executable()
        self.browser = self.pw.chromium.launch(executable_path=path, args=chromium.ARGS)
        pin_browser()
        self.doc["browser"] = {"chromium": path, "version": self.browser.version}
        self.ctx = self.new_context()
        page = self.ctx.new_page()
        page.goto(f"{self.serve.base}/login?next=/", timeout=TIMEOUT_MS)
        page.fill("input[name=user]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        cookie = next(c for c in self.ctx.cookies() if c["name"] == auth.COOKIE)
        self.session_cookie = {"name": cookie["name"], "value": cookie["value"], "url": self.serve.base}
        self.cookie_header = f"{auth.COOKIE}={cookie['value']}; _xsrf={uuid.uuid4().hex}"
        page.close()
        log("signed in through the login form")

    def new_context(self, cookie: bool = False, headers: dict | None = None, token: str | None = None):
        """A new incognito context: signed in with the bench's one sign-in (``cookie``), or with
        ``token``, a sign-in of its own (:meth:`sign_in`)."""
        ctx = self.browser.new_context(viewport={"width": 1400, "height": 1000}, extra_http_headers=headers)
        pin_browser()
        ctx.add_init_script(WS_PROBE)
        if token is not None:
            ctx.add_cookies([{**self.session_cookie, "value": token}])
        elif cookie:
            ctx.add_cookies([self.session_cookie])
        return ctx

    def sign_in(self) -> str:
        """A sign-in session of its own through the login form (its cookie's value), as each person
        has one: the front door sticks a sign-in to one Panel worker, so people spread over the
        workers only when each has their own."""
        from kpi_lib import auth

        req = self.pw.request.new_context(base_url=self.serve.base)
        try:
            form = req.get("/login?next=/").text()
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form).group(1)
            req.post("/login", form={"_xsrf": xsrf, "user": USER, "password": PASSWORD, "next": "/"})
            return next(c["value"] for c in req.storage_state()["cookies"] if c["name"] == auth.COOKIE)
        finally:
            req.dispose()

    def cookie_of(self, token: str) -> str:
        """The Cookie header a light client sends for the sign-in ``token``."""
        from kpi_lib import auth

        return f"{auth.COOKIE}={token}; _xsrf={uuid.uuid4().hex}"

    # -- the executive dashboard -----------------------------------------------------------------

    def expected_titles(self) -> dict:
        from kpi_lib import kpis

        today = kpis.local_now().date()
        out = {}
        for k in kpis.definitions().values():
            r = kpis.query(k.name, "total", start=today - timedelta(days=29), end=today + timedelta(days=1))
            out[k.name] = k.format_value(r.value)
        return out

    def navigate_exec(self, ctx, keep_open: bool = False) -> dict:
        [page] = new_tabs([ctx])
        t0 = time.perf_counter()
        page.goto(self.serve.base + EXEC_PATH, wait_until="commit", timeout=TIMEOUT_MS)
        ready = page.wait_for_function(
            TILES_READY, arg=self.n_tiles, polling=20, timeout=TIMEOUT_MS
        ).json_value()
        tiles_s = time.perf_counter() - t0
        out = {"tiles_s": tiles_s, "tiles_in_page_ms": ready["t"], "first_titles": ready["titles"]}
        try:
            charts = page.wait_for_function(CHARTS_READY, polling=50, timeout=60_000).json_value()
            out["charts_in_page_ms"] = charts
        except Exception:  # noqa: BLE001
            out["charts_in_page_ms"] = None
        try:
            page.wait_for_function(
                "() => window.__kpiProbe && window.__kpiProbe.docDone !== null", polling=20, timeout=60_000
            )
        except Exception:  # noqa: BLE001
            pass
        probe = page.evaluate("() => window.__kpiProbe")
        out["ws_open_in_page_ms"] = probe.get("wsOpen")
        out["session_doc_in_page_ms"] = probe.get("docDone")
        out["tiles_painted_in_page_ms"] = probe.get("tilesPainted") or probe.get("fcp")
        if keep_open:
            out["page"] = page
        else:
            page.close()
        return out

    def exec_phase(
        self, name: str, n_warm: int, n_cold: int, gap: float, check_current: bool = False
    ) -> dict:
        """``n_warm`` navigations in one browser profile (cache warm), ``n_cold`` in a new profile each,
        alternating, ``gap`` s apart (after the page closed)."""
        from kpi_lib import kpis

        runs: dict[str, list[dict]] = {"repeat_visit": [], "first_visit": []}
        order = ["repeat_visit"] * n_warm + ["first_visit"] * n_cold
        # alternate: w, c, w, c, ..., then the remaining warm ones
        mixed = []
        w, c = order[:n_warm], order[n_warm:]
        while w or c:
            if w:
                mixed.append(w.pop())
            if c:
                mixed.append(c.pop())
        cpu0, t0 = tree_cpu(self.panel), time.monotonic()
        self.sampler.phase = f"exec:{name}"
        for i, kind in enumerate(mixed):
            want = self.expected_titles() if check_current else None
            ctx = self.ctx if kind == "repeat_visit" else self.new_context(cookie=True)
            r = self.navigate_exec(ctx)
            if kind == "first_visit":
                ctx.close()
            if want is not None:
                r["first_paint_current"] = all(
                    r["first_titles"].get(k) == v for k, v in want.items() if k in r["first_titles"]
                )
            runs[kind].append(r)
            log(
                f"  exec {name} {kind} {i + 1}/{len(mixed)}: tiles {r['tiles_s'] * 1000:.0f} ms, "
                f"session doc {r['session_doc_in_page_ms'] or float('nan'):.0f} ms (in page)"
            )
            if i + 1 < len(mixed):
                time.sleep(gap)
        cpu = tree_cpu(self.panel) - cpu0
        wall = time.monotonic() - t0
        out = {"navigations_gap_s": gap}
        for kind, rs in runs.items():
            if not rs:
                continue
            s = {
                "tiles": pct([r["tiles_s"] for r in rs], 1),
                "tiles_in_page": pct([r["tiles_in_page_ms"] / 1000 for r in rs], 1),
                "session_doc_in_page": pct(
                    [
                        r["session_doc_in_page_ms"] / 1000
                        for r in rs
                        if r["session_doc_in_page_ms"] is not None
                    ],
                    1,
                ),
                "charts_in_page": pct(
                    [r["charts_in_page_ms"] / 1000 for r in rs if r["charts_in_page_ms"] is not None], 1
                ),
                # the page's own clock: the first contentful paint, i.e. the header and tiles its HTML
                # carries (before the DOM probe above can run, which waits for the scripts after them)
                "tiles_painted_in_page": pct(
                    [r["tiles_painted_in_page_ms"] / 1000 for r in rs if r.get("tiles_painted_in_page_ms")], 1
                ),
                "tiles_ms_each": [round(r["tiles_s"] * 1000) for r in rs],
            }
            if check_current:
                s["first_paint_shows_current_values"] = sum(bool(r.get("first_paint_current")) for r in rs)
            out[kind] = s
        out["panel_cpu_share"] = round(cpu / wall, 2) if wall else None
        _ = kpis
        return out

    # -- light sessions ----------------------------------------------------------------------------

    def open_light(self, n: int) -> dict:
        times = []
        for _ in range(n):
            s = PanelLightSession(self.serve.base, self.cookie_header)
            times.append(self.loop.run(s.open()))
            self.light.append(s)
        return {"n": n, "open_and_sync": pct(times, 1)}

    def light_status(self) -> dict:
        return {
            "open": sum(1 for s in self.light if s.error is None and not s.closed),
            "errors": [s.error for s in self.light if s.error][:3],
            "messages": [s.messages for s in self.light],
            "patch_docs": [s.patches for s in self.light],
            "mb_received": round(sum(s.bytes for s in self.light) / 2**20, 1),
        }

    def close_light(self) -> None:
        for s in self.light:
            self.loop.run(s.close())
        self.light = []

    # -- simulator -------------------------------------------------------------------------------

    def sim_orders(self) -> int:
        from kpi_lib import warehouse

        with warehouse.connect_raw(autocommit=True) as conn:
            return conn.execute("select count(*) from silver.orders where source = 'simulator'").fetchone()[0]

    def start_sim(self) -> None:
        self._sim0 = (self.sim_orders(), time.monotonic())
        self.sim = Group(
            [str(Path(sys.executable).with_name("kpi")), "simulate", "--rate", str(self.args.sim_rate)],
            self.home / "bench-dashboards-sim.log",
        )
        log(f"simulator started: kpi simulate --rate {self.args.sim_rate}")
        time.sleep(5)

    def stop_sim(self) -> dict:
        if self.sim is None:
            return {}
        self.sim.stop(signal.SIGINT)
        self.sim = None
        n0, t0 = self._sim0
        n = self.sim_orders() - n0
        secs = time.monotonic() - t0
        return {
            "rate_asked": self.args.sim_rate,
            "orders": n,
            "seconds": round(secs),
            "orders_per_s": round(n / secs, 1),
        }

    # -- freshness -------------------------------------------------------------------------------

    def marker(self, revenue: float) -> dict:
        return marker_order(revenue, self.region, self.product)

    def freshness(self, page, n: int, with_light: bool) -> dict:
        total, committed, light = [], [], []
        missed = 0
        self.sampler.phase = f"freshness:{'11' if with_light else '1'}"

        def arm(threshold: float) -> None:  # the light clients note when they see the marker too
            for s in self.light:
                s.threshold, s.crossed_at = threshold, None

        for i in range(n):
            probe = freshness_probe(page, self.marker(self.args.marker), "bench-dashboards", before=arm)
            t_hand = probe["t_hand"]
            if probe["visible_s"] is None:
                missed += 1
                log(f"  freshness {i + 1}: not visible within 30 s")
                continue
            total.append(probe["visible_s"])
            committed.append(probe["committed_s"])
            if with_light:
                deadline = time.time() + 15
                while time.time() < deadline and any(s.crossed_at is None for s in self.light):
                    time.sleep(0.02)
                light += [s.crossed_at - t_hand for s in self.light if s.crossed_at is not None]
            log(
                f"  freshness {'11' if with_light else '1'} session(s) {i + 1}/{n}: {total[-1] * 1000:.0f} ms"
            )
            time.sleep(random.uniform(1.0, 2.0))
        out = {
            "injections": n,
            "not_visible_within_30s": missed,
            "ingest_to_visible_in_page": pct(total, 1),
            "of_which_ingest_committed": pct(committed, 1),
        }
        if with_light:
            out["ingest_to_patch_at_light_clients"] = pct(light, 1)
        return out

    # -- Voila -----------------------------------------------------------------------------------

    def voila_log(self, which: str) -> str:
        path = self.home / "logs" / "voila.log" if which == "serve" else self.cold_voila.log_path
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def pool_filled(self) -> int:
        """How often the front door's Voila logged its revenue_explorer pool as filled."""
        return len(
            re.findall(r"Kernel pool of \S*revenue_explorer\.ipynb is filled", self.voila_log("serve"))
        )

    def wait_pool(self, after: int, timeout: float = 240) -> float:
        """Until the pool was filled more than ``after`` times (a refill after our last take) and
        the Voila tree (server and kernels) has used no CPU for 2 s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout and self.pool_filled() <= after:
            time.sleep(0.3)
        last, quiet = None, time.monotonic()
        while time.monotonic() - t0 < timeout:
            cpu = tree_cpu(self.voila)
            if cpu != last:
                last, quiet = cpu, time.monotonic()
            elif time.monotonic() - quiet > 2.0:
                break
            time.sleep(0.5)
        return time.monotonic() - t0

    def first_widget(self, ctx, url: str) -> dict:
        [page] = new_tabs([ctx])
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
        # the range total: the page's first-paint copy, or the live tile where there is none
        page.locator(
            ".kpi-first-total .kpi-value:visible, .kpi-range-total .kpi-value:visible"
        ).first.wait_for(timeout=TIMEOUT_MS)
        number = time.perf_counter() - t0
        page.locator(".kpi-explorer .widget-dropdown").first.wait_for(timeout=TIMEOUT_MS)
        first = time.perf_counter() - t0
        page.locator(".kpi-table").wait_for(timeout=TIMEOUT_MS)
        table = time.perf_counter() - t0
        page.close(run_before_unload=True)  # Voila's shutdown beacon ends the kernel
        return {"first_number_s": number, "first_widget_s": first, "table_s": table}

    def start_cold_voila(self) -> None:
        from kpi_lib import auth
        from kpi_lib.serve import free_port, voila_command
        from kpi_lib.ui.voila import voila_template

        port = free_port()
        jp = voila_template(self.home / "jupyter-bench")
        self.cold_voila = Group(
            voila_command(port, preheat=False),
            self.home / "bench-dashboards-voila-cold.log",
            env={"JUPYTER_PATH": str(jp), "KPI_PROXY_SECRET": BACKEND_SECRET},
        )
        self.cold_voila.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(
                    self.cold_voila.base + "/voila/",
                    headers={auth.HEADER: USER, auth.PROXY_HEADER: BACKEND_SECRET},
                )
                urllib.request.urlopen(req, timeout=5)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the second Voila (pre-heating off) did not start")

    def voila_phase(self, n: int) -> dict:
        from kpi_lib import auth

        self.start_cold_voila()
        direct_headers = {auth.HEADER: USER, auth.PROXY_HEADER: BACKEND_SECRET}
        front = self.new_context(cookie=True)  # through the front door, as users see it
        direct = self.new_context(headers=direct_headers)
        direct.add_cookies(
            [{"name": "_xsrf", "value": uuid.uuid4().hex, "domain": "127.0.0.1", "path": "/voila/"}]
        )
        runs: dict[str, list[dict]] = {
            "preheated_front_door": [],
            "preheated_direct": [],
            "not_preheated_direct": [],
        }
        waits = []
        mark = 0
        used_preheated = 0
        self.sampler.phase = "voila:navigation"
        # warm the second Voila's static files and the JupyterLab bundle cache of each profile once
        self.first_widget(direct, f"{self.cold_voila.base}{VOILA_PATH}")
        for i in range(n):
            for kind in ("preheated_front_door", "preheated_direct", "not_preheated_direct"):
                if kind.startswith("preheated"):
                    waits.append(self.wait_pool(mark))
                    mark = self.pool_filled()
                    used0 = self.voila_log("serve").count("Using pre-heated kernel")
                    url = (
                        self.serve.base
                        if kind == "preheated_front_door"
                        else f"http://127.0.0.1:{self.voila_port}"
                    ) + VOILA_PATH
                    r = self.first_widget(front if kind == "preheated_front_door" else direct, url)
                    used_preheated += self.voila_log("serve").count("Using pre-heated kernel") > used0
                else:
                    r = self.first_widget(direct, f"{self.cold_voila.base}{VOILA_PATH}")
                runs[kind].append(r)
                log(
                    f"  voila {kind} {i + 1}/{n}: first number {r['first_number_s'] * 1000:.0f} ms, "
                    f"first widget {r['first_widget_s'] * 1000:.0f} ms, "
                    f"table {r['table_s'] * 1000:.0f} ms"
                )
        front.close()
        direct.close()
        self.cold_voila.stop(signal.SIGTERM)
        out = {
            k: {
                "first_number": pct([r["first_number_s"] for r in v], 1),
                "first_widget": pct([r["first_widget_s"] for r in v], 1),
                "table_shown": pct([r["table_s"] for r in v], 1),
            }
            for k, v in runs.items()
        }
        out["preheated_navigations_served_by_a_pool_kernel"] = f"{used_preheated}/{2 * n}"
        out["waited_for_pool_refill_s"] = pct(waits, 1)
        p_fd = out["preheated_front_door"]["first_widget"].get("p50_ms")
        p_cold = out["not_preheated_direct"]["first_widget"].get("p50_ms")
        out["not_preheated_vs_preheated_front_door_p50"] = common.ratio(p_cold, p_fd, 2)
        return out

    def voila_memory(self, extra: int) -> dict:
        self.wait_pool(0, timeout=60)
        self.sampler.phase = "voila:pool only"
        time.sleep(3)
        pool_only = tree_memory(self.voila, pss=True)
        ctx = self.new_context(cookie=True)
        mark = self.pool_filled()
        page = ctx.new_page()
        page.goto(self.serve.base + VOILA_PATH, wait_until="commit", timeout=TIMEOUT_MS)
        page.locator(".kpi-table").wait_for(timeout=TIMEOUT_MS)
        self.wait_pool(mark, timeout=60)
        self.sampler.phase = "voila:1 session"
        time.sleep(5)
        one = tree_memory(self.voila, pss=True)
        opened, failed = [], []
        for _ in range(extra):
            s = VoilaLightSession(self.serve.base, self.cookie_header)
            try:
                opened.append(self.loop.run(s.open()))
            except Exception as exc:  # reported with the figures, not fatal: the rest still counts
                failed.append(f"{type(exc).__name__}: {exc}"[:200])
                log(f"  a Voila viewer did not open: {failed[-1]}")
                continue
            self.vlight.append(s)
        # live kernels never go quiet while the simulator runs: wait for the pool, not for silence
        self.wait_pool(0, timeout=60)
        self.sampler.phase = f"voila:{extra + 1} sessions"
        time.sleep(5)
        many = tree_memory(self.voila, pss=True)
        page.close(run_before_unload=True)
        ctx.close()
        for s in self.vlight:
            self.loop.run(s.close())
        extra = max(len(opened), 1)
        per = (many["rss_mb"] - one["rss_mb"]) / extra
        return {
            "pool_only": pool_only,
            "1_session": one,
            f"{extra + 1}_sessions": many,
            "peak_rss_mb": {
                k.split(":", 1)[1]: v.get("voila")
                for k, v in self.sampler.peaks.items()
                if k.startswith("voila:")
            },
            "light_viewers_open_s": pct(opened, 1),
            "light_viewers_failed": failed,
            "mb_per_extra_session_rss": round(per, 1),
            "mb_per_extra_session_pss": round((many["pss_mb"] - one["pss_mb"]) / extra, 1),
        }

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> dict:
        a = self.args
        from kpi_lib import kpis, warehouse

        with warehouse.connect_raw(autocommit=True) as conn:
            self.doc["warehouse"]["order_lines"] = conn.execute(
                "select count(*) from silver.order_lines"
            ).fetchone()[0]
            self.product = conn.execute(
                "select product_id from silver.products order by 1 limit 1"
            ).fetchone()[0]
        self.region = kpis.dimension_values("region")[0]
        self.setup()
        res: dict = {}
        self.doc["results"] = res

        # first navigation after the server started (pays for the first session build)
        self.sampler.phase = "exec:first"
        r = self.navigate_exec(self.ctx)
        res["exec_first_navigation_after_start"] = {
            "tiles_ms": round(r["tiles_s"] * 1000),
            "session_doc_in_page_ms": r["session_doc_in_page_ms"],
        }
        log(f"first navigation after start: tiles in {r['tiles_s'] * 1000:.0f} ms")
        time.sleep(2)

        log(f"executive, quiet (no simulator): {a.navs} repeat + {a.cold_navs} first visits")
        res["exec_quiet_1_session"] = self.exec_phase(
            "quiet", a.navs, a.cold_navs, a.quiet_gap, check_current=True
        )

        self.start_sim()
        log(f"executive, live (simulator), 1 session: gap {a.gap} s between navigations")
        time.sleep(a.gap)
        res["exec_live_1_session"] = self.exec_phase("live-1", a.navs, a.cold_navs, a.gap)

        # memory with 1 session, then freshness in that page
        time.sleep(a.gap)
        page = self.navigate_exec(self.ctx, keep_open=True)["page"]
        self.sampler.phase = "panel:1 session"
        time.sleep(10)
        mem1 = tree_memory(self.panel, pss=True)
        st = page.evaluate(TILE_TITLES)["status"]
        log(f"freshness with 1 session: {a.injections} markers of ${a.marker:,.0f}")
        res["freshness_1_session"] = self.freshness(page, a.injections, with_light=False)
        res["freshness_1_session"]["status_line_before"] = st

        log(f"opening {a.sessions} light sessions")
        res["light_sessions"] = {"opened": self.open_light(a.sessions)}
        time.sleep(5)
        self.sampler.phase = f"panel:{a.sessions + 1} sessions"
        time.sleep(10)
        mem11 = tree_memory(self.panel, pss=True)
        res["panel_memory"] = {
            "1_session": mem1,
            f"{a.sessions + 1}_sessions": mem11,
            "peak_rss_mb": {
                k.split(":", 1)[1]: v.get("panel")
                for k, v in self.sampler.peaks.items()
                if k.startswith("panel:")
            },
            "mb_per_extra_session_rss": round((mem11["rss_mb"] - mem1["rss_mb"]) / a.sessions, 1),
            "mb_per_extra_session_pss": round((mem11["pss_mb"] - mem1["pss_mb"]) / a.sessions, 1),
        }
        log(f"Panel tree: {mem1['rss_mb']} MB with 1 session, {mem11['rss_mb']} MB with {a.sessions + 1}")
        log(f"freshness with {a.sessions + 1} sessions")
        res["freshness_11_sessions"] = self.freshness(page, a.injections, with_light=True)
        res["freshness_11_sessions"]["status_line_after"] = page.evaluate(TILE_TITLES)["status"]
        page.close()

        log(f"executive, live, with {a.sessions} other sessions open")
        m0 = [s.messages for s in self.light]
        time.sleep(a.gap)
        res["exec_live_10_other_sessions"] = self.exec_phase(
            f"live-{a.sessions}-others", a.navs, a.cold_navs, a.gap
        )
        st = self.light_status()
        st["messages_during_phase"] = [s.messages - m for s, m in zip(self.light, m0, strict=False)]
        res["light_sessions"]["during_measurement"] = st
        self.close_light()

        log(f"Voila: {a.voila_navs} navigations per mode")
        res["voila_revenue_explorer"] = self.voila_phase(a.voila_navs)
        log("Voila memory")
        res["voila_memory"] = self.voila_memory(a.sessions)
        res["simulator"] = self.stop_sim()
        return res

    def close(self) -> None:
        for what, fn in (
            ("sampler", lambda: self.sampler and self.sampler.stop()),
            ("simulator", lambda: self.sim and self.sim.stop()),
            ("voila", lambda: self.cold_voila and self.cold_voila.stop(signal.SIGTERM)),
            ("browser", lambda: self.browser.close()),
            ("playwright", lambda: self.pw.stop()),
            ("kpi serve", lambda: self.serve and self.serve.stop()),
            ("loop", self.loop.stop),
        ):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                log(f"closing {what}: {exc}")


class PageAB(Bench):
    """``--baseline DIR``: this checkout's executive page and Voila against another checkout's (the
    code before a change), two ``kpi serve`` on the same warehouse, visits interleaved (issue 18):

    * navigation -> tiles, and -> the page a person can use (``INTERACTIVE``), quiet, repeat and
      first visits; five first visits started at the same moment;
    * the same under the simulator with ``--sessions`` other live sessions on each server;
    * Voila ``revenue_explorer`` first widget, pre-heated, through each front door.
    """

    def setup(self) -> None:
        from playwright.sync_api import sync_playwright

        from kpi_lib import auth

        auth.set_user(USER, PASSWORD, ["executive"], name="Bench Executive")
        self.n_tiles = 8
        self.servers = {"new": Serve(self.home, self.args.voila_pool, self.args.panel_procs, tag="-new")}
        if self.args.baseline:  # else --usable: this checkout's server alone on the machine
            self.servers["baseline"] = Serve(
                self.home,
                self.args.voila_pool,
                self.args.baseline_panel_procs or self.args.panel_procs,
                code=self.args.baseline,
                tag="-baseline",
            )
        self.trees = {}
        for name, srv in self.servers.items():
            log(f"starting kpi serve ({name}) on {srv.base}")
            srv.start()
            kids = srv.children()
            self.trees[name] = kids
        self.serve = self.servers["new"]  # for Bench's helpers
        self.panel = self.trees["new"]["panel"]
        self.sampler = Sampler({f"panel-{k}": v["panel"] for k, v in self.trees.items()}).start()
        self.pw = sync_playwright().start()
        import psutil

        before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.browser = self.pw.chromium.launch(executable_path=chromium.executable(), args=chromium.ARGS)
        new = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        self.browser_root = next(
            p for p in new if "chrom" in p.name().lower() and "chrom" not in p.parent().name().lower()
        )
        pin_browser()
        self.profiles: list = []
        self.doc["browser"] = {"version": self.browser.version}
        self.doc["server"] = {k: " ".join(["kpi", *v.cmd[1:]]) for k, v in self.servers.items()}
        self.doc["server"]["baseline_code"] = str(self.args.baseline)
        self.ctx = self.new_context()
        page = self.ctx.new_page()
        page.goto(f"{self.serve.base}/login?next=/", timeout=TIMEOUT_MS)
        page.fill("input[name=user]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        # sign-in sessions live in the warehouse: the same cookie opens both servers' pages
        cookie = next(c for c in self.ctx.cookies() if c["name"] == auth.COOKIE)
        self.session_cookie = {"name": cookie["name"], "value": cookie["value"], "url": self.serve.base}
        self.cookie_header = f"{auth.COOKIE}={cookie['value']}; _xsrf={uuid.uuid4().hex}"
        page.close()

    def new_context(self, cookie: bool = False, headers: dict | None = None, token: str | None = None):
        """The page watches itself (every 20 ms, from its first script on): with several pages
        loading at once, a probe polled from here would only see the page it is waiting on."""
        ctx = super().new_context(cookie=cookie, headers=headers, token=token)
        ctx.add_init_script(self.page_probe())
        return ctx

    def page_probe(self) -> str:
        return (
            "(() => { const p = window.__kpiProbe; const tiles = "
            + TILES_READY
            + "; const usable = "
            + INTERACTIVE
            + "; const timer = setInterval(() => { if (!document.body) return;"
            + " if (!p.tiles) { const r = tiles("
            + str(self.n_tiles)
            + "); if (r) p.tiles = r; }"
            + " if (p.tiles && !p.usable) { const r = usable("
            + str(INTERACTIVE_QUIET_MS)
            + ");"
            + " if (r) { p.usable = r; clearInterval(timer); } } }, 20); })();"
        )

    def profile(self, which: str):
        """A returning executive's browser: its own Chromium with an on-disk profile (HTTP cache and
        V8's code cache live on disk between visits, as in a person's browser, rather than an
        incognito context's), signed in. Returns the context and that Chromium's root process."""
        import tempfile

        import psutil

        me = psutil.Process()
        before = {p.pid for p in me.children(recursive=True)}
        d = tempfile.mkdtemp(prefix=f"profile-{which}-", dir=str(self.home))
        ctx = self.pw.chromium.launch_persistent_context(
            d,
            executable_path=chromium.executable(),
            args=chromium.ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        new = [p for p in me.children(recursive=True) if p.pid not in before and "chrom" in p.name().lower()]
        root = next(p for p in new if "chrom" not in (p.parent().name().lower() if p.parent() else ""))
        pin_browser()
        ctx.add_init_script(WS_PROBE)
        ctx.add_init_script(self.page_probe())
        ctx.add_cookies([{**self.session_cookie, "value": self.sign_in(), "url": self.servers[which].base}])
        self.profiles.append(ctx)
        return ctx, root

    def warm_profile(self, which: str, visits: int = 2):
        """A profile that has opened the page ``visits`` times: V8 writes a script's code cache on
        its second run, and a third visit reads it."""
        ctx, root = self.profile(which)
        for _ in range(visits):
            self.finish_visit(self.start_visit(ctx, self.servers[which].base))
            time.sleep(1.0)
        return ctx, root

    def start_visit(self, ctx, base: str, page=None):
        """Navigate a new tab (or ``page``, a started one) to the executive page."""
        if page is None:
            [page] = new_tabs([ctx])
        page.goto(base + EXEC_PATH, wait_until="commit", timeout=TIMEOUT_MS)
        return page

    def finish_visit(self, page, close: bool = True) -> dict:
        """In-page times (ms since navigation): tiles, interactive, session document. ``close=False``
        leaves the page open: a closed tab's renderer exits, and its CPU with it."""
        tiles = page.wait_for_function(
            "() => window.__kpiProbe && window.__kpiProbe.tiles", polling=50, timeout=TIMEOUT_MS
        )
        out = {"tiles_ms": tiles.json_value()["t"]}
        try:
            r = page.wait_for_function(
                "() => window.__kpiProbe.usable", polling=50, timeout=TIMEOUT_MS
            ).json_value()
            out.update(interactive_ms=r["t"], ready_ms=r["ready"], last_chart_draw_ms=r["lastDraw"])
        except Exception as exc:  # noqa: BLE001
            out["interactive_ms"] = None
            out["error"] = str(exc)[:200]
        probe = page.evaluate("() => window.__kpiProbe")
        out["session_doc_ms"] = probe.get("docDone")
        out["ws_messages"] = probe.get("msgs")
        out.update(page.evaluate(SCRIPT_BYTES))
        if close:
            page.close()
        return out

    def summary(self, rs: list[dict]) -> dict:
        def col(key):
            return [r[key] / 1000 for r in rs if r.get(key) is not None]

        return {
            "n": len(rs),
            "tiles": pct(col("tiles_ms"), 2),
            "interactive": pct(col("interactive_ms"), 2),
            "session_doc": pct(col("session_doc_ms"), 2),
            "not_interactive_within_60s": sum(r.get("interactive_ms") is None for r in rs),
            "script_bytes": sorted({r.get("script_bytes") for r in rs if r.get("script_bytes") is not None}),
            "script_transfer_bytes_p50": _median([r.get("script_transfer_bytes") for r in rs]),
            "models": sorted({r.get("models") for r in rs if r.get("models") is not None}),
            "chromium_cpu_s_per_load_p50": _median([r.get("chromium_cpu_s") for r in rs]),
            "interactive_ms_each": [
                None if r.get("interactive_ms") is None else round(r["interactive_ms"]) for r in rs
            ],
        }

    def sequential(self, name: str, n_warm: int, n_cold: int, gap: float) -> dict:
        runs: dict = {(w, k): [] for w in self.servers for k in ("repeat_visit", "first_visit")}
        kinds = ["repeat_visit"] * n_warm + ["first_visit"] * n_cold
        random.Random(7).shuffle(kinds)
        for i, kind in enumerate(kinds):
            order = list(self.servers) if i % 2 == 0 else list(self.servers)[::-1]
            for which in order:
                ctx = self.ctx if kind == "repeat_visit" else self.new_context(cookie=True)
                r = self.finish_visit(self.start_visit(ctx, self.servers[which].base))
                if kind == "first_visit":
                    ctx.close()
                runs[(which, kind)].append(r)
                log(
                    f"  {name} {which} {kind} {i + 1}/{len(kinds)}: tiles {r['tiles_ms']:.0f} ms, "
                    f"interactive {r.get('interactive_ms') or float('nan'):.0f} ms"
                )
                time.sleep(gap)
        out: dict = {}
        for (which, kind), rs in runs.items():
            if rs:
                out.setdefault(which, {})[kind] = self.summary(rs)
        return out

    def simultaneous(self, rounds: int, n: int, gap: float, warm: bool = False) -> dict:
        """``n`` visits started at the same moment, per round and server: first visits (new
        incognito contexts in one Chromium) or, ``warm``, ``n`` returning executives (each their own
        Chromium and on-disk profile, which opened the page twice before). ``chromium_cpu_s`` is the
        browsers' CPU over the round divided by ``n``."""
        runs: dict = {w: [] for w in self.servers}
        warmed = {w: [self.warm_profile(w) for _ in range(n)] for w in self.servers} if warm else {}
        for i in range(rounds):
            order = list(self.servers) if i % 2 == 0 else list(self.servers)[::-1]
            for which in order:
                if warm:
                    ctxs, roots = [c for c, _ in warmed[which]], [r for _, r in warmed[which]]
                else:
                    ctxs = [self.new_context(token=self.sign_in()) for _ in range(n)]  # five people
                    roots = [self.browser_root]
                pages = new_tabs(ctxs)
                url = self.servers[which].base + EXEC_PATH
                c0 = sum(tree_cpu(r) for r in roots)
                for p in pages:  # starts each navigation without waiting for it
                    p.evaluate("(u) => { window.location.href = u; }", url)
                rs = [self.finish_visit(p, close=False) for p in pages]
                cpu = (sum(tree_cpu(r) for r in roots) - c0) / n
                for p in pages:
                    p.close()
                for r in rs:
                    r["chromium_cpu_s"] = cpu
                if not warm:
                    for c in ctxs:
                        c.close()
                runs[which] += rs
                log(
                    f"  {n} at once ({'warm profiles' if warm else 'fresh profiles'}), {which} {i + 1}/{rounds}: "
                    f"chromium {cpu:.2f} CPU-s/load, tiles "
                    + ", ".join(f"{r['tiles_ms']:.0f}" for r in rs)
                    + " ms; interactive "
                    + ", ".join(f"{r.get('interactive_ms') or float('nan'):.0f}" for r in rs)
                )
                time.sleep(gap)
        for pairs in warmed.values():
            for c, _ in pairs:
                c.close()
                self.profiles.remove(c)
        return {w: self.summary(rs) for w, rs in runs.items()}

    def among_light(self, rounds: int, n: int, gap: float, place: str = "last") -> dict:
        """One person's first visit in Chromium while ``n - 1`` other people open the page at the
        same moment, each signed in on their own. The others are light sessions: the server builds,
        serves and syncs their sessions exactly as for a browser (page, websocket, document, then
        live updates), but their rendering, which their own computers would do, does not also run
        on the 2 cores this server has. So this is what one of ``n`` people at their own desks
        sees; :meth:`simultaneous` also charges the server's cores with ``n`` browsers.

        ``place``: where the browser's request falls among the others'. ``last`` (the default, and
        every figure before --among-place existed): the others' requests are started first, so the
        browser is about the last of ``n`` in the workers' queues. ``first``: the browser navigates
        first. ``alternate``: one round each; the two halves are also reported apart."""
        runs: dict = {w: [] for w in self.servers}
        others: dict = {w: [] for w in self.servers}
        for i in range(rounds):
            order = list(self.servers) if i % 2 == 0 else list(self.servers)[::-1]
            first = place == "first" or (place == "alternate" and i % 2 == 1)
            for which in order:
                base = self.servers[which].base
                ctx = self.new_context(token=self.sign_in())
                lights = [PanelLightSession(base, self.cookie_of(self.sign_in())) for _ in range(n - 1)]
                [page] = new_tabs([ctx])
                if first:
                    page.evaluate("(u) => { window.location.href = u; }", base + EXEC_PATH)
                futures = [asyncio.run_coroutine_threadsafe(s.open(), self.loop.loop) for s in lights]
                if not first:
                    page.evaluate("(u) => { window.location.href = u; }", base + EXEC_PATH)
                r = self.finish_visit(page)
                opened = [f.result(TIMEOUT_MS / 1000) for f in futures]
                for s in lights:
                    self.loop.run(s.close())
                ctx.close()
                r["workers"] = sorted({s.worker for s in lights if s.worker})
                r["browser_place"] = "first" if first else "last"
                runs[which].append(r)
                others[which] += opened
                log(
                    f"  1 browser ({r['browser_place']}) among {n} at once, {which} {i + 1}/{rounds}: "
                    f"tiles {r['tiles_ms']:.0f} ms, "
                    f"interactive {r.get('interactive_ms') or float('nan'):.0f} ms; the others' documents "
                    + ", ".join(f"{o * 1000:.0f}" for o in sorted(opened))
                    + " ms"
                )
                time.sleep(gap)
        out = {w: {**self.summary(rs), "others_document": pct(others[w], 2)} for w, rs in runs.items()}
        if place == "alternate":
            for w, rs in runs.items():
                for where in ("first", "last"):
                    out[w][f"browser_{where}"] = self.summary([r for r in rs if r["browser_place"] == where])
        return out

    def browser_cost(self, n: int, gap: float) -> dict:
        """One page at a time: Chromium's CPU from navigation until the page is usable, a first
        visit (new incognito context) and a returning executive's (its warm on-disk profile), per
        server, interleaved."""
        runs: dict = {(w, k): [] for w in self.servers for k in ("first_visit", "returning_profile")}
        warmed = {w: self.warm_profile(w) for w in self.servers}
        for i in range(n):
            order = list(self.servers) if i % 2 == 0 else list(self.servers)[::-1]
            for which in order:
                for kind in ("first_visit", "returning_profile"):
                    if kind == "first_visit":
                        ctx, root = self.new_context(cookie=True), self.browser_root
                    else:
                        ctx, root = warmed[which]
                    [tab] = new_tabs([ctx])
                    c0 = tree_cpu(root)  # the visit's own CPU, from a started tab
                    page = self.start_visit(ctx, self.servers[which].base, tab)
                    r = self.finish_visit(page, close=False)
                    r["chromium_cpu_s"] = tree_cpu(root) - c0
                    page.close()
                    if kind == "first_visit":
                        ctx.close()
                    runs[(which, kind)].append(r)
                    log(
                        f"  one at a time, {which} {kind} {i + 1}/{n}: chromium {r['chromium_cpu_s']:.2f} CPU-s, "
                        f"scripts {r.get('script_bytes')} B ({r.get('script_transfer_bytes')} B over the network), "
                        f"interactive {r.get('interactive_ms') or float('nan'):.0f} ms"
                    )
                    time.sleep(gap)
        for c, _ in warmed.values():
            c.close()
            self.profiles.remove(c)
        out: dict = {}
        for (which, kind), rs in runs.items():
            out.setdefault(which, {})[kind] = self.summary(rs)
        return out

    def voila_visit(self, ctx, which: str) -> dict:
        """A Voila navigation, then until its server refilled the pool (both servers log to the same
        file; only the one just used refills)."""
        mark = self.pool_filled()
        r = self.first_widget(ctx, self.servers[which].base + VOILA_PATH)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 240 and self.pool_filled() <= mark:
            time.sleep(0.3)
        time.sleep(2)
        r["refill_s"] = time.monotonic() - t0
        return r

    def voila(self, n: int) -> dict:
        ctx = self.new_context(cookie=True)
        runs: dict = {w: [] for w in self.servers}
        for which in self.servers:  # the JupyterLab bundles into this profile's cache, once each
            self.voila_visit(ctx, which)
        for i in range(n):
            order = list(self.servers) if i % 2 == 0 else list(self.servers)[::-1]
            for which in order:
                r = self.voila_visit(ctx, which)
                runs[which].append(r)
                log(
                    f"  voila {which} {i + 1}/{n}: first number {r['first_number_s'] * 1000:.0f} ms, "
                    f"first widget {r['first_widget_s'] * 1000:.0f} ms"
                )
        ctx.close()
        return {
            w: {
                "first_number": pct([r["first_number_s"] for r in rs], 2),
                "first_widget": pct([r["first_widget_s"] for r in rs], 2),
                "table": pct([r["table_s"] for r in rs], 2),
            }
            for w, rs in runs.items()
        }

    def open_light_on_both(self, n: int) -> None:
        for srv in self.servers.values():
            for _ in range(n):
                s = PanelLightSession(srv.base, self.cookie_header)
                self.loop.run(s.open())
                self.light.append(s)

    def run(self) -> dict:
        a = self.args
        from kpi_lib import kpis

        self.region = kpis.dimension_values("region")[0]
        self.setup()
        res: dict = {}
        self.doc["results"] = res
        for srv in self.servers.values():  # each server's first session pays for its imports
            self.finish_visit(self.start_visit(self.ctx, srv.base))
        log(f"quiet: {a.navs} repeat + {a.cold_navs} first visits per server, interleaved")
        res["quiet"] = self.sequential("quiet", a.navs, a.cold_navs, a.quiet_gap)
        if a.cost_navs:
            log(f"quiet: Chromium's cost of one page, {a.cost_navs} first and returning visits per server")
            res["quiet_browser_cost"] = self.browser_cost(a.cost_navs, a.quiet_gap)
        log(f"quiet: {a.together} first visits at once, {a.rounds} rounds per server")
        res["quiet_together"] = self.simultaneous(a.rounds, a.together, a.quiet_gap)
        log(
            f"quiet: one browser among {a.together} people at once (the others light), {a.rounds * 2} rounds per server"
        )
        res["quiet_together_one_browser"] = self.among_light(
            a.rounds * 2, a.together, a.quiet_gap, a.among_place
        )
        log(f"quiet: {a.together} returning executives (warm profiles) at once, {a.rounds} rounds per server")
        res["quiet_together_warm_profiles"] = self.simultaneous(a.rounds, a.together, a.quiet_gap, warm=True)
        if a.voila_navs:
            log(f"Voila: {a.voila_navs} pre-heated navigations per server")
            res["voila_preheated"] = self.voila(a.voila_navs)
        self.start_sim()
        self.open_light_on_both(a.sessions)
        time.sleep(5)
        log(f"live ({a.sim_rate} orders/s), {a.sessions} other live sessions on each server")
        res["live_with_other_sessions"] = self.sequential("live", a.navs, a.cold_navs, a.gap)
        res["live_light_sessions"] = self.light_status()
        self.close_light()
        res["simulator"] = self.stop_sim()
        return res

    def close(self) -> None:
        for ctx in getattr(self, "profiles", []):
            try:
                ctx.close()
            except Exception:  # noqa: BLE001
                pass
        for srv in getattr(self, "servers", {}).values():
            if srv is not self.serve:
                try:
                    srv.stop()
                except Exception as exc:  # noqa: BLE001
                    log(f"closing the baseline server: {exc}")
        super().close()


def _at(res: dict, *path):
    for k in path:
        res = (res or {}).get(k)
    return res


def _bar(value, limit) -> dict:
    return {"value_ms": value, "bar_ms": limit, "met": value is not None and value <= limit}


def page_bars(res: dict, which: str = "new") -> dict:
    """Issue 18's bars for one server of a ``--baseline`` or ``--usable`` run."""

    p, bar = functools.partial(_at, res), _bar
    return {
        "usable alone, repeat visit p50": bar(
            p("quiet", which, "repeat_visit", "interactive", "p50_ms"), 1200
        ),
        "usable alone, first visit p50": bar(p("quiet", which, "first_visit", "interactive", "p50_ms"), 1200),
        "usable with other live sessions, repeat visit p50": bar(
            p("live_with_other_sessions", which, "repeat_visit", "interactive", "p50_ms"), 1800
        ),
        "usable with other live sessions, first visit p50": bar(
            p("live_with_other_sessions", which, "first_visit", "interactive", "p50_ms"), 1800
        ),
        "five at once: one browser among five people p50": bar(
            p("quiet_together_one_browser", which, "interactive", "p50_ms"), 1500
        ),
        "five at once: five Chromiums on the server's cores p50": bar(
            p("quiet_together", which, "interactive", "p50_ms"), 1500
        ),
        "Voila first number, pre-heated p50": bar(
            p("voila_preheated", which, "first_number", "p50_ms"), 1500
        ),
    }


def bars(res: dict) -> dict:
    def p(path: list[str]):
        return _at(res, *path)

    bar = _bar
    return {
        "exec_tiles_p50_1_session (live, repeat visit)": bar(
            p(["exec_live_1_session", "repeat_visit", "tiles", "p50_ms"]), 1000
        ),
        "exec_tiles_p50_1_session (live, first visit)": bar(
            p(["exec_live_1_session", "first_visit", "tiles", "p50_ms"]), 1000
        ),
        "exec_tiles_p50_10_other_sessions (repeat visit)": bar(
            p(["exec_live_10_other_sessions", "repeat_visit", "tiles", "p50_ms"]), 1000
        ),
        "exec_tiles_p50_10_other_sessions (first visit)": bar(
            p(["exec_live_10_other_sessions", "first_visit", "tiles", "p50_ms"]), 1000
        ),
        "voila_first_widget_p50_preheated (front door)": bar(
            p(["voila_revenue_explorer", "preheated_front_door", "first_widget", "p50_ms"]), 2000
        ),
        "freshness_p95 (1 session)": bar(
            p(["freshness_1_session", "ingest_to_visible_in_page", "p95_ms"]), 1000
        ),
        "freshness_p95 (11 sessions)": bar(
            p(["freshness_11_sessions", "ingest_to_visible_in_page", "p95_ms"]), 1000
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="1 M lines, fewer repeats, short gaps (a few minutes)"
    )
    ap.add_argument("--lines", type=int, help="order lines (default 10 M; --quick 1 M)")
    ap.add_argument("--reuse", action="store_true", help="keep an existing clone warehouse-dash-N")
    ap.add_argument("--home", type=Path, help="the clone (default benchmarks/results/warehouse-dash-N)")
    ap.add_argument("--source", type=Path, help="warehouse to clone (default benchmarks/results/warehouse-N)")
    ap.add_argument("--navs", type=int, help="repeat-visit navigations per phase (default 10; quick 5)")
    ap.add_argument("--cold-navs", type=int, help="first-visit navigations per phase (default 5; quick 2)")
    ap.add_argument(
        "--gap",
        type=float,
        help=f"s between navigations under live data (default {BOKEH_CLEANUP_S}: "
        "the previous page's session is gone; quick 5)",
    )
    ap.add_argument("--quiet-gap", type=float, default=1.0)
    ap.add_argument("--sessions", type=int, default=10, help="other sessions held by the light client")
    ap.add_argument("--injections", type=int, help="freshness markers per phase (default 20; quick 10)")
    ap.add_argument("--marker", type=float, default=1_000_000.0, help="revenue of each marker order")
    ap.add_argument("--sim-rate", type=float, default=50.0, help="simulator orders/s")
    ap.add_argument(
        "--voila-navs",
        type=int,
        help="Voila navigations per mode (default 10; quick 4; with --baseline 0 skips Voila)",
    )
    ap.add_argument("--voila-pool", type=int, default=2)
    ap.add_argument(
        "--panel-procs", type=int, default=0, help="Panel workers (default 0: kpi serve's own, one per core)"
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="A/B (issue 18): also serve this checkout's code (e.g. a worktree of the commit before) and "
        "interleave visits; measures tiles and the usable page, 5 first visits at once, Voila pre-heated",
    )
    ap.add_argument(
        "--baseline-panel-procs",
        type=int,
        help="with --baseline: the baseline's Panel workers (default --panel-procs), e.g. its own default",
    )
    ap.add_argument(
        "--usable",
        action="store_true",
        help="issue 18's usable-page phases (as with --baseline) on this checkout's server alone: the bars "
        "judged with no second server on the machine (--sessions live sessions are then all its own)",
    )
    ap.add_argument(
        "--browser-core",
        type=int,
        help="run Chromium on this core alone and the servers on the others, as when the browser is on "
        "the executive's own computer (by default they share every core of this one machine)",
    )
    ap.add_argument(
        "--tab-start",
        choices=("before", "overlap"),
        default="before",
        help="before: each visit's new tab is started (Chromium quiet) before it is timed, as a person's "
        "browser has; overlap: navigate as the tab is created, its start-up (~0.65 CPU-s) inside the "
        "timed visit, as every figure before 2026-12-05 19:30 UTC",
    )
    ap.add_argument("--together", type=int, default=5, help="with --baseline: first visits started at once")
    ap.add_argument(
        "--among-place",
        choices=("last", "first", "alternate"),
        default="last",
        help="one browser among --together people: its request after the others' (default, as every "
        "earlier figure), before them, or alternately (each half also reported apart)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="with --baseline: rounds of --together visits")
    ap.add_argument(
        "--cost-navs",
        type=int,
        default=5,
        help="with --baseline: one-at-a-time visits measuring Chromium's CPU",
    )
    args = ap.parse_args()
    # a run stopped with kill still stops what it started (the servers, the simulator): `finally` below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    global TAB_START
    TAB_START = args.tab_start
    if args.browser_core is not None:
        global BROWSER_CORES
        BROWSER_CORES = {args.browser_core}
        os.sched_setaffinity(0, os.sched_getaffinity(0) - BROWSER_CORES)  # the servers, started later
    q = args.quick
    args.lines = args.lines or (1_000_000 if q else 10_000_000)
    args.navs = args.navs or (5 if q else 10)
    args.cold_navs = args.cold_navs if args.cold_navs is not None else (2 if q else 5)
    args.gap = args.gap if args.gap is not None else (5.0 if q else float(BOKEH_CLEANUP_S))
    args.injections = args.injections or (10 if q else 20)
    args.voila_navs = args.voila_navs if args.voila_navs is not None else (4 if q else 10)
    home = (args.home or common.RESULTS / f"warehouse-dash-{args.lines}").resolve()
    source = (args.source or common.RESULTS / f"warehouse-{args.lines}").resolve()
    if home == source:
        raise SystemExit("--home must not be the source warehouse: this benchmark writes to its warehouse")

    with common.json_stdout() as emit:
        doc = {
            "benchmark": "dashboards",
            "machine": common.machine(),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
        bench = None
        try:
            doc["warehouse"] = ensure_warehouse(args.lines, home, source, args.reuse)
            doc["warehouse"]["postgres"] = common.server_version()
            bench = (PageAB if args.baseline or args.usable else Bench)(args, home)
            bench.doc = doc
            res = bench.run()
            if args.baseline or args.usable:
                doc["bars"] = page_bars(res)
            else:
                doc["bars"] = bars(res)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            doc["error"] = repr(exc)
        finally:
            if bench is not None:
                bench.close()
            common.stop_server()
            emit(common.finish(doc))


if __name__ == "__main__":
    main()
