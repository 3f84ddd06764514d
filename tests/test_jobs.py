"""Jobs: the schedule file, cron ticks, real papermill runs of the job notebooks, failure emails, and the
overlap lock across processes.

Notebook runs start a real Jupyter kernel (a few seconds each), so this file runs four of them: the
alert job, a failing job, a slow job (in a second process, to test the lock) and the daily report.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import nbformat
import pytest
import yaml

from kpi_lib import jobs, kpis, mail
from kpi_lib.config import PROJECT_ROOT
from kpi_lib.errors import JobError

UTC = ZoneInfo("UTC")
SCHEDULES = PROJECT_ROOT / "schedules"


def notebook(path: Path, *sources: str) -> Path:
    """A job notebook: H1 title, a parameters cell, then the given code cells."""
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Test job"),
        nbformat.v4.new_code_cell("run_id = None\nseconds = 0", metadata={"tags": ["parameters"]}),
        *[nbformat.v4.new_code_cell(textwrap.dedent(s)) for s in sources],
    ]
    nbformat.write(nb, path)
    return path


def schedule_file(tmp_path: Path, jobs_: dict) -> Path:
    path = tmp_path / "schedules.yml"
    path.write_text(yaml.safe_dump({"timezone": "UTC", "jobs": jobs_}))
    return path


def run_row(db, run_id: int) -> dict:
    cur = db.execute("select * from ops.job_runs where id = %s", [run_id])
    return dict(zip([d.name for d in cur.description], cur.fetchone(), strict=True))


# --- schedule file and cron (no kernels) ---------------------------------------------------------


def test_schedule_file_lists_the_jobs_and_their_notebooks_exist():
    listed = {j.name: j for j in jobs.list_jobs()}
    assert {"refresh_and_alert", "daily_report"} <= set(listed)
    for job in listed.values():
        assert job.notebook.is_file() and job.cron
    assert listed["daily_report"].recipients == ("Executive team <exec@kpi.local>",)


@pytest.mark.parametrize("path", sorted(SCHEDULES.glob("*.ipynb")), ids=lambda p: p.name)
def test_job_notebooks_are_thin_titled_and_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata.kernelspec.name == "python3"


def test_cron_next_runs_and_missed_ticks_run_once(tmp_path):
    t = datetime(2025, 3, 3, 10, 7, tzinfo=UTC)
    assert jobs.next_runs("*/15 * * * *", 3, after=t, tz="UTC") == [
        t.replace(minute=15),
        t.replace(minute=30),
        t.replace(minute=45),
    ]
    assert jobs.next_runs("0 7 * * 1-5", 2, after=datetime(2025, 3, 7, 8, 0, tzinfo=UTC), tz="UTC") == [
        datetime(2025, 3, 10, 7, 0, tzinfo=UTC),
        datetime(2025, 3, 11, 7, 0, tzinfo=UTC),
    ]  # Fri -> Mon, Tue
    # the scheduler slept from 10:00 to 10:47: three ticks passed, the job runs once, for 10:45
    last = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    assert jobs.due_tick("*/15 * * * *", last, datetime(2025, 3, 3, 10, 47, tzinfo=UTC)) == last.replace(
        minute=45
    )
    assert (
        jobs.due_tick("*/15 * * * *", last.replace(minute=45), datetime(2025, 3, 3, 10, 50, tzinfo=UTC))
        is None
    )
    assert jobs.due_tick("*/15 * * * *", last, last.replace(minute=15)) == last.replace(
        minute=15
    )  # on the tick

    nb = notebook(tmp_path / "nb.ipynb", "pass")
    path = schedule_file(
        tmp_path,
        {
            f"every15_{uuid.uuid4().hex[:6]}": {"notebook": str(nb), "cron": "*/15 * * * *"},
            f"off_{uuid.uuid4().hex[:6]}": {"notebook": str(nb), "cron": "* * * * *", "enabled": False},
            f"manual_{uuid.uuid4().hex[:6]}": {"notebook": str(nb)},
        },
    )
    sched = jobs.Scheduler(path, start=last)  # needs the warehouse for history: none for these names
    try:
        due = sched.due(datetime(2025, 3, 3, 11, 52, tzinfo=UTC))
        assert [(j.name.split("_")[0], tick) for j, tick in due] == [
            ("every15", last.replace(hour=11, minute=45))
        ]
        sched.last[due[0][0].name] = due[0][1]
        assert sched.due(datetime(2025, 3, 3, 11, 59, tzinfo=UTC)) == []
        assert sched.seconds_to_next(datetime(2025, 3, 3, 11, 59, tzinfo=UTC)) == 60.0
    finally:
        sched.shutdown()

    bad = schedule_file(tmp_path, {"broken": {"notebook": "x.ipynb", "cron": "61 * * * *"}})
    with pytest.raises(
        JobError, match="jobs.broken.cron: cron '61 \\* \\* \\* \\*' is not a cron expression"
    ):
        jobs.load_schedules(bad)
    typo = schedule_file(tmp_path, {"typo": {"notebook": "x.ipynb", "crom": "0 7 * * *", "timeout": "soon"}})
    with pytest.raises(JobError) as both:  # every problem at once, each with its place
        jobs.load_schedules(typo)
    assert "unknown key 'jobs.typo.crom'" in str(both.value) and "jobs.typo.timeout" in str(both.value)
    with pytest.raises(JobError, match="No job named 'nope'"):
        jobs.get_job("nope")


# --- real runs ---------------------------------------------------------------------------------


def test_refresh_and_alert_job_emails_a_new_incident_with_its_provenance(db, sink, tmp_path):
    key = "orders|hour|region=Europe"
    db.execute("delete from ops.anomalies where series_key = %s", [key])
    started = db.execute(
        "select date_trunc('hour', max(ordered_at)) - interval '6 hours' from silver.orders"
    ).fetchone()[0]
    incident = db.execute(
        "insert into ops.anomalies (series_key, kpi, grain, dimension, dim_value, started_at, peak_at, value, expected,"
        " lower_bound, upper_bound, deviation_pct, score, severity, rule, explanation) values (%s, 'orders', 'hour',"
        " 'region', 'Europe', %s, %s, 3, 50, 40, 60, -94, 6.2, 'high', 'spike', %s) returning id",
        [
            key,
            started,
            started + timedelta(hours=1),
            f"Orders in Europe was 94% below the expected 50 (40–60) from {started:%Y-%m-%d %H:%M}; still ongoing.",
        ],
    ).fetchone()[0]
    to = f"emea-{uuid.uuid4().hex[:6]}@test.local"
    routes = tmp_path / "alerts.yml"
    routes.write_text(
        yaml.safe_dump(
            {
                "defaults": {"recipients": []},
                "routes": [{"kpi": "orders", "where": {"region": "Europe"}, "recipients": [to]}],
            }
        )
    )

    run = jobs.run_job("refresh_and_alert", {"kpis": ["orders"], "routes": str(routes)})
    assert run.status == "succeeded", run.error

    [msg] = [m for m in mail.list_inbox(sink.maildir) if to in m.to]
    assert msg.subject == "[KPI alert] 1 new incident: Orders in Europe −94%"
    raw = mail.inbox.raw_message(msg.id, sink.maildir)
    html = raw.get_body(("html",)).get_content()
    [image] = [p for p in raw.walk() if p.get_content_type() == "image/png"]
    assert f"cid:{image['Content-ID'].strip('<>')}" in html
    _, data = mail.attachment(msg.id, "incidents.csv", sink.maildir)
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(data.decode()))] == [incident]
    text = raw.get_body(("plain",)).get_content()
    assert f"refresh_and_alert run #{run.id} (manual)" in text  # provenance names the job run...
    assert run.notebook_path in text and "report.html" in text  # ...its executed notebook and rendering
    assert "catalog: sales_hourly" in text and "gold.sales_hourly" in text

    row = run_row(db, run.id)
    assert row["status"] == "succeeded" and row["duration_s"] > 0 and row["finished_at"] > row["started_at"]
    assert row["parameters"]["kpis"] == ["orders"] and row["trigger"] == "manual"
    executed = nbformat.read(row["notebook_path"], as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert f"run_id = {run.id}" in injected[0].source
    page = Path(row["html_path"]).read_text()
    assert "Orders in Europe" in page and "notify_new_incidents(" not in page  # outputs, no code
    assert "https://cdn" not in page


def test_a_failing_job_records_the_error_and_emails_it(db, sink, tmp_path):
    nb = notebook(
        tmp_path / "broken.ipynb",
        "print('loaded 12 rows')",
        "raise ValueError('boom: the feed file is missing')",
    )
    name = f"broken_{uuid.uuid4().hex[:6]}"
    to = f"oncall-{uuid.uuid4().hex[:6]}@test.local"
    path = schedule_file(tmp_path, {name: {"notebook": str(nb), "recipients": [to]}})

    run = jobs.run_job(name, schedules=path)
    assert run.status == "failed"
    row = run_row(db, run.id)
    assert row["status"] == "failed" and row["error"].startswith("ValueError: boom: the feed file is missing")
    assert "raise ValueError" in row["traceback"] and "\x1b[" not in row["traceback"]
    partial = nbformat.read(row["notebook_path"], as_version=4)
    [done] = [c for c in partial.cells if c.source == "print('loaded 12 rows')"]
    assert "loaded 12 rows" in json.dumps(done.outputs)  # the work done before the error is kept

    [msg] = [m for m in mail.list_inbox(sink.maildir) if to in m.to]
    assert msg.subject.startswith(f"[KPI job failed] {name}: ValueError: boom")
    text = mail.read_message(msg.id, sink.maildir).text
    assert "raise ValueError('boom: the feed file is missing')" in text  # the traceback tail
    assert row["notebook_path"] in text
    assert any(a.filename.endswith(".html") for a in msg.attachments)


def test_a_second_run_of_a_busy_job_is_refused_from_another_process(db, tmp_path):
    nb = notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(seconds)")
    name = f"slow_{uuid.uuid4().hex[:6]}"
    path = schedule_file(tmp_path, {name: {"notebook": str(nb), "parameters": {"seconds": 4}}})
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from kpi_lib import jobs; r = jobs.run_job({name!r}, schedules={str(path)!r}); print(r.status)",
        ],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.execute(
                "select 1 from ops.job_runs where job = %s and status = 'running'", [name]
            ).fetchone():
                break
            assert other.poll() is None, other.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the first run never started")

        with pytest.raises(JobError, match=f"Job '{name}' is already running \\(run #\\d+ on "):
            jobs.run_job(name, schedules=path)
        tick = datetime.now(UTC).replace(second=0, microsecond=0)
        skipped = jobs.run_job(
            name, trigger="scheduled", schedules=path, scheduled_for=tick
        )  # a cron tick meanwhile
        assert skipped.status == "skipped" and "still going" in skipped.error
        assert (
            jobs.run_job(name, trigger="scheduled", schedules=path, scheduled_for=tick) is None
        )  # tick taken once
    finally:
        out, err = other.communicate(timeout=120)
    assert other.returncode == 0 and out.strip().endswith("succeeded"), err
    statuses = [
        r[0] for r in db.execute("select status from ops.job_runs where job = %s order by id", [name])
    ]
    assert statuses == ["succeeded", "skipped"]


def test_daily_report_runs_and_emails_the_digest(db, sink):
    to = f"exec-{uuid.uuid4().hex[:6]}@test.local"
    # pinned to the data, not the wall clock: the report is for the last whole day before its as-of
    at = kpis.latest_data().replace(second=0, microsecond=0) - timedelta(days=3)
    run = jobs.run_job("daily_report", {"recipients": [to], "as_of": f"{at:%Y-%m-%d %H:%M}"})
    assert run.status == "succeeded", run.error

    [msg] = [m for m in mail.list_inbox(sink.maildir) if to in m.to]
    day = at.date() - timedelta(days=1)
    assert msg.subject.startswith(f"[KPI report] {day:%a %d %b %Y}: Revenue $")
    view = mail.read_message(msg.id, sink.maildir)
    assert f"as of {at.day} {at:%b %Y %H:%M} (explicit)" in view.text
    assert len(view.inline) == 2 and view.html.count("data:image/png;base64,") == 2
    for section in ("Key numbers", "Top movers", "Open incidents", "Provenance"):
        assert section in view.text
    assert f"daily_report run #{run.id}" in view.text and "catalog: sales_daily" in view.text
    assert run_row(db, run.id)["status"] == "succeeded"


def test_schedule_loop_runs_due_jobs_and_never_two_at_once(db, tmp_path):
    nb = notebook(tmp_path / "tick.ipynb", "import time\ntime.sleep(seconds)")
    name = f"tick_{uuid.uuid4().hex[:6]}"
    # croniter's optional 6th field is seconds: a tick every 2 s, a run takes longer than that
    path = schedule_file(
        tmp_path, {name: {"notebook": str(nb), "cron": "* * * * * */2", "parameters": {"seconds": 2}}}
    )
    stop = threading.Event()
    loop = threading.Thread(target=jobs.schedule_loop, args=(path, stop), kwargs={"deliver_mail": False})
    loop.start()
    time.sleep(6)
    stop.set()
    loop.join(60)
    assert not loop.is_alive()
    runs = db.execute(
        "select status, trigger, scheduled_for, started_at, finished_at from ops.job_runs"
        " where job = %s order by scheduled_for",
        [name],
    ).fetchall()
    done = [r for r in runs if r[0] == "succeeded"]
    assert done and all(r[1] == "scheduled" for r in runs)
    assert any(r[0] == "skipped" for r in runs)  # ticks that came while the job was still running
    for a, b in zip(done, done[1:], strict=False):
        assert a[4] <= b[3]  # one run finished before the next started
    assert len({r[2] for r in runs}) == len(runs)  # each tick handled once
