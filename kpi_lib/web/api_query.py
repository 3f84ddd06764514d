"""``GET /api/query`` at the front door, answered without a tornado ``RequestHandler``.

Programs ask this one question many times a second, and most asks are answered from kept bytes
(:mod:`kpi_lib.answers`). For those, tornado's handler machinery (handler and websocket set-up,
default headers, transforms) cost more than the answer itself, so this route is a bare message
delegate on tornado's router: the same host check, sign-in (bearer token or session cookie), rate
limit, kept-or-fresh answer, ETag, audit row, metrics and access log as the rest of ``/api/``, with
the response written straight to the connection. Everything else under ``/api/`` (other paths, other
methods, the ``/api/live`` websocket) still goes through :class:`.api_proxy.ApiProxyHandler`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from email.utils import formatdate
from urllib.parse import parse_qsl

import aiohttp
import tornado.iostream
import tornado.web
from tornado import httputil
from tornado.routing import Matcher, Router, Rule

from .. import auth
from ..answers import Answers
from ..auth import sessions
from ..errors import AuthError
from ..observe import metrics
from . import api_proxy, security
from .proxy import HOP_HEADERS, forward_headers

log = logging.getLogger(__name__)
access_log = logging.getLogger("tornado.access")

QUERY_PATH = "/api/query"
KEPT = Answers()
# a JSON answer is never a page: it may not run, load or be framed anywhere
HEADERS = {
    **security.SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
NOT_COPIED = HOP_HEADERS | {"server", "date", api_proxy.AUDIT_HEADER.lower()}
_tasks: set[asyncio.Task] = set()  # running answers (the loop keeps only weak references)


class _AsksForQuery(Matcher):
    """``GET /api/query`` (not a websocket upgrade); its query string is left for the answer."""

    def match(self, request: httputil.HTTPServerRequest) -> dict | None:
        if request.method == "GET" and request.path == QUERY_PATH and "Upgrade" not in request.headers:
            return {}
        return None


class _Relay(Exception):
    """An upstream response that is not kept (an error, a refusal): every asker gets it as it came."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


def question(query: str) -> tuple[tuple[str, ...], bool]:
    """The query string in a canonical order (parameter names sorted; repeated values keep their
    order, as ``by`` columns do), and whether it pins its own "now" (``as_of``)."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True), key=lambda kv: kv[0])
    return tuple(f"{k}={v}" for k, v in pairs), any(k == "as_of" and v.strip() for k, v in pairs)


def problem(status: int, detail: str) -> bytes:
    return api_proxy.problem(status, detail, QUERY_PATH)


_date = (0, "")


def _http_date() -> str:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]


class _Asked(httputil.HTTPMessageDelegate):
    """One request on its way in: once its (empty) body is read, its answer starts."""

    def __init__(self, route: QueryRoute, request: httputil.HTTPServerRequest) -> None:
        self.route, self.request = route, request

    def finish(self) -> None:
        task = asyncio.ensure_future(self.route.answer(self.request))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


class QueryRoute(Router):
    """The route's target. A router rather than a callable: tornado hands a router the request it
    has already parsed, where a callable target gets a second one built from the same bytes."""

    def __init__(
        self, upstream: str, secret: str, allowed_hosts: set[str] | None, cookie_secret: str
    ) -> None:
        self.upstream, self.secret = upstream, secret
        self.allowed_hosts, self.cookie_secret = allowed_hosts, cookie_secret

    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs) -> httputil.HTTPMessageDelegate:
        return _Asked(self, request)

    async def answer(self, request: httputil.HTTPServerRequest) -> None:
        try:
            status, headers, body = await self._respond(request)
        except Exception:  # noqa: BLE001 - a bug here must still answer, and not hang the client
            log.exception("GET /api/query failed at the front door")
            status, headers = 500, [("Content-Type", "application/problem+json")]
            body = problem(500, "The front door failed to answer; the server log says why.")
        if status == 200:  # as tornado's handlers do: a program polling with If-None-Match gets a 304
            etag = f'"{hashlib.sha1(body).hexdigest()}"'
            headers = [*headers, ("Etag", etag)]
            if etag in request.headers.get("If-None-Match", ""):
                status, body = 304, b""
        self._write(request, status, headers, body)

    async def _respond(self, request: httputil.HTTPServerRequest) -> tuple[int, list, bytes]:
        if self.allowed_hosts and request.host.lower() not in self.allowed_hosts:
            detail = f"This server does not answer to the host name {request.host!r}; see KPI_ALLOWED_HOSTS."
            return 421, _problem_head(), problem(421, detail)
        user, via, rate_key, bearer = self._reader(request)
        if user is None:
            detail = (
                "That token is unknown or revoked; make a new one with `kpi users token add`."
                if bearer
                else "Sign in first: send `Authorization: Bearer <token>` (`kpi users token add LOGIN --name NAME`)."
            )
            return 401, [*_problem_head(), ("WWW-Authenticate", "Bearer")], problem(401, detail)
        limit = api_proxy.limiter()
        if not await limit.hit(rate_key):
            wait = await limit.retry_after(rate_key)
            auth.audit_later(user.login, "refused", QUERY_PATH, reason="api rate limit", via=via)
            detail = f"Too many requests for this token; wait {wait} s (the limit is KPI_API_RATE)."
            return 429, [*_problem_head(), ("Retry-After", str(wait))], problem(429, detail)
        t0 = time.perf_counter()
        asked, pinned = question(request.query)
        # a question without its own "now" is answered for this wall-clock second, as in the API
        key = (user, asked, None if pinned else int(time.time()))
        fresh: list = []
        try:
            body, said, kept = await KEPT.get(key, lambda: self._fresh(request, user.login, via, fresh))
        except _Relay as r:
            return r.status, r.headers, r.body
        if not kept:  # this request went to the API, which audited it
            return fresh[0], fresh[1], body
        elapsed = time.perf_counter() - t0
        metrics.observe_query("answer", elapsed)
        details = {k: v for k, v in said.items() if k != "target"}
        details |= {"cache_level": "answer", "elapsed_ms": round(elapsed * 1000, 2)}
        auth.audit_later(user.login, "api query", said.get("target"), via=via, **details)
        return 200, [("Content-Type", "application/json"), ("X-KPI-Answer", "kept")], body

    def _reader(self, request: httputil.HTTPServerRequest) -> tuple[auth.User | None, str, str, bool]:
        """(user, how they signed in, their rate-limit key, whether a bearer token was sent)."""
        found = api_proxy.bearer_user(request.headers.get("Authorization", ""))
        if found is not None:
            who, token = found
            if who is None or token is None:
                return None, "", "", True
            return who, f"token:{token.name}", f"token:{token.token_id}", True
        who = self._session_user(request)
        return who, "session", f"user:{who.login}" if who else "", False

    def _session_user(self, request: httputil.HTTPServerRequest) -> auth.User | None:
        """The signed-in browser's user, as the front door's pages find it (pages.Base)."""
        morsel = request.cookies.get(auth.COOKIE)
        if morsel is None:
            return None
        raw = tornado.web.decode_signed_value(
            self.cookie_secret, auth.COOKIE, morsel.value, max_age_days=sessions.SESSION_DAYS + 1
        )
        try:
            login = sessions.login_for(raw.decode() if raw else None)
            return auth.user(login) if login else None
        except AuthError:  # removed user
            return None
        except Exception:  # noqa: BLE001 - the warehouse is down: nobody is signed in right now
            log.exception("session lookup failed")
            return None

    async def _fresh(self, request: httputil.HTTPServerRequest, login: str, via: str, out: list) -> tuple:
        """The API's answer to this request; kept only when it is a 200 with its audit details."""
        headers = forward_headers(request, login, self.secret)
        headers.pop("Authorization", None)
        headers[api_proxy.VIA_HEADER] = via
        try:
            async with api_proxy._session().get(
                self.upstream + request.uri, headers=headers, allow_redirects=False
            ) as resp:
                body = await resp.read()
                got = [(k, v) for k, v in resp.headers.items() if k.lower() not in NOT_COPIED]
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = f"The API is not answering ({exc}). Is `kpi serve` still starting?"
            raise _Relay(502, _problem_head(), problem(502, detail)) from exc
        said = resp.headers.get(api_proxy.AUDIT_HEADER)
        if resp.status != 200 or said is None:
            raise _Relay(resp.status, got, body)
        out[:] = [resp.status, got]
        return body, json.loads(said)

    def _write(self, request: httputil.HTTPServerRequest, status: int, headers: list, body: bytes) -> None:
        out = httputil.HTTPHeaders(HEADERS)
        for k, v in headers:
            if k.lower() == "set-cookie":
                out.add(k, v)
            else:
                out[k] = v
        out["Date"] = _http_date()
        empty = status in (204, 304)
        out["Content-Length"] = "0" if empty else str(len(body))
        try:
            request.connection.write_headers(
                httputil.ResponseStartLine("", status, httputil.responses.get(status, "Unknown")),
                out,
                None if empty else body,
            )
            request.connection.finish()
        except tornado.iostream.StreamClosedError:
            return  # the client went away before its answer
        elapsed = request.request_time()
        metrics.observe_request("api", "GET", status, elapsed)
        level = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
        level("%d GET %s (%s) %.2fms", status, request.uri, request.remote_ip, 1000.0 * elapsed)


def _problem_head() -> list[tuple[str, str]]:
    return [("Content-Type", "application/problem+json")]


def rule(upstream: str, secret: str, allowed_hosts: set[str] | None, cookie_secret: str) -> Rule:
    """The route :func:`kpi_lib.serve.make_app` puts before every other."""
    return Rule(_AsksForQuery(), QueryRoute(upstream, secret, allowed_hosts, cookie_secret))
