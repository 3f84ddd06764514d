"""The ingest design before the split (commit 701e00a), kept for ``bench_ingest.py`` to measure in the
same run: each micro-batch in ONE transaction (COPY into bronze and staging, silver upsert,
``gold.apply_new_orders()``, version bump and NOTIFY). ``write_batch`` is that commit's code verbatim;
:class:`OneTxnIngestor` is today's Ingestor (same batching, same overlap of validation and database
work) writing each batch with it. Benchmark code only: nothing in kpi_lib uses it."""

from __future__ import annotations

import time

import psycopg

from kpi_lib import warehouse
from kpi_lib.stream import Batch, Ingestor, IngestResult, _copy_rows

_STAGE_DDL = """
create temp table if not exists _ingest_orders (like silver.orders) on commit delete rows;
create temp table if not exists _ingest_lines (like silver.order_lines) on commit delete rows;
create temp table if not exists _new_orders (order_id text, ordered_at timestamptz, customer_id text,
    region text, channel text, has_sale boolean) on commit delete rows;
create temp table if not exists _new_lines (like silver.order_lines) on commit delete rows;
"""


def write_batch(conn: psycopg.Connection, batch: Batch, source: str) -> IngestResult:
    """Land one validated batch in a single transaction (the caller's connection, not autocommit)."""
    t0 = time.perf_counter()
    res = IngestResult(
        received=len(batch.events) + len(batch.rejects) + batch.duplicates,
        rejected=len(batch.rejects),
        batches=1,
        reasons=[r[2] for r in batch.rejects[:20]],
    )
    conn.execute(_STAGE_DDL)
    # Raw events straight into bronze (append-only: staging them first only copied them twice).
    _copy_rows(
        conn, "bronze.events", "event_id, source, payload", [(e, source, raw) for e, raw in batch.events]
    )
    _copy_rows(
        conn,
        "_ingest_orders",
        "order_id, ordered_at, customer_id, region, channel, status, has_sale, event_id, source",
        batch.orders,
    )
    _copy_rows(
        conn,
        "_ingest_lines",
        "order_id, line_no, product_id, product_name, category, quantity, unit_price, discount, unit_cost",
        batch.lines,
    )
    # New orders and their lines in one statement; anything seen before is skipped by the keys.
    conn.execute(
        "with new as (insert into silver.orders select * from _ingest_orders on conflict do nothing "
        "             returning order_id, ordered_at, customer_id, region, channel, has_sale), "
        "     l as (insert into silver.order_lines select i.* from _ingest_lines i join new using (order_id) "
        "           on conflict do nothing returning *), "
        "     nl as (insert into _new_lines select * from l) "
        "insert into _new_orders select * from new"
    )
    # Temp tables have no statistics and the plans need them; only the join keys matter.
    conn.execute("analyze _new_orders (order_id, customer_id, ordered_at), _new_lines (order_id)")
    res.loaded, first, last = conn.execute(
        "select count(*), min(ordered_at), max(ordered_at) from _new_orders"
    ).fetchone()
    # Orders not inserted were seen before: the same event again is a no-op (exactly-once effect);
    # the same order id under another event id is refused with the reason.
    rejects = list(batch.rejects)
    conflicts = 0
    if res.loaded < len(batch.orders):
        payloads = dict(batch.events)
        found = conn.execute(
            "select s.event_id, 'order ' || s.order_id || ' already exists (from ' || "
            "coalesce('event ' || o.event_id, o.source) || ')' "
            "from _ingest_orders s join silver.orders o on o.order_id = s.order_id "
            "where o.event_id is distinct from s.event_id "
            "and not exists (select 1 from _new_orders n where n.order_id = s.order_id)"
        ).fetchall()
        rejects.extend((event_id, payloads.get(event_id, ""), reason) for event_id, reason in found)
        conflicts = len(found)
        res.reasons.extend(reason for _, reason in found[: max(0, 20 - len(res.reasons))])
    _copy_rows(
        conn,
        "bronze.rejects",
        "source, event_id, row_data, reason",
        [(source, event_id, raw, reason) for event_id, raw, reason in rejects],
    )
    res.rejected += conflicts
    res.duplicates = len(batch.orders) - res.loaded - conflicts + batch.duplicates
    if res.loaded:
        conn.execute("select gold.apply_new_orders()")
        conn.execute(
            "insert into silver.products (product_id, product_name, category, unit_cost) "
            "select distinct on (product_id) product_id, product_name, category, unit_cost from _ingest_lines "
            "order by product_id on conflict (product_id) do nothing"
        )
        res.version = conn.execute(
            "select ops.bump_version('ingest', %s, %s, %s, %s, %s)",
            [source, first, last, res.loaded, res.rejected],
        ).fetchone()[0]
    elif res.rejected:
        res.version = conn.execute(
            "select ops.bump_version('rejects', %s, null, null, 0, %s)", [source, res.rejected]
        ).fetchone()[0]
    conn.commit()
    res.seconds = time.perf_counter() - t0
    return res


class OneTxnIngestor(Ingestor):
    """The Ingestor, writing each batch with the one-transaction ``write_batch``."""

    def __init__(self, source: str, max_events: int | None = None) -> None:
        super().__init__(source, interval_ms=3_600_000, max_events=max_events, wait=False, mover=False)

    def _run(self) -> None:
        conn = None
        try:
            conn = warehouse.connect_raw()
            while (item := self._next()) is not None:
                batch, _tokens = item
                res, conn = self._retrying(conn, lambda c, b=batch: write_batch(c, b, self.source))
                self.total.add(res)
        except BaseException as exc:  # noqa: BLE001 - surfaced on close, as in the Ingestor
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            if conn is not None:
                conn.close()


def ingest(events, source: str, batch_size: int | None = None) -> IngestResult:
    """``stream.ingest`` as it was: every batch in one transaction, returning once all committed."""
    ing = OneTxnIngestor(source, max_events=batch_size)
    for ev in events:
        ing.put(ev)
    return ing.close()
