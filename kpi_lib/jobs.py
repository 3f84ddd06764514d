"""Scheduled papermill jobs: run a notebook with parameters, keep the executed notebook and an HTML
rendering of it, record ``ops.job_runs``, email on failure, and a cron loop over ``schedules.yml``.

    >>> from kpi_lib import jobs
    >>> [j.name for j in jobs.list_jobs()]                       # doctest: +SKIP
    ['refresh_and_alert', 'daily_report']
    >>> run = jobs.run_job("daily_report", {"report_date": "2025-03-01"})   # doctest: +SKIP
    >>> run.status, run.html_path                                # 'succeeded', .../runs/daily_report/...

Each run lands in ``$KPI_HOME/runs/<job>/<YYYYmmddTHHMMSS>-<run id>/`` (the executed notebook, partial
on failure, and ``report.html`` without code cells). The notebook receives ``run_id``, ``job_name``,
``trigger``, ``run_dir``, ``notebook_path``, ``html_path`` and ``recipients`` on top of the job's
parameters, so it can name its own provenance (:func:`provenance`).

Two runs of one job never overlap: a run holds a PostgreSQL advisory lock keyed by the job name for
its whole duration (released by the server if the process dies), so the guard holds across
processes and hosts. A manual run that finds the job busy raises :class:`JobError`; a scheduled
tick that does records a ``skipped`` run.

``schedules/schedules.yml``::

    timezone: UTC                  # cron expressions are read in this zone (default KPI_TIMEZONE)
    jobs:
      daily_report:
        notebook: daily_report.ipynb   # relative to this file
        cron: "0 7 * * *"              # 5 fields (minute hour day month weekday); omit: manual only
        description: The executive digest
        parameters: {kpis: [revenue, orders]}
        recipients: [exec@kpi.local]   # the notebook's audience; also told when the job fails
        on_failure: [ops@kpi.local]    # optional: who hears about failures instead
        timeout: 900                   # seconds per cell (default: none)
        enabled: true
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import traceback as tb
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
from croniter import croniter
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import field_validator

from . import mail, warehouse, yamlfile
from .config import settings
from .errors import AlertError, JobError, KpiError
from .mail.report import esc
from .yamlfile import Strict

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x4B5049  # first key of the two-key advisory locks that guard job runs ("KPI")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SYSTEM_PARAMETERS = (
    "run_id",
    "job_name",
    "trigger",
    "run_dir",
    "notebook_path",
    "html_path",
    "scheduled_for",
)


# --- the schedule file --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One entry of schedules.yml."""

    name: str
    notebook: Path
    cron: str | None = None
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    recipients: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    timeout: float | None = None
    enabled: bool = True
    timezone: str = "UTC"

    def next_runs(self, n: int = 5, after: datetime | None = None) -> list[datetime]:
        """The next ``n`` cron ticks after ``after`` (default now), in the schedule's time zone."""
        if not self.cron:
            return []
        return next_runs(self.cron, n, after, self.timezone)


class _JobSpec(Strict):
    """One job as written in schedules.yml."""

    notebook: str
    cron: str | None = None
    description: str = ""
    parameters: dict[str, Any] = {}
    recipients: list[str] | str = []
    on_failure: list[str] | str = []
    timeout: float | None = None
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, cron: str | None) -> str | None:
        if cron is not None and not croniter.is_valid(str(cron)):
            raise ValueError(f"cron {cron!r} is not a cron expression (e.g. '*/15 * * * *' or '0 7 * * 1-5')")
        return cron

    @field_validator("parameters")
    @classmethod
    def _own_parameters(cls, params: dict[str, Any]) -> dict[str, Any]:
        clash = set(params) & set(SYSTEM_PARAMETERS)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))} are set by the job runner; rename them")
        return params


class _ScheduleFile(Strict):
    timezone: str | None = None
    jobs: dict[str, _JobSpec]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, tz: str | None) -> str | None:
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (KeyError, ValueError):
                raise ValueError(f"{tz!r} is not a time zone name (e.g. Europe/Berlin)") from None
        return tz


def load_schedules(path: str | Path | None = None) -> dict[str, Job]:
    """Parse schedules.yml (default ``schedules/schedules.yml``); errors name the job and the key."""
    path = Path(path) if path else settings().schedules_dir / "schedules.yml"
    if not path.is_file():
        raise JobError(f"No schedule file at {path}; create one (format: kpi_lib/jobs.py docstring).")
    doc = yamlfile.read(path, _ScheduleFile, JobError)
    tz = doc.timezone or settings().timezone
    jobs: dict[str, Job] = {}
    for name, spec in doc.jobs.items():
        nb = Path(spec.notebook)
        try:
            recipients = tuple(mail.normalise_recipients(spec.recipients)) if spec.recipients else ()
            on_failure = tuple(mail.normalise_recipients(spec.on_failure)) if spec.on_failure else ()
        except AlertError as exc:
            raise JobError(f"{path} job {name!r}: {exc}") from exc
        jobs[name] = Job(
            name=name,
            notebook=nb if nb.is_absolute() else (path.parent / nb).resolve(),
            cron=spec.cron,
            description=spec.description,
            parameters=spec.parameters,
            recipients=recipients,
            on_failure=on_failure,
            timeout=spec.timeout or None,
            enabled=spec.enabled,
            timezone=tz,
        )
    return jobs


def list_jobs(schedules: str | Path | None = None) -> list[Job]:
    """Every job in schedules.yml, in file order."""
    return list(load_schedules(schedules).values())


def get_job(name: str, schedules: str | Path | None = None) -> Job:
    jobs = load_schedules(schedules)
    if name not in jobs:
        raise JobError(
            f"No job named {name!r}. Jobs: {', '.join(jobs) or 'none'} (see schedules/schedules.yml)."
        )
    return jobs[name]


# --- cron ---------------------------------------------------------------------------------------


def next_runs(cron: str, n: int = 5, after: datetime | None = None, tz: str | None = None) -> list[datetime]:
    """The next ``n`` ticks of ``cron`` strictly after ``after`` (default: now), time-zone aware."""
    zone = ZoneInfo(tz or settings().timezone)
    start = after or datetime.now(zone)
    start = start.replace(tzinfo=zone) if start.tzinfo is None else start.astimezone(zone)
    it = croniter(cron, start)
    return [it.get_next(datetime) for _ in range(n)]


def due_tick(cron: str, last_tick: datetime | None, now: datetime) -> datetime | None:
    """The tick to run now, or None. However many ticks were missed since ``last_tick``, only the
    latest one is returned: a scheduler that slept through three ticks runs the job once."""
    latest = croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)  # latest tick <= now
    return latest if last_tick is None or latest > last_tick else None


# --- runs ---------------------------------------------------------------------------------------


@dataclass
class JobRun:
    """One row of ops.job_runs (what :func:`run_job` returns)."""

    id: int
    job: str
    status: str
    trigger: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    notebook_path: str | None = None
    html_path: str | None = None
    scheduled_for: datetime | None = None
    host: str | None = None
    pid: int | None = None
    failure_email: int | None = None  # outbox id of the failure notice

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def run_dir(self) -> Path | None:
        return Path(self.notebook_path).parent if self.notebook_path else None


def _run_from_row(row: Mapping[str, Any]) -> JobRun:
    keys = JobRun.__dataclass_fields__
    return JobRun(**{k: v for k, v in row.items() if k in keys})


def get_run(run_id: int) -> JobRun:
    with warehouse.connect_raw() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from ops.job_runs where id = %s", [run_id]).fetchone()
    if row is None:
        raise JobError(f"No job run #{run_id} in ops.job_runs.")
    return _run_from_row(row)


def history(job: str | None = None, limit: int = 50) -> pd.DataFrame:
    """Recent runs, newest first (for `kpi jobs list` and status pages)."""
    with warehouse.connect_raw() as conn:
        cur = conn.execute(
            "select id, job, status, trigger, scheduled_for, started_at, finished_at, duration_s, error,"
            " notebook_path, html_path, host, pid from ops.job_runs where (%(j)s::text is null or job = %(j)s)"
            " order by id desc limit %(n)s",
            {"j": job, "n": limit},
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def run_url(path: str | Path | None) -> str | None:
    """A browser link for a file under ``$KPI_HOME/runs`` (served at ``<KPI_PUBLIC_URL>/runs/...``)."""
    if not path:
        return None
    cfg = settings()
    try:
        rel = Path(path).resolve().relative_to(cfg.runs_dir.resolve())
    except ValueError:
        return None
    return f"{cfg.public_url}/runs/{rel.as_posix()}"


def provenance(run_id: int | None = None, **extra: Any) -> dict[str, Any]:
    """What produced this output: the job, run, trigger, parameters, executed notebook and its HTML.

    Job notebooks pass it to :func:`kpi_lib.alerts.notify_new_incidents` and into their reports; with
    ``run_id=None`` (someone running the notebook by hand) it says so.
    """
    prov: dict[str, Any] = {
        "generated_at": datetime.now(ZoneInfo(settings().timezone)).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
    }
    if run_id is None:
        prov["source"] = "interactive notebook (not a job run)"
    else:
        run = get_run(int(run_id))
        prov.update(
            {
                "job": run.job,
                "run_id": run.id,
                "trigger": run.trigger,
                "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "parameters": run.parameters,
                "notebook": run.notebook_path,
                "notebook_url": run_url(run.notebook_path),
                "html": run.html_path,
                "html_url": run_url(run.html_path),
            }
        )
    prov.update(extra)
    return prov


def _lock_key(conn: psycopg.Connection, name: str) -> int:
    return conn.execute("select hashtext(%s)", [name]).fetchone()[0]


@contextmanager
def job_lock(name: str):
    """``with job_lock(name) as held:`` try to take the job's advisory lock; ``held`` is False when another
    session (any process, any host) has it. Held until the block ends or the process dies."""
    conn = warehouse.connect_raw(autocommit=True)
    try:
        key = _lock_key(conn, name)
        held = conn.execute("select pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, key]).fetchone()[0]
        try:
            yield held
        finally:
            if held and not conn.closed:
                conn.execute("select pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, key])
    finally:
        conn.close()


def _running(conn: psycopg.Connection, name: str, exclude: int | None = None) -> str:
    row = conn.execute(
        "select id, host, pid, started_at from ops.job_runs where job = %s and status = 'running'"
        " and id is distinct from %s order by id desc limit 1",
        [name, exclude],
    ).fetchone()
    if row is None:
        return "another session holds its lock"
    return f"run #{row[0]} on {row[1]} (pid {row[2]}) since {row[3]:%Y-%m-%d %H:%M:%S %Z}"


def render_html(notebook: str | Path, html_path: str | Path) -> Path:
    """The executed notebook as a standalone HTML page without code cells (nbconvert --no-input)
    and without CDN scripts (the page must open offline)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True
    )
    body, _ = exporter.from_filename(str(notebook))
    body = re.sub(r'<script[^>]+src="https?://[^"]+"[^>]*>\s*</script>', "", body)
    body = re.sub(
        r'<script type="module">(?:(?!</script>).)*?cdnjs(?:(?!</script>).)*</script>', "", body, flags=re.S
    )
    out = Path(html_path)
    out.write_text(body, encoding="utf-8")
    return out


def run_job(
    name: str,
    params: Mapping[str, Any] | None = None,
    trigger: str = "manual",
    *,
    schedules: str | Path | None = None,
    scheduled_for: datetime | None = None,
    progress: bool = False,
    kernel_name: str = "python3",
    notify_failure: bool = True,
) -> JobRun | None:
    """Run a job's notebook now and return its run (``status`` succeeded/failed/skipped).

    ``params`` override the job's parameters. A manual run of a job that is already running raises
    :class:`JobError`. A scheduled run (``trigger="scheduled"`` with its cron tick as ``scheduled_for``)
    returns None when another scheduler already took that tick, and a ``skipped`` run when the job is
    still busy with an earlier one. A failing notebook does not raise: the run is ``failed``, the
    partial notebook is kept, and the job's recipients get an email with the error.
    """
    if trigger not in ("manual", "scheduled"):
        raise JobError(f"trigger must be 'manual' or 'scheduled', not {trigger!r}.")
    job = get_job(name, schedules)
    if not job.notebook.is_file():
        raise JobError(
            f"Job {name!r}: notebook {job.notebook} does not exist; fix 'notebook:' in the schedule file."
        )
    clash = set(params or {}) & set(SYSTEM_PARAMETERS)
    if clash:
        raise JobError(
            f"Parameter(s) {', '.join(sorted(clash))} are set by the job runner and cannot be passed."
        )
    user_params = {**job.parameters, **dict(params or {})}
    recipients = list(user_params.pop("recipients", None) or job.recipients)
    db = warehouse.connect_raw(autocommit=True)
    try:
        run_id = None
        if scheduled_for is not None:
            run_id = _claim_tick(db, name, trigger, scheduled_for, user_params)
            if run_id is None:
                return None
        with job_lock(name) as held:
            if not held:
                return _skip_busy(db, name, run_id, scheduled_for)
            run_id = _start_run(db, name, trigger, run_id, user_params)
            started = time.perf_counter()
            run_dir = _run_folder(name, run_id)
            out_nb, html = run_dir / job.notebook.name, run_dir / "report.html"
            db.execute(
                "update ops.job_runs set notebook_path = %s, html_path = %s where id = %s",
                [str(out_nb), str(html), run_id],
            )
            injected = {
                **_jsonable(user_params),
                "recipients": recipients,
                "run_id": run_id,
                "job_name": name,
                "trigger": trigger,
                "run_dir": str(run_dir),
                "notebook_path": str(out_nb),
                "html_path": str(html),
                "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
            }
            log.info("job %s: run #%d (%s) -> %s", name, run_id, trigger, run_dir)
            error, trace = _execute(job, out_nb, injected, kernel_name, progress)
            html_done = _keep_outputs(name, run_dir, out_nb, html)
            run = _finish_run(db, run_id, started, error, trace, html_done, out_nb.exists())
    finally:
        db.close()
    if run.status == "failed":
        log.error("job %s: run #%d failed: %s", name, run.id, run.error)
        if notify_failure:
            run.failure_email = _notify_failure(job, run, recipients)
    else:
        log.info("job %s: run #%d succeeded in %.1f s", name, run.id, run.duration_s or 0)
    return run


def _claim_tick(
    db: psycopg.Connection, name: str, trigger: str, tick: datetime, params: Mapping[str, Any]
) -> int | None:
    """Take a cron tick for this process: one row per (job, tick), so two schedulers never both run it."""
    row = db.execute(
        "insert into ops.job_runs (job, status, trigger, scheduled_for, parameters, host, pid)"
        " values (%s, 'running', %s, %s, %s, %s, %s) on conflict (job, scheduled_for)"
        " where scheduled_for is not null do nothing returning id",
        [name, trigger, tick, Jsonb(_jsonable(params)), socket.gethostname(), os.getpid()],
    ).fetchone()
    if row is None:
        log.info("job %s: tick %s already taken by another scheduler", name, tick)
    return row[0] if row else None


def _skip_busy(db: psycopg.Connection, name: str, run_id: int | None, tick: datetime | None) -> JobRun:
    """Another run holds the job's lock: a manual run is refused, a scheduled tick is recorded as skipped."""
    busy = _running(db, name, run_id)
    if run_id is None:
        raise JobError(f"Job {name!r} is already running ({busy}); wait for it to finish.")
    db.execute(
        "update ops.job_runs set status = 'skipped', finished_at = clock_timestamp(),"
        " duration_s = 0, error = %s where id = %s",
        [f"skipped: the previous run is still going ({busy})", run_id],
    )
    log.warning("job %s: tick %s skipped, %s", name, tick, busy)
    return get_run(run_id)


def _start_run(
    db: psycopg.Connection, name: str, trigger: str, run_id: int | None, params: Mapping[str, Any]
) -> int:
    """With the lock held: runs still marked 'running' died with their process; record this one."""
    db.execute(
        "update ops.job_runs set status = 'failed', finished_at = clock_timestamp(),"
        " error = 'abandoned: the process running it stopped before it finished'"
        " where job = %s and status = 'running' and id is distinct from %s",
        [name, run_id],
    )
    if run_id is not None:
        return run_id
    return db.execute(
        "insert into ops.job_runs (job, status, trigger, parameters, host, pid)"
        " values (%s, 'running', %s, %s, %s, %s) returning id",
        [name, trigger, Jsonb(_jsonable(params)), socket.gethostname(), os.getpid()],
    ).fetchone()[0]


def _run_folder(name: str, run_id: int) -> Path:
    """$KPI_HOME/runs/<job>/<time>-<run>-<random>, owner-only: report links in e-mails must not be
    guessable from a neighbour's."""
    stamp = datetime.now(ZoneInfo(settings().timezone)).strftime("%Y%m%dT%H%M%S")
    run_dir = settings().runs_dir / name / f"{stamp}-{run_id}-{secrets.token_hex(4)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    for folder in (settings().runs_dir, run_dir.parent, run_dir):
        folder.chmod(0o700)
    return run_dir


def _execute(
    job: Job, out_nb: Path, parameters: Mapping[str, Any], kernel_name: str, progress: bool
) -> tuple[str | None, str | None]:
    """Run the notebook with papermill; (error, traceback), both None when it succeeded."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(job.notebook),
            str(out_nb),
            parameters=dict(parameters),
            kernel_name=kernel_name,
            progress_bar=progress,
            cwd=os.getcwd(),
            execution_timeout=job.timeout,
            log_output=False,
            request_save_on_cell_execute=True,
        )
    except pm.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})", _ANSI.sub("", "\n".join(exc.traceback))
    except Exception as exc:  # kernel died, timeout, unreadable notebook: all are job failures
        return f"{type(exc).__name__}: {exc}", tb.format_exc()
    return None, None


def _keep_outputs(name: str, run_dir: Path, out_nb: Path, html: Path) -> str | None:
    """Executed notebooks hold KPI values: owner-only. The HTML report, when it renders."""
    for produced in run_dir.iterdir():
        produced.chmod(0o600)
    if not out_nb.exists():
        return None
    try:
        done = render_html(out_nb, html)
    except Exception as exc:  # a rendering problem must not hide the run's own result
        log.warning("job %s: could not render %s: %s", name, out_nb, exc)
        return None
    done.chmod(0o600)
    return str(done)


def _finish_run(
    db: psycopg.Connection,
    run_id: int,
    started: float,
    error: str | None,
    trace: str | None,
    html: str | None,
    notebook_kept: bool,
) -> JobRun:
    with db.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "update ops.job_runs set status = %s, finished_at = clock_timestamp(), duration_s = %s,"
            " error = %s, traceback = %s, html_path = %s,"
            " notebook_path = case when %s then notebook_path end where id = %s returning *",
            [
                "failed" if error else "succeeded",
                round(time.perf_counter() - started, 3),
                error,
                trace,
                html,
                notebook_kept,
                run_id,
            ],
        ).fetchone()
    return _run_from_row(row)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _notify_failure(job: Job, run: JobRun, recipients: list[str]) -> int | None:
    """Queue (and try to send) the 'job failed' email; returns its outbox id."""
    to = list(job.on_failure or recipients)
    if not to:
        log.warning("job %s failed but has no recipients or on_failure: nobody is emailed", job.name)
        return None
    report = mail.Report(f"Job {job.name} failed", f"Run #{run.id} ({run.trigger}) on {run.host}")
    report.facts(
        {
            "Error": run.error,
            "Started": f"{run.started_at:%Y-%m-%d %H:%M:%S %Z}" if run.started_at else None,
            "Duration": f"{run.duration_s:.1f} s" if run.duration_s is not None else None,
            "Parameters": json.dumps(run.parameters, default=str),
            "Partial notebook": run.notebook_path or "(none was written)",
            "Link": run_url(run.html_path) or run_url(run.notebook_path),
            "Scheduled for": run.scheduled_for,
        }
    )
    tail = "\n".join((run.traceback or "").strip().splitlines()[-25:])
    report.heading("Traceback (last lines)", 3)
    report.add(
        f'<pre style="background:#f6f8fa;padding:6px;font-size:11px;white-space:pre-wrap">{esc(tail)}</pre>',
        tail,
    )
    report.paragraph(
        f"Re-run it with `kpi jobs run {job.name}` once fixed; history: `kpi jobs list`.", muted=True
    )
    if run.html_path and Path(run.html_path).is_file() and Path(run.html_path).stat().st_size < 5_000_000:
        report.attach(
            mail.Part(f"{job.name}-run-{run.id}.html", "text/html", data=Path(run.html_path).read_bytes())
        )
    prov = provenance(run.id)
    report.provenance(prov)
    email = report.to_email(
        f"[KPI job failed] {job.name}: {(run.error or '')[:80]}",
        to,
        kind="job_failure",
        provenance=prov,
        kpis=[],  # the error and the run's links, no KPI values
    )
    outbox_id = mail.enqueue(email, f"job-failure:{run.id}")
    try:
        mail.deliver_pending()
    except KpiError as exc:  # the outbox worker will retry
        log.warning("job %s: failure email queued (#%d) but not sent yet: %s", job.name, outbox_id, exc)
    return outbox_id


# --- the schedule loop --------------------------------------------------------------------------


class Scheduler:
    """Decides which cron ticks are due and runs them, one run per job at a time.

    ``tick(now)`` is the whole algorithm (``schedule_loop`` just calls it): for each enabled job with a
    cron line, the latest tick at or before ``now`` runs if it is newer than the last tick handled, so
    missed ticks collapse into one run. A job still running in this process when its next tick comes
    gets a ``skipped`` row; one running elsewhere is caught by the advisory lock inside run_job.
    """

    def __init__(
        self, schedules: str | Path | None = None, max_workers: int = 4, start: datetime | None = None
    ):
        self.schedules = Path(schedules) if schedules else settings().schedules_dir / "schedules.yml"
        self.jobs = load_schedules(self.schedules)
        self._mtime = self.schedules.stat().st_mtime
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kpi-job")
        self.running: dict[str, Future] = {}
        self.last: dict[str, datetime] = self._baseline(start)

    def _baseline(self, start: datetime | None) -> dict[str, datetime]:
        """The last tick each job handled (from job_runs), or now: ticks before the first start do not run."""
        now = start or datetime.now(ZoneInfo(self._tz))
        try:
            with warehouse.connect_raw() as conn:
                seen = dict(
                    conn.execute(
                        "select job, max(scheduled_for) from ops.job_runs"
                        " where scheduled_for is not null group by job"
                    ).fetchall()
                )
        except (KpiError, psycopg.Error) as exc:
            log.warning("scheduler: no job history (%s); counting from now", exc)
            seen = {}
        return {name: seen.get(name) or now for name in self.jobs}

    @property
    def _tz(self) -> str:
        return next(iter(self.jobs.values())).timezone if self.jobs else settings().timezone

    def reload_if_changed(self) -> bool:
        mtime = self.schedules.stat().st_mtime
        if mtime == self._mtime:
            return False
        try:
            jobs = load_schedules(self.schedules)
        except JobError as exc:
            log.error("scheduler: keeping the old schedule, the new file is broken: %s", exc)
            return False
        self._mtime = mtime
        now = datetime.now(ZoneInfo(self._tz))
        self.last = {name: self.last.get(name, now) for name in jobs}
        self.jobs = jobs
        log.info("scheduler: reloaded %s (%d jobs)", self.schedules, len(jobs))
        return True

    def due(self, now: datetime) -> list[tuple[Job, datetime]]:
        out = []
        for job in self.jobs.values():
            if not (job.enabled and job.cron):
                continue
            local = now.astimezone(ZoneInfo(job.timezone))
            t = due_tick(job.cron, self.last.get(job.name), local)
            if t is not None:
                out.append((job, t))
        return out

    def tick(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Start every due job; returns (job, tick) pairs started."""
        now = now or datetime.now(ZoneInfo(self._tz))
        started = []
        for job, t in self.due(now):
            self.last[job.name] = t
            busy = self.running.get(job.name)
            if busy is not None and not busy.done():
                self._record_skip(job, t)
                continue
            self.running[job.name] = self.pool.submit(self._run, job.name, t)
            started.append((job.name, t))
        return started

    def _run(self, name: str, t: datetime) -> JobRun | None:
        try:
            return run_job(name, trigger="scheduled", schedules=self.schedules, scheduled_for=t)
        except Exception as exc:  # the loop must survive a broken job definition
            log.exception("scheduler: job %s at %s could not run: %s", name, t, exc)
            return None

    def _record_skip(self, job: Job, t: datetime) -> None:
        log.warning("scheduler: %s is still running, tick %s skipped", job.name, t)
        with warehouse.connect_raw() as conn:
            conn.execute(
                "insert into ops.job_runs (job, status, trigger, scheduled_for, finished_at, duration_s, error, host, pid)"
                " values (%s, 'skipped', 'scheduled', %s, clock_timestamp(), 0, %s, %s, %s)"
                " on conflict (job, scheduled_for) where scheduled_for is not null do nothing",
                [job.name, t, "skipped: the previous run is still going", socket.gethostname(), os.getpid()],
            )
            conn.commit()

    def seconds_to_next(self, now: datetime) -> float:
        """Until the earliest next tick of any job (so the loop wakes on time)."""
        nexts = [
            croniter(j.cron, now.astimezone(ZoneInfo(j.timezone))).get_next(datetime)
            for j in self.jobs.values()
            if j.enabled and j.cron
        ]
        return max(0.0, min((n - now).total_seconds() for n in nexts)) if nexts else 3600.0

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)


def schedule_loop(
    schedules: str | Path | None = None,
    stop: threading.Event | None = None,
    poll_s: float = 30.0,
    deliver_mail: bool = True,
    max_workers: int = 4,
) -> None:
    """Run due jobs until ``stop`` is set (or Ctrl-C): what ``kpi jobs schedule`` runs.

    Wakes at each job's next tick (or every ``poll_s``), re-reads the schedule file when it changes,
    and with ``deliver_mail`` runs an :class:`~kpi_lib.mail.OutboxWorker` so queued emails go out and
    failed ones are retried.
    """
    stop = stop or threading.Event()
    sched = Scheduler(schedules, max_workers)
    worker = mail.OutboxWorker().start() if deliver_mail else None
    log.info("scheduler: %d job(s) from %s", len(sched.jobs), sched.schedules)
    try:
        while not stop.is_set():
            sched.reload_if_changed()
            now = datetime.now(ZoneInfo(sched._tz))
            sched.tick(now)
            stop.wait(min(poll_s, sched.seconds_to_next(now) + 0.05))
    except KeyboardInterrupt:
        log.info("scheduler: stopping")
    finally:
        sched.shutdown(wait=True)
        if worker is not None:
            worker.stop()
