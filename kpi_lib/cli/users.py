"""kpi users and kpi audit: who may see what, their sessions, and the audit log."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from ..errors import KpiError
from .base import actor, console, err
from .tokens import tokens_app

users_app = typer.Typer(help="Dashboard users and roles ($KPI_HOME/users.yml).", no_args_is_help=True)
users_app.add_typer(tokens_app, name="token")  # kpi users token add|list|revoke
audit_app = typer.Typer(
    help="The audit log: search it (kpi audit --actor ...) or check its chain (kpi audit verify).",
    invoke_without_command=True,
)


@users_app.command("add")
def users_add(
    login: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[
        list[str] | None, typer.Option(help="admin | executive | analyst | viewer (repeatable)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="DIM=VALUE row limit, repeatable (region, channel, category)")
    ] = None,
    email: Annotated[
        str | None, typer.Option(help="E-mail address (alerts to it follow the user's roles)")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts)")
    ] = False,
    keep_password: Annotated[bool, typer.Option(help="Update roles/scope of an existing user only")] = False,
) -> None:
    """Create or update a dashboard user. The password is prompted for (or read from stdin), never
    taken as an argument: arguments show in every process list. A new password ends the user's sessions."""
    from .. import auth

    if keep_password:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    limits: dict[str, list[str]] = {}
    for item in scope or []:
        dim, sep, value = item.partition("=")
        if not sep or not value.strip():
            raise KpiError(f"--scope {item!r} should look like DIM=VALUE, e.g. --scope region=Europe.")
        limits.setdefault(dim.strip(), []).append(value.strip())
    roles = role or (auth.user(login).roles if keep_password and auth.exists(login) else ["executive"])
    changed = auth.set_user(login, password, roles, name=name, scope=limits or None, email=email)
    ended = auth.sessions.end_all(login, "password changed") if changed else 0
    auth.audit(actor(), "user set", login, roles=list(roles), scope=limits or None, sessions_ended=ended)
    console.print(f"user {login} saved" + (f"; {ended} session(s) ended" if ended else ""))


@users_app.command("list")
def users_list() -> None:
    """List users and what they may see."""
    from .. import auth

    t = Table("user", "name", "roles", "masked KPIs", "rows")
    for u in auth.list_users():
        t.add_row(u.login, u.name, ", ".join(u.roles), ", ".join(sorted(u.masked)) or "-", u.scope.describe())
    console.print(t)


@users_app.command("remove")
def users_remove(login: Annotated[str, typer.Argument()]) -> None:
    """Remove a dashboard user (and end their sessions)."""
    from .. import auth

    if not auth.remove_user(login):
        console.print(f"no user {login}")
        return
    ended = auth.sessions.end_all(login, "user removed")
    auth.audit(actor(), "user removed", login, sessions_ended=ended)
    console.print(f"removed {login}; {ended} session(s) ended")


@users_app.command("sessions")
def users_sessions(
    login: Annotated[str | None, typer.Argument(help="Only this user's sessions")] = None,
    revoke: Annotated[bool, typer.Option(help="End the listed sessions now")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Include ended and expired sessions")] = False,
) -> None:
    """Sign-in sessions: who is signed in, from where, since when; --revoke ends them."""
    from .. import auth

    if revoke:
        if not login:
            raise KpiError("Say whose sessions to end: `kpi users sessions LOGIN --revoke`.")
        n = auth.sessions.end_all(login, f"revoked by {actor()}")
        auth.audit(actor(), "sessions revoked", login, count=n)
        console.print(f"ended {n} session(s) of {login}")
        return
    t = Table("user", "signed in", "last seen", "expires", "ended", "address", "browser")
    for s in auth.sessions.listing(login, include_ended=all_):
        t.add_row(
            s.login,
            f"{s.created_at:%Y-%m-%d %H:%M}",
            f"{s.last_seen_at:%Y-%m-%d %H:%M}",
            f"{s.expires_at:%Y-%m-%d %H:%M}",
            f"{s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "-",
            s.ip or "-",
            (s.user_agent or "-")[:40],
        )
    console.print(t)


@audit_app.callback()
def audit_search(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only this user")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. sign-in, export, acknowledge")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target contains this text")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (e.g. 2026-12-01)")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows, newest first")] = 50,
) -> None:
    """Search the audit log, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from .. import auth

    df = auth.search_audit(actor, action, target, since, until, limit)
    t = Table("#", "at", "actor", "action", "target", "details")
    for r in df.itertuples(index=False):
        t.add_row(
            str(r.seq),
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.actor,
            r.action,
            r.target or "",
            json.dumps(r.details)[:80],
        )
    console.print(t)


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain: any edited, removed or inserted row breaks it."""
    from .. import auth

    verdict = auth.verify_audit()
    if verdict.ok:
        console.print(f"[green]audit log intact[/]: {verdict.rows:,} rows; head {verdict.head}")
        return
    err.print(
        f"[bold red]audit log tampered with[/]: row #{verdict.broken_at} breaks the chain ({verdict.reason}); "
        f"the {verdict.rows:,} rows before it are intact."
    )
    raise typer.Exit(1)
