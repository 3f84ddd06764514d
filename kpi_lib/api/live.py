"""``/api/live``: a WebSocket pushing ``kpi_update`` on every new data version and ``anomaly_alert``
on every new incident, to each client for the KPIs and filters it subscribed to.

One process-wide LISTEN fans out to every client: data changes come from
:func:`kpi_lib.stream.subscribe` (the hub the dashboards use), new incidents from one LISTEN on
``kpi_incident`` (announced by a trigger, ``sql/030_api.sql``). Each value is computed once per
(KPI, filters, period, reader's rows) and version, under the client's user (row scope), and a KPI
their role masks is sent with ``masked: true`` and no value.

Client → server::

    {"type": "subscribe", "kpis": ["revenue", "orders"], "grain": "day",
     "where": {"region": ["Europe"]}, "as_of": null}

Server → client: ``subscribed``, ``kpi_update`` {kpi, label, grain, period, value, masked,
data_version, as_of, where}, ``anomaly_alert`` {incident}, ``error`` {detail, param}.

Its Server-Sent Events twin, for clients that only speak HTTP (``curl -N``, a browser's
``EventSource``): ``GET /api/live/events?kpis=revenue&kpis=orders&grain=day&where=region=Europe``
streams the same messages, each as an event named by its ``type``; a bad subscription is a 4xx
problem before the stream starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field, ValidationError

from .. import auth, kpis, stream, warehouse
from ..errors import KpiError, QueryError
from ..observe import metrics
from .app import ERRORS, VIA_HEADER, caller
from .models import _aware
from .problems import ApiProblem, bad_param

log = logging.getLogger(__name__)
router = APIRouter()
INCIDENT_CHANNEL = "kpi_incident"


class Subscribe(BaseModel):
    """What a client wants pushed (replaces its earlier subscription)."""

    type: Literal["subscribe"]
    kpis: list[str] = Field(min_length=1, max_length=50)
    grain: Literal["hour", "day", "week", "month"] = "day"
    where: dict[str, list[str]] = Field(default_factory=dict)
    as_of: str | None = Field(None, max_length=40, description="Pin 'now' (default: the live as-of)")


def check(who: auth.User, sub: Subscribe) -> None:
    """Refuse what this reader may not subscribe to: a problem naming the parameter at fault."""
    for name in sub.kpis:
        try:
            k = kpis.get(name)
        except QueryError as exc:
            raise bad_param("kpis", str(exc), 404) from exc
        if not who.can_see(k.name):
            raise bad_param("kpis", f"Your role does not include the KPI {name!r}.", 403)
        bad = [d for d in sub.where if d not in k.dimensions]
        if bad:
            raise bad_param("where", f"{k.label} cannot be filtered by {', '.join(bad)}.")
    if sub.as_of:
        try:
            kpis.as_local(sub.as_of, "as_of")
        except (QueryError, ValueError, OverflowError) as exc:
            raise bad_param(
                "as_of", f"as_of={sub.as_of!r} is not a date or time (use e.g. 2025-01-31)."
            ) from exc


@dataclass(eq=False)
class Client:
    ws: WebSocket | None  # None: a Server-Sent Events stream
    user: auth.User
    sub: Subscribe | None = None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=1000))


def _value(
    user: auth.User, kpi: str, grain: str, where: dict[str, list[str]], as_of: str | None
) -> dict[str, Any]:
    """The subscribed KPI's value for the current period, as ``user`` may see it (blocking)."""
    k = kpis.get(kpi)
    when = kpis.as_of(as_of)
    start = kpis.floor_period(when.at, grain)
    end = kpis.next_period(when.at, grain)
    masked = user.is_masked(k.name)
    with auth.acting_as(user):
        r = kpis.query(k.name, "total", start=start, end=end, where=where, as_of=when)
    metrics.observe_query(r.cache_level, r.elapsed_ms / 1000)
    return {
        "type": "kpi_update",
        "kpi": k.name,
        "label": k.label,
        "grain": grain,
        "period": _aware(start).isoformat(),
        "value": None if masked else r.value,
        "masked": masked,
        "data_version": r.version,
        "as_of": _aware(when.at).isoformat(timespec="seconds"),
        "where": where,
    }


class Live:
    """This process's clients and its two listeners (started with the first client)."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stop = threading.Event()

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.loop = asyncio.get_running_loop()
        stream.subscribe(lambda change: self.loop.call_soon_threadsafe(self._changed, change))
        threading.Thread(target=self._listen_incidents, name="kpi-incident-listen", daemon=True).start()

    # -- data changes

    def _changed(self, change: stream.Change) -> None:
        asyncio.ensure_future(self.push_values(list(self.clients)))

    async def push_values(self, clients: list[Client]) -> None:
        memo: dict[tuple, asyncio.Future] = {}
        for c in clients:
            if c.sub is None:
                continue
            for kpi in c.sub.kpis:
                where = {d: sorted(v) for d, v in sorted(c.sub.where.items())}
                key = (kpi, c.sub.grain, json.dumps(where), c.sub.as_of, c.user.scope, c.user.is_masked(kpi))
                if key not in memo:
                    memo[key] = asyncio.ensure_future(
                        asyncio.to_thread(_value, c.user, kpi, c.sub.grain, where, c.sub.as_of)
                    )
                try:
                    msg = await memo[key]
                except KpiError as exc:
                    msg = {"type": "error", "detail": str(exc), "param": "kpis"}
                except Exception:  # noqa: BLE001 - one failing value must not end the others' pushes
                    log.exception("live value for %s failed", kpi)
                    continue
                _offer(c, msg)

    # -- new incidents

    def _listen_incidents(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with warehouse.connect_raw(autocommit=True, start=False) as conn:
                    conn.execute(f"listen {INCIDENT_CHANNEL}")
                    backoff = 0.2
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            try:
                                incident_id = int(json.loads(note.payload)["id"])
                            except (ValueError, KeyError, TypeError):
                                continue
                            self.loop.call_soon_threadsafe(
                                lambda i=incident_id: asyncio.ensure_future(self.push_incident(i))
                            )
            except Exception as exc:  # noqa: BLE001 - reconnect, as the data hub does
                log.warning("lost the %s listener (%s); reconnecting", INCIDENT_CHANNEL, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    async def push_incident(self, incident_id: int) -> None:
        from .app import _one

        for c in list(self.clients):
            try:  # in the client's own rows (row-level security) and masking
                inc = await asyncio.to_thread(_one, c.user, incident_id)
            except ApiProblem:
                continue
            if c.sub is not None and inc.kpi not in c.sub.kpis:
                continue
            _offer(c, {"type": "anomaly_alert", "incident": json.loads(inc.model_dump_json())})


def _offer(c: Client, msg: dict[str, Any]) -> None:
    msg.setdefault("sent_at", datetime.now().astimezone().isoformat(timespec="milliseconds"))
    metrics.LIVE_PUSHES.labels(msg["type"]).inc()
    try:
        c.queue.put_nowait(msg)
    except asyncio.QueueFull:  # a client that stopped reading loses old messages, not the server
        log.warning("live client %s is not reading; dropping a message", c.user.login)


LIVE = Live()


@router.websocket("/api/live")
async def live(ws: WebSocket) -> None:
    login = auth.verified_login(ws.headers)
    from .app import _users

    who = await asyncio.to_thread(_users.get, login) if login else None
    if who is None:
        await ws.close(code=1008, reason="sign in first (bearer token or session, through the front door)")
        return
    await ws.accept()
    LIVE.start()
    client = Client(ws, who)
    LIVE.clients.add(client)
    metrics.LIVE_SESSIONS.inc()
    sender = asyncio.ensure_future(_send(client))
    try:
        while True:
            raw = await ws.receive_text()
            try:
                sub = Subscribe.model_validate_json(raw)
                check(who, sub)
            except ValidationError as exc:
                err = exc.errors()[0]
                param = ".".join(str(p) for p in err.get("loc", ())) or "message"
                _offer(client, {"type": "error", "detail": err.get("msg", "invalid"), "param": param})
                continue
            except ApiProblem as exc:
                _offer(client, {"type": "error", "detail": exc.detail, "param": exc.param or "kpis"})
                continue
            client.sub = sub
            await _audit_subscription(who, sub)
            _offer(client, {"type": "subscribed", "kpis": sub.kpis, "grain": sub.grain, "where": sub.where})
            await LIVE.push_values([client])  # the current values at once, then on every change
    except WebSocketDisconnect:
        pass
    finally:
        LIVE.clients.discard(client)
        metrics.LIVE_SESSIONS.dec()
        sender.cancel()


async def _send(c: Client) -> None:
    try:
        while True:
            msg = await c.queue.get()
            await c.ws.send_text(json.dumps(msg, default=str, allow_nan=False))
    except Exception:  # noqa: BLE001 - the socket closed; the receive loop ends the client
        return


# --- the Server-Sent Events twin ---------------------------------------------------------------------


def _subscription(
    who: Annotated[auth.User, Depends(caller)],
    kpis_: Annotated[
        list[str], Query(alias="kpis", min_length=1, max_length=50, description="KPIs to follow")
    ],
    grain: Annotated[Literal["hour", "day", "week", "month"], Query()] = "day",
    where: Annotated[
        list[str], Query(max_length=20, description="DIM=VALUE filters (repeat a DIM for OR)")
    ] = [],  # noqa: B006
    as_of: Annotated[str | None, Query(max_length=40, description="Pin 'now' (default: live)")] = None,
) -> Subscribe:
    """The query string as a subscription, checked before the stream starts (4xx problems)."""
    filters: dict[str, list[str]] = {}
    for item in where:
        dim, sep, value = (p.strip() for p in item.partition("="))
        if not sep or not dim or not value:
            raise bad_param("where", f"where={item!r} should look like DIM=VALUE, e.g. region=Europe.")
        filters.setdefault(dim, []).append(value)
    sub = Subscribe(type="subscribe", kpis=kpis_, grain=grain, where=filters, as_of=as_of)
    check(who, sub)
    return sub


async def _audit_subscription(who: auth.User, sub: Subscribe, **extra: Any) -> None:
    """Every live subscription (WebSocket or SSE) is in the audit log: who, which KPIs, which slice."""
    await asyncio.to_thread(
        auth.audit,
        who.login,
        "api live subscribe",
        ",".join(sub.kpis),
        where=sub.where,
        grain=sub.grain,
        **extra,
    )


@router.get(
    "/api/live/events",
    response_class=EventSourceResponse,
    summary="Live updates as Server-Sent Events (the twin of the /api/live WebSocket)",
    responses=ERRORS,
)
async def live_events(
    request: Request,
    who: Annotated[auth.User, Depends(caller)],
    sub: Annotated[Subscribe, Depends(_subscription)],
) -> AsyncIterator[ServerSentEvent]:
    await _audit_subscription(who, sub, via=request.headers.get(VIA_HEADER) or "session")
    LIVE.start()
    client = Client(None, who, sub)
    LIVE.clients.add(client)
    metrics.LIVE_SESSIONS.inc()
    try:
        _offer(client, {"type": "subscribed", "kpis": sub.kpis, "grain": sub.grain, "where": sub.where})
        await LIVE.push_values([client])  # the current values at once, then on every change
        while True:
            msg = await client.queue.get()
            yield ServerSentEvent(event=msg["type"], raw_data=json.dumps(msg, default=str, allow_nan=False))
    finally:  # the client went away: the stream's task is cancelled
        LIVE.clients.discard(client)
        metrics.LIVE_SESSIONS.dec()
