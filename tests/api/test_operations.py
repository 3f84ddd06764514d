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


# What the page held at the moment it posted its timing: the charts (canvases taller than 100 px),
# the filters (selects), whether the first-paint copy of the numbers was still there, and on a
# Voila page its spinner, its widgets and the explorer's table.
ON_POST = """
(() => {
  const orig = window.fetch;
  window.fetch = function (url, opts) {
    if (String(url).endsWith('/api/rum')) {
      const roots = [document];
      for (let i = 0; i < roots.length; i++)
        for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
      const count = (sel, keep) => roots.reduce((n, r) => n + [...r.querySelectorAll(sel)].filter(keep).length, 0);
      window.__rumSaw = {
        charts: count('canvas', (c) => c.getBoundingClientRect().height > 100),
        selects: count('select', () => true),
        firstPaint: !!document.getElementById('kpi-first-paint'),
        voilaSpinner: !!document.getElementById('loading'),
        widgets: document.querySelectorAll('.jupyter-widgets').length,
        table: !!document.querySelector('.kpi-table'),
        body: JSON.parse(opts.body),
      };
    }
    return orig.apply(this, arguments);
  };
})();
"""


def test_the_operations_page_lists_this_tests_own_page_loads(context, server, api_tokens, db, api):
    api("api-admin").get(
        "/api/query", params={"kpi": "units", "grain": "total", "start": "2024-01-01", "end": "2024-02-01"}
    )
    page = context.new_page()
    page.add_init_script(ON_POST)
    _sign_in(page, server, "api-admin", "/panel/executive")
    page.locator("[data-kpi-value=revenue]").wait_for(timeout=TIMEOUT)
    # the page posts its timing once a person can use it: wait for the post, not for a time
    saw = page.wait_for_function("() => window.__rumSaw", timeout=TIMEOUT).json_value()
    # when it said "usable", the whole page was there: both charts, the four filters, live numbers
    assert saw["charts"] >= 2 and saw["selects"] >= 4 and not saw["firstPaint"], saw
    row = None
    for _ in range(100):
        row = db.execute(
            "select page, load_ms, painted_ms, usable_ms from ops.page_loads"
            " where login = 'api-admin' order by id desc limit 1"
        ).fetchone()
        if row:
            break
        page.wait_for_timeout(200)
    assert row and row[0] == "/panel/executive" and row[1] > 0
    assert row[3] == pytest.approx(saw["body"]["usable_ms"])  # stored as the page measured it
    assert row[3] >= row[2] > 0  # the numbers are painted before the page is whole
    page.goto(f"{server}/admin/operations")
    table = page.locator("#page-loads")
    assert "/panel/executive" in table.inner_text() and "api-admin" in table.inner_text()
    assert f"{row[3]:.0f} ms" in table.inner_text()  # the Usable column
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


def test_a_voila_dashboard_posts_its_timing_once_its_widgets_are_drawn(context, server, api_tokens, db):
    """The revenue explorer says "usable" only once Voila has run it and its widgets are drawn:
    the controls and the table are on the page at that moment."""
    page = context.new_page()
    page.add_init_script(ON_POST)
    path = "/voila/voila/render/revenue_explorer.ipynb"
    _sign_in(page, server, "api-admin", path)
    saw = page.wait_for_function("() => window.__rumSaw", timeout=TIMEOUT).json_value()
    assert not saw["voilaSpinner"] and saw["widgets"] > 0 and saw["selects"] >= 1 and saw["table"], saw
    assert saw["body"]["page"] == path and saw["body"]["usable_ms"] >= saw["body"]["painted_ms"] > 0
    row = None
    for _ in range(100):
        row = db.execute(
            "select usable_ms from ops.page_loads where login = 'api-admin' and page = %s order by id desc limit 1",
            [path],
        ).fetchone()
        if row:
            break
        page.wait_for_timeout(200)
    assert row and row[0] == pytest.approx(saw["body"]["usable_ms"])
    page.close(run_before_unload=True)  # Voila's shutdown beacon ends the kernel


def test_the_operations_page_is_for_administrators(context, server, api_tokens):
    page = context.new_page()
    _sign_in(page, server, "api-exec", "/admin/operations")
    assert "Only administrators" in page.content()
