"""Alerts from the live stream: an anomalous batch handed to `ingest` reaches the inbox by itself."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from kpi_lib import alerts, config, mail, stream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    assert f"Orders in {region} was" in msg.text and "% above the expected" in msg.text
    assert "live alert listener" in msg.text and "orders|minute|region=" in msg.text
    assert msg.inline, "the e-mail has no chart"
    assert latency < 30, f"the alert took {latency:.1f} s"
