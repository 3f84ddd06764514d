"""Voila's identity provider: a request counts only if the front door sent it (see kpi_lib.auth.identity).

Every Voila page, API call and kernel websocket is a Jupyter handler that asks this provider who
is calling; without the front door's per-start secret the answer is nobody, and Voila refuses.
"""

from __future__ import annotations

from jupyter_server.auth.identity import IdentityProvider, User

from ..auth.identity import verified_login


class FrontDoorIdentity(IdentityProvider):
    """The user the front door verified, else nobody."""

    def get_user(self, handler) -> User | None:
        login = verified_login(handler.request.headers)
        return User(username=login, name=login) if login else None

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False
