"""Row scopes: which rows a reader may see, and whose scope the current code runs under.

A :class:`RowScope` limits rows per dimension (a Europe manager: ``region in (Europe)``): values
OR within a dimension, dimensions AND together. PostgreSQL enforces it (row-level security and
barrier views, see ``sql/014_row_security.sql``); kpi_lib hands each read transaction a signed
copy of the scope (:mod:`kpi_lib.warehouse`), keys caches by it and plans queries with it.

Who is reading is a context variable, set by each surface for the user it serves::

    with scope.using(user.scope):
        kpis.query("revenue", "total")     # Europe's revenue only, from the database itself

Without one, a process serving pages (``kpi serve``'s Panel and Voila) reads nothing: a code path
that forgot its user fails closed. The CLI, notebooks and jobs read as ``KPI_USER`` (see
:func:`set_default_resolver`, which :mod:`kpi_lib.auth` registers), else everything.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

#: dimensions a scope may limit (columns present on the relations row security covers)
SCOPE_DIMENSIONS = ("region", "channel", "category")
#: set in the environment of the processes behind `kpi serve` (see kpi_lib.auth.identity)
SERVED_ENV = "KPI_PROXY_SECRET"


@dataclass(frozen=True)
class RowScope:
    """Allowed values per dimension; no limits = every row; ``nothing`` = no row at all."""

    limits: tuple[tuple[str, tuple[str, ...]], ...] = ()
    nothing: bool = False

    @classmethod
    def of(cls, mapping: Mapping[str, object] | None) -> RowScope:
        """``{"region": ["Europe"]}`` (or a single string) -> a scope; unknown dimensions refused."""
        limits = []
        for dim, values in (mapping or {}).items():
            if dim not in SCOPE_DIMENSIONS:
                raise ValueError(f"A row scope can limit {', '.join(SCOPE_DIMENSIONS)}; not {dim!r}.")
            vals = (values,) if isinstance(values, str) else tuple(str(v) for v in values or ())
            if not vals:
                raise ValueError(f"Row scope on {dim} lists no value; name at least one (e.g. {dim}=Europe).")
            limits.append((dim, tuple(sorted(set(vals)))))
        return cls(tuple(sorted(limits)))

    @property
    def everything(self) -> bool:
        return not self.limits and not self.nothing

    def values(self, dim: str) -> tuple[str, ...] | None:
        """The allowed values of ``dim``; None when the scope does not limit it."""
        return dict(self.limits).get(dim)

    def allows(self, dim: str, value: str) -> bool:
        if self.nothing:
            return False
        allowed = self.values(dim)
        return allowed is None or value in allowed

    def as_dict(self) -> dict[str, list[str]]:
        return {d: list(v) for d, v in self.limits}

    def key(self) -> str:
        """A stable text for cache keys."""
        return "none" if self.nothing else json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        """'region: Europe; channel: Web' / 'all rows' / 'no rows'."""
        if self.nothing:
            return "no rows"
        return "; ".join(f"{d}: {', '.join(v)}" for d, v in self.limits) or "all rows"


EVERYTHING = RowScope()
NOTHING = RowScope(nothing=True)

_current: contextvars.ContextVar[RowScope | None] = contextvars.ContextVar("kpi_row_scope", default=None)
_resolver: Callable[[], RowScope] | None = None
_process: RowScope | None = None  # a process that serves one user only (a Voila kernel)


def set_default_resolver(resolver: Callable[[], RowScope]) -> None:
    """Who reads when no surface said so (outside a served process): kpi_lib.auth registers KPI_USER's scope."""
    global _resolver
    _resolver = resolver


def set_process_scope(value: RowScope) -> None:
    """This whole process reads as one user (a Voila kernel serves one viewer)."""
    global _process
    _process = value


def served() -> bool:
    """True inside the processes behind `kpi serve`, where every read must name its user."""
    return bool(os.environ.get(SERVED_ENV))


def current() -> RowScope:
    """The scope the current code reads under."""
    value = _current.get()
    if value is not None:
        return value
    if _process is not None:
        return _process
    if served():
        return NOTHING
    return _resolver() if _resolver is not None else EVERYTHING


@contextmanager
def using(value: RowScope) -> Iterator[RowScope]:
    """Read under ``value`` inside the block (this thread or task only)."""
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)
