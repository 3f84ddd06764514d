"""The `kpi` command as a user runs it, against the session warehouse: in process (typer's runner),
with one real subprocess (a fresh machine's `kpi demo`) to prove the installed command works."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import kpi

KPI = [str(Path(sys.executable).with_name("kpi"))]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return kpi(*args, check=check)


def test_query_csv_has_period_first_dimensions_then_value(demo):
    out = run("query", "revenue", "--grain", "month", "--by", "region", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["period", "region", "value"]
    assert len(rows) > 5 and all(len(r) == 3 for r in rows)
    float(rows[1][2])


def test_query_json_carries_provenance(demo):
    out = json.loads(
        run("query", "orders", "--grain", "total", "--where", "region=Europe", "--format", "json").stdout
    )
    prov = out["provenance"]
    assert prov["catalog_entries"][0] == "sales_daily" and "any(:w_region)" in prov["sql"]
    assert out["data"][0]["value"] > 0


def test_a_where_value_the_data_does_not_hold_is_an_error_not_a_zero(demo):
    proc = run("query", "orders", "--grain", "total", "--where", "region=Oceania", check=False)
    assert proc.returncode == 2 and "No region 'Oceania'" in proc.stderr and "Europe" in proc.stderr
    assert proc.stdout.strip() == ""  # it answered 0 orders before
    # a slip of case is the one value it can be, and the answer says which
    slip = run("query", "orders", "--grain", "total", "--where", "region=europe", "--format", "json")
    exact = run("query", "orders", "--grain", "total", "--where", "region=Europe", "--format", "json")
    assert json.loads(slip.stdout)["data"] == json.loads(exact.stdout)["data"]
    assert "read as 'Europe'" in slip.stderr


def period_values(table: str) -> dict[str, str]:
    """A `kpi query` table's period -> value cells, as printed."""
    cells = (line.split("│") for line in table.splitlines() if line.startswith("│"))
    return {c[1].strip(): c[2].strip() for c in cells}


def test_a_period_before_the_data_starts_shows_no_data_not_a_zero(demo, db):
    """A 2018 export asked from January showed CHF0 for January and February."""
    first = db.execute(
        "select (min(ordered_at) at time zone ops.business_tz())::date from silver.orders"
    ).fetchone()[0]
    out = run(
        "query",
        "orders",
        "--grain",
        "day",
        "--start",
        str(first - timedelta(days=2)),
        "--end",
        str(first + timedelta(days=1)),
    ).stdout
    rows = period_values(out)
    assert rows[str(first - timedelta(days=2))] == rows[str(first - timedelta(days=1))] == "–"
    assert int(rows[str(first)].replace(",", "")) > 0
    assert "– before the data starts" in out


def test_a_period_after_an_exports_last_order_shows_no_data_not_a_zero(demo, db):
    """The same after the data ends, when "now" is the data's own end (an old export, or --as-of)."""
    last = db.execute(
        "select (max(ordered_at) at time zone ops.business_tz())::date from silver.orders"
    ).fetchone()[0]
    as_of = f"{last + timedelta(days=3)}T00:00"
    out = run(
        "query",
        "orders",
        "--grain",
        "day",
        "--start",
        str(last - timedelta(days=1)),
        "--end",
        str(last + timedelta(days=2)),
        "--as-of",
        as_of,
    ).stdout
    rows = period_values(out)
    assert int(rows[str(last - timedelta(days=1))].replace(",", "")) > 0
    assert rows[str(last + timedelta(days=1))] == "–" and "after it ends" in out


def test_bad_kpi_exits_2_with_the_valid_names(demo):
    proc = run("query", "profit", check=False)
    assert proc.returncode == 2 and "KPIs: revenue" in proc.stderr


def test_status_counts_rows_per_layer(demo):
    info = json.loads(run("status", "--json").stdout)
    assert info["server"]["running"]
    rows = {t["table"]: t["rows"] for t in info["tables"]}
    assert rows["silver.order_lines"] >= demo.lines and rows["gold.sales_hourly"] > 0
    assert info["freshness"]["version"] >= 1
    assert all(0 <= v["owed_versions"] <= v["behind_versions"] for v in info["views"])


def test_status_tells_the_rejects_still_wrong_from_those_of_earlier_loads(demo, tmp_path):
    """A file loaded again, fixed, keeps its earlier load's rejects in bronze (append-only): status
    counted them as if they were still wrong. It now says what each file's latest load rejected."""
    path = tmp_path / f"again_{os.getpid()}.csv"
    tag = f"S{os.getpid()}"
    path.write_text(f"order,date,qty,price\n{tag}a,2012-02-01 10:00,1,5\n{tag}b,2012-02-01 11:00,x,5\n")
    run("load", "lines", str(path))
    out = " ".join(run("status").stdout.split())
    assert f"{path.name} 1 of 2" in out
    path.write_text(f"order,date,qty,price\n{tag}a,2012-02-01 10:00,1,5\n{tag}b,2012-02-01 11:00,2,5\n")
    run("load", "lines", str(path))
    out = " ".join(run("status").stdout.split())
    assert "rejected rows: " in out and path.name not in out
    info = json.loads(run("status", "--json").stdout)
    (mine,) = [f for f in info["rejects"]["latest_loads"] if f["file"] == path.name]
    assert (mine["rows"], mine["rejected"]) == (2, 0) and info["rejects"]["total"] >= 1


def test_status_says_which_view_lag_is_a_refresh_owed():
    from kpi_lib.cli.data import view_lag

    assert view_lag({"behind_versions": 0, "owed_versions": 0}) == "current"
    live = view_lag({"behind_versions": 1950, "owed_versions": 0})  # a stream filling today
    assert live.startswith("1950 versions behind") and "from the base tables" in live
    assert view_lag({"behind_versions": 12, "owed_versions": 3}) == "12 versions behind, 3 to refresh"


def test_sql_runs_one_statement(demo):
    out = run("sql", "select count(*) as n from ops.anomaly_labels").stdout
    assert str(demo.anomalies) in out


def test_load_command_prints_loaded_and_rejected(demo, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("order,date,qty,price\nA1,2012-01-01 10:00,1,5\nA2,2012-01-01 11:00,x,5\n")
    out = run("load", "lines", str(path)).stdout
    assert "loaded 1" in out and "rejected 1" in out and "quantity is not a number" in out


def test_demo_in_a_fresh_home_loads_and_prints_a_working_login(tmp_path):
    """`kpi demo` on an empty KPI_HOME: its own embedded server, the data, and a login that works."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    tmp_path.chmod(0o755)
    env = {**os.environ, "KPI_HOME": str(home)}
    env.pop("XDG_RUNTIME_DIR", None)
    try:
        out = subprocess.run(
            [*KPI, "demo", "--lines", "4000", "--days", "20"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr
        assert "loaded 4," in out.stdout or "loaded 3," in out.stdout
        password = out.stdout.split("password ")[1].split()[0]
        check = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from kpi_lib import auth; print(auth.verify('demo', {password!r}) is not None)",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert check.stdout.strip() == "True", check.stderr
    finally:
        subprocess.run([*KPI, "stop"], env=env, capture_output=True, timeout=120)


def test_simulate_auto_takes_the_pace_of_the_history(demo, db):
    """`--rate auto` continues the business at the pace of its last week, not a made-up rate."""
    from kpi_lib.demo import natural_rate

    last, week = db.execute(
        "select max(ordered_at), count(*) filter (where ordered_at > (select max(ordered_at) - interval '7 days'"
        " from silver.orders where order_id like 'SO%%')) from silver.orders where order_id like 'SO%%'"
    ).fetchone()
    assert week > 0 and natural_rate() == pytest.approx(week / (7 * 86400))
    out = run("simulate", "--duration", "1", check=False)
    assert out.returncode == 0 and "the business's own pace" in out.stderr
    bad = run("simulate", "--rate", "fast", check=False)
    assert bad.returncode != 0 and "positive number of orders per second or 'auto'" in bad.stderr


def test_query_json_is_strict_json_and_money_is_to_the_cent(demo, db):
    """A comparison with nothing before it has no change: null, never a bare NaN that strict
    parsers reject. Money comes to the cent, ratios keep their precision."""
    first = demo.start  # the demo's first week (other tests load files dated years earlier)
    start, end = f"{first:%Y-%m-%d}", f"{first + timedelta(days=7):%Y-%m-%d}"
    window = ["--grain", "day", "--start", start, "--end", end, "--compare", "previous_period"]

    def strict(text: str):
        def refuse(constant: str):
            raise AssertionError(f"{constant} in kpi query's JSON")

        return json.loads(text, parse_constant=refuse)

    rows = strict(run("query", "revenue", *window, "--format", "json").stdout)["data"]
    assert any(r["change"] is None for r in rows)  # the days before the data: no change to state
    assert all(r["value"] == round(r["value"], 2) for r in rows) and any(r["value"] % 1 for r in rows)
    rates = strict(run("query", "return_rate", *window, "--format", "json").stdout)["data"]
    assert any(r["value"] != round(r["value"], 2) for r in rates)  # a ratio keeps its precision
    out = run("query", "aov", *window, "--format", "csv").stdout
    values = [r["value"] for r in csv.DictReader(io.StringIO(out))]
    assert values and all(len(v.partition(".")[2]) <= 2 for v in values)


def test_a_load_that_keeps_no_row_fails_and_lists_only_its_own_rejects(demo, db, tmp_path):
    path = tmp_path / f"all_bad_{os.getpid()}.csv"
    path.write_text(
        "order_id,ordered_at,quantity,unit_price\nA1,not a date,1,9.99\nA2,2025-01-02 10:00,two,9.99\n"
    )
    for _ in range(2):  # loaded twice: bronze keeps both loads' rejects
        proc = run("load", "lines", str(path), check=False)
        assert proc.returncode == 1 and "Nothing was loaded" in proc.stderr, proc.stderr
    query = re.search(r'kpi sql "([^"]+)"', proc.stdout).group(1)
    rows = db.execute(query).fetchall()
    assert [r[0] for r in rows] == [2, 3]  # this load's two rows, not four


def test_alerts_scan_keeps_the_history_s_incidents_and_a_second_scan_adds_none(demo, db):
    """After `kpi load`, nothing scanned the file's history from the command line (only the demo did)."""

    def kept() -> int:
        return db.execute(
            "select count(*) from ops.anomalies where kpi = 'orders' and grain = 'day'"
        ).fetchone()[0]

    first_day = db.execute("select min(ordered_at)::date from silver.orders").fetchone()[0]
    before = kept()
    out = run("alerts", "scan", "--since", str(first_day), "--kpi", "orders", "--grain", "day").stdout
    m = re.search(r"scanned (\d+) series in [\d.]+ s: ([\d,]+) incidents, ([\d,]+) new", out)
    assert m and int(m.group(1)) > 1, out
    assert kept() - before == int(m.group(3).replace(",", ""))
    again = run("alerts", "scan", "--since", str(first_day), "--kpi", "orders", "--grain", "day").stdout
    assert ", 0 new" in again and kept() - before == int(m.group(3).replace(",", ""))


def test_alerts_ack_takes_an_events_ids_and_records_the_login(demo, db):
    """The alert e-mail says `kpi alerts ack 8 13 18` for an event; the command took one id and
    required --user, so the line the e-mail gave failed as written."""
    import getpass

    ids = [
        db.execute(
            "insert into ops.anomalies (series_key, kpi, grain, started_at, value, expected, severity, rule,"
            " explanation) values (%s, 'orders', 'day', ('2011-03-0' || %s || ' 00:00+00')::timestamptz, 0, 40, 'high',"
            " 'spike', 'x') returning id",
            [f"orders|day|ack-test-{os.getpid()}-{n}", str(n)],
        ).fetchone()[0]
        for n in (1, 2)
    ]
    out = run("alerts", "ack", *map(str, ids), "--comment", "shop shut for a week").stdout
    assert all(f"incident {i} acknowledged by {getpass.getuser()}" in out for i in ids)
    rows = db.execute(
        "select status, acknowledged_by, comment from ops.anomalies where id = any(%s) order by id", [ids]
    ).fetchall()
    assert rows == [("acknowledged", getpass.getuser(), "shop shut for a week")] * 2
    db.execute("delete from ops.anomalies where id = any(%s)", [ids])
