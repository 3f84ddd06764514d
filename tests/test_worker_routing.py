"""The front door's choice of dashboard worker (kpi_lib/web/workers.py), against real sockets."""

from __future__ import annotations

import socket

from conftest import free_port
from pgnode import wait_for

from kpi_lib.web.workers import Workers


def test_a_failed_worker_gets_no_sessions_until_it_accepts_connections_again():
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    workers = Workers(urls)
    sessions = [f"session-{i}" for i in range(40)]
    home = {s: workers.pick(s) for s in sessions}
    assert set(home.values()) == set(urls)  # spread over both
    assert all(workers.pick(s) == home[s] for s in sessions)  # and sticky

    workers.failed(urls[0])  # nothing listens on it
    # a dead worker stays out however long it is down (a retry after 5 s sent pages to it): probes
    # find nothing there, so no page is sent to it
    assert not wait_for(lambda: urls[0] in {workers.pick(s) for s in sessions}, timeout=6)
    assert all(workers.pick(s) == home[s] for s in sessions if home[s] == urls[1])  # others stay put

    with socket.create_server(("127.0.0.1", ports[0])):  # the worker is back
        assert wait_for(lambda: {workers.pick(s) for s in sessions} == set(urls), timeout=10)
    assert all(workers.pick(s) == home[s] for s in sessions)  # its sessions come home


def test_one_worker_is_always_picked():
    workers = Workers(["http://127.0.0.1:9"])
    workers.failed("http://127.0.0.1:9")
    assert workers.pick("any") == "http://127.0.0.1:9"
