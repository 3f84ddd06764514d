"""Finding 5 and the masking findings: each reader sees only what their roles allow.

The inbox, its attachments and the job reports are refused to a viewer when they hold a masked KPI;
a masked KPI's order never leaks; only analysts and above act on incidents."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
from conftest import free_port

from kpi_lib import alerts, auth, config, mail
from kpi_lib.config import settings
from kpi_lib.errors import AuthError
from kpi_lib.formats import spreadsheet_safe
from kpi_lib.reports import alert_email
from kpi_lib.ui.tiles import TileData, tile_html


@pytest.fixture()
def delivered(monkeypatch):
    """A real SMTP sink writing into the inbox folder the front door shows; returns send(email)."""
    port = free_port()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    config.reset()
    with mail.start_sink("127.0.0.1", port, settings().mail_dir):

        def send(email: mail.Email) -> str:
            before = {m.id for m in mail.list_inbox()}
            mail.send_now(email)
            new = [m for m in mail.list_inbox() if m.id not in before]
            assert len(new) == 1
            return new[0].id

        yield send
    config.reset()


def _alert(kpi: str, dimension: str | None = None, value: str | None = None) -> mail.Email:
    incident = {
        "id": 10_000 + int(uuid.uuid4().int % 1000),
        "kpi": kpi,
        "grain": "day",
        "dimension": dimension,
        "dim_value": value,
        "severity": "high",
        "status": "open",
        "started_at": pd.Timestamp("2026-11-20 10:00", tz="UTC"),
        "ended_at": None,
        "value": 10.0,
        "expected": 100.0,
        "lower_bound": 80.0,
        "upper_bound": 120.0,
        "deviation_pct": -90.0,
        "explanation": f"{kpi} dropped {uuid.uuid4().hex[:6]}",
        "rule": "test",
        "drivers": None,
        "series_key": f"{kpi}|day",
    }
    return alert_email.build_alert_email([incident], ["ops@example.com"], charts=None, max_charts=0)


def test_a_viewer_never_reads_an_alert_on_a_masked_kpi(server, client, delivered):
    mid = delivered(_alert("revenue"))  # revenue is sensitive: masked for viewers
    subject = mail.read_message(mid).subject
    viewer, executive = client("sec-viewer"), client("sec-exec")
    assert subject in executive.get("/inbox").text
    listing = viewer.get("/inbox")
    assert listing.status_code == 200 and subject not in listing.text
    assert "not shown" in listing.text
    assert viewer.get(f"/inbox/{mid}").status_code == 403
    attachment = mail.read_message(mid).attachments[0].filename
    assert viewer.get(f"/inbox/{mid}/{attachment}").status_code == 403
    assert executive.get(f"/inbox/{mid}/{attachment}").status_code == 200


def test_a_viewer_reads_an_alert_on_an_unmasked_kpi(server, client, delivered):
    mid = delivered(_alert("orders"))
    assert client("sec-viewer").get(f"/inbox/{mid}").status_code == 200


def test_a_scoped_manager_reads_their_regions_alerts_only(server, client, delivered):
    europe, asia = (
        delivered(_alert("orders", "region", "Europe")),
        delivered(_alert("orders", "region", "Asia Pacific")),
    )
    overall = delivered(_alert("orders"))
    manager = client("sec-europe")
    assert manager.get(f"/inbox/{europe}").status_code == 200
    assert manager.get(f"/inbox/{asia}").status_code == 403
    assert manager.get(f"/inbox/{overall}").status_code == 403  # every region's numbers


def test_a_message_without_a_date_is_listed(server, client):
    folder = settings().mail_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{9_000_000_000_000_000_000 + 7}-abcdef12.eml").write_bytes(
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: no date here\r\nX-KPI-Kpis: \r\n\r\nhello\r\n"
    )
    page = client("sec-viewer").get("/inbox")
    assert page.status_code == 200 and "no date here" in page.text


def test_job_reports_are_refused_to_roles_that_mask_kpis(server, client):
    run = settings().runs_dir / "daily_report" / f"20261120T060000-1-{uuid.uuid4().hex[:8]}"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<html><body>Revenue $1.2M</body></html>")
    path = f"/runs/daily_report/{run.name}/report.html"
    assert client("sec-viewer").get(path).status_code == 403
    assert client("sec-europe").get(path).status_code == 403  # every region's numbers
    ok = client("sec-exec").get(path)
    assert ok.status_code == 200 and "Revenue $1.2M" in ok.text


def test_only_analysts_and_above_act_on_incidents(demo, users, db):
    iid = db.execute(
        "insert into ops.anomalies (series_key, kpi, grain, started_at, peak_at, value, expected, severity,"
        " explanation, rule, status) values (%s, 'orders', 'day', now(), now(), 1, 2, 'low', 'x', 'test', 'open')"
        " returning id",
        [f"orders|day|sec-{uuid.uuid4().hex}"],
    ).fetchone()[0]
    with pytest.raises(AuthError, match="may not acknowledge"):
        alerts.acknowledge(iid, "sec-viewer", "mine now")
    assert db.execute("select status from ops.anomalies where id = %s", [iid]).fetchone()[0] == "open"
    assert alerts.acknowledge(iid, "sec-analyst", "looking")["status"] == "acknowledged"
    actions = db.execute(
        "select actor, action from ops.audit_log where target = %s order by id", [f"incident {iid}"]
    ).fetchall()
    assert actions == [("sec-viewer", "refused"), ("sec-analyst", "acknowledge")]
    alerts.resolve(iid, "sec-analyst", "test over")  # no open incident left for other tests' alerts


def test_a_masked_kpis_tile_shows_no_incident_badge(demo):
    from kpi_lib import kpis

    k = kpis.get("revenue")
    shown = tile_html(TileData(k, 1000.0, 900.0, [1.0, 2.0], 2, masked=False))
    masked = tile_html(TileData(k, 1000.0, 900.0, [1.0, 2.0], 2, masked=True))
    assert "2 open" in shown and "open" not in masked and "1,000" not in masked


def test_spreadsheet_cells_never_run_formulas():
    df = pd.DataFrame(
        {"region": ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "Europe"], "value": [1.0, -2.0, 3, 4, 5]}
    )
    safe = spreadsheet_safe(df)
    assert safe["region"].tolist() == ["'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd", "Europe"]
    assert safe["value"].tolist() == [1.0, -2.0, 3, 4, 5]  # numbers stay numbers


def test_private_files_are_owner_only(server, delivered):
    delivered(_alert("orders"))
    home = Path(os.environ["KPI_HOME"])
    for folder in (home / "mail", home / "logs"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    for f in [*(home / "mail").glob("*.eml"), *(home / "logs").glob("*.log")]:
        if not f.name.startswith("9000"):  # the hand-written test message above
            assert f.stat().st_mode & 0o077 == 0, f


def test_users_and_masking_defaults(demo):
    from kpi_lib import kpis

    assert {k.name for k in kpis.definitions().values() if k.sensitive} == {"revenue", "aov", "gross_margin"}
    viewer = auth.user("sec-viewer") if auth.exists("sec-viewer") else None
    if viewer is not None:
        assert viewer.is_masked("revenue") and not viewer.can_act


def test_alerts_to_a_scoped_users_address_carry_their_rows_only(demo, users, db):
    """Routing names addresses; when an address is a user's, their roles and rows decide too."""
    auth.set_user(
        "sec-emea-mail",
        "security-password-1",
        ["viewer"],
        scope={"region": ["Europe"]},
        email="emea-manager@example.com",
    )
    since = db.execute("select now() + interval '1 second'").fetchone()[0]
    tag = uuid.uuid4().hex[:6]
    rows = [
        ("region", "Europe", "orders"),
        ("region", "Asia Pacific", "orders"),
        (None, None, "orders"),
        ("region", "Europe", "revenue"),
    ]  # revenue is masked for viewers
    ids = []
    for dim, value, kpi in rows:
        key = f"{kpi}|hour|{dim}={value}|{tag}" if dim else f"{kpi}|hour|{tag}"
        ids.append(
            db.execute(
                "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, peak_at,"
                " value, expected, severity, explanation, rule, status) values (%s, %s, 'hour', %s, %s,"
                " %s + interval '1 minute', %s + interval '1 minute', 1, 9, 'high', 'x', 'test', 'open') returning id",
                [key, kpi, dim, value, since, since],
            ).fetchone()[0]
        )
    routes = {
        "defaults": {"recipients": ["emea-manager@example.com", "ops@example.com"], "min_severity": "low"}
    }
    result = alerts.notify_new_incidents(routes, since=since)
    sent = {
        r[0]
        for r in db.execute(
            "select anomaly_id from ops.alert_notifications where recipient = 'emea-manager@example.com'"
            " and anomaly_id = any(%s)",
            [ids],
        ).fetchall()
    }
    assert sent == {ids[0]}  # Europe's orders only
    to_ops = {
        r[0]
        for r in db.execute(
            "select anomaly_id from ops.alert_notifications where recipient = 'ops@example.com' and anomaly_id = any(%s)",
            [ids],
        ).fetchall()
    }
    assert to_ops == set(ids)
    assert {
        s["anomaly_id"] for s in result.suppressed if s["recipient"] == "emea-manager@example.com"
    } == set(ids[1:])
    db.execute("update ops.anomalies set status = 'resolved' where id = any(%s)", [ids])  # leave none open
