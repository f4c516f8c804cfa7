"""GraphML: the model graph (written by networkx), or the expanded connectome (streamed in networkx's
schema, so ``networkx.read_graphml`` loads both).

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
from xml.sax.saxutils import escape

import networkx as nx
import numpy as np

from engine.errors import ExportError
from engine.exporters import ExportReport, write_atomic

#: Above this many synapses the connectome is refused: GraphML holds ~230 bytes per synapse, and
#: networkx needs ~3 kB per edge to load it back.
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


def _xml(text) -> str:
    return escape(str(text), {'"': "&quot;"})


def write_connectome_graphml(project, plan, stream) -> tuple[int, int]:
    """Stream the connectome as GraphML (networkx's schema: ``nx.read_graphml`` loads it).

    Written directly rather than through a networkx graph: CUBA's 320 k synapses take ~3 s and a few
    MB this way, against ~30 s and 1 GB through ``nx.write_graphml``. Returns (nodes, edges).
    """
    labels = plan.metadata.get("labels", {})
    keys = [("g0", "graph", "name", "string"), ("g1", "graph", "format", "string"),
            ("g2", "graph", "dt_ms", "double"), ("g3", "graph", "seed", "long"),
            ("n0", "node", "population", "string"), ("n1", "node", "label", "string"),
            ("n2", "node", "index", "long"), ("n3", "node", "model", "string"),
            ("e0", "edge", "weight", "double"), ("e1", "edge", "delay_ms", "double"),
            ("e2", "edge", "projection", "string"), ("e3", "edge", "receptor", "string")]
    w = stream.write
    w("<?xml version='1.0' encoding='utf-8'?>\n"
      '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
      'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')
    for kid, scope, name, kind in keys:
        w(f'<key id="{kid}" for="{scope}" attr.name="{name}" attr.type="{kind}"/>\n')
    w(f'<graph edgedefault="directed"><data key="g0">{_xml(project.name)}</data>'
      f'<data key="g1">synweave-connectome</data><data key="g2">{float(plan.dt)!r}</data>'
      f'<data key="g3">{int(plan.seed)}</data>\n')
    emitters = [(pop.name, pop.size, pop.model) for pop in plan.populations]
    emitters += [(src.name, src.size, f"source:{getattr(src, 'kind', 'poisson')}")
                 for src in plan.sources if src.emits_spikes]
    n_nodes = 0
    for name, size, model in emitters:
        head = f'<data key="n0">{_xml(name)}</data><data key="n1">{_xml(labels.get(name, name))}</data>'
        tail = f'<data key="n3">{_xml(model)}</data></node>\n'
        w("".join(f'<node id="{_xml(name)}:{i}">{head}<data key="n2">{i}</data>{tail}' for i in range(size)))
        n_nodes += size
    n_edges = 0
    for prj in plan.projections:
        post = plan.population(prj.post)
        receptor = post.receptors[post.receptor_index(prj.receptor)].name
        tail = f'<data key="e2">{_xml(prj.name)}</data><data key="e3">{_xml(receptor)}</data></edge>\n'
        pre_id, post_id = _xml(prj.pre), _xml(prj.post)
        pre = prj.pre_indices()
        delays_ms = np.round(prj.delays.astype(np.float64) * plan.dt, 9)
        for lo in range(0, prj.n_synapses, 100_000):  # bounded temporary strings
            hi = min(prj.n_synapses, lo + 100_000)
            # astype(str) gives the shortest text of each stored weight (float32 16.2 -> "16.2")
            w("".join(f'<edge source="{pre_id}:{j}" target="{post_id}:{i}"><data key="e0">{wt}</data>'
                      f'<data key="e1">{d!r}</data>{tail}'
                      for j, i, wt, d in zip(pre[lo:hi].tolist(), prj.indices[lo:hi].tolist(),
                                             prj.weights[lo:hi].astype(str).tolist(),
                                             delays_ms[lo:hi].tolist())))
        n_edges += prj.n_synapses
    w("</graph></graphml>\n")
    return n_nodes, n_edges


def export_graphml(project, out: Path, what: str = "model", max_synapses: int = MAX_CONNECTOME_SYNAPSES,
                   **_ignored) -> ExportReport:
    """Write the model graph or the connectome of ``project`` to ``out`` (.graphml)."""
    report = ExportReport("GraphML")
    if what == "model":
        g = model_networkx(project)
        write_atomic(out, lambda tmp: nx.write_graphml(g, tmp))
    elif what == "connectome":
        from engine.compiler import compile_graph

        plan = compile_graph(project)
        if plan.n_synapses > max_synapses:
            raise ExportError(f"the connectome has {plan.n_synapses:,} synapses, more than the "
                              f"{max_synapses:,} a GraphML file can reasonably hold; export the model "
                              "graph instead (--what model) or reduce the network")
        counts = {}

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                counts["nodes"], counts["edges"] = write_connectome_graphml(project, plan, f)

        write_atomic(out, write)
        for node_id in plan.metadata.get("not_simulated", []):
            node = project.graph.node(node_id)
            report.dropped(node.label, f"{node.title}: not part of the connectome (only neurons and "
                                       "synapses with their initial weights and delays are)")
        for node in project.graph.nodes.values():
            if node.category.value == "Monitors" and node.id not in plan.metadata.get("not_simulated", []):
                report.dropped(node.label, "monitors are not part of the connectome")
            elif node.type_id == "input.current":
                report.dropped(node.label, "injected currents are not part of the connectome")
        report.note("network", f"{counts['nodes']:,} nodes (neurons and source channels), "
                               f"{counts['edges']:,} edges (synapses), delays in ms on the "
                               f"dt = {plan.dt:g} ms grid, seed {plan.seed}")
    else:
        raise ExportError(f"GraphML can hold the 'model' graph or the 'connectome', not {what!r}")
    report.written.append(out)
    return report

