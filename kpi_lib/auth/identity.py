"""Who is asking: the signed-in user behind `kpi serve`, or the local user in notebooks and jobs.

Only the front door authenticates people. It forwards each request to Panel and Voila with the
user in ``X-KPI-User`` and a secret made at each start in ``X-KPI-Proxy``; the back ends accept a
request only with that secret (:func:`verified_login`), so no other local process, and no page on
another site, can speak to them as anyone. Inside those back ends there is no fallback identity:
no verified user means no page.
"""

from __future__ import annotations

import getpass
import hmac
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .. import scope
from ..errors import AuthError
from .users import User, user

log = logging.getLogger(__name__)

HEADER = "X-KPI-User"
PROXY_HEADER = "X-KPI-Proxy"
PROXY_ENV = scope.SERVED_ENV


def proxy_secret() -> str | None:
    """This start's shared secret (set by `kpi serve` for its back ends), else None."""
    return os.environ.get(PROXY_ENV) or None


def verified_login(headers: Mapping[str, str]) -> str | None:
    """The user a request carries, if and only if it came through the front door."""
    secret = proxy_secret()
    if not secret:
        return None
    given = _header(headers, PROXY_HEADER)
    if not given or not hmac.compare_digest(given.encode(), secret.encode()):
        return None
    return _header(headers, HEADER) or None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None
    if value is None:  # plain dicts (Bokeh's session headers) are case-sensitive
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def current_user() -> User:
    """Who is looking.

    Behind `kpi serve`: the user the front door verified (a Panel session's signed token, or the
    Voila request that started this kernel); AuthError when there is none. Elsewhere (JupyterLab,
    jobs, the CLI): ``KPI_USER`` if it names a user, else the OS user with analyst rights.
    """
    login = None
    voila = False
    pn = sys.modules.get("panel")  # not imported: not a Panel session (importing it costs ~2 s)
    if pn is not None and pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        # the session's token is signed by the Panel server (its secret key), and the headers in it
        # are those of the page request the front door made
        login = _header(pn.state.headers or {}, HEADER)
    elif os.environ.get("VOILA_KERNEL_ID"):  # a Voila kernel: wait for the request it serves
        from voila.utils import wait_for_request

        wait_for_request()
        login = os.environ.get("HTTP_" + HEADER.upper().replace("-", "_"))
        voila = True
    if login:
        try:
            who = user(login)
            if voila:  # this kernel serves this one viewer: everything it reads is in their scope
                scope.set_process_scope(who.scope)
            return who
        except AuthError:
            if scope.served():
                raise
            log.warning("signed-in user %r is not in users.yml any more", login)
    if scope.served():
        raise AuthError("No signed-in user: open this page through the front door (`kpi serve`) and sign in.")
    return local_user()


def local_user() -> User:
    """The user a notebook, job or CLI command acts as: KPI_USER's record, else an analyst."""
    local = os.environ.get("KPI_USER") or getpass.getuser()
    if os.environ.get("KPI_USER"):
        try:
            return user(local)
        except AuthError:
            log.warning("KPI_USER=%s is not in users.yml; acting as an analyst", local)
    return User(local, local, ("analyst",), can_act=True, can_edit_rules=True)


@contextmanager
def acting_as(who: User) -> Iterator[User]:
    """Read under ``who``'s row scope inside the block (see :mod:`kpi_lib.scope`)."""
    with scope.using(who.scope):
        yield who


def _default_scope() -> scope.RowScope:
    return local_user().scope if os.environ.get("KPI_USER") else scope.EVERYTHING


scope.set_default_resolver(_default_scope)
