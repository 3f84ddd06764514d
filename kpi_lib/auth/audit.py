"""The audit log: who did what, when (``ops.audit_log``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from .. import warehouse

log = logging.getLogger(__name__)


def audit(actor: str, action: str, target: str | None = None, **details: Any) -> None:
    """Append to ops.audit_log. Never raises: auditing must not break the action it records."""
    try:
        with warehouse.connect_raw(autocommit=True) as conn:
            conn.execute(
                "insert into ops.audit_log (actor, action, target, details) values (%s, %s, %s, %s)",
                [actor, action, target, json.dumps(details, default=str)],
            )
    except Exception as exc:  # noqa: BLE001
        log.error("could not write the audit log (%s %s %s): %s", actor, action, target, exc)
