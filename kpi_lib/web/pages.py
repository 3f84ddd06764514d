"""The front door's own pages: sign-in and sign-out, the landing page, the inbox and job reports.

Every handler checks the Host header, sends the security headers (see :mod:`.security`) and finds
the user from the session cookie: a random token in a tornado-signed cookie, looked up in
``ops.sessions`` (so ending a session works at once). Forms carry tornado's XSRF token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import tornado.web

from .. import auth
from ..auth import sessions
from ..config import settings
from ..errors import AuthError, KpiError
from ..scope import RowScope
from ..ui import ask_http
from . import security

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
THROTTLE: security.LoginThrottle | None = None


def throttle() -> security.LoginThrottle:
    global THROTTLE
    if THROTTLE is None:
        THROTTLE = security.LoginThrottle()
    return THROTTLE


class Base(tornado.web.RequestHandler):
    """Host check, security headers, the signed-in user, and Jinja2 pages."""

    csp = security.OWN_CSP

    def prepare(self):
        hosts = self.settings.get("kpi_allowed_hosts")
        if hosts and self.request.host.lower() not in hosts:
            # a DNS-rebinding page names its own host; we only answer to ours
            self.set_status(421)
            self.finish(
                f"This server does not answer to the host name {self.request.host!r}. If it is yours, "
                "add it to KPI_ALLOWED_HOSTS (or KPI_PUBLIC_URL) and restart `kpi serve`."
            )
            return None
        return super().prepare()

    def set_default_headers(self) -> None:
        for k, v in security.SECURITY_HEADERS.items():
            self.set_header(k, v)
        self.set_header("Content-Security-Policy", self.csp)

    @property
    def client_ip(self) -> str:
        return security.client_ip(self.request.remote_ip, self.request.headers.get("X-Forwarded-For"))

    def session_token(self) -> str | None:
        raw = self.get_signed_cookie(auth.COOKIE, max_age_days=sessions.SESSION_DAYS + 1)
        return raw.decode() if raw else None

    def get_current_user(self) -> auth.User | None:
        try:
            login = sessions.login_for(self.session_token())
        except Exception:  # noqa: BLE001 - the warehouse is down: nobody is signed in right now
            log.exception("session lookup failed")
            return None
        if login is None:
            return None
        try:
            return auth.user(login)
        except AuthError:  # removed user
            return None

    def require_user(self) -> auth.User | None:
        user = self.current_user
        if user is None:
            if self.request.method in ("GET", "HEAD"):
                self.redirect("/login?" + urlencode({"next": self.request.uri}))
            else:
                self.set_status(401)
                self.finish("Sign in first.")
        return user

    def require_admin(self) -> auth.User | None:
        user = self.require_user()
        if user is not None and not user.admin:
            self.refuse("Only administrators may open this page.")
            return None
        return user

    def page(self, template: str, **ns: Any) -> None:
        ns.setdefault("user", self.current_user)
        ns.setdefault("title", "KPI Suite")
        ns["xsrf_form_html"] = self.xsrf_form_html()
        self.finish(TEMPLATES.get_template(template).render(**ns))

    def refuse(self, message: str, status: int = 403) -> None:
        self.set_status(status)
        self.page(
            "error.html",
            title="Not allowed",
            heading="Not allowed",
            message=message,
            link="/",
            link_text="Back to the dashboards",
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.page(
            "error.html",
            title=f"Error {status_code}",
            heading=f"Error {status_code}",
            message=self._reason,
            link="/",
            link_text="Back to the dashboards",
        )


class LoginHandler(Base):
    def get(self) -> None:
        self._form()

    def _form(self, error: str = "") -> None:
        self.page("login.html", title="Sign in", user=None, error=error, next=self.get_argument("next", "/"))

    async def post(self) -> None:
        login = self.get_argument("user", "").strip()
        password = self.get_argument("password", "")
        ip = self.client_ip
        limiter = throttle()
        if not limiter.allowed(login, ip):
            wait = limiter.retry_after(login, ip)
            auth.audit(login or "?", "sign-in refused", "kpi serve", ip=ip, reason="too many attempts")
            self.set_status(429)
            self.set_header("Retry-After", str(wait))
            self._form(f"Too many sign-in attempts. Try again in {max(1, wait // 60 + 1)} minutes.")
            return
        # bcrypt takes ~70 ms: off the event loop, so one person's sign-in never stalls everyone's pages
        found = await asyncio.get_running_loop().run_in_executor(None, auth.verify, login, password)
        if found is None:
            limiter.failed(login, ip)
            auth.audit(login or "?", "sign-in failed", "kpi serve", ip=ip)
            self.set_status(401)
            self._form("Unknown user or wrong password.")
            return
        # a new session every sign-in (a cookie planted before it is never the signed-in one);
        # another tab's earlier session ends at sign-out or expiry, not mid-request here
        token = sessions.start(found.login, ip=ip, user_agent=self.request.headers.get("User-Agent"))
        self.set_signed_cookie(
            auth.COOKIE,
            token,
            httponly=True,
            samesite="Lax",
            secure=settings().public_url.startswith("https"),
            expires_days=sessions.SESSION_DAYS,
        )
        auth.audit(found.login, "sign-in", "kpi serve", ip=ip)
        self.redirect(security.safe_next(self.get_argument("next", "/")))


class LogoutHandler(Base):
    """GET asks; POST (with the XSRF token) signs out, so no other site can sign you out."""

    def get(self) -> None:
        user = self.current_user
        if user is None:
            self.redirect("/login")
            return
        self.page("logout.html", title="Sign out", user=user)

    def post(self) -> None:
        user = self.current_user
        sessions.end(self.session_token(), "signed out")
        self.clear_cookie(auth.COOKIE)
        if user is not None:
            auth.audit(user.login, "sign-out", "kpi serve", ip=self.client_ip)
        self.redirect("/login")


class LandingHandler(Base):
    def initialize(self, dashboards) -> None:
        self.dashboards = dashboards

    def get(self) -> None:
        from .gate import visible  # the gate is a proxy, and the proxy is a page of this module

        user = self.require_user()
        if user is None:
            return
        self.page(
            "landing.html",
            dashboards=visible(self.dashboards(), user),
            ask_box=ask_http.box_html(self.xsrf_token.decode()),
        )


class AskHandler(Base, ask_http.AskHandler):
    """The landing page's Ask box (kpi_lib.ui.ask_http), for the signed-in user in their rows."""


class SuggestHandler(Base, ask_http.SuggestHandler):
    """Completions while typing in the Ask box."""


class AskScriptHandler(Base, ask_http.ScriptHandler):
    """The Ask box's script (a file: the pages' policy runs no inline script)."""


def _rows(doc: dict | None) -> RowScope | None:
    if not doc:
        return None
    try:
        return RowScope.of(doc)
    except ValueError:
        return RowScope.of({"region": ["\x00unreadable"]})  # inside nobody's scope


class InboxHandler(Base):
    """The demo mail server's inbox. Each reader sees only messages whose KPIs and rows their roles
    may read in full (a viewer never sees a masked KPI's numbers in an alert e-mail)."""

    def get(self, message_id: str | None = None, attachment: str | None = None) -> None:
        user = self.require_user()
        if user is None:
            return
        from .. import mail

        if message_id:
            try:
                msg = mail.read_message(message_id)
            except (KpiError, FileNotFoundError, ValueError) as exc:
                raise tornado.web.HTTPError(404) from exc
            if not user.may_read(msg.kpis, _rows(msg.rows)):
                auth.audit(user.login, "refused", f"inbox {message_id}", kpis=msg.kpis)
                self.refuse("This message shows KPIs or rows your role does not let you read.")
                return
            if attachment:
                try:
                    content_type, data = mail.attachment(message_id, attachment)
                except (KpiError, FileNotFoundError, ValueError) as exc:
                    raise tornado.web.HTTPError(404) from exc
                auth.audit(user.login, "export", f"inbox {message_id}", file=attachment)
                self.set_header("Content-Type", content_type)
                self.set_header("Content-Disposition", f'attachment; filename="{attachment}"')
                self.finish(data)
                return
            auth.audit(user.login, "view", f"inbox {message_id}")
            self.page("message.html", title=msg.subject, msg=msg)
            return
        listed = mail.list_inbox(limit=200)
        shown = [m for m in listed if user.may_read(m.kpis, _rows(m.rows))]
        self.page(
            "inbox.html",
            title="Inbox",
            messages=shown,
            hidden=len(listed) - len(shown),
            maildir=str(settings().mail_dir),
        )


class RunsHandler(Base, tornado.web.StaticFileHandler):
    """Executed job notebooks and their HTML reports (the provenance links in alert e-mails).

    A report shows every KPI unless its run folder's ``access.json`` says otherwise, so only people
    who may read every KPI unmasked, on every row, open it."""

    def prepare(self):
        if super().prepare() is not None or self._finished:
            return None
        user = self.require_user()
        if user is None:
            return None
        kpis, rows = self._access()
        if not user.may_read(kpis, _rows(rows)):
            auth.audit(user.login, "refused", f"runs {self.path_args[0] if self.path_args else ''}")
            self.refuse("This job report shows KPIs or rows your role does not let you read.")
            return None
        return None

    def _access(self) -> tuple[list[str] | None, dict | None]:
        rel = Path(self.path_args[0] if self.path_args else "")
        root = Path(self.root).resolve()
        folder = (root / rel).resolve()
        while folder != root and root in folder.parents:
            manifest = folder / "access.json"
            if manifest.is_file():
                try:
                    doc = json.loads(manifest.read_text())
                    return doc.get("kpis"), doc.get("rows")
                except ValueError:
                    break
            folder = folder.parent
        return None, None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # the executed notebook's HTML holds its own inline styles and scripts (plots)
        self.set_header("Content-Security-Policy", security.dashboard_csp(self.request.host))


class AuditHandler(Base):
    """Admins search the audit log and see whether its chain is intact."""

    def get(self) -> None:
        user = self.require_admin()
        if user is None:
            return
        q = {k: self.get_argument(k, "").strip() or None for k in ("actor", "action", "target", "since")}
        rows = auth.search_audit(q["actor"], q["action"], q["target"], q["since"], limit=300)
        auth.audit(user.login, "view", "audit log", search={k: v for k, v in q.items() if v})
        self.page(
            "admin_audit.html",
            title="Audit log",
            rows=rows.to_dict("records"),
            q=q,
            verdict=auth.verify_audit(),
        )


class SessionsHandler(Base):
    """Admins see who is signed in, and end a user's sessions."""

    def get(self) -> None:
        if self.require_admin() is None:
            return
        self.page("admin_sessions.html", title="Sessions", sessions=sessions.listing())

    def post(self) -> None:
        admin = self.require_admin()
        if admin is None:
            return
        login = self.get_argument("login")
        n = sessions.end_all(login, f"ended by {admin.login}")
        auth.audit(admin.login, "sessions revoked", login, count=n)
        self.redirect("/admin/sessions")


class HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish({"ok": True})


class NoContentHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_status(204)


class StaticHandler(Base, tornado.web.StaticFileHandler):
    """The front door's stylesheet and scripts (no login needed: nothing secret in them)."""

    def set_extra_headers(self, path: str) -> None:
        if self.get_argument("v", None):  # a versioned URL (static_url): this content, for good
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")


def static_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: the browser keeps it (and the code it compiled from it)
    until the file changes, without asking again; tornado checks nothing about ``v`` but the
    handler marks only such URLs immutable."""
    version = tornado.web.StaticFileHandler.get_version({"static_path": str(HERE / "static")}, name)
    return f"/static/{name}?v={version[:16]}"
