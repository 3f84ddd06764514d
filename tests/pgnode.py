"""Private servers for replica and fault tests: PostgreSQL (built from the embedded server's binaries)
and Redis.

A node listens on its own free TCP port with its data in a temporary folder: stopping or restarting
it never touches the session warehouse or the machine's shared PostgreSQL. As root, the servers run
as the embedded server's system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from kpi_lib import warehouse

# A test box: no fsync, small memory; WAL kept for replicas to stream.
SERVER_OPTS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
    "-c shared_buffers=64MB -c max_connections=60 -c wal_level=replica -c max_wal_senders=5 "
    "-c wal_keep_size=256MB -c jit=off"
)


def _user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("pgserver")
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", "pgserver"], check=True, capture_output=True)
    return "pgserver"


class PgNode:
    """One PostgreSQL server on 127.0.0.1:``port`` (``start``/``stop``/``restart``)."""

    def __init__(self, port: int, root: Path | None = None) -> None:
        self.port = port
        self.root = root or Path(tempfile.mkdtemp(prefix="kpi_pgnode_"))
        self.root.chmod(0o755)
        self.pgdata = self.root / "data"
        self.user = _user()
        self.bin = warehouse.embedded_bin_dir()

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        return subprocess.run(
            [str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
            cwd=self.root,
        ).stdout

    def _own(self) -> None:
        if self.user:
            shutil.chown(self.root, self.user)

    def init(self) -> PgNode:
        self._own()
        self._run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(self.pgdata))
        return self

    def replica_of(self, primary: PgNode) -> PgNode:
        """A streaming replica of ``primary`` (``pg_basebackup -R`` writes its primary_conninfo)."""
        self._own()
        self._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.pgdata),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            timeout=120,
        )
        return self

    def start(self) -> PgNode:
        opts = f"{SERVER_OPTS} -p {self.port} -k {self.root}"
        self._run(
            "pg_ctl",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.root / "log"),
            "-o",
            opts,
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.pgdata), "-m", mode, "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server of our own on a free port, no persistence (a restart empties it)."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        assert wait_for(self.ping, 10), "redis-server did not start"

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_timeout=0.5).ping()
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def keys(self) -> int:
        import redis

        return len(redis.Redis(port=self.port).keys("kpi:q:*"))


def wait_for(predicate, timeout: float = 15.0, every: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (or the time is up: its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


@contextmanager
def warehouse_on(url: str, home: Path, **env: str) -> Iterator[None]:
    """kpi_lib switched to the warehouse at ``url`` (migrated, reader role made), with ``env`` set;
    the session's settings and connections come back afterwards."""
    from kpi_lib import cache, config, replicas, stream

    mp = pytest.MonkeyPatch()
    stream._hub.stop()  # the session's listener must not follow us to another server

    def switch() -> None:
        stream._hub.stop()
        stream.move._mover.stop()  # a lander's mover, like the listener, stays with its server
        stream._hub.version = 0  # versions of another warehouse: the listener starts over
        stream._hub.connected.clear()
        config.reset()
        warehouse.dispose()
        replicas.dispose()
        cache.clear()

    try:
        mp.setenv("DATABASE_URL", url)
        mp.setenv("KPI_HOME", str(home))
        for k, v in env.items():
            mp.setenv(k, v)
        switch()
        warehouse.init()
        yield
    finally:
        stream._hub.stop()
        mp.undo()
        switch()
