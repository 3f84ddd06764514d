"""Reads from a real PostgreSQL streaming replica (kpi_lib.replicas).

A private primary on a free port, and a replica of it made with ``pg_basebackup -R`` and started on
another free port, both from the embedded server's binaries. The session warehouse is not involved.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from conftest import free_port
from pgnode import PgNode, wait_for, warehouse_on

from kpi_lib import kpis, replicas, stream

DAY = date(2024, 3, 5)  # pinned: no test depends on the wall clock
AT = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)


def order(price: float, n: int = 0) -> dict:
    oid = f"RP{uuid.uuid4().hex[:10]}"
    return {
        "event_id": f"ev-{oid}",
        "order_id": oid,
        "ordered_at": (AT + timedelta(seconds=n)).isoformat(),
        "customer_id": "C1",
        "region": "Europe",
        "channel": "Web",
        "lines": [
            {
                "product_id": "P1",
                "product_name": "Mug",
                "category": "Home",
                "quantity": 1,
                "unit_price": price,
                "discount": 0,
                "unit_cost": 1,
            }
        ],
    }


def revenue(use_cache: bool = True) -> float:
    return kpis.query("revenue", "total", start=DAY, end=DAY + timedelta(days=1), use_cache=use_cache).value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    primary = PgNode(free_port()).init().start()
    replica = None
    try:
        with psycopg.connect(primary.url(), autocommit=True) as admin:
            admin.execute("create database kpi")
        home = tmp_path_factory.mktemp("replica_home")
        replica_port = free_port()
        with warehouse_on(
            primary.url("kpi"),
            home,
            DATABASE_REPLICA_URL=f"postgresql://postgres@127.0.0.1:{replica_port}/kpi",
            KPI_REPLICA_RETRY_S="0.5",
            KPI_REPLICA_WAIT_MS="300",
        ):
            # the replica starts from the migrated primary, reader role and all
            replica = PgNode(replica_port).replica_of(primary).start()
            yield primary, replica
    finally:
        if replica is not None:
            replica.remove()
        primary.remove()


def test_ingest_on_the_primary_is_read_from_the_replica(cluster):
    _, replica = cluster
    base = revenue()
    for i in range(5):  # each read right after its ingest: never an older answer
        stream.ingest([order(10.0 + i, i)], source="test-replica")
        before = replicas.stats["replica"]
        assert revenue() == pytest.approx(base + sum(10.0 + k for k in range(i + 1)))
        if replicas.stats["replica"] > before:
            assert replicas.served_by() == f"127.0.0.1:{replica.port}"
    assert replicas.stats["replica"] >= 3, dict(replicas.stats)
    with psycopg.connect(replica.url("kpi")) as conn:  # the replica really holds the rows
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0]
        n = conn.execute("select count(*) from silver.orders where source = 'test-replica'").fetchone()[0]
    assert n == 5


def test_a_replica_behind_the_seen_version_is_not_read(cluster):
    """Replay paused on the replica: the next read must not show the older data, so it goes to the
    primary; once replay resumes, reads come back to the replica."""
    _, replica = cluster
    base = revenue()
    with psycopg.connect(replica.url("kpi"), autocommit=True) as admin:
        admin.execute("select pg_wal_replay_pause()")
        try:
            stream.ingest([order(500.0)], source="test-replica")
            lagging = replicas.stats["lagging"]
            assert revenue() == pytest.approx(base + 500.0)
            assert replicas.stats["lagging"] == lagging + 1 and replicas.served_by() == "primary"
        finally:
            admin.execute("select pg_wal_replay_resume()")
    stream.ingest([order(1.0)], source="test-replica")
    assert revenue() == pytest.approx(base + 501.0)
    assert wait_for(lambda: revenue(use_cache=False) and replicas.served_by() != "primary", timeout=5)


def test_a_stopped_replica_sends_reads_to_the_primary_without_errors(cluster):
    _, replica = cluster
    base = revenue()
    replica.stop()
    try:
        (down,) = replicas.status()  # what `kpi status` prints
        assert not down["up"] and down["name"] == f"127.0.0.1:{replica.port}"
        stream.ingest([order(40.0)], source="test-replica")
        assert revenue() == pytest.approx(base + 40.0)  # no error: the primary answered
        assert replicas.served_by() == "primary"
        stream.ingest([order(2.0)], source="test-replica")
        assert revenue() == pytest.approx(base + 42.0)
    finally:
        replica.start()
    # back in service after KPI_REPLICA_RETRY_S, once it has replayed what was missed
    stream.ingest([order(3.0)], source="test-replica")
    assert wait_for(
        lambda: revenue(use_cache=False) == pytest.approx(base + 45.0) and replicas.served_by() != "primary",
        10,
    )


def test_the_replica_reads_as_the_reader_in_the_row_scope(cluster):
    """Roles, grants and row security come over with the WAL: a read on the replica runs as the
    least-privileged reader, and a scoped one sees its own rows only."""
    from kpi_lib import warehouse
    from kpi_lib.scope import RowScope, using

    _, replica = cluster
    stream.ingest([order(7.0) | {"region": "Asia Pacific"}], source="test-replica")
    everyone = revenue(use_cache=False)
    with using(RowScope.of({"region": ["Asia Pacific"]})):
        scoped = revenue(use_cache=False)
        assert replicas.served_by() == f"127.0.0.1:{replica.port}"
    assert 0 < scoped < everyone
    assert scoped == pytest.approx(7.0)  # this test's order is the only one in that region on DAY
    with replicas.read() as conn:
        assert conn.exec_driver_sql("select current_user").scalar() == warehouse.reader_role("kpi")
