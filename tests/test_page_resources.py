"""Which of BokehJS's bundles a Panel page is sent (kpi_lib.ui.page_resources)."""

from __future__ import annotations

import panel as pn
from bokeh.embed.bundle import URL, Bundle
from bokeh.plotting import figure

from kpi_lib.ui import page_resources

FILES = [
    "static/js/bokeh.min.js?v=1",
    "static/js/bokeh-gl.min.js?v=2",
    "static/js/bokeh-widgets.min.js?v=3",
    "static/js/bokeh-tables.min.js?v=4",
    "static/extensions/panel/bundled/reactiveesm/es-module-shims@^1.10.0/dist/es-module-shims.min.js",
    "static/extensions/panel/panel.min.js?v=5",
]


def roots_of(viewable) -> list:
    return [viewable.get_root()]


def sent(viewable) -> list[str]:
    bundle = Bundle(js_files=[URL(f) for f in FILES])
    return [str(f) for f in page_resources.trimmed(bundle, roots_of(viewable)).js_files]


def test_a_canvas_page_without_esm_components_gets_neither_webgl_nor_the_module_shims():
    fig = figure(output_backend="canvas")
    fig.line([1, 2], [3, 4])
    page = pn.Column(pn.pane.Bokeh(fig), pn.widgets.Select(options=["a", "b"]))
    files = sent(page)
    assert not any("bokeh-gl" in f or "es-module-shims" in f for f in files)
    # panel.min.js imports the widgets and tables bundles as it loads: those always go
    assert [f for f in files if "bokeh-widgets" in f or "bokeh-tables" in f or "panel.min" in f]
    assert len(files) == 4


def test_a_webgl_figure_keeps_the_webgl_bundle():
    fig = figure(output_backend="webgl")
    fig.line([1, 2], [3, 4])
    files = sent(pn.Column(pn.pane.Bokeh(fig)))
    assert any("bokeh-gl" in f for f in files)
    assert not any("es-module-shims" in f for f in files)


def test_an_esm_component_keeps_the_module_shims():
    class Hello(pn.custom.JSComponent):
        _esm = "export function render({ model }) { return 'hello' }"

    files = sent(pn.Column(Hello()))
    assert any("es-module-shims" in f for f in files)


def test_a_served_page_is_judged_on_its_documents_models():
    """As `panel serve` writes a page: the roots sit in a Document, whose models are read as they are."""
    from bokeh.document import Document

    fig = figure(output_backend="webgl")
    fig.line([1, 2], [3, 4])
    doc = Document()
    root = pn.Column(pn.pane.Bokeh(fig)).get_root(doc)
    doc.add_root(root)
    files = [
        str(f) for f in page_resources.trimmed(Bundle(js_files=[URL(f) for f in FILES]), [root]).js_files
    ]
    assert any("bokeh-gl" in f for f in files) and not any("es-module-shims" in f for f in files)
