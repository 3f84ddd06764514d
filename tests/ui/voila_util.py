"""Run Voila the way `kpi serve` runs it, for the browser tests in test_voila.py.

One :class:`VoilaServer` is one ``voila dashboards/`` process in its own session, on a free port,
logging to a file. Its command line is :func:`voila_command`, the configuration that serves the
dashboards with no request leaving 127.0.0.1 (the ``kpi`` template) and culls abandoned kernels.
Like behind `kpi serve`, it serves only requests carrying its secret (``headers(user)`` makes the
headers the front door would add).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import free_port

from kpi_lib.auth import HEADER, PROXY_HEADER
from kpi_lib.serve import VOILA_BASE as BASE_URL
from kpi_lib.serve import voila_command

PROJECT = Path(__file__).resolve().parents[2]


class VoilaServer:
    """``voila dashboards/`` on a free port; ``stop()`` ends it and every kernel it started."""

    def __init__(self, jupyter_path: Path, log_path: Path, secret: str | None = None, **options) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.options = options
        self.cmd = voila_command(self.port, **options)
        self.log_path = log_path
        self.secret = secret or secrets.token_urlsafe(24)
        self.env = {**os.environ, "JUPYTER_PATH": str(jupyter_path), "KPI_PROXY_SECRET": self.secret}
        self.proc: subprocess.Popen | None = None
        self.kernel_pids: set[int] = set()

    def headers(self, user: str) -> dict[str, str]:
        """What the front door adds to a request it forwards for ``user``."""
        return {HEADER: user, PROXY_HEADER: self.secret}

    def _get(self, url: str, timeout: float = 5):
        req = urllib.request.Request(url, headers=self.headers("voila-util"))
        return urllib.request.urlopen(req, timeout=timeout)

    def start(self, timeout: float = 240) -> VoilaServer:
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child writes to it for its lifetime
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=PROJECT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            try:
                self._get(self.base + BASE_URL)
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"voila did not answer within {timeout:.0f} s:\n{self.log()[-3000:]}")

    def url(self, notebook: str, **params) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.base}{BASE_URL}voila/render/{notebook}.ipynb{query}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kernel(self, kernel_id: str) -> dict | None:
        """The kernel's model from Voila's REST API (connections, last_activity), None once it is gone."""
        try:
            with self._get(f"{self.base}{BASE_URL}api/kernels/{kernel_id}") as r:
                return json.load(r)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def kernels(self) -> list[int]:
        """PIDs of the kernels this server runs now (its child processes)."""
        if self.proc is None:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        self.kernel_pids.update(pids)
        return pids

    def wait_pool_ready(self, notebook: str, timeout: float = 180) -> None:
        """Until the pool holds a kernel for ``notebook`` that has run up to its wait for a request
        (the pool is filled and the kernels stopped using CPU)."""
        deadline = time.monotonic() + timeout
        pattern = f"Kernel pool of {notebook}.ipynb is filled"
        seen = self.log().count(pattern)
        while self.log().count(pattern) < max(1, seen) and time.monotonic() < deadline:
            time.sleep(0.3)
        last, quiet_since = None, time.monotonic()
        while time.monotonic() < deadline:
            cpu = sum(_cpu_ticks(pid) for pid in self.kernels())
            if cpu != last:
                last, quiet_since = cpu, time.monotonic()
            elif time.monotonic() - quiet_since > 2.0:
                return
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.kernels()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # Voila shuts its kernels down on SIGTERM
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in self.kernel_pids):
            time.sleep(0.3)
        for pid in self.kernel_pids:  # kernels run in their own sessions: end any left over
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc = None


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def kernel_id(page) -> str:
    """The id of the kernel behind a Voila page."""
    return json.loads(page.locator("#jupyter-config-data").text_content())["kernelId"]


def culled_in_log(log: str, kernel: str) -> bool:
    return re.search(rf"Culling .*\({re.escape(kernel)}\)", log) is not None
