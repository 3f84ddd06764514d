"""Forwarding to the dashboard servers (Panel under ``/panel/``, Voila under ``/voila/``).

Only signed-in users pass. Each forwarded request carries the user (``X-KPI-User``) and this
start's secret (``X-KPI-Proxy``), which the back ends require; whatever the client sent under
those names is dropped, and so are our own cookies (no page script can read the session).

Websockets get a closer look, because a page's script is not the only thing that can open one:
- a Panel session's token must belong to the user who opens it (a token is a bearer credential);
- a Voila kernel channel must use the framing a real page uses (``v1.kernel.websocket.jupyter.org``)
  and every message must be a well-formed frame of an allowed type; anything else is dropped and
  the socket closed (Voila misreads other framings and grows without bound);
- each user may hold at most ``KPI_KERNELS_PER_USER`` kernels (open dashboards) at once.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlparse

import tornado.httpclient
import tornado.iostream
import tornado.web
import tornado.websocket
from tornado.httputil import HTTPServerRequest

from .. import auth
from ..config import settings
from . import compression, page_gate, page_shell, security
from .pages import Base, static_url
from .static_copies import COPIES
from .workers import Workers

log = logging.getLogger(__name__)

VOILA_BASE = "/voila/"
KERNEL_PROTOCOL = "v1.kernel.websocket.jupyter.org"
KERNEL_CHANNELS = re.compile(r"^/voila/api/kernels/([0-9a-f-]{36})/channels$")
VOILA_RENDER = re.compile(r"^/voila/voila/render/")
DASHBOARD_PAGE = re.compile(r"^/panel/[A-Za-z0-9_-]+$|^/voila/voila/render/[^/]+\.ipynb$")
PANEL_PAGE = re.compile(r"^/panel/[A-Za-z0-9_-]+$")  # its GET builds a session (see web/page_gate.py)
PANEL_SOCKET = re.compile(r"^/panel/[A-Za-z0-9_-]+/ws$")
KERNEL_ID_IN_PAGE = re.compile(rb'"kernelId"\s*:\s*"([0-9a-f-]{36})"')
# what a dashboard page sends a kernel (Voila allows the same list; execute_request is not in it)
ALLOWED_KERNEL_MESSAGES = {
    "comm_open",
    "comm_close",
    "comm_msg",
    "comm_info_request",
    "kernel_info_request",
    "shutdown_request",
}
KERNEL_CHANNEL_NAMES = {"shell", "control", "stdin", "iopub"}
MAX_CLIENT_MESSAGE = 16 * 1024 * 1024
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
DROPPED_HEADERS = {h.lower() for h in (auth.HEADER, auth.PROXY_HEADER, "X-Forwarded-For", "X-Real-Ip")}
OUR_COOKIES = {auth.COOKIE, "kpi_xsrf"}
# posts the page's own load timing to /api/rum (versioned URL: kept by the browser, see pages.static_url)
RUM_TAG = f'<script src="{static_url("rum.js")}" defer></script>'.encode()
# a Panel page reloads itself onto a live worker when its worker goes away (static/recover.js)
RECOVER_TAG = f'<script src="{static_url("recover.js")}"></script>'.encode()
WORKER_GONE = 4001  # the websocket close code that tells a page its worker went away
HEAD_TAG = re.compile(rb"<head[^>]*>", re.IGNORECASE)


def valid_kernel_frame(message: bytes | str) -> bool:
    """Is this a well-formed v1 kernel-websocket frame of an allowed message type?

    Layout: an 8-byte little-endian count n, n offsets (8 bytes each), then the channel name and
    the header, parent header, metadata and content parts (JSON), then any binary buffers."""
    if not isinstance(message, bytes) or len(message) < 8:
        return False
    n = int.from_bytes(message[:8], "little")
    if not 6 <= n <= 64 or len(message) < 8 * (n + 1):
        return False
    offsets = [int.from_bytes(message[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
    if offsets[0] != 8 * (n + 1) or any(b < a for a, b in zip(offsets, offsets[1:], strict=False)):
        return False
    if offsets[-1] != len(message):
        return False
    try:
        channel = message[offsets[0] : offsets[1]].decode("utf-8")
        header = json.loads(message[offsets[1] : offsets[2]])
        for i in (2, 3, 4):  # parent header, metadata, content: JSON objects
            if not isinstance(json.loads(message[offsets[i] : offsets[i + 1]]), dict):
                return False
    except (UnicodeDecodeError, ValueError):
        return False
    return (
        channel in KERNEL_CHANNEL_NAMES
        and isinstance(header, dict)
        and header.get("msg_type") in ALLOWED_KERNEL_MESSAGES
    )


@dataclass
class _Kernel:
    login: str
    rendered_at: float
    sockets: int = 0
    last_closed: float | None = None


@dataclass
class KernelLedger:
    """Which user holds which Voila kernel, to cap kernels per user and keep users off each other's.

    A kernel counts while a page is connected to it, for a short grace after it disconnects (a
    reload), and, if no page ever connected, until Voila would have culled it."""

    grace_s: float = 10.0
    unclaimed_s: float = 150.0
    kernels: dict[str, _Kernel] = field(default_factory=dict)
    rendering: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _alive(self, k: _Kernel, now: float) -> bool:
        if k.sockets > 0:
            return True
        if k.last_closed is not None:
            return now - k.last_closed < self.grace_s
        return now - k.rendered_at < self.unclaimed_s

    def held(self, login: str) -> int:
        now = time.monotonic()
        with self.lock:
            for kid in [kid for kid, k in self.kernels.items() if not self._alive(k, now)]:
                del self.kernels[kid]
            return sum(1 for k in self.kernels.values() if k.login == login) + self.rendering.get(login, 0)

    def begin_render(self, login: str, cap: int) -> bool:
        if self.held(login) >= cap:
            return False
        with self.lock:
            self.rendering[login] = self.rendering.get(login, 0) + 1
        return True

    def end_render(self, login: str, kernel_id: str | None) -> None:
        with self.lock:
            self.rendering[login] = max(0, self.rendering.get(login, 0) - 1)
            if kernel_id:
                self.kernels[kernel_id] = _Kernel(login, time.monotonic())

    def owns(self, login: str, kernel_id: str) -> bool:
        """Only the user a kernel was started for may open its channels."""
        with self.lock:
            k = self.kernels.get(kernel_id)
            return k is not None and k.login == login

    def connect(self, kernel_id: str) -> None:
        with self.lock:
            k = self.kernels.get(kernel_id)
            if k is not None:
                k.sockets += 1

    def disconnect(self, kernel_id: str) -> None:
        with self.lock:
            k = self.kernels.get(kernel_id)
            if k is not None:
                k.sockets = max(0, k.sockets - 1)
                k.last_closed = time.monotonic()


LEDGER = KernelLedger()


def _strip_our_cookies(header: str) -> str:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001 - an unparsable Cookie header is dropped whole
        return ""
    return "; ".join(f"{k}={m.coded_value}" for k, m in jar.items() if k not in OUR_COOKIES)


def forward_headers(request: HTTPServerRequest, login: str, secret: str) -> dict[str, str]:
    """What a back end is sent: the client's headers without hop-by-hop ones, our cookies or any
    identity it claimed; then the user, this start's secret and where the request came from."""
    headers = {}
    for k, v in request.headers.get_all():
        lk = k.lower()
        if lk in HOP_HEADERS or lk in DROPPED_HEADERS or lk.startswith("sec-websocket"):
            continue
        if lk == "cookie":
            v = _strip_our_cookies(v)
            if not v:
                continue
        headers[k] = v
    headers[auth.HEADER] = login
    headers[auth.PROXY_HEADER] = secret
    headers["X-Forwarded-For"] = security.client_ip(request.remote_ip, request.headers.get("X-Forwarded-For"))
    headers["X-Forwarded-Proto"] = request.protocol
    headers["X-Forwarded-Host"] = request.host
    return headers


class ProxyHandler(tornado.websocket.WebSocketHandler, Base):
    """Forwards HTTP and websockets under a prefix to a local upstream, after the login check."""

    def initialize(self, upstream: str | Workers, secret: str) -> None:
        # several worker processes: each sign-in session sticks to one of them (web/workers.py)
        self.workers = upstream if isinstance(upstream, Workers) else Workers([upstream])
        self.upstream = self.workers.urls[0]
        self.secret = secret
        self.upstream_ws = None
        self.pending: list = []
        self.kernel_id: str | None = None  # a kernel's channels, counted in the ledger while open
        self.kernel_frames: str | None = None  # a kernel's channels: every frame is checked
        self.offer: list[str] | None = None
        self.early: str | None = None  # a page's one-time key instead of its token (web/page_shell.py)
        # a Panel page's websocket while the worker answers its handshake, then its document request
        # (web/page_gate.py): the Bokeh message from upstream that ends that wait
        self.gate_ticket: int | None = None
        self.gate_until: str | None = None
        self.gate_pulled = False

    def set_default_headers(self) -> None:
        for k, v in security.SECURITY_HEADERS.items():
            self.set_header(k, v)
        self.set_header("Content-Security-Policy", security.dashboard_csp(self.request.host))

    def prepare(self):
        self.upstream = self.workers.pick(self.session_token() or self.request.remote_ip)
        if len(self.workers.urls) > 1:  # which worker (its number only): operators and tests see it
            self.set_header("X-KPI-Worker", str(self.workers.index(self.upstream)))
        return super().prepare()

    def check_xsrf_cookie(self) -> None:
        """Panel and Voila check their own (Voila's `_xsrf`); ours protects the front door's forms."""

    def _upstream_headers(self) -> dict[str, str]:
        return forward_headers(self.request, self.current_user.login, self.secret)

    async def get(self, *args, **kwargs):
        if self.require_user() is None:
            return
        if self.request.path.startswith("/voila/voila/query/"):
            # the channel Voila uses to hand a request to a pre-heated kernel: kernels only
            raise tornado.web.HTTPError(404)
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            self.offer = self._upstream_protocols()
            return await super().get(*args, **kwargs)
        if COPIES.applies(self.request.method, self.request.path):
            copy = COPIES.get(self.request.uri)
            if copy is not None:  # no turn in a Panel worker's queue (see web/static_copies.py)
                self._send_copy(copy)
                return
        await self._forward()

    def _send_copy(self, copy) -> None:
        packed = copy.gzipped if "gzip" in self.request.headers.get("Accept-Encoding", "").lower() else None
        for k, v in copy.headers:
            if k.lower() == "etag" and packed is not None and not v.startswith("W/"):
                v = "W/" + v  # as _forward: the gzipped bytes are not the upstream's
            self.set_header(k, v)
        if copy.gzipped is not None:
            self.add_header("Vary", "Accept-Encoding")
        if copy.not_modified(self.request.headers.get("If-None-Match")):
            self.set_status(304)
            self.finish()
            return
        if packed is not None:
            self.set_header("Content-Encoding", "gzip")
        self.write(packed if packed is not None else copy.body)
        self.finish()

    async def post(self, *args, **kwargs):
        if self.require_user() is not None:
            self._check_origin_header()
            await self._forward()

    put = patch = delete = post

    async def options(self, *args, **kwargs):
        if self.require_user() is not None:
            await self._forward()

    async def head(self, *args, **kwargs):
        if self.require_user() is not None:
            await self._forward()

    def _check_origin_header(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin and urlparse(origin).netloc.lower() != self.request.host.lower():
            raise tornado.web.HTTPError(403, "cross-site request refused")

    async def _forward(self) -> None:
        user = self.current_user
        if self.request.method == "GET" and PANEL_PAGE.match(self.request.path):
            await self._forward_page()
            return
        rendering = self.request.method == "GET" and VOILA_RENDER.match(self.request.path) is not None
        if rendering and not LEDGER.begin_render(user.login, settings().kernel_cap):
            self.set_status(429)
            self.page(
                "error.html",
                title="Too many dashboards open",
                heading="Too many dashboards open",
                message=(
                    f"You have {settings().kernel_cap} notebook dashboards open, the most one person may. "
                    "Close one of their tabs and reload this page (closed tabs free up within seconds; "
                    "pages that never finished loading within two minutes)."
                ),
                link=self.request.uri,
                link_text="Reload",
            )
            return
        if self.request.path.startswith(VOILA_BASE) and not self.get_cookie("_xsrf"):
            # Voila's page never sets one, so its shutdown beacon on closing the tab was refused
            # (403) and the kernel lingered until culled; any token works, the server compares
            # cookie and form value
            self.set_cookie("_xsrf", secrets.token_hex(16), path=VOILA_BASE, samesite="Strict")
        kernel_id = None
        try:
            resp = await self._fetch_any()
            if rendering and resp.body and resp.headers.get("Content-Encoding") is None:
                m = KERNEL_ID_IN_PAGE.search(resp.body)
                kernel_id = m.group(1).decode() if m else None
        finally:
            if rendering:
                LEDGER.end_render(user.login, kernel_id)
        self._respond(resp, self._dressed(resp))

    async def _forward_page(self) -> None:
        """A Panel page (web/page_shell.py): its shell at once when one is known, then the rest once
        the worker has built the session; otherwise the whole page as the worker wrote it, which
        teaches the shell."""
        user = self.current_user
        variant = self.request.path + "?theme=" + self.get_argument("theme", "")  # what its shell depends on
        shell = page_shell.SHELLS.get(variant)
        early = page_shell.EARLY.expect(user.login)
        out = compression.Stream(self.request.headers.get("Accept-Encoding", ""))
        if shell is not None:
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Accel-Buffering", "no")  # a proxy in front passes the shell on at once
            if out.gzip:
                self.set_header("Content-Encoding", "gzip")
                self.add_header("Vary", "Accept-Encoding")
            self.write(out.part(page_shell.with_key(shell, early)))
            try:
                await self.flush()  # the browser runs the page's scripts while the worker builds it
            except tornado.iostream.StreamClosedError:
                page_shell.EARLY.failed(early)
                return  # the browser went away
        resp = None
        try:
            resp = await self._fetch_any()
        except Exception:  # noqa: BLE001 - with the shell sent, the page says so (below)
            if shell is None:
                page_shell.EARLY.failed(early)
                raise
            log.exception("the page %s failed after its shell was sent", self.request.path)
        body = self._dressed(resp) if resp is not None else b""
        parts = page_shell.split(body) if resp is not None and resp.code == 200 else None
        if parts is None:
            page_shell.EARLY.failed(early)
            # the browser's next try gets what the worker answered, as it is
            page_shell.SHELLS.forget(variant)
        else:
            head, rest = parts
            session = page_shell.token(rest)
            if session is not None and _token_user(session) == user.login:
                page_shell.EARLY.built(early, session, self.upstream)
            else:
                page_shell.EARLY.failed(early)
            page_shell.SHELLS.learn(variant, head)
        extra = page_shell.missing(shell, parts[0]) if shell is not None and parts is not None else None
        if shell is None:  # nothing sent yet: the page as the worker wrote it (with this page's key)
            self._respond(resp, page_shell.with_key(parts[0], early) + parts[1] if parts else body)
        elif extra is not None:
            self.write(out.part(extra + parts[1], last=True))
            self.finish()
        else:  # a page that does not start as the shell sent, or none: the browser asks again
            if resp is None or resp.code != 200:
                log.warning(
                    "the page %s answered %s after its shell was sent", self.request.path, resp and resp.code
                )
            self.write(out.part(page_shell.RETRY, last=True))
            self.finish()

    async def _fetch_any(self) -> tornado.httpclient.HTTPResponse:
        """The upstream's answer; a worker that refuses the connection is given up for another."""
        try:
            return await self._fetch()
        except ConnectionRefusedError:
            if len(self.workers.urls) == 1:
                raise
            # that worker is gone (the request never reached it): its sessions move to another
            self.workers.failed(self.upstream)
            self.upstream = self.workers.pick(self.session_token() or self.request.remote_ip)
            if not self._headers_written:
                self.set_header("X-KPI-Worker", str(self.workers.index(self.upstream)))
            return await self._fetch()

    def _dressed(self, resp: tornado.httpclient.HTTPResponse) -> bytes:
        """A dashboard page's body with the real-user timing and recovery scripts (its view audited)."""
        body = resp.body
        if self.request.method == "GET" and resp.code == 200 and DASHBOARD_PAGE.match(self.request.path):
            user = self.current_user
            auth.audit(user.login, "view", self.request.path, query=self.request.query, ip=self.client_ip)
            if body and resp.headers.get("Content-Encoding") is None and b"</body>" in body:
                body = body.replace(b"</body>", RUM_TAG + b"</body>", 1)  # real-user page timings
            head = HEAD_TAG.search(body) if body and self.request.path.startswith("/panel/") else None
            if head and resp.headers.get("Content-Encoding") is None:
                body = body[: head.end()] + RECOVER_TAG + body[head.end() :]
        return body

    def _respond(self, resp: tornado.httpclient.HTTPResponse, body: bytes) -> None:
        """Send the upstream's answer with ``body``: its status and headers, gzipped where it helps."""
        if resp.code == 599:
            self.set_status(502)
            self.finish(
                f"The dashboard server is not answering ({resp.error}). Is `kpi serve` still starting?"
            )
            return
        if (
            resp.code == 200
            and body
            and resp.headers.get("Content-Encoding") is None
            and COPIES.applies(self.request.method, self.request.path)
        ):
            self._send_copy(COPIES.keep(self.request.uri, list(resp.headers.get_all()), body))
            return
        packed = None
        if body and resp.code == 200 and resp.headers.get("Content-Encoding") is None:
            packed = compression.gzipped(
                body,
                resp.headers.get("Content-Type", ""),
                self.request.headers.get("Accept-Encoding", ""),
                static="/static/" in self.request.path,
            )
        self.set_status(resp.code, resp.reason)
        for k, v in resp.headers.get_all():
            lk = k.lower()
            if lk in HOP_HEADERS or lk in ("server", "date", "content-security-policy", "x-frame-options"):
                continue
            if lk == "set-cookie":
                self.add_header(k, v)
            elif lk == "etag" and packed is not None and not v.startswith("W/"):
                self.set_header(k, "W/" + v)  # as nginx does: the gzipped bytes are not the upstream's
            else:
                self.set_header(k, v)
        if packed is not None:
            body = packed
            self.set_header("Content-Encoding", "gzip")
            self.add_header("Vary", "Accept-Encoding")
        if body and resp.code not in (204, 304):
            self.write(body)
        self.finish()

    async def _fetch(self) -> tornado.httpclient.HTTPResponse:
        if self.request.method == "GET" and PANEL_PAGE.match(self.request.path):
            async with page_gate.gate(self.upstream).build():  # one session build at a time
                return await self._fetch_now()
        return await self._fetch_now()

    async def _fetch_now(self) -> tornado.httpclient.HTTPResponse:
        req = tornado.httpclient.HTTPRequest(
            self.upstream + self.request.uri,
            method=self.request.method,
            headers=self._upstream_headers(),
            body=self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None,
            follow_redirects=False,
            decompress_response=False,
            request_timeout=120,
            allow_nonstandard_methods=True,
        )
        return await tornado.httpclient.AsyncHTTPClient().fetch(req, raise_error=False)

    # --- websockets -----------------------------------------------------------------------------

    def get_compression_options(self):
        return None

    @property
    def max_message_size(self) -> int:  # what a client may send us
        return MAX_CLIENT_MESSAGE

    def check_origin(self, origin: str) -> bool:
        return urlparse(origin).netloc.lower() == self.request.host.lower()

    def _client_protocols(self) -> list[str]:
        return [
            p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        if KERNEL_CHANNELS.match(self.request.path):
            return KERNEL_PROTOCOL if KERNEL_PROTOCOL in subprotocols else None
        return subprotocols[0] if subprotocols else None

    def _upstream_protocols(self) -> list[str] | None:
        """What to offer upstream, or raise 403 when the client's offer is not one we forward."""
        protocols = self._client_protocols()
        user = self.current_user
        m = KERNEL_CHANNELS.match(self.request.path)
        if m:
            if KERNEL_PROTOCOL not in protocols:
                raise tornado.web.HTTPError(403, "kernel channels need the v1 kernel websocket protocol")
            if not LEDGER.owns(user.login, m.group(1)):
                raise tornado.web.HTTPError(403, "not your dashboard's kernel")
            self.kernel_frames = m.group(1)
            return [KERNEL_PROTOCOL]
        if self.request.path.startswith("/panel/"):
            if len(protocols) != 2 or protocols[0] != "bokeh":
                raise tornado.web.HTTPError(403, "a dashboard session needs its token")
            if protocols[1].startswith(page_shell.EARLY_PROTOCOL):  # a page's key: its token comes later
                self.early = protocols[1][len(page_shell.EARLY_PROTOCOL) :]
                if not page_shell.EARLY.knows(self.early, user.login):
                    raise tornado.web.HTTPError(403, "this page's key is unknown, used or someone else's")
                return None  # what to offer upstream is known once the page is built (open)
            if _token_user(protocols[1]) != user.login:
                # a session token is a credential: it only works for the user it was made for
                auth.audit(user.login, "refused", self.request.path, reason="session token of another user")
                raise tornado.web.HTTPError(403, "this session belongs to someone else")
        return protocols or None

    async def open(self, *args, **kwargs) -> None:
        if self.kernel_frames is not None:  # counted once the socket is really open
            self.kernel_id = self.kernel_frames
            LEDGER.connect(self.kernel_id)
        if self.early is not None:  # a page's socket opened before its session was built
            session = await page_shell.EARLY.claim(self.early, self.current_user.login)
            if session is None:  # the page failed: its own script opens a socket if it runs at all
                self.close(1011, "the page's session was not built")
                return
            self.offer = ["bokeh", session[0]]
            self.upstream = session[1]
        url = "ws" + self.upstream[4:] + self.request.uri
        req = tornado.httpclient.HTTPRequest(url, headers=self._upstream_headers(), request_timeout=30)
        if PANEL_SOCKET.match(self.request.path):  # the next page build waits for the handshake
            self._gate_wait("ACK")
        try:
            self.upstream_ws = await tornado.websocket.websocket_connect(
                req,
                on_message_callback=self._from_upstream,
                subprotocols=self.offer,
                max_message_size=256 * 1024 * 1024,
            )
        except Exception as exc:  # noqa: BLE001
            self._gate_opened()
            log.warning("websocket to %s failed: %s", url, exc)
            if isinstance(exc, OSError):  # refused or cut off: a reload goes to a live worker
                self.workers.failed(self.upstream)
                self.close(WORKER_GONE, "dashboard worker gone")
                return
            self.close(1011, "upstream unavailable")
            return
        for msg in self.pending:
            await self.upstream_ws.write_message(msg, binary=isinstance(msg, bytes))
        self.pending = []

    async def on_message(self, message) -> None:
        if self.kernel_frames is not None and not valid_kernel_frame(message):
            log.warning("dropped a malformed kernel message from %s; closing", self.current_user.login)
            self.close(1008, "malformed kernel message")
            return
        if (
            self.gate_until is not None
            and not self.gate_pulled
            and isinstance(message, str)
            and '"PULL-DOC-REQ"' in message[:200]  # a Bokeh message's header: the page asks for its document
        ):
            self.gate_pulled = True
            self._gate_opened()
            self._gate_wait("PULL-DOC-REPLY")  # the next page build waits for this document
        if self.upstream_ws is None:
            self.pending.append(message)
        else:
            await self.upstream_ws.write_message(message, binary=isinstance(message, bytes))

    def _pull_document(self) -> None:
        """A page's early socket asks for its document here, the moment the session answers: the
        page's own request would wait for the browser's main thread, busy running the page's
        scripts then (templates/early_session.js knows, and does not ask)."""
        self.gate_pulled = True
        self._gate_opened()
        self._gate_wait("PULL-DOC-REPLY")  # the next page build waits for this document
        frames = [page_shell.PULL_REQUEST, "{}", "{}"]  # header, metadata, content
        if self.upstream_ws is None:  # the ACK came before the connection was handed to open()
            self.pending[:0] = frames
        else:
            for frame in frames:
                self.upstream_ws.write_message(frame)

    def _gate_wait(self, until: str) -> None:
        self.gate_ticket = page_gate.gate(self.upstream).opening()
        self.gate_until = until

    def _gate_opened(self) -> None:
        if self.gate_ticket is not None:
            page_gate.gate(self.upstream).opened(self.gate_ticket)
            self.gate_ticket = None

    def _from_upstream(self, message) -> None:
        if (
            self.gate_ticket is not None
            and isinstance(message, str)
            and f'"{self.gate_until}"' in message[:200]  # a Bokeh message's header
        ):
            self._gate_opened()
        if (
            self.early is not None
            and not self.gate_pulled
            and isinstance(message, str)
            and '"ACK"' in message[:200]
        ):
            self._pull_document()
        if message is None:
            self._gate_opened()
            up = self.upstream_ws
            if up is not None and up.close_code is None:
                # the connection dropped without a closing handshake: the worker is gone. Its
                # sessions move now, and the page is told so (static/recover.js reloads onto a live one)
                self.workers.failed(self.upstream)
                self.close(WORKER_GONE, "dashboard worker gone")
            else:
                self.close(
                    up.close_code if up is not None else None, up.close_reason if up is not None else None
                )
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass

    def on_close(self) -> None:
        self._gate_opened()
        if self.upstream_ws is not None:
            self.upstream_ws.close()
        if self.kernel_id is not None:
            LEDGER.disconnect(self.kernel_id)
            self.kernel_id = None


def _token_user(token: str) -> str | None:
    """The user inside a Panel session token (its payload's headers); None when unreadable."""
    try:
        from bokeh.util.token import get_token_payload

        payload = get_token_payload(token)
    except Exception:  # noqa: BLE001
        return None
    headers = payload.get("headers") or {}
    return next((v for k, v in headers.items() if k.lower() == auth.HEADER.lower()), None)
