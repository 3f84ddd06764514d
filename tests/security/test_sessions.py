"""The medium findings on sessions and sign-in, against the real front door.

Sessions end when they should (sign-out, a new password), sign-out and sign-in need the form's
token, guessing passwords is throttled and costs the same for unknown users, a client cannot choose
its address in the audit log, and ``next=`` never leaves the site."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import DEMO_SECRET

from kpi_lib import auth

from .conftest import PASSWORD, Client

KPI = str(Path(sys.executable).with_name("kpi"))


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_signing_out_ends_the_session_for_good(server, client):
    c = client("sec-exec")
    stolen = c.session_cookie
    assert c.get("/logout").status_code == 200 and _signed_in(c)  # GET only asks
    xsrf = Client.xsrf(c)
    assert c.post("/logout", data={"_xsrf": xsrf}).status_code == 302
    replay = Client(server)
    replay.cookies.set(auth.COOKIE, stolen)
    assert replay.get("/").status_code == 302  # the old cookie is dead, not just forgotten


def test_sign_out_and_sign_in_need_the_forms_token(server, client):
    c = client("sec-exec")
    assert c.post("/logout").status_code == 403
    assert _signed_in(c)
    fresh = Client(server)
    r = fresh.post("/login", data={"user": "sec-exec", "password": PASSWORD, "next": "/"})
    assert r.status_code == 403 and auth.COOKIE not in fresh.cookies


def test_a_new_password_ends_every_session(server, client):
    auth.set_user("sec-rotate", PASSWORD, ["executive"])
    a, b = client("sec-rotate"), client("sec-rotate")
    subprocess.run(
        [KPI, "users", "add", "sec-rotate", "--role", "executive", "--password-stdin"],
        input="a-brand-new-password\n",
        text=True,
        check=True,
        capture_output=True,
        env=os.environ,
    )
    time.sleep(1.2)  # the front door re-reads a session at most once a second
    assert not _signed_in(a) and not _signed_in(b)
    assert Client(server).sign_in("sec-rotate", "a-brand-new-password").status_code == 302


def test_each_sign_in_gets_a_new_session(server, client):
    """A cookie someone planted before the sign-in never becomes the signed-in session."""
    c = client()
    c.cookies.set(auth.COOKIE, "planted-by-someone-else")
    first = c.sign_in("sec-exec")
    assert first.status_code == 302
    token = first.cookies.get(auth.COOKIE)  # what the server set, not the planted one
    assert token and token != "planted-by-someone-else"
    fresh = Client(server)
    fresh.cookies.set(auth.COOKIE, token)
    assert _signed_in(fresh)
    again = c.sign_in("sec-exec")
    assert again.cookies.get(auth.COOKIE) not in (None, token)


def test_guessing_passwords_is_throttled_per_account(server, users):
    auth.set_user("sec-target", PASSWORD, ["viewer"])
    c = Client(server)
    codes = [c.sign_in("sec-target", f"guess-{i}").status_code for i in range(5)]
    assert codes == [401] * 5
    locked = c.sign_in("sec-target", PASSWORD)  # even the right password waits now
    assert locked.status_code == 429 and "Too many sign-in attempts" in locked.text
    assert Client(server).sign_in("sec-exec").status_code == 302  # others are unaffected


def test_unknown_users_cost_the_same_as_wrong_passwords(server, users):
    """Timing must not tell which user names exist (the old dummy hash was invalid: 12 vs 71 ms)."""

    def timed(login: str) -> float:
        t0 = time.perf_counter()
        auth.verify(login, "not-the-password")
        return time.perf_counter() - t0

    pairs = [(timed(f"nobody-{i}"), timed("sec-viewer")) for i in range(9)]  # interleaved: same load
    unknown = statistics.median(u for u, _ in pairs)
    known = statistics.median(k for _, k in pairs)
    assert unknown / known > 0.5, (unknown, known)  # the old invalid dummy hash: 12 vs 71 ms


def test_sign_ins_do_not_stall_other_requests(server, users):
    """bcrypt runs off the event loop: /healthz answers while ten sign-ins are being checked."""
    done: list[float] = []

    def attempt(i: int) -> None:
        Client(server).sign_in(f"nobody-load-{i}", "wrong")
        done.append(time.perf_counter())

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    r = requests.get(f"{server}/healthz", timeout=10)
    answered = time.perf_counter()
    for t in threads:
        t.join()
    assert r.status_code == 200
    assert answered < max(done), "healthz waited for every sign-in to finish"


def test_a_client_cannot_choose_its_address_in_the_audit_log(server, users, db):
    Client(server).sign_in(
        "sec-xff-nobody", "wrong", **{"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "203.0.113.9"}
    )
    ip = db.execute(
        "select details->>'ip' from ops.audit_log where actor = 'sec-xff-nobody' order by id desc limit 1"
    ).fetchone()[0]
    assert ip == "127.0.0.1"


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example/x",
        "/\tevil.example/x",
        "//evil.example",
        "https://evil.example",
        "/x\r\nSet-Cookie: a=b",
    ],
)
def test_sign_in_never_redirects_off_site(server, users, target):
    r = Client(server).sign_in("sec-exec", next_path=target)
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_sign_in_keeps_a_same_site_next(server, users):
    r = Client(server).sign_in("sec-exec", next_path="/panel/executive?region=Europe")
    assert r.headers["Location"] == "/panel/executive?region=Europe"


def test_passwords_never_travel_as_arguments_or_in_logs(server):
    r = subprocess.run(
        [KPI, "users", "add", "sec-cli", "--password", "visible-in-ps-1"], capture_output=True, text=True
    )
    assert r.returncode != 0 and not auth.exists("sec-cli")
    log = (Path(os.environ["KPI_HOME"]) / "serve-test.log").read_text()
    assert "sign in as demo" in log and DEMO_SECRET not in log
