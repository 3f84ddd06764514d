"""Bokeh's property defaults, looked up once instead of on every read (issue 18).

A Panel worker spends about a third of a new session's CPU in Bokeh's property machinery (py-spy,
five pages opened at once at 10 M lines): every read of a property left at its default rebuilds
that default (walk the class's MRO for overrides, copy, validate), every read asks whether the
default is unstable (``isinstance`` checks per property), and every read of a model that no theme
touches raises and catches an ``AttributeError`` to learn it has no themed values. Writing the
session's document for the browser reads every property of its ~160 models.

All three answers depend only on the model's class (Bokeh fixes a class's default overrides when the
class is created), so they are remembered per class here:

* a default that is immutable (None, a number, a string, an enum, a tuple of those) and not set by
  a theme; a mutable or themed default is still built for each read, as Bokeh does;
* whether a property's default is unstable, per model class;
* "no themed values" read from the instance's ``__dict__``, where ``apply_theme`` stores them.

Same values, same documents (``tests/test_bokeh_speedups.py`` compares every Bokeh model class's
defaults with and without, plain and themed). Measured on the executive page: a session's build
plus its document 157 -> 110-118 ms, the document alone 35 -> 12 ms (see benchmarks/README.md).
If Bokeh changes these internals, :func:`install` leaves Bokeh as it is and says so in the log.
"""

from __future__ import annotations

import enum
import logging

log = logging.getLogger(__name__)

_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, enum.Enum)
_originals: dict = {}


def _immutable(value) -> bool:
    if isinstance(value, _IMMUTABLE):
        return True
    return type(value) is tuple and all(_immutable(v) for v in value)


def install() -> bool:
    """Patch Bokeh in this process (once); False if its internals are not the ones measured."""
    if _originals:
        return True
    from bokeh.core.has_props import HasProps
    from bokeh.core.property.bases import Property
    from bokeh.core.property.descriptors import PropertyDescriptor

    expected = [
        (Property, "themed_default", ("self", "cls", "name", "theme_overrides", "no_eval")),
        (PropertyDescriptor, "has_unstable_default", ("self", "obj")),
        (HasProps, "themed_values", ("self",)),
    ]
    for owner, name, args in expected:
        fn = owner.__dict__.get(name)
        code = getattr(fn, "__code__", None)
        if code is None or code.co_varnames[: code.co_argcount + code.co_kwonlyargcount] != args:
            log.warning(
                "Bokeh's %s.%s is not the one measured: property defaults not memoised", owner.__name__, name
            )
            return False

    themed_default = Property.themed_default
    has_unstable_default = PropertyDescriptor.has_unstable_default
    defaults: dict = {}
    unstable: dict = {}

    def memo_themed_default(self, cls, name, theme_overrides, *, no_eval=False):
        if theme_overrides is not None and name in theme_overrides:
            return themed_default(self, cls, name, theme_overrides, no_eval=no_eval)
        # by id: Property defines __eq__, so it is not hashable; the entry keeps it alive, so its id
        # is never another's
        key = (id(self), cls, name, no_eval)
        hit = defaults.get(key)
        if hit is not None:
            return hit[1]
        value = themed_default(self, cls, name, None, no_eval=no_eval)
        if _immutable(value):
            defaults[key] = (self, value)
        return value

    def memo_has_unstable_default(self, obj):
        key = (id(self), obj.__class__)
        hit = unstable.get(key)
        if hit is None:
            hit = unstable[key] = (self, has_unstable_default(self, obj))
        return hit[1]

    def themed_values(self):
        return self.__dict__.get("__themed_values__")

    _originals.update(
        {
            (Property, "themed_default"): themed_default,
            (PropertyDescriptor, "has_unstable_default"): has_unstable_default,
            (HasProps, "themed_values"): HasProps.themed_values,
        }
    )
    Property.themed_default = memo_themed_default
    PropertyDescriptor.has_unstable_default = memo_has_unstable_default
    HasProps.themed_values = themed_values
    return True


def uninstall() -> None:
    """Bokeh as it came (the tests compare both)."""
    for (owner, name), fn in _originals.items():
        setattr(owner, name, fn)
    _originals.clear()
