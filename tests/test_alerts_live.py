"""Alerts from the live stream: an anomalous batch handed to `ingest` reaches the inbox by itself."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from conftest import free_port

from kpi_lib import alerts, config, mail, stream


def _orders(region: str, times: list[datetime], tag: str) -> list[dict]:
    return [
        {
            "event_id": f"live-{tag}-{i}",
            "order_id": f"LIVE{tag}{i}",
            "ordered_at": t.isoformat(),
            "customer_id": f"CL{tag}{i % 50}",
            "region": region,
            "channel": "Web",
            "lines": [{"product_id": "P1001", "category": "Books", "quantity": 1, "unit_price": 20.0}],
        }
        for i, t in enumerate(times)
    ]


def test_a_spike_ingested_now_is_emailed_by_the_stream_listener(demo, monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    config.reset()
    region = f"Live-{uuid.uuid4().hex[:6]}"  # a series of its own: nothing else alerts on it
    to = f"oncall-{uuid.uuid4().hex[:6]}@kpi.local"
    routes = {
        "defaults": {"recipients": ["nobody@kpi.local"], "min_severity": "high"},
        "routes": [{"kpi": "orders", "where": {"region": region}, "recipients": [to], "min_severity": "low"}],
    }
    now = datetime.now(UTC)
    start = (now - timedelta(minutes=90)).replace(second=0, microsecond=0)
    # an hour and a half of about 12 orders a minute (a Poisson stream, as real orders arrive), up
    # to now: the listener's baseline
    gaps = np.random.default_rng(12).exponential(5.0, 2000).cumsum()
    steady = [start + timedelta(seconds=float(g)) for g in gaps if g < (now - start).total_seconds()]
    stream.ingest(_orders(region, steady, "base" + region), source="test-live")
    stop = threading.Event()
    scans: list = []
    with mail.start_sink("127.0.0.1", port, tmp_path / "mail"):
        t = threading.Thread(
            target=alerts.listen,
            kwargs=dict(grains=("minute",), routes=routes, stop=stop, warmup_s=0, on_scan=scans.append),
            daemon=True,
        )
        t.start()
        try:
            deadline = time.time() + 60  # the listener imports the anomaly engine first (a few seconds)
            while not scans and time.time() < deadline:
                time.sleep(5.0)
                stream.ingest(
                    _orders(region, [datetime.now(UTC)], uuid.uuid4().hex[:8]), source="test-live"
                )  # the steady stream goes on (and makes it scan once before the spike)
            assert scans, "the listener never scanned"
            spike_at = datetime.now(UTC)
            burst = [spike_at - timedelta(milliseconds=10 * i) for i in range(400)]  # 33x the usual minute
            stream.ingest(_orders(region, burst, "spike" + region), source="test-live")
            deadline = time.time() + 60
            found = []
            while time.time() < deadline and not found:
                found = [m for m in mail.list_inbox(tmp_path / "mail") if to in ", ".join(m.to)]
                time.sleep(0.2)
            latency = time.time() - spike_at.timestamp()
        finally:
            stop.set()
            t.join(10)
    config.reset()
    assert found, (
        f"no alert e-mail within 60 s; scans: {[(s.series, s.incidents, s.new) for s in scans][-5:]}"
    )
    msg = mail.read_message(found[0].id, tmp_path / "mail")
    assert "Orders" in msg.subject and region in msg.subject
    assert f"Orders in {region} were" in msg.text and "% above the expected" in msg.text
    assert "live alert listener" in msg.text and "orders|minute|region=" in msg.text
    assert msg.inline, "the e-mail has no chart"
    assert latency < 30, f"the alert took {latency:.1f} s"


def test_the_listener_folds_a_busy_stream_into_paced_scans(demo, monkeypatch):
    """Ten batches a second must not mean ten scans a second: scans start at least a second apart
    (and far enough apart to use a quarter of a core, up to 5 s), and the last change is scanned."""
    real = alerts._listen_once
    starts: list[float] = []
    took: list[float] = []

    def timed(*args):
        starts.append(time.monotonic())
        try:
            return real(*args)
        finally:
            took.append(time.monotonic() - starts[-1])

    monkeypatch.setattr(alerts, "_listen_once", timed)
    region = f"Busy-{uuid.uuid4().hex[:6]}"
    stop = threading.Event()
    t = threading.Thread(
        target=alerts.listen, kwargs=dict(grains=("minute",), stop=stop, warmup_s=0), daemon=True
    )
    t.start()
    try:
        batches = 0
        end = time.monotonic() + 6
        while time.monotonic() < end:
            stream.ingest(_orders(region, [datetime.now(UTC)], uuid.uuid4().hex[:8]), source="test-busy")
            batches += 1
            time.sleep(0.1)
        last_batch = time.monotonic()
        deadline = last_batch + 30
        while time.monotonic() < deadline and not any(s > last_batch for s in starts):
            time.sleep(0.1)
    finally:
        stop.set()
        t.join(30)
    assert any(s > last_batch for s in starts), "the last batch was never scanned"
    assert 2 <= len(starts) < batches / 3, f"{len(starts)} scans for {batches} batches"
    for i in range(1, len(starts)):
        least = min(
            max(alerts.MIN_SCAN_INTERVAL_S, took[i - 1] / alerts.SCAN_CPU_SHARE), alerts.MAX_SCAN_INTERVAL_S
        )
        assert starts[i] - starts[i - 1] >= least - 0.01, (starts, took)
