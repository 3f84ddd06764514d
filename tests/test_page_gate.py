"""The front door's page gate (kpi_lib.web.page_gate): a Panel worker gets one page request at a
time, and pages already sent get their documents before the next page is built."""

from __future__ import annotations

import asyncio

from conftest import run_coroutine

from kpi_lib.web import page_gate


async def _build(gate: page_gate.PageGate, name: str, log: list[str], work: asyncio.Event | None = None):
    async with gate.build():
        log.append(f"{name} starts")
        if work is not None:
            await work.wait()
        log.append(f"{name} done")


def test_pages_are_built_one_at_a_time_in_the_order_asked():
    async def run():
        gate, log = page_gate.PageGate(), []
        first_work = asyncio.Event()
        tasks = [asyncio.create_task(_build(gate, "page 1", log, first_work))]
        tasks += [asyncio.create_task(_build(gate, f"page {i}", log)) for i in (2, 3)]
        await asyncio.sleep(0)
        assert log == ["page 1 starts"]  # the others wait for the worker's one build
        first_work.set()
        await asyncio.gather(*tasks)
        return log

    log = run_coroutine(run)
    assert log == [
        "page 1 starts",
        "page 1 done",
        "page 2 starts",
        "page 2 done",
        "page 3 starts",
        "page 3 done",
    ]


def test_the_next_build_waits_for_an_opening_page_to_get_its_document():
    async def run():
        gate, log = page_gate.PageGate(), []
        ticket = gate.opening()  # page 1's websocket is opening
        waiting = asyncio.create_task(_build(gate, "page 2", log))
        for _ in range(5):
            await asyncio.sleep(0)
        assert log == []  # held: page 1's handshake and document go first
        log.append("page 1 has its document")
        gate.opened(ticket)
        await waiting
        return log

    assert run_coroutine(run) == ["page 1 has its document", "page 2 starts", "page 2 done"]


def test_a_page_that_never_gets_its_document_holds_the_others_only_briefly(monkeypatch):
    monkeypatch.setattr(page_gate, "HOLD_S", 0.05)

    async def run():
        gate, log = page_gate.PageGate(), []
        gate.opening()  # a page whose browser never connects, never released
        await _build(gate, "page 2", log)
        await _build(gate, "page 3", log)
        return log

    assert run_coroutine(run) == ["page 2 starts", "page 2 done", "page 3 starts", "page 3 done"]


def test_each_worker_has_its_own_gate():
    assert page_gate.gate("http://127.0.0.1:1") is page_gate.gate("http://127.0.0.1:1")
    assert page_gate.gate("http://127.0.0.1:1") is not page_gate.gate("http://127.0.0.1:2")
