"""The Answer: what Ask says, the number, the table behind it, and how it was answered.

``Answer.to_dict()`` is the JSON contract of ``kpi ask --format json``: status, text, kpi, spec,
value, change_pct, labels, rows, sql, catalog_entries, data_version, as_of, choices, reason
(plus question, reading and link). It is always valid JSON: NaN and infinities become null.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, timestamps -> ISO text."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@dataclass
class Answer:
    """One answered (or declined) question, with its provenance."""

    question: str
    status: str  # answer | decline | clarify
    text: str
    kpi: str | None = None
    spec: dict[str, Any] | None = None
    value: float | None = None
    change_pct: float | None = None
    labels: list[str] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    sql: str | None = None
    catalog_entries: list[str] = field(default_factory=list)
    data_version: int | None = None
    as_of: str | None = None
    as_of_text: str | None = None  # "as of 9 Dec 2011 12:50 (latest data)"
    choices: list[str] = field(default_factory=list)
    reason: str | None = None
    reading: list[dict[str, str]] = field(default_factory=list)  # words -> what they were read as
    shape: str | None = None
    formatted: str | None = None  # the number as shown ("$1.23M", "•••")
    masked: bool = False
    link: str | None = None  # the same view in the executive dashboard
    compare_spec: dict[str, Any] | None = None
    elapsed_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    def _repr_html_(self) -> str:
        from .render import card_html

        return card_html(self)

    def __str__(self) -> str:
        return self.text
