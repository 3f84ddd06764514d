"""The paced background worker behind view refreshes, live alert scans, live tiles and Voila refreshes.

Times here are lower bounds on the pace (a loaded machine only makes them longer) and generous
upper bounds on waits, so the tests hold on a busy CI box."""

from __future__ import annotations

import asyncio
import threading
import time

from kpi_lib.stream import Paced


def _until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_changes_during_a_run_fold_into_one_more_run():
    started, gate = threading.Event(), threading.Event()
    runs: list[float] = []

    def work():
        runs.append(time.monotonic())
        started.set()
        gate.wait(10)

    worker = Paced(work, name="t-fold")
    try:
        worker.poke()
        assert started.wait(10)
        for _ in range(5):  # five versions land while the first run is busy
            worker.poke()
        gate.set()
        assert _until(lambda: worker.runs == 2)
        time.sleep(0.3)
        assert worker.runs == 2  # ... and cost one more run, not five
    finally:
        worker.stop()


def test_a_slow_run_spaces_the_next_by_its_share_of_the_time():
    starts: list[float] = []

    def work():
        starts.append(time.monotonic())
        time.sleep(0.1)

    worker = Paced(work, name="t-share", share=0.25)  # 0.1 s of work: the next no sooner than 0.4 s on
    try:
        worker.poke()
        assert _until(lambda: worker.runs == 1)
        worker.poke()
        assert _until(lambda: worker.runs == 2)
        assert starts[1] - starts[0] >= 0.4
    finally:
        worker.stop()


def test_a_failing_run_does_not_stop_the_worker():
    calls: list[int] = []

    def work():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    worker = Paced(work, name="t-fail")
    try:
        worker.poke()
        assert _until(lambda: worker.runs == 1)
        worker.poke()
        assert _until(lambda: len(calls) == 2)
    finally:
        worker.stop()


def test_idle_runs_without_changes_and_an_outside_stop_ends_the_loop():
    stop = threading.Event()
    worker = Paced(lambda: None, name="t-idle", idle_s=0.1, stop=stop)
    loop = threading.Thread(target=worker.run)
    loop.start()
    assert _until(lambda: worker.runs >= 2)  # a quiet stream is still looked at
    stop.set()
    loop.join(5)
    assert not loop.is_alive()


def test_a_cancelled_run_waiting_for_its_turn_does_not_happen():
    worker = Paced(lambda: None, name="t-cancel", min_interval_s=0.5)
    try:
        worker.poke()
        assert _until(lambda: worker.runs == 1)
        worker.poke()  # waits for its turn (0.5 s after the first) ...
        worker.cancel()  # ... and the page went away meanwhile
        time.sleep(0.8)
        assert worker.runs == 1
    finally:
        worker.stop()


def test_work_runs_on_the_given_loop_not_on_the_worker_thread():
    threads: list[str] = []

    async def scenario():
        worker = Paced(lambda: threads.append(threading.current_thread().name), name="t-loop")
        worker.loop = asyncio.get_running_loop()
        worker.poke()
        for _ in range(500):
            if worker.runs:
                break
            await asyncio.sleep(0.01)
        worker.stop()

    runner = threading.Thread(target=lambda: asyncio.run(scenario()), name="the-kernel")
    runner.start()
    runner.join(10)
    assert threads == ["the-kernel"]
