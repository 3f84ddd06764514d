"""Errors as RFC 9457 problem details: what happened, what to do, and which parameter was at fault.

Every error the API answers is ``application/problem+json``. Bad parameters are a 4xx naming the
parameter (``invalid-params``); a library error a user can cause (:class:`kpi_lib.errors.KpiError`)
is a 400 with its message; only a bug is a 500, and it says where to look.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AuthError, KpiError

log = logging.getLogger(__name__)

MEDIA = "application/problem+json"


class ApiProblem(Exception):
    """Raised by endpoints: becomes a problem-details response."""

    def __init__(self, status: int, detail: str, param: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.param, self.headers = status, detail, param, headers


def bad_param(param: str, detail: str, status: int = 400) -> ApiProblem:
    return ApiProblem(status, detail, param)


def problem(
    status: int,
    detail: str,
    instance: str | None = None,
    invalid: list[dict[str, str]] | None = None,
    headers: dict | None = None,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "invalid-params": invalid or [],
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA, headers=headers)


def _name(loc: tuple) -> str:
    """A validation error's location as the client spelled it: ``grain``, ``body.comment``."""
    parts = [str(p) for p in loc if p not in ("query", "path", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem):
        invalid = [{"name": exc.param, "reason": exc.detail}] if exc.param else None
        return problem(exc.status, exc.detail, request.url.path, invalid, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        invalid = [
            {"name": _name(tuple(e.get("loc", ()))), "reason": e.get("msg", "invalid")} for e in exc.errors()
        ]
        names = ", ".join(dict.fromkeys(i["name"] for i in invalid))
        return problem(
            400,
            f"Invalid parameter(s): {names}. See invalid-params, or /api/docs.",
            request.url.path,
            invalid,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No API endpoint at {request.url.path}; /api/docs lists them."
        return problem(exc.status_code, detail, request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError):
        return problem(403, str(exc), request.url.path)

    @app.exception_handler(KpiError)
    async def _kpi(request: Request, exc: KpiError):
        return problem(400, str(exc), request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("API error on %s", request.url.path)
        return problem(
            500,
            "The API failed unexpectedly; the error is in the api log ($KPI_HOME/logs/api.log).",
            request.url.path,
        )
