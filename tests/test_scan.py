"""Scanning the warehouse: incidents found on gold series, stored once, explained with numbers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kpi_lib import kpis, loader
from kpi_lib.anomaly.rules import calendar_days, parse_rules
from kpi_lib.anomaly.scan import rules_for, scan
from kpi_lib.incidents import LISTED, band_frame


def _load_hours(region: str, hours: pd.DatetimeIndex, counts: np.ndarray, rng, path) -> None:
    """Load ``counts[i]`` one-unit $25 web orders in ``region`` at random times in each hour."""
    times = np.repeat(hours.to_numpy(), counts) + (rng.random(counts.sum()) * 3.6e12).astype(
        "timedelta64[ns]"
    )
    pd.DataFrame(
        {
            "order_id": [f"{region}-{i}" for i in range(len(times))],
            "ordered_at": pd.to_datetime(times).strftime("%Y-%m-%d %H:%M:%S"),
            "quantity": 1,
            "unit_price": 25.0,
            "region": region,
            "channel": "Web",
        }
    ).to_csv(path, index=False)
    loader.load_lines_file(path)


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
    _load_hours(region, hours, counts, rng, tmp_path_factory.mktemp("scan") / "steady.csv")
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
    assert started.replace(tzinfo=None) == down_from  # its first empty hour, not the hour it alarmed on
    assert value == 0 and dev == pytest.approx(-100.0)
    assert exp == pytest.approx(expected, rel=0.35)
    assert severity == "high"  # a 100% drop is high whatever the noise
    assert explanation.startswith(f"Orders in {region} were 100% below the expected")
    assert len(rows) == 1, f"more than one incident: {rows}"


def test_the_chart_shows_the_usual_range_the_days_before_the_outage_too(outage, db):
    """The e-mail's and Anomaly review's chart draws the range each hour was judged against, from
    three days before the outage, not one value carried across the incident alone."""
    from matplotlib.dates import date2num
    from psycopg.rows import dict_row

    from kpi_lib.reports import alert_email

    region, down_from, expected, _ = outage
    _scan(outage)
    row = (
        db.cursor(row_factory=dict_row)
        .execute("select * from ops.anomalies where series_key = %s", [f"orders|hour|region={region}"])
        .fetchone()
    )
    band = row["band"]
    assert band and len(band["t"]) == len(band["expected"]) == len(band["lower"]) == len(band["upper"])
    frame = band_frame(row)
    assert frame.index.min() <= down_from - timedelta(days=2, hours=12)
    # the outage's first hour is stored with what it was judged against: the usual hour, not zero
    assert frame.loc[down_from, "expected"] == pytest.approx(expected, rel=0.35)
    assert frame.loc[down_from, "lower"] > 0 == row["value"]
    # a listing leaves bands out (a chart's worth of numbers each); the chart reads its own by id
    listed = {
        c
        for (c,) in db.execute(
            "select column_name from information_schema.columns where table_schema = 'ops' and table_name = 'anomalies'"
        ).fetchall()
    }
    assert set(LISTED) == listed - {"band"}
    assert band_frame({"id": row["id"]}).equals(frame)
    fig, _ = alert_email.incident_chart(row)
    shaded = next(c for c in fig.axes[0].collections if c.get_label() == "expected range")
    x0, x1 = shaded.get_datalim(fig.axes[0].transData).intervalx
    assert x0 <= date2num(down_from - timedelta(days=2, hours=12)) and x1 > date2num(down_from)


@pytest.fixture(scope="module")
def two_surges(demo, tmp_path_factory):
    """Sixty days of a steady region, then a two-hour surge and, five hours later, another."""
    region = f"Surge-{uuid.uuid4().hex[:6]}"
    now = datetime(2026, 6, 17, 23, 20)
    end = kpis.floor_period(now, "hour")
    hours = pd.date_range(end - timedelta(days=60), end, freq="h", inclusive="left")
    rng = np.random.default_rng(8)
    rate = 20 + 15 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi)
    first = hours[-12]
    second = first + timedelta(hours=5)
    for at in (first, second):
        rate[(hours >= at) & (hours < at + timedelta(hours=2))] *= 5
    counts = rng.poisson(rate)
    _load_hours(region, hours, counts, rng, tmp_path_factory.mktemp("surges") / "surges.csv")
    return region, first.to_pydatetime(), second.to_pydatetime(), now


def test_a_surge_after_its_incident_was_resolved_is_a_new_incident(two_surges, db):
    """Resolving says "fixed": the same series surging again is news, even while the rules would
    still count it as the incident someone closed (hourly incidents stay open for 24 calm hours)."""
    from kpi_lib import alerts

    region, first, second, now = two_surges
    key = f"orders|hour|region={region}"

    def scanned() -> list[tuple]:
        scan(
            ["orders"],
            since=first - timedelta(days=1),
            grains=("hour",),
            dimensions={"hour": ("region",)},
            now=now,
        )
        return db.execute(
            "select id, started_at, ended_at, status from ops.anomalies where series_key = %s order by started_at",
            [key],
        ).fetchall()

    rows = scanned()
    assert len(rows) == 1, rows  # both surges: one incident, still open across the calm hours
    ((iid, started, _, _),) = rows
    assert first <= started.replace(tzinfo=None) <= first + timedelta(hours=1)
    alerts.resolve(iid, "ana", "bot blocked")
    # pinned: resolved two hours after the first surge began, between the surges
    db.execute(
        "update ops.anomalies set resolved_at = %s where id = %s", [_ts_utc(first + timedelta(hours=2)), iid]
    )
    rows = scanned()
    assert len(rows) == 2, rows
    (_, _, ended, status), (_, again, _, status2) = rows
    assert status == "resolved" and status2 == "open"
    assert second <= again.replace(tzinfo=None) <= second + timedelta(hours=1)
    assert ended < again  # the resolved one ends where the new one begins
    assert len(scanned()) == 2  # scanning again finds the same two


def test_resolving_during_a_surges_tail_cuts_nothing_but_a_new_surge_in_that_minute_does(demo):
    """Live minutes: the 5-minute mean still holds the old surge for a few minutes (those minutes
    fire on ordinary values: no news); a surge in the very minute someone resolved is news."""
    from kpi_lib.anomaly import detect, incidents
    from kpi_lib.anomaly.scan import rearmed

    x = np.random.default_rng(0).poisson(12, 390).astype(float)
    x[380] += 120
    calm = pd.Series(x, pd.date_range("2026-01-01", periods=390, freq="min"))
    rules = rules_for(kpis.get("orders"), "minute")
    frame = detect(calm, rules)
    (first,) = incidents(frame)
    resolved_at = first.start + timedelta(minutes=3, seconds=20)  # while the mean still fires
    assert frame.loc[resolved_at.floor("min") :, "rule"].iloc[0] != ""
    assert len(incidents(rearmed(frame, [(first.start, resolved_at)], "minute"))) == 1
    surged = calm.copy()
    surged[resolved_at.floor("min")] += 120  # seconds after the resolution, in the same minute
    frame = rearmed(detect(surged, rules), [(first.start, resolved_at)], "minute")
    old, new = incidents(frame)
    assert new.start == resolved_at.floor("min") and old.end < new.start


def test_a_resolved_hourly_incident_ends_before_the_next_surges_first_hour(demo):
    """Hourly surges fire on their second hour ("2 of 3 hours"): the first hour of a surge after a
    resolution is the new surge's, not the tail of the incident someone resolved."""
    from kpi_lib.anomaly import detect, incidents
    from kpi_lib.anomaly.scan import rearmed

    hours = pd.date_range("2026-04-18", periods=60 * 24, freq="h")
    rate = 20 + 15 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi)
    first, second = hours[-12], hours[-7]
    for at in (first, second):
        rate[(hours >= at) & (hours < at + timedelta(hours=2))] *= 5
    x = pd.Series(np.random.default_rng(8).poisson(rate).astype(float), hours)
    frame = detect(x, rules_for(kpis.get("orders"), "hour"))
    (whole,) = [i for i in incidents(frame) if i.start >= first]  # one incident, open across both
    assert whole.start == first and whole.alarm_at == first + timedelta(hours=1)
    resolved_at = first + timedelta(hours=2)
    old, new = [
        i for i in incidents(rearmed(frame, [(whole.start, resolved_at)], "hour")) if i.start >= first
    ]
    assert old.start == first and old.end < second  # before: it ran on into the new surge's first hour
    assert new.start == second and new.alarm_at == second + timedelta(hours=1)  # as for the first surge
    assert new.value > 4 * new.expected


@pytest.fixture(scope="module")
def refund_nights(demo, tmp_path_factory):
    """Sixty days of a region's orders at about $40 each, with quiet nights; on the last night three
    hours hold one order each and a refund of $400 (an average order value of about -$360)."""
    region = f"Thin-{uuid.uuid4().hex[:6]}"
    now = datetime(2026, 6, 17, 23, 20)
    end = kpis.floor_period(now, "hour")
    hours = pd.date_range(end - timedelta(days=60), end, freq="h", inclusive="left")
    rng = np.random.default_rng(0)
    counts = rng.poisson(12 + 10 * np.sin((hours.hour.to_numpy() - 9) / 24 * 2 * np.pi))
    refunds = hours[-22:-19]  # 01:00-03:00: one order each, and a refund of four $100 items
    counts[-22:-19] = 1
    at = np.repeat(hours.to_numpy(), counts) + (rng.random(counts.sum()) * 3.6e12).astype("timedelta64[ns]")
    at = np.concatenate([at, refunds.to_numpy() + np.timedelta64(20, "m")])
    n = len(at)
    pd.DataFrame(
        {
            "order_id": [f"{region}-{i}" for i in range(n)],
            "ordered_at": pd.to_datetime(at).strftime("%Y-%m-%d %H:%M:%S"),
            "quantity": [1] * (n - 3) + [-4] * 3,
            "unit_price": np.r_[np.round(rng.lognormal(np.log(40), 0.4, n - 3), 2), [100.0] * 3],
            "region": region,
            "channel": "Web",
        }
    ).to_csv(path := tmp_path_factory.mktemp("refunds") / "refunds.csv", index=False)
    loader.load_lines_file(path)
    return region, refunds, now


def test_an_hours_average_order_value_over_one_refund_is_not_an_incident(refund_nights, db):
    """Before, the scan stored "Average order value in Thin-… was 1051% below the expected $42" for
    a night of single refunds; a ratio over fewer orders than ``min_ratio_volume`` is not judged."""
    region, refunds, now = refund_nights
    res = scan(
        ["aov"], since=now - timedelta(days=3), grains=("hour",), dimensions={"hour": ("region",)}, now=now
    )
    assert not res.errors
    df = kpis.query(
        "aov",
        "hour",
        start=refunds[0].to_pydatetime(),
        end=refunds[-1].to_pydatetime() + timedelta(hours=1),
        by=["region"],
    ).df
    mine = df.loc[df["region"] == region, "value"]
    assert len(mine) == 3 and (mine < 0).all()  # the hours are there: one order, one refund each
    stored = db.execute(
        "select started_at, explanation from ops.anomalies where series_key = %s",
        [f"aov|hour|region={region}"],
    ).fetchall()
    assert stored == []


def _ts_utc(naive: datetime) -> datetime:
    from datetime import UTC

    return naive.replace(tzinfo=UTC)  # the tests' business time zone is UTC


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


def test_an_incident_stored_under_its_alarm_hour_is_moved_to_its_start_not_stored_twice(outage, db):
    """Scans before incidents reached back to where the run began keyed them by the hour their
    alarm was raised on: the next scan moves that row to the incident's start (no second e-mail)."""
    region = outage[0]
    key = f"orders|hour|region={region}"
    _scan(outage)
    ((iid, started),) = db.execute(
        "select id, started_at from ops.anomalies where series_key = %s", [key]
    ).fetchall()
    db.execute("update ops.anomalies set started_at = %s where id = %s", [started + timedelta(hours=1), iid])
    again = _scan(outage)
    assert db.execute("select id, started_at from ops.anomalies where series_key = %s", [key]).fetchall() == [
        (iid, started)
    ]
    assert again.new == 0


def test_a_scan_says_how_far_back_its_new_incidents_start(outage, db):
    """The outage alarms on its second empty hour (a 3-hour median) but starts on its first: the
    live listener e-mails incidents started since ``new_since``, which may precede the scan's window."""
    region, down_from, _, _ = outage
    key = f"orders|hour|region={region}"
    db.execute("delete from ops.anomalies where series_key = %s", [key])
    res = _scan(outage)
    ((iid, started),) = db.execute(
        "select id, started_at from ops.anomalies where series_key = %s", [key]
    ).fetchall()
    assert iid in res.new_ids and started == _ts_utc(down_from)
    assert res.new_since <= started  # the earliest of what is new (other series' may be new too)


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


@pytest.mark.parametrize("kpi", ["orders", "units", "revenue"])
def test_a_sparse_live_minute_does_not_alarm_on_each_order(demo, kpi):
    """The demo's own pace: an order every two minutes or so, spread over regions. A region's minute
    is mostly 0, so the median error is 0 and an order used to read as "Orders in North America was
    1 above the expected 0 (0-0)", high, and was e-mailed. Such minutes are too small to judge."""
    from kpi_lib.anomaly import detect, incidents

    rng = np.random.default_rng(3)
    minutes = pd.date_range("2026-01-01 05:00", periods=360, freq="min")
    orders = rng.poisson(0.15, len(minutes)).astype(float)  # one region's share of the stream
    per_order = {
        "orders": 1.0,
        "units": rng.integers(1, 9, len(minutes)),
        "revenue": rng.gamma(2.0, 250.0, len(minutes)),
    }
    series = pd.Series(orders * per_order[kpi], minutes)
    assert (series > 0).sum() > 30  # some fifty orders in six hours
    found = incidents(detect(series, rules_for(kpis.get(kpi), "minute")))
    assert found == [], [i.explanation for i in found]


def test_a_minute_still_filling_is_no_drop_but_a_surge_in_it_is_news(demo, db):
    """The live scan reads the current minute early to catch surges; a few seconds of orders are
    not an outage."""
    from kpi_lib import stream

    region = f"Part-{uuid.uuid4().hex[:6]}"
    minute = kpis.floor_period(kpis.local_now() - timedelta(minutes=10), "minute")
    # a busy stream, ~600 a minute, for 100 minutes: a series is judged after its own warm-up (the
    # live rules need 30 minutes for an expected value, then 50 for their bounds), not against
    # zeros from before it existed
    start = minute - timedelta(minutes=100)
    gaps = np.random.default_rng(4).exponential(0.1, 62_000).cumsum()
    times = [start + timedelta(seconds=float(g)) for g in gaps if g < 100 * 60 + 5]

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


# --- a real-looking export: a year, 30 countries of very different sizes, no categories -----------

#: share of orders by country, as in a UK wholesaler's export: one big home market, a long tail
COUNTRIES = {
    "United Kingdom": 0.80,
    "Germany": 0.035,
    "France": 0.035,
    "EIRE": 0.02,
    "Spain": 0.012,
    "Netherlands": 0.01,
    "Belgium": 0.009,
    "Switzerland": 0.008,
    "Portugal": 0.006,
    "Australia": 0.005,
    "Norway": 0.004,
    "Italy": 0.004,
    "Channel Islands": 0.003,
    "Finland": 0.003,
    "Cyprus": 0.0025,
    "Sweden": 0.002,
    "Austria": 0.002,
    "Denmark": 0.002,
    "Japan": 0.002,
    "Poland": 0.0015,
    "Israel": 0.001,
    "USA": 0.001,
    "Hong Kong": 0.001,
    "Singapore": 0.001,
    "Iceland": 0.0006,
    "Canada": 0.0005,
    "Greece": 0.0005,
    "Malta": 0.0004,
    "United Arab Emirates": 0.0003,
    "Lebanon": 0.0002,
}
#: what really happened (inclusive days), and where a person would look for it
INJECTED = {
    "site outage": ("2007-05-08", "2007-05-10", ["revenue|day", "orders|day"]),
    "reseller surge in Germany": ("2007-08-14", "2007-08-16", ["orders|day|region=Germany"]),
    "UK pricing bug": ("2007-10-23", "2007-10-25", ["revenue|day|region=United Kingdom"]),
}
EXPORT_NOW = datetime(2007, 12, 8, 6, 0)  # the morning after the export's last day


def retail_export(seed: int = 7) -> pd.DataFrame:
    """A year of a wholesaler's order lines in yen, UCI-style columns, closed on Saturdays, growing
    towards Christmas, with over-dispersed daily demand and heavy-tailed baskets (unit prices
    log-normal, 1-12 units a line), and the INJECTED incidents:

    * site outage: three days on which 90% of orders from every country fail;
    * reseller surge: Germany's orders quadruple for three days;
    * UK pricing bug: three days on which UK unit prices lose a digit (a tenth of the usual; orders
      unchanged).
    """
    rng = np.random.default_rng(seed)
    names = list(COUNTRIES)
    share = np.array([COUNTRIES[c] for c in names])
    share = share / share.sum()
    de, uk = names.index("Germany"), names.index("United Kingdom")

    def inside(name: str, day: str) -> bool:
        a, b, _ = INJECTED[name]
        return a <= day <= b

    rows, invoice = [], 500_000
    days = pd.date_range("2007-01-02", "2007-12-07", freq="D")
    for d in days:
        if d.dayofweek == 5:
            continue
        day = str(d.date())
        t = (d - days[0]).days / 365
        level = 70 * (1 + 0.9 * t**2) * (0.55 if d.dayofweek == 6 else 1.0)
        country = rng.choice(len(names), size=rng.poisson(level * rng.gamma(30, 1 / 30)), p=share)
        if inside("site outage", day):
            country = country[rng.random(len(country)) < 0.1]
        if inside("reseller surge in Germany", day):
            country = np.concatenate([country, np.full(rng.poisson(level * share[de] * 3), de)])
        for c in country:
            invoice += 1
            when = d + pd.Timedelta(hours=int(rng.integers(7, 20)), minutes=int(rng.integers(0, 60)))
            for _ in range(1 + rng.poisson(1.0)):
                price = float(np.round(np.exp(rng.normal(6.3, 0.8))))
                if c == uk and inside("UK pricing bug", day):
                    price = float(round(price / 10))
                rows.append(
                    (
                        invoice,
                        f"SKU{rng.integers(10000, 10400)}",
                        int(rng.integers(1, 13)),
                        when.strftime("%Y-%m-%d %H:%M"),
                        price,
                        f"C{rng.integers(12000, 18000)}",
                        names[c],
                    )
                )
    return pd.DataFrame(
        rows,
        columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"],
    )


@pytest.fixture(scope="module")
def retail_scan(demo, tmp_path_factory):
    """The export loaded as a new user would (`kpi load`), then a daily scan of revenue and orders
    over its whole year, overall, by country and by category, at a pinned now."""
    path = tmp_path_factory.mktemp("retail") / "online_retail_2007.csv"
    retail_export().to_csv(path, index=False)
    summary = loader.load_lines_file(path)
    assert summary.rejected == 0 and summary.mapping["region"] == "Country"
    res = scan(
        ["revenue", "orders"],
        since="2007-01-01",
        grains=("day",),
        dimensions={"day": (None, "region", "category")},
        now=EXPORT_NOW,
    )
    return res


def _retail_rows(db) -> list[dict]:
    cur = db.execute(
        "select series_key, dimension, dim_value, started_at, value, expected, severity, explanation "
        "from ops.anomalies where kpi in ('revenue', 'orders') and grain = 'day' "
        "and started_at >= '2007-01-01' and started_at < '2008-01-01' order by started_at"
    )
    names = [c.name for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _explained_by(row: dict) -> str | None:
    day = row["started_at"].date()
    for name, (a, b, _) in INJECTED.items():
        if pd.Timestamp(a).date() <= day <= (pd.Timestamp(b) + timedelta(days=2)).date():
            return name
    return None


def test_a_sparse_multi_country_year_raises_the_true_incidents_and_not_the_noise(retail_scan, db):
    rows = _retail_rows(db)
    for name, (a, b, keys) in INJECTED.items():
        for key in keys:
            hits = [
                r
                for r in rows
                if r["series_key"] == key
                and pd.Timestamp(a).date()
                <= r["started_at"].date()
                <= (pd.Timestamp(b) + timedelta(days=2)).date()
            ]
            assert hits, f"{name} not found on {key}: {[(r['series_key'], r['started_at']) for r in rows]}"
    noise = [r for r in rows if _explained_by(r) is None]
    # the old scan raised 199 incidents on 64 series here (155 of them "high"), like the 275 of the
    # issue; what is left beyond the injected incidents are days with a few very large baskets
    assert len(noise) <= 5, [(r["series_key"], r["started_at"].date(), r["explanation"]) for r in noise]
    assert len(rows) <= 15, [(r["series_key"], r["started_at"].date()) for r in rows]


def test_sparse_countries_single_orders_and_no_deviation_never_alarm(retail_scan, db):
    rows = _retail_rows(db)
    small = {c for c, s in COUNTRIES.items() if s < 0.01}
    assert not [r for r in rows if r["dim_value"] in small], "a country with under 1% of the orders alarmed"
    assert all(abs(r["value"] - r["expected"]) >= 3 for r in rows if r["series_key"].startswith("orders"))
    assert all(r["value"] != r["expected"] for r in rows)
    assert retail_scan.immaterial.get("volume", 0) > 0  # found by the rules, dropped as immaterial


def test_a_dimension_with_one_value_is_not_scanned(retail_scan, db):
    rows = _retail_rows(db)
    assert {"revenue|day|category", "orders|day|category"} <= set(retail_scan.skipped)
    assert not [r for r in rows if r["dimension"] == "category"]  # category=Unknown would repeat the overall


def test_history_has_a_warm_up_and_severity_is_business_impact(retail_scan, db):
    rows = _retail_rows(db)
    first_day = pd.Timestamp("2007-01-02").date()
    assert all(r["started_at"].date() >= first_day + timedelta(days=28) for r in rows), (
        "the first weeks alarmed"
    )
    outage = [r for r in rows if r["series_key"] in ("revenue|day", "orders|day")]
    assert outage and all(_explained_by(r) == "site outage" for r in outage)
    assert all(r["severity"] == "high" for r in outage)  # 80-90% of the whole business gone
    surge = next(r for r in rows if r["series_key"] == "orders|day|region=Germany")
    assert "Impact: the gap is " in surge["explanation"] and "orders overall." in surge["explanation"]
    assert (
        surge["explanation"].startswith("Orders in Germany were ")
        and "above the expected" in surge["explanation"]
    )


def test_impact_reads_as_a_share_of_a_usual_period_and_never_as_over_100_percent():
    from kpi_lib.anomaly.scan import impact_sentence

    assert (
        impact_sentence(0.042, "revenue", "day")
        == "Impact: the gap is 4.2% of a usual day's revenue overall."
    )
    assert (
        impact_sentence(1.756, "revenue", "day")
        == "Impact: the gap is 1.8 times a usual day's revenue overall."
    )


def test_average_order_value_by_country_finds_the_uk_pricing_bug_and_nothing_else(retail_scan, db):
    """A ratio on the user's own export: a day's average basket of a country with a handful of
    orders is one or two baskets (not judged under ``min_ratio_volume`` orders); the UK's three
    days of prices a tenth of the usual are the incident."""
    res = scan(
        ["aov"], since="2007-01-01", grains=("day",), dimensions={"day": (None, "region")}, now=EXPORT_NOW
    )
    assert res.series > 20 and not res.errors
    rows = db.execute(
        "select series_key, started_at, explanation from ops.anomalies where kpi = 'aov' "
        "and started_at >= '2007-01-01' and started_at < '2008-01-01' order by series_key"
    ).fetchall()
    assert {key for key, _, _ in rows} == {"aov|day", "aov|day|region=United Kingdom"}, rows
    a, b, _ = INJECTED["UK pricing bug"]
    assert all(pd.Timestamp(a).date() <= at.date() <= pd.Timestamp(b).date() for _, at, _ in rows)
    uk = next(text for key, _, text in rows if key.endswith("United Kingdom"))
    assert uk.startswith("Average order value in United Kingdom ") and "89% below the expected" in uk


@pytest.fixture(scope="module")
def margin_slip(demo, tmp_path_factory):
    """A wholesaler's 2009 export: four months of daily orders at a steady 25% margin, then three
    days a supplier's price error put costs at 140% of prices (a margin of -40%)."""
    region = f"Margin-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(9)
    days = pd.date_range("2009-03-01", "2009-06-30", freq="D")
    counts = rng.poisson(40, len(days))
    at = np.repeat(days.to_numpy(), counts) + (rng.random(counts.sum()) * 8.64e13).astype("timedelta64[ns]")
    price = np.round(rng.lognormal(np.log(30), 0.3, len(at)), 2)
    slip = (at >= np.datetime64("2009-06-20")) & (at < np.datetime64("2009-06-23"))
    pd.DataFrame(
        {
            "order_id": [f"{region}-{i}" for i in range(len(at))],
            "ordered_at": pd.to_datetime(at).strftime("%Y-%m-%d %H:%M:%S"),
            "quantity": 2,
            "unit_price": price,
            "unit_cost": np.round(price * np.where(slip, 1.4, 0.75), 2),
            "region": region,
            "channel": "Web",
        }
    ).to_csv(path := tmp_path_factory.mktemp("margin") / "margins_2009.csv", index=False)
    loader.load_lines_file(path)
    res = scan(
        ["gross_margin"],
        since="2009-03-01",
        grains=("day",),
        dimensions={"day": ("region",)},
        now=datetime(2009, 7, 1, 6, 0),
    )
    assert not res.errors
    return region


def test_a_margin_that_went_negative_is_told_in_points_not_as_a_percent_of_a_percent(margin_slip, db):
    """Before, such an incident read "Gross margin in … was 266% below the expected 25.0%"."""
    from kpi_lib.reports.alert_email import change_text

    cur = db.execute(
        "select kpi, started_at, value, expected, deviation_pct, explanation from ops.anomalies "
        "where series_key = %s order by started_at",
        [f"gross_margin|day|region={margin_slip}"],
    )
    names = [c.name for c in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert [r["started_at"].date() for r in rows] == [datetime(2009, 6, 20).date()], rows
    (slip,) = rows
    assert slip["value"] == pytest.approx(-0.4, abs=0.01)
    assert slip["expected"] == pytest.approx(0.25, abs=0.01)
    text = slip["explanation"]
    assert text.startswith(f"Gross margin in {margin_slip} was -40.0%, 6"), text
    assert " points below the expected 25.0%" in text and "% below" not in text
    # a ratio's gap is no share of a total ("2.6 times a usual day's gross margin" was the old text)
    assert text.endswith(f"Impact: {margin_slip} holds 100.0% of the orders."), text
    # the e-mail's headline and the review card say the same, in points
    assert change_text(slip) == f"−{(slip['expected'] - slip['value']) * 100:.1f} pts"
