"""Critical findings 1 and 2: nobody reaches a dashboard except through the front door, as themselves.

Reproduces the review's attacks against a real `kpi serve`: a forged Panel session token naming the
admin, a genuine token of another user, and requests straight to the Panel and Voila ports."""

from __future__ import annotations

import re

import requests
from bokeh.util.token import generate_jwt_token, generate_session_id

from kpi_lib import auth

from .conftest import serve_state, ws_connect


def _page_token(client) -> str:
    html = client.get("/panel/executive").text
    return re.search(r'"token":\s*"([^"]+)"', html).group(1)


def _open_session(server: str, client, token: str):
    ws = server.replace("http", "ws", 1) + "/panel/executive/ws"
    headers = {"Cookie": f"{auth.COOKIE}={client.session_cookie}", "Origin": server}
    return ws_connect(ws, headers, ["bokeh", token])


def test_a_users_own_session_token_opens_their_session(server, client):
    viewer = client("sec-viewer")
    status, messages = _open_session(server, viewer, _page_token(viewer))
    assert status == 101 and messages, "the dashboard session did not open for its own user"


def test_a_forged_token_naming_the_admin_is_refused(server, client):
    viewer = client("sec-viewer")
    forged = generate_jwt_token(
        generate_session_id(), signed=False, extra_payload={"headers": {auth.HEADER: "sec-admin"}}
    )
    status, _ = _open_session(server, viewer, forged)
    assert status == 403


def test_a_token_without_a_user_is_refused(server, client):
    viewer = client("sec-viewer")
    anonymous = generate_jwt_token(generate_session_id(), signed=False, extra_payload={"headers": {}})
    status, _ = _open_session(server, viewer, anonymous)
    assert status == 403


def test_another_users_genuine_token_is_refused(server, client):
    admin, viewer = client("sec-admin"), client("sec-viewer")
    status, _ = _open_session(server, viewer, _page_token(admin))
    assert status == 403


def test_the_page_carries_no_session_cookie_and_no_secret(server, client):
    """A page script can read the session token (it is in the HTML); the cookie must not be in it."""
    viewer = client("sec-viewer")
    html = viewer.get("/panel/executive").text
    token = re.search(r'"token":\s*"([^"]+)"', html).group(1)
    from bokeh.util.token import get_token_payload

    payload = get_token_payload(token)
    assert viewer.session_cookie not in html and viewer.session_cookie not in str(payload)
    assert auth.PROXY_HEADER.lower() not in {k.lower() for k in payload.get("headers", {})}
    assert auth.COOKIE not in payload.get("cookies", {})


def test_panel_answers_nobody_who_skips_the_front_door(server):
    port = serve_state()["panel_port"]
    r = requests.get(
        f"http://127.0.0.1:{port}/panel/executive", headers={auth.HEADER: "sec-admin"}, allow_redirects=False
    )
    assert r.status_code in (302, 401, 403) and "kpi-first-paint" not in r.text
    forged = generate_jwt_token(
        generate_session_id(), signed=False, extra_payload={"headers": {auth.HEADER: "sec-admin"}}
    )
    status, _ = ws_connect(
        f"ws://127.0.0.1:{port}/panel/executive/ws",
        {auth.HEADER: "sec-admin", "Origin": f"http://127.0.0.1:{port}"},
        ["bokeh", forged],
    )
    assert status != 101


def test_voila_answers_nobody_who_skips_the_front_door(server):
    port = serve_state()["voila_port"]
    as_admin = {auth.HEADER: "sec-admin"}
    for path in ("/voila/voila/render/anomaly_review.ipynb", "/voila/"):
        r = requests.get(f"http://127.0.0.1:{port}{path}", headers=as_admin, allow_redirects=False)
        assert r.status_code in (302, 403) and "kpi" not in r.text.lower(), (path, r.status_code)
    # a kernel's websocket (where acknowledging happens) is refused too
    status, _ = ws_connect(
        f"ws://127.0.0.1:{port}/voila/api/kernels/{'0' * 8}-0000-0000-0000-{'0' * 12}/channels",
        as_admin,
        ["v1.kernel.websocket.jupyter.org"],
    )
    assert status == 403


def test_the_front_door_answers_only_its_own_host_names(server, client):
    admin = client("sec-admin")
    assert admin.get("/").status_code == 200
    rebound = admin.get("/", headers={"Host": "attacker.example:80"})
    assert rebound.status_code == 421
    assert admin.get("/panel/executive", headers={"Host": "attacker.example"}).status_code == 421


def _page_key(client) -> str:
    """The one-time key of a freshly asked page (web/page_shell.py); its session is built by now."""
    html = client.get("/panel/executive").text
    return re.search(r'data-early="([^"]+)"', html).group(1)


def test_a_pages_early_key_opens_its_own_session_once(server, client):
    """The key a page's shell carries stands in for its session token, for its own user and once."""
    viewer = client("sec-viewer")
    key = _page_key(viewer)
    status, messages = _open_session(server, viewer, "kpi-early." + key)
    assert status == 101 and messages and '"ACK"' in messages[0], messages
    again, _ = _open_session(server, viewer, "kpi-early." + key)
    assert again == 403


def test_another_users_early_key_is_refused(server, client):
    admin, viewer = client("sec-admin"), client("sec-viewer")
    status, _ = _open_session(server, viewer, "kpi-early." + _page_key(admin))
    assert status == 403
    unknown, _ = _open_session(server, viewer, "kpi-early.no-such-key")
    assert unknown == 403


def test_the_shell_sent_before_the_session_is_the_same_for_everyone(server, client):
    """The front door sends a page's first part before the worker has built the session, from an
    earlier page, maybe another user's: it must hold nothing of anyone's (no token, no number, no
    name), only the scripts, as the first chunk of the response."""
    import socket
    from urllib.parse import urlparse

    def first_chunk(who) -> bytes:
        who.get("/panel/executive")  # the front door has seen this page (its shell is known)
        host = urlparse(server)
        with socket.create_connection((host.hostname, host.port), timeout=60) as sock:
            sock.sendall(
                f"GET /panel/executive HTTP/1.1\r\nHost: {host.netloc}\r\n"
                f"Cookie: {auth.COOKIE}={who.session_cookie}\r\nConnection: close\r\n\r\n".encode()
            )
            stream = sock.makefile("rb")
            head = b"".join(iter(stream.readline, b"\r\n")).lower()
            assert head.startswith(b"http/1.1 200") and b"transfer-encoding: chunked" in head, head
            chunk = stream.read(
                int(stream.readline().strip(), 16)
            )  # what was flushed before the worker answered
            rest = stream.read()
        assert re.search(rb'"token":"[^"]+"', rest) and b"data-kpi-value" in rest
        return chunk

    admin, viewer = first_chunk(client("sec-admin")), first_chunk(client("sec-viewer"))
    for shell in (admin, viewer):
        assert shell.endswith(b"<!--kpi-shell-->") and b"bokeh.min.js" in shell and b"panel.min.js" in shell
        assert b'"token"' not in shell and b"data-kpi-value" not in shell and b"Security" not in shell
    key = re.compile(rb'data-early="[^"]+"')
    assert key.sub(b"", admin) == key.sub(b"", viewer)
    assert key.search(admin).group(0) != key.search(viewer).group(0)
