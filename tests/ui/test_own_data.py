"""The executive page on a user's own data, not the demo: an export dated 2011 with countries as
regions, loaded with :func:`kpi_lib.loader.load_lines_file` into the session's warehouse (the
demo's data stays live, so nothing here depends on the hour: every window is explicit or pinned).

Every expected number is computed with pandas from the file itself."""

from __future__ import annotations

import random
import re
import time
from datetime import date, datetime, timedelta
from urllib.parse import quote

import pandas as pd
import pytest

from kpi_lib import kpis

from .test_executive import TIMEOUT, live_page, tile_full_value

COUNTRIES = ["United Kingdom", "France", "Germany", "EIRE"]
CATEGORIES = ["Candles", "Lanterns"]
END = datetime(2011, 12, 9, 12, 50)  # the export's last order


def write_export(path) -> pd.DataFrame:
    """~1,200 lines from 1 Sep 2011 to 9 Dec 2011 12:50, like a real online-retail export."""
    rng = random.Random(13)
    rows, t, n = [], datetime(2011, 9, 1, 8), 0
    while t < END:
        n += 1
        country = rng.choices(COUNTRIES, weights=[60, 15, 15, 10])[0]
        for _ in range(rng.randint(1, 3)):
            code = rng.randint(1, 30)
            rows.append(
                {
                    "InvoiceNo": f"OWN2011-{n}",
                    "InvoiceDate": f"{t:%Y-%m-%d %H:%M}",
                    "CustomerID": rng.randint(12000, 12300),
                    "Country": country,
                    "Description": f"OWN ITEM {code}",
                    "Category": CATEGORIES[code % 2],
                    "Quantity": rng.randint(1, 12),
                    "UnitPrice": rng.choice([1.25, 2.55, 4.95, 9.95]),
                }
            )
        t += timedelta(minutes=rng.randint(90, 240))
    rows.append({**rows[-1], "InvoiceNo": f"OWN2011-{n + 1}", "InvoiceDate": f"{END:%Y-%m-%d %H:%M}"})
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    df["at"] = pd.to_datetime(df["InvoiceDate"])
    df["revenue"] = df["Quantity"] * df["UnitPrice"]
    return df


@pytest.fixture(scope="module")
def export(demo, tmp_path_factory):
    from kpi_lib.loader import load_lines_file

    path = tmp_path_factory.mktemp("own") / "online_retail_2011.csv"
    df = write_export(path)
    summary = load_lines_file(path)
    assert summary.loaded == len(df) and summary.rejected == 0
    return df


def revenue(df: pd.DataFrame, first: date, last: date, **where) -> str:
    """The revenue of the file's lines from ``first`` to ``last`` (inclusive), as the page shows it."""
    m = (df["at"] >= pd.Timestamp(first)) & (df["at"] < pd.Timestamp(last) + pd.Timedelta(days=1))
    for col, value in where.items():
        m &= df[col] == value
    return kpis.get("revenue").format_value(round(df.loc[m, "revenue"].sum(), 2))


def test_the_page_counts_back_from_the_as_of_not_the_wall_clock(export):
    """Pinned to the export's end, the page opens on its last 30 days, with the right numbers, no
    'still filling' day (an export's last day is complete) and a footer that says so."""
    from kpi_lib.ui import executive

    dash = executive.ExecutiveDashboard(as_of=END)
    dash.refresh()
    assert (dash.start, dash.end) == (date(2011, 11, 10), date(2011, 12, 9))
    want = revenue(export, date(2011, 11, 10), date(2011, 12, 9))
    assert f'title="{want}"' in dash.tiles.object
    assert "kpi-spark-filling" not in dash.tiles.object
    status = dash.status.object
    assert "as of 9 Dec 2011 12:50 (explicit)" in status
    version = int(re.search(r"Data version (\d+)", status).group(1))
    assert version == kpis.sync_versions() > 0  # the warehouse's version, not 0 after a file load
    curves = dash.trend_chart.drawn()
    assert "So far (still filling)" not in curves  # not even in the legend
    assert curves["This period"]["period"].max() == pd.Timestamp("2011-12-09")


def test_a_day_in_the_url_reads_as_people_write_it():
    from kpi_lib.ui.executive import ExecutiveDashboard

    p = ExecutiveDashboard.param
    assert p.start.deserialize("2011-11-01") == date(2011, 11, 1)
    assert p.end.serialize(date(2011, 11, 30)) == "2011-11-30"


def region_select(page):
    return page.locator("select", has=page.locator("option", has_text="EIRE")).first


def status_text(page) -> str:
    return page.evaluate(
        """() => { const out = [];
          const walk = root => root.querySelectorAll('*').forEach(el => {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (el.textContent && el.textContent.startsWith('Data version')) out.push(el.textContent); });
          walk(document); return out.join('\\n'); }"""
    )


def test_a_link_opens_that_view_on_the_users_own_data_and_survives_a_reload(context, server, export):
    """`?start=2011-11-01&end=2011-11-30&region=France&kpi=orders` opens exactly that: November
    2011 in France (a value only the user's data has), with the numbers of the file."""
    from .conftest import login

    page = context.new_page()
    query = "?start=2011-11-01&end=2011-11-30&region=France&kpi=orders"
    login(page, server, quote(f"/panel/executive{query}", safe="/"))  # the whole link is `next`
    page.wait_for_url(re.compile(r".*/panel/executive.*"), timeout=TIMEOUT)
    want = revenue(export, date(2011, 11, 1), date(2011, 11, 30), Country="France")
    whole = revenue(export, date(2011, 11, 1), date(2011, 11, 30))
    assert want not in (whole, "$0")
    for attempt in ("opened", "reloaded"):
        live_page(page)
        assert tile_full_value(page, "revenue") == want, attempt
        assert region_select(page).input_value() == "France", attempt
        options = region_select(page).locator("option").all_text_contents()
        assert set(COUNTRIES) <= set(options), attempt  # the filter lists the file's countries
        page.wait_for_function(
            """() => { let found = false;
              const walk = root => root.querySelectorAll('*').forEach(el => {
                if (el.shadowRoot) walk(el.shadowRoot);
                if (el.textContent && el.textContent.startsWith('Data version')) found = true; });
              walk(document); return found; }""",
            timeout=TIMEOUT,
        )
        status = status_text(page)
        assert "region=France" in status and "as of " in status, attempt
        assert f"Data version {kpis.sync_versions()}" in status, attempt
        assert "start=2011-11-01" in page.url and "region=France" in page.url, attempt
        page.reload()

    # set a filter on the page: the URL follows, and reloading it shows that view again
    category = page.locator("select", has=page.locator("option", has_text="Lanterns")).first
    category.select_option("Lanterns")
    page.wait_for_url(re.compile(r".*category=Lanterns.*"), timeout=TIMEOUT)
    want = revenue(export, date(2011, 11, 1), date(2011, 11, 30), Country="France", Category="Lanterns")
    deadline = time.time() + 60
    while tile_full_value(page, "revenue") != want and time.time() < deadline:
        time.sleep(0.25)
    assert tile_full_value(page, "revenue") == want
    page.reload()
    live_page(page)
    assert tile_full_value(page, "revenue") == want
    assert region_select(page).input_value() == "France"
    assert (
        page.locator("select", has=page.locator("option", has_text="Lanterns")).first.input_value()
        == "Lanterns"
    )
