"""Our YAML files (schedules.yml, alerts.yml, rule files) read into pydantic models that forbid
unknown keys: every problem names the file, the place in it and what was wrong, all at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A section of one of our files: a misspelt key is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read(path: Path, model: type[M], error: type[Exception]) -> M:
    """Parse and validate ``path``; ``error`` (e.g. JobError) carries every problem found."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from exc
    return check(doc, model, error, str(path))


def check(doc: Any, model: type[M], error: type[Exception], name: str) -> M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise error(f"{name}: " + "; ".join(_problem(e) for e in exc.errors())) from None


def _problem(e: dict) -> str:
    where = ".".join(str(p) for p in e["loc"]) or "top level"
    if e["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    if e["type"] == "missing":
        return f"{where} is missing"
    msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{where}: {msg}"
