"""`kpi rules`: list alert rules, show one's versions, preview one, snooze one (the "Alert rules" page's
other door)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..errors import KpiError
from .base import console

rules_app = typer.Typer(
    help='Alert rules (the "Alert rules" page): list, versions, preview.', no_args_is_help=True
)


def _find(name: str) -> dict:
    from ..thresholds import store

    rows = store.listing()
    hit = rows[rows["name"] == name]
    if hit.empty:
        raise KpiError(f"No alert rule called {name!r}; `kpi rules list` shows them.")
    return hit.iloc[0].to_dict()


@rules_app.command("list")
def list_rules() -> None:
    """Every rule: what makes it fire, its state and version."""
    from ..thresholds import spec, store

    table = Table("rule", "fires when", "state", "version", "last change")
    for r in store.listing().itertuples():
        rule = spec.parse(r.spec)
        state = (
            f"snoozed until {rule.snoozed_until:%Y-%m-%d %H:%M}"
            if rule.snoozed_until
            else ("on" if rule.enabled else "off")
        )
        table.add_row(
            r.name, rule.describe(), state, str(r.version), f"{r.updated_by} {r.updated_at:%Y-%m-%d %H:%M}"
        )
    console.print(table)


@rules_app.command("versions")
def versions(name: Annotated[str, typer.Argument(help="The rule's name")]) -> None:
    """Every saved version of a rule, oldest first (who, when, what changed)."""
    from ..thresholds import store

    rows = store.versions(int(_find(name)["id"]))
    for v in rows.itertuples():
        console.print(f"v{v.version} {v.change} by {v.saved_by} at {v.saved_at:%Y-%m-%d %H:%M}: {v.spec}")


@rules_app.command("preview")
def preview(
    name: Annotated[str, typer.Argument(help="The rule's name")],
    as_of: Annotated[
        str | None, typer.Option(help="Preview as of this time (default: the data's as-of)")
    ] = None,
    days: Annotated[int, typer.Option(help="How many days back")] = 90,
) -> None:
    """How often the rule would have fired in the last days (the page's backtest preview)."""
    from ..thresholds import live, spec

    result = live.backtest(spec.parse(_find(name)["spec"]), as_of=as_of, days=days)
    console.print(result.sentence())
    for f in result.firings:
        console.print(f"  {f.start:%Y-%m-%d %H:%M}  {f.value:,.6g} (needed past {f.bound:,.6g})")


@rules_app.command("snooze")
def snooze(
    name: Annotated[str, typer.Argument(help="The rule's name, or the incident's number with --incident")],
    until: Annotated[
        str | None, typer.Option(help="Quiet until this time, e.g. '2026-03-01 07:00' (omit to wake)")
    ] = None,
    incident: Annotated[
        bool, typer.Option(help="Snooze the incident with this number instead of a rule")
    ] = False,
) -> None:
    """Snooze a rule (a new version, audited) or an incident until a time, as the local user."""
    from .. import auth
    from ..thresholds import store

    user = auth.local_user()
    if incident and not name.isdigit():
        raise KpiError(f"--incident takes the incident's number (kpi alerts list shows them), not {name!r}.")
    if incident:
        store.snooze_incident(int(name), until, user)
    else:
        store.snooze(int(_find(name)["id"]), until, user)
    console.print(
        f"{'incident #' if incident else 'rule '}{name}: " + (f"quiet until {until}" if until else "awake")
    )
