"""The Ask box in a real browser, behind the real login: on the landing page and the executive
page, the card shows the number `kpi query` gives, and a viewer sees a masked KPI masked."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from kpi_lib import auth, catalog, kpis

from .conftest import PASSWORD, login

pytestmark = pytest.mark.ui
TIMEOUT = 90_000


def last_month(demo) -> tuple[datetime, datetime, str]:
    """The month before the data's last month, by name: nothing here depends on the wall clock."""
    latest = kpis.latest_data()
    end = latest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = kpis.add_months(end, -1)
    return start, end, f"{start:%B %Y}"


def ask_on_landing(page, question: str):
    page.fill("#kpi-ask-input", question)
    page.click(".kpi-ask button[type=submit]")
    card = page.locator(".kpi-ask-card")
    card.wait_for(timeout=TIMEOUT)
    return card


def test_the_landing_page_box_answers_with_the_number_kpi_query_gives(context, server, demo):
    start, end, month = last_month(demo)
    page = context.new_page()
    login(page, server, "/")
    card = ask_on_landing(page, f"How many orders came from Europe in {month}?")
    r = kpis.query("orders", "total", start=start, end=end, where={"region": "Europe"})
    want = r.value
    k = kpis.get("orders")
    assert card.locator("[data-ask-value=orders]").inner_text() == k.format_compact(want)
    assert k.format_value(want) in card.locator(".kpi-ask-text").inner_text()
    # the disclosure: the SQL (values bound, not in the text) and the catalog entries
    card.locator("summary").click()
    how = card.locator(".kpi-ask-how").inner_text()
    # which entries depends on how current the daily views are after other tests' late orders, and the
    # server may read them a moment before or after this process did: the card names the ones it read
    named = re.search(r"Catalog entries: ([\w, ]+) ·", how)
    assert "any(:w_region)" in how and named, how
    entries = named.group(1).split(", ")
    assert entries and set(entries) <= set(catalog.entry_names())
    link = card.locator("a.kpi-ask-link").get_attribute("href")
    assert link.startswith("/panel/executive?") and "region=Europe" in link and "kpi=orders" in link
    assert context.outside_requests == []


def test_a_breakdowns_table_shows_each_value_as_the_kpi_formats_it(context, server, demo):
    start, end, month = last_month(demo)
    page = context.new_page()
    login(page, server, "/")
    card = ask_on_landing(page, f"revenue by region in {month}")
    r = kpis.query("revenue", "total", start=start, end=end, by="region")
    best = r.df.sort_values("value", ascending=False).iloc[0]
    first = card.locator("table tr").nth(1).locator("td")
    assert first.nth(0).inner_text() == best["region"]
    assert first.nth(1).inner_text() == kpis.get("revenue").format_value(best["value"])  # "$372,071"


def test_a_share_shows_the_slices_percentage_and_both_numbers(context, server, demo):
    start, end, month = last_month(demo)
    page = context.new_page()
    login(page, server, "/")
    card = ask_on_landing(page, f"What share of orders came from Europe in {month}?")
    part = kpis.query("orders", "total", start=start, end=end, where={"region": "Europe"}).value
    whole = kpis.query("orders", "total", start=start, end=end).value
    assert card.locator("[data-ask-value=orders]").inner_text() == f"{part / whole:.1%}"
    k = kpis.get("orders")
    assert f"came from Europe: {k.format_value(part)} of {k.format_value(whole)}." in card.inner_text()


def test_a_mix_shows_each_slices_share_of_the_total_in_the_table(context, server, demo):
    start, end, month = last_month(demo)
    page = context.new_page()
    login(page, server, "/")
    card = ask_on_landing(page, f"order mix by channel in {month}")
    by = kpis.query("orders", "total", start=start, end=end, by="channel").df
    whole = kpis.query("orders", "total", start=start, end=end).value
    best = by.sort_values("value", ascending=False).iloc[0]
    assert [c.inner_text() for c in card.locator("table th").all()] == ["channel", "value", "share"]
    first = card.locator("table tr").nth(1).locator("td")
    assert [first.nth(i).inner_text() for i in range(3)] == [
        best["channel"],
        kpis.get("orders").format_value(best["value"]),
        f"{best['value'] / whole:.1%}",
    ]


def test_an_answer_has_a_link_that_asks_it_again(context, server, demo):
    """After an answer the address asks the same question: opened elsewhere (or typed as
    /ask?q=...), it shows the same card with the question in the box."""
    start, end, month = last_month(demo)
    question = f"How many orders came from Europe in {month}?"
    page = context.new_page()
    login(page, server, "/")
    shown = ask_on_landing(page, question).locator("[data-ask-value=orders]").inner_text()
    page.wait_for_function("() => location.search.startsWith('?q=')", timeout=TIMEOUT)
    assert parse_qs(urlparse(page.url).query) == {"q": [question]}
    want = kpis.get("orders").format_compact(
        kpis.query("orders", "total", start=start, end=end, where={"region": "Europe"}).value
    )
    assert shown == want
    for link in (page.url, f"{server}/ask?{urlencode({'q': question})}"):
        other = context.new_page()
        other.goto(link)
        card = other.locator(".kpi-ask-card")
        card.wait_for(timeout=TIMEOUT)
        assert other.input_value("#kpi-ask-input") == question
        assert card.locator("[data-ask-value=orders]").inner_text() == want
        other.close()


def test_typing_suggests_values_and_html_in_a_question_stays_text(context, server, demo):
    page = context.new_page()
    login(page, server, "/")
    page.fill("#kpi-ask-input", "revenue in Eu")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#kpi-ask-suggestions option')].some(o => o.value === 'revenue in Europe')",
        timeout=TIMEOUT,
    )
    card = ask_on_landing(page, "<img src=x onerror=window.pwned=1> revenue")
    assert card.locator("img").count() == 0 and page.evaluate("() => window.pwned") is None
    assert "<img" in card.locator(".kpi-ask-q").inner_text()


def test_a_viewer_sees_a_masked_kpi_masked(context, server, demo):
    from kpi_lib.auth import users as user_store

    doc = user_store._load()
    doc["roles"]["ask-viewer"] = {"kpis": "*", "masked": ["revenue"]}
    user_store._save(doc)
    auth.set_user("ui-viewer", PASSWORD, ["ask-viewer"], name="UI Viewer")
    start, end, month = last_month(demo)
    page = context.new_page()
    page.goto(f"{server}/login")
    page.fill("input[name=user]", "ui-viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    card = ask_on_landing(page, f"revenue by region in {month}")
    text = card.inner_text()
    assert auth.MASK in text
    total = kpis.query("revenue", "total", start=start, end=end, by=["region"]).df["value"]
    for v in total:
        assert kpis.get("revenue").format_value(v) not in text
    assert not re.search(r"\$\d", text)
    other = ask_on_landing(page, f"orders in {month}")  # an unmasked KPI still answers
    assert re.search(r"\d", other.locator("[data-ask-value=orders]").inner_text())
    # a question's link is asked in the reader's own role: the viewer opening it sees revenue masked
    shared = context.new_page()
    shared.goto(f"{server}/?{urlencode({'q': f'revenue by region in {month}'})}")
    linked = shared.locator(".kpi-ask-card")
    linked.wait_for(timeout=TIMEOUT)
    assert auth.MASK in linked.inner_text() and not re.search(r"\$\d", linked.inner_text())


def test_the_executive_page_box_answers(context, server, demo):
    start, end, month = last_month(demo)
    page = context.new_page()
    login(page, server, "/panel/executive")
    page.wait_for_url(re.compile(r".*/panel/executive.*"), timeout=TIMEOUT)
    box = page.locator(".kpi-ask-input input")
    box.wait_for(timeout=TIMEOUT)
    box.fill(f"revenue in Asia Pacific in {month}")
    box.press("Enter")
    number = page.locator("[data-ask-value=revenue]")
    number.wait_for(timeout=TIMEOUT)
    want = kpis.query("revenue", "total", start=start, end=end, where={"region": "Asia Pacific"}).value
    assert number.inner_text() == kpis.get("revenue").format_compact(want)


def test_a_yes_or_no_pasted_from_chat_shows_the_total_and_the_answer(context, server, demo):
    start, end, month = last_month(demo)
    want = kpis.query("orders", "total", start=start, end=end).value
    page = context.new_page()
    login(page, server, "/")
    # pasted with its chat wrapping; the figure is one more than the total, so the answer is "No"
    card = ask_on_landing(page, f"@ask-bot did we get more than {int(want) + 1:,} orders in {month}? 🙏 thx")
    k = kpis.get("orders")
    assert card.locator("[data-ask-value=orders]").inner_text() == k.format_compact(want)
    text = card.locator(".kpi-ask-text").inner_text()
    assert text.startswith("No: orders were") and f"below {int(want) + 1:,}" in text, text
