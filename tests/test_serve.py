"""What `kpi serve` serves: every dashboard in dashboards/ with the title a person reads on the
landing page, and the Voila template with no link to a CDN. (The served pages themselves are
tested through a real `kpi serve` in tests/ui and tests/security.)"""

from __future__ import annotations

import json

from kpi_lib import serve
from kpi_lib.config import settings
from kpi_lib.ui.voila import TEMPLATE_NAME, voila_template


def test_every_dashboard_is_listed_with_its_title_and_address():
    found = {d.name: d for d in serve.discover()}
    assert {"executive", "revenue_explorer", "anomaly_review", "alert_rules"} <= set(found)
    assert found["executive"].kind == "panel" and found["executive"].url == "/panel/executive"
    explorer = found["revenue_explorer"]
    assert explorer.url == "/voila/voila/render/revenue_explorer.ipynb"
    first_cell = json.loads((settings().dashboards_dir / "revenue_explorer.ipynb").read_text())["cells"][0]
    assert explorer.title == "".join(first_cell["source"]).splitlines()[0].lstrip("# ").strip()
    assert all(d.title and d.description.endswith(".") for d in found.values())


def test_a_new_notebook_in_the_folder_is_a_new_dashboard(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Stock levels\n", "\n", "Units on hand. More."]}]}
    (tmp_path / "stock.ipynb").write_text(json.dumps(nb))
    (tmp_path / "margins.py").write_text('"""Margins: gross margin by category."""\n')
    listed = {d.name: (d.title, d.kind, d.description) for d in serve.discover(tmp_path)}
    assert listed == {
        "margins": ("Margins", "panel", "gross margin by category."),
        "stock": ("Stock levels", "voila", "Units on hand."),
    }


def test_the_voila_template_is_written_once_and_has_no_cdn(tmp_path):
    root = voila_template(tmp_path)
    folder = root / "voila" / "templates" / TEMPLATE_NAME
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["conf.json", "index.html.j2", "page.html"]
    assert json.loads((folder / "conf.json").read_text()) == {"base_template": "lab"}
    page = (folder / "page.html").read_text()
    assert "cdn" not in page.lower() and "{% block body %}" in page
    stamp = (folder / "page.html").stat().st_mtime_ns
    voila_template(tmp_path)  # unchanged files are left alone (a running Voila keeps reading them)
    assert (folder / "page.html").stat().st_mtime_ns == stamp


def test_voila_runs_behind_the_front_door_with_the_kpi_template():
    cmd = serve.voila_command(port=12345, pool=3)
    assert "--Voila.identity_provider_class=kpi_lib.web.voila_auth.FrontDoorIdentity" in cmd
    assert "--VoilaConfiguration.template=kpi" in cmd and "--pool_size=3" in cmd
    assert "--Voila.ip=127.0.0.1" in cmd  # never reachable except through the front door
