"""The HTTP API through the front door: tokens, the same answers as kpi_lib, masking, problem details."""

from __future__ import annotations

import time

import pytest
import requests
from conftest import free_port, run_coroutine, serving

from kpi_lib import auth, kpis
from kpi_lib.auth import tokens

PROBLEM = "application/problem+json"
EXPLAINED = "Revenue fell 90% below the usual"
PASSWORD_FOR_REMOVAL = "api-gone-password-1"


def _window():
    """The last 30 whole days of the demo data (pinned to the data, not the wall clock)."""
    latest = kpis.latest_data()
    end = latest.replace(hour=0, minute=0, second=0, microsecond=0)
    return (end - __import__("datetime").timedelta(days=30)).date().isoformat(), end.date().isoformat()


def test_kpi_list_says_which_kpis_a_role_sees_masked(api):
    exec_ = {k["name"]: k for k in api("api-exec").get("/api/kpis").json()}
    viewer = {k["name"]: k for k in api("api-viewer").get("/api/kpis").json()}
    assert set(exec_) == set(viewer) == set(kpis.definitions())
    assert not exec_["revenue"]["masked"] and viewer["revenue"]["masked"]
    assert not viewer["orders"]["masked"]
    assert viewer["revenue"]["dimensions"] == list(kpis.get("revenue").dimensions)


def test_query_answers_as_kpi_lib_with_its_provenance(api):
    start, end = _window()
    r = api().get(
        "/api/query",
        params={
            "kpi": "revenue",
            "grain": "total",
            "start": start,
            "end": end,
            "by": "region",
            "where": ["channel=Web"],
        },
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    want = kpis.query("revenue", "total", start=start, end=end, by=["region"], where={"channel": ["Web"]})
    got = {row["dims"]["region"]: row["value"] for row in doc["rows"]}
    assert got == pytest.approx(dict(zip(want.df["region"], want.df["value"], strict=True)))
    # money to the cent, as the exports: no float noise such as 196642.30000000002 for a sheet to show
    assert [len(repr(v).partition(".")[2]) <= 2 for v in got.values()] == [True] * len(got)
    p = doc["provenance"]
    assert p["sql"] == want.sql and p["catalog_entries"] == list(want.catalog_entries)
    assert p["data_version"] == want.version and p["cache_level"] and p["as_of"]
    assert p["where"] == {"channel": ["Web"]}


def test_a_viewer_token_sees_a_sensitive_kpi_masked(api):
    start, end = _window()
    params = {"kpi": "revenue", "grain": "day", "start": start, "end": end}
    shown = api("api-exec").get("/api/query", params=params).json()
    hidden = api("api-viewer").get("/api/query", params=params).json()
    assert not shown["masked"] and any(row["value"] for row in shown["rows"])
    assert hidden["masked"] and len(hidden["rows"]) == len(shown["rows"])
    assert all(row["value"] is None for row in hidden["rows"])
    ranked = api("api-viewer").get("/api/query", params={**params, "by": "region", "top": 2})
    assert ranked.status_code == 403 and ranked.json()["invalid-params"][0]["name"] == "top"


def test_a_scoped_token_reads_its_own_rows_only(api):
    start, end = _window()
    doc = (
        api("api-europe")
        .get(
            "/api/query",
            params={"kpi": "orders", "grain": "total", "start": start, "end": end, "by": "region"},
        )
        .json()
    )
    assert [row["dims"]["region"] for row in doc["rows"]] == ["Europe"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"kpi": "revenue", "grain": "fortnight"}, "grain"),
        ({"kpi": "revenue", "start": "yesterday-ish"}, "start"),
        ({"kpi": "revenue", "where": "planet=Mars"}, "where"),
        ({"kpi": "revenue", "where": "no-equals"}, "where"),
        ({"kpi": "revenue", "by": "planet"}, "by"),
        ({"kpi": "no_such_kpi"}, "kpi"),
        ({"kpi": "revenue", "top": "-1", "by": "region"}, "top"),
        ({"kpi": "revenue", "start": "2025-02-01", "end": "2025-01-01"}, "start"),
        ({"kpi": "revenue", "grain": "hour", "start": "1900-01-01", "end": "2100-01-01"}, "start"),
        ({}, "kpi"),
    ],
)
def test_bad_parameters_are_4xx_problems_naming_the_parameter(api, params, param):
    r = api().get("/api/query", params=params)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["Content-Type"].startswith(PROBLEM)
    doc = r.json()
    assert doc["status"] == r.status_code and doc["detail"]
    assert param in [p["name"] for p in doc["invalid-params"]]


def test_no_token_or_a_revoked_one_is_401(api, server):
    assert api(None).get("/api/kpis").status_code == 401
    token = tokens.add("api-exec", "short-lived")
    client = api(token=token)
    assert client.get("/api/kpis").status_code == 200
    assert [t.last_used_at is not None for t in tokens.listing("api-exec") if t.name == "short-lived"] == [
        True
    ]
    tokens.revoke("api-exec", "short-lived")
    time.sleep(tokens.CHECK_EVERY_S + 0.1)  # the front door re-reads a token at most this often
    r = client.get("/api/kpis")
    assert r.status_code == 401 and r.headers["Content-Type"].startswith(PROBLEM)
    assert "revoked" in r.json()["detail"]


def test_the_api_refuses_requests_that_bypass_the_front_door(server):
    import json
    import os
    import pathlib
    import urllib.error
    import urllib.request

    state = json.loads((pathlib.Path(os.environ["KPI_HOME"]) / "serve.json").read_text())
    req = urllib.request.Request(
        f"http://127.0.0.1:{state['api_port']}/api/kpis",
        headers={"X-KPI-User": "api-exec", "X-KPI-Proxy": "guess"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401


def test_version_and_status(api):
    v = api().get("/api/version", params={"as_of": "2024-06-01T12:00"}).json()
    assert v["as_of"].startswith("2024-06-01T12:00") and v["as_of_source"] == "explicit"
    assert v["data_version"] == kpis.sync_versions()
    s = api().get("/api/status").json()
    assert s["warehouse_running"] and s["tables"] is None  # row counts are for administrators
    assert s["data_version"] >= v["data_version"]


def test_ask_answers_with_its_sql_and_masks_for_viewers(api):
    start, end = _window()
    q = {"q": f"revenue from {start} to {end}"}
    shown = api("api-exec").post("/api/ask", json=q).json()
    hidden = api("api-viewer").post("/api/ask", json=q).json()
    assert shown["status"] == "answer" and shown["value"] and shown["sql"]
    assert hidden["masked"] and hidden["value"] is None


def _incident(db, kpi: str, region: str = "Europe") -> int:
    return db.execute(
        "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, value, expected,"
        " deviation_pct, severity, explanation) values (%s, %s, 'hour', 'region', %s, %s, 10, 100, -0.9,"
        " 'high', %s) returning id",
        [
            f"{kpi}|hour|region={region}|api-test-{time.monotonic_ns()}",
            kpi,
            region,
            "2019-03-05T10:00:00Z",
            EXPLAINED,
        ],
    ).fetchone()[0]


def test_incidents_listed_masked_acknowledged_and_resolved_with_comments(api, db):
    iid = _incident(db, "revenue", "Asia Pacific")
    try:
        seen = {i["id"]: i for i in api("api-exec").get("/api/incidents").json()}
        assert seen[iid]["value"] == 10 and not seen[iid]["masked"]
        masked = {i["id"]: i for i in api("api-viewer").get("/api/incidents").json()}[iid]
        assert masked["masked"] and masked["value"] is None and "90%" not in masked["explanation"]
        assert iid not in {i["id"] for i in api("api-europe").get("/api/incidents").json()}  # not their rows
        assert api("api-europe").post(f"/api/incidents/{iid}/acknowledge", json={}).status_code == 404
        assert api("api-viewer").post(f"/api/incidents/{iid}/acknowledge", json={}).status_code == 403
        r = api("api-exec").post(f"/api/incidents/{iid}/acknowledge", json={"comment": "looking into it"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_by"] == "api-exec"
        r = api("api-exec").post(f"/api/incidents/{iid}/resolve", json={"comment": "feed fixed"})
        assert r.json()["status"] == "resolved" and r.json()["comment"] == "feed fixed"
        trail = db.execute(
            "select actor, action, comment from ops.anomaly_events where anomaly_id = %s order by id", [iid]
        ).fetchall()
        assert trail == [
            ("api-exec", "acknowledge", "looking into it"),
            ("api-exec", "resolve", "feed fixed"),
        ]
    finally:
        db.execute("update ops.anomalies set status = 'resolved' where id = %s", [iid])


def test_a_listing_says_which_incidents_are_one_event_and_a_masked_kpi_joins_none(api, db):
    """A program reading /api/incidents after a week's outage got 24 unrelated-looking rows."""
    orders, revenue = (_incident(db, k, "Latin America") for k in ("orders", "revenue"))
    db.execute(
        "update ops.anomalies set started_at = '2019-03-07T10:00:00Z' where id = any(%s)", [[orders, revenue]]
    )
    try:
        seen = {i["id"]: i for i in api("api-exec").get("/api/incidents", params={"limit": 1000}).json()}
        lead = seen[orders]["event"]
        assert lead in (orders, revenue) and seen[revenue]["event"] == lead
        masked = {i["id"]: i for i in api("api-viewer").get("/api/incidents", params={"limit": 1000}).json()}
        assert masked[revenue]["masked"] and masked[revenue]["event"] is None  # its direction is a value
        assert masked[orders]["event"] is None  # alone, without the masked one
        assert api("api-exec").get(f"/api/incidents/{orders}").json()["event"] is None
    finally:
        db.execute("update ops.anomalies set status = 'resolved' where id = any(%s)", [[orders, revenue]])


def test_every_read_is_audited_with_the_token_name(api):
    start, end = _window()
    api("api-exec").get("/api/query", params={"kpi": "units", "grain": "total", "start": start, "end": end})
    deadline = time.monotonic() + 10  # written just after the answer is sent
    while time.monotonic() < deadline:
        rows = auth.search_audit(actor="api-exec", action="api query", target="units", limit=5)
        if len(rows):
            break
        time.sleep(0.1)
    assert len(rows) and rows.iloc[0]["details"]["via"] == "token:tests"


def test_the_token_command_prints_the_token_once(server):
    import os
    import subprocess
    import sys
    from pathlib import Path

    kpi = str(Path(sys.executable).with_name("kpi"))
    made = subprocess.run(
        [kpi, "users", "token", "add", "api-exec", "--name", "cli-bot"],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("kpi_") and tokens.check(secret).login == "api-exec"
    listed = subprocess.run([kpi, "users", "token", "list", "api-exec"], capture_output=True, text=True)
    assert "cli-bot" in listed.stdout and secret not in listed.stdout
    gone = subprocess.run(
        [kpi, "users", "token", "revoke", "api-exec", "--name", "cli-bot"], capture_output=True, text=True
    )
    assert gone.returncode == 0
    tokens._memo.clear()
    assert tokens.check(secret) is None


def test_the_docs_page_loads_nothing_from_another_site(api):
    page = api().get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text.replace("https://fastapi", "")
    assert api().get("/api/docs/static/swagger-ui-bundle.js").status_code == 200
    doc = api().get("/api/openapi.json").json()
    assert doc["info"]["title"] == "KPI Suite API" and "/api/query" in doc["paths"]


def test_each_token_has_its_own_rate_limit():
    from kpi_lib.web.api_proxy import ApiLimiter

    async def check() -> None:
        limiter = ApiLimiter("3/minute")
        assert [await limiter.hit("token:1") for _ in range(4)] == [True, True, True, False]
        assert await limiter.hit("token:2")  # another token is not slowed down
        assert 1 <= await limiter.retry_after("token:1") <= 60

    run_coroutine(check)


def test_one_limit_per_token_across_every_api_route(api_tokens):
    """The light /api/query route and the rest of /api/ count against the same limit: a token's
    fourth call in the minute is refused with 429 and Retry-After, whichever route it asks."""
    import tornado.httpserver

    from kpi_lib import serve
    from kpi_lib.web import api_proxy

    port, closed = free_port(), free_port()  # the API back end is down: allowed calls get 502

    def start() -> None:
        app = serve.make_app(
            "http://127.0.0.1:9", "http://127.0.0.1:9", "s", port, api_url=f"http://127.0.0.1:{closed}"
        )
        api_proxy.LIMITER = api_proxy.ApiLimiter("3/minute")
        tornado.httpserver.HTTPServer(app).listen(port, "127.0.0.1")

    with serving(start):
        try:
            base = f"http://127.0.0.1:{port}"
            exec_ = {"Authorization": f"Bearer {api_tokens['api-exec']}"}
            codes = [
                requests.get(base + path, headers=exec_, params={"kpi": "revenue"}, timeout=30).status_code
                for path in ("/api/query", "/api/kpis", "/api/query")
            ]
            assert codes == [502, 502, 502]
            for path in ("/api/query", "/api/kpis"):
                refused = requests.get(base + path, headers=exec_, params={"kpi": "revenue"}, timeout=30)
                assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
                assert (
                    1 <= int(refused.headers["Retry-After"]) <= 60
                    and "KPI_API_RATE" in refused.json()["detail"]
                )
            # another token is not slowed down
            other = {"Authorization": f"Bearer {api_tokens['api-viewer']}"}
            answer = requests.get(base + "/api/query", headers=other, params={"kpi": "orders"}, timeout=30)
            assert answer.status_code == 502
        finally:
            api_proxy.LIMITER = api_proxy._SESSION = None


def test_a_removed_users_token_stops_working(api):
    auth.set_user("api-gone", PASSWORD_FOR_REMOVAL, ["executive"])
    token = tokens.add("api-gone", "tests")
    client = api(token=token)
    assert client.get("/api/me").json()["login"] == "api-gone"
    auth.remove_user("api-gone")
    time.sleep(1.1)  # the front door re-reads users.yml at most once a second
    assert client.get("/api/me").status_code == 401


def _order_on(day: str, region: str) -> dict:
    """One order of 100.00 revenue on ``day`` (a day only the kept-answer test writes to)."""
    oid = f"KEPT{__import__('uuid').uuid4().hex[:10]}"
    line = {"product_id": "P1001", "product_name": "Test Widget", "category": "Electronics", "quantity": 2}
    line |= {"unit_price": 50.0, "discount": 0.0, "unit_cost": 20.0}
    return {
        "event_id": f"ev-{oid}",
        "order_id": oid,
        "ordered_at": f"{day}T12:00:00",
        "customer_id": "C900001",
        "region": region,
        "channel": "Web",
        "lines": [line],
    }


def test_a_kept_answer_is_per_reader_per_version_and_still_audited(api):
    """The second ask of a question is answered from kept bytes, but never another reader's (masking,
    row scope) nor an older data version's, and each ask has its own audit row."""
    from kpi_lib import stream

    day = "2019-04-09"
    stream.ingest([_order_on(day, "Europe"), _order_on(day, "Asia Pacific")], "api-test")
    params = {"kpi": "revenue", "grain": "total", "by": "region", "as_of": f"{day}T23:00"}
    params |= {"start": day, "end": "2019-04-10"}

    def audited() -> int:
        return len(auth.search_audit(actor="api-exec", action="api query", target="revenue", limit=10_000))

    before = audited()
    first = api("api-exec").get("/api/query", params=params)
    again = api("api-exec").get("/api/query", params=params)
    assert again.headers["x-kpi-answer"] == "kept" and again.content == first.content
    polled = api("api-exec").get(
        "/api/query", params=params, headers={"If-None-Match": again.headers["etag"]}
    )
    assert polled.status_code == 304 and not polled.content  # a program polling gets "not modified"
    assert "x-kpi-audit" not in again.headers and "x-kpi-audit" not in first.headers  # internal
    old = {row["dims"]["region"]: row["value"] for row in first.json()["rows"]}
    assert {"Europe", "Asia Pacific"} <= set(old)
    masked = api("api-viewer").get("/api/query", params=params).json()
    assert masked["masked"] and all(row["value"] is None for row in masked["rows"])
    kept_masked = api("api-viewer").get("/api/query", params=params)  # the front door's kept copy
    assert kept_masked.headers["x-kpi-answer"] == "kept" and kept_masked.json() == masked
    europe = api("api-europe").get("/api/query", params=params).json()
    assert {row["dims"]["region"] for row in europe["rows"]} == {"Europe"}
    res = stream.ingest([_order_on(day, "Europe")], "api-test")  # a new version: the kept answer is old
    fresh = api("api-exec").get("/api/query", params=params)
    assert fresh.headers["x-kpi-answer"] == "fresh"
    assert fresh.json()["provenance"]["data_version"] >= res.version
    value = {row["dims"]["region"]: row["value"] for row in fresh.json()["rows"]}
    assert value["Europe"] == pytest.approx(old["Europe"] + 100)
    deadline = time.monotonic() + 10  # audit rows are written just after the answers are sent
    while audited() < before + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert audited() >= before + 3  # the kept answer was audited like the fresh ones
    rows = auth.search_audit(actor="api-exec", action="api query", target="revenue", limit=10_000)
    kept_rows = [
        d for d in rows["details"] if d.get("cache_level") == "answer" and str(d.get("start")).startswith(day)
    ]
    assert kept_rows, "the kept answer's audit row says so"
    assert {d["via"] for d in kept_rows} == {"token:tests"}
    assert all(d["by"] == ["region"] and d["grain"] == "total" for d in kept_rows)
