"""Finding 3 (XSS) and the headers every page needs, in a real Chromium behind the real login.

A filter value in the URL, or a region name that arrived as data, is shown as text: it never runs.
Every response forbids framing and carries a Content-Security-Policy."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kpi_lib import auth, stream

from .conftest import PASSWORD

pytestmark = pytest.mark.ui
TIMEOUT = 90_000


def _sign_in(page, server: str, login: str, next_path: str) -> None:
    page.goto(f"{server}/login?next={next_path}")
    page.fill("input[name=user]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _live(page):
    page.wait_for_function("() => !document.getElementById('kpi-first-paint')", timeout=TIMEOUT)
    page.locator("[data-kpi-value=revenue]").wait_for(timeout=TIMEOUT)
    return page


def _status_text(page) -> str:
    return page.evaluate(
        """() => { const out = [];
          const walk = root => root.querySelectorAll('*').forEach(el => {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (el.textContent && el.textContent.startsWith('Data version')) out.push(el.textContent); });
          walk(document); return out.join('\\n'); }"""
    )


def _wait_for_status(page, needle: str) -> str:
    """The status line follows the tiles, later on a loaded machine: wait for it, then read it."""
    page.wait_for_function(
        """needle => { let found = false;
          const walk = root => root.querySelectorAll('*').forEach(el => {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (el.textContent && el.textContent.startsWith('Data version')
                && el.textContent.includes(needle)) found = true; });
          walk(document); return found; }""",
        arg=needle,
        timeout=TIMEOUT,
    )
    return _status_text(page)


def test_a_filter_in_the_url_is_shown_never_run(context, server, users):
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = "<img src=x onerror=\"window.__xss='url'\">"
    _sign_in(page, server, "sec-exec", "/panel/executive")
    page.goto(f"{server}/panel/executive?region={payload}")
    _live(page)
    assert "<img src=x" in _wait_for_status(page, "<img src=x")  # as text, escaped
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []


def test_a_region_that_arrived_as_data_is_shown_never_run(context, server, users):
    region = f"<svg onload=window.__xss='data-{uuid.uuid4().hex[:4]}'>"
    # a pinned day long before the page's 30 days: a value of the data (the region filter lists it)
    # that no other browser test's breakdown shows
    at = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    stream.ingest(
        [
            {
                "event_id": f"xss-{uuid.uuid4().hex}",
                "order_id": f"XSS{uuid.uuid4().hex[:8]}",
                "ordered_at": at.isoformat(),
                "region": region,
                "channel": "Web",
                "lines": [{"product_id": "P1001", "quantity": 1, "unit_price": 10.0}],
            }
        ],
        source="security-test",
    )
    page = context.new_page()
    _sign_in(page, server, "sec-exec", "/panel/executive")
    from urllib.parse import quote

    page.goto(f"{server}/panel/executive?region={quote(region)}&drill={quote('region:' + region)}")
    _live(page)
    assert "<svg onload" in _wait_for_status(page, "<svg onload")
    assert page.evaluate("() => window.__xss") is None


@pytest.mark.parametrize("path", ["/", "/login", "/inbox", "/panel/executive", "/voila/"])
def test_every_page_forbids_framing_and_has_a_content_security_policy(path, server, client):
    exec_ = client("sec-exec")
    r = exec_.get(path)
    assert r.status_code in (200, 302), r.status_code
    csp = r.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert r.headers.get("X-Frame-Options") == "DENY"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    if path in ("/", "/login", "/inbox"):  # our own pages run no inline script at all
        assert re.search(r"script-src 'self';", csp)


def test_a_page_script_cannot_read_the_session_cookie(context, server, users):
    page = context.new_page()
    _sign_in(page, server, "sec-exec", "/panel/executive")
    _live(page)
    cookie = next(c for c in context.cookies() if c["name"] == auth.COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] in ("Lax", "Strict")
    assert auth.COOKIE not in page.evaluate("() => document.cookie")
    assert cookie["value"] not in page.content()


def test_a_scoped_manager_sees_their_rows_on_the_page_and_in_exports(context, server, users):
    """sec-europe: an executive limited to Europe. Tiles, the region filter and the CSV all say Europe."""
    import csv
    import io

    from kpi_lib import kpis
    from kpi_lib.scope import RowScope, using

    page = context.new_page()
    _sign_in(page, server, "sec-europe", "/panel/executive")
    _live(page)
    today = kpis.as_of().at.date()  # the page counts its 30 days back from the data's as-of
    with using(RowScope.of({"region": ["Europe"]})):
        europe = kpis.query(
            "revenue", "total", start=today - timedelta(days=29), end=today + timedelta(days=1)
        )
    everyone = kpis.query("revenue", "total", start=today - timedelta(days=29), end=today + timedelta(days=1))
    assert europe.value != everyone.value
    shown = page.locator("[data-kpi-value=revenue]").get_attribute("title")
    assert shown == kpis.get("revenue").format_value(europe.value)
    selects = [s.locator("option").all_text_contents() for s in page.locator("select").all()]
    region = next(o for o in selects if o and o[0] == "All")  # the first filter: region
    assert region == ["All", "Europe"]
    page.locator("table.panel-df").first.wait_for(timeout=TIMEOUT)
    with page.expect_download(timeout=TIMEOUT) as dl:
        page.get_by_role("button", name="Table as CSV").click()
    rows = list(csv.reader(io.StringIO(open(dl.value.path(), encoding="utf-8").read())))
    assert rows[0][0] == "Region" and [r[0] for r in rows[1:]] == ["Europe"]
