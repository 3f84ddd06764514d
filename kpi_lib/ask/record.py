"""Every question asked is kept: ``ops.questions`` (who, the text, the reading, the status) and the
audit log (:func:`kpi_lib.auth.audit`). Recording never breaks an answer."""

from __future__ import annotations

import json
import logging

from .. import auth, warehouse
from .answer import Answer

log = logging.getLogger(__name__)


def record(answer: Answer, actor: str, surface: str) -> None:
    spec = answer.spec if answer.compare_spec is None else {"a": answer.spec, "b": answer.compare_spec}
    row = [
        actor,
        answer.question[:2000],
        answer.status,
        answer.kpi,
        None if spec is None else json.dumps(spec, default=str),
        answer.reason,
        None if answer.masked else answer.value,
        answer.as_of,
        answer.data_version,
        surface,
    ]
    sql = (
        "insert into ops.questions (actor, question, status, kpi, spec, reason, value, as_of, "
        "data_version, surface) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    for attempt in (1, 2):
        try:
            with warehouse.connect_raw(autocommit=True) as conn:
                conn.execute(sql, row)
            break
        except Exception as exc:  # noqa: BLE001 - an older warehouse: add the table once, then give up
            if attempt == 1 and "questions" in str(exc):
                try:
                    warehouse.migrate()
                    continue
                except Exception:  # noqa: BLE001
                    pass
            log.error("could not record the question in ops.questions: %s", exc)
            break
    auth.audit(
        actor, "ask", answer.question[:200], status=answer.status, kpi=answer.kpi, spec=spec, surface=surface
    )
