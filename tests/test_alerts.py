"""Alerts: routing, one email per batch of new incidents, de-duplication and re-arm, the incident lifecycle.

Incidents are real rows in ops.anomalies (the demo warehouse), emails go through the outbox to a real
aiosmtpd sink and are read back from its inbox. Each test routes only its own series, so incidents
other tests leave open never reach its recipients.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pandas as pd
import pytest

from kpi_lib import alerts, mail
from kpi_lib.errors import AlertError

HOUR = timedelta(hours=1)


def latest_hour(db):
    return db.execute("select date_trunc('hour', max(ordered_at)) from silver.orders").fetchone()[0]


def fresh_series(db, kpi: str, region: str, grain: str = "hour") -> str:
    key = f"{kpi}|{grain}|region={region}"
    # every grain: a route by KPI and region matches them all, and earlier tests' scans leave incidents
    db.execute(
        "delete from ops.anomalies where kpi = %s and dimension = 'region' and dim_value = %s", [kpi, region]
    )
    return key


def insert_incident(
    db,
    kpi: str,
    region: str,
    hours_ago: int,
    severity: str = "high",
    deviation: float = -94.0,
    grain: str = "hour",
) -> int:
    started = latest_hour(db) - hours_ago * HOUR
    expected = 50.0
    value = expected * (1 + deviation / 100)
    return db.execute(
        "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, peak_at, value,"
        " expected, lower_bound, upper_bound, deviation_pct, score, severity, rule, explanation)"
        " values (%s, %s, %s, 'region', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'spike', %s) returning id",
        [
            f"{kpi}|{grain}|region={region}",
            kpi,
            grain,
            region,
            started,
            started + HOUR,
            value,
            expected,
            40.0,
            60.0,
            deviation,
            5.0,
            severity,
            f"{kpi.title()} in {region} was {abs(deviation):.0f}% "
            f"{'below' if deviation < 0 else 'above'} the expected 50 (40–60) at {started:%Y-%m-%d %H:%M}.",
        ],
    ).fetchone()[0]


def route(region: str, to: str, kpi: str = "orders", **extra) -> dict:
    """Routing that sends this one series to `to` and everything else to nobody."""
    return {
        "defaults": {"recipients": []},
        "routes": [{"kpi": kpi, "where": {"region": region}, "recipients": [to], **extra}],
    }


def arrived(sink, to: str) -> list[mail.inbox.InboxMessage]:
    return [m for m in mail.list_inbox(sink.maildir) if to in m.to]


def test_routing_file_and_rules():
    routing = alerts.load_routing()  # the shipped schedules/alerts.yml parses
    europe = {"kpi": "orders", "dimension": "region", "dim_value": "Europe", "severity": "high"}
    assert set(routing.recipients_for(europe)) == {"ops@kpi.local", "emea@kpi.local"}
    assert set(routing.recipients_for({**europe, "severity": "medium"})) == {"ops@kpi.local"}
    assert (
        routing.recipients_for({**europe, "kpi": "revenue", "severity": "low"}) == {}
    )  # below its route's bar
    other = {"kpi": "gross_margin", "dimension": None, "dim_value": None, "severity": "medium"}
    assert set(routing.recipients_for(other)) == {"ops@kpi.local"}  # no route of its own: defaults
    assert routing.recipients_for({**europe, "kpi": "orders"})["ops@kpi.local"] == timedelta(hours=6)

    assert alerts.parse_duration("90s") == timedelta(seconds=90)
    assert alerts.parse_duration("2d") == timedelta(days=2)
    with pytest.raises(AlertError, match="not a duration"):
        alerts.parse_duration("soon")
    with pytest.raises(AlertError, match="min_severity 'urgent'"):
        alerts.load_routing(
            {"routes": [{"kpi": "orders", "recipients": ["a@b.c"], "min_severity": "urgent"}]}
        )
    with pytest.raises(AlertError, match="unknown key"):
        alerts.load_routing({"routes": [{"kpi": "orders", "recipients": ["a@b.c"], "to": "x"}]})


def test_one_email_per_batch_with_chart_csv_and_provenance(db, sink):
    for region in ("North America", "Latin America"):
        fresh_series(db, "orders", region)
    a = insert_incident(db, "orders", "North America", hours_ago=5, deviation=-94.0)
    b = insert_incident(db, "orders", "Latin America", hours_ago=4, severity="medium", deviation=40.0)
    to = f"batch-{uuid.uuid4().hex[:6]}@test.local"
    routing = {
        "defaults": {"recipients": []},
        "routes": [
            {
                "kpi": "orders",
                "where": {"region": ["North America", "Latin America"]},
                "recipients": [to],
                "min_severity": "low",
            }
        ],
    }
    result = alerts.notify_new_incidents(
        routing, provenance={"job": "unit-test", "run_id": 0, "parameters": {"p": 1}}, deliver=True
    )
    assert [e["incidents"] for e in result.emails] == [[a, b]]

    [msg] = arrived(sink, to)
    assert (
        msg.subject
        == "[KPI alert] 2 new incidents: Orders in North America −94%, Orders in Latin America +40%"
    )
    view = mail.read_message(msg.id, sink.maildir)
    assert len(view.inline) == 2 and all(i.content_type == "image/png" for i in view.inline)
    raw = mail.inbox.raw_message(msg.id, sink.maildir)
    html = raw.get_body(("html",)).get_content()
    assert all(f"cid:{i.content_id}" in html for i in view.inline)
    assert "was 94% below the expected 50" in view.text and "HIGH" in view.html.upper()
    _, data = mail.attachment(msg.id, "incidents.csv", sink.maildir)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [int(r["id"]) for r in rows] == [a, b] and rows[0]["severity"] == "high"
    # provenance: who sent it, with which parameters, and the SQL + catalog entries behind each chart
    assert "unit-test run #0" in view.text and '{"p": 1}' in view.text
    assert "gold.sales_hourly" in view.text and "catalog: sales_hourly" in view.text
    outbox_row = db.execute(
        "select provenance from ops.outbox where id = %s", [result.emails[0]["outbox_id"]]
    ).fetchone()[0]
    assert outbox_row["incidents"] == [a, b] and outbox_row["queries"][0]["kpi"] == "orders"


def test_no_double_email_new_incident_alerts_and_resolve_rearms(db, sink):
    s1, s2 = "Asia Pacific", "Middle East & Africa"
    fresh_series(db, "orders", s1)
    fresh_series(db, "orders", s2)
    to = f"dedup-{uuid.uuid4().hex[:6]}@test.local"
    routing = {
        "defaults": {"recipients": []},
        "routes": [{"kpi": "orders", "where": {"region": [s1, s2]}, "recipients": [to], "cooldown": "never"}],
    }

    first = insert_incident(db, "orders", s1, hours_ago=30)
    assert [e["incidents"] for e in alerts.notify_new_incidents(routing, deliver=True).emails] == [[first]]
    assert len(arrived(sink, to)) == 1

    again = alerts.notify_new_incidents(routing, deliver=True)  # same open incident: silence
    assert again.emails == [] and len(arrived(sink, to)) == 1

    other = insert_incident(db, "orders", s2, hours_ago=20)  # a new incident elsewhere alerts
    assert [e["incidents"] for e in alerts.notify_new_incidents(routing, deliver=True).emails] == [[other]]
    assert len(arrived(sink, to)) == 2

    later = insert_incident(db, "orders", s1, hours_ago=10)  # same series, first still open: waits
    waiting = alerts.notify_new_incidents(routing, deliver=True)
    assert waiting.emails == [] and [s["anomaly_id"] for s in waiting.suppressed] == [later]
    assert len(arrived(sink, to)) == 2

    alerts.resolve(first, "ana", "feed fixed")  # resolving re-arms the series
    rearmed = alerts.notify_new_incidents(routing, deliver=True)
    assert [e["incidents"] for e in rearmed.emails] == [[later]]
    subjects = sorted(m.subject for m in arrived(sink, to))
    assert len(subjects) == 3
    assert subjects.count("[KPI alert] 1 new incident: Orders in Asia Pacific −94%") == 2
    assert (
        db.execute(
            "select count(*) from ops.alert_notifications where anomaly_id = any(%s)", [[first, other, later]]
        ).fetchone()[0]
        == 3
    )


def test_cooldown_rearms_a_series_that_is_still_open(db, sink):
    region = "Europe"
    key = fresh_series(db, "aov", region)
    to = f"cool-{uuid.uuid4().hex[:6]}@test.local"
    routing = route(region, to, kpi="aov", cooldown="1h")
    first = insert_incident(db, "aov", region, hours_ago=9)
    assert alerts.notify_new_incidents(routing).emails
    second = insert_incident(db, "aov", region, hours_ago=3)
    assert alerts.notify_new_incidents(routing).emails == []  # within the cooldown
    # an hour later (moved back in the table rather than waited for)
    db.execute(
        "update ops.alert_notifications set notified_at = notified_at - interval '61 minutes'"
        " where anomaly_id = %s",
        [first],
    )
    assert [e["incidents"] for e in alerts.notify_new_incidents(routing).emails] == [[second]]
    assert db.execute("select status from ops.anomalies where id = %s", [first]).fetchone()[0] == "open"
    db.execute("delete from ops.anomalies where series_key = %s", [key])


def test_severity_below_the_route_minimum_is_not_emailed(db, sink):
    region = "Latin America"
    key = fresh_series(db, "units", region)
    to = f"sev-{uuid.uuid4().hex[:6]}@test.local"
    low = insert_incident(db, "units", region, hours_ago=8, severity="low")
    result = alerts.notify_new_incidents(route(region, to, kpi="units", min_severity="medium"), deliver=True)
    assert result.emails == [] and arrived(sink, to) == []
    assert (
        db.execute("select count(*) from ops.alert_notifications where anomaly_id = %s", [low]).fetchone()[0]
        == 0
    )
    db.execute("delete from ops.anomalies where series_key = %s", [key])


def test_acknowledge_and_resolve_record_who_when_and_why(db):
    key = fresh_series(db, "revenue", "Europe", grain="day")
    inc = insert_incident(db, "revenue", "Europe", hours_ago=48, grain="day")
    row = alerts.acknowledge(inc, "ana", "looking into it")
    assert row["status"] == "acknowledged" and row["acknowledged_by"] == "ana" and row["acknowledged_at"]
    alerts.acknowledge(inc, "bob")  # twice: no second event, still ana's
    assert alerts.get_incident(inc)["acknowledged_by"] == "ana"
    row = alerts.resolve(inc, "bob", "refund batch reprocessed")
    assert (row["status"], row["resolved_by"], row["comment"]) == (
        "resolved",
        "bob",
        "refund batch reprocessed",
    )
    trail = alerts.events(inc)
    assert list(trail["action"]) == ["acknowledge", "resolve"] and list(trail["actor"]) == ["ana", "bob"]
    with pytest.raises(AlertError, match="already resolved"):
        alerts.acknowledge(inc, "carol")
    with pytest.raises(AlertError, match="needs a user"):
        alerts.resolve(inc, " ")
    with pytest.raises(AlertError, match="No incident #999999999"):
        alerts.resolve(999999999, "ana")
    db.execute("delete from ops.anomalies where series_key = %s", [key])


def test_a_run_as_of_a_past_time_mails_nothing_that_started_after_it(db, sink):
    """A job replayed as of a past time, after a whole-history scan filled ops.anomalies, e-mailed an
    incident from two months after its as-of (found on a user's own export)."""
    region = "Latin America"
    key = fresh_series(db, "units", region)
    to = f"asof-{uuid.uuid4().hex[:6]}@test.local"
    routing = route(region, to, kpi="units", cooldown="never")
    before = insert_incident(db, "units", region, hours_ago=48)
    after = insert_incident(db, "units", region, hours_ago=2, deviation=120.0)
    as_of = latest_hour(db) - 24 * HOUR
    sent = alerts.notify_new_incidents(routing, until=as_of, deliver=True)
    assert [e["incidents"] for e in sent.emails] == [[before]]
    (mail_,) = arrived(sink, to)
    assert "−94%" in mail_.subject and "+120%" not in mail_.subject
    # the later one is still new for a run as of now (once the first is resolved, which re-arms the series)
    alerts.resolve(before, "ana", "replayed")
    assert [e["incidents"] for e in alerts.notify_new_incidents(routing, deliver=True).emails] == [[after]]
    db.execute("delete from ops.anomalies where series_key = %s", [key])


def test_one_event_in_many_slices_is_told_once_by_its_lead(db, sink):
    """A shop shut for a week dropped its orders, its revenue and every region's at once: a user's
    export raised eight incidents for it, and the e-mail told the same week eight times with eight
    charts. Now it is one event, told by the business as a whole, with the slices listed under it;
    a rise at the same time, and a later drop, stay incidents of their own."""
    shut = pd.Timestamp("2019-05-12", tz="UTC")

    def add(kpi, dim, value, start, days, deviation, severity="high"):
        key = f"{kpi}|day|" + (f"{dim}={value}" if dim else "all")
        db.execute("delete from ops.anomalies where series_key = %s and started_at = %s", [key, start])
        expected = 100.0
        return db.execute(
            "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, peak_at,"
            " ended_at, value, expected, lower_bound, upper_bound, deviation_pct, score, severity, rule,"
            " explanation) values (%s, %s, 'day', %s, %s, %s, %s, %s, %s, %s, 80, 120, %s, 9, %s, 'silence',"
            " %s) returning id",
            [
                key,
                kpi,
                dim,
                value,
                start,
                start,
                start + pd.Timedelta(days=days),
                expected * (1 + deviation / 100),
                expected,
                deviation,
                severity,
                f"{kpi} {value or 'overall'} moved {deviation:.0f}%.",
            ],
        ).fetchone()[0]

    orders = add("orders", None, None, shut, 4, -100.0)
    europe = add("orders", "region", "Europe", shut, 4, -100.0)
    americas = add("orders", "region", "North America", shut + pd.Timedelta(days=1), 3, -100.0)
    revenue = add("revenue", None, None, shut, 4, -100.0, severity="medium")
    rise = add("customers", None, None, shut + pd.Timedelta(days=2), 1, 250.0)  # the other way: its own
    later = add("units", None, None, shut + pd.Timedelta(days=40), 1, -60.0)  # another time: its own
    to = f"event-{uuid.uuid4().hex[:6]}@test.local"
    routing = {"defaults": {"recipients": [to], "min_severity": "low", "cooldown": "never"}}
    sent = alerts.notify_new_incidents(routing, since=shut, until=shut + pd.Timedelta(days=60), deliver=True)
    assert [sorted(e["incidents"]) for e in sent.emails] == [
        sorted([orders, europe, americas, revenue, rise, later])
    ]

    (msg,) = arrived(sink, to)
    assert msg.subject.startswith("[KPI alert] 6 new incidents: ")
    assert "Orders −100% (+3 at the same time)" in msg.subject
    view = mail.read_message(msg.id, sink.maildir)
    assert "6 new KPI incidents in 3 events" in view.text
    assert len(view.inline) == 3  # a chart per event, not per incident
    # the whole business's other KPI first, then the slices
    assert (
        f"At the same time, 3 more incidents of this event (marked “with #{orders}” in the table above): Revenue −100%"
        in view.text
    )
    assert f"Orders in Europe −100% (#{europe}, high" in view.text
    _, data = mail.attachment(msg.id, "incidents.csv", sink.maildir)
    rows = {int(r["id"]): int(r["event"]) for r in csv.DictReader(io.StringIO(data.decode()))}
    assert rows == {
        orders: orders,
        europe: orders,
        americas: orders,
        revenue: orders,
        rise: rise,
        later: later,
    }
    db.execute(
        "delete from ops.anomalies where id = any(%s)", [[orders, europe, americas, revenue, rise, later]]
    )
