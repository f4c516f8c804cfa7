"""Typed, validated parameter descriptors.

A parameter is declared once on a node type and that declaration is the single place that says
what a valid value is. The inspector builds its editors from it, the project loader validates
files with it, ``python main.py nodes`` documents it, and assigning an attribute on a node runs it::

    class LIF(NodeType):
        tau_m = Float(10.0, unit="ms", low=0.01, high=1e5, doc="membrane time constant")

    node = LIF()
    node.tau_m = -1      # ParameterError: parameter 'tau_m': must be >= 0.01 ms, got -1 ...
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from engine.errors import ParameterError

#: unit symbol -> how it is displayed; "1" is dimensionless, "w" is the synaptic weight unit,
#: whose physical meaning depends on the target (pA current, mV jump, g_L conductance)
#: the latest model time (ms) any time-like parameter may name: 11.6 days, the longest duration;
#: keeps step counts (time / dt) far inside int64
MAX_TIME_MS = 1e9

UNITS = {
    "1": "", "ms": "ms", "s": "s", "mV": "mV", "pA": "pA", "nA": "nA", "Hz": "Hz",
    "GOhm": "GΩ", "um": "µm", "uM": "µM", "steps": "steps", "deg": "°", "pA/mV": "pA/mV",
    "1/s": "1/s", "1/ms": "1/ms", "1/(uM s)": "1/(µM·s)", "uM/s": "µM/s", "1/(ms Hz)": "1/(ms·Hz)",
    "w": "w.u.", "mM": "mM", "px": "px",
}


class Param:
    """Base descriptor: a named value with a unit, a default, a doc line and a validation rule.

    Subclasses implement :meth:`coerce`, which turns a value read from a file or typed by a user
    into the canonical Python value or raises :class:`ParameterError` with a fix hint.
    """

    kind = "any"

    def __init__(self, default: Any, *, unit: str = "1", doc: str, label: str | None = None,
                 advanced: bool = False, visible_if: dict | None = None):
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; add it to nodes.params.UNITS")
        if not doc:
            raise ValueError("every parameter needs a doc line")
        self.unit = unit
        self.doc = doc
        self.label = label
        self.advanced = advanced
        # {"other_param": (allowed values...)}: the inspector hides the editor otherwise
        self.visible_if = visible_if or {}
        self.name = "?"  # set by __set_name__
        self.default = default

    def __set_name__(self, owner, name):
        self.name = name
        if self.label is None:
            self.label = name
        self.default = self.coerce(self.default)

    # descriptor protocol: values live in the instance's ``_values`` dict
    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj._values[self.name]

    def __set__(self, obj, value):
        obj._values[self.name] = self.coerce(value)

    def coerce(self, value: Any) -> Any:
        return value

    def fail(self, value: Any, why: str, hint: str = "") -> ParameterError:
        return ParameterError(self.name, f"{why}, got {value!r}{hint}")

    def to_json(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        """Short human text of the valid values, for tables and tooltips."""
        return ""

    def unit_text(self) -> str:
        return UNITS[self.unit]


class Float(Param):
    """A real number with inclusive or exclusive bounds."""

    kind = "float"

    def __init__(self, default: float, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, **kw):
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        super().__init__(default, **kw)

    def coerce(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                raise self.fail(value, f"must be a number in {self.unit_text() or 'model units'}; "
                                "write it without the unit (the unit is fixed)")
            raise self.fail(value, "must be a number")
        try:
            raw, value = value, float(value)
        except OverflowError:
            raise self.fail(value, "is too large") from None
        if not math.isfinite(value):
            raise self.fail(raw, "must be a finite number")
        u = f" {self.unit_text()}" if self.unit_text() else ""
        if self.low is not None:
            if value < self.low or (self.low_open and value == self.low):
                op = ">" if self.low_open else ">="
                raise self.fail(raw, f"must be {op} {self.low:g}{u}")
        if self.high is not None:
            if value > self.high or (self.high_open and value == self.high):
                op = "<" if self.high_open else "<="
                raise self.fail(raw, f"must be {op} {self.high:g}{u}")
        return value

    def describe(self):
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"


class Int(Param):
    """An integer with inclusive bounds."""

    kind = "int"

    def __init__(self, default: int, *, low: int | None = None, high: int | None = None, **kw):
        self.low, self.high = low, high
        super().__init__(default, **kw)

    def coerce(self, value):
        if isinstance(value, bool):
            raise self.fail(value, "must be an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise self.fail(value, "must be an integer")
        if self.low is not None and value < self.low:
            raise self.fail(value, f"must be >= {self.low}")
        if self.high is not None and value > self.high:
            raise self.fail(value, f"must be <= {self.high}")
        return value

    def describe(self):
        lo = "-inf" if self.low is None else str(self.low)
        hi = "inf" if self.high is None else str(self.high)
        return f"[{lo}, {hi}] integer"


class Seed(Int):
    """A random seed: 0 means 'derive from the project seed and the node id'."""

    kind = "seed"

    def __init__(self, doc: str = "random seed of this node's streams; 0 derives it from the project seed", **kw):
        super().__init__(0, low=0, high=2**32 - 1, doc=doc, **kw)


class Bool(Param):
    kind = "bool"

    def coerce(self, value):
        if not isinstance(value, bool):
            raise self.fail(value, "must be true or false")
        return value

    def describe(self):
        return "true / false"


class Choice(Param):
    """One of a fixed set of strings."""

    kind = "choice"

    def __init__(self, default: str, choices: Sequence[str], **kw):
        self.choices = tuple(choices)
        super().__init__(default, **kw)

    def coerce(self, value):
        if value not in self.choices:
            options = ", ".join(repr(c) for c in self.choices)
            close = [c for c in self.choices if isinstance(value, str) and c.lower() == value.lower()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.fail(value, f"must be one of {options}", hint)
        return value

    def describe(self):
        return " | ".join(self.choices)


class Text(Param):
    """A free text (labels, file paths). Paths are resolved relative to the project file."""

    kind = "text"

    def __init__(self, default: str = "", *, is_path: bool = False, max_length: int = 4096,
                 file_filter: str = "", **kw):
        self.is_path = is_path
        self.max_length = max_length
        self.file_filter = file_filter
        super().__init__(default, **kw)

    def coerce(self, value):
        if not isinstance(value, str):
            raise self.fail(value, "must be a string")
        if len(value) > self.max_length:
            raise self.fail(value[:40] + "...", f"must be at most {self.max_length} characters")
        return value

    def describe(self):
        return "file path" if self.is_path else "text"


class FloatList(Param):
    """A list of numbers (spike times, step levels). Stored in project files as a JSON array."""

    kind = "floats"

    def __init__(self, default: Sequence[float] = (), *, low: float | None = None,
                 high: float | None = None, max_length: int = 1_000_000,
                 length: int | None = None, **kw):
        self.low, self.high, self.max_length, self.length = low, high, max_length, length
        super().__init__(tuple(default), **kw)

    def coerce(self, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise self.fail(value, "must be a list of numbers")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**63:
                raise self.fail(f"[... {item} ...]"[:60], f"item {i} is too large")
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
                raise self.fail(value if len(str(value)) < 80 else f"[... {item!r} ...]",
                                f"item {i} must be a finite number")
            if self.low is not None and item < self.low:
                raise self.fail(item, f"item {i} must be >= {self.low:g}")
            if self.high is not None and item > self.high:
                raise self.fail(item, f"item {i} must be <= {self.high:g}")
            out.append(float(item))
            if len(out) > self.max_length:
                raise self.fail(f"<{len(out)}+ items>", f"must have at most {self.max_length} items")
        if self.length is not None and len(out) != self.length:
            raise self.fail(out, f"must have exactly {self.length} items")
        return tuple(out)

    def to_json(self, value):
        return list(value)

    def describe(self):
        return "list of numbers" if self.length is None else f"{self.length} numbers"


class IntList(FloatList):
    """A list of integers (neuron indices, grid shape)."""

    kind = "ints"

    def coerce(self, value):
        floats = super().coerce(value)
        out = []
        for i, item in enumerate(floats):
            if not float(item).is_integer():
                raise self.fail(item, f"item {i} must be an integer")
            out.append(int(item))
        return tuple(out)

    def describe(self):
        return "list of integers" if self.length is None else f"{self.length} integers"


def collect_params(cls) -> dict[str, Param]:
    """All parameter descriptors of a class, base classes first, in declaration order."""
    params: dict[str, Param] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Param):
                params[name] = value
            elif name in params and value is None:
                del params[name]  # a subclass removes an inherited parameter with `name = None`
    return params


class Parameterized:
    """Holds validated values for the :class:`Param` descriptors declared on its class."""

    params: dict[str, Param] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.params = collect_params(cls)

    def __init__(self, **values: Any):
        self._values = {name: p.default for name, p in self.params.items()}
        for name, value in values.items():
            self.set(name, value)

    def set(self, name: str, value: Any) -> None:
        """Set a parameter by name, validated by its descriptor."""
        if name not in self.params:
            known = ", ".join(self.params)
            raise ParameterError(name, f"unknown parameter {name!r}; known: {known}")
        setattr(self, name, value)

    def get(self, name: str) -> Any:
        return self._values[name]

    @property
    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def values_json(self) -> dict[str, Any]:
        return {name: self.params[name].to_json(v) for name, v in self._values.items()}
