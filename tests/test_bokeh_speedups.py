"""The memoised Bokeh defaults (kpi_lib/ui/bokeh_speedups.py) give every model exactly the values
Bokeh itself gives: every model class, with and without a theme, and its documents' JSON."""

from __future__ import annotations

import math

import panel  # noqa: F401  (registers Panel's Bokeh models, which the executive page uses too)
import pytest
from bokeh.core.has_props import HasProps
from bokeh.core.property.singletons import Undefined
from bokeh.model import Model
from bokeh.themes import built_in_themes

from kpi_lib.ui import bokeh_speedups


def _norm(value):
    if isinstance(value, HasProps):
        return ("model", type(value).__name__)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value) if value is Undefined else value


def _classes() -> list[type]:
    out = []
    for cls in sorted(set(Model.model_class_reverse_map.values()), key=lambda c: c.__qualname__):
        try:
            cls()
        except Exception:  # abstract or needs arguments
            continue
        out.append(cls)
    return out


def _snapshot(classes, theme=None) -> dict:
    out = {}
    for cls in classes:
        model = cls()
        if theme is not None:
            theme.apply_to_model(model)
        # read twice: the second read is the one a memo answers
        first = _norm(model.properties_with_values(include_defaults=True, include_undefined=True))
        assert _norm(model.properties_with_values(include_defaults=True, include_undefined=True)) == first
        out[cls.__qualname__] = first
    return out


@pytest.fixture
def plain_then_memoised():
    was = bool(bokeh_speedups._originals)  # a page module imported earlier in this process installed it
    bokeh_speedups.uninstall()
    yield
    bokeh_speedups.uninstall()
    if was:
        bokeh_speedups.install()


@pytest.mark.parametrize("theme", [None, "dark_minimal", "caliber"])
def test_every_model_class_has_bokehs_own_defaults(plain_then_memoised, theme):
    t = built_in_themes[theme] if theme else None
    classes = _classes()
    assert len(classes) > 300  # Bokeh's and Panel's models, not an empty loop
    plain = _snapshot(classes, t)
    assert bokeh_speedups.install()
    memoised = _snapshot(classes, t)
    assert memoised == plain


def test_a_mutable_default_is_still_each_models_own(plain_then_memoised):
    from bokeh.models import PanTool, Toolbar
    from bokeh.plotting import figure

    assert bokeh_speedups.install()
    a = Toolbar()
    a.tools.append(PanTool())
    assert Toolbar().tools == []
    f = figure()
    f.line([1, 2], [3, 4])
    assert len(figure().renderers) == 0


def test_a_documents_json_is_unchanged(plain_then_memoised):
    """A figure with a theme applied through its document, as the dark executive page does."""
    from bokeh.document import Document
    from bokeh.plotting import figure

    def doc_json():
        doc = Document()
        doc.theme = built_in_themes["dark_minimal"]
        f = figure(x_axis_type="datetime", tools="pan,box_zoom,reset")
        f.line([1, 2, 3], [3, 1, 2], line_dash="dashed")
        f.vbar(x=[1, 2], top=[3, 4], width=0.5)
        doc.add_root(f)
        # ids differ between two builds: compare each model's type and its properties in order
        refs = doc.to_json(deferred=False)["roots"][0]
        return _norm_ids(refs, {})

    plain = doc_json()
    assert bokeh_speedups.install()
    assert doc_json() == plain


def _norm_ids(value, seen: dict):
    if isinstance(value, dict):
        if "id" in value and isinstance(value["id"], str):
            seen.setdefault(value["id"], f"m{len(seen)}")
        return {k: (seen.get(v, v) if k == "id" else _norm_ids(v, seen)) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm_ids(v, seen) for v in value]
    return value


def test_bokeh_internals_it_relies_on_are_still_there(plain_then_memoised):
    """If a Bokeh upgrade changes them, install() refuses (and this says so) rather than guess."""
    assert bokeh_speedups.install()
    from bokeh.core.property.bases import Property

    assert Property.themed_default.__name__ == "memo_themed_default"
    bokeh_speedups.uninstall()
    assert Property.themed_default.__name__ == "themed_default"


def test_a_mutable_default_is_built_for_each_read(plain_then_memoised):
    """Only immutable defaults are shared: a list handed out twice would be one list for two models."""
    from bokeh.models import Toolbar

    assert bokeh_speedups.install()
    prop = Toolbar.lookup("tools").property
    assert prop.themed_default(Toolbar, "tools", None) is not prop.themed_default(Toolbar, "tools", None)
