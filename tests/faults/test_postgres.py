"""PostgreSQL restarted under a live stream, the alert listener and its e-mail.

A private server (tests/pgnode.py) is restarted while a producer keeps putting orders into a running
Ingestor and the alert listener watches the stream. Afterwards every order is in silver exactly
once, the listener has scanned again, and the alert about a spike before the restart was e-mailed
once, not again after the listener's catch-up scan.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from conftest import free_port
from pgnode import PgNode, wait_for, warehouse_on

from kpi_lib import alerts, mail, stream

pytestmark = pytest.mark.slow


def orders(region: str, times: list[datetime], tag: str) -> list[dict]:
    return [
        {
            "event_id": f"pg-{tag}-{i}",
            "order_id": f"PG{tag}{i}",
            "ordered_at": t.isoformat(),
            "customer_id": f"CP{i % 50}",
            "region": region,
            "channel": "Web",
            "lines": [{"product_id": "P1", "category": "Books", "quantity": 1, "unit_price": 20.0}],
        }
        for i, t in enumerate(times)
    ]


@pytest.fixture()
def primary(tmp_path):
    node = PgNode(free_port()).init().start()
    with psycopg.connect(node.url(), autocommit=True) as admin:
        admin.execute("create database kpi")
    yield node
    node.remove()


def test_postgres_restart_under_ingest_and_the_alert_listener(primary, tmp_path):
    smtp_port = free_port()
    region, other = f"Pg-{uuid.uuid4().hex[:6]}", f"Flow-{uuid.uuid4().hex[:6]}"
    to = f"oncall-{uuid.uuid4().hex[:6]}@kpi.local"
    routes = {
        "defaults": {"recipients": ["nobody@kpi.local"], "min_severity": "high"},
        "routes": [{"kpi": "orders", "where": {"region": region}, "recipients": [to], "min_severity": "low"}],
    }
    maildir = tmp_path / "mail"
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_TLS": "none"}
    with (
        warehouse_on(primary.url("kpi"), tmp_path / "home", **env),
        mail.start_sink("127.0.0.1", smtp_port, maildir),
    ):
        # the live alert listener needs a past to compare with: 90 minutes of ~12 orders a minute.
        # Relative to the wall clock on purpose (the listener scans the present), and safe at any
        # hour or date: only differences count, and the minute rules have no holiday calendar
        now = datetime.now(UTC)
        start = (now - timedelta(minutes=90)).replace(second=0, microsecond=0)
        gaps = np.random.default_rng(7).exponential(5.0, 2000).cumsum()
        steady = [start + timedelta(seconds=float(g)) for g in gaps if g < (now - start).total_seconds()]
        stream.ingest(orders(region, steady, "base"), source="fault-base")

        stop = threading.Event()
        scans: list[float] = []
        listener = threading.Thread(
            target=alerts.listen,
            kwargs=dict(
                grains=("minute",),
                routes=routes,
                stop=stop,
                warmup_s=0,
                on_scan=lambda _r: scans.append(time.time()),
            ),
            daemon=True,
        )
        # a producer that never stops putting orders (another region) into one long-lived Ingestor
        ing = stream.Ingestor("fault-flow", interval_ms=100)
        put: list[int] = []
        errors: list[BaseException] = []

        def produce() -> None:
            i = 0
            try:
                while not stop.is_set():
                    ing.put(orders(other, [datetime.now(UTC)], f"flow{i}")[0] | {"order_id": f"PGF{i}"})
                    put.append(i)
                    i += 1
                    time.sleep(0.01)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        producer = threading.Thread(target=produce, daemon=True)
        listener.start()
        producer.start()
        try:

            def alerts_to() -> int:
                return sum(1 for m in mail.list_inbox(maildir) if to in ", ".join(m.to))

            assert wait_for(lambda: scans, timeout=60), "the listener never scanned"
            spike_at = datetime.now(UTC)
            minute = spike_at.replace(second=0, microsecond=0)  # all in one minute: one clear spike
            burst = [max(minute, spike_at - timedelta(milliseconds=10 * i)) for i in range(400)]
            stream.ingest(orders(region, burst, "spike"), source="fault-spike")
            assert wait_for(lambda: alerts_to() == 1, timeout=60), "the spike was not e-mailed"
            before = len(put)

            primary.restart()  # clients are cut off; the producer keeps putting
            restarted = time.time()

            # the listener reconnects and scans again (catch-up), the stream goes on
            assert wait_for(lambda: scans[-1] > restarted + 1, timeout=60), "no scan after the restart"
            assert wait_for(lambda: len(put) > before + 200, timeout=30)
        finally:
            stop.set()
            producer.join(10)
            listener.join(30)
        assert not errors, errors
        total = ing.close()
        with psycopg.connect(primary.url("kpi")) as conn:
            landed, distinct = conn.execute(
                "select count(*), count(distinct order_id) from silver.orders where region = %s", [other]
            ).fetchone()
            gold = conn.execute(
                "select sum(orders) from gold.sales_hourly where region = %s", [other]
            ).fetchone()[0]
        assert landed == distinct == len(put), (landed, distinct, len(put), total)
        assert total.loaded == len(put)
        assert gold == len(put)  # the incremental gold counted each order once
        time.sleep(1.0)
        assert alerts_to() == 1, "the same alert was e-mailed again after the restart"
