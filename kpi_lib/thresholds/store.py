"""Alert rules in the warehouse (``ops.alert_rules``), versioned and audited.

Every save writes a new row to ``ops.alert_rule_versions`` (the rule's whole history stays) and an
``ops.audit_log`` entry with who, when, and the rule before and after. Readers (the live listener,
the scheduled job) call :func:`active` on every pass, so a change applies at their next pass, with
no restart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .. import auth, warehouse
from .. import kpis as semantic
from ..config import settings
from ..errors import AuthError
from ..scope import EVERYTHING, RowScope
from .spec import BUDGET_SCALE, Rule, RuleError, _time, parse

log = logging.getLogger(__name__)


def _may_edit(user: auth.User) -> None:
    if not user.can_edit_rules:
        auth.audit(user.login, "refused", "alert rules", wanted="edit")
        raise AuthError(f"{user.login} may not change alert rules: admins and analysts may.")


def save(
    spec: Mapping[str, Any], user: auth.User, rule_id: int | None = None, change: str | None = None
) -> dict:
    """Create a rule (``rule_id=None``) or save a new version of one; returns its current row.

    The user must be allowed to edit rules (admins and analysts). The KPI must be one the user
    may read unmasked: a rule must not tell anyone what their role hides."""
    _may_edit(user)
    rule = parse(spec, semantic.definitions())
    if not user.can_see(rule.kpi) or user.is_masked(rule.kpi):
        raise AuthError(f"{user.login} may not read {rule.kpi}, so may not set alerts on it.")
    rows = RowScope.of(rule.where) if rule.where else EVERYTHING
    if not auth.within(rows, user.scope):  # a scoped analyst watches their own rows only
        raise AuthError(f"{user.login} may read only {user.scope.describe()}: filter the rule to those rows.")
    after = rule.to_dict()
    with warehouse.connect_raw() as conn, conn.cursor(row_factory=dict_row) as cur:
        clash = cur.execute(
            "select id from ops.alert_rules where name = %s and not deleted and id is distinct from %s",
            [rule.name, rule_id],
        ).fetchone()
        if clash:
            raise RuleError(
                f"name: a rule called {rule.name!r} exists already (#{clash['id']}); choose another name."
            )
        if rule_id is None:
            cur.execute(
                "delete from ops.alert_rules where name = %s and deleted", [rule.name]
            )  # reuse a name
            row = cur.execute(
                "insert into ops.alert_rules (name, kpi, spec, created_by, updated_by)"
                " values (%s, %s, %s, %s, %s) returning *",
                [rule.name, rule.kpi, Jsonb(after), user.login, user.login],
            ).fetchone()
            before, change = None, change or "created"
        else:
            old = cur.execute(
                "select * from ops.alert_rules where id = %s and not deleted for update", [rule_id]
            ).fetchone()
            if old is None:
                raise RuleError(
                    f"There is no alert rule #{rule_id}; it may have been deleted. Reload the page."
                )
            before = old["spec"]
            if before == after:
                conn.commit()
                return old
            row = cur.execute(
                "update ops.alert_rules set name = %s, kpi = %s, spec = %s, version = version + 1,"
                " updated_by = %s, updated_at = now() where id = %s returning *",
                [rule.name, rule.kpi, Jsonb(after), user.login, rule_id],
            ).fetchone()
            change = change or "edited"
        cur.execute(
            "insert into ops.alert_rule_versions (rule_id, version, spec, saved_by, change)"
            " values (%s, %s, %s, %s, %s)",
            [row["id"], row["version"], Jsonb(after), user.login, change],
        )
        conn.commit()
    auth.audit(
        user.login,
        f"alert rule {change}",
        f"alert rule {row['id']} {rule.name}",
        version=row["version"],
        before=before,
        after=after,
    )
    log.info(
        "alert rule #%s %r %s by %s (version %s)", row["id"], rule.name, change, user.login, row["version"]
    )
    return row


def snooze(rule_id: int, until: datetime | str | None, user: auth.User) -> dict:
    """Snooze a rule until a time (None: wake it up). A new version, audited like any edit."""
    spec = dict(get(rule_id)["spec"])
    spec["snoozed_until"] = until
    return save(spec, user, rule_id, change="snoozed" if until else "woken")


def delete(rule_id: int, user: auth.User) -> None:
    """Retire a rule (its versions and incidents stay)."""
    _may_edit(user)
    with warehouse.connect_raw() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "update ops.alert_rules set deleted = true, version = version + 1, updated_by = %s,"
            " updated_at = now() where id = %s and not deleted returning *",
            [user.login, rule_id],
        ).fetchone()
        if row is None:
            raise RuleError(f"There is no alert rule #{rule_id}; it may have been deleted already.")
        cur.execute(
            "insert into ops.alert_rule_versions (rule_id, version, spec, deleted, saved_by, change)"
            " values (%s, %s, %s, true, %s, 'deleted')",
            [rule_id, row["version"], Jsonb(row["spec"]), user.login],
        )
        conn.commit()
    auth.audit(
        user.login,
        "alert rule deleted",
        f"alert rule {rule_id} {row['name']}",
        before=row["spec"],
        after=None,
    )


def get(rule_id: int) -> dict:
    with warehouse.connect_raw() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from ops.alert_rules where id = %s and not deleted", [rule_id]).fetchone()
    if row is None:
        raise RuleError(f"There is no alert rule #{rule_id}; list them with `kpi rules list`.")
    return row


def listing() -> pd.DataFrame:
    """Current rules, newest change first (id, name, kpi, version, spec, updated_by, updated_at)."""
    with warehouse.connect_raw() as conn:
        cur = conn.execute(
            "select id, name, kpi, version, spec, updated_by, updated_at from ops.alert_rules"
            " where not deleted order by updated_at desc, id desc"
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def versions(rule_id: int) -> pd.DataFrame:
    """Every saved version of a rule, oldest first."""
    with warehouse.connect_raw() as conn:
        cur = conn.execute(
            "select version, change, saved_by, saved_at, spec from ops.alert_rule_versions"
            " where rule_id = %s order by version",
            [rule_id],
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def active() -> list[Rule]:
    """The rules as they are now (read on every pass: edits apply without a restart). A stored rule
    that no longer parses (e.g. its KPI left catalog.yml) is logged and skipped, not fatal."""
    defs = semantic.definitions()
    with warehouse.connect_raw() as conn:
        rows = conn.execute("select id, spec from ops.alert_rules where not deleted order by id").fetchall()
    out = []
    for rid, spec in rows:
        try:
            rule = parse(spec if isinstance(spec, dict) else json.loads(spec), defs)
        except RuleError as exc:
            log.warning("alert rule #%s is skipped: %s", rid, exc)
            continue
        if rule.enabled:
            out.append(rule)
    return out


def sensitivities() -> dict[str, str]:
    """KPI -> anomaly sensitivity set by ``anomaly`` rules (for :func:`kpi_lib.anomaly.scan`)."""
    return {r.kpi: r.sensitivity for r in active() if r.condition == "anomaly"}


def budget_scales() -> dict[str, float]:
    """KPI -> factor on its anomaly rules' false-alarm budget (``scan(budget_scale=...)``)."""
    return {k: BUDGET_SCALE[level] for k, level in sensitivities().items()}


def snooze_incident(anomaly_id: int, until: datetime | str | None, user: auth.User) -> None:
    """No e-mail about this incident before ``until`` (business time); None lifts the snooze."""
    if not user.can_act:
        raise AuthError(f"{user.login} may not snooze incidents: their role may look, not act.")
    at = _time(until, "snooze until")
    tz = settings().timezone
    when = pd.Timestamp(at).tz_localize(tz).to_pydatetime() if at is not None else None
    with warehouse.connect_raw() as conn:
        row = conn.execute(
            "update ops.anomalies set snoozed_until = %s, updated_at = now() where id = %s returning id",
            [when, anomaly_id],
        ).fetchone()
        if row is None:
            raise RuleError(f"No incident #{anomaly_id} in ops.anomalies; list them with `kpi alerts list`.")
        conn.execute(
            "insert into ops.anomaly_events (anomaly_id, actor, action, comment) values (%s, %s, 'snooze', %s)",
            [anomaly_id, user.login, f"until {at:%Y-%m-%d %H:%M}" if at else "snooze lifted"],
        )
        conn.commit()
    auth.audit(user.login, "snooze", f"incident {anomaly_id}", until=at)


def released(now: datetime) -> list[datetime]:
    """Start times of open incidents whose snooze or quiet hours are over and that nobody was
    e-mailed about yet: the listener's cue to send them."""
    tz = settings().timezone
    at = pd.Timestamp(now).tz_localize(tz).to_pydatetime() if pd.Timestamp(now).tzinfo is None else now
    with warehouse.connect_raw() as conn:
        rows = conn.execute(
            "select a.started_at from ops.anomalies a where a.status = 'open' and a.snoozed_until <= %s"
            " and a.snoozed_until > %s - interval '1 day'"  # released lately, not a holdover nobody gets
            " and not exists (select 1 from ops.alert_notifications n where n.anomaly_id = a.id)",
            [at, at],
        ).fetchall()
    return [r[0] for r in rows]


def incidents_of(name: str, limit: int = 10) -> pd.DataFrame:
    """A rule's latest incidents as the current reader may see them (row scope applies)."""
    with warehouse.read() as conn:
        cur = conn.exec_driver_sql(
            "select id, started_at, value, status, snoozed_until from ops.anomalies"
            " where rule = %(name)s and series_key like 'rule:%%' order by started_at desc limit %(n)s",
            {"name": name, "n": limit},
        )
        return pd.DataFrame(cur.fetchall(), columns=list(cur.keys()))
