"""RabbitMQ restarted mid-stream: the consumer reconnects and every message lands exactly once.

A private RabbitMQ node (its own node name, ports and data folder) is restarted while
``stream.consume_amqp`` drains a queue into a private warehouse; the machine's broker is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import free_port
from pgnode import wait_for

from kpi_lib import config, stream

pytestmark = pytest.mark.slow
AT = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)  # pinned event times


class PortTaken(RuntimeError):
    """Another process bound the node's port between our pick and the node's start."""


class PrivateRabbit:
    """A RabbitMQ node of our own; ``stop``/``start`` keep its data (durable queues, persistent messages)."""

    def __init__(self) -> None:
        if shutil.which("rabbitmq-server") is None:
            pytest.skip("rabbitmq-server is not installed")
        self.port, self.dist = free_port(), free_port()
        self.root = Path(tempfile.mkdtemp(prefix="kpi_rabbit_"))
        self.root.chmod(0o755)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(f"listeners.tcp.default = {self.port}\n")
        for d in ("mnesia", "log"):
            (self.root / d).mkdir()
        if os.geteuid() == 0:  # the server drops to the rabbitmq user, which must own its folder
            subprocess.run(["chown", "-R", "rabbitmq", str(self.root)], check=True)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": f"kpitest{os.getpid()}x{self.port}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.root / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.root / "plugins"),
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        (self.root / "pid").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["rabbitmq-server"],
            env=self.env,
            cwd=self.root,
            stdout=open(self.root / "out.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # a node that exits (a port taken) is not waited on for the whole timeout
        wait_for(lambda: self.proc.poll() is not None or self.up(), timeout=40, every=0.25)
        if not self.up():
            tail = (self.root / "out.log").read_text()[-1500:]
            if "dist_port_already_used" in tail:  # only the node's own cluster port: pick another
                self.dist = free_port()
                self.env["RABBITMQ_DIST_PORT"] = str(self.dist)
                raise PortTaken(tail)
            if "eaddrinuse" in tail:  # the free port was taken before the node bound it
                raise PortTaken(tail)
            pytest.fail(f"the private RabbitMQ did not start:\n{tail}")

    def restart(self, attempts: int = 5) -> None:
        """Start again on the same port (the consumer's URL names it). A client reconnecting to a
        port in the ephemeral range while nothing listens can hold it for a moment (a TCP
        self-connect), so a taken port is waited out, not a failure of the broker."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                if self.proc is not None and self.proc.poll() is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                time.sleep(2)

    def up(self) -> bool:
        import pika

        try:
            pika.BlockingConnection(pika.URLParameters(self.url + "?connection_attempts=1")).close()
            return True
        except pika.exceptions.AMQPError:
            return False

    def stop(self) -> None:
        pid = int((self.root / "pid").read_text().strip())
        os.kill(pid, signal.SIGTERM)  # a clean shutdown: persistent messages are on disk
        assert wait_for(lambda: not _alive(pid), timeout=30, every=0.2), "RabbitMQ did not stop"
        self.proc.wait(10)

    def remove(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except Exception:  # noqa: BLE001 - last resort: our own process group only
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def publish(url: str, queue: str, events: list[dict]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    props = pika.BasicProperties(delivery_mode=2)  # persistent: survives the broker's restart
    for ev in events:
        ch.basic_publish("", queue, json.dumps(ev).encode(), props)
    conn.close()


def events(tag: str, start: int, n: int) -> list[dict]:
    return [
        {
            "event_id": f"mq-{tag}-{i}",
            "order_id": f"MQ{tag}{i}",
            "ordered_at": (AT + timedelta(milliseconds=i)).isoformat(),
            "customer_id": f"CM{i % 97}",
            "region": f"Mq-{tag}",
            "channel": "Web",
            "lines": [{"product_id": "P1", "category": "Books", "quantity": 1, "unit_price": 5.0}],
        }
        for i in range(start, start + n)
    ]


@pytest.fixture()
def rabbit():
    for attempt in range(3):  # a port taken in the meantime: other ports (a full suite's flake)
        node = PrivateRabbit()
        try:
            node.start()
            break
        except PortTaken as exc:
            node.remove()
            if attempt == 2:
                pytest.fail(f"the private RabbitMQ found its ports taken three times:\n{exc}")
    yield node
    node.remove()


def test_rabbitmq_restart_mid_stream_lands_every_message_once(private_db, rabbit, monkeypatch):
    monkeypatch.setenv("KPI_BATCH_MAX_EVENTS", "100")  # many small batches: a restart lands mid-stream
    config.reset()
    tag, queue = uuid.uuid4().hex[:8], "kpi.fault"
    first, second = 20_000, 2_000
    publish(rabbit.url, queue, events(tag, 0, first))

    def landed() -> int:
        return private_db.execute(
            "select count(*) from silver.orders where region = %s", [f"Mq-{tag}"]
        ).fetchone()[0]

    stop = threading.Event()
    result: list = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            result.append(stream.consume_amqp(rabbit.url, queue, stop=stop))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    try:
        assert wait_for(lambda: landed() > 500, timeout=30)
        rabbit.stop()
        at_restart = landed()
        assert at_restart < first, "the queue was drained before the restart: nothing was tested"
        rabbit.restart()
        publish(rabbit.url, queue, events(tag, first, second))  # and the stream goes on
        assert wait_for(lambda: landed() >= first + second, timeout=60), (landed(), errors)
    finally:
        stop.set()
        consumer.join(30)
        monkeypatch.undo()
        config.reset()
    assert not errors, errors
    n, distinct = private_db.execute(
        "select count(*), count(distinct order_id) from silver.orders where region = %s", [f"Mq-{tag}"]
    ).fetchone()
    assert n == distinct == first + second
    revenue = private_db.execute(
        "select sum(revenue) from gold.sales_hourly where region = %s", [f"Mq-{tag}"]
    ).fetchone()[0]
    assert revenue == pytest.approx(5.0 * (first + second))  # gold counted each order once
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(rabbit.url))
    left = conn.channel().queue_declare(queue=queue, durable=True, passive=True).method.message_count
    conn.close()
    assert left == 0, "messages were left unacknowledged"
