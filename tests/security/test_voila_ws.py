"""Finding 4: one websocket message must not hang Voila, and one user must not hold every kernel.

Through the real front door: kernel channels only in the framing a real page uses, malformed frames
dropped (the socket closed), another user's kernel refused, and a cap on kernels per user. The real
page, in Chromium, still works through the same checks."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
from jupyter_server.services.kernels.connection.base import serialize_binary_message

from kpi_lib import auth

from .conftest import PASSWORD, serve_state, ws_connect

V1 = "v1.kernel.websocket.jupyter.org"


def _render(client) -> tuple[int, str | None]:
    r = client.get("/voila/voila/render/revenue_explorer.ipynb", timeout=180)
    m = re.search(r'"kernelId"\s*:\s*"([0-9a-f-]{36})"', r.text)
    return r.status_code, m.group(1) if m else None


def _channels(server: str, client, kernel: str, protocols, messages=()):
    url = server.replace("http", "ws", 1) + f"/voila/api/kernels/{kernel}/channels"
    headers = {"Cookie": f"{auth.COOKIE}={client.session_cookie}", "Origin": server}
    return ws_connect(url, headers, protocols, messages)


def _legacy(msg_type: str, content: dict) -> bytes:
    """A message in the legacy binary framing, which Voila misread as the v1 one."""
    return serialize_binary_message(
        {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": msg_type,
                "session": "x",
                "username": "x",
                "version": "5.3",
                "date": "2026-01-01T00:00:00Z",
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }
    )


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def test_malformed_kernel_frames_are_dropped_and_voila_keeps_answering(server, client):
    ana = client("sec-analyst")
    status, kernel = _render(ana)
    assert status == 200 and kernel
    # no subprotocol (the legacy framing): refused before it reaches Voila
    assert _channels(server, ana, kernel, None)[0] == 403
    voila_pid = serve_state()["children"]["voila"]
    before = _rss_mb(voila_pid)
    comm = str(uuid.uuid4())
    attack = [
        _legacy("comm_open", {"comm_id": comm, "target_name": "jupyter.widget.control", "data": {}}),
        _legacy("comm_msg", {"comm_id": comm, "data": {"method": "request_states"}}),
    ]
    status, got = _channels(server, ana, kernel, [V1], attack)
    assert status == 101
    assert got and got[-1][0] == "closed" and got[-1][1] == 1008  # closed by the front door
    t0 = time.monotonic()
    assert ana.get("/voila/", timeout=10).status_code == 200
    assert time.monotonic() - t0 < 5
    time.sleep(3)
    assert _rss_mb(voila_pid) - before < 50, "Voila's memory grew after the malformed frames"


def test_an_execute_request_never_reaches_a_kernel(server, client):
    """Even well framed: a page never sends code, so neither may anyone else."""
    from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

    ana = client("sec-analyst")
    _, kernel = _render(ana)
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "session": "x",
        "username": "x",
        "version": "5.3",
        "date": "2026-01-01T00:00:00Z",
    }
    parts = [json.dumps(p).encode() for p in (header, {}, {}, {"code": "import os; os.system('id')"})]
    status, got = _channels(server, ana, kernel, [V1], [serialize_msg_to_ws_v1(parts, "shell")])
    assert status == 101 and got[-1] == ("closed", 1008)


def test_another_users_kernel_is_refused(server, client):
    owner, other = client("sec-exec"), client("sec-viewer")
    _, kernel = _render(owner)
    assert _channels(server, other, kernel, [V1])[0] == 403


def test_one_user_may_hold_only_so_many_kernels(server, client):
    """The test server allows 2 (KPI_KERNELS_PER_USER): a third dashboard waits for one to close."""
    auth.set_user("sec-greedy", PASSWORD, ["analyst"])
    greedy = client("sec-greedy")
    assert _render(greedy)[0] == 200
    assert _render(greedy)[0] == 200
    status, kernel = _render(greedy)
    assert status == 429 and kernel is None
    assert "Too many dashboards open" in greedy.get("/voila/voila/render/revenue_explorer.ipynb").text
    assert _render(client("sec-admin"))[0] == 200  # everyone else is unaffected


@pytest.mark.ui
def test_the_real_page_works_through_the_checks(context, server, users):
    page = context.new_page()
    page.goto(f"{server}/login?next=/voila/voila/render/revenue_explorer.ipynb")
    page.fill("input[name=user]", "sec-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.locator(".kpi-table").first.wait_for(timeout=180_000)
    page.locator('.kpi-status[data-state="ready"]').wait_for(timeout=180_000)
    assert page.locator(".kpi-table tbody tr").count() > 0
