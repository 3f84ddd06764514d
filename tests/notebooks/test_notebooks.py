"""Every notebook in notebooks/, dashboards/ and schedules/ runs top to bottom under nbval.

`make test` runs plain pytest over tests/, so nbval is driven from here: one ``pytest --nbval-lax``
subprocess runs all the notebooks (one kernel each) against this session's warehouse (the ``demo``
fixture; the child inherits ``KPI_HOME``) with a real SMTP sink for the jobs that send mail. Its
JUnit report is then read back into one test per notebook, which fails with the cell that broke.
Notebooks must also be stored clean: first cell a Markdown H1, a ``parameters`` cell, no outputs.

Run a single notebook by hand the same way:
    KPI_HOME=... .venv/bin/pytest --nbval-lax --nbval-current-env notebooks/02_kpi_deep_dive.ipynb
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("notebooks", "dashboards", "schedules")
NOTEBOOKS = sorted(str(p.relative_to(ROOT)) for d in FOLDERS for p in (ROOT / d).glob("*.ipynb"))
CELL_TIMEOUT = 300  # s; imports (hvplot, ADTK) are slow on a busy machine
RUN_TIMEOUT = 1200  # s for the whole nbval run (about 2 minutes here)

pytestmark = pytest.mark.timeout(RUN_TIMEOUT + 300)  # the first test sets the run up


@dataclass
class Cell:
    name: str  # nbval's "Cell N": the N-th code cell, from 0
    seconds: float
    failure: str | None = None


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    cells: dict[str, list[Cell]] = field(default_factory=dict)  # notebook path -> cells


def _notebook_path(classname: str) -> str:
    folder, _, name = classname.partition(".")  # nbval: "notebooks.02_kpi_deep_dive.ipynb"
    return f"{folder}/{name}"


@pytest.fixture(scope="session")
def nbval_run(demo, tmp_path_factory) -> Run:
    from kpi_lib import mail

    tmp = tmp_path_factory.mktemp("nbval")
    junit = tmp / "nbval.xml"
    port = free_port()
    env = {**os.environ, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT}",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rN",
        f"--junitxml={junit}",
        *NOTEBOOKS,
    ]
    t0 = time.monotonic()
    with mail.start_sink("127.0.0.1", port, tmp / "mail"):
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    run = Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            text = None if problem is None else f"{problem.get('message', '')}\n{problem.text or ''}"
            run.cells.setdefault(_notebook_path(case.get("classname", "")), []).append(
                Cell(case.get("name", "?"), float(case.get("time") or 0), text)
            )
    per_notebook = {nb: round(sum(c.seconds for c in cells), 1) for nb, cells in run.cells.items()}
    print(
        f"\nnbval: {len(NOTEBOOKS)} notebooks in {run.seconds:.0f} s (exit {run.returncode}); "
        f"seconds per notebook: {per_notebook}"
    )
    return run


def _code_cells(path: str) -> list[str]:
    nb = nbformat.read(ROOT / path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_runs_under_nbval(nbval_run: Run, path: str):
    cells = nbval_run.cells.get(path)
    assert cells, f"nbval ran no cell of {path} (exit {nbval_run.returncode}):\n{nbval_run.output[-4000:]}"
    sources = _code_cells(path)
    for cell in cells:
        if cell.failure is None:
            continue
        idx = int(cell.name.split()[-1]) if cell.name.split()[-1].isdigit() else None
        src = sources[idx] if idx is not None and idx < len(sources) else "?"
        pytest.fail(
            f"{path}: code cell {idx} failed:\n--- source ---\n{src}\n--- error ---\n{cell.failure[-4000:]}",
            pytrace=False,
        )
    assert len(cells) == len(sources), f"{path}: nbval ran {len(cells)} of {len(sources)} code cells"


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_is_stored_clean(path: str):
    nb = nbformat.read(ROOT / path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        f"{path}: first cell must be an H1"
    )
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", (
        f"{path}: needs one code cell tagged 'parameters'"
    )
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{path}: cell {i} is stored with outputs"
    assert nb.metadata.get("kernelspec", {}).get("language") == "python", f"{path}: no Python kernelspec"
