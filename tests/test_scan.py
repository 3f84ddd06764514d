"""Scanning the warehouse: incidents found on gold series, stored once, explained with numbers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kpi_lib import kpis, loader
from kpi_lib.anomaly.rules import calendar_days, parse_rules
from kpi_lib.anomaly.scan import rules_for, scan, severity


@pytest.fixture(scope="module")
def outage(demo, tmp_path_factory):
    """Sixty days of a steady region with a daily rhythm, then five hours with no orders at all.

    The story ends at the scan's pinned ``now`` (a plain Wednesday night, whatever the wall clock
    says), and the outage falls on the afternoon peak, when five missing hours are plain to see.
    """
    region = f"Scan-{uuid.uuid4().hex[:6]}"
    now = datetime(2026, 6, 17, 23, 20)
    calendar = parse_rules(rules_for(kpis.definitions()["orders"], "hour")).calendar
    assert not len(calendar_days(calendar, now - timedelta(days=3), now)), "pick a day off the holidays"
    end = kpis.floor_period(now, "hour")
    hours = pd.date_range(end - timedelta(days=60), end, freq="h", inclusive="left")
    rng = np.random.default_rng(5)
    rhythm = 20 + 15 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi)
    counts = rng.poisson(rhythm)
    down_from = hours[-10]
    counts[(hours >= down_from) & (hours < down_from + timedelta(hours=5))] = 0
    times = np.repeat(hours.to_numpy(), counts) + (rng.random(counts.sum()) * 3.6e12).astype(
        "timedelta64[ns]"
    )
    df = pd.DataFrame(
        {
            "order_id": [f"{region}-{i}" for i in range(len(times))],
            "ordered_at": pd.to_datetime(times).strftime("%Y-%m-%d %H:%M:%S"),
            "quantity": 1,
            "unit_price": 25.0,
            "region": region,
            "channel": "Web",
        }
    )
    path = tmp_path_factory.mktemp("scan") / "steady.csv"
    df.to_csv(path, index=False)
    loader.load_lines_file(path)
    expected_hour = float(np.mean(rhythm[hours.hour.to_numpy() == down_from.hour]))
    return region, down_from.to_pydatetime(), expected_hour, now


def _scan(outage):
    region, down_from, _, now = outage
    since = down_from - timedelta(days=2)
    return scan(["orders"], since=since, grains=("hour",), dimensions={"hour": ("region",)}, now=now)


def test_an_outage_becomes_one_incident_with_the_right_numbers(outage, db):
    region, down_from, expected, _ = outage
    res = _scan(outage)
    rows = db.execute(
        "select started_at, ended_at, value, expected, deviation_pct, severity, explanation from ops.anomalies "
        "where series_key = %s order by started_at",
        [f"orders|hour|region={region}"],
    ).fetchall()
    assert res.series >= 1 and rows, "the outage was not found"
    started, ended, value, exp, dev, severity, explanation = rows[0]
    assert abs(started.replace(tzinfo=None) - down_from) <= timedelta(hours=1)
    assert value == 0 and dev == pytest.approx(-100.0)
    assert exp == pytest.approx(expected, rel=0.35)
    assert severity == "high"  # a 100% drop is high whatever the noise
    assert explanation.startswith(f"Orders in {region} was 100% below the expected")
    assert len(rows) == 1, f"more than one incident: {rows}"


def test_scanning_again_updates_but_never_duplicates(outage, db):
    region = outage[0]
    key = f"orders|hour|region={region}"
    _scan(outage)
    before = db.execute("select count(*) from ops.anomalies where series_key = %s", [key]).fetchone()[0]
    again = _scan(outage)
    after = db.execute("select count(*) from ops.anomalies where series_key = %s", [key]).fetchone()[0]
    assert before == after == 1
    assert again.new == 0  # everything it found was stored by the first scan
    assert again.updated >= 1


def test_a_status_set_by_a_person_survives_a_rescan(outage, db):
    from kpi_lib import alerts

    region = outage[0]
    key = f"orders|hour|region={region}"
    _scan(outage)
    anomaly_id = db.execute("select id from ops.anomalies where series_key = %s", [key]).fetchone()[0]
    alerts.acknowledge(anomaly_id, "tester", "looking into it")
    _scan(outage)
    status, who = db.execute(
        "select status, acknowledged_by from ops.anomalies where id = %s", [anomaly_id]
    ).fetchone()
    assert (status, who) == ("acknowledged", "tester")


def test_rules_come_from_the_catalog_per_grain(demo):
    k = kpis.get("gross_margin")
    assert rules_for(k, "hour") is None  # not scanned hourly: too noisy in small slices
    assert rules_for(k, "day")["extends"] == "business_daily_ratio"
    assert rules_for(kpis.get("orders"), "minute")["expected"]["scale"] == "volume"


def test_severity_rises_with_business_impact():
    from kpi_lib.anomaly.incidents import Incident

    inc = Incident(
        start=0,
        peak=0,
        end=None,
        value=0.0,
        expected=10.0,
        lower=5.0,
        upper=15.0,
        deviation_pct=-100.0,
        score=1.1,
        severity="low",
        rule="drop",
        explanation="",
    )
    assert severity(inc) == "high"
    assert severity(inc.__class__(**{**inc.__dict__, "deviation_pct": -30.0})) == "medium"
    assert severity(inc.__class__(**{**inc.__dict__, "deviation_pct": -10.0})) == "low"


def _minute_series(burst: float) -> pd.Series:
    """Ten orders a minute; a five-fold burst at row 200; a four-fold surge from row 400."""
    rng = np.random.default_rng(7)
    x = rng.poisson(10, 420).astype(float)
    x[200:210] *= burst
    x[400:405] = rng.poisson(40, 5)
    return pd.Series(x, pd.date_range("2026-01-01", periods=420, freq="min"))


@pytest.mark.parametrize("burst", [1, 5])
def test_live_minute_rules_alarm_again_after_an_earlier_burst(demo, burst):
    from kpi_lib.anomaly import detect

    fr = detect(_minute_series(burst), rules_for(kpis.get("orders"), "minute"))
    alarms = fr["is_anomaly"].to_numpy()
    assert alarms[300:400].sum() == 0, "a false alarm in the steady hour before the surge"
    assert alarms[400:405].sum() == 1, "the surge was not alarmed once"


def test_a_minute_still_filling_is_no_drop_but_a_surge_in_it_is_news(demo, db):
    """The live scan reads the current minute early to catch surges; a few seconds of orders are
    not an outage."""
    from kpi_lib import stream

    region = f"Part-{uuid.uuid4().hex[:6]}"
    minute = kpis.floor_period(kpis.local_now() - timedelta(minutes=10), "minute")
    start = minute - timedelta(minutes=40)
    gaps = np.random.default_rng(4).exponential(0.1, 30_000).cumsum()  # a busy stream, ~600 a minute
    times = [start + timedelta(seconds=float(g)) for g in gaps if g < 40 * 60 + 5]

    def orders(ts, tag):
        return [
            {
                "event_id": f"{tag}-{i}",
                "order_id": f"{tag}-{i}",
                "ordered_at": pd.Timestamp(t).tz_localize("UTC").isoformat(),
                "customer_id": f"C{tag}{i % 40}",
                "region": region,
                "channel": "Web",
                "lines": [{"product_id": "P1001", "category": "Books", "quantity": 1, "unit_price": 20.0}],
            }
            for i, t in enumerate(ts)
        ]

    stream.ingest(orders(times, f"steady{region}"), source="test-partial")
    key = f"orders|minute|region={region}"

    def scan_at_five_seconds():
        scan(
            ["orders"],
            since=minute - timedelta(minutes=5),
            grains=("minute",),
            dimensions={"minute": ("region",)},
            now=minute + timedelta(seconds=5),
            include_partial=True,
        )
        return db.execute(
            "select started_at, value, expected from ops.anomalies where series_key = %s", [key]
        ).fetchall()

    assert scan_at_five_seconds() == []  # five seconds hold ~50 orders, not the usual 600: no incident
    burst = [minute + timedelta(seconds=1 + i / 1000) for i in range(3000)]
    stream.ingest(orders(burst, f"burst{region}"), source="test-partial")
    found = scan_at_five_seconds()
    assert len(found) == 1
    started, value, expected = found[0]
    assert started.replace(tzinfo=None) == minute and value > 3000 > expected
