"""The ingest process killed with SIGKILL mid-file, then run again: nothing lost, nothing doubled
(on a private warehouse)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgnode import wait_for

pytestmark = pytest.mark.slow
AT = datetime(2024, 7, 8, 12, 0, tzinfo=UTC)  # pinned event times
N, PRICE = 30_000, 3.0


def test_kill_9_mid_batch_then_rerun_lands_every_event_once(private_db, tmp_path):
    tag = uuid.uuid4().hex[:8]
    region = f"Kill-{tag}"
    path = tmp_path / "events.jsonl"
    with path.open("w") as f:
        for i in range(N):
            ev = {
                "event_id": f"k-{tag}-{i}",
                "order_id": f"K{tag}{i}",
                "ordered_at": (AT + timedelta(milliseconds=10 * i)).isoformat(),
                "customer_id": f"CK{i % 211}",
                "region": region,
                "channel": "Web",
                "lines": [{"product_id": "P1", "category": "Books", "quantity": 1, "unit_price": PRICE}],
            }
            f.write(json.dumps(ev) + "\n")
    cmd = [str(Path(sys.executable).with_name("kpi")), "ingest", str(path), "--source", "fault-kill"]
    env = {**os.environ, "KPI_BATCH_MAX_EVENTS": "500"}

    def landed() -> int:
        return private_db.execute(
            "select count(*) from silver.orders where region = %s", [region]
        ).fetchone()[0]

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: landed() >= 2_000 or proc.poll() is not None, timeout=60, every=0.01)
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up of any kind: mid-batch
    finally:
        proc.wait(10)
    at_kill = landed()
    assert proc.returncode == -signal.SIGKILL and 0 < at_kill < N, (proc.returncode, at_kill)

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    n, distinct = private_db.execute(
        "select count(*), count(distinct order_id) from silver.orders where region = %s", [region]
    ).fetchone()
    assert n == distinct == N
    orders, revenue = private_db.execute(
        "select sum(orders), sum(revenue) from gold.sales_hourly where region = %s", [region]
    ).fetchone()
    assert orders == N and revenue == pytest.approx(N * PRICE)  # gold counted each order once


# --- the fast path (issue 17): the lander and the mover killed -----------------------------------------

KPI = str(Path(sys.executable).with_name("kpi"))


def _events(tag: str, region: str) -> list[dict]:
    return [
        {
            "event_id": f"k-{tag}-{i}",
            "order_id": f"K{tag}{i}",
            "ordered_at": (AT + timedelta(milliseconds=10 * i)).isoformat(),
            "customer_id": f"CK{i % 211}",
            "region": region,
            "channel": "Web",
            "lines": [{"product_id": "P1", "category": "Books", "quantity": 1, "unit_price": PRICE}],
        }
        for i in range(N)
    ]


def _every_order_once(db, region: str) -> None:
    n, distinct = db.execute(
        "select count(*), count(distinct order_id) from silver.orders where region = %s", [region]
    ).fetchone()
    assert n == distinct == N
    orders, revenue = db.execute(
        "select sum(orders), sum(revenue) from gold.sales_hourly where region = %s", [region]
    ).fetchone()
    assert orders == N and revenue == pytest.approx(N * PRICE)  # gold counted each order once
    assert db.execute("select count(*) from bronze.landings where moved_at is null").fetchone()[0] == 0


def _drain() -> None:
    done = subprocess.run([KPI, "move", "--drain"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_fast_lander_killed_mid_batch_loses_nothing_it_acknowledged(private_db, tmp_path):
    """`kpi ingest --fast` (its own mover moving as it lands) killed mid-file: every acknowledged
    batch is whole in bronze and reaches silver once; sending the whole file again doubles nothing."""
    tag = uuid.uuid4().hex[:8]
    region = f"Land-{tag}"
    source = f"fault-land-{tag}"
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(ev) + "\n" for ev in _events(tag, region)))
    cmd = [KPI, "ingest", str(path), "--fast", "--source", source]
    env = {**os.environ, "KPI_BATCH_MAX_EVENTS": "500"}

    def landings() -> int:
        return private_db.execute(
            "select count(*) from bronze.landings where source = %s", [source]
        ).fetchone()[0]

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: landings() >= 4 or proc.poll() is not None, timeout=60, every=0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-file: a batch is being framed or copied, a move may run
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    acked, raw = private_db.execute(
        "select (select sum(events) from bronze.landings where source = %s), "
        "(select count(*) from bronze.landed_events e join bronze.landings l using (land_id) where l.source = %s)",
        [source, source],
    ).fetchone()
    assert 0 < acked < N and raw == acked and acked % 500 == 0, (acked, raw)  # whole batches only
    _drain()  # the lander's mover died with it: another one moves what it acknowledged
    n, distinct = private_db.execute(
        "select count(*), count(distinct order_id) from silver.orders where region = %s", [region]
    ).fetchone()
    assert n == distinct == acked  # no acknowledged event lost, none doubled
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    _every_order_once(private_db, region)


@pytest.mark.parametrize("validate", ["sql", "python"])
def test_mover_killed_mid_move_leaves_every_landing_waiting_then_moves_each_once(private_db, validate):
    from kpi_lib import stream

    tag = uuid.uuid4().hex[:8]
    region = f"Move-{tag}"
    ing = stream.Lander(f"fault-move-{tag}", interval_ms=3_600_000, max_events=5_000, mover=False)
    for ev in _events(tag, region):
        ing.put(ev)
    assert ing.close().landed == N

    def moving() -> bool:  # the mover's backend is inside the move, writing silver or gold
        return (
            private_db.execute(
                "select count(*) from pg_stat_activity where state = 'active' and "
                "(query like '%%insert into silver.orders%%' or query like '%%gold.apply_new_orders%%') "
                "and pid <> pg_backend_pid()"
            ).fetchone()[0]
            > 0
        )

    proc = subprocess.Popen(
        [KPI, "move", "--drain"],
        env={**os.environ, "KPI_MOVE_VALIDATE": validate},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: moving() or proc.poll() is not None, timeout=60, every=0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    # its backend notices the dead client and rolls back: wait until it let go of the mover's lock
    assert wait_for(
        lambda: (
            not private_db.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and pid <> pg_backend_pid()"
            ).fetchone()[0]
        ),
        timeout=60,
    )
    waiting, in_silver, rejects = private_db.execute(
        "select (select count(*) from bronze.landings where moved_at is null), "
        "(select count(*) from silver.orders where region = %s), (select count(*) from bronze.rejects)",
        [region],
    ).fetchone()
    assert (waiting, in_silver, rejects) == (N // 5_000, 0, 0)  # nothing half-moved
    _drain()
    _every_order_once(private_db, region)
