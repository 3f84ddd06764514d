"""/api/live through the front door: kpi_update after an ingest, anomaly_alert after a new incident,
and a viewer's masking on every pushed message. "Now" is pinned (as_of) to a day of its own."""

from __future__ import annotations

import asyncio
import json
import uuid

from conftest import run_coroutine
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from kpi_lib import stream

DAY = "2019-03-05"  # a day no other test writes to
AS_OF = f"{DAY}T23:00"
WAIT_S = 20  # a bound for a failing test, not a latency assertion (bench_api measures latency)


def _order(region: str = "Europe") -> dict:
    oid = f"API{uuid.uuid4().hex[:10]}"
    return {
        "event_id": f"ev-{oid}",
        "order_id": oid,
        "ordered_at": f"{DAY}T12:00:00",
        "customer_id": "C900001",
        "region": region,
        "channel": "Web",
        "lines": [
            {
                "product_id": "P1001",
                "product_name": "Test Widget",
                "category": "Electronics",
                "quantity": 2,
                "unit_price": 50.0,
                "discount": 0.0,
                "unit_cost": 20.0,
            }
        ],
    }


async def _open(server: str, token: str):
    req = HTTPRequest(
        server.replace("http", "ws", 1) + "/api/live", headers={"Authorization": f"Bearer {token}"}
    )
    return await websocket_connect(req)


async def _next(ws, kind: str, match=lambda m: True) -> dict:
    async def read():
        while True:
            raw = await ws.read_message()
            assert raw is not None, "the server closed the socket"
            msg = json.loads(raw)
            if msg["type"] == kind and match(msg):
                return msg

    return await asyncio.wait_for(read(), WAIT_S)


async def _subscribe(ws, kpis: list[str], **extra) -> dict:
    ws.write_message(json.dumps({"type": "subscribe", "kpis": kpis, "grain": "day", "as_of": AS_OF, **extra}))
    await _next(ws, "subscribed")
    return await _next(ws, "kpi_update")  # the current value comes at once


def test_kpi_update_follows_an_ingest(server, api_tokens):
    async def run():
        ws = await _open(server, api_tokens["api-exec"])
        first = await _subscribe(ws, ["orders"], where={"region": ["Europe"]})
        assert first["period"].startswith(DAY) and first["masked"] is False
        res = await asyncio.to_thread(stream.ingest, [_order()], "api-test")
        assert res.loaded == 1
        update = await _next(ws, "kpi_update", lambda m: m["data_version"] >= res.version)
        assert update["kpi"] == "orders" and update["value"] == first["value"] + 1
        ws.close()

    run_coroutine(run)


def test_a_viewer_gets_a_sensitive_kpi_masked_on_every_push(server, api_tokens, db):
    async def run():
        viewer = await _open(server, api_tokens["api-viewer"])
        exec_ = await _open(server, api_tokens["api-exec"])
        hidden = await _subscribe(viewer, ["revenue"])
        shown = await _subscribe(exec_, ["revenue"])
        assert hidden["masked"] and hidden["value"] is None and not shown["masked"]
        res = await asyncio.to_thread(stream.ingest, [_order("Asia Pacific")], "api-test")
        later = lambda m: m["data_version"] >= res.version  # noqa: E731
        seen = await _next(exec_, "kpi_update", later)
        assert seen["value"] == shown["value"] + 100
        masked = await _next(viewer, "kpi_update", later)
        assert masked["masked"] and masked["value"] is None
        # a new incident on the sensitive KPI: announced to both, its numbers to the executive only
        iid = db.execute(
            "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, value,"
            " expected, deviation_pct, severity, explanation) values (%s, 'revenue', 'hour', 'region',"
            " 'Europe', %s, 5, 500, -0.99, 'high', %s) returning id",
            [
                f"revenue|hour|region=Europe|api-live-{uuid.uuid4().hex}",
                f"{DAY}T10:00:00Z",
                "Revenue fell 99 % below usual",
            ],
        ).fetchone()[0]
        try:
            told = await _next(exec_, "anomaly_alert", lambda m: m["incident"]["id"] == iid)
            assert told["incident"]["value"] == 5 and told["incident"]["explanation"].startswith(
                "Revenue fell"
            )
            kept = await _next(viewer, "anomaly_alert", lambda m: m["incident"]["id"] == iid)
            assert kept["incident"]["masked"] and kept["incident"]["value"] is None
            assert "99" not in kept["incident"]["explanation"]
        finally:
            db.execute("update ops.anomalies set status = 'resolved' where id = %s", [iid])
        viewer.close()
        exec_.close()

    run_coroutine(run)


def test_a_bad_subscription_gets_an_error_naming_the_field(server, api_tokens):
    async def run():
        ws = await _open(server, api_tokens["api-exec"])
        ws.write_message(json.dumps({"type": "subscribe", "kpis": ["orders"], "grain": "fortnight"}))
        err = await _next(ws, "error")
        assert err["param"] == "grain"
        ws.write_message(json.dumps({"type": "subscribe", "kpis": ["no_such_kpi"]}))
        err = await _next(ws, "error")
        assert "no_such_kpi" in err["detail"]
        ws.close()

    run_coroutine(run)


def test_no_token_no_socket(server):
    async def run():
        try:
            ws = await websocket_connect(server.replace("http", "ws", 1) + "/api/live")
        except Exception as exc:  # noqa: BLE001 - refused at the upgrade
            return str(exc)
        return await ws.read_message()

    assert "401" in str(run_coroutine(run))


def test_revoking_a_token_closes_its_open_socket(server, api_tokens):
    from kpi_lib.auth import tokens

    token = tokens.add("api-exec", "live-revoke")

    async def run():
        ws = await _open(server, token)
        await _subscribe(ws, ["orders"])
        tokens.revoke("api-exec", "live-revoke")

        async def closed():
            while await ws.read_message() is not None:
                pass
            return ws.close_code

        return await asyncio.wait_for(closed(), WAIT_S)

    assert run_coroutine(run) == 1008


# --- the Server-Sent Events twin: the same messages over plain HTTP ------------------------------------


class Events:
    """A Server-Sent Events client over httpx (what `curl -N` or a status page would do)."""

    def __init__(self, server: str, token: str, **params) -> None:
        import httpx

        self.client = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"})
        params = {"grain": "day", "as_of": AS_OF, **params}
        self.cm = self.client.stream("GET", "/api/live/events", params=params, timeout=WAIT_S)
        self.response = self.cm.__enter__()
        self.lines = self.response.iter_lines()

    def next(self, kind: str, match=lambda m: True) -> dict:
        event, data = None, []
        for line in self.lines:  # the read timeout bounds a failing test
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                msg = json.loads("\n".join(data))
                assert msg["type"] == event  # each event is named by its message's type
                if event == kind and match(msg):
                    return msg
                event, data = None, []
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self.cm.__exit__(None, None, None)
        self.client.close()


def test_server_sent_events_carry_the_same_updates(server, api_tokens):
    events = Events(server, api_tokens["api-exec"], kpis=["orders"], where=["region=Europe"])
    try:
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.next("subscribed")["where"] == {"region": ["Europe"]}
        first = events.next("kpi_update")
        assert first["period"].startswith(DAY) and first["masked"] is False
        res = stream.ingest([_order()], "api-test")
        update = events.next("kpi_update", lambda m: m["data_version"] >= res.version)
        assert update["value"] == first["value"] + 1
    finally:
        events.close()


def test_server_sent_events_mask_a_sensitive_kpi_for_a_viewer(server, api_tokens):
    viewer = Events(server, api_tokens["api-viewer"], kpis=["revenue"])
    try:
        hidden = viewer.next("kpi_update")
        assert hidden["masked"] and hidden["value"] is None
        res = stream.ingest([_order("Asia Pacific")], "api-test")
        later = viewer.next("kpi_update", lambda m: m["data_version"] >= res.version)
        assert later["masked"] and later["value"] is None
    finally:
        viewer.close()


def test_a_bad_event_subscription_is_a_problem_naming_the_parameter(api):
    bad = api().get("/api/live/events", params={"kpis": ["orders"], "where": ["planet=Mars"]})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["invalid-params"][0]["name"] == "where"
    unknown = api().get("/api/live/events", params={"kpis": ["no_such_kpi"]})
    assert unknown.status_code == 404 and "no_such_kpi" in unknown.json()["detail"]
    assert api(None).get("/api/live/events", params={"kpis": ["orders"]}).status_code == 401
