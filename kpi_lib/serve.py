"""`kpi serve`: one front door (login, landing page, inbox) in front of Panel and Voila.

The browser talks to one port. This process checks the session cookie and forwards requests and
websockets to the Panel server (``/panel/``) and the Voila server (``/voila/``), which listen on
127.0.0.1 only, adding the signed-in user in the ``X-KPI-User`` header (client-supplied copies
are dropped). It also runs the materialized-view refresher and supervises its children: Ctrl-C
or SIGTERM stops every child process group, Panel's and Voila's workers included.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import tornado.httpclient
import tornado.web
import tornado.websocket

from . import auth
from .config import PROJECT_ROOT, settings
from .errors import KpiError
from .ui import ask_http

log = logging.getLogger(__name__)

DASHBOARDS = PROJECT_ROOT / "dashboards"
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
PAGE_CSS = """
body {font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; background: #f6f8fa; color: #15202b;}
header {background: #1f2d3d; color: #fff; padding: 14px 24px; display: flex; justify-content: space-between; align-items: center;}
header a {color: #cfe2ff; text-decoration: none; margin-left: 16px;}
main {max-width: 980px; margin: 24px auto; padding: 0 16px;}
.cards {display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 14px;}
.card {background: #fff; border: 1px solid #e3e6ea; border-radius: 10px; padding: 16px; text-decoration: none; color: inherit;}
.card:hover {border-color: #4c78a8;} .card h3 {margin: 0 0 6px 0; font-size: 17px;} .card p {margin: 0; color: #5f6b7a; font-size: 14px;}
.tag {font-size: 11px; background: #eef2f7; border-radius: 8px; padding: 1px 7px; margin-left: 6px; color: #4c5a69;}
form.login {max-width: 340px; margin: 80px auto; background: #fff; border: 1px solid #e3e6ea; border-radius: 10px; padding: 24px;}
form.login input {width: 100%; box-sizing: border-box; padding: 8px; margin: 6px 0 14px; border: 1px solid #c9d1d9; border-radius: 6px;}
form.login button {width: 100%; padding: 9px; background: #4c78a8; color: #fff; border: 0; border-radius: 6px; font-size: 15px;}
.error {color: #cf222e; margin-bottom: 10px;}
table {border-collapse: collapse; width: 100%; background: #fff;} td, th {border-bottom: 1px solid #e3e6ea; padding: 8px; text-align: left; font-size: 14px;}
"""


def _page(title: str, body: str, user: auth.User | None = None) -> str:
    nav = ""
    if user:
        nav = (
            f'<nav><a href="/">Dashboards</a><a href="/inbox">Inbox</a>'
            f'<a href="/logout">Sign out {html.escape(user.name)}</a></nav>'
        )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_CSS}</style></head><body><header><strong>KPI Suite</strong>{nav}</header>"
        f"<main>{body}</main></body></html>"
    )


@dataclass
class Dashboard:
    name: str
    title: str
    kind: str  # panel | voila
    description: str

    @property
    def url(self) -> str:
        return f"/panel/{self.name}" if self.kind == "panel" else f"/voila/voila/render/{self.name}.ipynb"


def discover(folder: Path = DASHBOARDS) -> list[Dashboard]:
    """Every Panel app (*.py) and Voila notebook (*.ipynb) in dashboards/, with its title."""
    out = []
    for path in sorted(folder.glob("*.py")):
        doc = path.read_text().split('"""')
        lines = doc[1].strip().splitlines() if len(doc) > 2 else [path.stem]
        title, _, desc = lines[0].partition(":")
        out.append(Dashboard(path.stem, title.strip(), "panel", desc.strip()))
    for path in sorted(folder.glob("*.ipynb")):
        title, desc = path.stem.replace("_", " ").capitalize(), ""
        try:
            cells = json.loads(path.read_text())["cells"]
            first = "".join(cells[0]["source"]).strip().splitlines()
            title = first[0].lstrip("# ").strip()
            desc = next((ln.strip() for ln in first[1:] if ln.strip()), "")
            desc = re.sub(r"[*_`]", "", desc).split(". ")[0].rstrip(".") + "."  # the first sentence, plain
        except (KeyError, IndexError, ValueError):
            pass
        out.append(Dashboard(path.stem, title, "voila", desc))
    return out


# --- handlers -----------------------------------------------------------------------------------


class Base(tornado.web.RequestHandler):
    def get_current_user(self) -> auth.User | None:
        token = self.get_cookie(auth.COOKIE)
        login = auth.read_session(token)
        if login is None:
            return None
        try:
            return auth.user(login)
        except Exception:  # noqa: BLE001 - removed user: treat as signed out
            return None

    def require_user(self) -> auth.User | None:
        user = self.current_user
        if user is None:
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/login?" + urlencode({"next": self.request.uri}))
            else:
                self.set_status(401)
                self.finish("sign in first")
        return user


class LoginHandler(Base):
    def get(self) -> None:
        self._form()

    def _form(self, error: str = "") -> None:
        nxt = html.escape(self.get_argument("next", "/"))
        err = f"<div class='error'>{html.escape(error)}</div>" if error else ""
        self.finish(
            _page(
                "Sign in",
                f"""
            <form class='login' method='post' action='/login'>
              <h2>Sign in</h2>{err}
              <label>User<input name='user' autocomplete='username' autofocus></label>
              <label>Password<input name='password' type='password' autocomplete='current-password'></label>
              <input type='hidden' name='next' value='{nxt}'>
              <button type='submit'>Sign in</button>
            </form>""",
            )
        )

    def post(self) -> None:
        login = self.get_argument("user", "").strip()
        found = auth.verify(login, self.get_argument("password", ""))
        if found is None:
            auth.audit(login or "?", "sign-in failed", "kpi serve", ip=self.request.remote_ip)
            self.set_status(401)
            self._form("Unknown user or wrong password.")
            return
        auth.audit(found.login, "sign-in", "kpi serve", ip=self.request.remote_ip)
        self.set_cookie(
            auth.COOKIE,
            auth.sign_session(found.login),
            httponly=True,
            samesite="Lax",
            secure=settings().public_url.startswith("https"),
            expires_days=auth.SESSION_DAYS,
        )
        nxt = self.get_argument("next", "/")
        self.redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")


class LogoutHandler(Base):
    def get(self) -> None:
        self.clear_cookie(auth.COOKIE)
        self.redirect("/login")


class LandingHandler(Base):
    def get(self) -> None:
        user = self.require_user()
        if user is None:
            return
        cards = "".join(
            f"<a class='card' href='{d.url}'><h3>{html.escape(d.title)}<span class='tag'>{d.kind}</span></h3>"
            f"<p>{html.escape(d.description)}</p></a>"
            for d in discover()
        )
        cards += (
            "<a class='card' href='/inbox'><h3>Inbox<span class='tag'>mail</span></h3>"
            "<p>Alert e-mails received by the demo mail server.</p></a>"
        )
        ask = ask_http.box_html(self.xsrf_token.decode())
        self.finish(_page("KPI Suite", f"{ask}<h2>Dashboards</h2><div class='cards'>{cards}</div>", user))


class AskHandler(Base, ask_http.AskHandler):
    """The landing page's Ask box (kpi_lib.ui.ask_http), for the signed-in user."""


class SuggestHandler(Base, ask_http.SuggestHandler):
    pass


class InboxHandler(Base):
    """The demo mail server's inbox, so a user can see the alert e-mails arrive."""

    def get(self, message_id: str | None = None, attachment: str | None = None) -> None:
        user = self.require_user()
        if user is None:
            return
        from . import mail

        if message_id and attachment:
            try:
                content_type, data = mail.attachment(message_id, attachment)
            except (KpiError, FileNotFoundError, ValueError) as exc:
                raise tornado.web.HTTPError(404) from exc
            self.set_header("Content-Type", content_type)
            self.set_header("Content-Disposition", f'attachment; filename="{attachment}"')
            self.finish(data)
            return
        if message_id:
            try:
                msg = mail.read_message(message_id)
            except (KpiError, FileNotFoundError, ValueError) as exc:
                raise tornado.web.HTTPError(404) from exc
            files = "".join(
                f"<a href='/inbox/{quote(msg.id)}/{quote(a.filename)}'>{html.escape(a.filename)}</a> "
                for a in msg.attachments
            )
            body = (
                f"<p><a href='/inbox'>← Inbox</a></p><h2>{html.escape(msg.subject)}</h2>"
                f"<p>From {html.escape(msg.sender)} to {html.escape(', '.join(msg.to))} · {msg.date:%Y-%m-%d %H:%M:%S}"
                f"{' · attachments: ' + files if files else ''}</p>"
                f"<iframe title='message' sandbox srcdoc=\"{html.escape(msg.html or '')}\" "
                f"style='width:100%;height:75vh;border:1px solid #e3e6ea;background:#fff'></iframe>"
            )
            self.finish(_page(msg.subject, body, user))
            return
        rows = "".join(
            f"<tr><td><a href='/inbox/{quote(m.id)}'>{html.escape(m.subject)}</a>"
            f"{' 📎' if m.has_attachments else ''}</td><td>{html.escape(', '.join(m.to))}</td>"
            f"<td>{m.date:%Y-%m-%d %H:%M:%S}</td></tr>"
            for m in mail.list_inbox(limit=200)
        )
        body = (
            "<h2>Inbox</h2><p>Messages received by the demo SMTP server "
            f"({html.escape(str(settings().mail_dir))}), newest first.</p>"
            f"<table><tr><th>Subject</th><th>To</th><th>Received</th></tr>{rows or '<tr><td>No mail yet.</td></tr>'}"
            "</table>"
        )
        self.finish(_page("Inbox", body, user))


class RunsHandler(Base, tornado.web.StaticFileHandler):
    """Executed job notebooks and their HTML reports (the provenance links in alert e-mails)."""

    def prepare(self):
        if self.require_user() is None:
            return
        return super().prepare()


class HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish({"ok": True})


class NoContentHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_status(204)


class ProxyHandler(tornado.websocket.WebSocketHandler, Base):
    """Forwards HTTP and websockets under a prefix to a local upstream, after the login check."""

    upstream: str = ""

    def initialize(self, upstream: str) -> None:
        self.upstream = upstream
        self.upstream_ws = None
        self.pending: list = []

    def _upstream_headers(self) -> dict[str, str]:
        headers = {
            k: v
            for k, v in self.request.headers.get_all()
            if k.lower() not in HOP_HEADERS
            and k.lower() != auth.HEADER.lower()
            and not k.lower().startswith("sec-websocket")
        }
        headers[auth.HEADER] = self.current_user.login
        headers["X-Forwarded-For"] = self.request.remote_ip or ""
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers["X-Forwarded-Host"] = self.request.host
        return headers

    async def get(self, *args, **kwargs):
        if self.require_user() is None:
            return
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            return await super().get(*args, **kwargs)
        await self._forward()

    async def post(self, *args, **kwargs):
        if self.require_user() is not None:
            await self._forward()

    put = patch = delete = options = post

    async def head(self, *args, **kwargs):
        if self.require_user() is not None:
            await self._forward()

    async def _forward(self) -> None:
        if self.request.path.startswith(VOILA_BASE) and not self.get_cookie("_xsrf"):
            # Voila's page never sets one, so its shutdown beacon on closing the tab was refused
            # (403) and the kernel lingered until culled; any token works, the server compares
            # cookie and form value
            self.set_cookie("_xsrf", secrets.token_hex(16), path=VOILA_BASE, samesite="Strict")
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
        resp = await tornado.httpclient.AsyncHTTPClient().fetch(req, raise_error=False)
        if resp.code == 599:
            self.set_status(502)
            self.finish(
                f"The dashboard server is not answering ({resp.error}). Is `kpi serve` still starting?"
            )
            return
        self.set_status(resp.code, resp.reason)
        for k, v in resp.headers.get_all():
            if k.lower() not in HOP_HEADERS and k.lower() not in ("server", "date"):
                if k.lower() == "set-cookie":
                    self.add_header(k, v)
                else:
                    self.set_header(k, v)
        if resp.body and resp.code not in (204, 304):
            self.write(resp.body)
        self.finish()

    # websockets
    def check_origin(self, origin: str) -> bool:
        from urllib.parse import urlparse

        return urlparse(origin).netloc == self.request.host

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0] if subprotocols else None

    async def open(self, *args, **kwargs) -> None:
        url = "ws" + self.upstream[4:] + self.request.uri
        protocols = [
            p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        req = tornado.httpclient.HTTPRequest(url, headers=self._upstream_headers(), request_timeout=30)
        try:
            self.upstream_ws = await tornado.websocket.websocket_connect(
                req,
                on_message_callback=self._from_upstream,
                subprotocols=protocols or None,
                max_message_size=256 * 1024 * 1024,
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("websocket to %s failed: %s", url, exc)
            self.close(1011, "upstream unavailable")
            return
        for msg in self.pending:
            await self.upstream_ws.write_message(msg, binary=isinstance(msg, bytes))
        self.pending = []

    async def on_message(self, message) -> None:
        if self.upstream_ws is None:
            self.pending.append(message)
        else:
            await self.upstream_ws.write_message(message, binary=isinstance(message, bytes))

    def _from_upstream(self, message) -> None:
        if message is None:
            self.close()
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass

    def on_close(self) -> None:
        if self.upstream_ws is not None:
            self.upstream_ws.close()


def make_app(panel_url: str, voila_url: str) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/login", LoginHandler),
            (r"/logout", LogoutHandler),
            (r"/healthz", HealthHandler),
            (r"/(?:panel/|voila/)?favicon.ico", NoContentHandler),  # browsers ask; no 404 in the console
            (r"/ask", AskHandler),
            (r"/ask/box.js", ask_http.ScriptHandler),
            (r"/ask/suggest", SuggestHandler),
            (r"/inbox", InboxHandler),
            (r"/inbox/([^/]+)", InboxHandler),
            (r"/inbox/([^/]+)/([^/]+)", InboxHandler),
            (r"/runs/(.*)", RunsHandler, {"path": str(settings().runs_dir)}),
            (r"/panel/.*", ProxyHandler, {"upstream": panel_url}),
            (r"/voila/.*", ProxyHandler, {"upstream": voila_url}),
            (r"/", LandingHandler),
        ],
        cookie_secret=auth.cookie_secret().decode(),
        websocket_max_message_size=256 * 1024 * 1024,
    )


# --- the supervisor -----------------------------------------------------------------------------

VOILA_BASE = "/voila/"
# The JupyterLab extensions a dashboard page needs; without the list Voila loads every one installed
# (the pyviz one fails in Voila and only slows the page).
VOILA_EXTENSIONS = [
    "@voila-dashboards/widgets-manager8",
    "@jupyter-widgets/jupyterlab-manager",
    "bqplot",
    "bqscales",
]


def voila_command(
    port: int, preheat: bool = True, pool: int = 2, cull_idle: int = 120, cull_interval: int = 30
) -> list[str]:
    """How the dashboards' notebooks are served (run with JUPYTER_PATH = ui.widgets.voila_template()).

    The ``kpi`` template is Voila's lab template without its CDN links (Font Awesome, mermaid);
    pre-heated kernels answer fast and refresh their data when the viewer arrives; abandoned
    kernels are culled; unix-socket kernels avoid the TCP port race of a pool starting at once.
    The list of dashboards is the classic, server-rendered one: one small HTML page instead of
    a JupyterLab file-browser bundle that a busy machine took minutes to start in CI.
    """
    return [
        str(Path(sys.executable).with_name("voila")),
        str(DASHBOARDS),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        f"--Voila.base_url={VOILA_BASE}",
        f"--preheat_kernel={preheat}",
        f"--pool_size={pool}",
        f"--VoilaConfiguration.http_header_envs=['{auth.HEADER}']",
        "--VoilaConfiguration.template=kpi",
        "--VoilaConfiguration.classic_tree=True",
        f"--VoilaConfiguration.extension_allowlist={VOILA_EXTENSIONS!r}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
        "--KernelManager.transport=ipc",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {what} log above")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start listening on port {port} within {timeout:.0f}s")


@dataclass
class Server:
    """Everything `kpi serve` runs. ``start()`` returns once every part answers."""

    host: str = "127.0.0.1"
    port: int = 8080
    panel_procs: int = 1
    voila_pool: int = 2
    simulate_rate: str | float | None = None  # orders/s, or 'auto'
    with_mail_sink: bool = True
    with_alerts: bool = True
    refresh_views_every_s: float = 60.0
    log_dir: Path | None = None
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    panel_port: int = 0
    voila_port: int = 0

    def _spawn(self, what: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        log_dir = self.log_dir or settings().home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        out = open(log_dir / f"{what}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=PROJECT_ROOT,
        )
        self.children.append((what, proc))
        return proc

    def public_origin(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.port}"

    def start(self) -> None:
        from . import warehouse

        warehouse.init()
        bin_dir = Path(sys.executable).parent
        self.panel_port = free_port()
        apps = [str(p) for p in sorted(DASHBOARDS.glob("*.py"))]
        origins = {self.public_origin(), f"localhost:{self.port}", f"127.0.0.1:{self.port}"}
        panel_cmd = [
            str(bin_dir / "panel"),
            "serve",
            *apps,
            "--address",
            "127.0.0.1",
            "--port",
            str(self.panel_port),
            "--prefix",
            "/panel",
            "--num-procs",
            str(self.panel_procs),
            "--warm",
            # no --reuse-sessions: with it, later sessions' component stylesheets pointed at
            # cdn.holoviz.org (the page must work offline; tests/ui/test_executive.py checks it)
            "--global-loading-spinner",
            # a closed page's session (and its live refreshes) goes within ~12 s, not Bokeh's ~32 s;
            # long enough for a slow browser to connect its websocket to a fresh session
            "--check-unused-sessions",
            "2000",
            "--unused-session-lifetime",
            "10000",
            "--log-level",
            "warning",
        ]
        for origin in sorted(origins):
            panel_cmd += ["--allow-websocket-origin", origin]
        panel = self._spawn("panel", panel_cmd)
        self.voila_port = free_port()
        voila = None
        notebooks = sorted(DASHBOARDS.glob("*.ipynb"))
        if notebooks:
            # notebooks written by code are untrusted until signed; sign ours so Voila renders them fully
            subprocess.run(
                [str(bin_dir / "jupyter"), "trust", *map(str, notebooks)], capture_output=True, check=False
            )
            from .ui.widgets import voila_template

            voila = self._spawn(
                "voila",
                voila_command(self.voila_port, pool=self.voila_pool),
                env={"JUPYTER_PATH": str(voila_template())},
            )
        if self.with_mail_sink:
            self._start_mail_sink(bin_dir)
        if self.with_alerts:
            self._spawn("outbox", [str(bin_dir / "kpi"), "mail", "deliver", "--watch"])
        if self.with_alerts:
            self._spawn("alerts", [str(bin_dir / "kpi"), "alerts", "listen"])
        if self.simulate_rate:
            self._spawn("simulator", [str(bin_dir / "kpi"), "simulate", "--rate", str(self.simulate_rate)])
        _wait_port(self.panel_port, 120, panel, "panel")
        if voila is not None:
            _wait_port(self.voila_port, 120, voila, "voila")

    def _start_mail_sink(self, bin_dir: Path) -> None:
        cfg = settings()
        if cfg.smtp_host not in ("127.0.0.1", "localhost"):
            return
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", cfg.smtp_port)) == 0:
                return  # something already receives mail there
        self._spawn("mail", [str(bin_dir / "kpi"), "mail", "sink"])

    def stop(self) -> None:
        for _what, proc in reversed(self.children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for what, proc in self.children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", what)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.children.clear()


def run(server: Server, on_ready=None) -> None:
    """Start everything, serve until SIGINT/SIGTERM, then stop every child."""
    from .gold import ViewRefresher

    refresher = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    try:
        server.start()
        app = make_app(f"http://127.0.0.1:{server.panel_port}", f"http://127.0.0.1:{server.voila_port}")
        http = app.listen(server.port, address=server.host, xheaders=True)
        refresher = ViewRefresher(server.refresh_views_every_s).start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready:
            on_ready(server)
        loop.run_until_complete(stop.wait())
        http.stop()
    finally:
        if refresher:
            refresher.stop()
        server.stop()
        loop.close()
