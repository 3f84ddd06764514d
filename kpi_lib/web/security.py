"""The front door's protections that are not about who you are: headers, hosts, redirects, throttling.

- every response carries a Content-Security-Policy that forbids framing and talking to other sites;
- requests must name one of our hosts (a DNS-rebinding page names its own);
- the client address comes from ``X-Forwarded-For`` only when a configured proxy sent it;
- ``next=`` after sign-in may only be a path on this site;
- sign-in attempts are limited per address and per account, with a real sliding-window limiter.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from urllib.parse import urlsplit

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..config import settings

# Our own pages: no inline script, nothing from elsewhere, never inside a frame.
OWN_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


def dashboard_csp(host: str) -> str:
    """Panel and Voila pages: their generated pages need inline scripts and styles, but nothing may
    load from, post to or frame anything outside this site (a stolen value has nowhere to go)."""
    return (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; worker-src 'self' blob:; "
        "frame-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    )


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def allowed_hosts(port: int, bind_host: str) -> set[str]:
    """Host headers the front door answers: loopback names, the bind address, KPI_PUBLIC_URL's host
    and any in KPI_ALLOWED_HOSTS; each with and without the port."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    if bind_host not in ("", "0.0.0.0", "::"):
        names.add(bind_host)
    else:  # listening on every interface: this machine's own names and addresses too
        names.update({socket.gethostname(), socket.getfqdn()})
        try:
            names.update(a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None))
        except OSError:
            pass
    public = urlsplit(settings().public_url)
    if public.hostname:
        names.add(public.hostname)
    names.update(settings().allowed_hosts)
    out = set()
    for n in names:
        out.add(n.lower())
        out.add(f"{n.lower()}:{port}")
    if public.netloc:
        out.add(public.netloc.lower())
    return out


def client_ip(remote_ip: str | None, forwarded_for: str | None) -> str:
    """The client's address: the TCP peer, or the last hop of X-Forwarded-For when the peer is a
    proxy listed in KPI_TRUSTED_PROXIES (a client's own X-Forwarded-For is never believed)."""
    peer = remote_ip or ""
    if forwarded_for and _trusted(peer):
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not _trusted(hop):
                return hop
    return peer


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in settings().trusted_proxies:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target: str | None) -> str:
    """A same-site path to go to after sign-in; anything else (another host, a scheme, a
    backslash or control-character trick such as ``/\\host`` or ``/<TAB>/host``) becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or _CONTROL.search(target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


class LoginThrottle:
    """Failed sign-ins allowed per account and per client address, in a moving window.

    In memory for one front door; in Redis (REDIS_URL) when several share the work."""

    def __init__(self, per_account: str = "5/15 minutes", per_address: str = "30/15 minutes") -> None:
        url = settings().redis_url
        self.storage = storage_from_string(url if url else "memory://")
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.account = parse(per_account)
        self.address = parse(per_address)

    def allowed(self, login: str, ip: str) -> bool:
        """May this attempt go ahead? Only failures count: people who know their password never wait."""
        try:
            return self.limiter.test(self.address, "fail-ip", ip) and self.limiter.test(
                self.account, "fail-user", login.lower()
            )
        except Exception:  # noqa: BLE001 - a limiter outage must not lock everyone out
            return True

    def failed(self, login: str, ip: str) -> None:
        try:
            self.limiter.hit(self.address, "fail-ip", ip)
            self.limiter.hit(self.account, "fail-user", login.lower())
        except Exception:  # noqa: BLE001
            pass

    def retry_after(self, login: str, ip: str) -> int:
        """Seconds until the next attempt may succeed (for the message)."""
        try:
            resets = [
                self.limiter.get_window_stats(self.account, "fail-user", login.lower()).reset_time,
                self.limiter.get_window_stats(self.address, "fail-ip", ip).reset_time,
            ]
            return max(1, int(max(resets) - time.time()))
        except Exception:  # noqa: BLE001
            return 60
