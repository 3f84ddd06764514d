"""How we drive Debian's Chromium headless: the browser tests, the page benchmarks and the README's
screenshots launch it the same way (Playwright cannot download browsers here)."""

from __future__ import annotations

import shutil
from pathlib import Path

#: no GPU, no sandbox (we run as root), and nothing that phones home (updates, sync, QUIC probes)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def executable() -> str:
    """The installed Chromium; a clear error when it is missing."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise FileNotFoundError("Debian's chromium is not installed: `apt-get install -y chromium`")
    return path
