"""The executive page of a `kpi serve` whose KPI reads go to a real streaming replica.

A private primary with a small demo business and a ``pg_basebackup -R`` replica of it (tests/pgnode.py);
the server reads from the replica. An order ingested on the primary appears on the open page without
a reload; with the replica stopped, the next order still appears (the primary answers), no error;
after the primary restarts under the open page, the next order appears too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import urlopen

import psycopg
import pytest
from conftest import free_port
from pgnode import PgNode, wait_for, warehouse_on

from kpi_lib import auth, kpis, stream

from .conftest import PASSWORD, USER, login
from .test_executive import live_page, tile_full_value

pytestmark = [pytest.mark.ui, pytest.mark.slow]
TIMEOUT = 90_000


def orders_now() -> str:
    today = kpis.local_now().date()
    r = kpis.query("orders", "total", start=today - timedelta(days=29), end=today + timedelta(days=1))
    return kpis.get("orders").format_value(r.value)


def one_order(tag: str) -> None:
    at = datetime.now(UTC) - timedelta(seconds=20)
    ev = {
        "event_id": f"rp-{tag}-{at.timestamp()}",
        "order_id": f"RP{tag}{at.timestamp()}",
        "ordered_at": at.isoformat(),
        "customer_id": "CRP1",
        "region": "Europe",
        "channel": "Web",
        "lines": [{"product_id": "P1001", "quantity": 1, "unit_price": 99.0}],
    }
    assert stream.ingest([ev], source="replica-page").loaded == 1


def replica_readers(replica: PgNode) -> int:
    """Connections on the replica from other processes' replica readers (the server's)."""
    with psycopg.connect(replica.url("kpi")) as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where application_name like 'kpi_lib replica reader%%'"
            " and application_name <> %s",
            [f"kpi_lib replica reader {os.getpid()}"],
        ).fetchone()[0]


def test_the_page_served_from_a_replica_shows_new_orders_through_replica_loss_and_primary_restart(
    browser, tmp_path
):
    primary = PgNode(free_port()).init().start()
    replica = PgNode(free_port())
    proc = None
    try:
        with psycopg.connect(primary.url(), autocommit=True) as admin:
            admin.execute("create database kpi")
        home = tmp_path / "home"
        home.mkdir()
        env = {
            "DATABASE_REPLICA_URL": f"postgresql://postgres@127.0.0.1:{replica.port}/kpi",
            "KPI_REPLICA_RETRY_S": "1",
        }
        with warehouse_on(primary.url("kpi"), home, **env):
            from kpi_lib.demo import load_demo

            load_demo(lines=4_000, days=30, seed=5)
            auth.set_user(USER, PASSWORD, ["executive"], name="UI Executive")
            replica.replica_of(primary).start()
            port = free_port()
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("kpi")), "serve", "--port", str(port), "--no-alerts"]
                + ["--no-mail-sink", "--voila-pool", "1"],
                stdout=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ},
            )
            base = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return urlopen(base + "/healthz", timeout=2).status == 200
                except OSError:
                    return False

            assert wait_for(up, timeout=180, every=0.5), (tmp_path / "serve.log").read_text()[-2000:]
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            login(page, base, "/panel/executive")
            live_page(page)
            assert tile_full_value(page, "orders") == orders_now()
            assert replica_readers(replica) >= 1, "the server did not read from the replica"

            one_order("a")
            want = orders_now()
            assert wait_for(lambda: tile_full_value(page, "orders") == want, timeout=30), want

            replica.stop()  # the page keeps working: its reads go to the primary
            one_order("b")
            want = orders_now()
            assert wait_for(lambda: tile_full_value(page, "orders") == want, timeout=30), want
            assert page.get_by_text("error", exact=False).count() == 0

            # the primary restarted under the open page: the server's listener and pools reconnect,
            # and the next order shows up without a reload
            primary.restart()
            one_order("c")
            want = orders_now()
            assert wait_for(lambda: tile_full_value(page, "orders") == want, timeout=45), want
            context.close()
    finally:
        if proc is not None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        replica.remove()
        primary.remove()
