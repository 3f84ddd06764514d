"""Bring your own data, a second shop: a Brazilian export from 2016-17 (tests/brl_export.py), not the
2019 GBP one of tests/ui/test_byod.py. Semicolons between fields, decimal commas ('1.234,56'),
day-first local times in São Paulo (with the summer-time hour that happened twice), Portuguese
column names mapped with --map, 27 states, returns, four closed weeks and a few bad rows.

A new user's path on a fresh warehouse: `kpi load lines`, `kpi query`, `kpi ask`, an anomaly scan
and the alert e-mail's subject. Every expected number is computed with pandas from the file and
written with a plain f-string, not with kpi_lib's formatter."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from brl_export import MAP, write_export

KPI = [str(Path(sys.executable).with_name("kpi"))]
ROOT = Path(__file__).resolve().parents[1]
TZ = "America/Sao_Paulo"


def reais(value: float) -> str:
    return f"R${value:,.0f}"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A fresh KPI_HOME in São Paulo time, the export loaded with `kpi load lines` (its output kept)."""
    root = tmp_path_factory.mktemp("brl")
    root.chmod(0o755)
    home = root / "home"
    home.mkdir()
    home.chmod(0o755)  # the embedded server runs as its own system user
    catalog = root / "catalog.yml"
    shutil.copy(ROOT / "catalog.yml", catalog)
    env = {**os.environ, "KPI_HOME": str(home), "KPI_CATALOG": str(catalog), "KPI_TIMEZONE": TZ}
    for var in ("XDG_RUNTIME_DIR", "DATABASE_URL", "REDIS_URL"):
        env.pop(var, None)
    export = root / "vendas_2016_2017.csv"
    df = write_export(export)

    def kpi(*args: str) -> str:
        out = subprocess.run([*KPI, *args], capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, f"kpi {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out.stdout

    try:
        args = ["load", "lines", str(export), "--dayfirst", "--currency", "BRL"]
        for m in MAP:
            args += ["--map", m]
        loaded = kpi(*args)
        yield kpi, env, df, loaded
    finally:
        subprocess.run([*KPI, "stop"], env=env, capture_output=True, timeout=120)


def test_a_semicolon_export_with_decimal_commas_loads_every_good_row(shop):
    _, _, df, loaded = shop
    # the hour that happened twice (18 Feb 2017 23:30) is a time, not a reject
    assert (
        f"read {len(df) + 3:,} rows: loaded {len(df):,} ({df['Nº Pedido'].nunique():,} orders), rejected 3"
        in loaded
    )
    for reason in ("ordered_at is not a date/time", "unit_price is not a number", "order_id is empty"):
        assert f"rejected 1: {reason}" in loaded
    assert "currency: BRL" in loaded
    # the file's own wall times, in its zone (not UTC, three hours later)
    assert f"data from 2016-03-01 09:00 to 2017-06-30 18:45 ({TZ})" in loaded


def test_monthly_revenue_is_the_files_reais_not_centavos(shop):
    """'29,90' is R$29.90: read as 2990 every number would be 100 times too large."""
    kpi, _, df, _ = shop
    out = kpi(
        "query",
        "revenue",
        "--grain",
        "month",
        "--start",
        "2016-11-01",
        "--end",
        "2017-04-01",
        "--format",
        "csv",
    )
    got = pd.read_csv(io.StringIO(out))
    months = df[(df["at"] >= "2016-11-01") & (df["at"] < "2017-04-01")]
    want = months.groupby(months["at"].dt.strftime("%Y-%m-01"))["revenue"].sum().round(2)
    assert list(got["period"]) == list(want.index)  # December and January, though closed for weeks, are there
    assert list(got["value"]) == pytest.approx(list(want.values), abs=0.01)

    day = kpi(
        "query",
        "revenue",
        "--grain",
        "day",
        "--start",
        "2017-02-18",
        "--end",
        "2017-02-19",
        "--format",
        "csv",
    )
    on_the_18th = df[df["at"].dt.strftime("%Y-%m-%d") == "2017-02-18"]
    assert "BR-AMB" in set(on_the_18th["Nº Pedido"])
    got = pd.read_csv(io.StringIO(day))
    assert list(got["period"]) == ["2017-02-18"]
    assert got["value"].iloc[0] == pytest.approx(on_the_18th["revenue"].sum(), abs=0.01)


def test_ask_about_that_year_in_reais(shop):
    kpi, _, df, _ = shop
    march = df[(df["at"] >= "2017-03-01") & (df["at"] < "2017-04-01")]
    out = kpi("ask", "revenue", "in", "March", "2017", "--as-of", "2017-04-15")
    assert f"Revenue was {reais(march['revenue'].sum())} in March 2017." in out

    q1 = df[(df["at"] >= "2017-01-01") & (df["at"] < "2017-04-01") & (df["qty"] > 0)]
    top = q1.groupby("UF")["Nº Pedido"].nunique().sort_values(ascending=False).head(3)
    out = kpi("ask", "top", "3", "uf", "by", "orders", "last", "quarter", "--as-of", "2017-04-15")
    assert ", ".join(f"{uf} ({n})" for uf, n in top.items()) in out
    assert "Q1 2017" in out
    # the answer names the dimension as the data does: the file's "UF" column holds states
    out = kpi("ask", "revenue", "by", "uf", "in", "March", "2017", "--as-of", "2017-04-15")
    sp = reais(march[march["UF"] == "SP"]["revenue"].sum())
    assert f"Revenue by state in March 2017: SP {sp}," in out
    # the file's own currency is a unit; dollars would need a conversion, which is declined
    out = kpi("ask", "revenue", "in", "reais", "in", "March", "2017", "--as-of", "2017-04-15")
    assert f"Revenue was {reais(march['revenue'].sum())} in March 2017." in out
    out = kpi("ask", "revenue", "in", "dollars", "in", "March", "2017", "--as-of", "2017-04-15")
    assert "Amounts are kept in BRL" in out
    # the file's accented column name, as typed or without its accents ("descri o" before)
    for said in ("descrição", "descricao"):
        out = kpi("ask", f"revenue by {said} in March 2017", "--as-of", "2017-04-15")
        assert out.startswith("Revenue by descricao in March 2017: "), out
    # "R$" is the file's own money, said alone ("R$ by state"), not the dollar
    out = kpi("ask", "R$ by UF in March 2017", "--as-of", "2017-04-15")
    assert f"Revenue by state in March 2017: SP {sp}," in out
    # query-speak and a ranking verb on the user's own data: every state but SP, the months in order
    rest = reais(march[march["UF"] != "SP"]["revenue"].sum())
    out = kpi("ask", "revenue, uf != SP, March 2017", "--as-of", "2017-04-15")
    assert f"Revenue excluding SP was {rest} in March 2017." in out
    months = (
        df[(df["at"] >= "2016-03-01") & (df["at"] < "2017-01-01")]
        .groupby(df["at"].dt.strftime("%Y-%m"))["revenue"]
        .sum()
    )
    out = kpi("ask", "rank the months of 2016 by revenue", "--as-of", "2017-04-15")
    assert (
        ", ".join(f"{m} ({reais(v)})" for m, v in months.sort_values(ascending=False).head(3).items()) in out
    )


SCAN = """
import json
from datetime import datetime
from kpi_lib import anomaly, warehouse
from kpi_lib.reports.alert_email import alert_subject

default = anomaly.scan(kpis=["orders", "revenue"], grains=["day"], dimensions={"day": [None]})
anomaly.scan(kpis=["orders"], grains=["day"], dimensions={"day": [None]}, since="2016-12-01")
anomaly.scan(kpis=["revenue"], grains=["day"], dimensions={"day": ["region"]}, since="2017-02-01",
             now=datetime(2017, 3, 10))
with warehouse.connect_raw() as c:
    cur = c.execute("select * from ops.anomalies order by started_at")
    cols = [d.name for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
from kpi_lib.incidents import band_frame, local_time
from kpi_lib.reports.alert_email import incident_chart
drawn = next(r for r in rows if r["band"])
band = band_frame(drawn)
fig, _ = incident_chart(drawn)
shaded = [c.get_label() for c in fig.axes[0].collections]
chart = {"band_from": str(band.index.min()), "started": str(local_time(drawn["started_at"])),
         "expected_at_start": float(band.loc[local_time(drawn["started_at"]), "expected"]),
         "expected": drawn["expected"], "shaded": shaded}
print(json.dumps({"series": default.series, "subject": alert_subject(rows, limit=1000), "chart": chart,
                  "incidents": [{k: str(r[k]) for k in ("kpi", "dim_value", "started_at", "deviation_pct",
                                                           "explanation")} for r in rows]}))
"""


def test_a_scan_reads_the_exports_own_last_days_and_speaks_reais(shop):
    _, env, df, _ = shop
    out = subprocess.run([sys.executable, "-c", SCAN], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # no dates: the scan counts back from the data's as-of (30 Jun 2017), not from today's empty days
    assert res["series"] == 2
    texts = [i["explanation"] for i in res["incidents"]]
    # the lower end of a band around 3 orders a day is 0, not '-0'
    assert texts and not any("-0–" in t or "(-0" in t for t in texts), texts
    # an incident where nothing was expected has no percent: the subject says the amount in reais
    nothing_expected = [i for i in res["incidents"] if i["deviation_pct"] == "None"]
    assert nothing_expected, res["incidents"]
    for i in nothing_expected:
        assert f"Revenue in {i['dim_value']} +R$" in res["subject"]
    assert " –" not in res["subject"]
    # the chart draws the usual range the days before the incident too, in the shop's own time
    chart = res["chart"]
    assert pd.Timestamp(chart["band_from"]) <= pd.Timestamp(chart["started"]) - pd.Timedelta(days=30)
    assert chart["expected_at_start"] == pytest.approx(chart["expected"])
    assert "expected range" in chart["shaded"]
