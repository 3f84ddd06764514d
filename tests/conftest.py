"""Shared fixtures: one real embedded PostgreSQL per test session, with a small demo business in it.

Nothing is mocked. The warehouse lives in a temporary KPI_HOME, so tests never touch ./var, and the
machine's own Postgres/Redis are used only by tests marked ``external`` (bring-your-own-server).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Settings are read from the environment: isolate the session before kpi_lib reads them.
_HOME = Path(tempfile.mkdtemp(prefix="kpi_test_"))
_HOME.chmod(0o755)  # the embedded server runs as its own system user and must reach its folder
os.environ["KPI_HOME"] = str(_HOME)
for var in ("DATABASE_URL", "REDIS_URL", "KPI_TIMEZONE", "KPI_CATALOG"):
    os.environ.pop(var, None)

DEMO = {"lines": 60_000, "days": 120, "seed": 11}


@pytest.fixture(scope="session")
def demo():
    """The session's warehouse with the demo loaded (its DemoSummary); stopped at the end."""
    from kpi_lib import config
    from kpi_lib import warehouse as wh
    from kpi_lib.demo import load_demo

    config.reset()
    wh.init()
    summary = load_demo(**DEMO)
    yield summary
    from kpi_lib import stream

    stream._hub.stop()  # no reconnect attempts against a server we are about to stop
    wh.dispose()
    wh.stop()


@pytest.fixture()
def db(demo):
    """A psycopg connection to the session warehouse (autocommit)."""
    from kpi_lib import warehouse as wh

    with wh.connect_raw(autocommit=True) as conn:
        yield conn


def silver_frame():
    """Orders joined with lines, straight from silver, for independent pandas computations."""
    import pandas as pd

    from kpi_lib import warehouse as wh

    with wh.connect_raw() as conn:
        cur = conn.execute(
            "select o.order_id, o.ordered_at, o.customer_id, o.region, o.channel, l.category, l.product_name,"
            " l.quantity::float8, l.unit_price::float8, l.discount::float8, l.unit_cost::float8"
            " from silver.orders o join silver.order_lines l using (order_id)"
        )
        df = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    df["ordered_at"] = pd.to_datetime(df["ordered_at"], utc=True)
    return df
