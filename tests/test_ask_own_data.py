"""Ask on a user's own data, not the demo: an export dated 2011 with countries as regions, loaded
with `kpi load lines --map region=Country` into a fresh warehouse. "Last month" counts from the
data's own end (its as-of), "by country" works because the load recorded the column's name, and
every number equals `kpi query` on the same warehouse."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

KPI = [str(Path(sys.executable).with_name("kpi"))]
COUNTRIES = ["United Kingdom", "France", "Germany", "EIRE", "Spain"]


def write_export(path: Path) -> None:
    """~1,500 lines from 1 Sep 2011 to 9 Dec 2011 12:50, like a real online-retail export."""
    rng = random.Random(7)
    start, end = datetime(2011, 9, 1, 8), datetime(2011, 12, 9, 12, 50)
    rows = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    t, n = start, 560000
    while t < end:
        n += 1
        country = rng.choices(COUNTRIES, weights=[70, 10, 10, 5, 5])[0]
        for _ in range(rng.randint(1, 4)):
            code = rng.randint(20000, 20040)
            rows.append(
                f"{n},{code},ITEM {code},{rng.randint(1, 12)},{t:%m/%d/%Y %H:%M},{rng.choice([1.25, 2.55, 4.95, 9.95])},"
                f"{rng.randint(12000, 12400)},{country}"
            )
        t += timedelta(minutes=rng.randint(60, 200))
    rows.append(f"{n + 1},20001,ITEM 20001,1,12/09/2011 12:50,2.55,12001,France")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def own_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    root.chmod(0o755)
    home = root / "home"
    home.mkdir()
    home.chmod(0o755)
    env = {**os.environ, "KPI_HOME": str(home)}
    env.pop("XDG_RUNTIME_DIR", None)
    export = root / "online_retail_2011.csv"
    write_export(export)
    try:
        load = subprocess.run(
            [*KPI, "load", "lines", str(export), "--map", "region=Country", "--map", "order_id=InvoiceNo"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert load.returncode == 0, load.stderr
        yield env
    finally:
        subprocess.run([*KPI, "stop"], env=env, capture_output=True, timeout=120)


def kpi_json(env, *args) -> dict:
    out = subprocess.run(
        [*KPI, *args, "--format", "json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_revenue_in_france_last_month_on_an_export_from_2011(own_home):
    a = kpi_json(own_home, "ask", "revenue in France last month")
    assert a["status"] == "answer" and a["as_of"].startswith("2011-12-09T12:50")
    assert a["spec"]["start"] == "2011-11-01T00:00:00" and a["spec"]["end"] == "2011-12-01T00:00:00"
    truth = kpi_json(
        own_home,
        "query",
        "revenue",
        "--grain",
        "total",
        "--start",
        "2011-11-01",
        "--end",
        "2011-12-01",
        "--where",
        "region=France",
    )
    assert a["value"] == pytest.approx(truth["data"][0]["value"]) and a["value"] > 0
    assert "latest data" in a["as_of_text"]


def test_by_country_uses_the_name_the_load_recorded_and_the_uk_is_an_alias(own_home):
    a = kpi_json(own_home, "ask", "Which country had the highest revenue last month?")
    truth = kpi_json(
        own_home,
        "query",
        "revenue",
        "--grain",
        "total",
        "--start",
        "2011-11-01",
        "--end",
        "2011-12-01",
        "--by",
        "region",
    )
    best = max(truth["data"], key=lambda r: r["value"])["region"]
    assert a["status"] == "answer" and a["labels"] == [best]
    uk = kpi_json(own_home, "ask", "orders in the UK this month so far")
    truth = kpi_json(
        own_home,
        "query",
        "orders",
        "--grain",
        "total",
        "--start",
        "2011-12-01",
        "--end",
        "2011-12-10",
        "--where",
        "region=United Kingdom",
    )
    assert uk["status"] == "answer" and uk["value"] == truth["data"][0]["value"]
    assert "partly covered" in uk["text"] and "12:50" in uk["text"]


def test_a_kpi_whose_inputs_were_never_loaded_is_declined(own_home):
    a = kpi_json(own_home, "ask", "what was our gross margin last month?")
    assert a["status"] == "decline" and a["value"] is None and "unit_cost" in a["reason"]
    b = kpi_json(own_home, "ask", "revenue in Antarctica last month")
    assert b["status"] == "decline" and b["value"] is None


@pytest.mark.parametrize(
    "question, start, end",
    [
        ("revenue on Black Friday", "2011-11-25", "2011-11-26"),  # the day after 24 Nov 2011
        ("orders last weekend", "2011-12-03", "2011-12-05"),  # the data ends on Friday 9 Dec 2011
        ("revenue on the 1st", "2011-12-01", "2011-12-02"),
        ("orders in week 48", "2011-11-28", "2011-12-05"),  # ISO week 48 of 2011
        ("revenue a week ago today", "2011-12-02", "2011-12-03"),
    ],
)
def test_named_days_and_weekends_count_from_the_datas_own_end(own_home, question, start, end):
    a = kpi_json(own_home, "ask", question)
    assert a["status"] == "answer", a["text"]
    assert (a["spec"]["start"], a["spec"]["end"]) == (f"{start}T00:00:00", f"{end}T00:00:00")
    truth = kpi_json(own_home, "query", a["kpi"], "--grain", "total", "--start", start, "--end", end)
    assert a["value"] == pytest.approx(truth["data"][0]["value"]) and a["value"] > 0


def test_a_time_of_day_on_the_exports_own_yesterday(own_home):
    a = kpi_json(own_home, "ask", "orders yesterday between 9am and 5pm")
    assert a["status"] == "answer", a["text"]
    assert (a["spec"]["start"], a["spec"]["end"]) == ("2011-12-08T09:00:00", "2011-12-08T17:00:00")
    truth = kpi_json(
        own_home,
        "query",
        "orders",
        "--grain",
        "total",
        "--start",
        "2011-12-08T09:00",
        "--end",
        "2011-12-08T17:00",
    )
    assert a["value"] == truth["data"][0]["value"] and a["value"] > 0
    assert "09:00–17:00" in a["text"]


def test_a_revenue_mix_by_country_and_the_7_days_ending_yesterday_on_the_export(own_home):
    a = kpi_json(own_home, "ask", "revenue mix by country last month")
    assert a["status"] == "answer" and a["spec"]["by"] == ["region"], a["text"]
    truth = kpi_json(
        own_home,
        "query",
        "revenue",
        "--grain",
        "total",
        "--start",
        "2011-11-01",
        "--end",
        "2011-12-01",
        "--by",
        "region",
    )
    whole = sum(r["value"] for r in truth["data"])
    assert {r["region"]: r["share"] for r in a["rows"]} == pytest.approx(
        {r["region"]: r["value"] / whole for r in truth["data"]}
    )
    week = kpi_json(own_home, "ask", "orders in the 7 days ending yesterday")  # 2 to 8 Dec 2011
    assert (week["spec"]["start"], week["spec"]["end"]) == ("2011-12-02T00:00:00", "2011-12-09T00:00:00")


def test_a_total_against_a_period_the_data_only_begins_inside_says_so_and_offers_like_for_like(own_home):
    """On a Swiss export from 1 March 2018, "revenue YTD vs the same period last year" answered +35% with
    a trailing note: eight months against six. Like for like it was +1.9%."""
    b = kpi_json(own_home, "ask", "orders in Q4 2011 vs Q3 2011")  # the data starts on 1 Sep 2011
    assert (
        b["status"] == "answer"
        and "Careful: the data starts on 1 Sep 2011, so Q3 2011 holds only part" in b["text"]
    )
    (like,) = b["choices"]
    assert like == "orders from 2 Dec 2011 to 31 Dec 2011 vs from 1 Sep 2011 to 30 Sep 2011"
    c = kpi_json(own_home, "ask", like)
    truth = [
        kpi_json(own_home, "query", "orders", "--grain", "total", "--start", s, "--end", e)["data"][0][
            "value"
        ]
        for s, e in (("2011-12-02", "2012-01-01"), ("2011-09-01", "2011-10-01"))
    ]
    assert c["status"] == "answer" and "Careful" not in c["text"]
    assert c["change_pct"] == pytest.approx((truth[0] / truth[1] - 1) * 100)
    # a rate is compared as it is, with the plain coverage note
    d = kpi_json(own_home, "ask", "average order value in Q4 2011 vs Q3 2011")
    assert d["status"] == "answer" and "data starts on 1 Sep 2011" in d["text"] and not d["choices"]


def test_a_trend_lists_the_months_the_data_holds_not_zeros_around_them(own_home):
    """'Revenue by month in 2011' on an export from September to 9 December listed eight months of
    $0 before it (and a 2019 export's trend, four after it)."""
    a = kpi_json(own_home, "ask", "revenue by month in 2011")
    assert a["status"] == "answer", a["text"]
    assert a["text"].startswith("Revenue by month in 2011: 2011-09 ")
    assert "2011-08" not in a["text"] and "2011-12 " in a["text"] and "data starts on 1 Sep 2011" in a["text"]
    assert len(a["labels"]) == 12  # the rows and labels still hold every month asked about
