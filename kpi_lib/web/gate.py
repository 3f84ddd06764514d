"""Pages for some roles only: the front door refuses the others before anything is forwarded.

The "Alert rules" page (``dashboards/alert_rules.py``) is for admins and analysts
(``User.can_edit_rules``); anyone else gets 403, on the page and on its websocket alike, and the
landing page does not list it for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import auth
from .proxy import ProxyHandler

#: dashboard name -> (who may open it, what the refusal says)
RESTRICTED: dict[str, tuple[Callable[[auth.User], bool], str]] = {
    "alert_rules": (lambda u: u.can_edit_rules, "Only admins and analysts may edit alert rules."),
}


def may_open(user: auth.User, name: str) -> bool:
    rule = RESTRICTED.get(name)
    return rule is None or rule[0](user)


def visible(dashboards: Iterable[Any], user: auth.User | None) -> list[Any]:
    """The dashboards a user may open (for the landing page)."""
    return [d for d in dashboards if user is not None and may_open(user, d.name)]


class GatedProxy(ProxyHandler):
    """The Panel proxy for a restricted dashboard: 403 unless the user's role may open it."""

    def initialize(self, upstream: Any, secret: str, name: str) -> None:
        super().initialize(upstream, secret)
        self.name = name

    def _allowed(self) -> bool:
        user = self.current_user
        if user is None or may_open(user, self.name):
            return True  # nobody signed in: the proxy sends them to the sign-in page
        auth.audit(user.login, "refused", f"dashboard {self.name}")
        self.refuse(RESTRICTED[self.name][1])
        return False

    async def get(self, *args, **kwargs):
        if self._allowed():
            return await super().get(*args, **kwargs)

    async def post(self, *args, **kwargs):
        if self._allowed():
            return await super().post(*args, **kwargs)

    put = patch = delete = post


def routes(panel: Any, secret: str) -> list[tuple]:
    """Front-door routes for the restricted dashboards (before the general ``/panel/.*``)."""
    return [
        (rf"/panel/{name}(?:/.*)?", GatedProxy, {"upstream": panel, "secret": secret, "name": name})
        for name in RESTRICTED
    ]
