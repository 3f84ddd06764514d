"""The fast path's mover (kpi_lib/stream/move.py) on a private warehouse whose business time zone has
daylight saving time: the same tricky events through both paths give the same silver, gold and rejects;
a landing that keeps failing on a database error ends in bronze.rejects, event by event, and the other
landings keep moving; of two standing movers, one moves and the other takes over when it stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import free_port, kpi
from pgnode import PgNode, wait_for, warehouse_on

from kpi_lib import stream

AT = datetime(2024, 7, 8, 12, 0, tzinfo=UTC)  # pinned event times (a summer Monday)
KPI = str(Path(sys.executable).with_name("kpi"))
TZ = "Europe/Paris"  # clocks go back on 2024-10-27 (02:00-03:00 twice) and forward on 2024-03-31


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """kpi_lib on a fresh private warehouse in Europe/Paris; a connection to it (autocommit)."""
    from kpi_lib import gold

    node = PgNode(free_port()).init().start()
    try:
        with psycopg.connect(node.url(), autocommit=True) as admin:
            admin.execute("create database kpi")
        with warehouse_on(node.url("kpi"), tmp_path_factory.mktemp("home"), KPI_TIMEZONE=TZ):
            gold.apply_timezone()
            with psycopg.connect(node.url("kpi"), autocommit=True) as conn:
                yield conn
    finally:
        node.remove()


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _land(events: list, source: str, max_events: int = 1000) -> stream.IngestResult:
    ing = stream.Lander(source, interval_ms=3_600_000, max_events=max_events, mover=False)
    for ev in events:
        ing.put(ev)
    return ing.close()


# --- the same events through validate.py and through the mover's SQL ---------------------------------


def _line(**kw) -> dict:
    return {"product_id": "P1", "category": "Books", "quantity": 2, "unit_price": 3.5, "unit_cost": 1.0, **kw}


# name -> (event fields, raw replacements); "__X__" in the JSON text is replaced by a literal that a
# Python dict cannot hold (1e-400, NaN, a 400-digit integer)
TRICKY: dict[str, tuple[dict, dict[str, str]]] = {
    "plain": ({}, {}),
    "tiny_qty": ({"lines": [_line(), _line(quantity="__X__")]}, {'"__X__"': "1e-400"}),
    "tiny_qty_text": ({"lines": [_line(), _line(quantity=" 1e-400 ")]}, {}),
    "tiny_price": ({"lines": [_line(unit_price="__X__")]}, {'"__X__"': "-1e-400"}),
    "tiny_discount": ({"lines": [_line(discount="__X__")]}, {'"__X__"': "1e-400"}),
    "tiny_line_no": ({"lines": [_line(line_no="__X__")]}, {'"__X__"': "1e-400"}),
    "zone_name": ({"ordered_at": "2024-07-08 12:00:00 Europe/Paris"}, {}),
    "zone_name_t": ({"ordered_at": "2024-07-08T12:00:00 America/New_York"}, {}),
    "zone_abbrev": ({"ordered_at": "2024-07-08 12:00:00 CEST"}, {}),
    "offset_seconds": ({"ordered_at": "2024-07-08T12:00:00+02:00:30"}, {}),
    "offset_16h": ({"ordered_at": "2024-07-08T12:00:00+16:00"}, {}),
    "week_date": ({"ordered_at": "2024-W28-1"}, {}),
    "compact": ({"ordered_at": "20240708T120000"}, {}),
    "hour_24": ({"ordered_at": "2024-07-08T24:00:00"}, {}),
    "leap_second": ({"ordered_at": "2024-06-30T23:59:60Z"}, {}),
    "feb_30": ({"ordered_at": "2024-02-30T10:00:00Z"}, {}),
    "lower_z": ({"ordered_at": "2024-07-08T12:00:00z"}, {}),
    "nanoseconds": ({"ordered_at": "2024-07-08T12:00:00.123456789Z"}, {}),
    "round_up": ({"ordered_at": "2024-07-08T12:00:00.9999999+02:00"}, {}),
    "comma": ({"ordered_at": "2024-07-08T12:00:00,5+02"}, {}),
    "space_offset": ({"ordered_at": "2024-07-08 12:00:00 +0530"}, {}),
    "date_only": ({"ordered_at": "2024-07-08"}, {}),
    "naive": ({"ordered_at": "2024-07-08T12:00:00"}, {}),
    "twice": ({"ordered_at": "2024-10-27T02:30:00"}, {}),  # clocks go back: the later, standard time
    "never": ({"ordered_at": "2024-03-31T02:30:00"}, {}),  # clocks go forward: the offset before
    "far_future": ({"ordered_at": "2999-01-01T00:00:00Z"}, {}),
    "underscore": ({"lines": [_line(quantity="1_000")]}, {}),
    "fullwidth": ({"lines": [_line(quantity="１２")]}, {}),
    "nbsp": ({"lines": [_line(quantity="\u00a012")]}, {}),
    "huge_text": ({"lines": [_line(quantity="1e400")]}, {}),
    "huge_int": ({"lines": [_line(quantity="__X__")]}, {'"__X__"': "1" + "0" * 400}),
    "qty_range": ({"lines": [_line(quantity=1e11)]}, {}),
    "price_range": ({"lines": [_line(unit_price=2e10)]}, {}),
    "cost_range": ({"lines": [_line(unit_cost=-1e10)]}, {}),
    "negative": ({"lines": [_line(unit_price=-4.123456789)]}, {}),
    "big_negative": ({"lines": [_line(unit_price=-1.5e15)]}, {}),
    "line_no_word": ({"lines": [_line(line_no="abc")]}, {}),
    "line_no_true": ({"lines": [_line(line_no=True)]}, {}),
    "line_no_huge": ({"lines": [_line(line_no=3e9)]}, {}),
    "line_no_text": ({"lines": [_line(line_no=" 7 ")]}, {}),
    "line_no_half": ({"lines": [_line(line_no=2.5)]}, {}),
    "nan_literal": ({"customer_id": "__X__"}, {'"__X__"': "NaN"}),
    "nul_escape": ({"lines": [_line(product_name="a\u0000b")]}, {}),
    "lone_surrogate": ({"lines": [_line(product_name="a\ud800b")]}, {}),
    "backslash_u0000": ({"lines": [_line(product_name="a\\u0000b")]}, {}),  # a backslash, then "u0000"
    "emoji": ({"lines": [_line(product_name="mug \U0001f600")]}, {}),  # a surrogate pair in JSON
}


def _tricky(tag: str, region: str) -> list[str]:
    out = []
    for name, (fields, raw) in TRICKY.items():
        ev = {
            "event_id": f"{tag}-{name}",
            "order_id": f"{tag}{name}",
            "ordered_at": AT.isoformat(),
            "customer_id": "C1",
            "region": region,
            "channel": "Web",
            "lines": [_line()],
            **fields,
        }
        text = json.dumps(ev)
        for old, new in raw.items():
            text = text.replace(old, new)
        out.append(text)
    return out


def _outcome(db, tag: str, source: str, region: str) -> dict:
    """Everything a user could see of the tricky events: rejects (reason per event), silver orders and
    lines, and gold per hour; ids and region with the path's tag taken out."""
    rejects = {
        e.split("-", 1)[1]: r.replace(tag, "")
        for e, r in db.execute(
            "select event_id, reason from bronze.rejects where source = %s and event_id is not null", [source]
        )
    }
    unnamed = sorted(
        r.split(":")[0]
        for (r,) in db.execute(
            "select reason from bronze.rejects where source = %s and event_id is null", [source]
        )
    )
    orders = {
        o.removeprefix(tag): rest
        for o, *rest in db.execute(
            "select order_id, ordered_at, customer_id, channel, status, has_sale from silver.orders "
            "where region = %s",
            [region],
        )
    }
    lines = sorted(
        (o.removeprefix(tag), *rest)
        for o, *rest in db.execute(
            "select l.order_id, line_no, product_id, product_name, category, quantity, unit_price, discount, unit_cost "
            "from silver.order_lines l join silver.orders o using (order_id) where o.region = %s",
            [region],
        )
    )
    gold = db.execute(
        "select hour, sum(orders), sum(revenue) from gold.sales_hourly where region = %s group by 1 order by 1",
        [region],
    ).fetchall()
    return {"rejects": rejects, "unnamed": unnamed, "orders": orders, "lines": lines, "gold": gold}


def test_both_paths_agree_on_tricky_events_in_silver_gold_and_rejects(wh):
    """validate.py (today's path, and the mover with KPI_MOVE_VALIDATE=python) and the mover's SQL
    accept and refuse the same events, for the same reasons, and write the same rows."""
    run = _uid()
    seen = {}
    for path in ("ingest", "sql", "python"):
        tag, region, source = f"{path[0].upper()}{run}", f"Tricky {path} {run}", f"tricky-{path}-{run}"
        events = _tricky(tag, region)
        if path == "ingest":
            stream.ingest(events, source=source)
        else:
            assert _land(events, source).landed == len(events)
            stream.drain(validate=path)
        seen[path] = _outcome(wh, tag, source, region)
    one, sql, py = seen["ingest"], seen["sql"], seen["python"]
    assert sql["rejects"] == one["rejects"] and py["rejects"] == one["rejects"]
    # NaN is not JSON, and jsonb cannot hold \u0000 nor half a surrogate pair: refused before an
    # event id is read
    assert sql["unnamed"] == one["unnamed"] == py["unnamed"] == ["not valid JSON"] * 3
    assert sql["orders"] == one["orders"] and py["orders"] == one["orders"]
    assert sql["lines"] == one["lines"] and py["lines"] == one["lines"]
    assert sql["gold"] == one["gold"] and py["gold"] == one["gold"]

    # and what they agree on is what a user would expect
    accepted = set(one["orders"])
    assert accepted == {
        "plain", "tiny_qty", "tiny_qty_text", "tiny_price", "tiny_discount", "tiny_line_no", "nanoseconds",
        "round_up", "comma", "space_offset", "date_only", "naive", "twice", "never", "line_no_text",
        "line_no_half", "backslash_u0000", "emoji",
    }  # fmt: skip
    assert set(one["rejects"]) == set(TRICKY) - accepted - {"nan_literal", "nul_escape", "lone_surrogate"}
    for name in (
        "zone_name",
        "zone_name_t",
        "zone_abbrev",
        "offset_seconds",
        "week_date",
        "compact",
        "hour_24",
    ):
        assert one["rejects"][name].endswith("is not an ISO-8601 time"), name  # never read as local time
    assert one["rejects"]["far_future"] == "ordered_at 2999-01-01T00:00:00Z is more than a day in the future"
    assert one["rejects"]["huge_int"] == "lines[0].quantity inf is not a finite number"
    assert one["rejects"]["huge_text"] == "lines[0].quantity '1e400' is not a finite number"
    assert one["rejects"]["underscore"] == "lines[0].quantity '1_000' is not a number"
    assert one["rejects"]["qty_range"] == "lines[0].quantity 100000000000 is out of range"
    assert one["rejects"]["negative"] == "lines[0].unit_price is negative (-4.123456789)"
    assert one["rejects"]["big_negative"] == "lines[0].unit_price is negative (-1.5e+15)"
    assert one["rejects"]["line_no_true"] == "lines[0].line_no True is not a whole number"
    at = {name: row[0] for name, row in one["orders"].items()}
    assert at["nanoseconds"] == AT + timedelta(microseconds=123456)  # truncated, not rounded
    assert at["round_up"] == AT - timedelta(hours=2) + timedelta(microseconds=999999)
    assert at["comma"] == AT - timedelta(hours=2) + timedelta(milliseconds=500)
    assert at["naive"] == AT - timedelta(hours=2)  # Paris wall clock in summer
    assert at["date_only"] == datetime(2024, 7, 7, 22, 0, tzinfo=UTC)
    assert at["twice"] == datetime(2024, 10, 27, 1, 30, tzinfo=UTC)
    assert at["never"] == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    lines = {ln[0]: ln for ln in one["lines"]}
    assert [float(x) for x in lines["tiny_price"][6:8]] == [0.0, 0.0]  # price 0, discount 0
    assert lines["backslash_u0000"][3] == "a\\u0000b" and lines["emoji"][3] == "mug \U0001f600"
    assert lines["tiny_line_no"][1] == 1 and lines["line_no_half"][1] == 2 and lines["line_no_text"][1] == 7


# --- a landing that keeps failing ------------------------------------------------------------------


def _orders(tag: str, region: str, n: int, start: int = 0) -> list[dict]:
    return [
        {
            "event_id": f"p-{tag}-{i}",
            "order_id": f"P{tag}{i}",
            "ordered_at": (AT + timedelta(seconds=i)).isoformat(),
            "customer_id": f"C{i % 7}",
            "region": region,
            "channel": "Web",
            "lines": [{"product_id": "P1", "category": "Books", "quantity": 1, "unit_price": 2.0}],
        }
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize(
    ("validate", "how"), [("sql", "mover"), ("python", "mover"), ("sql", "kpi move --drain")]
)
def test_a_landing_that_keeps_failing_goes_to_rejects_after_bounded_attempts_and_the_rest_moves(
    wh, validate, how, monkeypatch
):
    """A database error nothing foresaw (here a check constraint on silver.orders that one order
    breaks) fails the moves of its landing. The landings before and after it move; after
    ``max_attempts()`` failures its events move one by one and the poison one lands in
    bronze.rejects with the error as the reason. A running mover does all that by itself, and
    `kpi move --drain` ends (and says so) instead of stopping at the first failure."""
    monkeypatch.setenv("KPI_MOVE_VALIDATE", validate)
    tag = _uid()
    region, source = f"Poison {tag}", f"poison-{tag}"
    events = _orders(tag, region, 30)
    events[15]["order_id"] = f"POISON{tag}"  # in the second of three landings
    wh.execute("alter table silver.orders add constraint test_poison check (order_id not like 'POISON%%')")
    mover = stream.Mover(leader=True, poll_s=0.5, min_interval_s=0.05)
    try:
        assert _land(events, source, max_events=10).landed == 30
        landings = [r[0] for r in wh.execute(
            "select land_id from bronze.landings where source = %s order by land_id", [source]
        )]  # fmt: skip
        assert len(landings) == 3
        if how == "mover":
            mover.start()
        else:
            out = kpi("move", "--drain", check=True).stdout
            assert "loaded 29 new orders" in out and "rejected 1" in out, out
            assert "a move failed and was tried again: CheckViolation 23514" in " ".join(out.split()), out
        assert wait_for(
            lambda: (
                not wh.execute(
                    "select count(*) from bronze.landings where source = %s and moved_at is null", [source]
                ).fetchone()[0]
            ),
            timeout=60,
        ), "the mover did not get past the poison landing"
    finally:
        mover.stop()
        wh.execute("alter table silver.orders drop constraint test_poison")
    n, orders, revenue = wh.execute(
        "select (select count(*) from silver.orders where region = %s), sum(orders), sum(revenue) "
        "from gold.sales_hourly where region = %s",
        [region, region],
    ).fetchone()
    assert (n, orders, float(revenue)) == (29, 29, 58.0)  # every other event, once
    (event_id, row_data, reason), *more = wh.execute(
        "select event_id, row_data, reason from bronze.rejects where source = %s", [source]
    ).fetchall()
    assert not more and event_id == f"p-{tag}-15" and json.loads(row_data)["order_id"] == f"POISON{tag}"
    assert reason.startswith("could not be moved to silver: CheckViolation 23514") and "test_poison" in reason
    marks = wh.execute(
        "select land_id, attempts, loaded, rejected, duplicates, last_error is not null from bronze.landings "
        "where source = %s order by land_id",
        [source],
    ).fetchall()
    max_attempts = stream.move.max_attempts()
    # all three failed together once; then the first and third moved alone, the second event by event
    assert marks == [
        (landings[0], 1, 10, 0, 0, True),
        (landings[1], max_attempts, 9, 1, 0, True),
        (landings[2], 1, 10, 0, 0, True),
    ]


def test_of_two_standing_movers_one_moves_and_the_other_takes_over(wh):
    tag = _uid()
    region, source = f"Lead {tag}", f"lead-{tag}"
    first = stream.Mover(leader=True, standby_s=0.2, min_interval_s=0.05).start()
    second = stream.Mover(leader=True, standby_s=0.2, min_interval_s=0.05)
    try:
        assert wait_for(lambda: first.role == "moving", timeout=10)
        second.start()
        assert wait_for(lambda: second.role == "standby", timeout=10)
        with psycopg.connect(wh.info.dsn, autocommit=True) as conn:
            assert stream.move.leader_status(conn) is not None
        _land(_orders(tag, region, 5), source)
        assert wait_for(lambda: first.moves >= 1, timeout=10) and second.moves == 0
        first.stop()
        assert wait_for(lambda: second.role == "moving", timeout=10)
        _land(_orders(tag, region, 5, start=5), source)
        assert wait_for(
            lambda: (
                wh.execute("select count(*) from silver.orders where region = %s", [region]).fetchone()[0]
                == 10
            ),
            timeout=10,
        )
        assert second.moves >= 1
    finally:
        first.stop()
        second.stop()


def test_a_standing_mover_killed_with_sigkill_is_replaced_and_nothing_waits(wh):
    """`kpi move` leads; killed with SIGKILL, its connection and lock go with it, and a standby takes
    over: landings after the kill still reach silver."""
    tag = _uid()
    region, source = f"Killed {tag}", f"killed-{tag}"
    proc = subprocess.Popen([KPI, "move"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    standby = stream.Mover(leader=True, standby_s=0.2, min_interval_s=0.05)
    try:
        assert wait_for(lambda: stream.move.leader_status(wh), timeout=60), "kpi move did not lead"
        standby.start()
        assert wait_for(lambda: standby.role == "standby", timeout=10)

        def in_silver() -> int:
            return wh.execute("select count(*) from silver.orders where region = %s", [region]).fetchone()[0]

        _land(_orders(tag, region, 5), source)
        assert wait_for(lambda: in_silver() == 5, timeout=10) and standby.moves == 0  # kpi move moved them
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_for(lambda: standby.role == "moving", timeout=30), "no standby took over"
        _land(_orders(tag, region, 5, start=5), source)
        assert wait_for(lambda: in_silver() == 10, timeout=10) and standby.moves >= 1
    finally:
        standby.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
