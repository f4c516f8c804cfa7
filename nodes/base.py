"""Node types: ports, parameters, documentation and graph-level checks.

A node type is a small class (NIR style) whose docstring holds the model's equations and whose
class attributes declare parameters (:mod:`nodes.params`) and ports. An instance of a node type is
one node of a model graph: it has an id, a label, a canvas position and validated parameter
values. Registering a class with :func:`register` puts it into the palette, the inspector, the
file validator, the CLI table and the docs at once.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Iterable

from engine.errors import ParameterError, Problem, UnknownNodeTypeError
from nodes.params import Parameterized


_SPEC_REFERENCE = re.compile(r"\s*\(\s*§[\d.]+(?:\s*,\s*§[\d.]+)*\s*\)|,?\s*MODELS\.md(?:\s*§[\d.]+,?)*")


class PortKind(str, Enum):
    """What travels along a wire. Colours are used by the canvas and the docs."""

    SPIKES = "spikes"          # spike trains of a population or source
    SYNAPTIC = "synaptic"      # a projection's synaptic input into its target population
    CURRENT = "current"        # an injected current (pA)
    RULE = "rule"              # a plasticity rule attached to a projection
    MODULATION = "modulation"  # a third factor / astrocyte / dopamine signal
    LABELS = "labels"          # class labels of a data set, for readouts
    STATE = "state"            # access to a population's state variables (monitors)
    WEIGHTS = "weights"        # access to a projection's weights (monitors)
    PHASE = "phase"            # the order of training phases

    @property
    def colour(self) -> str:
        return PORT_COLOURS[self]


PORT_COLOURS = {
    PortKind.SPIKES: "#f2c14e",
    PortKind.SYNAPTIC: "#e4572e",
    PortKind.CURRENT: "#29b6f6",
    PortKind.RULE: "#ab47bc",
    PortKind.MODULATION: "#66bb6a",
    PortKind.LABELS: "#bdbdbd",
    PortKind.STATE: "#26a69a",
    PortKind.WEIGHTS: "#ff8a65",
    PortKind.PHASE: "#eceff1",
}


@dataclass(frozen=True)
class Port:
    """A typed connection point.

    Parameters
    ----------
    name : str
        Unique among the node's ports of the same direction.
    kind : PortKind
        What the port emits (outputs) or its primary accepted kind (inputs).
    direction : str
        ``"in"`` or ``"out"``.
    multiple : bool
        Whether an input accepts several wires (outputs always fan out).
    required : bool
        An unconnected required input is a validation error.
    accepts : tuple of PortKind
        Extra kinds an input also accepts (a population input takes synaptic and current).
    """

    name: str
    kind: PortKind
    direction: str
    doc: str
    multiple: bool = False
    required: bool = False
    accepts: tuple[PortKind, ...] = ()

    def accepts_kind(self, kind: PortKind) -> bool:
        return kind == self.kind or kind in self.accepts

    @property
    def kinds(self) -> tuple[PortKind, ...]:
        return (self.kind, *self.accepts)


def In(name: str, kind: PortKind, doc: str, *, multiple=False, required=False, accepts=()) -> Port:
    return Port(name, kind, "in", doc, multiple=multiple, required=required, accepts=tuple(accepts))


def Out(name: str, kind: PortKind, doc: str) -> Port:
    return Port(name, kind, "out", doc, multiple=True)


class Category(str, Enum):
    INPUT = "Inputs"
    NEURON = "Neurons"
    SYNAPSE = "Synapses"
    PLASTICITY = "Plasticity"
    MODULATOR = "Modulators"
    READOUT = "Readouts"
    MONITOR = "Monitors"
    TRAINING = "Training"

    @property
    def colour(self) -> str:
        return CATEGORY_COLOURS[self]


CATEGORY_COLOURS = {
    Category.INPUT: "#3f88c5",
    Category.NEURON: "#d1495b",
    Category.SYNAPSE: "#edae49",
    Category.PLASTICITY: "#8e6cc1",
    Category.MODULATOR: "#00a878",
    Category.READOUT: "#5c6b73",
    Category.MONITOR: "#2e86ab",
    Category.TRAINING: "#6d4c41",
}


class NodeType(Parameterized):
    """Base class of every node type.

    Class attributes to set in subclasses: ``type_id`` (stable, dotted: ``neuron.lif``),
    ``title``, ``category``, ``ports`` and parameter descriptors. The class docstring is the
    node's documentation (shown in the inspector); put the model's equations there.
    """

    type_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    category: ClassVar[Category]
    ports: ClassVar[tuple[Port, ...]] = ()
    #: parameters shown on the node face on the canvas
    summary: ClassVar[tuple[str, ...]] = ()
    #: free-form capability tags other nodes check (e.g. "threshold" for intrinsic plasticity)
    capabilities: ClassVar[frozenset[str]] = frozenset()
    def __init__(self, node_id: str = "", label: str = "", position: tuple[float, float] = (0.0, 0.0),
                 **values: Any):
        self.id = node_id
        self.label = label or self.title
        self.position = (float(position[0]), float(position[1]))
        super().__init__(**values)

    def set(self, name: str, value: Any) -> None:
        """Set a parameter by name; errors name this node and the field."""
        try:
            super().set(name, value)
        except ParameterError as exc:
            raise exc.with_node(self.label or self.id) from None

    # -- ports -------------------------------------------------------------------------------
    @classmethod
    def port(cls, name: str, direction: str) -> Port | None:
        for p in cls.ports:
            if p.name == name and p.direction == direction:
                return p
        return None

    @classmethod
    def inputs(cls) -> tuple[Port, ...]:
        return tuple(p for p in cls.ports if p.direction == "in")

    @classmethod
    def outputs(cls) -> tuple[Port, ...]:
        return tuple(p for p in cls.ports if p.direction == "out")

    # -- semantics used by validation, info and the compiler -----------------------------------
    def size(self) -> int | None:
        """Number of neurons or channels this node emits spikes for (None when not a spiking node)."""
        return None

    def check(self) -> Iterable[Problem]:
        """Checks that involve several parameters of this node; yield :class:`Problem` s."""
        return ()

    def check_in_graph(self, graph) -> Iterable[Problem]:
        """Checks that involve neighbours (a rule on a projection whose neurons cannot support it)."""
        return ()

    def summary_text(self) -> str:
        parts = []
        for name in self.summary:
            p = self.params[name]
            v = self._values[name]
            if isinstance(v, float):
                v = f"{v:g}"
            unit = p.unit_text()
            parts.append(f"{p.label} {v}{(' ' + unit) if unit else ''}")
        return " · ".join(parts)

    @classmethod
    def doc(cls) -> str:
        text = textwrap.dedent(inspect.getdoc(cls) or "").strip()
        # Section references into the team's internal spec mean nothing to users, who read
        # the papers the docstrings also cite.
        text = _SPEC_REFERENCE.sub("", text)
        return text.replace(" ()", "")

    @classmethod
    def doc_line(cls) -> str:
        return cls.doc().split("\n", 1)[0]

    def copy(self) -> "NodeType":
        clone = type(self)(self.id, self.label, self.position)
        clone._values = dict(self._values)
        return clone

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.id == other.id and self.label == other.label
                and self.position == other.position and self._values == other._values)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} {self.label!r}>"


_REGISTRY: dict[str, type[NodeType]] = {}


def register(cls: type[NodeType]) -> type[NodeType]:
    """Class decorator: add a node type to the catalogue."""
    if not cls.type_id or "." not in cls.type_id:
        raise ValueError(f"{cls.__name__}: type_id must be dotted like 'neuron.lif'")
    if cls.type_id in _REGISTRY and _REGISTRY[cls.type_id] is not cls:
        raise ValueError(f"duplicate node type id {cls.type_id!r}")
    names = [(p.direction, p.name) for p in cls.ports]
    if len(names) != len(set(names)):
        raise ValueError(f"{cls.type_id}: duplicate port names")
    if not cls.doc():
        raise ValueError(f"{cls.type_id}: needs a docstring with its equations")
    _REGISTRY[cls.type_id] = cls
    return cls


def node_type(type_id: str) -> type[NodeType]:
    try:
        return _REGISTRY[type_id]
    except KeyError:
        raise UnknownNodeTypeError([type_id]) from None


def all_node_types() -> list[type[NodeType]]:
    order = list(Category)
    return sorted(_REGISTRY.values(), key=lambda c: (order.index(c.category), c.type_id))
