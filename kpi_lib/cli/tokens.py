"""``kpi users token add|list|revoke``: personal API tokens (see :mod:`kpi_lib.auth.tokens`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..errors import KpiError
from .base import actor, console, err

tokens_app = typer.Typer(
    help="Personal API tokens for programs (bearer tokens for /api/).", no_args_is_help=True
)


@tokens_app.command("add")
def token_add(
    login: Annotated[str, typer.Argument(help="The user the token acts as (their roles and rows apply)")],
    name: Annotated[str, typer.Option(help="What uses it, e.g. slack-bot")],
) -> None:
    """Make a token and print it once: it is stored hashed and cannot be shown again."""
    from .. import auth
    from ..auth import tokens

    secret = tokens.add(login, name)
    auth.audit(actor(), "api token added", login, name=name)
    err.print(f"token {name!r} for {login} (copy it now; it is not shown again):")
    print(secret)  # noqa: T201 - the one place the secret is shown; stdout, so scripts can capture it


@tokens_app.command("list")
def token_list(
    login: Annotated[str | None, typer.Argument(help="Only this user's tokens")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens")] = False,
) -> None:
    """Tokens with their name, first characters, creation and last use."""
    from ..auth import tokens

    t = Table("user", "name", "starts with", "created", "last used", "revoked")
    for tok in tokens.listing(login, include_revoked=all_):
        t.add_row(
            tok.login,
            tok.name,
            tok.prefix + "…",
            f"{tok.created_at:%Y-%m-%d %H:%M}",
            f"{tok.last_used_at:%Y-%m-%d %H:%M}" if tok.last_used_at else "never",
            f"{tok.revoked_at:%Y-%m-%d %H:%M}" if tok.revoked_at else "-",
        )
    console.print(t)


@tokens_app.command("revoke")
def token_revoke(
    login: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Option(help="The token's name (kpi users token list shows them)")],
) -> None:
    """Revoke a token: requests carrying it are refused (401) within a second."""
    from .. import auth
    from ..auth import tokens

    n = tokens.revoke(login, name)
    if not n:
        raise KpiError(
            f"{login} has no live token named {name!r}; `kpi users token list {login}` shows them."
        )
    auth.audit(actor(), "api token revoked", login, name=name)
    console.print(f"token {name!r} of {login} revoked")
