"""The audit log: nobody can rewrite it, tampering shows, and it records what the review listed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import kpi

from kpi_lib import auth, warehouse

from .conftest import Client

KPI = str(Path(sys.executable).with_name("kpi"))


@pytest.mark.parametrize(
    "sql",
    [
        "update ops.audit_log set actor = 'someone else'",
        "delete from ops.audit_log",
        "truncate ops.audit_log",
    ],
)
def test_no_one_can_rewrite_the_audit_log(demo, sql):
    auth.audit("audit-test", "probe", "append-only")
    with warehouse.connect_raw() as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute(sql)
    assert auth.verify_audit().ok


def test_tampering_breaks_the_chain_where_it_happened(demo):
    auth.audit("audit-test", "probe", "before tampering")
    auth.audit("audit-test", "probe", "the row to change")
    auth.audit("audit-test", "probe", "after tampering")
    with warehouse.connect_raw() as conn:  # a superuser switching the guard off, in a transaction
        seq = conn.execute("select seq from ops.audit_log where target = 'the row to change'").fetchone()[0]
        assert auth.verify_audit(conn).ok
        conn.execute("alter table ops.audit_log disable trigger audit_log_no_change")
        conn.execute("update ops.audit_log set actor = 'someone else' where seq = %s", [seq])
        verdict = auth.verify_audit(conn)
        assert not verdict.ok and verdict.broken_at == seq and "changed" in verdict.reason
        conn.execute("delete from ops.audit_log where seq = %s", [seq])
        verdict = auth.verify_audit(conn)
        assert not verdict.ok and verdict.broken_at == seq + 1 and "missing" in verdict.reason
        conn.rollback()
    assert auth.verify_audit().ok


def test_kpi_audit_verify_and_search(demo):
    auth.audit("audit-cli", "probe", "cli search")
    ok = kpi("audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout
    assert "cli search" in kpi("audit", "--actor", "audit-cli").stdout


def _actions(db, actor: str) -> list[str]:
    return [
        r[0] for r in db.execute("select action from ops.audit_log where actor = %s order by seq", [actor])
    ]


def test_the_log_records_sign_ins_views_exports_and_changes(server, client, db):
    auth.set_user("sec-audited", "security-password-1", ["executive"])
    Client(server).sign_in("sec-audited", "wrong password")
    c = client("sec-audited")
    c.get("/panel/executive")  # a page view
    c.post("/logout", data={"_xsrf": Client.xsrf(c)})
    env = {**os.environ, "KPI_USER": "sec-audited"}
    subprocess.run([KPI, "query", "orders", "--grain", "total"], capture_output=True, env=env, check=True)
    subprocess.run([KPI, "sql", "select 1"], capture_output=True, env=env, check=True)
    subprocess.run(
        [KPI, "users", "add", "sec-audited-2", "--role", "viewer", "--password-stdin"],
        input="another-password-1\n",
        text=True,
        capture_output=True,
        env=env,
        check=True,
    )
    subprocess.run([KPI, "users", "remove", "sec-audited-2"], capture_output=True, env=env, check=True)
    acts = _actions(db, "sec-audited")
    for expected in (
        "sign-in failed",
        "sign-in",
        "view",
        "sign-out",
        "query",
        "sql",
        "user set",
        "user removed",
    ):
        assert expected in acts, (expected, acts)
    assert auth.verify_audit().ok


def test_only_admins_open_the_audit_page(server, client):
    auth.audit("audit-page", "probe", "shown on the admin page")
    page = client("sec-admin").get("/admin/audit?actor=audit-page")
    assert page.status_code == 200 and "shown on the admin page" in page.text and "Chain intact" in page.text
    assert client("sec-exec").get("/admin/audit").status_code == 403
    sessions = client("sec-admin").get("/admin/sessions")
    assert sessions.status_code == 200 and "sec-admin" in sessions.text
