"""The API's audit trail, written in batches: every call is audited and no caller waits for it.

Rows go to the same append-only, hash-chained ``ops.audit_log`` as :func:`kpi_lib.auth.audit`, in
one pooled transaction per batch instead of one new connection per call (a connection per call
cost more than the query it audited). Rows still queued when the process exits are written then.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
from typing import Any

from .. import auth, warehouse

log = logging.getLogger(__name__)

INSERT = "insert into ops.audit_log (actor, action, target, details) values (%s, %s, %s, %s)"
BATCH = 500


class AuditWriter:
    def __init__(self) -> None:
        self.q: queue.Queue[tuple] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def put(self, actor: str, action: str, target: str | None = None, **details: Any) -> None:
        self.q.put((actor, action, target, json.dumps(details, default=str)))
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="kpi-api-audit", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            self._write([self.q.get()])

    def _write(self, batch: list[tuple]) -> None:
        while len(batch) < BATCH:
            try:
                batch.append(self.q.get_nowait())
            except queue.Empty:
                break
        try:
            with warehouse.engine().begin() as conn:
                conn.exec_driver_sql(INSERT, batch)  # one executemany (psycopg pipelines it)
        except Exception as exc:  # noqa: BLE001 - fall back to one row at a time: nothing is lost
            log.warning("batched audit write failed (%s); writing %d rows one by one", exc, len(batch))
            for actor, action, target, details in batch:
                auth.audit(actor, action, target, **json.loads(details))

    def flush(self) -> None:
        """Write whatever is queued now (at exit, and in tests)."""
        pending = []
        while True:
            try:
                pending.append(self.q.get_nowait())
            except queue.Empty:
                break
        if pending:
            self._write(pending)


WRITER = AuditWriter()
atexit.register(WRITER.flush)
