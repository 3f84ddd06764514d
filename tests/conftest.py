"""Shared fixtures: one real embedded PostgreSQL per test session, with a small demo business in it.

Nothing is mocked. The warehouse lives in a temporary KPI_HOME, so tests never touch ./var, and the
machine's own Postgres/Redis are used only by tests marked ``external`` (bring-your-own-server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

# Settings are read from the environment: isolate the session before kpi_lib reads them.
_HOME = Path(tempfile.mkdtemp(prefix="kpi_test_"))
_HOME.chmod(0o755)  # the embedded server runs as its own system user and must reach its folder
os.environ["KPI_HOME"] = str(_HOME)
for var in ("DATABASE_URL", "REDIS_URL", "KPI_TIMEZONE", "KPI_CATALOG"):
    os.environ.pop(var, None)


DEMO = {"lines": 60_000, "days": 120, "seed": 11}


@pytest.fixture(scope="session")
def demo():
    """The session's warehouse with the demo loaded (its DemoSummary); stopped at the end."""
    from kpi_lib import config, gold
    from kpi_lib import warehouse as wh
    from kpi_lib.demo import load_demo

    config.reset()
    gold.init()
    summary = load_demo(**DEMO)
    yield summary
    from kpi_lib import stream

    stream._hub.stop()  # no reconnect attempts against a server we are about to stop
    stream.move._mover.stop()
    wh.dispose()
    wh.stop()


@pytest.fixture()
def db(demo):
    """A psycopg connection to the session warehouse (autocommit)."""
    from kpi_lib import warehouse as wh

    with wh.connect_raw(autocommit=True) as conn:
        yield conn


def silver_frame():
    """Orders joined with lines, straight from silver, for independent pandas computations."""
    import pandas as pd

    from kpi_lib import warehouse as wh

    with wh.connect_raw() as conn:
        cur = conn.execute(
            "select o.order_id, o.ordered_at, o.customer_id, o.region, o.channel, l.category, l.product_name,"
            " l.quantity::float8, l.unit_price::float8, l.discount::float8, l.unit_cost::float8"
            " from silver.orders o join silver.order_lines l using (order_id)"
        )
        df = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    df["ordered_at"] = pd.to_datetime(df["ordered_at"], utc=True)
    return df


def service_missing(why: str) -> None:
    """A bring-your-own-server test without its service: skipped on a laptop, a failure in CI
    (this machine kind runs PostgreSQL, Redis and RabbitMQ, so CI must test those paths)."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run this test against the machine's service")
    pytest.skip(why)


def kpi(*args: str, input: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``kpi ARGS`` in this process (typer's CliRunner): the same command a user types, without a
    new interpreter per call. Returns what a subprocess run would (returncode, stdout, stderr)."""
    from typer.testing import CliRunner

    from kpi_lib.cli import app

    res = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    proc = subprocess.CompletedProcess(["kpi", *args], res.exit_code, res.stdout, res.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"kpi {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def run_coroutine(make_coro, timeout: float = 60):
    """``asyncio.run(make_coro())`` on a thread of its own: once a browser test has run, Playwright
    holds an event loop in the main thread, where asyncio.run refuses to start."""
    out: dict = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # re-raised in the test's own thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the coroutine did not finish within {timeout} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


def free_port() -> int:
    """A free local port (within KPI_PORT_RANGE when set: see kpi_lib.serve.free_port)."""
    from kpi_lib.serve import free_port as serve_free_port

    return serve_free_port()


# The session's mail goes to a port of its own (tests that read mail start a sink on theirs): never
# to the default 8025, where a demo running on this machine would file it in its inbox.
os.environ.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(free_port()), SMTP_TLS="none")


@contextlib.contextmanager
def serving(start):
    """Run ``start()`` (it makes tornado servers listen) on an event loop of its own, in a thread,
    until the block ends: a front door in this process, for tests that need one of their own."""
    ready, loop = threading.Event(), asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        start()
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(30)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)


@pytest.fixture()
def smtp_port(monkeypatch):
    """SMTP settings pointing at a free local port (nothing listens yet). Exported, so child
    processes (job kernels) send there too."""
    from kpi_lib import config

    port = free_port()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_TLS", "none")
    config.reset()
    yield port
    config.reset()


@pytest.fixture()
def sink(smtp_port, tmp_path):
    """A real SMTP server (aiosmtpd) keeping every message in a maildir: the test's inbox."""
    from kpi_lib import mail

    with mail.start_sink("127.0.0.1", smtp_port, tmp_path / "mail") as s:
        yield s


# --- a real `kpi serve` and a real headless Chromium (tests/ui, tests/security) --------------------

USER, PASSWORD = "ui-exec", "ui-password-123"
DEMO_SECRET = "demo-password-never-printed"


def chromium_path() -> str:
    from kpi_lib.web import chromium

    try:
        return chromium.executable()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc} (.ci/run does this)")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        from kpi_lib.web import chromium

        b = p.chromium.launch(executable_path=chromium_path(), args=chromium.ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def server(demo):
    """`kpi serve` in its own process group, on a free port, for the whole session."""
    from kpi_lib import auth

    auth.set_user(USER, PASSWORD, ["executive"], name="UI Executive")
    # as `kpi demo` leaves it: kpi serve must point at this file, never print the password in it
    (Path(os.environ["KPI_HOME"]) / "demo_credentials.txt").write_text(
        f"user: demo\npassword: {DEMO_SECRET}\n"
    )
    port = free_port()
    log = open(Path(os.environ["KPI_HOME"]) / "serve-test.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("kpi")),
            "serve",
            "--port",
            str(port),
            "--no-alerts",
            "--no-mail-sink",
            # the tests that land on the fast path move it themselves (and assert what waits);
            # tests/test_serve.py runs a `kpi serve` with its mover on a private warehouse
            "--no-mover",
            "--voila-pool",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "KPI_KERNELS_PER_USER": "2"},  # tests/security opens a third and is refused
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"kpi serve exited ({proc.returncode}); see {log.name}")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail("kpi serve did not come up within 240 s")
    yield base
    os.killpg(proc.pid, 15)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


@pytest.fixture()
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    outside: list[str] = []
    ctx.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:"))
            else None
        ),
    )
    ctx.outside_requests = outside
    yield ctx
    ctx.close()


def login(page, base: str, next_path: str = "/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("input[name=user]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
