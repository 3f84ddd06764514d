"""Real-user monitoring and the Operations page, in a real Chromium: the page loads this test makes
are posted by the pages themselves, stored in ops.page_loads and listed on /admin/operations."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD

pytestmark = pytest.mark.ui
TIMEOUT = 60_000


def _sign_in(page, base: str, login: str, next_path: str) -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("input[name=user]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_the_operations_page_lists_this_tests_own_page_loads(context, server, api_tokens, db, api):
    api("api-admin").get(
        "/api/query", params={"kpi": "units", "grain": "total", "start": "2024-01-01", "end": "2024-02-01"}
    )
    page = context.new_page()
    _sign_in(page, server, "api-admin", "/panel/executive")
    page.locator("[data-kpi-value=revenue]").wait_for(timeout=TIMEOUT)
    # the page posts its timing once loaded: wait for the row, not for a time
    page.wait_for_function(
        "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0", timeout=TIMEOUT
    )
    row = None
    for _ in range(100):
        row = db.execute(
            "select page, load_ms, painted_ms from ops.page_loads where login = 'api-admin' order by id desc limit 1"
        ).fetchone()
        if row:
            break
        page.wait_for_timeout(200)
    assert row and row[0] == "/panel/executive" and row[1] > 0
    page.goto(f"{server}/admin/operations")
    table = page.locator("#page-loads")
    assert "/panel/executive" in table.inner_text() and "api-admin" in table.inner_text()
    assert page.locator("#health-score").inner_text().isdigit()
    assert "units" in page.locator("#slowest").inner_text()  # the API query this test made
    levels = page.locator("#levels").inner_text()
    for label in (
        "page load p95",
        "freshness p95",
        "query p95",
        "error rate",
        "cache hit rate",
        "alert latency p95",
    ):
        assert label in levels


def test_the_operations_page_is_for_administrators(context, server, api_tokens):
    page = context.new_page()
    _sign_in(page, server, "api-exec", "/admin/operations")
    assert "Only administrators" in page.content()
