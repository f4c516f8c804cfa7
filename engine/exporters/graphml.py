"""GraphML (via networkx): the model graph, or the expanded connectome.

Model graph (``what="model"``)
    One GraphML node per model node (attributes ``label``, ``type``, ``category``, ``x``, ``y`` and
    every parameter as ``p_<name>``; list parameters as JSON text), one edge per wire
    (``src_port``, ``dst_port``, ``kind``). Groups and comments are graph attributes (JSON).

Connectome (``what="connectome"``)
    The compiled network: one node per neuron and per spike-source channel, id
    ``<node id>:<index>`` (attributes ``population``, ``label``, ``index``, ``model``), one edge per
    synapse (``weight`` in the receptor's unit, ``delay_ms`` on the time grid, ``projection``,
    ``receptor``). Random connectivity is drawn with the project's seed, exactly as a run would.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np

from engine.errors import ExportError
from engine.exporters import ExportReport, write_atomic

#: Above this many synapses the connectome is refused: GraphML holds ~150 bytes per edge.
MAX_CONNECTOME_SYNAPSES = 5_000_000


def _graphml_value(value):
    """A GraphML-storable attribute value (str, int, float, bool); lists as JSON text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def model_networkx(project) -> nx.MultiDiGraph:
    """The model graph as a networkx graph with GraphML-storable attributes."""
    graph = project.graph
    g = nx.MultiDiGraph(name=project.name, format="synweave-model-graph",
                        groups=json.dumps([grp.to_json() for grp in graph.groups.values()]),
                        comments=json.dumps([c.to_json() for c in graph.comments.values()]))
    for node in graph.nodes.values():
        attrs = dict(label=node.label, type=node.type_id, category=node.category.value,
                     x=float(node.position[0]), y=float(node.position[1]))
        attrs.update({f"p_{k}": _graphml_value(v) for k, v in node.values_json().items()})
        g.add_node(node.id, **attrs)
    for e in graph.edges:
        kind = graph.node(e.src).port(e.src_port, "out").kind.value
        g.add_edge(e.src, e.dst, key=f"{e.src_port}->{e.dst_port}", src_port=e.src_port,
                   dst_port=e.dst_port, kind=kind)
    return g


def connectome_networkx(project, plan=None, max_synapses: int = MAX_CONNECTOME_SYNAPSES) -> nx.MultiDiGraph:
    """The expanded network (neurons and synapses) as a networkx graph."""
    from engine.compiler import compile_graph

    plan = plan if plan is not None else compile_graph(project)
    if plan.n_synapses > max_synapses:
        raise ExportError(f"the connectome has {plan.n_synapses:,} synapses, more than the "
                          f"{max_synapses:,} a GraphML file can reasonably hold; export the model "
                          "graph instead (--what model) or reduce the network")
    labels = plan.metadata.get("labels", {})
    g = nx.MultiDiGraph(name=project.name, format="synweave-connectome", dt_ms=float(plan.dt),
                        seed=int(plan.seed))
    for pop in plan.populations:
        for i in range(pop.size):
            g.add_node(f"{pop.name}:{i}", population=pop.name, label=labels.get(pop.name, pop.name),
                       index=i, model=pop.model)
    for src in plan.sources:
        if src.emits_spikes:
            kind = getattr(src, "kind", "poisson")
            for i in range(src.size):
                g.add_node(f"{src.name}:{i}", population=src.name, label=labels.get(src.name, src.name),
                           index=i, model=f"source:{kind}")
    for prj in plan.projections:
        receptor = plan.population(prj.post).receptors[plan.population(prj.post).receptor_index(prj.receptor)].name
        pre = prj.pre_indices()
        weights = prj.weights.astype(np.float64)
        delays_ms = prj.delays.astype(np.float64) * plan.dt
        g.add_edges_from(
            (f"{prj.pre}:{int(j)}", f"{prj.post}:{int(i)}",
             dict(weight=float(w), delay_ms=float(d), projection=prj.name, receptor=receptor))
            for j, i, w, d in zip(pre, prj.indices, weights, delays_ms))
    return g


def export_graphml(project, out: Path, what: str = "model", max_synapses: int = MAX_CONNECTOME_SYNAPSES,
                   **_ignored) -> ExportReport:
    """Write the model graph or the connectome of ``project`` to ``out`` (.graphml)."""
    report = ExportReport("GraphML")
    if what == "model":
        g = model_networkx(project)
    elif what == "connectome":
        from engine.compiler import compile_graph

        plan = compile_graph(project)
        g = connectome_networkx(project, plan, max_synapses)
        for node_id in plan.metadata.get("not_simulated", []):
            node = project.graph.node(node_id)
            report.dropped(node.label, f"{node.title}: not part of the connectome (only neurons and "
                                       "synapses with their initial weights and delays are)")
        for node in project.graph.nodes.values():
            if node.category.value == "Monitors" and node.id not in plan.metadata.get("not_simulated", []):
                report.dropped(node.label, "monitors are not part of the connectome")
            elif node.type_id == "input.current":
                report.dropped(node.label, "injected currents are not part of the connectome")
        report.note("network", f"{g.number_of_nodes():,} nodes (neurons and source channels), "
                               f"{g.number_of_edges():,} edges (synapses), delays in ms on the "
                               f"dt = {plan.dt:g} ms grid, seed {plan.seed}")
    else:
        raise ExportError(f"GraphML can hold the 'model' graph or the 'connectome', not {what!r}")
    write_atomic(out, lambda tmp: nx.write_graphml(g, tmp))
    report.written.append(out)
    return report

