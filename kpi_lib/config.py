"""One settings object, read from the environment (``KPI_*``, ``DATABASE_URL``, ``DATABASE_REPLICA_URL``,
``REDIS_URL``, ``SMTP_*``).

This module imports nothing else from kpi_lib, so every other module may import it.
A ``.env`` file in the working directory is read first (real environment variables win).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    """Every knob in one place. Build one with :func:`settings` (cached) or ``Settings.from_env()``."""

    home: Path
    database_url: str | None
    redis_url: str | None
    timezone: str
    catalog_path: Path
    smtp_host: str
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_tls: str  # "none" | "starttls" | "ssl"
    smtp_from: str
    public_url: str
    cache_max_mb: int
    cache_ttl_s: float
    batch_max_events: int
    batch_interval_ms: int
    log_level: str
    allowed_hosts: tuple[str, ...] = ()  # Host names the front door answers besides loopback
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-For is believed
    kernel_cap: int = 4  # Voila kernels (open dashboards) per signed-in user
    replica_urls: tuple[str, ...] = ()  # DATABASE_REPLICA_URL: streaming replicas people's reads go to
    replica_wait_ms: int = 250  # how long a read waits for a lagging replica before using the primary
    replica_retry_s: float = 5.0  # a replica that failed is tried again after this long
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        merged = _read_dotenv(Path.cwd() / ".env")
        merged.update(os.environ if env is None else env)
        get = merged.get
        home = Path(get("KPI_HOME") or PROJECT_ROOT / "var").expanduser().resolve()
        database_url = get("DATABASE_URL") or None
        return cls(
            home=home,
            database_url=database_url,
            redis_url=get("REDIS_URL") or None,
            timezone=get("KPI_TIMEZONE") or "UTC",
            catalog_path=Path(get("KPI_CATALOG") or PROJECT_ROOT / "catalog.yml").expanduser().resolve(),
            smtp_host=get("SMTP_HOST") or "127.0.0.1",
            smtp_port=int(get("SMTP_PORT") or 8025),
            smtp_user=get("SMTP_USER") or None,
            smtp_password=get("SMTP_PASSWORD") or None,
            smtp_tls=(get("SMTP_TLS") or "none").lower(),
            smtp_from=get("SMTP_FROM") or "KPI Alerts <alerts@kpi.local>",
            public_url=(get("KPI_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
            cache_max_mb=int(get("KPI_CACHE_MAX_MB") or 256),
            cache_ttl_s=float(get("KPI_CACHE_TTL_S") or 3600),
            batch_max_events=int(get("KPI_BATCH_MAX_EVENTS") or 5000),
            batch_interval_ms=int(get("KPI_BATCH_INTERVAL_MS") or 200),
            log_level=(get("KPI_LOG_LEVEL") or "WARNING").upper(),
            allowed_hosts=_list(get("KPI_ALLOWED_HOSTS")),
            trusted_proxies=_list(get("KPI_TRUSTED_PROXIES")),
            kernel_cap=int(get("KPI_KERNELS_PER_USER") or 4),
            replica_urls=_list(get("DATABASE_REPLICA_URL")),
            replica_wait_ms=int(get("KPI_REPLICA_WAIT_MS") or 250),
            replica_retry_s=float(get("KPI_REPLICA_RETRY_S") or 5),
        )

    @property
    def embedded(self) -> bool:
        """True when kpi_lib runs its own PostgreSQL (no DATABASE_URL given)."""
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"


_cached: Settings | None = None


def settings() -> Settings:
    """The process-wide settings, read once. Call :func:`reset` after changing the environment."""
    global _cached
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def reset() -> None:
    """Forget the cached settings (tests and the CLI use this after changing env vars)."""
    global _cached
    _cached = None
