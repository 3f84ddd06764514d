"""Alert rules (kpi_lib.thresholds): evaluation, backtest = replay, the live pass into incidents and
e-mail, snooze, quiet hours, versions and audit.

Each test writes orders for a region of its own on fixed days of 2025, so nothing else fires on its
series, and pins "now" (an explicit as-of); nothing depends on the wall clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pandas as pd
import pytest
from rules_util import DAY0, analyst, aware, daily, inbox_for, orders, region, routes_for, smtp_sink

from kpi_lib import alerts, auth, mail, thresholds, warehouse
from kpi_lib.anomaly.scan import with_budget
from kpi_lib.errors import AuthError
from kpi_lib.thresholds import RuleError, evaluate, parse, replay

# --- the pure evaluation ---------------------------------------------------------------------

sink = pytest.fixture(smtp_sink)


def _series(values, start=DAY0, freq="D") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq), dtype=float)


def test_above_fires_once_per_breach_and_rearms():
    rule = parse({"name": "r", "kpi": "orders", "condition": "above", "threshold": 10})
    s = _series([5, 12, 13, 5, 11, 5])
    fired = evaluate(rule, s, as_of=DAY0 + timedelta(days=6))
    assert [f.start for f in fired] == [s.index[1], s.index[4]]
    assert fired[0].peak == s.index[2] and fired[0].end == s.index[2] and fired[0].periods == 2


def test_change_against_last_week_and_min_volume():
    rule = parse(
        {
            "name": "r",
            "kpi": "orders",
            "condition": "falls",
            "threshold": 50,
            "compare": "week",
            "min_volume": 3,
        }
    )
    s = _series([10] * 7 + [10, 4, 10, 10, 10, 10, 10])
    vol = s.copy()
    assert [f.start for f in evaluate(rule, s, DAY0 + timedelta(days=14), vol)] == [s.index[8]]
    quiet = vol.copy()
    quiet.iloc[8] = 2  # below the minimum volume: nothing fires
    assert evaluate(rule, s, DAY0 + timedelta(days=14), quiet) == []


def test_maintenance_windows_and_filling_periods():
    rule = parse(
        {
            "name": "r",
            "kpi": "orders",
            "threshold": 10,
            "maintenance": [
                [f"{DAY0 + timedelta(days=1):%Y-%m-%d} 00:00", f"{DAY0 + timedelta(days=2):%Y-%m-%d} 00:00"]
            ],
        }
    )
    s = _series([5, 50, 5, 20])
    # day 1 is in maintenance; day 3 is still filling at 06:00 but already above: it fires now
    assert [f.start for f in evaluate(rule, s, DAY0 + timedelta(days=3, hours=6))] == [s.index[3]]
    below = parse({"name": "b", "kpi": "orders", "condition": "below", "threshold": 10})
    # a drop is never judged on a period still filling
    assert evaluate(below, _series([20, 20, 2]), DAY0 + timedelta(days=2, hours=6)) == []
    assert len(evaluate(below, _series([20, 20, 2]), DAY0 + timedelta(days=3))) == 1


def test_replay_equals_evaluation_at_the_end():
    rule = parse({"name": "r", "kpi": "orders", "condition": "changes", "threshold": 30})
    s = _series([10, 14, 10, 10, 6, 6, 9, 20, 20, 8] * 3)
    end = DAY0 + timedelta(days=len(s))
    assert replay(rule, s, DAY0, end) == [f.start for f in evaluate(rule, s, end)]


def test_bad_rules_say_which_field_is_wrong():
    with pytest.raises(RuleError, match="threshold"):
        parse({"name": "r", "kpi": "orders", "condition": "above"})
    with pytest.raises(RuleError, match="quiet_hours"):
        parse({"name": "r", "kpi": "orders", "threshold": 1, "quiet_hours": ["25:00", "07:00"]})
    with pytest.raises(RuleError, match="grain"):
        parse({"name": "r", "kpi": "orders", "threshold": 1, "grain": "fortnight"})


def test_sensitivity_scales_the_anomaly_budget():
    import numpy as np

    from kpi_lib.anomaly import detect

    assert with_budget("default", 1.0) == "default"
    assert with_budget("default", thresholds.BUDGET_SCALE["low"]).budget.alarms == 0.25
    assert with_budget("default", thresholds.BUDGET_SCALE["high"]).budget.alarms == 4.0
    # eight weeks of a normal, noisy 5-minute series: low alarms rarer than the standard rules, high
    # more often (the same detection, its false-alarm budget scaled)
    rng = np.random.default_rng(3)
    n = 12 * 24 * 56
    daily = 1 + 0.5 * np.sin(2 * np.pi * np.arange(n) / 288)
    s = pd.Series(
        rng.poisson(20 * daily) + rng.standard_t(3, n) * 2,
        index=pd.date_range("2025-01-06", periods=n, freq="5min"),
    )
    alarms = {
        level: int(detect(s, with_budget("default", thresholds.BUDGET_SCALE[level])).is_anomaly.sum())
        for level in thresholds.SENSITIVITIES
    }
    assert alarms["low"] < alarms["medium"] < alarms["high"]


# --- in the warehouse --------------------------------------------------------------------------


def test_preview_count_equals_a_replay_of_the_history_through_the_live_pass(demo, db):
    reg = region()
    daily(reg, 100, base=8, spikes={20: 30, 21: 25, 50: 40, 77: 19, 90: 35})
    user = analyst()
    spec = {
        "name": f"busy {reg}",
        "kpi": "orders",
        "where": {"region": reg},
        "grain": "day",
        "condition": "above",
        "threshold": 15,
    }
    thresholds.save(spec, user)
    as_of = DAY0 + timedelta(days=100)
    preview = thresholds.backtest(parse(spec), as_of=as_of)
    assert preview.count == 4  # days 20-21 are one firing; day 10 is before the 90 days
    # the live pass, run at the end of each of those 90 days, stores exactly those firings
    t = preview.since
    while t < as_of:
        t += timedelta(days=1)
        thresholds.run(now=t, names=[spec["name"]])
    key = thresholds.series_key(parse(spec))
    starts = [
        r[0]
        for r in db.execute("select started_at from ops.anomalies where series_key = %s order by 1", [key])
    ]
    assert [pd.Timestamp(s).tz_convert(None) for s in starts] == [f.start for f in preview.firings]


def _incidents(db, spec) -> list[tuple]:
    """(started, ended) of the rule's incidents, as naive UTC (the tests' business time)."""
    rows = db.execute(
        "select started_at, ended_at from ops.anomalies where series_key = %s order by 1",
        [thresholds.series_key(parse(spec))],
    ).fetchall()
    naive = lambda t: None if t is None else pd.Timestamp(t).tz_convert(None)  # noqa: E731
    return [(naive(a), naive(b)) for a, b in rows]


def test_an_incident_longer_than_the_lookback_gets_its_end(demo, db):
    # seven busy days: a live pass only looks 3 days back for new firings, yet the incident it
    # opened on day 20 must end when the orders come back down (the end of day 26)
    reg = region()
    daily(reg, 40, base=8, spikes={d: 30 for d in range(20, 27)})
    spec = {"name": f"busy week {reg}", "kpi": "orders", "where": {"region": reg}, "threshold": 15}
    thresholds.save(spec, analyst())
    for d in range(19, 40):
        thresholds.run(now=DAY0 + timedelta(days=d, hours=23), names=[spec["name"]])
    assert _incidents(db, spec) == [
        (pd.Timestamp(DAY0 + timedelta(days=20)), pd.Timestamp(DAY0 + timedelta(days=27)))
    ]


def test_a_slice_that_goes_quiet_ends_an_above_incident_and_goes_on_breaching_below(demo, db):
    # orders stop after two busy days: a day with no orders is 0 orders (kpis.query fills it), not
    # an unknown, so the busy incident ends and the dead one goes on past the lookback
    reg = region()
    daily(reg, 12, base=8, spikes={10: 30, 11: 30})
    busy = {"name": f"busy {reg}", "kpi": "orders", "where": {"region": reg}, "threshold": 15}
    dead = {
        "name": f"dead {reg}",
        "kpi": "orders",
        "where": {"region": reg},
        "condition": "below",
        "threshold": 1,
    }
    for spec in (busy, dead):
        thresholds.save(spec, analyst())
    for d in range(11, 20):
        thresholds.run(now=DAY0 + timedelta(days=d, hours=23), names=[busy["name"], dead["name"]])
    day = lambda n: pd.Timestamp(DAY0 + timedelta(days=n))  # noqa: E731
    assert _incidents(db, busy) == [(day(10), day(12))]
    assert _incidents(db, dead) == [(day(12), None)]  # still no orders on day 19: ongoing
    preview = thresholds.backtest(parse(dead), as_of=DAY0 + timedelta(days=20))
    assert [f.start for f in preview.firings] == [day(12)] and preview.series.iloc[-1] == 0


def test_a_rule_fires_into_an_incident_and_one_email_that_names_and_links_it(demo, db, sink):
    reg, to = region(), f"rules-{uuid.uuid4().hex[:6]}@kpi.local"
    daily(reg, 30, base=8)
    name = f"orders surge {reg}"
    thresholds.save(
        {
            "name": name,
            "kpi": "orders",
            "where": {"region": reg},
            "grain": "day",
            "threshold": 20,
            "severity": "high",
        },
        analyst(),
    )
    now = DAY0 + timedelta(days=30, hours=18)
    assert thresholds.run(now=now, names=[name]).firings == 0
    orders(reg, {DAY0 + timedelta(days=30, hours=9): 25})  # the injected incident: 25 orders today
    res = thresholds.run(now=now, names=[name])
    assert len(res.new_ids) == 1
    row = db.execute(
        "select rule, severity, dimension, dim_value from ops.anomalies where id = %s", res.new_ids
    ).fetchone()
    assert row == (name, "high", "region", reg)
    for _ in range(2):  # the next pass finds the same incident: no second e-mail
        thresholds.run(now=now, names=[name])
        alerts.notify_new_incidents(routes_for(reg, to), deliver=True, now=aware(now), since=DAY0)
    got = inbox_for(sink, to)
    assert len(got) == 1
    message = mail.read_message(got[0].id, sink.inbox)
    assert name in message.text and "/panel/alert_rules?rule=" in message.text
    assert "/panel/alert_rules?rule=" in message.html  # a link in the HTML part too


def test_a_snoozed_rule_stays_quiet(demo, db, sink):
    reg, to = region(), f"snooze-{uuid.uuid4().hex[:6]}@kpi.local"
    daily(reg, 10, base=8, spikes={9: 40})
    user = analyst()
    name = f"snoozed {reg}"
    row = thresholds.save(
        {"name": name, "kpi": "orders", "where": {"region": reg}, "threshold": 20, "severity": "high"}, user
    )
    now = DAY0 + timedelta(days=10)
    thresholds.snooze(row["id"], f"{now + timedelta(hours=12):%Y-%m-%d %H:%M}", user)
    res = thresholds.run(now=now, names=[name])
    assert res.snoozed == [name] and res.new_ids == []
    alerts.notify_new_incidents(routes_for(reg, to), deliver=True, now=aware(now), since=DAY0)
    assert inbox_for(sink, to) == []
    # once the snooze is over, the firing (still within the lookback) is news
    later = now + timedelta(hours=13)
    assert len(thresholds.run(now=later, names=[name]).new_ids) == 1


def test_a_snoozed_incident_waits(demo, db, sink):
    reg, to = region(), f"inc-{uuid.uuid4().hex[:6]}@kpi.local"
    daily(reg, 5, base=8, spikes={4: 40})
    user = analyst()
    name = f"incident snooze {reg}"
    thresholds.save({"name": name, "kpi": "orders", "where": {"region": reg}, "threshold": 20}, user)
    now = DAY0 + timedelta(days=5)
    (iid,) = thresholds.run(now=now, names=[name]).new_ids
    thresholds.snooze_incident(iid, f"{now + timedelta(days=1):%Y-%m-%d %H:%M}", user)
    alerts.notify_new_incidents(routes_for(reg, to), deliver=True, now=aware(now), since=DAY0)
    assert inbox_for(sink, to) == []
    alerts.notify_new_incidents(
        routes_for(reg, to), deliver=True, now=aware(now + timedelta(days=1)), since=DAY0
    )
    assert len(inbox_for(sink, to)) == 1


def test_quiet_hours_hold_the_mail_until_they_end(demo, db, sink):
    reg, to = region(), f"quiet-{uuid.uuid4().hex[:6]}@kpi.local"
    night = DAY0 + timedelta(days=2, hours=23)
    orders(reg, {DAY0 + timedelta(days=d, hours=h): 2 for d in range(3) for h in range(0, 23, 3)})
    orders(reg, {night: 30})
    name = f"quiet {reg}"
    thresholds.save(
        {
            "name": name,
            "kpi": "orders",
            "where": {"region": reg},
            "grain": "hour",
            "threshold": 10,
            "quiet_hours": ["22:00", "07:00"],
        },
        analyst(),
    )
    now = night + timedelta(minutes=30)
    res = thresholds.run(now=now, names=[name])
    assert res.held == res.new_ids and len(res.new_ids) == 1
    alerts.notify_new_incidents(routes_for(reg, to), deliver=True, now=aware(now), since=DAY0)
    assert inbox_for(sink, to) == []  # held, not lost
    morning = DAY0 + timedelta(days=3, hours=7)
    alerts.notify_new_incidents(routes_for(reg, to), deliver=True, now=aware(morning), since=DAY0)
    assert len(inbox_for(sink, to)) == 1


def test_an_edit_is_a_new_version_and_audited_with_before_and_after(demo, db):
    user = analyst()
    name = f"edited {uuid.uuid4().hex[:6]}"
    row = thresholds.save({"name": name, "kpi": "revenue", "threshold": 1000}, user)
    thresholds.save({"name": name, "kpi": "revenue", "threshold": 2500}, user, row["id"])
    versions = thresholds.versions(row["id"])
    assert versions["version"].tolist() == [1, 2]
    assert [v["threshold"] for v in versions["spec"]] == [1000.0, 2500.0]
    trail = auth.search_audit(actor=user.login, target=name)
    edit = trail[trail["action"] == "alert rule edited"].iloc[0]["details"]
    assert edit["before"]["threshold"] == 1000.0 and edit["after"]["threshold"] == 2500.0
    # the live pass reads the rules on every pass: the new threshold is what it runs
    assert [r.threshold for r in thresholds.active() if r.name == name] == [2500.0]


def test_viewers_and_executives_may_not_write_rules(demo):
    auth.set_user("rules-viewer", "viewer-password-1", ["viewer"])
    auth.set_user("rules-exec", "exec-password-12", ["executive"])
    for login in ("rules-viewer", "rules-exec"):
        with pytest.raises(AuthError, match="admins and analysts"):
            thresholds.save({"name": "nope", "kpi": "orders", "threshold": 1}, auth.user(login))
    # an analyst scoped to Europe writes rules on Europe's rows only
    auth.set_user("rules-eu", "eu-password-123", ["analyst"], scope={"region": ["Europe"]})
    eu = auth.user("rules-eu")
    with pytest.raises(AuthError, match="may read only region: Europe"):
        thresholds.save({"name": "everyone's orders", "kpi": "orders", "threshold": 1}, eu)
    name = f"eu {uuid.uuid4().hex[:6]}"
    assert thresholds.save({"name": name, "kpi": "orders", "where": {"region": "Europe"}, "threshold": 1}, eu)
    auth.set_user("rules-admin", "admin-password-1", ["admin"])
    assert auth.user("rules-admin").can_edit_rules and analyst().can_edit_rules
    with warehouse.connect_raw() as conn:
        assert conn.execute("select count(*) from ops.alert_rules where name = 'nope'").fetchone()[0] == 0


def test_kpi_rules_lists_previews_and_snoozes_as_the_page_does(demo):
    import os
    import subprocess
    import sys
    from pathlib import Path

    reg = region()
    daily(reg, 40, base=8, spikes={12: 30, 30: 31})
    name = f"cli {reg}"
    spec = {"name": name, "kpi": "orders", "where": {"region": reg}, "threshold": 15}
    thresholds.save(spec, analyst())
    as_of = DAY0 + timedelta(days=40)
    kpi = str(Path(sys.executable).with_name("kpi"))

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "COLUMNS": "300"}  # a wide terminal: the table does not wrap names
        return subprocess.run([kpi, "rules", *args], capture_output=True, text=True, timeout=120, env=env)

    listed = run("list")
    assert listed.returncode == 0 and name in listed.stdout
    shown = run("preview", name, "--as-of", f"{as_of:%Y-%m-%d}")
    assert shown.returncode == 0, shown.stderr
    count = thresholds.backtest(parse(spec), as_of=as_of).count
    assert count == 2 and "would have fired 2 times in the last 90 days" in shown.stdout
    snoozed = run("snooze", name, "--until", "2025-05-01 07:00")
    assert snoozed.returncode == 0, snoozed.stderr
    assert [r.snoozed_until for r in thresholds.active() if r.name == name] == [datetime(2025, 5, 1, 7)]
    missing = run("preview", "no such rule")
    assert missing.returncode == 2 and "kpi rules list" in missing.stderr
