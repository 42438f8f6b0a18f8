"""X/Y/Z plot axes, one per parameter of the table.  An axis value is checked when the plot starts
(`confirm`): a bad one fails the request with the same 422 as a bad API argument.  The value of a
cell travels on the cell's copy of `p` and is merged over the script's arguments by the controller,
which also turns the extension on for an axis other than Enabled."""
from __future__ import annotations

from .controller import XYZ_ATTR, SettingsError
from .params import BY_KEY, PARAMS, Param, check_value, read_bool

XYZ_PREFIX = "[Slothful] "


def _typed(p: Param, x):
    return read_bool(p, x) if p.kind == "bool" and isinstance(x, str) else x


def _checked(p: Param, x):
    try:
        return check_value(p, _typed(p, x))
    except ValueError as e:
        raise SettingsError(f"X/Y/Z axis {e}") from None


def _set_override(key):
    def apply(p, x, xs):
        value = _checked(BY_KEY[key], x)
        setattr(p, XYZ_ATTR, {**getattr(p, XYZ_ATTR, {}), key: value})  # a new dict: cells never share
    return apply


def _confirm(p: Param):
    def confirm(_p, xs):
        for x in xs:
            _checked(p, x)
    return confirm


def axis_options(xyz) -> list:
    """One X/Y/Z axis per parameter, with the table's ranges and choices."""
    out = []
    for p in PARAMS:
        label = XYZ_PREFIX + ("Enabled" if p.key == "enabled" else p.label)
        if p.kind == "bool":
            kw = dict(type=str, choices=lambda: ["True", "False"])
        elif p.kind == "choice":
            kw = dict(type=str, choices=(lambda p=p: [lab for _, lab in p.choices]))
        else:
            kw = dict(type=int if p.kind == "int" else float)
        out.append(xyz.AxisOption(label, apply=_set_override(p.key), confirm=_confirm(p), **kw))
    return out


def add_axes(xyz) -> int:
    """Add the axes to the X/Y/Z script's module once; returns how many were added."""
    if any(getattr(o, "label", "").startswith(XYZ_PREFIX) for o in xyz.axis_options):
        return 0
    options = axis_options(xyz)
    xyz.axis_options.extend(options)
    return len(options)
