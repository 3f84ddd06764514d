"""The front door's ``/api/``: a signed-in session or a bearer token, rate-limited, then forwarded.

Programs send ``Authorization: Bearer kpi_...`` (``kpi users token add``); browsers their session
cookie. Either way the API back end (uvicorn, :mod:`kpi_lib.api`) gets the user in ``X-KPI-User``,
this start's secret in ``X-KPI-Proxy`` and how they signed in in ``X-KPI-Via``; what a client sent
under those names is dropped. Each token (or session user) has its own rate limit
(``KPI_API_RATE``, default 1200/minute), in memory or in Redis when REDIS_URL is set. Failures
here are problem details too, so a program never has to parse an HTML page.

``GET /api/query`` has its own lighter route (:mod:`.api_query`), which keeps answers as well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from http import HTTPStatus

import aiohttp
import tornado.ioloop
import tornado.iostream
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from .. import auth
from ..auth import tokens
from ..config import settings
from ..errors import AuthError
from .proxy import HOP_HEADERS, ProxyHandler
from .workers import Workers

log = logging.getLogger(__name__)

VIA_HEADER = "X-KPI-Via"
RECHECK_S = 5.0
EVENTS_PATH = "/api/live/events"  # Server-Sent Events: relayed as they come, for as long as they last
AUDIT_HEADER = "X-KPI-Audit"  # the API's audit details of an answer (api_query): never sent on
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)


class ApiLimiter:
    """Requests allowed per token (or per signed-in user) in a sliding window.

    The asyncio flavour of ``limits``: its threaded memory store starts a timer thread every few
    milliseconds and the event loop waited for each one to start (7% of a kept answer's cost)."""

    def __init__(self, rate: str | None = None) -> None:
        url = settings().redis_url
        storage = storage_from_string(f"async+{url}", implementation="redispy") if url else MemoryStorage()
        # a sliding-window counter costs the same at any rate (a moving window keeps every hit)
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.rate = parse(rate or settings().api_rate)

    async def hit(self, key: str) -> bool:
        try:
            return await self.limiter.hit(self.rate, "api", key)
        except Exception:  # noqa: BLE001 - a limiter outage must not take the API down
            return True

    async def retry_after(self, key: str) -> int:
        try:
            stats = await self.limiter.get_window_stats(self.rate, "api", key)
            return max(1, int(stats.reset_time - time.time()))
        except Exception:  # noqa: BLE001
            return 60


LIMITER: ApiLimiter | None = None
_SESSION: aiohttp.ClientSession | None = None


def problem(status: int, detail: str, instance: str) -> bytes:
    """An RFC 9457 problem document, as the API's own errors are."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return json.dumps({**body, "instance": instance, "invalid-params": []}).encode()


def _session() -> aiohttp.ClientSession:
    """Kept-alive connections to the API (aiohttp: a C parser; httpx cost ~4x the CPU per request)."""
    global _SESSION
    if _SESSION is None or _SESSION.closed:
        connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=30)
        _SESSION = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120), auto_decompress=False
        )
    return _SESSION


def limiter() -> ApiLimiter:
    global LIMITER
    if LIMITER is None:
        LIMITER = ApiLimiter()
    return LIMITER


def bearer_user(header: str) -> tuple[auth.User | None, tokens.Bearer | None] | None:
    """None when the request carries no bearer token; else (its user or None, the token or None)."""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        bearer = tokens.check(credential.strip())
    except Exception:  # noqa: BLE001 - the warehouse is down: nobody is signed in right now
        log.exception("token lookup failed")
        return None, None
    if bearer is None:
        return None, None
    return _user(bearer.login), bearer


_users: dict[str, tuple[float, auth.User | None]] = {}


def _user(login: str) -> auth.User | None:
    """users.yml read at most once a second per login (a program may call many times a second)."""
    now = time.monotonic()
    hit = _users.get(login)
    if hit and now - hit[0] < 1.0:
        return hit[1]
    try:
        found: auth.User | None = auth.user(login)
    except AuthError:  # the token's user was removed
        found = None
    if len(_users) > 10_000:
        _users.clear()
    _users[login] = (now, found)
    return found


class ApiProxyHandler(ProxyHandler):
    """``/api/...`` (HTTP and the ``/api/live`` WebSocket) to the API back end."""

    via = "session"

    def get_current_user(self) -> auth.User | None:
        found = bearer_user(self.request.headers.get("Authorization", ""))
        if found is None:
            return super().get_current_user()
        who, bearer = found
        if who is not None:
            self.via = f"token:{bearer.name}"
            self.rate_key = f"token:{bearer.token_id}"
        return who

    def _problem(self, status: int, detail: str, **headers: str) -> None:
        self.set_status(status)
        for k, v in headers.items():
            self.set_header(k, v)
        self.set_header("Content-Type", "application/problem+json")
        self.finish(self._problem_body(status, detail))

    def _problem_body(self, status: int, detail: str) -> bytes:
        return problem(status, detail, self.request.path)

    async def prepare(self):
        """The host check, then each token's (or user's) rate limit; who they are waits for the verb."""
        super().prepare()
        user = None if self._finished else self.current_user
        if user is None:
            return
        key = getattr(self, "rate_key", f"user:{user.login}")
        if not await limiter().hit(key):
            wait = await limiter().retry_after(key)
            auth.audit_later(user.login, "refused", self.request.path, reason="api rate limit", via=self.via)
            self._problem(
                429,
                f"Too many requests for this token; wait {wait} s (the limit is KPI_API_RATE).",
                **{"Retry-After": str(wait)},
            )

    def require_user(self) -> auth.User | None:
        user = self.current_user
        if user is None:
            bearer = self.request.headers.get("Authorization", "").lower().startswith("bearer ")
            self._problem(
                401,
                "That token is unknown or revoked; make a new one with `kpi users token add`."
                if bearer
                else "Sign in first: send `Authorization: Bearer <token>` (`kpi users token add LOGIN --name NAME`).",
                **{"WWW-Authenticate": "Bearer"},
            )
        return user

    def check_xsrf_cookie(self) -> None:
        """A bearer token is not sent by browsers on their own; cookie callers pass the origin check."""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._copy_head(status, headers)
        if status not in (204, 304):
            self.write(body)
        self.finish()

    @staticmethod
    def _not_answering(exc: Exception) -> str:
        return f"The API is not answering ({exc}). Is `kpi serve` still starting?"

    def _upstream_headers(self) -> dict[str, str]:
        headers = {
            k: v
            for k, v in super()._upstream_headers().items()
            if k.lower() not in ("authorization", VIA_HEADER.lower())
        }
        headers[VIA_HEADER] = self.via
        return headers

    async def _forward(self) -> None:
        """HTTP to the API over kept-alive connections (tornado's client opens one per request)."""
        method = self.request.method
        extra = {"timeout": STREAM_TIMEOUT} if self.request.path == EVENTS_PATH else {}
        try:
            async with _session().request(
                method,
                self.upstream + self.request.uri,
                headers=self._upstream_headers(),
                data=self.request.body if method in ("POST", "PUT", "PATCH") else None,
                allow_redirects=False,
                **extra,
            ) as resp:
                if resp.content_type == "text/event-stream":
                    self._copy_head(resp.status, resp.headers.items())
                    await self._relay(resp)
                    return
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if not self._headers_written:
                self._problem(502, self._not_answering(exc))
            return
        self._send(resp.status, list(resp.headers.items()), body)

    def _copy_head(self, status: int, headers) -> None:
        self.set_status(status)
        for k, v in headers:
            lk = k.lower()
            if lk in HOP_HEADERS or lk in ("server", "date", AUDIT_HEADER.lower()):
                continue
            (self.add_header if lk == "set-cookie" else self.set_header)(k, v)

    async def _relay(self, resp: aiohttp.ClientResponse) -> None:
        """Server-Sent Events on as they come, while the caller may still read (as /api/live)."""
        try:
            await self.flush()
            while True:
                try:
                    chunk = await asyncio.wait_for(resp.content.readany(), RECHECK_S)
                except TimeoutError:
                    chunk = b""
                if not chunk and resp.content.at_eof():
                    break
                if not self._allowed_now():
                    break  # revoked token, ended session or removed user: the stream ends
                if chunk:
                    self.write(chunk)
                    await self.flush()
        except tornado.iostream.StreamClosedError:
            return  # the client went away; leaving the block closes the upstream stream too
        self.finish()

    # --- /api/live: a socket lives only as long as what opened it --------------------------------

    async def open(self, *args, **kwargs) -> None:
        await super().open(*args, **kwargs)
        # a revoked token, ended session or removed user closes the socket within RECHECK_S
        self._recheck = tornado.ioloop.PeriodicCallback(self._still_allowed, RECHECK_S * 1000)
        self._recheck.start()

    def _allowed_now(self) -> bool:
        # token and session lookups are re-read from the warehouse once their 1 s memo is older
        found = bearer_user(self.request.headers.get("Authorization", ""))
        who = super().get_current_user() if found is None else found[0]
        return who is not None

    def _still_allowed(self) -> None:
        if not self._allowed_now():
            self.close(1008, "signed out, or the token was revoked")

    def on_close(self) -> None:
        recheck = getattr(self, "_recheck", None)
        if recheck is not None:
            recheck.stop()
        super().on_close()

    def write_error(self, status_code: int, **kwargs) -> None:
        self._problem(status_code, self._reason)


def handlers(upstream: str, secret: str) -> list[tuple]:
    """The routes kpi_lib.serve mounts for the API."""
    return [(r"/api/.*", ApiProxyHandler, {"upstream": Workers([upstream]), "secret": secret})]
