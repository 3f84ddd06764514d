"""The HTTP API: KPIs, query, ask, incidents, data version and status, for programs.

It runs under uvicorn as one of `kpi serve`'s back ends (``kpi_lib.serve``) and answers only
requests the front door forwarded: they carry this start's secret (``X-KPI-Proxy``) and the user
the front door verified from a session cookie or a bearer token (``X-KPI-User``). Every read goes
through ``kpis.query`` / the incident store under that user's row scope (:func:`auth.acting_as`),
and KPIs their role masks come back with ``masked: true`` and no values. Every call that reads
data or changes state is audited.

    uvicorn --factory kpi_lib.api.app:create_app   # what kpi serve runs (behind the front door)
"""

from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import auth, formats, kpis
from ..answers import Answers
from ..config import settings
from ..errors import AuthError, QueryError
from ..observe import metrics
from . import models as m
from .problems import MEDIA, ApiProblem, bad_param, install

log = logging.getLogger(__name__)

ANSWER_HEADER = "X-KPI-Answer"  # "kept": bytes made earlier for the same reader, question and version
AUDIT_HEADER = "X-KPI-Audit"  # what the audit row of a kept copy says; the front door keeps and strips it
VIA_HEADER = "X-KPI-Via"  # how the front door authenticated the caller: "token:NAME" or "session"
MAX_PERIODS = 20_000  # a range of more periods than this is refused, not computed
GRAIN_SPAN = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=28),
}
ERRORS = {
    code: {"model": m.Problem, "content": {MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for code in (400, 401, 403, 404, 429)
}


# --- who is asking ----------------------------------------------------------------------------------


class _Users:
    """users.yml read at most once a second per login (a program may call many times a second)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[float, auth.User | None]] = {}
        self.lock = threading.Lock()

    def get(self, login: str) -> auth.User | None:
        now = time.monotonic()
        with self.lock:
            hit = self.items.get(login)
        if hit and now - hit[0] < 1.0:
            return hit[1]
        try:
            found: auth.User | None = auth.user(login)
        except AuthError:
            found = None
        with self.lock:
            self.items[login] = (now, found)
        return found


_users = _Users()
ANSWERS = Answers()


async def caller(request: Request) -> auth.User:
    """The user the front door verified; 401 for anything that did not come through it."""
    login = auth.verified_login(request.headers)
    # on the event loop (no thread hop per request): a memo hit, or one small file read a second
    who = _users.get(login) if login else None
    if who is None:
        raise ApiProblem(
            401,
            "Sign in first: send `Authorization: Bearer <token>` (make one with `kpi users token add`) "
            "through the front door (`kpi serve`).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return who


User = Annotated[auth.User, Depends(caller)]


def audited(request: Request, who: auth.User, action: str, target: str, **details) -> None:
    """Audit every call; the rows are written in batches, the caller never waits (:mod:`.auditing`)."""
    via = request.headers.get(VIA_HEADER) or "session"
    auth.audit_later(who.login, action, target, via=via, **details)


# --- parameters -------------------------------------------------------------------------------------


def _kpi(who: auth.User, name: str, param: str = "kpi") -> kpis.Kpi:
    try:
        k = kpis.get(name)
    except QueryError as exc:
        raise bad_param(param, str(exc), 404) from exc
    if not who.can_see(k.name):
        raise bad_param(param, f"Your role does not include the KPI {name!r}.", 403)
    return k


def _time(value: str | None, param: str) -> datetime | None:
    try:
        t = kpis.as_local(value, param)
    except (QueryError, ValueError, OverflowError) as exc:
        raise bad_param(param, f"{param}={value!r} is not a date or time (use e.g. 2025-01-31).") from exc
    if t is not None and not 1900 <= t.year <= 2200:
        raise bad_param(param, f"{param}={value!r} is outside the years 1900-2200.")
    return t


def _filters(items: list[str], k: kpis.Kpi, param: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        dim, sep, value = item.partition("=")
        dim, value = dim.strip(), value.strip()
        if not sep or not dim or not value:
            raise bad_param(param, f"{param}={item!r} should look like DIM=VALUE, e.g. region=Europe.")
        if dim not in k.dimensions:
            raise bad_param(
                param, f"{k.label} cannot be filtered by {dim!r}; dimensions: {', '.join(k.dimensions)}."
            )
        out.setdefault(dim, []).append(value)
    return out


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _rows(df: pd.DataFrame, by: tuple[str, ...], masked: bool) -> list[m.Row]:
    rows = []
    for rec in df.to_dict("records"):
        period = rec.get("period")
        rows.append(
            m.Row(
                period=None if period is None or pd.isna(period) else pd.Timestamp(period).to_pydatetime(),
                dims={d: str(rec.get(d)) for d in by},
                value=None if masked else _num(rec.get("value")),
                previous=None if masked else _num(rec.get("previous")),
                change=None if masked else _num(rec.get("change")),
            )
        )
    return rows


# --- routes -----------------------------------------------------------------------------------------

api = APIRouter(prefix="/api", responses=ERRORS)


@api.get("/me", response_model=m.Me, summary="Who the API takes you for")
def me(who: User) -> m.Me:
    return m.Me(
        login=who.login,
        name=who.name,
        roles=list(who.roles),
        admin=who.admin,
        can_act=who.can_act,
        masked=sorted(who.masked),
        rows=who.scope.describe(),
    )


def _info(who: auth.User, k: kpis.Kpi) -> m.KpiInfo:
    return m.KpiInfo(
        name=k.name,
        label=k.label,
        description=k.description,
        unit=k.unit,
        currency=k.currency,
        dimensions=list(k.dimensions),
        up_is_good=k.up_is_good,
        sensitive=k.sensitive,
        masked=who.is_masked(k.name),
        synonyms=list(k.synonyms),
    )


@api.get("/kpis", response_model=list[m.KpiInfo], summary="The KPIs you may see, with their definitions")
def kpi_list(who: User, request: Request) -> list[m.KpiInfo]:
    audited(request, who, "api kpis", "*")
    return [_info(who, k) for k in kpis.definitions().values() if who.can_see(k.name)]


@api.get("/kpis/{name}", response_model=m.KpiInfo, summary="One KPI's definition")
def kpi_one(name: str, who: User, request: Request) -> m.KpiInfo:
    audited(request, who, "api kpis", name)
    return _info(who, _kpi(who, name, "name"))


@api.get(
    "/query",
    response_model=m.QueryAnswer,
    summary="Ask a KPI question (the parameters of `kpi query`)",
    responses={
        200: {"headers": {ANSWER_HEADER: {"description": "kept or fresh", "schema": {"type": "string"}}}}
    },
)
async def query(
    who: User,
    request: Request,
    kpi: Annotated[str, Query(max_length=100, description="KPI name (GET /api/kpis lists them)")],
    grain: Annotated[m.Grain, Query()] = "day",
    start: Annotated[str | None, Query(max_length=40, description="First day/time, inclusive")] = None,
    end: Annotated[str | None, Query(max_length=40, description="Last day/time, exclusive")] = None,
    by: Annotated[list[str], Query(max_length=3, description="Dimensions to break down by")] = [],  # noqa: B006
    where: Annotated[
        list[str], Query(max_length=20, description="DIM=VALUE filters (repeat a DIM for OR)")
    ] = [],  # noqa: B006
    compare: Annotated[m.Compare | None, Query()] = None,
    top: Annotated[int | None, Query(ge=1, le=1000, description="Keep the N largest values of `by`")] = None,
    order: Annotated[m.Order, Query(description="With top: largest (desc) or smallest (asc)")] = "desc",
    as_of: Annotated[
        str | None, Query(max_length=40, description="What 'now' is for a missing start/end")
    ] = None,
) -> Response:
    t0 = time.perf_counter()
    k = _kpi(who, kpi)
    for d in by:
        if d not in k.dimensions:
            raise bad_param(
                "by", f"{k.label} cannot be broken down by {d!r}; dimensions: {', '.join(k.dimensions)}."
            )
    if len(set(by)) != len(by):
        raise bad_param("by", "Name each dimension once.")
    filters = _filters(where, k, "where")
    s, e, when = _time(start, "start"), _time(end, "end"), _time(as_of, "as_of")
    if s is not None and e is not None and s >= e:
        raise bad_param("start", "start must be before end (end is exclusive).")
    span = GRAIN_SPAN.get(grain)
    if span and s is not None and e is not None and (e - s) / span > MAX_PERIODS:
        raise bad_param(
            "start", f"That is more than {MAX_PERIODS:,} {grain}s; use a coarser grain or a shorter range."
        )
    if top is not None and len(by) != 1:
        raise bad_param("top", "top needs exactly one `by` dimension to rank.")
    if who.is_masked(k.name) and top is not None:
        raise bad_param(
            "top", f"{k.label} is masked for your role; a ranking by it would show its values.", 403
        )
    question = (k.name, grain, s, e, tuple(by), tuple((d, tuple(v)) for d, v in filters.items()))
    question += (compare, top, order, when)
    # a question without its own "now" is answered for this wall-clock second (answers.py)
    key = (who, question, None if when is not None else int(time.time()))
    body, details, kept = await ANSWERS.get(key, lambda: run_in_threadpool(_answer, who, *question))
    if kept:
        metrics.observe_query("answer", time.perf_counter() - t0)
    said = {"grain": grain, "by": by, "where": filters, **details}
    audited(
        request,
        who,
        "api query",
        k.name,
        **{**said, "cache_level": "answer" if kept else details["cache_level"]},
        elapsed_ms=round((time.perf_counter() - t0) * 1000, 2),  # the Operations page lists the slowest
    )
    headers = {
        ANSWER_HEADER: "kept" if kept else "fresh",
        AUDIT_HEADER: json.dumps({"target": k.name, **said}, default=str),
    }
    return Response(body, media_type="application/json", headers=headers)


def _answer(
    who: auth.User,
    kpi: str,
    grain: str,
    s: datetime | None,
    e: datetime | None,
    by: tuple[str, ...],
    filters: tuple[tuple[str, tuple[str, ...]], ...],
    compare: str | None,
    top: int | None,
    order: str,
    when: datetime | None,
) -> tuple[bytes, dict[str, Any]]:
    """The answer as JSON bytes (typed by m.QueryAnswer), and what the audit row says of it."""
    k = kpis.get(kpi)
    masked = who.is_masked(k.name)
    with auth.acting_as(who):
        r = kpis.query(
            k.name,
            grain,
            start=s,
            end=e,
            by=list(by),
            where={d: list(v) for d, v in filters},
            compare=compare,
            top=top,
            as_of=when,
            order=order,
        )
    metrics.observe_query(r.cache_level, r.elapsed_ms / 1000)
    p = r.provenance()
    answer = m.QueryAnswer(
        kpi=k.name,
        label=k.label,
        masked=masked,
        # money to the cent, as the CSV/JSON exports: 196642.3, not 196642.30000000002
        rows=_rows(formats.cents(r.df, formats.money_columns(k)), r.by, masked),
        provenance=m.Provenance(
            **{
                key: p[key]
                for key in (
                    "kpi",
                    "grain",
                    "by",
                    "where",
                    "catalog_entries",
                    "sql",
                    "params",
                    "cache_level",
                    "as_of_source",
                )
            },
            start=r.start,
            end=r.end,
            data_version=r.version,
            elapsed_ms=round(r.elapsed_ms, 2),
            as_of=None if r.as_of is None else r.as_of.at,
        ),
    )
    details = {"start": str(r.start), "end": str(r.end), "cache_level": r.cache_level}
    return answer.model_dump_json().encode(), details


@api.post("/ask", response_model=m.AskAnswer, summary="Ask a question in plain English")
def ask(body: m.AskRequest, who: User) -> m.AskAnswer:
    from ..ask import ask as run

    if body.as_of is not None:
        _time(body.as_of, "as_of")
    answer = run(body.q, as_of=body.as_of, user=who, surface="api")  # recorded and audited by ask
    doc = answer.to_dict()
    return m.AskAnswer(**{key: doc.get(key) for key in m.AskAnswer.model_fields if key in doc})


DEFAULT_STATUS: list[m.Status] = ["open", "acknowledged"]
_INCIDENT_NUMBERS = ("value", "expected", "lower_bound", "upper_bound", "deviation_pct")


def _incident(who: auth.User, row: dict[str, Any]) -> m.Incident:
    masked = who.is_masked(row["kpi"])
    doc = {
        key: (None if pd.isna(v) else v) if not isinstance(v, str) else v
        for key, v in row.items()
        if key in m.Incident.model_fields
    }
    for key in _INCIDENT_NUMBERS:
        doc[key] = None if masked else _num(doc.get(key))
    if masked:  # the sentence and drivers say how it moved
        doc["explanation"] = "Values are masked for your role."
        doc["drivers"] = None
    return m.Incident(**doc, masked=masked)


def _listing(who: auth.User, status: list[str] | None, kpi: list[str] | None, limit: int) -> list[m.Incident]:
    from .. import incidents

    with auth.acting_as(who):  # row-level security: a Europe manager sees Europe's incidents
        df = incidents.listing(status or None, kpi or None, limit)
    rows = [row for row in df.to_dict("records") if who.can_see(row["kpi"])]
    # events among what the caller may read; a masked KPI's incident joins none (its direction is a value)
    lead_of = incidents.lead_of([g for g in incidents.events(rows, masked=who.is_masked) if len(g) > 1])
    return [_incident(who, row).model_copy(update={"event": lead_of.get(int(row["id"]))}) for row in rows]


@api.get("/incidents", response_model=list[m.Incident], summary="Anomalies and incidents, newest first")
def incident_list(
    who: User,
    request: Request,
    status: Annotated[list[m.Status], Query(description="Default: open and acknowledged")] = DEFAULT_STATUS,
    kpi: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[m.Incident]:
    for name in kpi:
        _kpi(who, name)
    audited(request, who, "api incidents", ",".join(kpi) or "*", status=status)
    return _listing(who, list(status), kpi, limit)


def _one(who: auth.User, incident_id: int) -> m.Incident:
    from .. import warehouse

    with auth.acting_as(who), warehouse.read() as conn:  # row-level security applies
        row = (
            conn.exec_driver_sql("select * from ops.anomalies where id = %s", (incident_id,))
            .mappings()
            .fetchone()
        )
    if row is None or not who.can_see(row["kpi"]):
        raise bad_param("incident_id", f"No incident #{incident_id} that you may see.", 404)
    return _incident(who, dict(row))


@api.get("/incidents/{incident_id}", response_model=m.Incident, summary="One incident")
def incident_one(incident_id: int, who: User, request: Request) -> m.Incident:
    found = _one(who, incident_id)
    audited(request, who, "api incident", f"incident {incident_id}")
    return found


def _transition(action: str, incident_id: int, body: m.Transition, who: auth.User) -> m.Incident:
    from .. import alerts

    _one(who, incident_id)  # only incidents in the caller's rows
    if not who.can_act:
        raise ApiProblem(403, f"Your role may look at incidents, not {action} them (analysts and above may).")
    (alerts.acknowledge if action == "acknowledge" else alerts.resolve)(incident_id, who.login, body.comment)
    return _one(who, incident_id)  # alerts audits the change itself


@api.post(
    "/incidents/{incident_id}/acknowledge", response_model=m.Incident, summary="Acknowledge, with a comment"
)
def incident_ack(incident_id: int, who: User, body: m.Transition | None = None) -> m.Incident:
    return _transition("acknowledge", incident_id, body or m.Transition(), who)


@api.post("/incidents/{incident_id}/resolve", response_model=m.Incident, summary="Resolve, with a comment")
def incident_resolve(incident_id: int, who: User, body: m.Transition | None = None) -> m.Incident:
    return _transition("resolve", incident_id, body or m.Transition(), who)


@api.get("/version", response_model=m.DataVersion, summary="The data version and the as-of")
def version(
    who: User,
    request: Request,
    as_of: Annotated[str | None, Query(max_length=40, description="An explicit as-of (echoed back)")] = None,
) -> m.DataVersion:
    when = kpis.as_of(_time(as_of, "as_of"))
    audited(request, who, "api version", "data version")
    return m.DataVersion(
        data_version=kpis.sync_versions(),
        as_of=when.at,
        as_of_source=when.source,
        latest_data=when.latest,
        live=when.live,
        timezone=settings().timezone,
    )


@api.get("/status", response_model=m.Status_, summary="What `kpi status` shows")
def status(who: User, request: Request) -> m.Status_:
    from .. import monitor

    info = monitor.status()
    srv, fresh, cache = info["server"], info.get("freshness", {}), info.get("cache", {})
    audited(request, who, "api status", "status")
    return m.Status_(
        warehouse_running=bool(srv.get("running")),
        postgres_version=srv.get("version"),
        data_version=int(fresh.get("version") or 0),
        latest_order=fresh.get("latest_order"),
        last_change=fresh.get("last_change"),
        views=[
            m.ViewLag(**{k: v[k] for k in ("name", "refreshed_at", "behind_versions", "owed_versions")})
            for v in info.get("views", [])
        ],
        cache_hits={str(k): int(v) for k, v in cache.get("hits", {}).items()},
        cache_misses={str(k): int(v) for k, v in cache.get("misses", {}).items()},
        redis=bool(cache.get("redis")),
        tables=info.get("tables") if who.admin else None,  # row counts are totals over every row
    )


@api.post("/rum", status_code=204, summary="A page's own load timing (real-user monitoring)")
def rum(body: m.PageLoad, who: User) -> None:
    from .. import warehouse

    with warehouse.engine().begin() as conn:
        conn.exec_driver_sql(
            "insert into ops.page_loads (login, page, ttfb_ms, dom_ms, load_ms, painted_ms, usable_ms)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            (who.login, body.page, body.ttfb_ms, body.dom_ms, body.load_ms, body.painted_ms, body.usable_ms),
        )
    metrics.observe_page(body.page, body.ready_ms / 1000)


@api.get("/health", response_model=m.Health, summary="The health score (0-100) and each service level")
def health(who: User, request: Request) -> m.Health:
    from ..observe import health as scoring

    audited(request, who, "api health", "health")
    return m.Health(**scoring.score())


# --- the application --------------------------------------------------------------------------------


@asynccontextmanager
async def _lifespan(app: FastAPI):
    from .live import LIVE

    LIVE.start()  # this process's LISTEN connections, up before the first client arrives
    gc.collect()  # as the front door: the start-up heap is never garbage; full collections skip it
    gc.freeze()
    yield


def create_app() -> FastAPI:
    """The API as uvicorn serves it (``--factory``)."""
    app = FastAPI(
        title="KPI Suite API",
        version="1",
        description=(
            "The executive KPIs, their provenance, anomalies and incidents. Authenticate with "
            "`Authorization: Bearer <token>` (`kpi users token add LOGIN --name NAME`) or a signed-in "
            "browser session. Errors are RFC 9457 problem details. Live updates: WebSocket /api/live."
        ),
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    install(app)
    app.include_router(api)
    from .live import router as live_router

    app.include_router(live_router)
    _docs(app)
    return app


def _docs(app: FastAPI) -> None:
    """/api/docs: Swagger UI from fastapi-offline's bundled files (nothing from a CDN)."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/api/docs/static", StaticFiles(directory=static), name="swagger")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="KPI Suite API",
            swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/static/swagger-ui.css",
            swagger_favicon_url="/api/docs/static/favicon.png",
        )
