"""Automatic layered layout of a model graph, left to right by data flow (no Qt here)."""

from __future__ import annotations

import networkx as nx

from nodes.base import Category

CATEGORY_ORDER = {c: i for i, c in enumerate(Category)}


def _acyclic(g: nx.DiGraph, order: list[str]) -> nx.DiGraph:
    """Drop back edges found by a depth-first search started from ``order`` (sources first)."""
    dag = nx.DiGraph()
    dag.add_nodes_from(g.nodes)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in order:
        if root in state:
            continue
        stack = [(root, iter(sorted(g.successors(root), key=order.index)))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    continue  # back edge: recurrence, ignore for layering
                dag.add_edge(node, child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(sorted(g.successors(child), key=order.index))))
                    break
            else:
                state[node] = 2
                stack.pop()
    return dag


def layered_positions(graph, heights: dict[str, float] | None = None, *, column_gap: float = 270.0,
                      row_gap: float = 36.0, origin: tuple[float, float] | None = None
                      ) -> dict[str, tuple[float, float]]:
    """Positions of every node: one column per topological generation of the data flow.

    Recurrent wires (a population feeding itself through a projection) are broken by a DFS
    from the sources, so recurrent networks still read left to right. Within a column, nodes
    are ordered by the mean row of their predecessors (barycentre) to reduce crossings.
    ``heights`` gives each node's drawn height so stacks do not overlap.
    """
    nodes = graph.nodes
    if not nodes:
        return {}
    heights = heights or {}
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    for e in graph.edges:
        if e.src != e.dst:
            g.add_edge(e.src, e.dst)
    order = sorted(nodes, key=lambda nid: (g.in_degree(nid) > 0, CATEGORY_ORDER.get(nodes[nid].category, 99),
                                            nodes[nid].position[1], nodes[nid].position[0], nid))
    dag = _acyclic(g, order)
    layers = [sorted(gen, key=order.index) for gen in nx.topological_generations(dag)]
    # Pull nodes with no inputs (rules, modulators, sources) next to their first consumer.
    layer_of = {nid: i for i, layer in enumerate(layers) for nid in layer}
    for nid in list(layer_of):
        if dag.in_degree(nid) == 0 and dag.out_degree(nid) > 0:
            target = min(layer_of[s] for s in dag.successors(nid)) - 1
            if target > layer_of[nid]:
                layers[layer_of[nid]].remove(nid)
                layers[target].append(nid)
                layer_of[nid] = target
    # Monitors and readouts are sinks: give them the last column, after everything they watch.
    sinks = [nid for nid in layer_of if dag.out_degree(nid) == 0 and dag.in_degree(nid) > 0
             and nodes[nid].category in (Category.MONITOR, Category.READOUT)]
    if sinks and len(sinks) < len(layer_of):
        for nid in sinks:
            layers[layer_of[nid]].remove(nid)
        layers = [layer for layer in layers if layer]
        layers.append(sorted(sinks, key=order.index))
    layers = [layer for layer in layers if layer]
    row: dict[str, float] = {}
    for i, layer in enumerate(layers):
        def bary(nid):
            preds = [row[p] for p in g.predecessors(nid) if p in row]
            return (sum(preds) / len(preds)) if preds else float(order.index(nid))
        if i > 0:
            layer.sort(key=lambda nid: (bary(nid), order.index(nid)))
        for j, nid in enumerate(layer):
            row[nid] = j
    if origin is None:
        xs = [n.position[0] for n in nodes.values()]
        ys = [n.position[1] for n in nodes.values()]
        origin = (min(xs), min(ys))
    positions: dict[str, tuple[float, float]] = {}
    totals = [sum(heights.get(n, 120.0) for n in layer) + row_gap * (len(layer) - 1) for layer in layers]
    tallest = max(totals)
    for i, layer in enumerate(layers):
        y = origin[1] + (tallest - totals[i]) / 2.0
        for nid in layer:
            positions[nid] = (round(origin[0] + i * column_gap), round(y))
            y += heights.get(nid, 120.0) + row_gap
    return positions
