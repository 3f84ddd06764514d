"""pyproject.toml, environment.yml and the Dockerfile install the same set of packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI
CONDA_NAMES = {"psycopg[binary]": "psycopg", "redis-py": "redis", "prometheus-client": "prometheus_client"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()


def test_three_dependency_lists_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(d) for d in dep["pip"]}
        else:
            conda.add(_name(dep))
    conda.discard("python")
    conda.discard("pip")
    in_env = {CONDA_NAMES.get(n, n) for n in conda | pip} - {"-e"}  # "-e ." installs the project itself
    assert {CONDA_NAMES.get(n, n) for n in wanted} == in_env
    docker = (ROOT / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[dev]"' in docker and "COPY pyproject.toml" in docker


def test_pandas_is_pinned_below_3_everywhere():
    assert "pandas>=2.2,<3" in (ROOT / "pyproject.toml").read_text()
    assert "pandas >=2.2,<3" in (ROOT / "environment.yml").read_text()
