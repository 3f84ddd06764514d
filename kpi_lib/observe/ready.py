"""``/readyz``: can this installation do its job right now? Each part is checked for real.

- warehouse: a query answers;
- redis: PING answers (only when REDIS_URL is set);
- smtp: the mail server accepts a connection and greets;
- listener: this process's LISTEN connection for data changes is up (live pages and the API's
  pushes depend on the same kind of connection).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from typing import Any

from .. import stream, warehouse
from ..config import settings

TIMEOUT_S = 2.0


def _warehouse() -> str:
    with warehouse.connect_raw(autocommit=True, start=False) as conn:
        conn.execute("select 1").fetchone()
    return "answers"


def _redis() -> str | None:
    url = settings().redis_url
    if not url:
        return None
    import redis

    redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S).ping()
    return "answers PING"


def _smtp() -> str:
    cfg = settings()
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=TIMEOUT_S) as smtp:
        code, _ = smtp.noop()
    if code != 250:
        raise RuntimeError(f"{cfg.smtp_host}:{cfg.smtp_port} answered {code} to NOOP")
    return f"{cfg.smtp_host}:{cfg.smtp_port} greets"


_subscription: stream.Subscription | None = None


def _listener() -> str:
    """This process's own LISTEN connection (the same hub the dashboards and the API use)."""
    global _subscription
    if _subscription is None:
        _subscription = stream.subscribe(lambda change: None)
    if not stream.wait_connected(TIMEOUT_S):
        raise RuntimeError(
            "the LISTEN connection for data changes is not up; the warehouse may be restarting"
        )
    return f"listening for data changes (version {stream.listener_version()})"


CHECKS: dict[str, Callable[[], str | None]] = {
    "warehouse": _warehouse,
    "redis": _redis,
    "smtp": _smtp,
    "listener": _listener,
}


def check() -> dict[str, Any]:
    """``{"ready": bool, "checks": {name: {"ok", "detail", "ms"}}}``; skipped parts are left out."""
    out: dict[str, Any] = {}
    for name, fn in CHECKS.items():
        t0 = time.perf_counter()
        try:
            detail = fn()
            if detail is None:
                continue
            ok = True
        except Exception as exc:  # noqa: BLE001 - a failed part is reported, never raised
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        out[name] = {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    return {"ready": all(c["ok"] for c in out.values()), "checks": out}
