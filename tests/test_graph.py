"""Model graph operations: every edit is reversible and undo restores the exact graph."""

import random

import pytest

from engine.errors import GraphError, ParameterError, ValidationError
from engine.graph import (AddNode, Compound, Connect, Edge, ModelGraph, MoveNodes, RemoveNode,
                          SetParam)
from engine.validate import require_valid, validate


def small_graph():
    g = ModelGraph()
    src = g.add_node("input.poisson", "Drive", n=50, rate=20.0)
    pop = g.add_node("neuron.lif", "Cells", n=20)
    prj = g.add_node("synapse.projection", "Drive→Cells")
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    return g, src, pop, prj


def test_connect_refuses_incompatible_kinds_with_a_reason():
    g, src, pop, prj = small_graph()
    cur = g.add_node("input.current")
    ok, reason = g.can_connect(cur.id, "current", prj.id, "pre")
    assert not ok and "takes spikes" in reason and "gives current" in reason
    with pytest.raises(GraphError, match="takes spikes"):
        g.connect(cur.id, "current", prj.id, "pre")
    # a population input takes currents as well as synaptic input
    assert g.can_connect(cur.id, "current", pop.id, "input") == (True, "")


def test_single_inputs_take_one_wire_and_duplicates_are_refused():
    g, src, pop, prj = small_graph()
    other = g.add_node("input.poisson")
    ok, reason = g.can_connect(other.id, "spikes", prj.id, "pre")
    assert not ok and "single wire" in reason
    ok, reason = g.can_connect(prj.id, "post", pop.id, "input")
    assert not ok and "already connected" in reason


def test_unknown_ports_and_nodes_are_named():
    g, src, pop, prj = small_graph()
    assert "no output port 'spikez'" in g.can_connect(src.id, "spikez", prj.id, "pre")[1]
    assert "no node with id 'ghost'" in g.can_connect("ghost", "spikes", prj.id, "pre")[1]


def test_compatible_ports_lists_only_legal_targets():
    g, src, pop, prj = small_graph()
    mon = g.add_node("monitor.spikes")
    targets = g.compatible_ports(pop.id, "spikes")
    assert (mon.id, "source") in targets
    assert (prj.id, "pre") not in targets  # already taken
    assert all(g.can_connect(pop.id, "spikes", n, p)[0] for n, p in targets)


def test_remove_node_undo_restores_wires_and_groups():
    g, src, pop, prj = small_graph()
    g.group("Frame", [src.id, prj.id])
    before = g.to_json()
    inverse = g.remove_node(prj.id)
    assert prj.id not in g and not g.edges
    assert g.groups["group_1"].members == (src.id,)
    g.apply(inverse)
    assert g.to_json() == before


def test_set_param_is_validated_and_reversible():
    g, src, pop, prj = small_graph()
    with pytest.raises(ParameterError, match="Cells.*tau_m"):
        g.set_param(pop.id, "tau_m", 0.0)
    assert pop.tau_m == 10.0
    inverse = g.set_param(pop.id, "tau_m", 25.0)
    assert g.node(pop.id).tau_m == 25.0
    g.apply(inverse)
    assert g.node(pop.id).tau_m == 10.0


def test_compound_rolls_back_when_a_part_fails():
    g, src, pop, prj = small_graph()
    before = g.to_json()
    bad = Compound([SetParam(pop.id, "tau_m", 30.0), MoveNodes({pop.id: (5, 5)}),
                    SetParam(pop.id, "tau_m", -1.0)])
    with pytest.raises(ParameterError):
        g.apply(bad)
    assert g.to_json() == before


def random_edit(g: ModelGraph, rng: random.Random):
    """One random legal operation on g (used to fuzz undo/redo)."""
    nodes = list(g.nodes.values())
    choice = rng.randrange(6)
    if choice == 0 or len(nodes) < 3:
        type_id = rng.choice(["neuron.lif", "input.poisson", "synapse.projection", "monitor.spikes",
                              "plasticity.stdp", "neuron.izhikevich"])
        return AddNode(g.make_node(type_id, position=(rng.uniform(-500, 500), rng.uniform(-500, 500))))
    if choice == 1:
        return RemoveNode(rng.choice(nodes).id)
    if choice == 2:
        n = rng.choice(nodes)
        return MoveNodes({n.id: (rng.uniform(-900, 900), rng.uniform(-900, 900))})
    if choice == 3:
        n = rng.choice(nodes)
        floats = [k for k, p in n.params.items() if p.kind == "float"]
        if floats:
            name = rng.choice(floats)
            p = n.params[name]
            lo = p.low if p.low is not None else -10.0
            hi = p.high if p.high is not None else lo + 100.0
            value = min(hi, lo + rng.random() * min(hi - lo, 100.0))
            if p.low_open and value == p.low:
                value = (p.low + min(hi, p.low + 1)) / 2
            return SetParam(n.id, name, value)
    candidates = [(a.id, o.name, b.id, i.name) for a in nodes for o in a.outputs()
                  for b in nodes for i in b.inputs() if g.can_connect(a.id, o.name, b.id, i.name)[0]]
    if candidates:
        return Connect(Edge(*rng.choice(candidates)))
    n = rng.choice(nodes)
    return MoveNodes({n.id: (0.0, 0.0)})


@pytest.mark.parametrize("seed", range(5))
def test_twenty_random_edits_undo_and_redo_exactly(seed):
    rng = random.Random(seed)
    g, *_ = small_graph()
    snapshots = [g.to_json()]
    done = []
    for _ in range(20):
        op = random_edit(g, rng)
        inverse = g.apply(op)
        done.append((op, inverse))
        snapshots.append(g.to_json())
    for i in range(len(done) - 1, -1, -1):  # undo everything
        op, inverse = done[i]
        redo = g.apply(inverse)
        done[i] = (redo, None)
        assert g.to_json() == snapshots[i]
    for i, (redo, _) in enumerate(done):  # redo everything
        g.apply(redo)
        assert g.to_json() == snapshots[i + 1]


def test_listeners_hear_every_applied_operation():
    g = ModelGraph()
    heard = []
    g.subscribe(heard.append)
    n = g.add_node("neuron.lif")
    g.set_param(n.id, "n", 5)
    assert [type(op).__name__ for op in heard] == ["AddNode", "SetParam"]


def test_fragment_paste_gets_fresh_ids_and_keeps_internal_wires():
    g, src, pop, prj = small_graph()
    fragment = g.fragment([src.id, prj.id])
    op, new_ids = g.paste_operation(fragment)
    g.apply(op)
    assert len(new_ids) == 2 and not set(new_ids) & {src.id, prj.id}
    new_src, new_prj = (g.node(i) for i in new_ids)
    assert g.upstream(new_prj.id, "pre")[0][0].id == new_src.id
    assert new_src.label != src.label


def test_invalid_graph_reports_all_problems_at_once():
    g = ModelGraph()
    g.add_node("synapse.projection", "Orphan")  # no pre, no post
    izh = g.add_node("neuron.izhikevich", "Izh")
    lif = g.add_node("neuron.lif", "Bad LIF", V_reset=-40.0)  # reset above threshold
    src = g.add_node("input.poisson")
    cond = g.add_node("synapse.projection", "Cond", receptor_type="conductance")
    g.connect(src.id, "spikes", cond.id, "pre")
    g.connect(cond.id, "post", lif.id, "input")  # conductance onto a current-based LIF
    ip = g.add_node("plasticity.intrinsic", "IP")
    src2 = g.add_node("input.poisson")
    prj2 = g.add_node("synapse.projection", "To Izh")
    g.connect(src2.id, "spikes", prj2.id, "pre")
    g.connect(prj2.id, "post", izh.id, "input")
    g.connect(ip.id, "rule", prj2.id, "rule")  # adaptive threshold onto Izhikevich
    rstdp = g.add_node("plasticity.rstdp", "RSTDP")  # missing modulation input
    g.connect(rstdp.id, "rule", prj2.id, "rule")
    mon = g.add_node("monitor.state", "Vmon", variable="g_exc")
    g.connect(izh.id, "state", mon.id, "population")  # Izhikevich has no g_exc
    problems = [p for p in validate(g) if p.severity == "error"]
    found = {(p.node, p.field) for p in problems}
    expected = {("Orphan", "pre"), ("Orphan", "post"), ("Bad LIF", "V_reset"),
                ("Cond", "receptor_type"), ("IP", "rule"), ("RSTDP", "modulation"),
                ("Vmon", "variable")}
    assert expected <= found, found
    assert all(p.hint for p in problems)
    with pytest.raises(ValidationError) as info:
        require_valid(g)
    assert len(info.value.problems) == len(problems)
    assert "Izhikevich" in str(info.value) and "fix:" in str(info.value)


def test_grid_layout_must_match_population_size():
    g = ModelGraph()
    g.add_node("neuron.lif", "Grid", n=100, layout="grid", grid=(5, 5, 5))
    [p] = [p for p in validate(g) if p.field == "grid"]
    assert "125" in p.hint


def test_find_takes_an_id_or_a_label():
    g, src, pop, prj = small_graph()
    assert g.find(pop.id) == pop.id
    assert g.find("Cells") == pop.id
    assert g.find("nobody") is None and g.find(None) is None
