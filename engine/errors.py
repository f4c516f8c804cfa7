"""The one exception hierarchy of Synweave.

Every error a user can cause (bad file, impossible parameter, invalid graph, a board that stops
answering) is a :class:`SynweaveError`. The CLI prints ``str(error)`` without a traceback; the GUI
shows it in a dialog or the problems panel. Messages say what is wrong, where, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass


class SynweaveError(Exception):
    """Base class of every error Synweave raises on purpose."""


class ParameterError(SynweaveError, ValueError):
    """A parameter value is out of bounds, of the wrong type, or not one of the choices.

    Parameters
    ----------
    field : str
        The parameter name (``tau_m``).
    message : str
        What is wrong and how to fix it.
    node : str, optional
        The node id or label, filled in when the parameter belongs to a node of a graph.
    """

    def __init__(self, field: str, message: str, node: str | None = None):
        self.field = field
        self.node = node
        self.detail = message
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"node {self.node!r}, parameter {self.field!r}" if self.node else f"parameter {self.field!r}"
        return f"{where}: {self.detail}"

    def with_node(self, node: str) -> "ParameterError":
        return ParameterError(self.field, self.detail, node=node)


class GraphError(SynweaveError):
    """An edit that cannot be applied to the model graph (unknown node, wrong port, duplicate id)."""


class UnknownNodeTypeError(GraphError, KeyError):
    """A node type id that the catalogue does not know."""

    def __init__(self, type_ids, where: str = ""):
        self.type_ids = sorted(set(type_ids))
        names = ", ".join(repr(t) for t in self.type_ids)
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}unknown node type(s) {names}; run `python main.py nodes` for the catalogue "
            "(a newer Synweave or a plug-in may define them)"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


@dataclass(frozen=True)
class Problem:
    """One validation finding, tied to a node and a port or parameter where possible."""

    message: str
    node: str | None = None
    field: str | None = None  # a parameter name or a port name
    hint: str = ""
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = []
        if self.node:
            where.append(f"node {self.node!r}")
        if self.field:
            where.append(f"{self.field!r}")
        head = " ".join(where)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f" (fix: {self.hint})"
        return f"[{self.severity}] {text}"


class ValidationError(SynweaveError):
    """A graph has one or more errors; :attr:`problems` lists every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the network has {len(self.problems)} problem(s):\n{lines}")


class ProjectFileError(SynweaveError):
    """A project file cannot be read: names the file, the JSON path and what is wrong."""

    def __init__(self, path: str, message: str, json_path: str = "$"):
        self.path = str(path)
        self.json_path = json_path
        self.detail = message
        super().__init__(f"{self.path}: at {json_path}: {message}")


class SimulationError(SynweaveError):
    """The simulation cannot start or had to stop (numerical blow-up, cancelled compile ...)."""


class NumericalInstabilityError(SimulationError):
    """A state variable became NaN or infinite."""

    def __init__(self, population: str, variable: str, step: int, dt: float):
        self.population = population
        self.variable = variable
        self.step = step
        super().__init__(
            f"population {population!r}: state {variable!r} became NaN or infinite at step {step} "
            f"(t = {step * dt:g} ms); reduce dt, lower the input drive or weights, or use float64"
        )


class ExportError(SynweaveError):
    """A graph cannot be written in the requested format; says which node and why."""


class HardwareError(SynweaveError):
    """Base for board, mapping, protocol and serial-link errors."""
