"""One exception tree for the whole library. Messages say what happened and what to do next."""

from __future__ import annotations


class KpiError(Exception):
    """Root of every error kpi_lib raises on purpose."""


class ConfigError(KpiError):
    """A setting is missing or malformed."""


class WarehouseError(KpiError):
    """The warehouse cannot be reached, started or migrated."""


class CatalogError(KpiError):
    """catalog.yml is missing, malformed or names something that does not exist."""


class QueryError(KpiError):
    """A KPI query asks for a KPI, grain, dimension or filter that does not exist."""


class LoadError(KpiError):
    """A file cannot be loaded at all (as opposed to single bad rows, which are rejected)."""


class IngestError(KpiError):
    """Events cannot be ingested (the batch as a whole failed)."""


class DetectError(KpiError):
    """Anomaly detection cannot run on the given series or rules."""


class AlertError(KpiError):
    """An alert cannot be routed or delivered."""


class JobError(KpiError):
    """A scheduled job is misconfigured or failed."""


class AuthError(KpiError):
    """Login failed or a user may not see what they asked for."""
