"""The model graph: the single source of truth of a network.

Nodes are instances of the catalogue's node types; edges join an output port to an input port.
Every change is an :class:`Operation` applied with :meth:`ModelGraph.apply`, which returns the
inverse operation. The GUI's undo stack, scripts and tests all edit the graph this way, so undo
and redo restore the exact graph. Listeners (the canvas) are told about every applied operation.

Example
-------
>>> g = ModelGraph()
>>> src = g.add_node("input.poisson", n=100, rate=20.0)
>>> pop = g.add_node("neuron.lif", n=10)
>>> prj = g.add_node("synapse.projection")
>>> _ = g.connect(src.id, "spikes", prj.id, "pre")
>>> _ = g.connect(prj.id, "post", pop.id, "input")
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

import networkx as nx

import nodes as catalogue
from engine.errors import GraphError
from nodes.base import NodeType, Port, PortKind


@dataclass(frozen=True, order=True)
class Edge:
    """A wire from ``src``'s output port ``src_port`` to ``dst``'s input port ``dst_port``."""

    src: str
    src_port: str
    dst: str
    dst_port: str

    def to_json(self) -> dict:
        return {"src": self.src, "src_port": self.src_port, "dst": self.dst, "dst_port": self.dst_port}


@dataclass(frozen=True)
class Group:
    """A titled frame drawn around member nodes on the canvas."""

    id: str
    title: str
    members: tuple[str, ...] = ()
    colour: str = "#4a5a6a"

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "members": list(self.members), "colour": self.colour}


@dataclass(frozen=True)
class Comment:
    """A free text note on the canvas."""

    id: str
    text: str
    position: tuple[float, float] = (0.0, 0.0)

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "position": list(self.position)}


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------
class Operation:
    """One reversible edit. ``apply`` performs it on a graph and returns the inverse operation."""

    description = "edit"

    def apply(self, graph: "ModelGraph") -> "Operation":
        raise NotImplementedError


@dataclass
class AddNode(Operation):
    node: NodeType
    index: int | None = None  # position in the node order; None appends (undo of a removal restores it)

    @property
    def description(self):
        return f"add {self.node.label}"

    def apply(self, graph):
        graph._insert(self.node.copy(), self.index)
        return RemoveNode(self.node.id)


@dataclass
class RemoveNode(Operation):
    node_id: str

    @property
    def description(self):
        return f"remove {self.node_id}"

    def apply(self, graph):
        node = graph.node(self.node_id)
        undo: list[Operation] = []
        for edge in graph.edges_of(self.node_id):
            undo.append(Disconnect(edge).apply(graph))
        for group in list(graph.groups.values()):
            if self.node_id in group.members:
                members = tuple(m for m in group.members if m != self.node_id)
                undo.append(SetGroup(replace(group, members=members)).apply(graph))
        index = graph._order.index(self.node_id)
        graph._g.remove_node(self.node_id)
        graph._order.remove(self.node_id)
        # Re-adding restores the node first, then its wires and group memberships.
        return Compound([AddNode(node, index), *reversed(undo)], f"add {node.label}")


@dataclass
class Connect(Operation):
    edge: Edge
    description = "connect"

    def apply(self, graph):
        ok, reason = graph.can_connect(*astuple(self.edge))
        if not ok:
            raise GraphError(reason)
        graph._g.add_edge(self.edge.src, self.edge.dst, key=self.edge, edge=self.edge)
        return Disconnect(self.edge)


@dataclass
class Disconnect(Operation):
    edge: Edge
    description = "disconnect"

    def apply(self, graph):
        if not graph._g.has_edge(self.edge.src, self.edge.dst, key=self.edge):
            raise GraphError(f"no wire {self.edge.src}.{self.edge.src_port} -> "
                             f"{self.edge.dst}.{self.edge.dst_port}")
        graph._g.remove_edge(self.edge.src, self.edge.dst, key=self.edge)
        return Connect(self.edge)


@dataclass
class SetParam(Operation):
    node_id: str
    name: str
    value: Any

    @property
    def description(self):
        return f"set {self.name}"

    def apply(self, graph):
        node = graph.node(self.node_id)
        old = node.get(self.name) if self.name in node.params else None
        node.set(self.name, self.value)  # validates; raises ParameterError naming node and field
        return SetParam(self.node_id, self.name, old)


@dataclass
class SetLabel(Operation):
    node_id: str
    label: str
    description = "rename"

    def apply(self, graph):
        node = graph.node(self.node_id)
        if not isinstance(self.label, str) or not self.label.strip():
            raise GraphError("a node label cannot be empty")
        old, node.label = node.label, self.label
        return SetLabel(self.node_id, old)


@dataclass
class MoveNodes(Operation):
    positions: dict[str, tuple[float, float]]
    description = "move"

    def apply(self, graph):
        old = {}
        for node_id, (x, y) in self.positions.items():
            node = graph.node(node_id)
            old[node_id] = node.position
            node.position = (float(x), float(y))
        return MoveNodes(old)


@dataclass
class SetGroup(Operation):
    """Create or replace a group; ``RemoveGroup`` deletes one."""

    group: Group
    description = "group"

    def apply(self, graph):
        missing = [m for m in self.group.members if m not in graph._g]
        if missing:
            raise GraphError(f"group {self.group.title!r}: unknown member nodes {missing}")
        old = graph.groups.get(self.group.id)
        graph.groups[self.group.id] = self.group
        return SetGroup(old) if old else RemoveGroup(self.group.id)


@dataclass
class RemoveGroup(Operation):
    group_id: str
    description = "ungroup"

    def apply(self, graph):
        old = graph.groups.pop(self.group_id, None)
        if old is None:
            raise GraphError(f"no group {self.group_id!r}")
        return SetGroup(old)


@dataclass
class SetComment(Operation):
    comment: Comment
    description = "comment"

    def apply(self, graph):
        old = graph.comments.get(self.comment.id)
        graph.comments[self.comment.id] = self.comment
        return SetComment(old) if old else RemoveComment(self.comment.id)


@dataclass
class RemoveComment(Operation):
    comment_id: str
    description = "remove comment"

    def apply(self, graph):
        old = graph.comments.pop(self.comment_id, None)
        if old is None:
            raise GraphError(f"no comment {self.comment_id!r}")
        return SetComment(old)


@dataclass
class Compound(Operation):
    """Several operations applied as one (one undo step); rolled back if any part fails."""

    operations: list[Operation] = field(default_factory=list)
    label: str = "edit"

    @property
    def description(self):
        return self.label

    def apply(self, graph):
        done: list[Operation] = []
        try:
            for op in self.operations:
                done.append(op.apply(graph))
        except Exception:
            for inverse in reversed(done):
                inverse.apply(graph)
            raise
        return Compound(list(reversed(done)), self.label)


def astuple(edge: Edge) -> tuple[str, str, str, str]:
    return (edge.src, edge.src_port, edge.dst, edge.dst_port)


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------
def needs_projection(out: Port, inp: Port) -> bool:
    """Spikes wired straight into a population's input: a Projection belongs in between."""
    return out.kind == PortKind.SPIKES and inp.accepts_kind(PortKind.SYNAPTIC)


class ModelGraph:
    """Nodes, wires, groups and comments of one network, backed by a networkx MultiDiGraph."""

    def __init__(self):
        self._g = nx.MultiDiGraph()
        self._order: list[str] = []  # node order of files and listings, kept exact across undo
        self.groups: dict[str, Group] = {}
        self.comments: dict[str, Comment] = {}
        self._listeners: list[Callable[[Operation], None]] = []

    # -- access -------------------------------------------------------------------------------
    @property
    def nodes(self) -> dict[str, NodeType]:
        return {nid: self._g.nodes[nid]["node"] for nid in self._order}

    def _insert(self, node: NodeType, index: int | None = None) -> None:
        if node.id in self._g:
            raise GraphError(f"a node with id {node.id!r} already exists")
        self._g.add_node(node.id, node=node)
        self._order.insert(len(self._order) if index is None else index, node.id)

    def node(self, node_id: str) -> NodeType:
        try:
            return self._g.nodes[node_id]["node"]
        except KeyError:
            raise GraphError(f"no node with id {node_id!r}") from None

    def find(self, id_or_label: str | None) -> str | None:
        """The id of the node with this id, or else with this label (problems name labels)."""
        if not id_or_label:
            return None
        if id_or_label in self._g:
            return id_or_label
        return next((nid for nid in self._order if self._g.nodes[nid]["node"].label == id_or_label), None)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._g

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    @property
    def edges(self) -> list[Edge]:
        return sorted(data["edge"] for _, _, data in self._g.edges(data=True))

    def edges_of(self, node_id: str) -> list[Edge]:
        ins = [d["edge"] for _, _, d in self._g.in_edges(node_id, data=True)]
        outs = [d["edge"] for _, _, d in self._g.out_edges(node_id, data=True)]
        return sorted(set(ins + outs))

    def upstream(self, node_id: str, port: str) -> list[tuple[NodeType, str]]:
        """Nodes (and their output port) wired into ``node_id``'s input ``port``."""
        return [(self.node(d["edge"].src), d["edge"].src_port)
                for _, _, d in sorted(self._g.in_edges(node_id, data=True), key=lambda e: e[2]["edge"])
                if d["edge"].dst_port == port]

    def downstream(self, node_id: str, port: str) -> list[tuple[NodeType, str]]:
        """Nodes (and their input port) that ``node_id``'s output ``port`` feeds."""
        return [(self.node(d["edge"].dst), d["edge"].dst_port)
                for _, _, d in sorted(self._g.out_edges(node_id, data=True), key=lambda e: e[2]["edge"])
                if d["edge"].src_port == port]

    def of_category(self, category) -> list[NodeType]:
        return [n for n in self.nodes.values() if n.category == category]

    def networkx(self) -> nx.MultiDiGraph:
        """A copy of the underlying networkx graph (nodes carry ``node``, edges ``edge``)."""
        return self._g.copy()

    # -- edits ----------------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Operation], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Operation], None]) -> None:
        self._listeners.remove(listener)

    def apply(self, op: Operation) -> Operation:
        """Apply one operation; return its inverse. Listeners are told after success."""
        inverse = op.apply(self)
        for listener in list(self._listeners):
            listener(op)
        return inverse

    def new_node_id(self, type_id: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "_", type_id.split(".")[-1].lower())
        for i in itertools.count(1):
            candidate = f"{stem}_{i}"
            if candidate not in self._g:
                return candidate

    def unique_label(self, base: str) -> str:
        taken = {n.label for n in self.nodes.values()}
        if base not in taken:
            return base
        for i in itertools.count(2):
            if f"{base} {i}" not in taken:
                return f"{base} {i}"

    def make_node(self, type_id: str, label: str = "", position=(0.0, 0.0), node_id: str = "",
                  **values) -> NodeType:
        """A new node with a fresh id and label, not yet added (for AddNode operations)."""
        cls = catalogue.node_type(type_id)
        return cls(node_id or self.new_node_id(type_id), label or self.unique_label(cls.title),
                   position, **values)

    def add_node(self, type_id: str, label: str = "", position=(0.0, 0.0), node_id: str = "",
                 **values) -> NodeType:
        node = self.make_node(type_id, label, position, node_id, **values)
        self.apply(AddNode(node))
        return self.node(node.id)

    def remove_node(self, node_id: str) -> Operation:
        return self.apply(RemoveNode(node_id))

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> Edge:
        edge = Edge(src, src_port, dst, dst_port)
        self.apply(Connect(edge))
        return edge

    def disconnect(self, edge: Edge) -> Operation:
        return self.apply(Disconnect(edge))

    def set_param(self, node_id: str, name: str, value: Any) -> Operation:
        return self.apply(SetParam(node_id, name, value))

    def move(self, positions: dict[str, tuple[float, float]]) -> Operation:
        return self.apply(MoveNodes(positions))

    def group(self, title: str, members: Iterable[str], colour: str = "#4a5a6a") -> Group:
        gid = next(f"group_{i}" for i in itertools.count(1) if f"group_{i}" not in self.groups)
        group = Group(gid, title, tuple(members), colour)
        self.apply(SetGroup(group))
        return group

    def comment(self, text: str, position=(0.0, 0.0)) -> Comment:
        cid = next(f"comment_{i}" for i in itertools.count(1) if f"comment_{i}" not in self.comments)
        comment = Comment(cid, text, (float(position[0]), float(position[1])))
        self.apply(SetComment(comment))
        return comment

    # -- connection rules -------------------------------------------------------------------------
    def ports_of(self, node_id: str, direction: str) -> tuple[Port, ...]:
        node = self.node(node_id)
        return node.inputs() if direction == "in" else node.outputs()

    def can_connect(self, src: str, src_port: str, dst: str, dst_port: str) -> tuple[bool, str]:
        """Whether a wire is allowed, and if not, a reason a user can act on."""
        if src not in self._g or dst not in self._g:
            missing = src if src not in self._g else dst
            return False, f"no node with id {missing!r}"
        a, b = self.node(src), self.node(dst)
        out = a.port(src_port, "out")
        inp = b.port(dst_port, "in")
        if out is None:
            names = ", ".join(p.name for p in a.outputs()) or "none"
            return False, f"{a.label!r} has no output port {src_port!r} (outputs: {names})"
        if inp is None:
            names = ", ".join(p.name for p in b.inputs()) or "none"
            return False, f"{b.label!r} has no input port {dst_port!r} (inputs: {names})"
        if src == dst:
            return False, f"{a.label!r} cannot be wired to itself; use a projection for recurrence"
        if not inp.accepts_kind(out.kind):
            wanted = " or ".join(k.value for k in inp.kinds)
            bridge = ("; insert a Projection between them (it turns spikes into synaptic input)"
                      if needs_projection(out, inp) else "")
            return False, (f"{b.label!r}.{dst_port} takes {wanted}, but {a.label!r}.{src_port} "
                           f"gives {out.kind.value}{bridge}")
        edge = Edge(src, src_port, dst, dst_port)
        if self._g.has_edge(src, dst, key=edge):
            return False, "these ports are already connected"
        if not inp.multiple and self.upstream(dst, dst_port):
            return False, (f"{b.label!r}.{dst_port} takes a single wire and is already connected; "
                           "remove that wire first")
        return True, ""

    def compatible_ports(self, src: str, src_port: str) -> list[tuple[str, str]]:
        """Every (node, input port) the given output could be wired to now (for drag highlights)."""
        return [(nid, p.name) for nid in self._g for p in self.node(nid).inputs()
                if self.can_connect(src, src_port, nid, p.name)[0]]

    # -- serialisation ------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "nodes": [
                {"id": n.id, "type": n.type_id, "label": n.label, "position": list(n.position),
                 "params": n.values_json()}
                for n in self.nodes.values()
            ],
            "edges": [e.to_json() for e in self.edges],
            "groups": [g.to_json() for g in self.groups.values()],
            "comments": [c.to_json() for c in self.comments.values()],
        }

    def copy(self) -> "ModelGraph":
        clone = ModelGraph()
        for node in self.nodes.values():
            clone._insert(node.copy())
        for edge in self.edges:
            clone._g.add_edge(edge.src, edge.dst, key=edge, edge=edge)
        clone.groups = dict(self.groups)
        clone.comments = dict(self.comments)
        return clone

    def __eq__(self, other) -> bool:
        return isinstance(other, ModelGraph) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"<ModelGraph {len(self)} nodes, {self._g.number_of_edges()} edges>"

    # -- clipboard ----------------------------------------------------------------------------------
    def fragment(self, node_ids: Iterable[str]) -> dict:
        """The selected nodes and the wires among them, as JSON (for copy / cut / duplicate)."""
        ids = set(node_ids)
        data = self.to_json()
        return {
            "format": "synweave-fragment",
            "nodes": [n for n in data["nodes"] if n["id"] in ids],
            "edges": [e for e in data["edges"] if e["src"] in ids and e["dst"] in ids],
        }

    def paste_operation(self, fragment: dict, offset=(40.0, 40.0)) -> tuple[Compound, list[str]]:
        """An operation that adds a copied fragment with fresh ids; returns it and the new ids.

        The fragment is validated like a project file (it may come from another window or program
        through the clipboard); a bad fragment raises :class:`engine.errors.ProjectFileError`.
        """
        from engine.project import parse_fragment  # the file parser owns validation

        parsed_nodes, parsed_edges = parse_fragment(fragment)
        ops: list[Operation] = []
        mapping: dict[str, str] = {}
        scratch = self.copy()  # to allocate ids and labels without touching self
        for node in parsed_nodes:
            new_id = scratch.new_node_id(node.type_id)
            clone = node.copy()
            clone.id = new_id
            clone.label = scratch.unique_label(node.label)
            clone.position = (node.position[0] + offset[0], node.position[1] + offset[1])
            scratch._insert(clone)
            mapping[node.id] = new_id
            ops.append(AddNode(clone))
        for e in parsed_edges:
            ops.append(Connect(Edge(mapping[e.src], e.src_port, mapping[e.dst], e.dst_port)))
        return Compound(ops, f"paste {len(parsed_nodes)} node(s)"), list(mapping.values())
