"""Redis (the shared L2 cache) stopped and started under queries."""

from __future__ import annotations

import pytest
from pgnode import PrivateRedis, wait_for

from kpi_lib import cache, config, kpis

pytestmark = pytest.mark.slow
RANGE = {"start": "2000-01-01", "end": "2100-01-01"}


def ask() -> kpis.QueryResult:
    cache._l1.clear()  # as another worker would ask: L1 cannot answer
    return kpis.query("revenue", "month", **RANGE)


def test_redis_stopped_and_started_under_queries(demo, monkeypatch):
    server = PrivateRedis()
    server.start()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    monkeypatch.setattr(cache, "REDIS_RETRY_S", 0.5)
    config.reset()
    cache._redis_down_until = 0.0
    try:
        first = ask()
        assert first.cache_level != "L2" and server.keys() >= 1
        assert ask().cache_level == "L2"  # shared through Redis

        server.stop()
        down = ask()  # no error: the database answers, the same numbers
        assert down.cache_level in ("L3", "L4", "L3+L4")
        assert down.df["value"].tolist() == pytest.approx(first.df["value"].tolist())
        assert kpis.query("revenue", "month", **RANGE).cache_level == "L1"

        server.start()  # empty after the restart; used again once the retry pause is over
        again = wait_for(lambda: (ask(), server.keys())[1] >= 1, timeout=5, every=0.2)
        assert again, "the answer never went back into Redis"
        back = ask()
        assert back.cache_level == "L2"
        assert back.df["value"].tolist() == pytest.approx(first.df["value"].tolist())
    finally:
        if server.proc and server.proc.poll() is None:
            server.stop()
        monkeypatch.undo()
        config.reset()
        cache._redis_down_until = 0.0
