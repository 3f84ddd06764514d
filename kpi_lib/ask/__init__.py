"""Ask: plain-English questions answered exactly, with their sources, declining rather than guessing.

    import kpi_lib
    a = kpi_lib.ask("revenue in Europe last month")
    a.value, a.text          # the number (from kpis.query) and the sentence
    a.spec, a.sql            # the reading that ran and its SQL (bound parameters)
    a.to_dict()              # the JSON contract of `kpi ask --format json`
    a                        # in JupyterLab: a card with the number, a chart and the provenance

    %load_ext kpi_lib.ask
    %ask which region had the highest revenue last month?

Flow: question -> its lines without a chat or e-mail wrapping and asides (``wording.unwrap``,
``parser.without_asides``) -> :mod:`~kpi_lib.ask.wording` (plain words) -> :mod:`~kpi_lib.ask.lexicon` +
:mod:`~kpi_lib.ask.timephrases` ->
:mod:`~kpi_lib.ask.parser` (a typed :class:`kpi_lib.kpis.Question`, or a decline) ->
:mod:`~kpi_lib.ask.answerer` (``kpis.query``) / :mod:`~kpi_lib.ask.why` -> :class:`Answer`
(rendered by :mod:`~kpi_lib.ask.render`), recorded in ops.questions and the audit log.
"""

from __future__ import annotations

import logging
import sys
import time
import types
from typing import Any

from .. import auth, kpis
from ..errors import KpiError
from .answer import Answer

log = logging.getLogger(__name__)


def ask(
    question: str,
    as_of: Any = None,
    user: auth.User | None = None,
    surface: str = "notebook",
    record: bool = True,
) -> Answer:
    """Answer ``question`` for ``user`` (default: who is looking, :func:`kpi_lib.auth.current_user`).

    Relative dates count from ``as_of`` (default :func:`kpi_lib.kpis.as_of`: now while data is
    live, else the latest data). Never raises for a question it cannot answer: the Answer's status
    is then ``decline`` or ``clarify`` with the reason.
    """
    from .answerer import answer
    from .lexicon import lexicon
    from .parser import parse

    t0 = time.perf_counter()
    user = user or auth.current_user()
    when = kpis.as_of(as_of)
    try:
        lex = lexicon()
        with auth.acting_as(user):  # every number in the answer comes from the user's rows only
            reading = parse(str(question or ""), when.at, lex)
            result = answer(reading, when, lex, user)
    except KpiError as exc:
        result = Answer(question=str(question), status="decline", text=str(exc), reason=str(exc))
        result.as_of, result.as_of_text = when.at.isoformat(timespec="seconds"), when.describe()
    result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 2)
    if record:
        from .record import record as keep

        keep(result, user.login, surface)
    return result


def load_ipython_extension(ipython) -> None:
    """``%load_ext kpi_lib.ask`` registers ``%ask QUESTION`` (the answer renders as a card)."""

    def _ask(line: str) -> Answer:
        return ask(line)

    ipython.register_magic_function(_ask, magic_kind="line", magic_name="ask")


__all__ = ["Answer", "ask", "load_ipython_extension"]


class _CallableModule(types.ModuleType):
    """``kpi_lib.ask(...)`` works whether or not this package was imported first (importing it
    makes ``kpi_lib.ask`` the package, so the package answers calls too)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Answer:
        return ask(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
