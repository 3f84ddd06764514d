"""One settings object, read from the environment (``KPI_*``, ``DATABASE_URL``, ``DATABASE_REPLICA_URL``,
``REDIS_URL``, ``SMTP_*``).

This module imports nothing else from kpi_lib, so every other module may import it.
A ``.env`` file in the working directory is read too (real environment variables win). Typed and
checked by pydantic-settings: a bad value names its variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Names = Annotated[tuple[str, ...], NoDecode]  # "a, b" in the environment, not JSON


class Settings(BaseSettings):
    """Every knob in one place, each read from its environment variable (or ``.env``; the real
    environment wins; an empty value means "not set"). Build one with :func:`settings` (cached)."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = Field(PROJECT_ROOT / "var", validation_alias="KPI_HOME")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    timezone: str = Field("UTC", validation_alias="KPI_TIMEZONE")
    catalog_path: Path = Field(PROJECT_ROOT / "catalog.yml", validation_alias="KPI_CATALOG")
    #: job notebooks, schedules.yml (cron) and alerts.yml (routing)
    schedules_dir: Path = Field(PROJECT_ROOT / "schedules", validation_alias="KPI_SCHEDULES_DIR")
    #: the Panel apps (*.py) and Voila notebooks (*.ipynb) `kpi serve` serves
    dashboards_dir: Path = Field(PROJECT_ROOT / "dashboards", validation_alias="KPI_DASHBOARDS_DIR")
    smtp_host: str = Field("127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(8025, validation_alias="SMTP_PORT")
    smtp_user: str | None = Field(None, validation_alias="SMTP_USER")
    smtp_password: str | None = Field(None, validation_alias="SMTP_PASSWORD")
    smtp_tls: Literal["none", "starttls", "ssl"] = Field("none", validation_alias="SMTP_TLS")
    smtp_from: str = Field("KPI Alerts <alerts@kpi.local>", validation_alias="SMTP_FROM")
    public_url: str = Field("http://127.0.0.1:8080", validation_alias="KPI_PUBLIC_URL")
    cache_max_mb: int = Field(256, validation_alias="KPI_CACHE_MAX_MB")
    cache_ttl_s: float = Field(3600, validation_alias="KPI_CACHE_TTL_S")
    batch_max_events: int = Field(5000, validation_alias="KPI_BATCH_MAX_EVENTS")
    batch_interval_ms: int = Field(200, validation_alias="KPI_BATCH_INTERVAL_MS")
    log_level: str = Field("WARNING", validation_alias="KPI_LOG_LEVEL")
    #: host names the front door answers besides loopback
    allowed_hosts: Names = Field((), validation_alias="KPI_ALLOWED_HOSTS")
    #: addresses/networks whose X-Forwarded-For is believed
    trusted_proxies: Names = Field((), validation_alias="KPI_TRUSTED_PROXIES")
    #: Voila kernels (open dashboards) per signed-in user
    kernel_cap: int = Field(4, validation_alias="KPI_KERNELS_PER_USER")
    #: DATABASE_REPLICA_URL: streaming replicas people's reads go to (comma separated)
    replica_urls: Names = Field((), validation_alias="DATABASE_REPLICA_URL")
    #: how long a read waits for a lagging replica before using the primary
    replica_wait_ms: int = Field(250, validation_alias="KPI_REPLICA_WAIT_MS")
    #: a replica that failed is tried again after this long
    replica_retry_s: float = Field(5.0, validation_alias="KPI_REPLICA_RETRY_S")
    #: requests each API token (or signed-in user) may make, as `limits` writes a rate
    api_rate: str = Field("1200/minute", validation_alias="KPI_API_RATE")

    @field_validator("home", "catalog_path", "schedules_dir", "dashboards_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    @field_validator("api_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(
                f"KPI_API_RATE={value!r} is not a rate; write e.g. 1200/minute or 20/second"
            ) from exc
        return value

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("public_url")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("allowed_hosts", "trusted_proxies", "replica_urls", mode="before")
    @classmethod
    def _names(cls, value) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        return tuple(v.strip() for v in items if v.strip())

    @classmethod
    def from_env(cls) -> Settings:
        """Read the environment; a bad value names its variable and what it should be."""
        try:
            return cls()
        except ValidationError as exc:
            problems = "; ".join(
                f"{e['loc'][0] if e['loc'] else '?'}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"Bad setting in the environment or .env: {problems}.") from None

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
