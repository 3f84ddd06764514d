"""Real-time ingestion and notifications, against the real session warehouse."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from conftest import service_missing

from kpi_lib import kpis, stream, warehouse


def _event(
    order_id: str,
    at: datetime,
    price: float = 10.0,
    qty: float = 2,
    customer: str | None = "C900001",
    region: str = "Europe",
    event_id: str | None = None,
    category: str = "Electronics",
) -> dict:
    return {
        "event_id": event_id or f"ev-{order_id}",
        "order_id": order_id,
        "ordered_at": at.isoformat(),
        "customer_id": customer,
        "region": region,
        "channel": "Web",
        "lines": [
            {
                "product_id": "P1001",
                "product_name": "Test Widget",
                "category": category,
                "quantity": qty,
                "unit_price": price,
                "discount": 0.0,
                "unit_cost": price / 2,
            }
        ],
    }


def _uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture()
def recent():
    """A time in the last closed hour, so these events land in the present but not the future."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(minutes=30)


def test_next_query_sees_ingested_events_and_closed_periods_stay_cached(demo, recent):
    day = recent.date()
    before = kpis.query("revenue", "total", start=day, end=day + timedelta(days=1)).value
    closed = kpis.query("revenue", "total", start="2000-01-01", end=day - timedelta(days=3))
    res = stream.ingest([_event(f"S{_uid()}", recent, price=100.0, qty=3)], source="test")
    assert (res.loaded, res.rejected) == (1, 0) and res.version
    after = kpis.query("revenue", "total", start=day, end=day + timedelta(days=1))
    assert after.value == pytest.approx(before + 300.0)
    assert after.cache_level in ("L4", "L3+L4")  # recomputed, not served stale from the cache
    again = kpis.query("revenue", "total", start="2000-01-01", end=day - timedelta(days=3))
    assert again.cache_level == "L1" and again.value == closed.value


def test_a_range_through_today_recomputes_only_today(demo):
    """A dashboard's "last 30 days" on a live stream: the new order counts, the closed days come
    from the cache instead of being recomputed with every batch."""
    today = kpis.floor_period(kpis.local_now(), "day")
    at = max(kpis.local_now() - timedelta(seconds=5), today + timedelta(seconds=1))  # naive = business time
    start, end = today - timedelta(days=29), today + timedelta(days=1)
    total = kpis.query("revenue", "total", start=start, end=end, compare="previous_period")
    days = kpis.query("revenue", "day", start=start, end=end).df
    stream.ingest([_event(f"T{_uid()}", at, price=100.0, qty=3, region="Asia Pacific")], source="test")
    after = kpis.query("revenue", "total", start=start, end=end, compare="previous_period")
    assert after.value == pytest.approx(total.value + 300.0)
    assert after.previous == pytest.approx(total.previous)
    assert after.cache_level.startswith("L1+")  # the closed days: from the cache
    by_region = kpis.query("revenue", "total", start=start, end=end, by=["region"]).df.set_index("region")
    assert by_region["value"].sum() == pytest.approx(after.value)
    days_after = kpis.query("revenue", "day", start=start, end=end).df
    assert len(days_after) == 30
    assert days_after["value"].iloc[-1] == pytest.approx(days["value"].iloc[-1] + 300.0)
    assert days_after["value"].iloc[:-1].tolist() == pytest.approx(days["value"].iloc[:-1].tolist())


def test_redelivered_events_do_not_double_count(demo, recent):
    events = [_event(f"D{_uid()}", recent + timedelta(seconds=i), price=7.0) for i in range(5)]
    day = recent.date()
    before = kpis.query("orders", "total", start=day, end=day + timedelta(days=1)).value
    first = stream.ingest(events, source="test")
    second = stream.ingest(events + events[:2], source="test")
    assert (first.loaded, first.duplicates) == (5, 0)
    assert (second.loaded, second.duplicates, second.rejected) == (0, 7, 0)
    after = kpis.query("orders", "total", start=day, end=day + timedelta(days=1)).value
    assert after == before + 5


def test_malformed_events_are_rejected_with_reasons_and_the_rest_lands(demo, db, recent):
    tag = _uid()
    good = _event(f"G{tag}", recent, price=5.0)
    bad = [
        {"event_id": f"b1{tag}", "order_id": f"B1{tag}", "lines": [{"quantity": 1, "unit_price": 1}]},
        {**_event(f"B2{tag}", recent), "ordered_at": "yesterday at noon", "event_id": f"b2{tag}"},
        {
            **_event(f"B3{tag}", recent),
            "event_id": f"b3{tag}",
            "lines": [{"quantity": "two", "unit_price": 1}],
        },
        {**_event(f"B4{tag}", recent), "event_id": f"b4{tag}", "lines": [{"quantity": 1, "unit_price": -4}]},
        "{not json",
        {**_event(f"G{tag}", recent), "event_id": f"other{tag}"},  # same order, another event id
    ]
    res = stream.ingest([good, *bad], source=f"test-{tag}")
    assert (res.loaded, res.rejected) == (1, 6)
    rows = dict(
        db.execute(
            "select coalesce(event_id, '-'), reason from bronze.rejects where source = %s", [f"test-{tag}"]
        ).fetchall()
    )
    assert rows[f"b1{tag}"] == "missing field 'ordered_at'"
    assert rows[f"b2{tag}"] == "ordered_at 'yesterday at noon' is not an ISO-8601 time"
    assert rows[f"b3{tag}"] == "lines[0].quantity 'two' is not a number"
    assert rows[f"b4{tag}"] == "lines[0].unit_price is negative (-4)"
    assert rows["-"].startswith("not valid JSON")
    assert rows[f"other{tag}"] == f"order G{tag} already exists (from event ev-G{tag})"
    landed = db.execute("select count(*) from silver.orders where order_id = %s", [f"G{tag}"]).fetchone()[0]
    raw = db.execute("select count(*) from bronze.events where source = %s", [f"test-{tag}"]).fetchone()[0]
    assert landed == 1 and raw == 1
    # the same order under another event id in a later batch: refused by the database, payload kept
    late = stream.ingest([{**_event(f"G{tag}", recent, price=99.0), "event_id": f"late{tag}"}], f"test-{tag}")
    assert (late.loaded, late.rejected, late.reasons) == (
        0,
        1,
        [f"order G{tag} already exists (from event ev-G{tag})"],
    )
    row_data, reason = db.execute(
        "select row_data, reason from bronze.rejects where event_id = %s", [f"late{tag}"]
    ).fetchone()
    assert json.loads(row_data)["lines"][0]["unit_price"] == 99.0
    assert reason == f"order G{tag} already exists (from event ev-G{tag})"


def test_incremental_gold_equals_a_full_recompute(demo, db, recent):
    """The streaming path adds deltas; recomputing the same hours from silver must agree exactly."""
    tag = _uid()
    late_first = recent - timedelta(hours=3)  # a late event that becomes a customer's first order
    events = [
        _event(
            f"I{tag}{i}",
            recent + timedelta(minutes=i),
            price=3.0 + i,
            customer=f"CNEW{tag}{i % 3}",
            region=["Europe", "Asia Pacific"][i % 2],
            category=["Books", "Grocery"][i % 2],
        )
        for i in range(12)
    ]
    events.append(_event(f"I{tag}late", late_first, price=11.0, customer=f"CNEW{tag}0"))
    events.append(
        {
            **_event(f"I{tag}ret", recent, customer=f"CNEW{tag}1"),
            "lines": [{"product_id": "P1001", "quantity": -1, "unit_price": 3.0, "category": "Books"}],
        }
    )
    stream.ingest(events[:6], source="test")
    stream.ingest(events[6:], source="test")
    cols = (
        "revenue, gross_sales, returns_value, units, units_sold, units_returned, orders, customers, "
        "new_customers, costed_revenue, cost, lines"
    )
    window = (recent - timedelta(hours=4), recent + timedelta(hours=1))
    q = f"select hour, region, channel, {cols} from gold.sales_hourly where hour >= %s and hour < %s order by 1, 2, 3"
    qc = (
        "select hour, region, channel, category, revenue, units, orders, lines from gold.category_hourly "
        "where hour >= %s and hour < %s order by 1, 2, 3, 4"
    )
    incremental = db.execute(q, window).fetchall()
    incremental_cat = db.execute(qc, window).fetchall()
    with warehouse.connect_raw() as conn:  # recompute in a transaction we roll back
        conn.execute("select gold.refresh_range(%s, %s)", [window[0], window[1] - timedelta(microseconds=1)])
        full = conn.execute(q, window).fetchall()
        full_cat = conn.execute(qc, window).fetchall()
        conn.rollback()
    assert len(incremental) == len(full) > 0
    for a, b in zip(incremental, full, strict=True):
        assert a[:3] == b[:3]
        assert a[3:] == pytest.approx(b[3:], rel=1e-9, abs=1e-9), a[:3]
    assert len(incremental_cat) == len(full_cat) > 0
    for a, b in zip(incremental_cat, full_cat, strict=True):
        assert a[:4] == b[:4] and a[4:] == pytest.approx(b[4:], rel=1e-9, abs=1e-9)


def test_ingestor_closes_batches_on_time(demo, recent):
    ing = stream.Ingestor("test-interval", interval_ms=100, max_events=10_000)
    for i in range(3):
        ing.put(_event(f"T{_uid()}{i}", recent))
        time.sleep(0.25)
    total = ing.close()
    assert total.loaded == 3 and total.batches == 3  # one batch per 100 ms window, not one at close


def test_csv_events_group_lines_into_orders(demo, recent):
    tag = _uid()
    text = (
        "event_id,order_id,ordered_at,customer_id,region,channel,product_id,category,quantity,unit_price\n"
        f"e1{tag},O1{tag},{recent.isoformat()},C1,Europe,Web,P1,Books,1,5\n"
        f"e1{tag},O1{tag},{recent.isoformat()},C1,Europe,Web,P2,Books,2,3\n"
        f"e2{tag},O2{tag},{recent.isoformat()},C2,Europe,Web,P1,Books,1,5\n"
    )
    events = list(stream.events_from_csv(text.splitlines(keepends=True)))
    assert [len(e["lines"]) for e in events] == [2, 1]
    res = stream.ingest(events, source="test")
    assert res.loaded == 2


def test_subscribers_get_every_version(demo, recent):
    seen: list[stream.Change] = []
    sub = stream.subscribe(seen.append)
    try:
        assert stream.wait_connected(10)
        res = stream.ingest([_event(f"N{_uid()}", recent)], source="test-notify")
        deadline = time.time() + 5
        while not any(c.version == res.version for c in seen) and time.time() < deadline:
            time.sleep(0.02)
        change = next(c for c in seen if c.version == res.version)
        assert change.source == "test-notify" and change.events == 1 and change.watermark
    finally:
        sub.close()


def test_subscriber_survives_a_postgres_restart_and_catches_up(demo, recent):
    seen: list[stream.Change] = []
    sub = stream.subscribe(seen.append)
    try:
        assert stream.wait_connected(10)
        reconnects = stream._hub.reconnects
        warehouse.dispose()
        assert warehouse.stop()
        warehouse.init()  # starts it again
        # a change lands before the listener has reconnected: it must not be lost
        res = stream.ingest([_event(f"R{_uid()}", recent)], source="test-restart")
        deadline = time.time() + 20
        while stream.listener_version() < res.version and time.time() < deadline:
            time.sleep(0.05)
        assert stream.listener_version() >= res.version
        assert stream._hub.reconnects > reconnects
        assert any(c.version >= res.version for c in seen)
    finally:
        sub.close()


def _rabbit(url: str):
    pika = pytest.importorskip("pika")
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
    except Exception as exc:  # noqa: BLE001
        service_missing(f"no RabbitMQ on {url} ({exc})")
    return conn


@pytest.mark.external
def test_rabbitmq_round_trip_lands_each_event_exactly_once(demo, db, recent):
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue = f"kpi.test.{_uid()}"
    conn = _rabbit(url)
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    tag = _uid()
    events = [_event(f"M{tag}{i}", recent + timedelta(seconds=i), price=2.0) for i in range(40)]
    for ev in events + events[:10]:  # the broker redelivers some: they must not count twice
        ch.basic_publish("", queue, json.dumps(ev).encode())
    try:
        res = stream.consume_amqp(url, queue, idle_timeout=1.5)
        assert res.loaded == 40 and res.duplicates == 10 and res.rejected == 0
        n = db.execute("select count(*) from silver.orders where order_id like %s", [f"M{tag}%"]).fetchone()[
            0
        ]
        assert n == 40
        left = ch.queue_declare(queue=queue, durable=True, passive=True).method.message_count
        assert left == 0, "messages were not acknowledged after their batch committed"
    finally:
        ch.queue_delete(queue)
        conn.close()


def test_bad_events_never_break_the_batch_writer(demo, recent):
    ing = stream.Ingestor("test-bad", interval_ms=50)
    ing.put(b"\xff\xfe not utf8 json")
    ing.put(_event(f"X{_uid()}", recent))
    total = ing.close()
    assert total.loaded == 1 and total.rejected == 1


def test_database_errors_surface_to_the_producer(demo, recent, monkeypatch):
    def broken(*_a, **_k):
        raise psycopg.OperationalError("simulated outage")

    monkeypatch.setattr(stream.write, "write_batch", broken)  # where the Ingestor looks it up
    ing = stream.Ingestor("test-fail", interval_ms=20)
    ing.put(_event(f"F{_uid()}", recent))
    with pytest.raises(Exception, match="simulated outage"):
        ing.close()


# --- the fast path (issue 17): land raw, validate and move set-based apart -----------------------------


def _land(events: list, source: str, max_events: int = 10) -> stream.IngestResult:
    """Land without a background mover: the test moves with stream.drain()."""
    ing = stream.Lander(source, interval_ms=3_600_000, max_events=max_events, mover=False)
    for ev in events:
        ing.put(ev)
    return ing.close()


@pytest.mark.parametrize("validate", ["sql", "python"])
def test_fast_path_refuses_malformed_events_with_the_reasons_validate_gives(demo, db, recent, validate):
    """The mover validates in SQL (or with validate.py); each malformed event reaches bronze.rejects
    with the reason the one-transaction path's validate.py gives it, and the good ones land."""
    tag = _uid()
    source = f"test-fastrej-{tag}"
    naive = recent.replace(tzinfo=None) - timedelta(hours=2)  # business-time wall clock

    def ev(n: str, **kw) -> dict:
        return {**_event(f"V{n}{tag}", recent), "event_id": f"v{n}{tag}", **kw}

    def line(**kw) -> dict:
        return {"product_id": "P1", "quantity": 1, "unit_price": 2.0, **kw}

    good = [ev("ok1"), ev("ok2", ordered_at=naive.isoformat(), customer_id=12.0, lines=[line(discount=None)])]
    bad = [
        {k: v for k, v in ev("b1").items() if k != "ordered_at"},
        {k: v for k, v in ev("b2").items() if k != "order_id"},
        ev("b3", ordered_at="yesterday at noon"),
        ev("b4", ordered_at=(recent + timedelta(days=3)).isoformat()),
        ev("b5", ordered_at=17),
        ev("b6", lines=[]),
        ev("b7", lines="none"),
        ev("b8", lines=[line(), 5]),
        ev("b9", lines=[{"unit_price": 1}]),
        ev("b10", lines=[line(quantity="two")]),
        ev("b11", lines=[line(quantity=True)]),
        ev("b12", lines=[line(unit_price=-4)]),
        ev("b13", lines=[line(discount=1.5)]),
        ev("b14", lines=[line(discount="x")]),
        ev("b15", lines=[line(unit_cost="n/a")]),
        ev("b16", lines=[line(), line(unit_price=None)]),
        ev("b18", lines=[line(quantity=" NaN ")]),
        ev("b19", lines=[line(unit_cost="-Infinity")]),
        {**ev("ok1"), "event_id": f"clash{tag}"},  # the same order under another event id
    ]
    # JSON numbers beyond float8 are refused, not an error that would stop every move after it
    huge = json.dumps(ev("b17", lines=[line(quantity=123)])).replace('"quantity": 123', '"quantity": 1e400')
    bad.append(huge)
    expected = {e: reason for e, _raw, reason in stream.validate([*good, *bad], source).rejects}
    assert (
        len(expected) == len(bad) and expected[f"vb17{tag}"] == "lines[0].quantity inf is not a finite number"
    )
    junk = ["{not json", "[1, 2]"]
    res = _land([*good, *bad, *junk, good[0]], source)  # good[0] again: a repeat, no effect
    assert (res.landed, res.rejected) == (len(good) + len(bad) + len(junk) + 1, 0)  # all acknowledged raw
    stream.drain(validate=validate)
    rows = db.execute(
        "select event_id, reason from bronze.rejects where source = %s order by id", [source]
    ).fetchall()
    got = {e: r for e, r in rows if e is not None}
    assert got == expected
    unnamed = sorted(r for e, r in rows if e is None)
    assert unnamed[0] == "an event must be a JSON object with order fields and lines"
    assert unnamed[1].startswith("not valid JSON")
    loaded = db.execute(
        "select order_id, ordered_at, customer_id from silver.orders where order_id = any(%s) order by 1",
        [[f"Vok1{tag}", f"Vok2{tag}"]],
    ).fetchall()
    want = {r[0]: r for r in stream.validate(good, source).orders}
    assert [(o, at, c) for o, at, c in loaded] == [(o, want[o][1], want[o][2]) for o in sorted(want)]
    counts = db.execute(
        "select sum(events), sum(loaded), sum(duplicates), sum(rejected) from bronze.landings "
        "where source = %s and moved_at is not null",
        [source],
    ).fetchone()
    assert counts == (len(good) + len(bad) + len(junk) + 1, 2, 1, len(bad) + len(junk))


@pytest.mark.parametrize("validate", ["sql", "python"])
def test_fast_path_moves_each_order_once_into_silver_and_gold(demo, db, recent, validate):
    """Acknowledged once landed; the mover adds each order once, however often it was landed, and
    refuses an order seen before under another event id, payload kept."""
    tag = _uid()
    region = f"Fast {tag}"
    source = f"test-fast-{tag}"
    events = [
        _event(f"F{tag}{i}", recent + timedelta(seconds=i), price=1.0 + i, qty=1, region=region)
        for i in range(30)
    ]
    first = _land(events + events[:10], source)  # a redelivery within the same burst
    assert (first.landed, first.batches, first.loaded) == (40, 4, 0)
    raw = db.execute(
        "select count(*) from bronze.landed_events e join bronze.landings l using (land_id) where l.source = %s",
        [source],
    ).fetchone()[0]
    assert raw == 40  # acknowledged: in bronze before any move
    from kpi_lib import monitor

    waiting = monitor.status()["landings"]  # what `kpi status` says an operator is waiting for
    assert waiting["waiting"] >= 4 and waiting["events"] >= 40
    stream.drain(validate=validate)
    assert monitor.status()["landings"]["waiting"] == 0
    _land(events[5:15], source)  # the producer sends again what it was not sure of
    stream.drain(validate=validate)
    orders, revenue = db.execute(
        "select sum(orders), sum(revenue) from gold.sales_hourly where region = %s", [region]
    ).fetchone()
    assert orders == 30 and float(revenue) == pytest.approx(sum(1.0 + i for i in range(30)))
    assert db.execute("select count(*) from silver.orders where region = %s", [region]).fetchone()[0] == 30
    clash = {**_event(f"F{tag}3", recent, price=55.0, region=region), "event_id": f"clash{tag}"}
    _land([clash], source)
    moved = stream.drain(validate=validate)
    assert moved.version and f"order F{tag}3 already exists (from event ev-F{tag}3)" in moved.reasons
    row_data = db.execute(
        "select row_data from bronze.rejects where event_id = %s", [f"clash{tag}"]
    ).fetchone()[0]
    assert json.loads(row_data)["lines"][0]["unit_price"] == 55.0
    waiting = db.execute(
        "select count(*) from bronze.landings where source = %s and moved_at is null", [source]
    ).fetchone()[0]
    assert waiting == 0


def test_fast_path_notifies_subscribers_after_each_move(demo, recent):
    seen: list = []
    sub = stream.subscribe(seen.append)
    try:
        stream.wait_connected(10)
        v0 = stream.current_version()
        _land([_event(f"N{_uid()}", recent)], f"test-fastnote-{_uid()}")
        moved = stream.drain()
        assert moved.version and moved.version > v0
        deadline = time.monotonic() + 10
        while not any(c.version >= moved.version for c in seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(c.version >= moved.version for c in seen)
    finally:
        sub.close()


@pytest.mark.external
def test_rabbitmq_fast_path_acks_once_landed_and_lands_each_event_once(demo, db, recent):
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue = f"kpi.test.{_uid()}"
    conn = _rabbit(url)
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    tag = _uid()
    events = [_event(f"MF{tag}{i}", recent + timedelta(seconds=i), price=2.0) for i in range(40)]
    for ev in events + events[:10]:
        ch.basic_publish("", queue, json.dumps(ev).encode())
    try:
        res = stream.consume_amqp(url, queue, idle_timeout=1.5, fast=True)
        assert res.landed == 50 and res.rejected == 0
        left = ch.queue_declare(queue=queue, durable=True, passive=True).method.message_count
        assert left == 0, "messages were not acknowledged after their batch landed"
        stream.drain()
        n = db.execute("select count(*) from silver.orders where order_id like %s", [f"MF{tag}%"]).fetchone()[
            0
        ]
        assert n == 40
    finally:
        stream.move._mover.stop()
        ch.queue_delete(queue)
        conn.close()
