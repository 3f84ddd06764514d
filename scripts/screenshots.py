"""Screenshots of every dashboard for the README, taken in headless Chromium against the demo.

    .venv/bin/python scripts/screenshots.py                 # uses $KPI_HOME (default ./var)
    .venv/bin/python scripts/screenshots.py --out docs/screenshots --port 8091

Needs the demo loaded (`make demo`, or `kpi init && kpi demo`). It starts its own `kpi serve` on a
free port (with the live simulator, the alert listener and the demo mail sink), signs in as a
screenshot user, runs the alert and digest jobs so the inbox has reports, and writes one PNG per
page. Stops the server it started, and only that.

    KPI_HOME=~/my-shop .venv/bin/python scripts/screenshots.py --own-data   # executive-own-data.png

``--own-data``: the warehouse holds a user's own data (loaded with `kpi load lines`): no simulator,
no jobs, one shot of the executive page as it opens on that data.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kpi_lib.serve import free_port
from kpi_lib.web import chromium

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "screenshots", "screenshots-password-1"
TIMEOUT = 180_000


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def start_server(port: int, log: Path, simulate: bool = True) -> subprocess.Popen:
    kpi = str(Path(sys.executable).with_name("kpi"))
    extra = ["--simulate", "auto"] if simulate else ["--no-alerts", "--no-mail-sink"]
    proc = subprocess.Popen(
        [kpi, "serve", "--port", str(port), *extra, "--voila-pool", "1"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with everything it started
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kpi serve exited ({proc.returncode}); see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"kpi serve did not come up within 240 s; see {log}")


def run_jobs() -> None:
    """The alert job over the last week (the demo's Europe outage is six days old) and the digest,
    so the inbox holds real reports with their charts."""
    kpi = str(Path(sys.executable).with_name("kpi"))
    for job, params in (("refresh_and_alert", ["-p", "lookback_hours=168"]), ("daily_report", [])):
        done = subprocess.run([kpi, "jobs", "run", job, *params], capture_output=True, text=True)
        if done.returncode != 0:
            say(
                f"{job} failed ({done.returncode}); the inbox shows its failure e-mail:\n{done.stderr[-800:]}"
            )


def shoot(base: str, out: Path, own_data: bool = False) -> list[Path]:
    from playwright.sync_api import sync_playwright

    try:
        path = chromium.executable()
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None
    files: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=chromium.ARGS)

        def page_for(width: int, height: int, scale: float = 1.0):
            ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale)
            page = ctx.new_page()
            page.goto(f"{base}/login?next=/")
            page.fill("input[name=user]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            return page

        def save(page, name: str, full: bool = True) -> None:
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=full)
            files.append(path)
            say(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

        page = page_for(1400, 900)
        if own_data:
            page.goto(f"{base}/panel/executive", timeout=TIMEOUT)
            page.locator("[data-kpi-value=revenue]").wait_for(timeout=TIMEOUT)
            page.locator("table.panel-df").first.wait_for(timeout=TIMEOUT)
            page.wait_for_timeout(2500)  # charts finish drawing after the tiles
            save(page, "executive-own-data")
            browser.close()
            return files
        save(page, "landing")

        def executive(page, query: str = "") -> None:
            page.goto(f"{base}/panel/executive{query}", timeout=TIMEOUT)
            page.locator("[data-kpi-value=revenue]").wait_for(timeout=TIMEOUT)
            page.locator("table.panel-df").first.wait_for(timeout=TIMEOUT)
            page.wait_for_timeout(2500)  # charts finish drawing after the tiles

        executive(page)
        save(page, "executive")
        executive(page, "?theme=dark&kpi=orders&region=Europe")
        save(page, "executive-dark-filtered")

        page.goto(f"{base}/voila/voila/render/revenue_explorer.ipynb", timeout=TIMEOUT)
        page.locator(".kpi-table").wait_for(timeout=TIMEOUT)
        page.locator('.kpi-status[data-state="ready"]').wait_for(timeout=TIMEOUT)
        page.wait_for_timeout(1500)
        save(page, "revenue-explorer")

        page.goto(f"{base}/voila/voila/render/anomaly_review.ipynb", timeout=TIMEOUT)
        page.locator("[class*=kpi-incident-]").first.wait_for(timeout=TIMEOUT)
        page.wait_for_timeout(1500)
        save(page, "anomaly-review")

        page.goto(f"{base}/inbox", timeout=TIMEOUT)
        first = page.locator("a[href^='/inbox/']").first
        first.wait_for(timeout=TIMEOUT)
        save(page, "inbox")
        first.click()
        page.wait_for_load_state()
        page.wait_for_timeout(1000)
        save(page, "alert-email")

        phone = page_for(390, 844, scale=2)
        executive(phone)
        save(phone, "executive-phone", full=False)
        browser.close()
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--port", type=int, default=0, help="front door port (default: a free one)")
    ap.add_argument(
        "--own-data", action="store_true", help="KPI_HOME holds your own data: shoot the executive page only"
    )
    args = ap.parse_args()

    from kpi_lib import auth, gold
    from kpi_lib.config import settings

    gold.init()  # starts the embedded server if needed; fails clearly when there is no warehouse
    auth.set_user(USER, PASSWORD, ["executive", "analyst"], name="Screenshot Bot")
    args.out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    log = settings().home / "screenshots-serve.log"
    say(f"starting kpi serve on port {port} (log: {log})")
    proc = start_server(port, log, simulate=not args.own_data)
    try:
        if not args.own_data:
            say("running refresh_and_alert and daily_report for the inbox")
            run_jobs()
        say("taking screenshots")
        files = shoot(f"http://127.0.0.1:{port}", args.out, own_data=args.own_data)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    say(f"wrote {len(files)} screenshots to {args.out}")
    print("\n".join(re.sub(f"^{re.escape(str(ROOT))}/", "", str(f)) for f in files))


if __name__ == "__main__":
    main()
