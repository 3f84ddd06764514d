"""The ``kpi`` Voila template: Voila's lab template without its CDN links. The files live in
``kpi_lib/ui/templates/kpi``; Voila finds them under ``<root>/voila/templates/kpi`` on JUPYTER_PATH."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from ...config import settings

TEMPLATE_NAME = "kpi"
FILES = Path(__file__).resolve().parent.parent / "templates" / TEMPLATE_NAME


def voila_template(root: str | Path | None = None) -> Path:
    """Write the ``kpi`` Voila template under ``root`` (default ``$KPI_HOME/jupyter/<version>``); return root.

    Serve with ``JUPYTER_PATH=<root> voila ... --VoilaConfiguration.template=kpi``: pages then make
    no request outside the Voila server (Voila's own templates ask a CDN for Font Awesome).
    """
    if root is None:  # one folder per version of the files: two servers of other versions on one
        # home (an upgrade, an A/B benchmark) must not overwrite each other's template
        digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in sorted(FILES.iterdir())))
        root = settings().home / "jupyter" / digest.hexdigest()[:12]
    root = Path(root)
    folder = root / "voila" / "templates" / TEMPLATE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for source in FILES.iterdir():
        path = folder / source.name
        if not path.exists() or path.read_bytes() != source.read_bytes():
            shutil.copyfile(source, path)
    return root
