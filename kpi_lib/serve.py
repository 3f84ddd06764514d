"""`kpi serve`: one front door (sign-in, landing page, inbox) in front of Panel and Voila.

The browser talks to one port. This process checks the session and forwards requests and
websockets to the Panel server (``/panel/``) and the Voila server (``/voila/``) with the user in
``X-KPI-User`` and a secret made at each start in ``X-KPI-Proxy`` (see :mod:`kpi_lib.web`). They
listen on 127.0.0.1 and serve nothing without that secret; Panel signs its session tokens with a
key of the same start. It also runs the materialized-view refresher and the fast path's mover (the one
that holds the deployment's mover lock moves, others stand by), and supervises its children:
Ctrl-C or SIGTERM stops every child process group, Panel's and Voila's workers included.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tornado.web

from . import auth, config
from .config import PROJECT_ROOT, settings

log = logging.getLogger(__name__)


@dataclass
class Dashboard:
    name: str
    title: str
    kind: str  # panel | voila
    description: str

    @property
    def url(self) -> str:
        return f"/panel/{self.name}" if self.kind == "panel" else f"/voila/voila/render/{self.name}.ipynb"


def discover(folder: Path | None = None) -> list[Dashboard]:
    """Every Panel app (*.py) and Voila notebook (*.ipynb) in the dashboards folder, with its title."""
    folder = folder or settings().dashboards_dir
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


def make_app(
    panel_url: str | list[str],
    voila_url: str,
    secret: str,
    port: int = 8080,
    bind_host: str = "127.0.0.1",
    api_url: str | None = None,
) -> tornado.web.Application:
    """The front door: its pages, and Panel and Voila behind it (``secret`` is what they require).
    ``panel_url`` may list several Panel workers: each sign-in session sticks to one."""
    from .auth import sessions
    from .web import api_proxy, api_query, gate, observe_pages, pages, security
    from .web.proxy import ProxyHandler
    from .web.workers import Workers

    panel = Workers([panel_url] if isinstance(panel_url, str) else panel_url)

    upstream = {"secret": secret}
    hosts, cookie_secret = security.allowed_hosts(port, bind_host), sessions.cookie_secret()
    api = [api_query.rule(api_url, secret, hosts, cookie_secret), *api_proxy.handlers(api_url, secret)]
    return tornado.web.Application(
        [
            # first: programs call it the most, and tornado tries each route's pattern in turn
            *(api if api_url else []),
            (r"/login", pages.LoginHandler),
            (r"/logout", pages.LogoutHandler),
            (r"/healthz", pages.HealthHandler),
            *observe_pages.handlers(),  # /readyz, /metrics
            (
                r"/(?:panel/|voila/)?favicon.ico",
                pages.NoContentHandler,
            ),  # browsers ask; no 404 in the console
            (r"/static/(.*)", pages.StaticHandler, {"path": str(pages.HERE / "static")}),
            (r"/ask", pages.AskHandler),
            (r"/ask/box.js", pages.AskScriptHandler),
            (r"/ask/suggest", pages.SuggestHandler),
            (r"/inbox", pages.InboxHandler),
            (r"/inbox/([^/]+)", pages.InboxHandler),
            (r"/inbox/([^/]+)/([^/]+)", pages.InboxHandler),
            (r"/runs/(.*)", pages.RunsHandler, {"path": str(settings().runs_dir)}),
            (r"/admin/audit", pages.AuditHandler),
            (r"/admin/sessions", pages.SessionsHandler),
            *gate.routes(panel, secret),  # pages for some roles only (403 for the others)
            (r"/panel/.*", ProxyHandler, {"upstream": panel, **upstream}),
            (r"/voila/.*", ProxyHandler, {"upstream": voila_url, **upstream}),
            (r"/", pages.LandingHandler, {"dashboards": discover}),
        ],
        cookie_secret=cookie_secret,
        xsrf_cookies=True,
        xsrf_cookie_name="kpi_xsrf",
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        websocket_max_message_size=256 * 1024 * 1024,
        kpi_allowed_hosts=hosts,
        log_function=observe_pages.log_request,  # request latency metrics, then the usual access log
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
    """How the dashboards' notebooks are served (run with JUPYTER_PATH = ui.voila.voila_template()).

    The ``kpi`` template is Voila's lab template without its CDN links (Font Awesome, mermaid);
    pre-heated kernels answer fast and refresh their data when the viewer arrives; abandoned
    kernels are culled; unix-socket kernels avoid the TCP port race of a pool starting at once.
    The list of dashboards is the classic, server-rendered one: one small HTML page instead of
    a JupyterLab file-browser bundle that a busy machine took minutes to start in CI.
    """
    return [
        str(Path(sys.executable).with_name("voila")),
        str(settings().dashboards_dir),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        f"--Voila.base_url={VOILA_BASE}",
        f"--preheat_kernel={preheat}",
        f"--pool_size={pool}",
        f"--VoilaConfiguration.http_header_envs=['{auth.HEADER}']",
        # no request without the front door's secret (kpi_lib/web/voila_auth.py)
        "--Voila.identity_provider_class=kpi_lib.web.voila_auth.FrontDoorIdentity",
        "--VoilaConfiguration.template=kpi",
        "--VoilaConfiguration.classic_tree=True",
        f"--VoilaConfiguration.extension_allowlist={VOILA_EXTENSIONS!r}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
        "--KernelManager.transport=ipc",
    ]


def api_command(port: int, workers: int = 1) -> list[str]:
    """The HTTP API (kpi_lib.api) under uvicorn, on loopback; it answers only the front door."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "kpi_lib.api.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-server-header",
        # C event loop and HTTP parser: about half the per-request cost of the pure-Python ones
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
    ]


#: ports this process chose or was told to use (``kpi serve --port``), not yet bound maybe
HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free local port; within ``KPI_PORT_RANGE`` ("18100-18199") when set, so that several
    people on one machine each keep to their own ports."""
    span = os.environ.get("KPI_PORT_RANGE", "").strip()
    if not span:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    lo, _, hi = span.partition("-")
    ports = [p for p in range(int(lo), int(hi or lo) + 1) if p not in HANDED_OUT]
    random.shuffle(ports)  # two callers at once rarely pick the same one
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            HANDED_OUT.add(port)  # free now, but its taker may not have bound it yet
            return port
    raise RuntimeError(f"no free port in KPI_PORT_RANGE={span}")


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


MAX_AUTO_PANEL_PROCS = 4


def auto_panel_procs() -> int:
    """Panel workers when none is asked for: one per core. A worker builds one page at a time on
    its one event loop, so five people opening the page at once wait for each other's builds
    unless the front door can spread them (issue 18: a second worker on 2 cores)."""
    return max(1, min(MAX_AUTO_PANEL_PROCS, os.cpu_count() or 1))


@dataclass
class Server:
    """Everything `kpi serve` runs. ``start()`` returns once every part answers."""

    host: str = "127.0.0.1"
    port: int = 8080
    panel_procs: int = 0  # 0: one per CPU core, at most MAX_AUTO_PANEL_PROCS
    voila_pool: int = 2
    simulate_rate: str | float | None = None  # orders/s, or 'auto'
    with_mail_sink: bool = True
    with_alerts: bool = True
    with_mover: bool = True  # move fast-path landings to silver and gold (one mover per deployment leads)
    refresh_views_every_s: float = 60.0
    log_dir: Path | None = None
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    panel_port: int = 0
    panel_ports: list[int] = field(default_factory=list)
    voila_port: int = 0
    api_port: int = 0
    # made at each start (or KPI_PROXY_SECRET, for back ends shared by several front doors): the
    # back ends serve only requests carrying it (see kpi_lib.web)
    secret: str = field(
        default_factory=lambda: os.environ.get("KPI_PROXY_SECRET") or secrets.token_urlsafe(32)
    )

    def _spawn(self, what: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        log_dir = self.log_dir or settings().home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_dir.chmod(0o700)
        path = log_dir / f"{what}.log"
        out = open(path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        path.chmod(0o600)
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
        from . import gold

        gold.init()
        # every child (and this process) writes its metrics here; GET /metrics sums them
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = settings().home / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)  # counts start again with each start
            metrics_dir.mkdir(parents=True, exist_ok=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        bin_dir = Path(sys.executable).parent
        own_sink = self.with_mail_sink and self._claim_smtp_port()  # before any child inherits SMTP_PORT
        HANDED_OUT.add(self.port)  # the front door binds it last: no back end may take it first
        self.panel_ports = [free_port() for _ in range(self.panel_procs or auto_panel_procs())]
        self.panel_port = self.panel_ports[0]
        apps = [str(p) for p in sorted(settings().dashboards_dir.glob("*.py"))]
        origins = {self.public_origin(), f"localhost:{self.port}", f"127.0.0.1:{self.port}"}
        panel_cmd = [
            str(bin_dir / "panel"),
            "serve",
            *apps,
            "--address",
            "127.0.0.1",
            "--port",
            "PORT",
            "--prefix",
            "/panel",
            # one process per port: the front door keeps each session on its worker (web/workers.py)
            "--num-procs",
            "1",
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
            # sessions only for requests the front door sent (kpi_lib/web/panel_auth.py), with
            # tokens signed by this start's key: a user cannot forge one naming someone else
            "--auth-module",
            str(Path(__file__).resolve().parent / "web" / "panel_auth.py"),
            "--session-ids",
            "signed",
            "--exclude-headers",  # as tornado spells header names: Bokeh compares them exactly
            "-".join(w.capitalize() for w in auth.PROXY_HEADER.split("-")),
            "--exclude-cookies",
            auth.COOKIE,
            "kpi_xsrf",
        ]
        for origin in sorted(origins):
            panel_cmd += ["--allow-websocket-origin", origin]
        backend_env = {"KPI_PROXY_SECRET": self.secret}
        panel_env = {
            **backend_env,
            "BOKEH_SECRET_KEY": secrets.token_urlsafe(32),
            "BOKEH_SIGN_SESSIONS": "yes",
            # Bokeh checks every new session's whole document for layout warnings (~20 ms of the
            # page's HTML, issue 18's profile); the pages are the same each time, and
            # tests/ui/test_executive.py validates one
            "BOKEH_VALIDATE_DOC": "false",
            # a developer's aids (each callback's signature read with inspect, ~140 per session;
            # near-miss names in errors): ~5 % of a session's build. The tests build the page in
            # process with them on; an operator may set it to true to debug
            "BOKEH_PERFORM_ERROR_DIAGNOSTICS": os.environ.get("BOKEH_PERFORM_ERROR_DIAGNOSTICS", "false"),
        }
        panels = []
        for i, panel_port in enumerate(self.panel_ports):
            cmd = [str(panel_port) if a == "PORT" else a for a in panel_cmd]
            panels.append(self._spawn("panel" if i == 0 else f"panel-{i}", cmd, env=panel_env))
        self.voila_port = free_port()
        voila = None
        notebooks = sorted(settings().dashboards_dir.glob("*.ipynb"))
        if notebooks:
            # notebooks written by code are untrusted until signed; sign ours so Voila renders them fully
            subprocess.run(
                [str(bin_dir / "jupyter"), "trust", *map(str, notebooks)], capture_output=True, check=False
            )
            from .ui.voila import voila_template

            voila = self._spawn(
                "voila",
                voila_command(self.voila_port, pool=self.voila_pool),
                env={**backend_env, "JUPYTER_PATH": str(voila_template())},
            )
        self.api_port = free_port()
        api = self._spawn("api", api_command(self.api_port), env=backend_env)  # kpi_lib.api
        if own_sink:
            self._start_mail_sink(bin_dir)
        if self.with_alerts:
            self._spawn("outbox", [str(bin_dir / "kpi"), "mail", "deliver", "--watch"])
        if self.with_alerts:
            self._spawn("alerts", [str(bin_dir / "kpi"), "alerts", "listen"])
        if self.simulate_rate:
            self._spawn("simulator", [str(bin_dir / "kpi"), "simulate", "--rate", str(self.simulate_rate)])
        for panel_port, panel in zip(self.panel_ports, panels, strict=True):
            _wait_port(panel_port, 120, panel, "panel")
        if voila is not None:
            _wait_port(self.voila_port, 120, voila, "voila")
        _wait_port(self.api_port, 60, api, "api")

    @property
    def state_path(self) -> Path:
        return settings().home / "serve.json"

    def write_state(self) -> None:
        """Where each part listens ($KPI_HOME/serve.json), for operators and tests; no secret in it."""
        state = {
            "pid": os.getpid(),
            "port": self.port,
            "panel_port": self.panel_port,
            "panel_ports": self.panel_ports,
            "voila_port": self.voila_port,
            "api_port": self.api_port,
            "children": {what: proc.pid for what, proc in self.children},
        }
        self.state_path.write_text(json.dumps(state, indent=1))
        self.state_path.chmod(0o600)

    def _claim_smtp_port(self) -> bool:
        """Whether this instance runs its own demo SMTP sink, deciding its port before any child
        starts (they all send there). A port someone set (SMTP_PORT) that already receives mail is
        their mail server: use it. The default port taken by another program (another `kpi
        serve`'s sink, a test session's) is not: take a free port, or this instance's alert
        e-mails would land in the other one's inbox."""
        cfg = settings()
        if cfg.smtp_host not in ("127.0.0.1", "localhost"):
            return False
        with socket.socket() as s:
            taken = s.connect_ex(("127.0.0.1", cfg.smtp_port)) == 0
        if not taken:
            return True
        if "smtp_port" in cfg.model_fields_set:
            return False  # something the user pointed us at already receives mail there
        os.environ["SMTP_PORT"] = str(free_port())
        config.reset()
        log.warning(
            "SMTP port %d is taken by another program; this instance's demo inbox receives on %s",
            cfg.smtp_port,
            os.environ["SMTP_PORT"],
        )
        return True

    def _start_mail_sink(self, bin_dir: Path) -> None:
        self._spawn("mail", [str(bin_dir / "kpi"), "mail", "sink", "--port", str(settings().smtp_port)])

    def stop(self) -> None:
        self.state_path.unlink(missing_ok=True)
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
    from . import gold, stream

    refresher = mover = None
    import uvloop

    loop = uvloop.new_event_loop()  # libuv under tornado: ~10 % less CPU per request than asyncio's own
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    try:
        server.start()
        app = make_app(
            [f"http://127.0.0.1:{p}" for p in server.panel_ports],
            f"http://127.0.0.1:{server.voila_port}",
            server.secret,
            port=server.port,
            bind_host=server.host,
            api_url=f"http://127.0.0.1:{server.api_port}",
        )
        # no xheaders: a client's own X-Forwarded-For must not become its address in the audit log
        # (kpi_lib.web.security.client_ip believes it only from KPI_TRUSTED_PROXIES)
        http = app.listen(server.port, address=server.host)
        # keeps the materialized views near the data: after changes, at most this often
        refresher = stream.Paced(
            gold.refresh_views_if_behind, name="view-refresher", min_interval_s=server.refresh_views_every_s
        ).start(run_now=True)  # catch up with whatever happened while nobody was refreshing
        if server.with_mover:
            # the fast path's landings (`kpi ingest --fast`, AMQP consumers with fast=True) reach gold
            # within about a second of their NOTIFY; of several front doors, one mover leads
            mover = stream.Mover(leader=True).start()
        server.write_state()
        # the start-up heap (~130 k objects: modules, settings, the app) is never garbage, yet each
        # full collection walked it (~80 ms) while every request in flight waited
        gc.collect()
        gc.freeze()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready:
            on_ready(server)
        loop.run_until_complete(stop.wait())
        http.stop()
    finally:
        if refresher:
            refresher.stop()
        if mover:
            mover.stop()
        server.stop()
        loop.close()
