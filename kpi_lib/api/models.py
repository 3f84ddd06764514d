"""The API's typed models: the OpenAPI document (``/api/openapi.json``) is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, Field

from ..config import settings


def _aware(value: Any) -> Any:
    """Business times are naive in kpi_lib (the business time zone); the API says the offset."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(settings().timezone))
    return value


# RFC 3339 date-times with their offset, in the business time zone (KPI_TIMEZONE)
Time = Annotated[datetime, BeforeValidator(_aware)]

Grain = Literal["hour", "day", "week", "month", "total"]
Compare = Literal["previous_period", "previous_year"]
Order = Literal["asc", "desc"]
Status = Literal["open", "acknowledged", "resolved"]


class Problem(BaseModel):
    """An error as RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    invalid_params: list[InvalidParam] = Field(default_factory=list, alias="invalid-params")

    model_config = {"populate_by_name": True}


class InvalidParam(BaseModel):
    name: str = Field(description="The parameter at fault, e.g. grain or where")
    reason: str


class KpiInfo(BaseModel):
    """A KPI as catalog.yml defines it, and whether its values are masked for the caller."""

    name: str
    label: str
    description: str
    unit: str
    currency: str | None
    dimensions: list[str]
    up_is_good: bool
    sensitive: bool
    masked: bool = Field(description="True when the caller's role may not read its values")
    synonyms: list[str]


class Provenance(BaseModel):
    """Where an answer came from: the same provenance as `kpi query --format json`."""

    kpi: str
    grain: str
    start: Time
    end: Time
    by: list[str]
    where: dict[str, list[str]]
    catalog_entries: list[str]
    sql: str
    params: dict[str, str]
    data_version: int
    cache_level: str = Field(description="L1/L2 (cache), L3 (materialized view), L4 (base tables)")
    elapsed_ms: float
    as_of: Time | None
    as_of_source: str | None


class Row(BaseModel):
    """One row of an answer: its period (absent for grain=total), its dimension values and value."""

    period: Time | None = None
    dims: dict[str, str] = Field(default_factory=dict)
    value: float | None = Field(description="null when masked for the caller, or when there is no value")
    previous: float | None = None
    change: float | None = Field(None, description="relative change vs previous (0.1 = +10 %)")


class QueryAnswer(BaseModel):
    kpi: str
    label: str
    masked: bool = Field(description="True when the values are withheld from the caller's role")
    rows: list[Row]
    provenance: Provenance


class AskRequest(BaseModel):
    q: str = Field(min_length=1, max_length=500, description="The question, in plain English")
    as_of: str | None = Field(None, max_length=40, description="What 'now' is for relative dates")


class AskAnswer(BaseModel):
    """Ask's answer (the JSON contract of `kpi ask --format json`)."""

    question: str
    status: Literal["answer", "decline", "clarify"]
    text: str
    kpi: str | None = None
    spec: dict[str, Any] | None = None
    value: float | None = None
    change_pct: float | None = None
    formatted: str | None = None
    masked: bool = False
    rows: list[dict[str, Any]] = Field(default_factory=list)
    sql: str | None = None
    catalog_entries: list[str] = Field(default_factory=list)
    data_version: int | None = None
    as_of: str | None = None
    as_of_text: str | None = None
    choices: list[str] = Field(default_factory=list)
    reason: str | None = None
    link: str | None = None


class Incident(BaseModel):
    """An incident (an anomaly the detectors raised on one series), as the caller may see it."""

    id: int
    kpi: str
    grain: str
    dimension: str | None
    dim_value: str | None
    started_at: Time
    peak_at: Time | None
    ended_at: Time | None
    severity: str
    status: Status
    explanation: str
    drivers: str | None
    value: float | None
    expected: float | None
    lower_bound: float | None
    upper_bound: float | None
    deviation_pct: float | None
    masked: bool
    acknowledged_by: str | None
    acknowledged_at: Time | None
    resolved_by: str | None
    resolved_at: Time | None
    comment: str | None
    event: int | None = Field(
        None,
        description="In a listing: the id of the incident that leads this one's event (incidents at the same "
        "grain that moved the same way at the same time, such as a week's outage in every region), itself "
        "for the lead; null when it stands alone, for a masked KPI, and for one incident read by id.",
    )


class Transition(BaseModel):
    comment: str | None = Field(None, max_length=2000, description="Why (kept with the incident)")


class DataVersion(BaseModel):
    """The data version answers are keyed by, and what "now" is for default windows."""

    data_version: int
    as_of: Time
    as_of_source: str = Field(description="explicit | live | latest data | no data")
    latest_data: Time | None
    live: bool
    timezone: str


class ViewLag(BaseModel):
    name: str
    refreshed_at: Time | None
    behind_versions: int
    # of those, the changes to days before yesterday: the ones the refresher owes (today's and
    # yesterday's are read from the base tables)
    owed_versions: int


class Status_(BaseModel):
    """What `kpi status` shows (row counts for administrators only)."""

    warehouse_running: bool
    postgres_version: str | None
    data_version: int
    latest_order: Time | None
    last_change: Time | None
    views: list[ViewLag]
    cache_hits: dict[str, int]
    cache_misses: dict[str, int]
    redis: bool
    tables: list[dict[str, Any]] | None = None


class ServiceLevel(BaseModel):
    name: str
    label: str
    target: float
    unit: Literal["s", "ratio"]
    higher_is_better: bool
    measured: float | None = Field(description="null: no data yet (left out of the score)")
    met: bool | None
    score: float | None = Field(description="1 when met, falling to 0 at twice the target")


class Health(BaseModel):
    """The health score from named service levels (kpi_lib.observe.health documents them)."""

    score: int = Field(ge=0, le=100)
    measured: int = Field(description="How many service levels had data")
    levels: list[ServiceLevel]


class PageLoad(BaseModel):
    """A page's own navigation timing (milliseconds from navigation start), posted by the page."""

    page: str = Field(min_length=1, max_length=200, pattern=r"^/[A-Za-z0-9_./%-]*$")
    ttfb_ms: float | None = Field(None, ge=0, le=600_000)
    dom_ms: float | None = Field(None, ge=0, le=600_000)
    load_ms: float = Field(ge=0, le=600_000)
    painted_ms: float | None = Field(None, ge=0, le=600_000)
    # navigation -> the page a person can use (the Panel and Voila dashboards); None elsewhere
    usable_ms: float | None = Field(None, ge=0, le=600_000)

    @property
    def ready_ms(self) -> float:
        """Until usable where the page says, else its load event (as observe.health.READY_MS)."""
        return self.usable_ms if self.usable_ms is not None else self.load_ms


class Me(BaseModel):
    login: str
    name: str
    roles: list[str]
    admin: bool
    can_act: bool
    masked: list[str]
    rows: str


Problem.model_rebuild()
