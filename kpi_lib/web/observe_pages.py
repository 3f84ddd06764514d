"""The front door's operations endpoints: ``/readyz`` (open, like /healthz) and ``/metrics``
(Prometheus text; administrators only, by session or bearer token), and the request timing every
front-door response records (tornado's ``log_function``)."""

from __future__ import annotations

import asyncio
import logging

import tornado.web

from .. import auth
from .api_proxy import bearer_user
from .pages import Base

log = logging.getLogger(__name__)
access_log = logging.getLogger("tornado.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Time every front-door response (Application setting ``log_function``), then log as tornado does."""
    status = handler.get_status()
    path = handler.request.path
    surface = next((p for p in ("api", "panel", "voila") if path.startswith(f"/{p}/")), "front door")
    try:
        from ..observe import metrics

        metrics.observe_request(
            surface, handler.request.method or "GET", status, handler.request.request_time()
        )
    except Exception:  # noqa: BLE001 - metrics never break a response
        log.debug("request metric failed", exc_info=True)
    level = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    level("%d %s %.2fms", status, handler._request_summary(), 1000.0 * handler.request.request_time())


class ReadyHandler(tornado.web.RequestHandler):
    """GET /readyz: 200 when every part answers, 503 naming the ones that do not."""

    async def get(self) -> None:
        from ..observe import ready

        result = await asyncio.get_running_loop().run_in_executor(None, ready.check)
        self.set_status(200 if result["ready"] else 503)
        self.finish(result)


class MetricsHandler(Base):
    """GET /metrics: every process's metrics in Prometheus text format (administrators only)."""

    def get_current_user(self) -> auth.User | None:
        found = bearer_user(self.request.headers.get("Authorization", ""))
        return super().get_current_user() if found is None else found[0]

    async def get(self) -> None:
        who = self.current_user
        if who is None or not who.admin:
            self.set_status(401 if who is None else 403)
            self.set_header("WWW-Authenticate", "Bearer")
            self.finish(
                "Metrics are for administrators: send an admin's token (Authorization: Bearer ...).\n"
            )
            return
        from prometheus_client import CONTENT_TYPE_LATEST

        from ..observe import metrics

        body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class OperationsHandler(Base):
    """GET /admin/operations: the health score, real users' page loads, cache and adoption (admins)."""

    async def get(self) -> None:
        if self.require_admin() is None:
            return
        from ..observe import operations

        ops = await asyncio.get_running_loop().run_in_executor(None, operations.overview)
        self.page("admin_operations.html", title="Operations", ops=ops)


def handlers() -> list[tuple]:
    return [
        (r"/readyz", ReadyHandler),
        (r"/metrics", MetricsHandler),
        (r"/admin/operations", OperationsHandler),
    ]
