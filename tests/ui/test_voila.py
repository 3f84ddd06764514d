"""The Voila dashboards in a real headless Chromium, served the way `kpi serve` serves them.

Voila runs with a pre-heated kernel pool and the signed-in user forwarded in the ``X-KPI-User``
header (here Playwright sends it, as the front door would). The numbers on the page are checked
against ``kpi_lib.kpis.query`` and the acknowledgements against the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from playwright.sync_api import Error as PlaywrightError

from kpi_lib import auth, kpis, stream
from kpi_lib.ui import voila as ui

from .voila_util import VoilaServer, culled_in_log, kernel_id

ui_test = pytest.mark.ui  # the browser tests; the two unit tests at the end need no browser

USER, PASSWORD = "voila-ana", "voila-password-1"
TIMEOUT = 180_000  # ms: a cold kernel on a busy 2-core machine imports a lot
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
SECRET = uuid.uuid4().hex  # both servers' front-door secret, so one browser context speaks to both


@pytest.fixture(scope="module")
def jupyter_path(demo, tmp_path_factory):
    auth.set_user(USER, PASSWORD, ["executive"], name="Ana Voila")
    return ui.voila_template(tmp_path_factory.mktemp("jupyter"))


@pytest.fixture(scope="module")
def voila(jupyter_path, tmp_path_factory):
    """Pre-heated, as in production."""
    server = VoilaServer(
        jupyter_path, tmp_path_factory.mktemp("voila") / "voila.log", secret=SECRET, preheat=True, pool=1
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def voila_cold(jupyter_path, tmp_path_factory):
    """No pre-heated pool, and kernels culled after 10 s idle (checked every 2 s)."""
    server = VoilaServer(
        jupyter_path,
        tmp_path_factory.mktemp("voila-cold") / "voila.log",
        secret=SECRET,
        preheat=False,
        cull_idle=10,
        cull_interval=2,
    ).start()
    yield server
    server.stop()


@pytest.fixture()
def context(browser, jupyter_path):
    """A browser context as the front door makes it: the user and the secret on every request, and
    an ``_xsrf`` cookie so Voila's shutdown beacon is accepted when a page closes normally."""
    headers = {auth.HEADER: USER, auth.PROXY_HEADER: SECRET}
    ctx = browser.new_context(extra_http_headers=headers, viewport={"width": 1400, "height": 1000})
    ctx.add_cookies([{"name": "_xsrf", "value": uuid.uuid4().hex, "domain": "127.0.0.1", "path": "/voila/"}])
    outside: list[str] = []
    ctx.on("request", lambda r: None if r.url.startswith(LOCAL) else outside.append(r.url))
    ctx.outside_requests = outside
    yield ctx
    for page in ctx.pages:  # a normal close: Voila shuts the kernel down instead of waiting to cull it
        if not page.is_closed():
            with contextlib.suppress(PlaywrightError):
                page.close(run_before_unload=True)
    time.sleep(0.5)
    ctx.close()


def open_page(context, url: str, ready: str):
    page = context.new_page()
    page.goto(url, timeout=TIMEOUT, wait_until="commit")
    page.locator(ready).first.wait_for(timeout=TIMEOUT)
    return page


def table_state(page) -> dict:
    """The explorer's table: its query (data attributes), header and rows of (period, values)."""
    return page.evaluate("""() => {
        const t = document.querySelector('.kpi-table');
        const rows = [...t.querySelectorAll('tbody tr')].map(tr => ({
            period: tr.dataset.period,
            values: [...tr.querySelectorAll('td')].slice(1).map(td => td.dataset.value ?? null),
            texts: [...tr.querySelectorAll('td')].slice(1).map(td => td.textContent)}));
        const head = [...t.querySelectorAll('thead th')].slice(1).map(th => th.textContent);
        return {...t.dataset, head, rows};
    }""")


def wait_table(page, **attrs) -> dict:
    sel = ".kpi-table" + "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())
    page.locator(sel).wait_for(timeout=TIMEOUT)
    page.locator('.kpi-status[data-state="ready"]').wait_for(timeout=TIMEOUT)
    return table_state(page)


def expected_frame(state: dict, top: int = 6) -> pd.DataFrame:
    """What kpi_lib.query answers for the question the table says it shows (periods x series)."""
    by = [state["by"]] if state["by"] else []
    r = kpis.query(
        state["kpi"],
        state["grain"],
        datetime.fromisoformat(state["start"]),
        datetime.fromisoformat(state["end"]),
        by=by,
        top=top if by else None,
    )
    if not by:
        return r.df.set_index("period")[["value"]]
    return r.df.pivot(index="period", columns=by[0], values="value")


def assert_table_matches(state: dict, expected: pd.DataFrame) -> None:
    assert state["rows"], "the table is empty"
    if state["by"]:
        assert set(state["head"]) == {str(c) for c in expected.columns}
    for row in state["rows"]:
        period = pd.Timestamp(row["period"])
        cols = state["head"] if state["by"] else ["value"]
        for col, got in zip(cols, row["values"], strict=True):
            want = expected.loc[period, col]
            if pd.isna(want):  # a ratio with nothing to divide: shown as a dash, no value
                assert got is None, (period, col)
                continue
            assert got is not None and float(got) == pytest.approx(float(want), rel=1e-9, abs=1e-6), (
                period,
                col,
            )


def assert_local(context) -> None:
    assert context.outside_requests == [], f"requests left 127.0.0.1: {context.outside_requests[:5]}"


# --- revenue explorer --------------------------------------------------------------------------------


@ui_test
def test_explorer_renders_chart_and_the_numbers_of_kpi_query(voila, context):
    page = open_page(context, voila.url("revenue_explorer"), ".kpi-table")
    state = wait_table(page, kpi="revenue", grain="day")
    assert state["by"] == ""
    expected = expected_frame(state)
    assert len(state["rows"]) == len(expected)
    assert_table_matches(state, expected)
    k = kpis.get("revenue")
    first = state["rows"][0]
    assert first["texts"][0] == k.format_value(float(first["values"][0]))  # what the viewer reads

    total = kpis.query(
        "revenue", "total", datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"])
    )
    tile = page.locator(".kpi-range-total .kpi-value")
    assert float(tile.get_attribute("data-value")) == pytest.approx(total.value)
    assert tile.inner_text() == k.format_value(total.value)

    line = page.locator(".kpi-chart g.curve path.line")
    assert line.count() == 1
    assert line.get_attribute("d").count("L") >= len(expected) - 1  # one vertex per period
    assert_local(context)


@ui_test
def test_the_first_response_already_shows_the_range_total_and_the_widgets_replace_it(voila, context):
    """The number is in the page's HTML (no script needed to see it); once the widgets draw, the
    static copy is hidden and the live tile shows the same value."""
    html = context.request.get(voila.url("revenue_explorer")).text()
    first = re.search(r'<div class="kpi-tile kpi-first-total"[^>]*>.*?data-value="([^"]+)"', html, re.S)
    assert first, "the range total is not in the first response"
    page = open_page(context, voila.url("revenue_explorer"), ".kpi-table")
    state = wait_table(page, kpi="revenue", grain="day")
    total = kpis.query(
        "revenue", "total", datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"])
    )
    assert float(first.group(1)) == pytest.approx(total.value, rel=1e-6)
    live = page.locator(".kpi-range-total .kpi-value")
    assert float(live.get_attribute("data-value")) == pytest.approx(total.value, rel=1e-6)
    shown = page.locator(".kpi-first-paint").evaluate_all("els => els.filter(e => e.offsetParent).length")
    assert page.locator("body > .kpi-first-paint").count() == 1 and shown == 0


@ui_test
def test_the_first_paint_keeps_a_masked_kpi_masked(voila, context):
    """A viewer whose role masks revenue gets the first-paint copy masked too: no value, no data-value."""
    from kpi_lib.auth import users as user_store

    doc = user_store._load()
    doc["roles"]["fp-viewer"] = {"kpis": "*", "masked": ["revenue"]}
    user_store._save(doc)
    auth.set_user("fp-viewer", "fp-viewer-password-1", ["fp-viewer"], name="FP Viewer")
    html = context.request.get(voila.url("revenue_explorer"), headers=voila.headers("fp-viewer")).text()
    first = re.search(r"<template>(?:(?!</template>).)*kpi-first-paint.*?</template>", html, re.S)
    assert first, "no first paint in the response"
    tile = re.search(
        r'class="kpi-tile kpi-first-total".*?<div class="kpi-value"([^>]*)>([^<]*)<', first.group(0), re.S
    )
    assert tile and "data-value" not in tile.group(1)
    assert tile.group(2) == auth.MASK and "$" not in tile.group(2)


@ui_test
def test_explorer_controls_change_chart_and_table(voila, context):
    page = open_page(context, voila.url("revenue_explorer"), ".kpi-table")
    wait_table(page, kpi="revenue")

    page.select_option(".kpi-kpi select", label="Orders")
    state = wait_table(page, kpi="orders")
    assert_table_matches(state, expected_frame(state))

    page.select_option(".kpi-by select", label="Region")
    state = wait_table(page, kpi="orders", by="region")
    expected = expected_frame(state)
    assert_table_matches(state, expected)
    assert page.locator(".kpi-chart g.curve path.line").count() == len(expected.columns)  # a line per region
    legend = set(page.locator(".kpi-chart .g_legend text").all_text_contents())
    assert legend == {str(c) for c in expected.columns}  # ... named in the legend
    assert len(expected.columns) > 1

    page.locator(".kpi-grain button", has_text="Week").click()
    state = wait_table(page, kpi="orders", by="region", grain="week")
    assert_table_matches(state, expected_frame(state))

    # brush the right half of the chart: the table keeps only the selected weeks
    box = page.locator(".kpi-chart .plotarea_events").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=8)
    page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=8)
    page.mouse.up()
    selected = wait_table(page, kpi="orders", grain="week", selected="yes")
    assert 0 < len(selected["rows"]) < len(state["rows"])
    tile = page.locator(".kpi-selection-total")
    tile.wait_for(timeout=TIMEOUT)
    s, e = (datetime.fromisoformat(tile.get_attribute(a)) for a in ("data-start", "data-end"))
    assert all(s <= pd.Timestamp(r["period"]) < e for r in selected["rows"])
    want = kpis.query("orders", "total", s, e).value
    assert float(tile.locator(".kpi-value").get_attribute("data-value")) == pytest.approx(want)

    page.locator("button.kpi-reset").click()
    assert len(wait_table(page, kpi="orders", grain="week", selected="no")["rows"]) == len(state["rows"])
    assert_local(context)


def _order_event(revenue: float) -> dict:
    key = uuid.uuid4().hex[:12]
    return {
        "event_id": f"ui-{key}",
        "order_id": f"UI-{key}",
        "ordered_at": datetime.now(UTC).isoformat(),
        "customer_id": "C-UI-1",
        "region": "Europe",
        "channel": "Web",
        "lines": [
            {
                "product_id": "P-UI",
                "product_name": "UI test lamp",
                "category": "Home",
                "quantity": 1,
                "unit_price": revenue,
                "discount": 0,
                "unit_cost": 10.0,
            }
        ],
    }


@ui_test
def test_explorer_shows_new_data_without_reload(voila, context):
    page = open_page(context, voila.url("revenue_explorer"), ".kpi-table")
    before = wait_table(page, kpi="revenue")
    time.sleep(1.5)  # let the page's heartbeat start (live updates run while someone is looking)
    today = kpis.floor_period(kpis.local_now(), "day")
    t0 = time.monotonic()
    stream.ingest([_order_event(9_876.5)], source="ui-test")
    want = kpis.query("revenue", "day", today, today + timedelta(days=1)).value
    row = page.locator(f'.kpi-table tr[data-period="{today.isoformat()}"] td[data-value]')
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = row.get_attribute("data-value")
        if got is not None and float(got) == pytest.approx(want):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the open page still shows {row.get_attribute('data-value')} for today, not {want}")
    print(f"\nfreshness: ingest -> new value on the open page in {time.monotonic() - t0:.2f} s")
    after = table_state(page)
    assert int(after["version"]) > int(before["version"])
    assert page.url == voila.url("revenue_explorer")  # no reload
    assert_local(context)


# --- anomaly review ------------------------------------------------------------------------------------


def _insert_incident(db, days_ago: int, note: str) -> int:
    started = kpis.floor_period(kpis.local_now(), "day") - timedelta(days=days_ago)
    return db.execute(
        "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, peak_at, ended_at,"
        " value, expected, lower_bound, upper_bound, deviation_pct, score, severity, rule, explanation)"
        " values ('revenue|day|region=Europe', 'revenue', 'day', 'region', 'Europe', %(s)s, %(s)s, %(e)s,"
        " 4100, 10800, 8900, 12700, -62.0, 5.2, 'high', 'spike', %(x)s)"
        " on conflict (series_key, started_at) do update set explanation = excluded.explanation,"
        " status = 'open', updated_at = now() returning id",
        {"s": started, "e": started + timedelta(days=1), "x": note},
    ).fetchone()[0]


@ui_test
def test_anomaly_review_lists_incidents_and_acknowledges(voila, context, db):
    note = f"UI test {uuid.uuid4().hex[:6]}: Revenue in Europe was 62% below the expected $10.8k."
    iid = _insert_incident(db, 5, note)
    page = open_page(context, voila.url("anomaly_review", kpi="revenue", page_size=20), ".kpi-incidents")
    card = page.locator(f".kpi-incident-{iid}")
    card.wait_for(timeout=TIMEOUT)
    assert note in card.locator(".kpi-incident-explanation").inner_text()
    assert card.locator("img.kpi-incident-chart").count() == 1
    assert card.locator('[data-status="open"]').count() == 1

    card.locator("textarea").fill("checking the Europe checkout")
    card.locator("button.kpi-ack").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = db.execute(
            "select status, acknowledged_by, acknowledged_at, comment from ops.anomalies where id = %s", [iid]
        ).fetchone()
        if row[0] == "acknowledged":
            break
        time.sleep(0.2)
    assert row[0] == "acknowledged" and row[1] == USER and row[2] is not None
    assert row[3] == "checking the Europe checkout"
    events = db.execute(
        "select actor, action, comment from ops.anomaly_events where anomaly_id = %s", [iid]
    ).fetchall()
    assert ("voila-ana", "acknowledge", "checking the Europe checkout") in events
    page.locator(f'.kpi-incident-{iid} [data-status="acknowledged"]').wait_for(timeout=TIMEOUT)

    # a new incident shows up on the open page by itself
    newer = _insert_incident(db, 1, "UI test: a newer incident appears without a reload.")
    page.locator(f".kpi-incident-{newer}").wait_for(timeout=30_000)
    assert_local(context)


@ui_test
def test_tree_page_stays_local(voila, context):
    page = context.new_page()
    page.goto(voila.base + "/voila/", timeout=TIMEOUT)
    link = page.get_by_role("link", name="revenue_explorer.ipynb")
    link.wait_for(timeout=30_000)  # server-rendered: it is in the first response
    assert link.get_attribute("href").endswith("/voila/render/revenue_explorer.ipynb?")
    names = page.locator(".voila-notebooks a").all_inner_texts()
    assert {"revenue_explorer.ipynb", "anomaly_review.ipynb"} <= {n.strip() for n in names}
    assert_local(context)


# --- kernels: pre-heating, and what happens after the page closes ----------------------------------------


def _first_widget(context, url: str) -> tuple[float, float]:
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url, timeout=TIMEOUT, wait_until="commit")
    page.locator(".kpi-explorer .widget-dropdown").first.wait_for(timeout=TIMEOUT)
    first = time.perf_counter() - t0
    page.locator(".kpi-table").wait_for(timeout=TIMEOUT)
    data = time.perf_counter() - t0
    page.close(run_before_unload=True)
    return first, data


@ui_test
def test_abandoned_page_stops_refreshing_and_its_kernel_is_culled(voila_cold, context):
    """A tab that dies without saying goodbye: the heartbeat stops, live updates pause, the kernel goes
    idle although data keeps arriving, and the culler reclaims it."""
    page = open_page(context, voila_cold.url("revenue_explorer", heartbeat_timeout=6), ".kpi-table")
    wait_table(page, kpi="revenue")
    kid = kernel_id(page)
    time.sleep(1.5)
    stream.ingest([_order_event(11.0)], source="ui-test")  # the open page refreshes: kernel activity
    time.sleep(2)
    page.close(run_before_unload=False)  # no beforeunload: like a crash or a lost network
    closed = time.monotonic()
    activity = []
    while time.monotonic() - closed < 90:
        stream.ingest([_order_event(12.0)], source="ui-test")  # data keeps landing
        model = voila_cold.kernel(kid)
        if model is None:
            break
        activity.append(model["last_activity"])
        time.sleep(2)
    gone = time.monotonic() - closed
    assert voila_cold.kernel(kid) is None, f"kernel {kid} still alive {gone:.0f} s after the page closed"
    assert culled_in_log(voila_cold.log(), kid)
    last = pd.Timestamp(activity[-1]) if activity else None
    print(
        f"\nculling: page closed -> kernel culled in {gone:.1f} s (heartbeat timeout 6 s, cull_idle_timeout 10 s,"
        f" cull_interval 2 s); last kernel activity {last}"
    )


@ui_test
def test_closing_the_page_shuts_its_kernel_down(voila_cold, context):
    """A normal close sends Voila's shutdown beacon; it needs an ``_xsrf`` cookie (set by the front door)."""
    page = open_page(context, voila_cold.url("revenue_explorer"), ".kpi-table")
    kid = kernel_id(page)
    page.close(run_before_unload=True)
    t0 = time.monotonic()
    while voila_cold.kernel(kid) is not None and time.monotonic() - t0 < 8:
        time.sleep(0.2)
    assert voila_cold.kernel(kid) is None
    assert not culled_in_log(voila_cold.log(), kid)  # shut down by the beacon, not culled
    print(f"\nclosing the tab -> kernel shut down in {time.monotonic() - t0:.1f} s")


# --- the widget plumbing, without a browser ---------------------------------------------------------------


def test_url_parameters_override_notebook_defaults_with_their_types():
    d = {"kpi": "revenue", "by": None, "top_n": 6, "heartbeat_timeout": 30.0, "live": True}
    got = ui.url_parameters(d, "kpi=orders&by=region&top_n=3&heartbeat_timeout=6&live=no&unknown=1")
    assert got == {"kpi": "orders", "by": "region", "top_n": 3, "heartbeat_timeout": 6.0, "live": False}
    assert ui.url_parameters(d, "top_n=many&by=") == d  # unparsable: ignored; empty: None
    assert ui.url_parameters(d, "") == d


def test_throttle_runs_once_at_once_then_once_for_everything_within_the_interval():
    """As in a kernel: triggered from the listener thread, run on the event loop."""

    async def scenario():
        calls: list[float] = []
        throttle = ui.Throttle(lambda: calls.append(time.monotonic()), interval=0.4)

        def feed(n: int) -> None:  # like the listener thread: one trigger per data version
            for _ in range(n):
                throttle.trigger()
                time.sleep(0.01)

        threading.Thread(target=feed, args=(1,)).start()
        await asyncio.sleep(0.1)
        first = len(calls)
        threading.Thread(target=feed, args=(20,)).start()  # 20 more versions within 0.2 s
        await asyncio.sleep(0.8)
        return first, calls

    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(result=asyncio.run(scenario())))  # a loop of its own
    runner.start()
    runner.join(10)
    first, calls = out["result"]
    assert first == 1  # leading edge: the first change shows at once
    assert len(calls) == 2  # the 20 that follow: one refresh, an interval after the first
    assert calls[1] - calls[0] >= 0.39


@ui_test
def test_anomaly_review_says_which_incidents_are_one_event(voila, context, db):
    """A week's outage raised an incident in every region; each card now says it is one event."""
    monday = kpis.floor_period(kpis.local_now(), "week") - timedelta(weeks=3)
    tag = uuid.uuid4().hex[:6]
    ids = [
        db.execute(
            "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, peak_at,"
            " ended_at, value, expected, lower_bound, upper_bound, deviation_pct, score, severity, rule,"
            " explanation) values (%s, 'revenue', 'week', 'region', %s, %s, %s, %s, %s, 100000, 80000,"
            " 120000, %s, 5, 'high', 'spike', %s) returning id",
            [
                f"revenue|week|region={region}-{tag}", f"{region}-{tag}", monday, monday, monday + timedelta(weeks=1),
                100000 * (1 + dev / 100), dev, f"UI test {tag}: revenue in {region} fell {-dev}%.",
            ],
        ).fetchone()[0]
        for region, dev in (("Europe", -70.0), ("North America", -60.0))
    ]  # fmt: skip
    try:
        page = open_page(context, voila.url("anomaly_review", kpi="revenue", page_size=50), ".kpi-incidents")
        lead, other = (page.locator(f".kpi-incident-{i} .kpi-incident-event") for i in ids)
        lead.wait_for(timeout=TIMEOUT)
        assert lead.inner_text() == f"One event with 1 more incident at the same time: #{ids[1]}"
        assert other.inner_text() == f"Part of the event led by #{ids[0]} (2 incidents at the same time)"
    finally:
        db.execute("delete from ops.anomalies where id = any(%s)", [ids])
