"""Email throughput: the outbox (enqueue + deliver_pending, 1 and 2 workers) against sending directly.

    .venv/bin/python benchmarks/bench_alerts.py [--messages 300] [--home benchmarks/results/alerts-home]

The messages look like alert emails: HTML with one inline chart (~20 kB PNG), a text part and a small
CSV. They go over real SMTP to the aiosmtpd sink running in a separate process, and every scenario
checks that exactly that many .eml files arrived. Scenarios, in one run on the same machine:

* ``direct_connect_per_message``: ``smtplib`` connect, send, quit per message (the naive job code);
* ``direct_one_connection``: one SMTP connection for all messages (the fastest possible, no record);
* ``outbox_1_worker``: ``enqueue`` every message (one transaction each, parts as bytea), then
  ``deliver_pending`` until none are due: the figure that counts end to end; enqueue and deliver are
  also reported separately;
* ``outbox_2_workers``: the same with two threads draining the queue (``FOR UPDATE SKIP LOCKED``).

Alert latency (anomalous event ingested -> email in the inbox, bar p95 <= 10 s): a demo warehouse
with stream history, the simulator and ``kpi alerts listen`` in their own processes, then
``--injections`` surges, each on a region of its own, timed from the ``ingest`` call to the ``.eml``
file in the sink's maildir; ``--repeats`` re-arm checks resolve an incident and surge again. See
benchmarks/README.md, "bench_alerts.py".
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, finish, json_stdout, log, machine, pct, server_version, stop_server, use_home  # noqa: E402

from kpi_lib.serve import free_port  # noqa: E402


def start_sink(port: int, maildir: Path) -> subprocess.Popen:
    """The sink in its own process, so its work does not share our GIL."""
    code = f"from kpi_lib.mail import run_sink; run_sink('127.0.0.1', {port}, {str(maildir)!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the SMTP sink did not start")


def wait_files(maildir: Path, n: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(list(maildir.glob("*.eml")))
        if count >= n:
            return count
        time.sleep(0.05)
    return len(list(maildir.glob("*.eml")))


def make_emails(n: int, tag: str):
    import pandas as pd
    from matplotlib.figure import Figure

    from kpi_lib import mail

    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(range(200), [50 + (i % 24) for i in range(200)])
    chart = mail.figure_part(fig, "incident")
    rows = pd.DataFrame({"id": range(5), "kpi": "orders", "value": [1.5] * 5})
    csv = mail.csv_part(rows, "incidents.csv")
    return [
        mail.Email(
            f"[KPI alert] bench {tag} #{i}",
            ["ops@bench.local"],
            f"Orders in Europe were 94% below expected (message {i}).",
            html=f'<h1>Incident {i}</h1><p>Orders in Europe −94%</p><img src="cid:{chart.content_id}">',
            inline=[chart],
            attachments=[csv],
            kind="alert",
        )
        for i in range(n)
    ], len(chart.data)


def scenario(name: str, n: int, maildir: Path, fn) -> dict:
    before = len(list(maildir.glob("*.eml")))
    t0 = time.perf_counter()
    extra = fn() or {}
    arrived = wait_files(maildir, before + n) - before
    seconds = time.perf_counter() - t0
    log(f"{name}: {n} messages in {seconds:.2f} s ({n / seconds:.0f}/s), {arrived} arrived")
    return {
        "messages": n,
        "arrived": arrived,
        "seconds": round(seconds, 3),
        "messages_per_s": round(n / seconds, 1),
        **extra,
    }


# --- alert latency: anomalous batch ingested -> e-mail in the inbox ---------------------------------

SIMULATOR = """
import json, sys, threading
sys.path.insert(0, {root!r})
from kpi_lib.demo import simulate
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
s = simulate(rate={rate}, duration={max_s}, stop=stop)
print(json.dumps({{"orders": s.orders, "seconds": round(s.seconds, 1)}}), flush=True)
"""


def listener_child(routes_path: str, events_path: str) -> None:
    """``bench_alerts.py _listener ROUTES.json EVENTS.jsonl``: ``alerts.listen`` as ``kpi alerts listen``
    runs it (minute and hour grains), with the bench's routes and ``warmup_s=0``, until stdin closes.

    Timers are wrapped around ``anomaly.scan.scan``, ``alerts.notify_new_incidents``,
    ``mail.enqueue`` and ``mail.deliver_pending`` (the same functions run; only their start and end
    times are written to EVENTS.jsonl), and every ``kpi_changed`` notification is logged with the
    time this process received it."""
    import json
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    import kpi_lib.anomaly.scan  # noqa: F401
    from kpi_lib import alerts, mail, stream

    scan_mod = sys.modules["kpi_lib.anomaly.scan"]
    out = open(events_path, "a", buffering=1)  # noqa: SIM115
    lock = threading.Lock()

    def rec(**kw) -> None:
        kw.setdefault("t", time.time())
        with lock:
            out.write(json.dumps(kw, default=str) + "\n")

    orig_scan, orig_notify = scan_mod.scan, alerts.notify_new_incidents
    orig_enqueue, orig_deliver = mail.enqueue, mail.deliver_pending

    def scan(*a, **k):
        t0 = time.time()
        res = orig_scan(*a, **k)
        rec(
            ev="scan",
            t0=t0,
            grains=list(k.get("grains") or ()),
            series=res.series,
            incidents=res.incidents,
            new_ids=res.new_ids,
            updated=res.updated,
            errors=res.errors[:3],
        )
        return res

    def notify(*a, **k):
        t0 = time.time()
        r = orig_notify(*a, **k)
        rec(
            ev="notify",
            t0=t0,
            suppressed=len(r.suppressed),
            emails=[
                {"outbox_id": e["outbox_id"], "recipients": e["recipients"], "incidents": e["incidents"]}
                for e in r.emails
            ],
        )
        return r

    def enqueue(*a, **k):
        t0 = time.time()
        oid = orig_enqueue(*a, **k)
        rec(ev="enqueue", t0=t0, outbox_id=oid)
        return oid

    def deliver(*a, **k):
        t0 = time.time()
        r = orig_deliver(*a, **k)
        rec(ev="deliver", t0=t0, sent=r.sent, errors=r.errors)
        return r

    scan_mod.scan, alerts.notify_new_incidents = scan, notify
    mail.enqueue, mail.deliver_pending = enqueue, deliver
    stream.subscribe(lambda c: rec(ev="change", t=c.received_at, version=c.version, source=c.source))
    with open(routes_path) as f:
        routes = json.load(f)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    rec(ev="start")
    alerts.listen(grains=("minute", "hour"), routes=routes, stop=stop, warmup_s=0)
    rec(ev="stop")


_INGEST = threading.Lock()  # the bench's own writes go one at a time (they never deadlock each other)


def _orders(region: str, times, tag: str, product: dict, customers: str) -> list[dict]:
    """Small Web orders of one demo product in a bench region; customer ids ``<customers>0..49``
    (each writer has its own, so concurrent upserts of silver.customers never meet)."""
    return [
        {
            "event_id": f"bench-{tag}-{k}",
            "order_id": f"BN{tag}{k}",
            "ordered_at": t.isoformat(),
            "customer_id": f"{customers}{k % 50}",
            "region": region,
            "channel": "Web",
            "lines": [{**product, "quantity": 1}],
        }
        for k, t in enumerate(times)
    ]


def _ingest(events: list[dict], source: str):
    from kpi_lib import stream

    with _INGEST:
        return stream.ingest(events, source=source)


class Baseline(threading.Thread):
    """Steady Poisson orders (``per_min`` a minute) for every active bench region, fed every
    ``every`` seconds, so a region's minute series is steady before and after its surge. ``activate``
    first backfills ``history_min`` minutes of it (the listener's minute rules read 6 h of history:
    a series that began inside that window would carry its own start-up jump in the rules' history)."""

    def __init__(self, per_min: float, product: dict, every: float = 5.0) -> None:
        super().__init__(name="bench-baseline", daemon=True)
        import numpy as np

        self.per_min, self.product, self.every = per_min, product, every
        self.rng = np.random.default_rng(11)
        self.lock = threading.Lock()
        self.active: dict = {}  # region -> fed until (datetime, UTC)
        self.stop_ev = threading.Event()
        self.orders = 0
        self.errors: list[str] = []
        self.n = 0

    def _times(self, start, end) -> list:
        from datetime import timedelta

        secs = (end - start).total_seconds()
        k = int(self.rng.poisson(self.per_min / 60 * max(secs, 0)))
        return sorted(start + timedelta(seconds=float(x)) for x in self.rng.random(k) * secs)

    def events(self, region, start, end) -> list[dict]:
        self.n += 1
        tag = f"{abs(hash(region)) % 10**6}x{self.n}x{int(end.timestamp() * 1000)}"
        return _orders(region, self._times(start, end), tag, self.product, f"CBt{abs(hash(region)) % 10**6}x")

    def activate(self, region: str, history_min: float, until=None) -> int:
        """Backfill ``history_min`` minutes up to now (or ``until``), then keep feeding it."""
        from datetime import UTC, datetime, timedelta

        with _INGEST:
            now = until or datetime.now(UTC)
            with self.lock:
                evs = self.events(region, now - timedelta(minutes=history_min), now) if history_min else []
                self.active[region] = now
            if evs:
                from kpi_lib import stream

                stream.ingest(evs, source="bench-baseline")
        self.orders += len(evs)
        return len(evs)

    def deactivate(self, region: str) -> None:
        """Stop feeding ``region`` and drop its minute rows, so later scans no longer carry it (one
        bench region at a time keeps the number of scanned series that of a real business)."""
        from kpi_lib import warehouse

        with _INGEST:
            with self.lock:
                self.active.pop(region, None)
            with warehouse.connect_raw() as conn:
                conn.execute("delete from gold.sales_minute where region = %s", [region])
                conn.commit()

    def run(self) -> None:
        from datetime import UTC, datetime

        from kpi_lib import stream

        while not self.stop_ev.wait(self.every):
            with _INGEST:
                now = datetime.now(UTC)
                with self.lock:
                    evs = []
                    for region, last in self.active.items():
                        evs += self.events(region, last, now)
                        self.active[region] = now
                if evs:
                    try:
                        stream.ingest(evs, source="bench-baseline")
                        self.orders += len(evs)
                    except Exception as exc:  # keep feeding; report it
                        self.errors.append(str(exc)[:200])


class Inbox:
    """New .eml files in the sink's maildir, by envelope recipient (files are named <time_ns>-<id>)."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.seen: dict[str, tuple[int, str, str]] = {}  # name -> (time_ns, envelope-to, subject)

    def poll(self) -> None:
        for p in self.maildir.glob("*.eml"):
            if p.name in self.seen:
                continue
            head = p.read_bytes()[:4000].decode("utf-8", "replace")
            to = subj = ""
            for line in head.splitlines():
                if line.startswith("X-Envelope-To:"):
                    to = line.split(":", 1)[1].strip()
                elif line.startswith("Subject:") and not subj:
                    subj = line.split(":", 1)[1].strip()
                elif not line.strip():
                    break
            self.seen[p.name] = (int(p.name.split("-", 1)[0]), to, subj)

    def wait_for(self, rcpt: str, after_ns: int, timeout: float) -> tuple[float, str] | None:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            hits = sorted((ns, subj) for ns, to, subj in self.seen.values() if rcpt in to and ns >= after_ns)
            if hits:
                return hits[0][0] / 1e9, hits[0][1]
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def _read_events(path: Path) -> list[dict]:
    import json

    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _routes(regions: dict[str, str]) -> dict:
    """The project's routing file (production-like: ops gets every orders incident, low and up) plus
    one route per bench region to a recipient of its own."""
    import yaml

    from kpi_lib.alerts import default_routes

    routes = default_routes()
    doc = yaml.safe_load(routes.read_text()) if routes.is_file() else {}
    doc = doc or {"defaults": {"recipients": ["ops@kpi.local"], "min_severity": "medium"}}
    doc.setdefault("routes", [])
    doc["routes"] = list(doc["routes"]) + [
        {"kpi": "*", "where": {"region": region}, "recipients": [rcpt], "min_severity": "low"}
        for region, rcpt in regions.items()
    ]
    return doc


def _split(inj: dict, events: list[dict], db: dict) -> dict:
    """Where the time of one injection went, from the listener's event log and the database."""
    t0, rcpt = inj["t0"], inj["recipient"]
    row: dict = {"total": inj["inbox_t"] - t0}
    row["ingest_returned"] = inj["t_commit"] - t0
    change = next(
        (e for e in events if e["ev"] == "change" and e["version"] >= inj["version"] and e["t"] >= t0 - 0.05),
        None,
    )
    outbox = [o for o in db["outbox"] if rcpt in o["recipients"] and o["created_at"] >= t0 - 1]
    if not outbox:
        return row
    ob = min(outbox, key=lambda o: o["created_at"])
    row["outbox_id"] = ob["id"]
    note = next(
        (e for e in events if e["ev"] == "notify" and any(m["outbox_id"] == ob["id"] for m in e["emails"])),
        None,
    )
    incs = set()
    if note:
        incs = {i for m in note["emails"] if m["outbox_id"] == ob["id"] for i in m["incidents"]}
    found = [
        e
        for e in events
        if e["ev"] == "scan" and set(e["new_ids"]) & incs and e["t"] <= (note or {}).get("t0", 1e18)
    ]
    scan_ev = found[-1] if found else None
    enq = next((e for e in events if e["ev"] == "enqueue" and e["outbox_id"] == ob["id"]), None)
    dlv = next((e for e in events if e["ev"] == "deliver" and ob["id"] in e["sent"]), None)
    incidents = [a for a in db["incidents"] if a["id"] in incs]
    row["incidents"] = sorted(incs)
    row["kpis"] = sorted({a["kpi"] for a in incidents})
    if change:
        row["ingest_to_notification"] = change["t"] - t0
    if change and scan_ev:
        row["notification_to_scan_start"] = scan_ev["t0"] - change["t"]
        row["scan_seconds"] = scan_ev["t"] - scan_ev["t0"]
        row["notification_to_found"] = scan_ev["t"] - change["t"]
        row["scan_series"] = scan_ev["series"]
    if scan_ev and enq:
        row["found_to_queued"] = enq["t"] - scan_ev["t"]
        if note:
            row["notify_before_enqueue"] = enq["t0"] - note["t0"]  # routing query, charts, compose
    if enq and dlv:
        row["queued_to_deliver_start"] = dlv["t0"] - enq["t"]
        row["queued_to_inbox"] = inj["inbox_t"] - enq["t"]
        row["deliver_to_inbox"] = inj["inbox_t"] - dlv["t0"]
    if incidents:
        row["db_detected_at"] = min(a["detected_at"] for a in incidents) - t0
    row["db_outbox_created_at"] = ob["created_at"] - t0
    if ob["sent_at"] is not None:
        row["db_outbox_sent_at"] = ob["sent_at"] - t0
    return row


def _db_snapshot(since_ts: float, bench_prefix: str) -> dict:
    from datetime import UTC, datetime

    from psycopg.rows import dict_row

    from kpi_lib import warehouse

    since = datetime.fromtimestamp(since_ts, UTC)
    with warehouse.connect_raw() as conn, conn.cursor(row_factory=dict_row) as cur:
        incidents = cur.execute(
            "select id, series_key, kpi, grain, dimension, dim_value, severity, status, started_at, ended_at,"
            " detected_at, deviation_pct, value, expected, rule from ops.anomalies where detected_at >= %s"
            " order by id",
            [since],
        ).fetchall()
        outbox = cur.execute(
            "select id, recipients, subject, status, created_at, sent_at from ops.outbox where created_at >= %s"
            " order by id",
            [since],
        ).fetchall()
        notes = cur.execute(
            "select anomaly_id, recipient, outbox_id, notified_at from ops.alert_notifications"
            " where notified_at >= %s",
            [since],
        ).fetchall()
    for rows in (incidents, outbox, notes):
        for r in rows:
            for k, v in list(r.items()):
                if isinstance(v, datetime):
                    r[k] = v.timestamp()
    for a in incidents:
        a["bench"] = bool(a["dim_value"] and str(a["dim_value"]).startswith(bench_prefix))
    return {"incidents": incidents, "outbox": outbox, "notifications": notes}


def _stats(xs: list[float]) -> dict:
    d = pct([x for x in xs if x is not None])
    return {k: (round(v / 1000, 3) if k.endswith("_ms") else v) for k, v in d.items()}


def _in_seconds(d: dict) -> dict:
    return {k.replace("_ms", "_s"): v for k, v in d.items()}


def _history(biz, product: dict, start, end, rate: float, region0: str, per_min: float, path: Path) -> int:
    """The live stream's past, written as a flat order-lines Parquet file for ``kpi_lib.loader``: the
    simulator's orders (same generator, same rate) and the first bench region's steady baseline."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    orders, lines = [], []
    at = start
    while at < end:
        secs = min(60.0, (end - at).total_seconds())
        o, ln = biz.live_orders(at, secs, rate, rng, prefix="BF")
        orders.append(o)
        lines.append(ln)
        at += pd.Timedelta(seconds=secs)
    o, ln = pd.concat(orders, ignore_index=True), pd.concat(lines, ignore_index=True)
    flat = ln.merge(o, on="order_id")
    n = int(rng.poisson(per_min / 60 * (end - start).total_seconds()))
    ts = pd.to_datetime(
        np.sort(start.timestamp() + rng.random(n) * (end - start).total_seconds()), unit="s", utc=True
    )
    bench = pd.DataFrame(
        {
            "order_id": [f"BNH{i}" for i in range(n)],
            "ordered_at": ts,
            "customer_id": [f"CBh{i % 50}" for i in range(n)],
            "region": region0,
            "channel": "Web",
            "status": "completed",
            "line_no": 1,
            **product,
            "quantity": 1,
        }
    )
    flat = pd.concat([flat, bench[[c for c in flat.columns if c in bench.columns]]], ignore_index=True)
    flat["ordered_at"] = pd.to_datetime(flat["ordered_at"], utc=True)
    flat.to_parquet(path, index=False)
    return int(o["order_id"].nunique() + n)


def alert_latency(args) -> dict:
    """Anomalous batch handed to ``stream.ingest`` -> alert e-mail in the SMTP sink's maildir, with the
    simulator streaming and the listener running in their own processes (see the module docstring)."""
    import json
    import random
    from datetime import UTC, datetime, timedelta

    import numpy as np
    from common import ROOT, use_home

    from kpi_lib import alerts, config, demo, gold, loader, stream, warehouse

    out: dict = {"measured": True}
    home = use_home(args.live_home, fresh=True)
    gold.init()
    log(f"latency: loading the {args.base_lines:,}-line demo into {home}")
    t = time.perf_counter()
    demo.load_demo(args.base_lines, 730, 42)
    out["setup"] = {"base_lines": args.base_lines, "load_s": round(time.perf_counter() - t, 1)}
    port = free_port()
    os.environ.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TLS": "none"})
    config.reset()
    maildir = home / "mail"
    maildir.mkdir(exist_ok=True)
    inbox = Inbox(maildir)
    tag = uuid.uuid4().hex[:4]
    prefix = f"Bench {tag} "
    n_inj = args.injections
    regions = {f"{prefix}{i:02d}": f"inj-{tag}-{i:02d}@bench.local" for i in range(n_inj)}
    region0, rcpt0 = next(iter(regions.items()))  # also the re-arm checks' region
    routes_path = home / "bench-routes.json"
    routes_path.write_text(json.dumps(_routes(regions), indent=1))
    with warehouse.connect_raw(autocommit=True) as conn:
        pid, pname, cat, cost = conn.execute(
            "select product_id, product_name, category, unit_cost from silver.products order by product_id limit 1"
        ).fetchone()
    product = {
        "product_id": pid,
        "product_name": pname,
        "category": cat,
        "unit_price": 20.0,
        "discount": 0.0,
        "unit_cost": float(cost) if cost is not None else None,
    }
    # the live stream's past: the simulator has been running for hours (the minute rules read 6 h)
    t = time.perf_counter()
    biz = demo.business_for_live()
    end = datetime.now(UTC)
    start = end - timedelta(minutes=args.history_min)
    path = home / "history.parquet"
    n_hist = _history(biz, product, start, end, args.rate, region0, args.baseline_per_min, path)
    t_gen = time.perf_counter() - t
    log(
        f"latency: {n_hist:,} orders of stream history ({args.history_min:.0f} min) generated in {t_gen:.0f} s; loading"
    )
    summary = loader.load_lines_file(path)
    log(
        f"latency: history loaded ({summary.loaded:,} lines, {summary.rejected} rejected) in {summary.seconds:.0f} s"
    )
    # catch up to now with the ingest path (nothing else writes yet), then start the simulator at once
    covered = end
    rng = np.random.default_rng(8)
    while (gap := (datetime.now(UTC) - covered).total_seconds()) > 2.0:
        now = datetime.now(UTC)
        o, ln = biz.live_orders(covered, (now - covered).total_seconds(), args.rate, rng, prefix="CU")
        _ingest(demo.to_events(o, ln, prefix="cu"), "backfill")
        covered = now
    out["setup"].update(
        {
            "rate_orders_per_s": args.rate,
            "history_min": args.history_min,
            "history_orders": n_hist,
            "history_generate_s": round(t_gen, 1),
            "history_load_s": round(summary.seconds, 1),
        }
    )

    sink = start_sink(port, maildir)
    procs: list[subprocess.Popen] = []
    sim_first: list = []
    sub = stream.subscribe(
        lambda c: sim_first.append(c) if c.source == "simulator" and not sim_first else None
    )
    baseline = Baseline(args.baseline_per_min, product)
    inj_rng = np.random.default_rng()
    events_path = home / "listener-events.jsonl"
    injections: list[dict] = []
    repeats: list[dict] = []
    t_listen = time.time()
    try:
        stream.wait_connected(10)
        sim = subprocess.Popen(
            [sys.executable, "-c", SIMULATOR.format(root=str(ROOT), rate=args.rate, max_s=14400)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(sim)
        baseline.activate(region0, 0, until=covered)  # its history is in the file; feed it from here on
        baseline.start()
        deadline = time.monotonic() + 120
        while not sim_first:
            if time.monotonic() > deadline or sim.poll() is not None:
                raise RuntimeError("the simulator did not produce a batch within 120 s")
            time.sleep(0.1)
        sub.close()
        out["setup"]["stream_gap_s"] = round(
            (datetime.fromisoformat(sim_first[0].touched_from) - covered).total_seconds() + gap, 1
        )
        log(
            f"latency: simulator at {args.rate:g} orders/s (gap after the history {out['setup']['stream_gap_s']} s)"
        )
        # the listener, as `kpi alerts listen` runs it (its own process), with the bench routes
        listen_log = open(home / "listener.log", "w")  # noqa: SIM115
        listener = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_listener", str(routes_path), str(events_path)],
            stdin=subprocess.PIPE,
            stdout=listen_log,
            stderr=listen_log,
            text=True,
        )
        procs.append(listener)
        t_listen = time.time()
        deadline = time.monotonic() + 180
        while sum(e["ev"] == "scan" for e in _read_events(events_path)) < 3:
            if time.monotonic() > deadline or listener.poll() is not None:
                raise RuntimeError(f"the listener did not scan within 180 s (see {home / 'listener.log'})")
            time.sleep(0.5)
        log(
            f"latency: listener scanning; watching {args.quiet_s:.0f} s of the steady stream before injecting"
        )
        time.sleep(args.quiet_s)

        def alive() -> None:
            for p, what in ((sim, "simulator"), (listener, "listener")):
                if p.poll() is not None:
                    raise RuntimeError(f"the {what} stopped (exit {p.returncode}); see {home}")

        def inject(region: str, rcpt: str, kind: str) -> dict:
            itag = uuid.uuid4().hex[:10]
            with _INGEST:
                now = datetime.now(UTC)
                times = sorted(now - timedelta(seconds=float(x)) for x in inj_rng.random(args.surge))
                burst = _orders(region, times, f"{kind}{itag}", product, f"CBi{itag}x")
                t0 = time.time()
                r = stream.ingest(burst, source="bench-inject")
                t_commit = time.time()
            inj = {
                "region": region,
                "recipient": rcpt,
                "kind": kind,
                "t0": t0,
                "t_commit": t_commit,
                "version": r.version,
                "orders": r.loaded,
            }
            got = inbox.wait_for(rcpt, int(t0 * 1e9), args.timeout)
            if got is None:
                inj["missed"] = True
                log(f"  {kind} {region}: no e-mail within {args.timeout:.0f} s")
            else:
                inj["inbox_t"], inj["subject"] = got
                log(f"  {kind} {region}: e-mail after {got[0] - t0:.2f} s ({got[1][:60]})")
            return inj

        def rearm() -> None:
            """Resolve region0's incidents once it has recovered, then surge it again."""
            with warehouse.connect_raw(autocommit=True) as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "select id from ops.anomalies where dim_value = %s and status <> 'resolved'",
                        [region0],
                    )
                ]
            for i in ids:
                alerts.resolve(i, "bench", "benchmark: re-arm check")
            time.sleep(random.uniform(args.gap_s, 2 * args.gap_s))
            rep = inject(region0, rcpt0, "repeat")
            rep["resolved_before"] = len(ids)
            repeats.append(rep)

        log(
            f"latency: {n_inj} surges of {args.surge} orders within a second, each on a region of its own "
            f"(usually {args.baseline_per_min:g} orders/min, {args.baseline_history_min:.0f} min of it backfilled); "
            f"{args.repeats} re-arm checks on {region0}"
        )
        last0 = 0.0
        for i, (region, rcpt) in enumerate(regions.items()):
            alive()
            if repeats.__len__() < args.repeats and last0 and time.time() - last0 >= args.rearm_after_s:
                rearm()
                last0 = repeats[-1]["t0"]
            if i:
                baseline.activate(region, args.baseline_history_min)
            time.sleep(random.uniform(args.gap_s, 2 * args.gap_s))  # a random phase against the scan cycle
            injections.append(inject(region, rcpt, "new"))
            if i:
                baseline.deactivate(region)
            else:
                last0 = injections[-1]["t0"]
        while len(repeats) < args.repeats:
            alive()
            wait = last0 + args.rearm_after_s - time.time()
            if wait > 0:
                log(f"latency: re-arm check {len(repeats) + 1} on {region0} in {wait:.0f} s")
                time.sleep(wait)
            rearm()
            last0 = repeats[-1]["t0"]
        alive()
        time.sleep(2)
    finally:
        baseline.stop_ev.set()
        for p in reversed(procs):
            try:
                so, _ = p.communicate(input="", timeout=60)
                if p is procs[0] and so and so.strip():
                    out["simulator"] = json.loads(so.strip().splitlines()[-1])
            except (subprocess.TimeoutExpired, ValueError):
                p.terminate()
                p.wait(10)
        baseline.join(10)
        stream._hub.stop()
        sink.terminate()
        sink.wait(10)

    events = _read_events(events_path)
    db = _db_snapshot(t_listen - 1, prefix)
    # --- figures ------------------------------------------------------------------------------
    found = [i for i in injections if not i.get("missed")]
    rows = [_split(i, events, db) for i in found]
    parts = (
        "ingest_returned",
        "ingest_to_notification",
        "notification_to_scan_start",
        "scan_seconds",
        "notification_to_found",
        "found_to_queued",
        "notify_before_enqueue",
        "queued_to_deliver_start",
        "queued_to_inbox",
        "db_detected_at",
        "db_outbox_created_at",
        "db_outbox_sent_at",
    )
    out["injections"] = len(injections)
    out["emailed"] = len(found)
    out["missed"] = len(injections) - len(found)
    out["latency_s"] = _in_seconds(_stats([r["total"] for r in rows]))
    out["split_s"] = {p: _in_seconds(_stats([r[p] for r in rows if p in r])) for p in parts}
    out["split_p50_s"] = {
        "ingest_to_notification": out["split_s"]["ingest_to_notification"].get("p50_s"),
        "notification_to_scan_found": out["split_s"]["notification_to_found"].get("p50_s"),
        "scan_to_email_queued": out["split_s"]["found_to_queued"].get("p50_s"),
        "queued_to_inbox": out["split_s"]["queued_to_inbox"].get("p50_s"),
        "total": out["latency_s"].get("p50_s"),
    }
    rep_rows = [_split(i, events, db) for i in repeats if not i.get("missed")]
    out["repeat_after_resolve"] = {
        "injections": len(repeats),
        "emailed": len(rep_rows),
        "latency_s": _in_seconds(_stats([r["total"] for r in rep_rows])),
    }
    # scans and notifications seen by the listener while it ran
    scans = [e for e in events if e["ev"] == "scan"]
    minute = [e for e in scans if e["grains"] == ["minute"]]
    notifies = [e for e in events if e["ev"] == "notify"]
    changes = [e for e in events if e["ev"] == "change"]
    span = (events[-1]["t"] - events[0]["t"]) if events else 0
    out["listener"] = {
        "seconds": round(span, 1),
        "minute_scans": len(minute),
        "minute_scan_s": _in_seconds(_stats([e["t"] - e["t0"] for e in minute])),
        "series_per_scan": [
            min((e["series"] for e in minute), default=0),
            max((e["series"] for e in minute), default=0),
        ],
        "hour_scans": sum(e["grains"] == ["hour"] for e in scans),
        "notifications_per_s": round(len(changes) / span, 1) if span else None,
        "notify_calls": len(notifies),
        "notify_s": _in_seconds(_stats([e["t"] - e["t0"] for e in notifies])),
        "emails_queued": sum(len(e["emails"]) for e in notifies),
        "scan_errors": sorted({x for e in scans for x in e.get("errors", [])})[:5],
    }
    # false alerts: incidents the steady streams raised (no anomaly was injected into them)
    bench_t0 = {i["region"]: i["t0"] for i in injections}
    noise = [a for a in db["incidents"] if not a["bench"]]
    pre = [
        a
        for a in db["incidents"]
        if a["bench"]
        and a["dim_value"] in bench_t0
        and a["started_at"] < (bench_t0[a["dim_value"]] // 60) * 60
    ]
    emailed_ids = {n["anomaly_id"] for n in db["notifications"]}
    emails_about_noise = {
        n["outbox_id"] for n in db["notifications"] if n["anomaly_id"] in {a["id"] for a in noise}
    }

    def brief(a: dict) -> dict:
        return {
            "id": a["id"],
            "series": a["series_key"],
            "severity": a["severity"],
            "rule": a["rule"],
            "started": datetime.fromtimestamp(a["started_at"], UTC).strftime("%H:%M"),
            "detected_after_listener_start_s": round(a["detected_at"] - t_listen, 1),
            "value": round(a["value"], 1) if a["value"] is not None else None,
            "expected": round(a["expected"], 1) if a["expected"] is not None else None,
            "deviation_pct": round(a["deviation_pct"], 1) if a["deviation_pct"] is not None else None,
            "emailed": a["id"] in emailed_ids,
        }

    out["false_alerts"] = {
        "on_simulator_series": len(noise),
        "on_simulator_series_emailed": sum(a["id"] in emailed_ids for a in noise),
        "emails_about_them": len(emails_about_noise),
        "on_bench_series_before_their_surge": len(pre),
        "minutes_watched": round((time.time() - t_listen) / 60, 1),
        "examples": [brief(a) for a in (noise + pre)[:12]],
    }
    bench_incs = [a for a in db["incidents"] if a["bench"]]
    out["bench_incidents"] = {
        "total": len(bench_incs),
        "by_kpi": {k: sum(a["kpi"] == k for a in bench_incs) for k in sorted({a["kpi"] for a in bench_incs})},
        "by_rule": {
            k: sum(a["rule"] == k for a in bench_incs) for k in sorted({str(a["rule"]) for a in bench_incs})
        },
    }
    out["per_injection"] = [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows + rep_rows
    ]
    out["missed_regions"] = [i["region"] for i in injections + repeats if i.get("missed")]
    out["bar_p95_le_10s"] = bool(found) and not out["missed"] and out["latency_s"]["p95_s"] <= 10.0
    out["baseline"] = {
        "per_min": args.baseline_per_min,
        "history_min": args.baseline_history_min,
        "orders": baseline.orders,
        "errors": baseline.errors[:3],
    }
    out["surge_orders"] = args.surge
    out["home"] = str(home)
    return out


def throughput(args) -> dict:
    """The outbox against sending directly (the scenarios in the module docstring)."""
    n = args.messages
    if True:
        use_home(args.home)
        from kpi_lib import config, gold, mail

        log(f"warehouse in {args.home}")
        gold.init()
        port = free_port()
        os.environ.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TLS": "none"})
        config.reset()
        maildir = Path(tempfile.mkdtemp(prefix="kpi_bench_mail_"))
        sink = start_sink(port, maildir)
        tag = uuid.uuid4().hex[:6]
        results: dict[str, dict] = {}
        try:
            emails, png_bytes = make_emails(n, tag)
            size = len(mail.compose(emails[0]).as_bytes())
            log(f"{n} messages of {size / 1024:.0f} kB each (chart {png_bytes / 1024:.0f} kB)")
            mail.send_now(emails[0])  # warm up: imports, first connection
            wait_files(maildir, 1)

            def direct_each():
                for e in emails:
                    mail.send_now(e)

            def direct_one():
                client = mail.smtp_client()
                try:
                    for e in emails:
                        mail.send_now(e, client)
                finally:
                    client.quit()

            def outbox(workers: int):
                def run():
                    t0 = time.perf_counter()
                    key = uuid.uuid4().hex
                    for i, e in enumerate(emails):
                        mail.enqueue(e, f"bench:{key}:{i}")
                    enq = time.perf_counter() - t0
                    sent: list[int] = []

                    def drain():
                        while True:
                            r = mail.deliver_pending(limit=50)
                            sent.extend(r.sent)
                            if r.claimed == 0:
                                return

                    t1 = time.perf_counter()
                    threads = [threading.Thread(target=drain) for _ in range(workers)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    dlv = time.perf_counter() - t1
                    return {
                        "enqueue_seconds": round(enq, 3),
                        "enqueue_per_s": round(n / enq, 1),
                        "deliver_seconds": round(dlv, 3),
                        "deliver_per_s": round(n / dlv, 1),
                        "sent_by_workers": len(sent),
                        "sent_twice": len(sent) - len(set(sent)),
                    }

                return run

            results["direct_connect_per_message"] = scenario(
                "direct, connect per message", n, maildir, direct_each
            )
            results["direct_one_connection"] = scenario("direct, one connection", n, maildir, direct_one)
            results["outbox_1_worker"] = scenario("outbox, 1 worker", n, maildir, outbox(1))
            results["outbox_2_workers"] = scenario("outbox, 2 workers", n, maildir, outbox(2))
        finally:
            sink.terminate()
            sink.wait(10)
        base = results["direct_one_connection"]["messages_per_s"]
        doc = {
            "message_bytes": size,
            "results": results,
            "outbox_vs_direct_one_connection": round(results["outbox_1_worker"]["messages_per_s"] / base, 2),
            "outbox_vs_direct_connect_per_message": round(
                results["outbox_1_worker"]["messages_per_s"]
                / results["direct_connect_per_message"]["messages_per_s"],
                2,
            ),
            "postgres": server_version(),
        }
        stop_server()
        return doc


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "_listener":
        listener_child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=300, help="throughput: messages per scenario")
    ap.add_argument("--home", type=Path, default=RESULTS / "alerts-home", help="throughput: warehouse")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="latency: 200 k-line base, 10 injections, 1 re-arm check; throughput: 100 messages",
    )
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument(
        "--live-home",
        type=Path,
        default=RESULTS / "alerts-live",
        help="latency: throw-away warehouse (recreated every run)",
    )
    ap.add_argument("--base-lines", type=int, default=1_000_000, help="latency: demo loaded first")
    ap.add_argument("--rate", type=float, default=20.0, help="latency: simulator orders/s")
    ap.add_argument(
        "--history-min",
        type=float,
        default=380.0,
        help="latency: minutes of simulator history backfilled before the listener starts",
    )
    ap.add_argument("--injections", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3, help="latency: re-arm checks (resolve, surge again)")
    ap.add_argument("--surge", type=int, default=120, help="latency: orders in one injected burst")
    ap.add_argument(
        "--baseline-per-min", type=float, default=12.0, help="latency: a bench region's usual orders/min"
    )
    ap.add_argument("--baseline-history-min", type=float, default=380.0)
    ap.add_argument(
        "--gap-s", type=float, default=4.0, help="latency: pause before an injection, GAP..2*GAP s"
    )
    ap.add_argument(
        "--quiet-s", type=float, default=60.0, help="latency: steady stream watched before injecting"
    )
    ap.add_argument(
        "--rearm-after-s",
        type=float,
        default=420.0,
        help="latency: a re-arm check waits this long after the region's first surge",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="latency: an injection without e-mail after this is missed",
    )
    args = ap.parse_args()
    if args.quick:
        args.messages = min(args.messages, 100)
        args.base_lines = min(args.base_lines, 200_000)
        args.injections = min(args.injections, 10)
        args.repeats = min(args.repeats, 1)
        args.quiet_s = min(args.quiet_s, 20.0)
        args.rearm_after_s = min(args.rearm_after_s, 300.0)

    with json_stdout() as emit:
        doc: dict = {"benchmark": "alerts", "machine": machine()}
        if not args.skip_throughput:
            doc["throughput"] = throughput(args)
            doc.update(
                {
                    k: doc["throughput"][k]
                    for k in (
                        "message_bytes",
                        "results",
                        "outbox_vs_direct_one_connection",
                        "outbox_vs_direct_connect_per_message",
                    )
                }
            )
        if not args.skip_latency:
            try:
                doc["alert_latency"] = alert_latency(args)
                doc["postgres"] = server_version()
            finally:
                stop_server()
        lat = doc.get("alert_latency") or {}
        doc["bars"] = {
            "alert_latency_p95_le_10s": lat.get("bar_p95_le_10s"),
            "alert_latency_p95_s": (lat.get("latency_s") or {}).get("p95_s"),
        }
        emit(finish(doc))


if __name__ == "__main__":
    main()
