"""The executive dashboard in a real browser, behind the real login, against the real warehouse."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import re
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from kpi_lib import kpis, stream

from .conftest import login

pytestmark = pytest.mark.ui
TIMEOUT = 90_000  # ms; the first session of a cold server imports a lot


def tile_full_value(page, kpi: str) -> str:
    """The exact formatted number a tile shows (its title attribute; the big text is compact)."""
    el = page.locator(f"[data-kpi-value={kpi}]")
    el.wait_for(timeout=TIMEOUT)
    return el.get_attribute("title")


def expected(kpi: str, **where) -> str:
    today = kpis.local_now().date()
    r = kpis.query(kpi, "total", start=today - timedelta(days=29), end=today + timedelta(days=1), where=where)
    return kpis.get(kpi).format_value(r.value)


def live_page(page):
    """Wait until the live page has replaced the tiles that came with the HTML."""
    page.wait_for_function("() => !document.getElementById('kpi-first-paint')", timeout=TIMEOUT)
    page.locator("[data-kpi-value=revenue]").wait_for(timeout=TIMEOUT)
    return page


def open_dashboard(context, server, query: str = ""):
    page = context.new_page()
    login(page, server, f"/panel/executive{query}")
    page.wait_for_url(re.compile(r".*/panel/executive.*"), timeout=TIMEOUT)
    return live_page(page)


def test_the_page_html_already_holds_the_tiles(context, server):
    """The numbers are readable before the session has come over the websocket: they come with the
    HTML, right after the scripts the front door sends before the session is built (web/page_shell.py),
    and the live page replaces them (one tile per KPI afterwards)."""
    page = open_dashboard(context, server, "?region=Europe")
    html = context.request.get(f"{server}/panel/executive?region=Europe").text()
    shell, rest = html.split("<!--kpi-shell-->")
    start = rest.index('id="kpi-first-paint"')
    copy = rest[start : rest.index("<script", start)]
    titles = dict(re.findall(r'data-kpi-value="(\w+)" title="([^"]*)"', copy))
    assert titles["revenue"] == expected("revenue", region="Europe") == tile_full_value(page, "revenue")
    assert titles["customers"] == expected("customers", region="Europe")
    assert "bokeh.min.js" in shell and "panel.min.js" in shell and "data-kpi-value" not in shell
    assert page.locator("[data-kpi-value=revenue]").count() == 1


USABLE = """() => {
  const deep = (sel) => { const out = []; const walk = (root) => {
    out.push(...root.querySelectorAll(sel));
    root.querySelectorAll('*').forEach(el => el.shadowRoot && walk(el.shadowRoot)); };
    walk(document); return out; };
  const selects = deep('select').map(s => [...s.options].map(o => o.textContent));
  const charts = deep('canvas').filter(c => c.getBoundingClientRect().height > 100).length;
  const rows = deep('table.panel-df tbody tr').length;
  return {selects, charts, rows, dates: deep('input.flatpickr-input, input[type=text]').length,
          loading: document.body.classList.contains('pn-loading')};
}"""


def test_a_fresh_session_opens_on_the_whole_page_with_no_console_error(context, server):
    """A new session: the filters, both charts and the breakdown table come with the page (no
    further round trip), the loading overlay goes, and the browser logs no error."""
    errors: list[str] = []
    context.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = open_dashboard(context, server)
    page.wait_for_function(
        f"() => {{ const u = ({USABLE})(); return u.charts >= 2 && u.rows > 0; }}", timeout=TIMEOUT
    )
    page.wait_for_load_state("networkidle")
    seen = page.evaluate(USABLE)
    kpi_labels = [k.label for k in kpis.definitions().values()]
    options = seen["selects"]
    assert any("Revenue" in o and set(o) <= set(kpi_labels) for o in options), options  # the KPI picker
    for member in ("Europe", "Web"):  # a region and a channel of the demo
        assert any(member in o and o[0] == "All" for o in options), (member, options)
    assert len(options) >= 4 and seen["dates"] >= 1
    assert seen["charts"] >= 2 and seen["rows"] > 0
    assert not seen["loading"], "the page still shows the loading overlay"
    assert errors == []


# Records the page's websockets and the Bokeh messages it sends (each message's header frame).
WS_LOG = """
(() => {
  const Orig = window.WebSocket;
  const log = window.__wsLog = {opened: [], offered: [], sent: [], replies: []};
  window.WebSocket = function (url, protocols) {
    const fail = window.__failFirst && !log.opened.length;  // the first socket goes nowhere
    const ws = new Orig(fail ? String(url).replace('/ws', '/no-such-socket') : url, protocols);
    log.opened.push(String(url));
    log.offered.push(String((protocols || [])[1] || '').split('.')[0]);  // a token's head, or kpi-early
    ws.addEventListener('message', (ev) => {
      if (typeof ev.data === 'string' && ev.data.includes('"PULL-DOC-REPLY"')) log.replies.push(JSON.parse(ev.data).reqid);
    });
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      if (typeof data === 'string' && data.startsWith('{"msgid"')) {
        const h = JSON.parse(data);
        log.sent.push(h.msgtype + ' ' + h.msgid);
      }
      return send(data);
    };
    return ws;
  };
  window.WebSocket.prototype = Orig.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) window.WebSocket[k] = Orig[k];
})();
"""


def _whole_page(page) -> dict:
    page.wait_for_function(
        f"() => {{ const u = ({USABLE})(); return u.charts >= 2 && u.rows > 0 && !u.loading; }}",
        timeout=TIMEOUT,
    )
    return page.evaluate("() => window.__wsLog")


def test_the_page_asks_for_its_document_once_as_its_html_arrives(context, server):
    """The session's websocket opens with the page's one-time key before its scripts run, and the
    front door asks for the document once the session exists (templates/early_session.js); Bokeh
    takes that socket over: one socket, one request, the page whole and live (a filter change goes
    over it and comes back) with no console error. Twice: the first page teaches the shell."""
    errors: list[str] = []
    context.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    context.add_init_script(WS_LOG)
    page = open_dashboard(context, server)
    for visit in range(2):
        if visit:
            page.reload()
        log = _whole_page(page)
        sockets = [u for u in log["opened"] if "/panel/executive/ws" in u]
        assert len(sockets) == 1 and log["offered"] == ["kpi-early"], log
        # the front door asked for the document as the session answered; the page asked nothing
        assert log["replies"] == ["kpi-early-pull"], log
        assert not [m for m in log["sent"] if m.startswith("PULL-DOC-REQ")], log
    before = tile_full_value(page, "revenue")
    page.locator("select", has=page.locator("option", has_text="Middle East")).first.select_option("Europe")
    want = expected("revenue", region="Europe")
    deadline = time.time() + 60
    while tile_full_value(page, "revenue") != want and time.time() < deadline:
        time.sleep(0.25)
    assert tile_full_value(page, "revenue") == want != before
    assert errors == [], errors


def test_the_page_loads_as_before_when_its_early_socket_fails(context, server):
    """When the early websocket cannot open, Bokeh opens its own and asks for the document itself."""
    errors: list[str] = []
    context.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    context.add_init_script("window.__failFirst = true;")
    context.add_init_script(WS_LOG)
    page = open_dashboard(context, server)
    log = _whole_page(page)
    pulls = [m for m in log["sent"] if m.startswith("PULL-DOC-REQ")]
    assert len(pulls) == 1 and pulls[0] != "PULL-DOC-REQ kpi-early-pull", log
    assert len([u for u in log["opened"] if "/panel/executive/ws" in u]) == 2, log
    assert [e for e in errors if "no-such-socket" not in e and "404" not in e] == [], errors


def test_the_page_document_passes_bokehs_checks(demo):
    """The workers skip Bokeh's per-session document check (BOKEH_VALIDATE_DOC=false, kpi_lib.serve):
    the page it would check reports no error and no warning here."""
    from bokeh.core.validation.check import check_integrity
    from bokeh.document import Document

    from kpi_lib.ui.executive.live import BUDGET, HUB
    from kpi_lib.ui.executive.page import app

    page = app()  # outside a server it starts following new data at once: stopped below
    HUB.leave(page.dashboard)
    BUDGET.join(-1)
    doc = Document()
    doc.add_root(page.get_root(doc))
    issues = check_integrity(list(doc.models))
    assert issues.error == [] and issues.warning == [], issues
    assert len(doc.models) > 100  # the whole page: filters, tiles, both charts, the table


CHART_BOXES = """() => {
  const out = []; const walk = (root) => { out.push(...root.querySelectorAll('canvas'));
    root.querySelectorAll('*').forEach(el => el.shadowRoot && walk(el.shadowRoot)); };
  walk(document);
  const seen = new Map();
  for (const c of out) { const r = c.getBoundingClientRect(); if (r.height <= 100) continue;
    seen.set(`${r.x},${r.y}`, {x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height}); }
  return {boxes: [...seen.values()], width: document.documentElement.scrollWidth};
}"""


def test_on_a_phone_in_the_dark_theme_the_numbers_come_first_and_the_charts_fit_dark(context, server):
    """The charts are Bokeh figures themed like the rest of the page (dark with ?theme=dark); on a
    phone the tiles come above the filters and both charts fit the screen's width."""
    from PIL import Image

    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, server, "/panel/executive?theme=dark")
    page.wait_for_url(re.compile(r".*/panel/executive.*"), timeout=TIMEOUT)
    live_page(page)
    page.wait_for_function(f"() => ({USABLE})().charts >= 2", timeout=TIMEOUT)
    seen = page.evaluate(CHART_BOXES)
    assert len(seen["boxes"]) == 2, seen
    assert seen["width"] <= 391, seen
    for box in seen["boxes"]:
        assert box["x"] >= 0 and box["x"] + box["w"] <= 391, seen
        # the figure's border, just inside its top-left corner: the theme's dark grey, not white
        shot = page.screenshot(
            full_page=True, clip={"x": box["x"] + 2, "y": box["y"] + 2, "width": 6, "height": 6}
        )
        grey = Image.open(io.BytesIO(shot)).convert("L")
        assert max(grey.getdata()) < 90, (box, list(grey.getdata()))
    tiles = page.locator("[data-kpi-value=revenue]").bounding_box()
    kpi_filter = page.locator("select").first.bounding_box()
    assert tiles["y"] < kpi_filter["y"], (tiles, kpi_filter)


def test_the_scripts_travel_gzipped_and_unzip_to_what_panel_serves(context, server):
    """~3 MB of Bokeh and Panel JavaScript: the front door sends it gzipped to browsers that take
    gzip (the same bytes once unzipped), and as it is to those that do not."""
    login(context.new_page(), server)
    html = context.request.get(f"{server}/panel/executive").text()
    src = re.search(r'src="([^"]*bokeh[.]min[.]js[^"]*)"', html).group(1)
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())

    def fetch(encoding: str):
        url = urllib.parse.urljoin(f"{server}/panel/executive", src)
        return urllib.request.urlopen(
            urllib.request.Request(url, headers={"Cookie": cookie, "Accept-Encoding": encoding}), timeout=30
        )

    plain = fetch("identity")
    assert plain.headers.get("Content-Encoding") is None
    plain_body = plain.read()
    for _ in range(2):  # the second answer comes from the kept copy
        packed = fetch("gzip, deflate, br")
        assert packed.headers["Content-Encoding"] == "gzip"
        body = packed.read()
        assert len(body) < len(plain_body) / 2
        assert gzip.decompress(body) == plain_body


def test_the_page_sends_only_the_scripts_it_runs_each_kept_by_the_browser_for_good(context, server):
    """No WebGL bundle and no ES-module shims (the page draws on a canvas and has no ESM
    component): 230 KB less to compile on a first visit. Every script's URL carries its version and
    is answered immutable, first from the worker and then from the front door's copy, so a returning
    browser runs them from its own cache (with V8's code cache) without asking."""
    page = open_dashboard(context, server)
    html = context.request.get(f"{server}/panel/executive").text()
    srcs = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)
    assert not [s for s in srcs if "bokeh-gl" in s or "es-module-shims" in s], srcs
    for name in ("bokeh.min.js", "bokeh-widgets.min.js", "bokeh-tables.min.js", "panel.min.js", "rum.js"):
        assert any(name in s for s in srcs), (name, srcs)
    for src in srcs:
        assert re.search(r"[?&]v=\w{8,}", src), src
        url = urllib.parse.urljoin(f"{server}/panel/executive", src)
        for _ in range(2):
            r = context.request.get(url)
            assert r.ok and r.headers["cache-control"] == "public, max-age=31536000, immutable", (
                src,
                r.headers,
            )
    again = context.new_page()
    again.goto(f"{server}/panel/executive")
    live_page(again)
    fetched = again.evaluate(
        "() => performance.getEntriesByType('resource').filter(e => e.initiatorType === 'script')"
        ".map(e => [e.name, e.transferSize])"
    )
    assert fetched and all(size == 0 for _, size in fetched), fetched  # all from the browser's cache
    page.close()


def test_the_front_door_answers_the_scripts_itself_while_the_dashboard_worker_is_busy(context, server):
    """Once any visitor has loaded them, the page's scripts come from the front door's copy: a page
    opened while the Panel worker is busy building other sessions (here: stopped outright) still
    gets them at once, and a browser holding them is told they have not changed."""
    import json
    import os
    import signal
    from pathlib import Path

    login(context.new_page(), server)
    html = context.request.get(f"{server}/panel/executive").text()
    src = re.search(r'src="([^"]*bokeh[.]min[.]js[^"]*)"', html).group(1)
    url = urllib.parse.urljoin(f"{server}/panel/executive", src)
    first = context.request.get(url)
    assert first.ok
    panel = json.loads((Path(os.environ["KPI_HOME"]) / "serve.json").read_text())["children"]["panel"]
    os.kill(panel, signal.SIGSTOP)
    try:
        again = context.request.get(url, timeout=10_000)
        unchanged = context.request.get(url, headers={"If-None-Match": first.headers["etag"]}, timeout=10_000)
    finally:
        os.kill(panel, signal.SIGCONT)
    assert again.ok and again.body() == first.body()
    assert unchanged.status == 304


def test_five_pages_opened_at_once_each_become_whole_with_no_console_error(browser, server):
    """Five people open the page at the same moment (new browser profiles): the front door hands the
    worker one page at a time; every page still gets its tiles, filters, both charts and the table,
    and no browser logs an error."""
    contexts, pages, errors = [], [], []
    for _ in range(5):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page = ctx.new_page()
        login(page, server, "/")
        contexts.append(ctx)
        pages.append(page)
    try:
        for page in pages:  # each navigation starts without waiting for the one before
            page.evaluate("(u) => { window.location.href = u; }", f"{server}/panel/executive")
        for page in pages:
            page.wait_for_url(re.compile(r".*/panel/executive$"), timeout=TIMEOUT)
            live_page(page)
            page.wait_for_function(
                f"() => {{ const u = ({USABLE})(); return u.charts >= 2 && u.rows > 0 && u.selects.length >= 4; }}",
                timeout=TIMEOUT,
            )
            assert tile_full_value(page, "revenue") == expected("revenue")
    finally:
        for ctx in contexts:
            ctx.close()
    assert errors == []


def test_without_login_you_get_the_login_page(context, server):
    page = context.new_page()
    page.goto(f"{server}/panel/executive")
    assert "/login" in page.url
    assert page.locator("input[name=password]").is_visible()
    page.fill("input[name=user]", "ui-exec")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.get_by_text("Unknown user or wrong password.").is_visible()


def test_tiles_equal_kpi_lib_query(context, server):
    errors: list[str] = []
    context.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
    page = open_dashboard(context, server)
    for kpi in ("revenue", "orders", "aov", "customers", "return_rate"):
        assert tile_full_value(page, kpi) == expected(kpi), kpi
    assert page.get_by_text("Sign out UI Executive").is_visible()
    # the charts and the table arrive after the tiles, with their stylesheets: all must stay local,
    # in a later session too (a per-session pn.extension() once switched every stylesheet to a CDN)
    for p in (page, open_dashboard(context, server)):
        p.locator("table.panel-df").first.wait_for(timeout=TIMEOUT)
        p.wait_for_load_state("networkidle")
    assert context.outside_requests == [], f"requests left 127.0.0.1: {context.outside_requests[:5]}"
    assert errors == []  # e.g. no 404 for the favicon the browser asks for


def test_a_filter_changes_the_numbers_and_the_url(context, server):
    page = open_dashboard(context, server)
    before = tile_full_value(page, "revenue")
    page.locator("select", has=page.locator("option", has_text="Middle East")).first.select_option("Europe")
    page.wait_for_url(re.compile(r".*region=Europe.*"), timeout=TIMEOUT)
    want = expected("revenue", region="Europe")
    deadline = time.time() + 60
    while tile_full_value(page, "revenue") != want and time.time() < deadline:
        time.sleep(0.25)
    assert tile_full_value(page, "revenue") == want != before
    # the URL is a shareable link: opening it shows the same numbers
    link = page.url
    other = context.new_page()
    other.goto(link)
    assert tile_full_value(live_page(other), "revenue") == want


def breakdown_rows(page) -> list[list[str]]:
    table = page.locator("table.panel-df")
    table.first.wait_for(timeout=TIMEOUT)
    rows = []
    for tr in table.first.locator("tbody tr").all():
        rows.append([c.inner_text().strip() for c in tr.locator("td").all()])
    return rows


def header_cells(page) -> list[str]:
    return [c.inner_text().strip() for c in page.locator("table.panel-df").first.locator("thead th").all()]


def first_bar(chart) -> tuple[float, float]:
    """Where the leftmost bar is drawn on the chart (CSS pixels from its corner), found in a
    screenshot as a person finds it: wherever the axis ends and however many bars there are."""
    from PIL import Image

    shot = Image.open(io.BytesIO(chart.screenshot())).convert("RGB")
    scale = shot.width / chart.bounding_box()["width"]
    bar = (0x4C, 0x78, 0xA8)  # the bars' blue (kpi_lib.ui.executive.charts.BLUE)
    px = shot.load()

    def blue_rows(x: int) -> list[int]:
        return [
            y for y in range(shot.height) if all(abs(a - b) <= 12 for a, b in zip(px[x, y], bar, strict=True))
        ]

    columns = [x for x in range(shot.width) if len(blue_rows(x)) >= 5]
    assert columns, "no bar is drawn on the breakdown chart"
    run = [columns[0]]
    for x in columns[1:]:
        if x != run[-1] + 1:
            break
        run.append(x)
    mid = run[len(run) // 2]
    rows = blue_rows(mid)
    return mid / scale, (rows[0] + rows[-1]) / 2 / scale


def test_drill_down_and_breadcrumb(context, server):
    page = open_dashboard(context, server)
    top_region = breakdown_rows(page)[0][0]  # waits for the breakdown, which follows the tiles
    assert header_cells(page)[0] == "Region"
    deadline = time.time() + TIMEOUT / 1000  # the charts arrive just after the tiles
    while True:
        canvases = [
            c for c in page.locator("canvas").all() if (c.bounding_box() or {}).get("height", 0) > 100
        ]
        if len(canvases) >= 2 or time.time() > deadline:
            break
        time.sleep(0.25)
    assert len(canvases) >= 2, "the trend and breakdown charts are not on the page"
    chart = max(canvases, key=lambda c: c.bounding_box()["y"])  # the breakdown is below the trend
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    x, y = first_bar(chart)  # bars are sorted largest first
    page.mouse.click(box["x"] + x, box["y"] + y)
    crumb = page.get_by_role("button", name=f"› {top_region}")
    crumb.wait_for(timeout=TIMEOUT)
    page.wait_for_url(re.compile(r".*drill=region.*"), timeout=TIMEOUT)
    drill = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["drill"]
    assert drill == [f"region:{top_region}"], page.url
    deadline = time.time() + 30
    while header_cells(page)[0] != "Category" and time.time() < deadline:
        time.sleep(0.25)
    assert header_cells(page)[0] == "Category"
    # the link, shared or reloaded, opens on the same drill: breadcrumb and the next level's rows
    shared = context.new_page()
    shared.goto(page.url)
    live_page(shared).get_by_role("button", name=f"› {top_region}").wait_for(timeout=TIMEOUT)
    breakdown_rows(shared)
    assert header_cells(shared)[0] == "Category"
    shared.close()
    page.get_by_role("button", name="All").click()
    deadline = time.time() + 30
    while header_cells(page)[0] != "Region" and time.time() < deadline:
        time.sleep(0.25)
    assert header_cells(page)[0] == "Region"


def test_exported_csv_holds_the_rows_on_screen(context, server):
    page = open_dashboard(context, server)
    shown = breakdown_rows(page)
    with page.expect_download(timeout=TIMEOUT) as dl:
        page.get_by_role("button", name="Table as CSV").click()
    data = list(csv.reader(io.StringIO(open(dl.value.path(), encoding="utf-8").read())))
    assert data[0] == ["Region", "Revenue"]
    assert [r[0] for r in data[1:]] == [r[0] for r in shown]
    # the screen shows whole dollars, the file cents: each cell is the screen's number within its
    # rounding (formatting the file's cents again can round a half-dollar the other way)
    on_screen = [float(re.sub(r"[^0-9.\-]", "", r[1])) for r in shown]
    assert all(abs(float(r[1]) - v) <= 0.5 + 1e-9 for r, v in zip(data[1:], on_screen, strict=True)), (
        data,
        shown,
    )
    assert all(len(r[1].partition(".")[2]) <= 2 for r in data[1:])  # money to the cent, no float noise
    with page.expect_download(timeout=TIMEOUT) as dl:
        page.get_by_role("button", name="Charts as PNG").click()
    assert open(dl.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with page.expect_download(timeout=TIMEOUT) as dl:
        page.get_by_role("button", name="Everything as XLSX").click()
    assert open(dl.value.path(), "rb").read(2) == b"PK"


def ingest_order(
    prefix: str, unit_price: float, region: str = "Latin America", seconds_ago: float = 5, **fields
):
    """Stream one new order of one line through the real ingest path. Latin America by default:
    test_jobs expects exactly one incident in Europe."""
    at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    event = {
        "event_id": f"{prefix.lower()}-{at.timestamp()}",
        "order_id": f"{prefix.upper()}{at.timestamp()}",
        "ordered_at": at.isoformat(),
        **fields,
        "region": region,
        "channel": "Web",
        "lines": [{"product_id": "P1001", "quantity": 1, "unit_price": unit_price}],
    }
    return stream.ingest([event], source="ui-test")


def test_new_data_appears_without_reload(context, server):
    page = open_dashboard(context, server)
    before = tile_full_value(page, "orders")
    ingest_order("UI", 12345.0, region="Europe", seconds_ago=30, customer_id="CUI1")
    want = expected("orders")
    assert want != before
    deadline = time.time() + 30
    while tile_full_value(page, "orders") != want and time.time() < deadline:
        time.sleep(0.1)
    assert tile_full_value(page, "orders") == want


def _tile_title(html_text: str, kpi: str) -> str:
    return re.search(rf'data-kpi-value="{kpi}" title="([^"]*)"', html_text).group(1)


def _queries_asked_here(monkeypatch) -> list:
    """The KPI queries this thread asks from now on (their arguments). This thread only: the
    process's own live hub may still follow pages that earlier tests opened, in a thread of its own."""
    asked = []
    real_query = kpis.query
    me = threading.get_ident()

    def counted(*a, **k):
        if threading.get_ident() == me:
            asked.append(a)
        return real_query(*a, **k)

    monkeypatch.setattr(kpis, "query", counted)
    return asked


def test_a_page_opened_on_a_busy_stream_paints_the_newest_tiles_then_catches_up(demo, monkeypatch):
    """In-process (no browser): the first paint reuses the tiles another session just computed for
    the same view instead of asking again; the refresh that follows on load shows new data."""
    from kpi_lib.ui import executive

    first = executive.ExecutiveDashboard()
    first._render_tiles()
    asked = _queries_asked_here(monkeypatch)
    second = executive.ExecutiveDashboard()
    second._render_tiles(first_paint=True)
    assert asked == [] and second.tiles.object == first.tiles.object
    ingest_order("NP", 54321.0)
    second.refresh()  # what catch_up does once the page is on screen
    assert asked, "the refresh did not recompute"
    assert _tile_title(second.tiles.object, "orders") == expected("orders")
    assert _tile_title(second.tiles.object, "orders") != _tile_title(first.tiles.object, "orders")
    third = executive.ExecutiveDashboard()
    third._render_tiles(first_paint=True)  # the newest tiles now: the second page's
    assert _tile_title(third.tiles.object, "orders") == expected("orders")


def test_live_sessions_on_one_view_share_one_computation(demo, monkeypatch):
    """In-process: after a new data version, one round of the live hub runs the tiles' queries once
    for five sessions on the same view and once for a sixth on another view; every page shows the
    new order. A session that changed its view meanwhile recomputes instead of taking stale tiles."""
    from kpi_lib.ui import executive

    # this round is about tiles: the charts (redrawn at most every few seconds, so on a slow machine
    # perhaps in this round too) are not due
    monkeypatch.setattr(executive.live.BUDGET, "chart_interval", lambda: 3600.0)
    hub = executive.LiveHub()
    same = [executive.ExecutiveDashboard() for _ in range(5)]
    other = executive.ExecutiveDashboard(region="Latin America")
    moved = executive.ExecutiveDashboard()
    for dash in [*same, other, moved]:
        dash.refresh()
        hub._dashboards.add(dash)  # what join() does, without the thread (the test runs the round)
        # counted here: the tiles' queries; charts redraw on their own clock (every 2 s or more),
        # which a slow machine would otherwise let into the count
        dash._last_charts = time.monotonic() + 60
    before = _tile_title(same[0].tiles.object, "orders")
    ingest_order("SH", 25.0)
    asked = _queries_asked_here(monkeypatch)
    real_key, calls = moved._tiles_key, []

    def key_then_move() -> tuple:
        calls.append(1)
        if len(calls) > 1:  # the round grouped it with the five; then the user picked a region
            moved.region = "Latin America"
        return real_key()

    monkeypatch.setattr(moved, "_tiles_key", key_then_move)
    assert hub.round() == 2  # the six on the default view, and the other region
    per_view = 2 * len(same[0].tile_kpis)  # a total and a daily series per tile
    assert len(asked) == 3 * per_view  # two views, and `moved` once more for its new view
    for dash in same:
        assert _tile_title(dash.tiles.object, "orders") == expected("orders") != before
    assert _tile_title(moved.tiles.object, "orders") == expected("orders", region="Latin America")
    assert _tile_title(other.tiles.object, "orders") == expected("orders", region="Latin America")


def test_a_session_gone_mid_round_does_not_stop_the_others(demo):
    """A page closed while the hub computes: Bokeh refuses callbacks on its destroyed document. The
    hub drops that session and still delivers to the others, round after round (once, this error
    killed the hub's thread and every page of the process stopped updating)."""
    from kpi_lib.ui import executive

    class DestroyedDocument:
        def add_next_tick_callback(self, _cb):
            raise AttributeError("'DocumentCallbackManager' object has no attribute '_change_callbacks'")

    hub = executive.LiveHub()
    gone, alive = executive.ExecutiveDashboard(), executive.ExecutiveDashboard()
    gone._doc = DestroyedDocument()
    for dash in (gone, alive):
        hub._dashboards.add(dash)
    for _ in range(2):
        alive.tiles.object = ""
        assert hub.round() == 1
        assert _tile_title(alive.tiles.object, "orders") == expected("orders")
    assert hub._dashboards == {alive}


def test_a_masked_kpis_charts_say_why_they_are_empty(demo, monkeypatch):
    """A viewer sees revenue masked: both charts are drawn without values and say so, and an
    unmasked KPI's charts carry no such note."""
    from kpi_lib import auth
    from kpi_lib.ui import executive

    auth.set_user("exec-viewer", "viewer-password-1", ["viewer"])
    monkeypatch.setattr(executive.dashboard.auth, "current_user", lambda: auth.user("exec-viewer"))
    assert executive.ExecutiveDashboard().kpi == "orders"  # opened plainly: a KPI the viewer can read
    dash = executive.ExecutiveDashboard(kpi="revenue")  # a link to revenue still opens revenue, masked
    dash.refresh()
    assert dash.user.is_masked("revenue") and dash.kpi == "revenue"
    for chart in (dash.trend_chart, dash.bars_chart):
        assert chart.figure.title.text == executive.charts.MASKED_NOTE
    assert all(v != v for v in dash.bars_chart.source.data["value"])  # NaN: no value drawn
    dash.kpi = "orders"
    dash.refresh()
    for chart in (dash.trend_chart, dash.bars_chart):
        assert chart.figure.title.text == ""


def test_the_trend_draws_the_period_still_filling_apart(demo):
    """Today is only hours old: drawn as the "so far" dotted line, not as the end of the solid one."""
    from kpi_lib.ui import executive

    dash = executive.ExecutiveDashboard()
    dash.refresh()
    today = kpis.floor_period(kpis.local_now(), "day")
    curves = dash.trend_chart.drawn()
    lines = {"Previous period", "This period", "So far (still filling)"}
    assert lines <= set(curves) and set(curves) - lines <= {"Incident"}  # earlier tests' incidents may show
    assert curves["This period"]["period"].max() < today
    assert curves["So far (still filling)"]["period"].max() == today


def test_sparklines_draw_today_so_far_dotted_and_off_the_scale(demo):
    """A tile's sparkline ending on today: the full days are the solid line, scaled to themselves;
    today so far is a dotted last step. A range ending before today has no dotted step."""
    from kpi_lib.ui import executive
    from kpi_lib.ui.tiles import sparkline

    svg = sparkline([10, 12, 11, 2], width=90, height=34, last_filling=True)
    solid, dotted = re.findall(r'points="([^"]+)"', svg)
    ys = [float(p.split(",")[1]) for p in solid.split()]
    assert len(ys) == 3 and min(ys) == 3.0 and max(ys) == 31.0  # 12 at the top, 10 at the bottom
    assert dotted.split()[0] == solid.split()[-1] and 'stroke-dasharray="2 3"' in svg

    dash = executive.ExecutiveDashboard()
    dash.refresh()
    assert dash.tiles.object.count("kpi-spark-filling") == len(dash.tile_kpis)
    today = kpis.local_now().date()
    dash.dates.value = (today - timedelta(days=14), today - timedelta(days=1))
    dash.refresh()
    assert "kpi-spark-filling" not in dash.tiles.object and "kpi-spark" in dash.tiles.object


def test_chart_redraws_spread_out_as_live_sessions_grow():
    """One live session redraws its charts every 2 s; eleven share a quarter of the server's loop,
    so the tiles' new numbers do not queue behind eleven chart redraws."""
    from kpi_lib.ui.executive import CHART_REFRESH_S, LiveBudget

    budget = LiveBudget()
    budget.join(1)
    budget.add(0.3)  # a chart redraw took 0.3 s
    assert budget.chart_interval() == CHART_REFRESH_S
    budget.join(10)
    assert budget.chart_interval() == pytest.approx(11 * budget.chart_cost / 0.25)
    assert budget.chart_interval() > 10
    budget.join(-11)
    assert budget.chart_interval() == CHART_REFRESH_S


def test_a_bar_picked_in_the_breakdown_drills_into_its_member(demo):
    """In-process: what a click on a bar sends the server (its index in the bars' selection) moves
    the drill path one level down; the bar does not stay selected."""
    from kpi_lib.ui import executive

    dash = executive.ExecutiveDashboard()
    dash.refresh()
    source = dash.bars_chart.source
    first = source.data["label"][0]
    assert dash.bars_level == "region"
    source.selected.indices = [0]
    assert dash.drill == f"region:{first}"
    assert source.selected.indices == []


def test_a_chart_redraw_due_after_the_session_ended_is_dropped(demo):
    """A live burst leaves a chart catch-up due (a timer thread); when the session has ended by
    then, Bokeh has destroyed its document: the catch-up is dropped instead of raising there."""
    from bokeh.document import Document

    from kpi_lib.ui import executive

    dash = executive.ExecutiveDashboard()
    dash.refresh()

    class Session:  # what a server session registers on its document
        def _document_patched(self, _event) -> None:
            pass

    doc, session = Document(), Session()
    doc.on_change_dispatch_to(session)
    dash._doc = doc
    dash._last_charts = 0.0  # the redraw is due
    doc.destroy(session)  # what Bokeh does to a closed session's document
    dash._catch_up_charts()
    assert not dash._charts_due


def test_sessions_take_charts_built_ahead_each_pair_once():
    """The charts of the next sessions are built while the worker is idle (ChartPool); each
    session gets a pair of its own, and one built on the spot when none is left."""
    from tornado.ioloop import IOLoop

    from kpi_lib.ui.executive.charts import ChartPool

    pool = ChartPool(size=2)
    pool.IDLE_S = 0.01

    async def fill() -> None:
        pool.refill_later()
        while len(pool) < 2:
            await asyncio.sleep(0.01)

    def worker() -> None:  # a thread of its own: the browser tests' Playwright holds this one's loop
        loop = IOLoop(make_current=False)
        loop.run_sync(fill, timeout=30)
        loop.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    pairs = [pool.take() for _ in range(3)]
    assert len(pool) == 0
    figures = {id(f) for trend, bars in pairs for f in (trend.figure, bars.figure)}
    assert len(figures) == 6
    assert all(trend.figure.document is None for trend, _ in pairs)  # in no session's document yet


def test_a_previous_period_before_the_first_order_is_no_comparison(demo):
    """Dates reaching back past half the data: the previous period would start before the first
    order, so the tiles say where the data starts instead of a growth figure against a part."""
    from kpi_lib.ui import executive

    first = kpis.earliest_data().date()
    last = kpis.latest_data().date()
    dash = executive.ExecutiveDashboard()
    dash.dates.value = (first + timedelta(days=3), last)
    dash.refresh()
    note = f"no comparison (data from {first:%-d %b %Y})"
    assert dash.tiles.object.count(note) == len(dash.tile_kpis)
    assert "vs previous period" not in dash.tiles.object
    dash.dates.value = (last - timedelta(days=6), last)  # a week: its previous week has data
    dash.refresh()
    assert "no comparison" not in dash.tiles.object and "vs previous period" in dash.tiles.object
