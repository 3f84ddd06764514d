"""Helpers for the alert-rule tests (tests/test_thresholds.py, tests/ui/test_alert_rules.py): orders
for a region of a test's own on fixed days, a real SMTP sink, routing to a test's own address."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta

from kpi_lib import auth, config, mail, stream

DAY0 = datetime(2025, 3, 3)  # a Monday; the business time zone is UTC in tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_sink(monkeypatch, tmp_path):
    """A real aiosmtpd sink on a free port (use as ``sink = pytest.fixture(smtp_sink)``)."""
    port = free_port()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    config.reset()
    with mail.start_sink("127.0.0.1", port, tmp_path / "mail") as s:
        s.inbox = tmp_path / "mail"
        yield s
    config.reset()


def region() -> str:
    return f"Rules-{uuid.uuid4().hex[:8]}"


def orders(region: str, counts: dict[datetime, int], price: float = 20.0) -> None:
    """``counts[t]`` orders of ``price`` each at time ``t`` (spread over the following minutes)."""
    events = []
    for t, n in counts.items():
        for i in range(n):
            at = (t + timedelta(seconds=20 * i)).replace(tzinfo=UTC)
            oid = f"R{uuid.uuid4().hex[:12]}"
            events.append(
                {
                    "event_id": f"ev-{oid}",
                    "order_id": oid,
                    "ordered_at": at.isoformat(),
                    "customer_id": f"C{i % 40}",
                    "region": region,
                    "channel": "Web",
                    "lines": [
                        {"product_id": "P1001", "category": "Books", "quantity": 1, "unit_price": price}
                    ],
                }
            )
    stream.ingest(events, source="test-rules")


def daily(region: str, days: int, base: int, spikes: dict[int, int] | None = None) -> None:
    """``base`` orders a day at noon for ``days`` days from DAY0, with ``spikes[day] = orders``."""
    counts = {DAY0 + timedelta(days=d, hours=12): (spikes or {}).get(d, base) for d in range(days)}
    orders(region, counts)


def analyst(login: str = "rules-analyst") -> auth.User:
    auth.set_user(login, "analyst-password-1", ["analyst"], name="Rules Analyst")
    return auth.user(login)


def inbox_for(sink, to: str) -> list:
    return [m for m in mail.list_inbox(sink.inbox) if to in ", ".join(m.to)]


def routes_for(region: str, to: str) -> dict:
    return {
        "defaults": {"recipients": ["nobody@kpi.local"], "min_severity": "high"},
        "routes": [{"kpi": "*", "where": {"region": region}, "recipients": [to], "min_severity": "low"}],
    }


def aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC)
