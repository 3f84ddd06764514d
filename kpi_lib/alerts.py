"""Alerts: new incidents in ``ops.anomalies`` become routed, de-duplicated emails in the outbox; and
the incident lifecycle (acknowledge, resolve) that dashboards and the CLI call.

    >>> from kpi_lib import alerts
    >>> result = alerts.notify_new_incidents(provenance=jobs.provenance(run_id))   # doctest: +SKIP
    >>> result.emails        # [{'outbox_id': 7, 'recipients': [...], 'subject': '[KPI alert] 2 new ...'}]
    >>> alerts.acknowledge(12, "ana", "looking into it"); alerts.resolve(12, "ana", "fixed the feed")

Which incidents alert: status ``open``, severity at least the route's ``min_severity``, never emailed
to that recipient before. Re-arm: once a series' incident was emailed to someone, a *newer* incident on
the same series stays quiet for them until the emailed one is resolved, or until the route's
``cooldown`` has passed since that email. The outbox row and the ``ops.alert_notifications`` rows are
written in one transaction, under an advisory lock, so concurrent runs cannot double-send.

Routing (``schedules/alerts.yml``, or a dict in the same shape)::

    defaults:                        # for incidents whose KPI no route names
      recipients: [ops@kpi.local]
      min_severity: medium           # low | medium | high
      cooldown: 24h                  # re-arm a series this long after its alert even if unresolved
                                     # (s, m, h, d, w suffixes; "never": only resolving re-arms)
    routes:                          # every matching route applies (recipients are merged)
      - kpi: revenue                 # a KPI name from catalog.yml, or "*" for every KPI
        recipients: [finance@kpi.local, "CFO <cfo@kpi.local>"]
        min_severity: low            # default: defaults.min_severity
        cooldown: 6h                 # default: defaults.cooldown
      - kpi: orders
        where: {region: Europe}      # only this series (dimension: value, a list, or "*")
        recipients: [emea@kpi.local]

A route with ``kpi: "*"`` matches every KPI, so ``defaults`` then never applies. A recipient named by
several matching routes gets the incident once, under the most permissive severity and the
shortest cooldown among them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import psycopg
from markupsafe import Markup
from psycopg.rows import dict_row
from pydantic import BeforeValidator

from . import auth, mail, thresholds, warehouse, yamlfile
from . import incidents as incident_store
from .config import settings
from .errors import AlertError, AuthError
from .reports.alert_email import (  # the e-mail itself is built there; who gets which incidents, here
    INCIDENT_COLUMNS,
    MAX_CHARTS,
    ChartCache,
    alert_access,
    alert_report,
    build_alert_email,
    business_tz,
    by_severity,
    when_text,
)
from .reports.report import BLOCKS, Report
from .scope import RowScope
from .yamlfile import Strict

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high")
_local = incident_store.local_time


def default_routes() -> Path:
    """The routing file: ``alerts.yml`` in the schedules folder (KPI_SCHEDULES_DIR)."""
    return settings().schedules_dir / "alerts.yml"


# --- routing ------------------------------------------------------------------------------------


def parse_duration(value: Any, what: str = "cooldown") -> timedelta:
    """``"24h"``, ``"30m"``, ``"2d"``, ``"90s"``, ``"never"``, or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if str(value).strip().lower() == "never":
        return timedelta(days=36500)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
    if not m:
        raise AlertError(f"{what}={value!r} is not a duration; write e.g. 90s, 30m, 24h, 2d or 1w.")
    unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[
        m.group(2)
    ]
    return timedelta(**{unit: float(m.group(1))})


def _severity(value: Any) -> str:
    s = str(value).lower()
    if s not in SEVERITIES:
        raise ValueError(f"min_severity {value!r} must be one of {', '.join(SEVERITIES)}")
    return s


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except AlertError as exc:
        raise ValueError(str(exc)) from None


Severity = Annotated[str, BeforeValidator(_severity)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Values = Annotated[
    tuple[str, ...], BeforeValidator(lambda v: tuple(str(x) for x in (v if isinstance(v, list) else [v])))
]


class _DefaultsSpec(Strict):
    recipients: list[str] | str = []
    min_severity: Severity = "medium"
    cooldown: Duration = timedelta(hours=24)


class _RouteSpec(Strict):
    kpi: str
    recipients: list[str] | str
    min_severity: Severity | None = None  # None: the defaults' bar
    cooldown: Duration | None = None
    where: dict[str, Values] = {}


class _RoutingFile(Strict):
    defaults: _DefaultsSpec = _DefaultsSpec()
    routes: list[_RouteSpec] = []


@dataclass(frozen=True)
class Route:
    """Who hears about which incidents."""

    kpi: str
    recipients: tuple[str, ...]
    min_severity: str = "medium"
    cooldown: timedelta = timedelta(hours=24)
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # dimension -> values ("*" = any)

    def matches(self, incident: Mapping[str, Any]) -> bool:
        if self.kpi not in ("*", incident["kpi"]):
            return False
        if not self.where:
            return True
        values = self.where.get(incident.get("dimension") or "")
        return values is not None and ("*" in values or str(incident.get("dim_value")) in values)

    def accepts(self, severity: str) -> bool:
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1
        return rank >= SEVERITIES.index(self.min_severity)


@dataclass(frozen=True)
class Routing:
    """The parsed routing file: ``defaults`` plus ``routes``."""

    defaults: Route
    routes: tuple[Route, ...]
    source: str = "<dict>"

    def recipients_for(self, incident: Mapping[str, Any]) -> dict[str, timedelta]:
        """Recipient -> cooldown for one incident (empty when its severity is below every route's bar)."""
        matched = [r for r in self.routes if r.matches(incident)] or [self.defaults]
        out: dict[str, timedelta] = {}
        for r in matched:
            if not r.accepts(str(incident.get("severity"))):
                continue
            for rcpt in r.recipients:
                out[rcpt] = min(out.get(rcpt, r.cooldown), r.cooldown)
        return out


def load_routing(source: str | Path | Mapping[str, Any] | Routing | None = None) -> Routing:
    """Read the routing config (default ``schedules/alerts.yml``); see the module docstring."""
    if isinstance(source, Routing):
        return source
    if isinstance(source, Mapping):
        name = "<dict>"
        doc = yamlfile.check(dict(source), _RoutingFile, AlertError, name)
    else:
        path = Path(source) if source else default_routes()
        if not path.is_file():
            raise AlertError(
                f"No alert routing file at {path}; create it (format: kpi_lib/alerts.py docstring)."
            )
        name = str(path)
        doc = yamlfile.read(path, _RoutingFile, AlertError)
    d = doc.defaults
    defaults = Route(
        "*",
        tuple(mail.normalise_recipients(d.recipients)) if d.recipients else (),
        d.min_severity,
        d.cooldown,
    )
    routes = []
    for i, r in enumerate(doc.routes):
        try:
            recipients = tuple(mail.normalise_recipients(r.recipients))
        except AlertError as exc:
            raise AlertError(f"{name} routes.{i}: {exc}") from exc
        routes.append(
            Route(
                kpi=r.kpi,
                recipients=recipients,
                min_severity=r.min_severity or d.min_severity,
                cooldown=r.cooldown if r.cooldown is not None else d.cooldown,
                where=dict(r.where),
            )
        )
    return Routing(defaults, tuple(routes), name)


# --- incidents ----------------------------------------------------------------------------------


def get_incident(anomaly_id: int, conn: psycopg.Connection | None = None) -> dict[str, Any]:
    """One row of ops.anomalies as a dict; AlertError when there is none."""
    own = conn is None
    c = conn or warehouse.connect_raw()
    try:
        with c.cursor(row_factory=dict_row) as cur:
            row = cur.execute("select * from ops.anomalies where id = %s", [anomaly_id]).fetchone()
    finally:
        if own:
            c.close()
    if row is None:
        raise AlertError(f"No incident #{anomaly_id} in ops.anomalies; list them with `kpi alerts list`.")
    return row


def incidents(
    status: Sequence[str] | None = ("open", "acknowledged"),
    kpis: Sequence[str] | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Incidents as a DataFrame, newest first, as the current reader sees them (see
    :func:`kpi_lib.incidents.listing`, the incident store's reader)."""
    return incident_store.listing(status, kpis, limit)


def _transition(anomaly_id: int, user: str, comment: str | None, action: str) -> dict[str, Any]:
    if not user or not str(user).strip():
        raise AlertError(
            f"Who is doing this? {action} needs a user name (it goes in the incident's audit trail)."
        )
    if auth.exists(user) and not auth.user(user).can_act:  # a dashboard user: their role decides
        auth.audit(user, "refused", f"incident {anomaly_id}", wanted=action)
        raise AuthError(
            f"{user} may not {action} incidents: their role may look, not act (analysts and above may)."
        )
    with warehouse.connect_raw() as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("select * from ops.anomalies where id = %s for update", [anomaly_id]).fetchone()
            if row is None:
                raise AlertError(
                    f"No incident #{anomaly_id} in ops.anomalies; list them with `kpi alerts list`."
                )
            status = row["status"]
            if action == "acknowledge":
                if status == "resolved":
                    raise AlertError(
                        f"Incident #{anomaly_id} is already resolved (by {row['resolved_by']} at "
                        f"{when_text(row['resolved_at'])}); there is nothing left to acknowledge."
                    )
                if status == "acknowledged":
                    log.info("incident #%d already acknowledged by %s", anomaly_id, row["acknowledged_by"])
                    return row
                row = cur.execute(
                    "update ops.anomalies set status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(),"
                    " comment = coalesce(%s, comment), updated_at = now() where id = %s returning *",
                    [user, comment, anomaly_id],
                ).fetchone()
            else:
                if status == "resolved":
                    log.info("incident #%d already resolved by %s", anomaly_id, row["resolved_by"])
                    return row
                row = cur.execute(
                    "update ops.anomalies set status = 'resolved', resolved_by = %s, resolved_at = now(),"
                    " comment = coalesce(%s, comment), updated_at = now() where id = %s returning *",
                    [user, comment, anomaly_id],
                ).fetchone()
            cur.execute(
                "insert into ops.anomaly_events (anomaly_id, actor, action, comment) values (%s, %s, %s, %s)",
                [anomaly_id, user, action, comment],
            )
        conn.commit()
    log.info("incident #%d %sd by %s", anomaly_id, action, user)
    auth.audit(user, action, f"incident {anomaly_id}", comment=comment)
    return row


def acknowledge(anomaly_id: int, user: str, comment: str | None = None) -> dict[str, Any]:
    """Mark an open incident as being handled (who, when, why). Acknowledging twice changes nothing."""
    return _transition(anomaly_id, user, comment, "acknowledge")


def resolve(anomaly_id: int, user: str, comment: str | None = None) -> dict[str, Any]:
    """Close an incident. Its series re-arms: the next incident on it alerts again."""
    return _transition(anomaly_id, user, comment, "resolve")


def add_comment(anomaly_id: int, user: str, comment: str) -> None:
    """A note on an incident's audit trail, without changing its status."""
    get_incident(anomaly_id)
    with warehouse.connect_raw() as conn:
        conn.execute(
            "insert into ops.anomaly_events (anomaly_id, actor, action, comment) values (%s, %s, 'comment', %s)",
            [anomaly_id, user, comment],
        )
        conn.commit()


def events(anomaly_id: int) -> pd.DataFrame:
    """The audit trail of one incident (acknowledge, resolve, comment), oldest first."""
    with warehouse.connect_raw() as conn:
        cur = conn.execute(
            "select at, actor, action, comment from ops.anomaly_events where anomaly_id = %s order by at, id",
            [anomaly_id],
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


@dataclass
class AlertResult:
    """What :func:`notify_new_incidents` did."""

    incidents: pd.DataFrame  # the incidents that went into an email this time
    emails: list[dict[str, Any]] = field(default_factory=list)  # outbox_id, recipients, subject, incidents
    suppressed: list[dict[str, Any]] = field(default_factory=list)  # anomaly_id, recipient, reason
    summary: Report | None = None  # every new incident in one report (what the job notebook shows)
    delivery: mail.DeliveryReport | None = None

    def _repr_html_(self) -> str:
        summary = Markup(self.summary._repr_html_()) if self.summary else ""
        return str(BLOCKS.alert_result(self.emails, len(self.suppressed), summary))


_NEW = """
select * from ops.anomalies
 where status = 'open'
   and (snoozed_until is null or snoozed_until <= %(now)s)
   and (%(kpis)s::text[] is null or kpi = any(%(kpis)s))
   and (%(since)s::timestamptz is null or started_at >= %(since)s)
   and (%(until)s::timestamptz is null or started_at <= %(until)s)
 order by started_at, id
"""

_FIRING = """
select distinct on (n.series_key, n.recipient) n.series_key, n.recipient, n.anomaly_id, n.notified_at
  from ops.alert_notifications n join ops.anomalies a on a.id = n.anomaly_id
 where a.status <> 'resolved' and n.series_key = any(%s)
 order by n.series_key, n.recipient, n.notified_at desc
"""


class _Readers:
    """Recipients who are dashboard users (their ``email`` in users.yml) get only the incidents
    their roles let them read: a Europe manager, Europe's; a viewer, none on a masked KPI."""

    def __init__(self) -> None:
        self._users: dict[str, auth.User | None] = {}

    def may_read(self, recipient: str, incident: Mapping[str, Any]) -> bool:
        from email.utils import parseaddr

        address = parseaddr(recipient)[1].lower()
        if address not in self._users:
            self._users[address] = auth.user_by_email(address)
        who = self._users[address]
        if who is None:
            return True  # an address, not a user: routing alone decides
        _, rows = alert_access([incident])
        return who.may_read([str(incident["kpi"])], RowScope.of(rows) if rows else None)


def _aware(value: Any) -> pd.Timestamp | None:
    """A time as given, in the business time zone when it names none."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize(business_tz()) if ts.tzinfo is None else ts


def notify_new_incidents(
    routes: str | Path | Mapping[str, Any] | Routing | None = None,
    *,
    kpis: Sequence[str] | None = None,
    since: Any = None,
    provenance: Mapping[str, Any] | None = None,
    deliver: bool = False,
    max_charts: int = MAX_CHARTS,
    now: datetime | None = None,
    until: Any = None,
) -> AlertResult:
    """Queue one email per group of recipients about the incidents they have not heard of yet.

    ``kpis``/``since``/``until`` narrow which incidents count (started at or after ``since``, and at or
    before ``until``: a job run as of a past time never mails what started after it). ``provenance``
    (e.g. :func:`kpi_lib.jobs.provenance`) goes into every email. ``deliver=True`` also runs one
    outbox pass, so the email leaves now instead of at the worker's next poll. Nothing new: no email.
    A snoozed incident (or one held by its alert rule's quiet hours) waits until ``snoozed_until``;
    ``now`` (aware, default the database's clock) decides that and the cooldowns.
    """
    routing = load_routing(routes)
    since_ts, until_ts = (_aware(v) for v in (since, until))
    charts = ChartCache()
    result = AlertResult(incidents=pd.DataFrame(columns=list(INCIDENT_COLUMNS)))
    with warehouse.connect_raw() as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi_lib.alerts'))")
        now = now or conn.execute("select now()").fetchone()[0]
        with conn.cursor(row_factory=dict_row) as cur:
            new = cur.execute(
                _NEW,
                {
                    "kpis": list(kpis) if kpis else None,
                    "since": since_ts.to_pydatetime() if since_ts is not None else None,
                    "until": until_ts.to_pydatetime() if until_ts is not None else None,
                    "now": now,
                },
            ).fetchall()
        if not new:
            conn.commit()
            log.info("alerts: no open incidents to consider")
            return result
        ids = [i["id"] for i in new]
        notified = set(
            conn.execute(
                "select anomaly_id, recipient from ops.alert_notifications where anomaly_id = any(%s)", [ids]
            ).fetchall()
        )
        firing = {
            (k, r): (a, at) for k, r, a, at in conn.execute(_FIRING, [list({i["series_key"] for i in new})])
        }
        plan: dict[str, list[dict]] = {}
        readers = _Readers()
        for inc in new:
            for rcpt, cooldown in routing.recipients_for(inc).items():
                if (inc["id"], rcpt) in notified:
                    continue
                if not readers.may_read(rcpt, inc):  # a user's address: their roles and rows decide
                    result.suppressed.append(
                        {
                            "anomaly_id": inc["id"],
                            "recipient": rcpt,
                            "reason": f"{rcpt} belongs to a user whose role or rows do not cover this incident",
                        }
                    )
                    continue
                fired = firing.get((inc["series_key"], rcpt))
                if fired and fired[0] != inc["id"] and now - fired[1] < cooldown:
                    result.suppressed.append(
                        {
                            "anomaly_id": inc["id"],
                            "recipient": rcpt,
                            "reason": f"incident #{fired[0]} on {inc['series_key']} was emailed at "
                            f"{when_text(fired[1])} and is not resolved (cooldown {cooldown})",
                        }
                    )
                    continue
                plan.setdefault(rcpt, []).append(inc)
                firing[(inc["series_key"], rcpt)] = (inc["id"], now)
        groups: dict[tuple[int, ...], list[str]] = {}
        for rcpt, items in plan.items():
            groups.setdefault(tuple(sorted(i["id"] for i in items)), []).append(rcpt)
        by_id = {i["id"]: i for i in new}
        for key, rcpts in sorted(groups.items()):
            items = [by_id[i] for i in key]
            email = build_alert_email(items, rcpts, provenance, charts, max_charts)
            dedup = "alert:" + hashlib.sha1(repr((key, sorted(rcpts))).encode()).hexdigest()
            outbox_id = mail.enqueue(email, dedup, conn=conn)
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into ops.alert_notifications (anomaly_id, series_key, recipient, outbox_id)"
                    " values (%s, %s, %s, %s) on conflict (anomaly_id, recipient) do nothing",
                    [(i["id"], i["series_key"], r, outbox_id) for i in items for r in rcpts],
                )
            result.emails.append(
                {
                    "outbox_id": outbox_id,
                    "recipients": rcpts,
                    "subject": email.subject,
                    "incidents": list(key),
                }
            )
        conn.commit()
    emailed = sorted({i for e in result.emails for i in e["incidents"]})
    if emailed:
        items = [by_id[i] for i in emailed]
        result.incidents = pd.DataFrame([{c: i.get(c) for c in INCIDENT_COLUMNS} for i in by_severity(items)])
        result.summary = alert_report(items, provenance, charts, max_charts)[0]
    log.info(
        "alerts: %d email(s) for %d incident(s), %d suppressed",
        len(result.emails),
        len(emailed),
        len(result.suppressed),
    )
    if deliver and result.emails:
        result.delivery = mail.deliver_pending()
    return result


# --- alerts from the live stream --------------------------------------------------------------

IDLE_SCAN_S = 10.0
MIN_SCAN_INTERVAL_S = 1.0
#: A minute scan is ~80 series of ADTK detection (0.6-1 s of CPU); back to back on a busy stream
#: it took a whole core from the dashboards. Scans start far enough apart to use at most this
#: share of one core; changes in between are folded into the next scan (alerts stay within ~3 s).
SCAN_CPU_SHARE = 0.25
MAX_SCAN_INTERVAL_S = (
    5.0  # ... but alerts come first: a slow scan (the first imports the engine) waits no longer
)


def listen(
    grains: Sequence[str] = ("minute", "hour"),
    routes: str | Path | Mapping[str, Any] | Routing | None = None,
    stop: threading.Event | None = None,
    warmup_s: float | None = None,
    on_scan: Any = None,
) -> None:
    """On every data change, scan the KPIs kept per minute and e-mail new incidents at once.

    Hour grain is scanned once per closed hour. ``warmup_s`` (default ``KPI_ALERT_WARMUP_S`` or
    300) ignores minute incidents that start in the listener's first minutes: when a live stream
    starts, the jump from yesterday's level is not news. ``on_scan(result)`` observes each scan.
    """
    from . import kpis as semantic
    from . import stream

    stop = stop or threading.Event()
    warmup = float(os.environ.get("KPI_ALERT_WARMUP_S", 300) if warmup_s is None else warmup_s)
    live = [
        k.name
        for k in semantic.definitions().values()
        if any("minute" in semantic.facts()[f].grains for f in k.facts)
    ]
    started = semantic.local_now()
    last_hour: Any = None

    def one_pass() -> None:
        nonlocal last_hour
        last_hour = _listen_once(grains, routes, live, started, warmup, last_hour, on_scan)

    # scan on every change, and every few seconds anyway: a minute that closes quietly (an outage
    # sends no events) must be looked at too
    worker = stream.Paced(
        one_pass,
        name="alert-listener",
        min_interval_s=MIN_SCAN_INTERVAL_S,
        share=SCAN_CPU_SHARE,
        max_interval_s=MAX_SCAN_INTERVAL_S,
        idle_s=IDLE_SCAN_S,
        stop=stop,
    )
    log.info("alert listener: minute scans of %s, warm-up %.0fs", ", ".join(live), warmup)
    worker.start(run_now=True, thread=False)
    try:
        worker.run()  # a failed scan or e-mail is logged, and the next change retries it
    finally:
        worker.stop()


def _listen_once(grains, routes, live, started, warmup, last_hour, on_scan):
    """One listener pass: scan what changed, e-mail what is new. Returns the last hour scanned."""
    from . import kpis as semantic
    from .anomaly.scan import scan

    now = semantic.local_now()
    found: list[int] = []
    reach: list[datetime] = []  # the starts of new incidents, which can precede the scan's window
    scales = thresholds.budget_scales()  # sensitivity set on the "Alert rules" page, read each pass
    if "minute" in grains:
        # from the minute the warm-up ends in: a spike in that minute is news, whatever second it began
        since = max(
            now - timedelta(minutes=10), semantic.floor_period(started + timedelta(seconds=warmup), "minute")
        )
        if since < now:
            res = scan(
                live, since=since, grains=("minute",), include_partial=True, now=now, budget_scale=scales
            )
            found += res.new_ids
            if res.new_since is not None:
                reach.append(res.new_since)
            if on_scan:
                on_scan(res)
    hour = semantic.floor_period(now, "hour")
    if "hour" in grains and hour != last_hour:
        # hours that began before the warm-up ended are not news either (a stream starting up)
        since = max(
            hour - timedelta(hours=2), semantic.next_period(started + timedelta(seconds=warmup), "hour")
        )
        res = scan(since=since, grains=("hour",), now=now, budget_scale=scales) if since < hour else None
        last_hour = hour
        if res is not None:
            found += res.new_ids
            if res.new_since is not None:
                reach.append(res.new_since)
            if on_scan:
                on_scan(res)
    # alert rules, re-read on every pass (an edit on the page applies at the next one); their
    # incidents start at a period's beginning (a day rule's at midnight), so the e-mail window
    # reaches back to them, and to incidents whose snooze or quiet hours just ended
    fired = thresholds.run(now=now)
    starts = [_local(t) for t in [*thresholds.released(now), *reach]] + [now - timedelta(hours=3)]
    if fired.new_ids:
        found += fired.new_ids
        starts += [_local(t) for t in fired.starts]
    if found or len(starts) > 1:
        out = notify_new_incidents(
            routes,
            since=min(starts),
            deliver=True,
            provenance={
                "job": "live alert listener (kpi alerts listen)",
                "trigger": "stream",
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
        )
        log.info("alert listener: %d new incidents, %d e-mails", len(found), len(out.emails))
    return last_hour
