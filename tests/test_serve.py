"""What `kpi serve` serves: every dashboard in dashboards/ with the title a person reads on the
landing page, and the Voila template with no link to a CDN. (The served pages themselves are
tested through a real `kpi serve` in tests/ui and tests/security.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import free_port, kpi
from pgnode import PgNode, wait_for, warehouse_on

from kpi_lib import serve
from kpi_lib.config import settings
from kpi_lib.ui.voila import TEMPLATE_NAME, voila_template


def test_every_dashboard_is_listed_with_its_title_and_address():
    found = {d.name: d for d in serve.discover()}
    assert {"executive", "revenue_explorer", "anomaly_review", "alert_rules"} <= set(found)
    assert found["executive"].kind == "panel" and found["executive"].url == "/panel/executive"
    explorer = found["revenue_explorer"]
    assert explorer.url == "/voila/voila/render/revenue_explorer.ipynb"
    first_cell = json.loads((settings().dashboards_dir / "revenue_explorer.ipynb").read_text())["cells"][0]
    assert explorer.title == "".join(first_cell["source"]).splitlines()[0].lstrip("# ").strip()
    assert all(d.title and d.description.endswith(".") for d in found.values())


def test_a_new_notebook_in_the_folder_is_a_new_dashboard(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Stock levels\n", "\n", "Units on hand. More."]}]}
    (tmp_path / "stock.ipynb").write_text(json.dumps(nb))
    (tmp_path / "margins.py").write_text('"""Margins: gross margin by category."""\n')
    listed = {d.name: (d.title, d.kind, d.description) for d in serve.discover(tmp_path)}
    assert listed == {
        "margins": ("Margins", "panel", "gross margin by category."),
        "stock": ("Stock levels", "voila", "Units on hand."),
    }


def test_the_voila_template_is_written_once_and_has_no_cdn(tmp_path):
    root = voila_template(tmp_path)
    folder = root / "voila" / "templates" / TEMPLATE_NAME
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["conf.json", "index.html.j2", "page.html"]
    assert json.loads((folder / "conf.json").read_text()) == {"base_template": "lab"}
    page = (folder / "page.html").read_text()
    assert "cdn" not in page.lower() and "{% block body %}" in page
    stamp = (folder / "page.html").stat().st_mtime_ns
    voila_template(tmp_path)  # unchanged files are left alone (a running Voila keeps reading them)
    assert (folder / "page.html").stat().st_mtime_ns == stamp


def test_voila_runs_behind_the_front_door_with_the_kpi_template():
    cmd = serve.voila_command(port=12345, pool=3)
    assert "--Voila.identity_provider_class=kpi_lib.web.voila_auth.FrontDoorIdentity" in cmd
    assert "--VoilaConfiguration.template=kpi" in cmd and "--pool_size=3" in cmd
    assert "--Voila.ip=127.0.0.1" in cmd  # never reachable except through the front door


# --- the fast path's mover runs in `kpi serve` (issue 17) ---------------------------------------------

AT = datetime(2024, 7, 8, 12, 0, tzinfo=UTC)  # pinned event times
KPI = str(Path(sys.executable).with_name("kpi"))


@pytest.fixture()
def private_serve(tmp_path):
    """A real `kpi serve` (with its mover) on a private warehouse, serving one small Panel page (the
    session's server runs without a mover, so the tests that land and move themselves are not raced);
    yields a connection to the warehouse (autocommit)."""
    from kpi_lib import auth

    node = PgNode(free_port()).init().start()
    proc = None
    try:
        with psycopg.connect(node.url(), autocommit=True) as admin:
            admin.execute("create database kpi")
        dashboards = tmp_path / "dashboards"
        dashboards.mkdir()
        (dashboards / "ping.py").write_text(
            '"""Ping: a page."""\nimport panel as pn\n\npn.panel("ok").servable()\n'
        )
        with warehouse_on(node.url("kpi"), tmp_path / "home", KPI_DASHBOARDS_DIR=str(dashboards)):
            auth.set_user("mover-test", "mover-password-123", ["executive"])
            port = free_port()
            log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [KPI, "serve", "--port", str(port), "--no-alerts", "--no-mail-sink"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

            def up() -> bool:
                if proc.poll() is not None:
                    pytest.fail(f"kpi serve exited ({proc.returncode}); see {log.name}")
                try:
                    return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200
                except OSError:
                    return False

            assert wait_for(up, timeout=240, every=0.5), "kpi serve did not come up within 240 s"
            with psycopg.connect(node.url("kpi"), autocommit=True) as conn:
                yield conn
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        node.remove()


def test_kpi_serve_moves_landed_events_to_gold_within_about_a_second(private_serve):
    """Events landed by the fast path (`kpi ingest --fast`, a consumer with fast=True) while
    `kpi serve` runs reach gold, and `kpis.query`, without anyone running `kpi move`."""
    from kpi_lib import kpis, stream
    from kpi_lib.stream.move import leader_status

    db = private_serve
    assert wait_for(lambda: leader_status(db), timeout=30), "kpi serve runs no mover"
    status = kpi("status").stdout
    assert "fast-path mover: running" in status
    region = f"Served {uuid.uuid4().hex[:8]}"
    took = []
    for burst in range(5):
        events = [
            {
                "event_id": f"s-{region}-{burst}-{i}",
                "order_id": f"S{region}{burst}-{i}",
                "ordered_at": (AT + timedelta(minutes=burst, seconds=i)).isoformat(),
                "region": region,
                "lines": [{"product_id": "P1", "quantity": 1, "unit_price": 4.0}],
            }
            for i in range(20)
        ]
        lander = stream.Lander("serve-test", interval_ms=3_600_000, mover=False)  # this process moves nothing
        for ev in events:
            lander.put(ev)
        assert lander.close().landed == 20  # acknowledged: in bronze
        t0 = time.monotonic()
        want = 20 * (burst + 1)
        assert wait_for(
            lambda w=want: (
                db.execute(
                    "select coalesce(sum(orders), 0) from gold.sales_hourly where region = %s", [region]
                ).fetchone()[0]
                == w
            ),
            timeout=30,
            every=0.01,
        ), "landed events did not reach gold"
        took.append(time.monotonic() - t0)
    took.sort()
    print(f"landed -> gold (s): {[round(t, 3) for t in took]}")  # noqa: T201 - the figure, for the report
    assert took[2] <= 1.0 and took[-1] <= 3.0, took  # median about a second at most, none far beyond
    res = kpis.query(
        "orders", "total", start=AT.date(), end=AT.date() + timedelta(days=1), where={"region": region}
    )
    assert res.value == 100
    assert db.execute("select count(*) from bronze.landings where moved_at is null").fetchone()[0] == 0


def test_free_port_keeps_to_kpi_port_range_and_never_hands_a_port_out_twice(monkeypatch):
    """People sharing a machine each keep to their own ports; a port handed out (and perhaps not
    bound yet) is not handed out again, nor `kpi serve`'s own."""
    from kpi_lib import serve

    monkeypatch.setenv("KPI_PORT_RANGE", "18190-18193")
    monkeypatch.setattr(serve, "HANDED_OUT", {18191})
    got = {serve.free_port() for _ in range(3)}
    assert got == {18190, 18192, 18193}
    with pytest.raises(RuntimeError, match="KPI_PORT_RANGE"):
        serve.free_port()


def test_a_second_instance_gets_an_inbox_of_its_own(monkeypatch):
    """Two `kpi serve` on one machine (or a test session beside a demo): the default SMTP port
    belongs to the first one's sink. The second takes a free port for its own sink, so its alert
    e-mails land in its own inbox; a port the user set that answers is their mail server."""
    import socket

    from kpi_lib import config
    from kpi_lib.serve import Server

    monkeypatch.delenv("SMTP_PORT")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    config.reset()
    default = config.settings().smtp_port
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", default))
        holder.listen()
    except OSError:  # something else on this machine holds it already: taken either way
        pass
    try:
        server = Server()
        assert server._claim_smtp_port()
        mine = config.settings().smtp_port
        assert mine != default and os.environ["SMTP_PORT"] == str(mine)
        monkeypatch.setenv("SMTP_PORT", str(default))  # set by the user, and it answers
        config.reset()
        assert not server._claim_smtp_port() and config.settings().smtp_port == default
    finally:
        holder.close()
        config.reset()
