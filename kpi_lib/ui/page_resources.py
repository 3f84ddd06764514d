"""Send a Panel page only the scripts it runs (issue 18).

Panel's server page lists every BokehJS bundle whatever the page holds: ``bokeh-gl`` (194 KB, WebGL
drawing) and ``es-module-shims`` (38 KB, for ``ReactiveESM`` components) are compiled by every
first visit of the executive page, which draws on a canvas and has no ESM component. Bokeh's own
standalone pages already leave a bundle out when no model needs it (``bokeh.embed.bundle``); this
does the same for pages served by ``panel serve``, judged on the document's models as the page is
written. ``bokeh-widgets`` and ``bokeh-tables`` stay: ``panel.min.js`` imports both when it loads.

A page that later adds a WebGL figure or an ESM component to a document first written without one
would miss the script; no page here does (tests/ui/test_executive.py loads the page with no console
error).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_installed = False


def _uses_webgl(models) -> bool:
    from bokeh.models.plots import Plot

    return any(isinstance(m, Plot) and m.output_backend == "webgl" for m in models)


def _uses_esm(models) -> bool:
    from panel.models.esm import ReactiveESM

    return any(isinstance(m, ReactiveESM) for m in models)


def unused_scripts(roots) -> list[str]:
    """The script names of the bundle that no model under ``roots`` needs."""
    docs = {id(r.document): r.document for r in roots if r.document is not None}
    if len(docs) == 1 and all(r.document is not None for r in roots):
        models = list(next(iter(docs.values())).models)  # Bokeh keeps them: no second walk of the graph
    else:
        models = set()
        for root in roots:
            models |= root.references()
    out = []
    if not _uses_webgl(models):
        out.append("bokeh-gl")
    if not _uses_esm(models):
        out.append("es-module-shims")
    return out


def trimmed(bundle, roots):
    """``bundle`` (a Bokeh ``Bundle``) without the scripts ``roots`` do not need."""
    drop = unused_scripts(roots)
    if drop:
        bundle.js_files = [f for f in bundle.js_files if not any(d in str(f) for d in drop)]
    return bundle


def stylesheets_from_this_server() -> None:
    """Tell this session's document where Panel's component stylesheets live, before any component
    is rendered. Panel sets it only when it writes the HTML, and a stylesheet rendered against a
    document without it points at Panel's CDN, which the pages' policy blocks (an alert-rules page
    opened after the first one in a worker asked cdn.holoviz.org for 145 stylesheets)."""
    import panel as pn
    from panel.io.resources import LOCAL_DIST

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        rel = pn.state.rel_path
        doc.template_variables.setdefault("dist_url", f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST)


def install() -> None:
    """Wrap the bundle Panel's server writes into a page (idempotent; in a Panel worker)."""
    global _installed
    if _installed:
        return
    import panel.io.server as server

    original = server.bundle_resources

    def bundle_resources(roots, resources, *args, **kwargs):
        bundle = original(roots, resources, *args, **kwargs)
        try:
            return trimmed(bundle, roots or [])
        except Exception:  # never lose the page over an optimisation
            log.exception("could not trim the page's scripts; sending them all")
            return bundle

    server.bundle_resources = bundle_resources
    _installed = True
