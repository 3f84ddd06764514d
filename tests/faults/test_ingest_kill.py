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
