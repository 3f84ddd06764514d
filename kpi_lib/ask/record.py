"""Every question asked is kept: ``ops.questions`` (who, the text, the reading, the status) and the
audit log (:func:`kpi_lib.auth.audit`). Recording never breaks an answer."""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa

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
    names = (
        "actor",
        "question",
        "status",
        "kpi",
        "spec",
        "reason",
        "value",
        "as_of",
        "data_version",
        "surface",
    )
    sql = sa.text(
        f"insert into ops.questions ({', '.join(names)}) values ({', '.join(':' + n for n in names)})"
    )
    for attempt in (1, 2):
        try:
            with warehouse.engine().begin() as conn:  # pooled: no new connection per question
                conn.execute(sql, dict(zip(names, row, strict=True)))
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
