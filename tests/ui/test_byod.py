"""Bring your own data, end to end, as a new user does it: a fresh warehouse, an export that ended
years ago, priced in pounds, with countries as regions; `kpi load lines --currency GBP`;
`kpi serve`; the executive page and the revenue explorer in a real Chromium.

The page must open on the data's own last 30 days (its as-of, "latest data"), not on 30 empty days
ending today. Every expected number is computed with pandas from the file and written with a
plain f-string, not with kpi_lib's formatter."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import free_port

pytestmark = pytest.mark.ui
KPI = [str(Path(sys.executable).with_name("kpi"))]
ROOT = Path(__file__).resolve().parents[2]
COUNTRIES = ["United Kingdom", "Netherlands", "Germany", "Australia"]
LAST = datetime(2019, 6, 28, 17, 40)  # the export's last order
LOGIN, PASSWORD = "byod-exec", "byod-password-123"
TIMEOUT = 120_000


def write_export(path: Path) -> pd.DataFrame:
    """~900 order lines from March to 28 June 2019, in pounds (whole pence)."""
    rng = random.Random(2019)
    rows, t, n = [], datetime(2019, 3, 1, 9), 0
    while t < LAST:
        n += 1
        country = rng.choices(COUNTRIES, weights=[55, 20, 15, 10])[0]
        for _ in range(rng.randint(1, 3)):
            rows.append(
                {
                    "InvoiceNo": f"GB19-{n}",
                    "InvoiceDate": f"{t:%d/%m/%Y %H:%M}",
                    "CustomerID": rng.randint(14000, 14200),
                    "Country": country,
                    "Description": f"ITEM {rng.randint(1, 40)}",
                    "Quantity": rng.randint(1, 24),
                    "UnitPrice": rng.choice([0.85, 1.25, 2.95, 4.95, 12.75]),
                }
            )
        t += timedelta(minutes=rng.randint(120, 300))
    rows.append({**rows[-1], "InvoiceNo": f"GB19-{n + 1}", "InvoiceDate": f"{LAST:%d/%m/%Y %H:%M}"})
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    df["at"] = pd.to_datetime(df["InvoiceDate"], dayfirst=True)
    df["revenue"] = df["Quantity"] * df["UnitPrice"]
    return df


@pytest.fixture(scope="module")
def byod(tmp_path_factory):
    """A fresh KPI_HOME and catalog copy, the export loaded, `kpi serve` running on it; an API token."""
    root = tmp_path_factory.mktemp("byod")
    root.chmod(0o755)
    home = root / "home"
    home.mkdir()
    home.chmod(0o755)  # the embedded server runs as its own system user
    catalog = root / "catalog.yml"
    shutil.copy(ROOT / "catalog.yml", catalog)
    env = {**os.environ, "KPI_HOME": str(home), "KPI_CATALOG": str(catalog), "KPI_KERNELS_PER_USER": "2"}
    for var in ("XDG_RUNTIME_DIR", "DATABASE_URL", "REDIS_URL"):
        env.pop(var, None)
    export = root / "online_shop_2019.csv"
    df = write_export(export)

    def kpi(*args: str, stdin: str | None = None) -> str:
        out = subprocess.run([*KPI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, f"kpi {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out.stdout

    proc = None
    try:
        loaded = kpi("load", "lines", str(export), "--dayfirst", "--currency", "GBP")
        assert f"loaded {len(df):,}" in loaded and "currency: GBP" in loaded
        kpi(
            "users",
            "add",
            LOGIN,
            "--role",
            "executive",
            "--name",
            "BYOD Exec",
            "--password-stdin",
            stdin=PASSWORD,
        )
        token = kpi("users", "token", "add", LOGIN, "--name", "byod-sheet").strip()  # for the API test
        port = free_port()
        log = open(root / "serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*KPI, "serve", "--port", str(port), "--no-alerts", "--no-mail-sink", "--voila-pool", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kpi serve exited ({proc.returncode}); see {log.name}")
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"kpi serve did not come up within 240 s; see {log.name}")
                time.sleep(0.5)
        yield base, df, token
    finally:
        if proc is not None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        subprocess.run([*KPI, "stop"], env=env, capture_output=True, timeout=120)


def sign_in(page, base: str, path: str) -> None:
    page.goto(f"{base}/login?next={path}")
    page.fill("input[name=user]", LOGIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def pounds(value: float) -> str:
    return f"£{value:,.0f}"


def test_the_executive_page_opens_on_the_exports_last_30_days_in_pounds(byod, context):
    base, df, _ = byod
    page = context.new_page()
    sign_in(page, base, "/panel/executive")
    page.wait_for_function("() => !document.getElementById('kpi-first-paint')", timeout=TIMEOUT)
    tile = page.locator("[data-kpi-value=revenue]")
    tile.wait_for(timeout=TIMEOUT)

    first = pd.Timestamp(LAST.date()) - pd.Timedelta(days=29)
    window = df[(df["at"] >= first) & (df["at"] < pd.Timestamp(LAST.date()) + pd.Timedelta(days=1))]
    assert len(window) > 50
    assert tile.get_attribute("title") == pounds(round(window["revenue"].sum(), 2))
    orders = page.locator("[data-kpi-value=orders]").get_attribute("title")
    assert orders == f"{window['InvoiceNo'].nunique():,}"
    assert tile.inner_text().startswith("£")  # the big number too: compact, in pounds

    # the sparklines have a point per day of the window, and they move
    points = page.evaluate(
        """() => { const out = [];
          const walk = root => root.querySelectorAll('*').forEach(el => {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (el.tagName === 'polyline') out.push(el.getAttribute('points')); });
          walk(document); return out; }"""
    )
    ys = [float(p.split(",")[1]) for p in points[0].split()]
    assert len(ys) == 30 and len(set(ys)) > 5

    # the region filter lists the file's countries
    region = page.locator("select", has=page.locator("option", has_text="Netherlands")).first
    assert set(COUNTRIES) <= set(region.locator("option").all_text_contents())

    page.wait_for_function(
        """() => { let found = false;
          const walk = root => root.querySelectorAll('*').forEach(el => {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (el.textContent && el.textContent.startsWith('Data version')) found = true; });
          walk(document); return found; }""",
        timeout=TIMEOUT,
    )
    status = page.evaluate(
        """() => { const out = [];
          const walk = root => root.querySelectorAll('*').forEach(el => {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (el.textContent && el.textContent.startsWith('Data version')) out.push(el.textContent); });
          walk(document); return out.join(' '); }"""
    )
    assert "as of 28 Jun 2019 17:40 (latest data)" in status
    assert re.search(r"Data version [1-9]", status)  # the load's version, not 0


def test_the_revenue_explorer_opens_on_the_exports_last_90_days_in_pounds(byod, context):
    base, df, _ = byod
    page = context.new_page()
    sign_in(page, base, "/voila/voila/render/revenue_explorer.ipynb")
    table = page.locator('.kpi-table[data-kpi="revenue"][data-grain="day"]')
    table.wait_for(timeout=TIMEOUT)
    page.locator('.kpi-status[data-state="ready"]').wait_for(timeout=TIMEOUT)
    start, end = table.get_attribute("data-start"), table.get_attribute("data-end")
    assert end.startswith("2019-06-29") and start.startswith("2019-03-31")  # 90 days to the as-of
    inside = df[(df["at"] >= pd.Timestamp(start)) & (df["at"] < pd.Timestamp(end))]
    total = page.locator(".kpi-range-total .kpi-value")
    assert total.inner_text() == pounds(round(inside["revenue"].sum(), 2))
    line = page.locator(".kpi-chart g.curve path.line")
    assert line.count() == 1 and line.get_attribute("d").count("L") >= 80  # a point per day
    assert "as of 28 Jun 2019 17:40 (latest data)" in page.locator(".kpi-status").first.inner_text()


def test_the_api_answers_the_exports_numbers_in_pounds_and_keeps_them_per_version(byod):
    """A program with a token asks the API about the same export: the KPI says GBP, a question with
    no dates counts back from the data's own last order (2019), and asking again is answered from
    the front door's kept copy with the same bytes."""
    import requests

    base, df, token = byod
    h = {"Authorization": f"Bearer {token}"}
    info = requests.get(f"{base}/api/kpis/revenue", headers=h, timeout=60).json()
    assert info["currency"] == "GBP"

    q = {"kpi": "revenue", "grain": "total", "by": "region"}
    first = requests.get(f"{base}/api/query", params=q, headers=h, timeout=60)
    assert first.status_code == 200, first.text
    doc = first.json()
    start, end = pd.Timestamp(doc["provenance"]["start"]), pd.Timestamp(doc["provenance"]["end"])
    assert end.year == 2019 and start.year == 2019  # the data's own window, not today's
    inside = df[(df["at"] >= start.tz_localize(None)) & (df["at"] < end.tz_localize(None))]
    expected = inside.groupby("Country")["revenue"].sum().round(2).to_dict()
    got = {row["dims"]["region"]: row["value"] for row in doc["rows"]}
    assert got == pytest.approx(expected)

    pinned = {**q, "as_of": "2019-06-28T17:40"}  # a pinned "now": kept until the data changes
    fresh = requests.get(f"{base}/api/query", params=pinned, headers=h, timeout=60)
    again = requests.get(f"{base}/api/query", params=pinned, headers=h, timeout=60)
    assert again.headers["X-KPI-Answer"] == "kept" and again.content == fresh.content
