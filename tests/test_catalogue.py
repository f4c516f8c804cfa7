"""The node catalogue: every type is complete, documented, and its defaults validate."""

import pytest

import nodes
from engine.errors import ParameterError, UnknownNodeTypeError
from engine.graph import ModelGraph
from engine.validate import validate
from nodes.base import Category
from nodes.params import UNITS

ALL = nodes.all_node_types()

REQUIRED_TYPES = {
    "input.poisson", "input.spike_train", "input.current", "input.dataset", "input.event_stream",
    "neuron.lif", "neuron.alif", "neuron.cobalif", "neuron.izhikevich",
    "synapse.projection",
    "plasticity.stdp", "plasticity.triplet", "plasticity.symmetric", "plasticity.rstdp",
    "plasticity.scaling", "plasticity.intrinsic", "plasticity.oja", "plasticity.bcm",
    "modulator.nalsm_astrocyte", "modulator.tripartite_astrocyte", "modulator.reward",
    "readout.softmax", "readout.ridge", "readout.vote",
    "monitor.spikes", "monitor.state", "monitor.rate", "monitor.weights", "monitor.branching",
}


def test_catalogue_has_every_required_type():
    assert REQUIRED_TYPES <= {cls.type_id for cls in ALL}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.type_id)
def test_type_is_documented_with_units_defaults_and_bounds(cls):
    assert cls.title and cls.doc() and isinstance(cls.category, Category)
    assert cls.ports, "every node type has at least one port"
    for name, p in cls.params.items():
        assert p.doc, name
        assert p.unit in UNITS, name
        # the default passes its own validation
        assert p.coerce(p.default) == p.default


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.type_id)
def test_defaults_of_each_type_have_no_parameter_problems(cls):
    node = cls("x", "X")
    assert list(node.check()) == [] or cls.type_id in {
        # file-based inputs need a file chosen before they can run
        "input.event_stream"}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.type_id)
def test_out_of_bounds_values_are_rejected_with_field_and_node(cls):
    node = cls("x", "My node")
    for name, p in cls.params.items():
        bad = None
        if getattr(p, "low", None) is not None and p.kind in ("float", "int", "seed"):
            bad = p.low - 1
        elif p.kind == "choice":
            bad = "no-such-choice"
        if bad is None:
            continue
        with pytest.raises(ParameterError) as info:
            node.set(name, bad)
        assert info.value.field == name
        assert "My node" in str(info.value)
        assert node.get(name) == p.default  # a refused value leaves the node unchanged


def test_unknown_type_error_names_the_type():
    with pytest.raises(UnknownNodeTypeError, match="neuron.hodgkin_huxley"):
        nodes.create("neuron.hodgkin_huxley")


def test_type_mismatch_messages_say_what_to_fix():
    lif = nodes.create("neuron.lif", "a", "Pop")
    with pytest.raises(ParameterError, match="without the unit"):
        lif.set("tau_m", "10 ms")
    with pytest.raises(ParameterError, match="did you mean 'delta'"):
        lif.set("synapse", "DELTA")
    with pytest.raises(ParameterError, match="finite"):
        lif.set("tau_m", float("nan"))


def test_every_type_validates_in_a_minimal_graph_with_its_required_inputs_wired():
    """Each node type, wired to what its required inputs need, gives no errors."""
    for cls in ALL:
        g = ModelGraph()
        node = g.add_node(cls.type_id)
        if cls.type_id == "input.event_stream":
            g.set_param(node.id, "file", "events.npz")
        if cls.type_id == "training.phase":  # phases present the samples of the graph's data set
            g.add_node("input.dataset")
        _wire_required(g, node)
        errors = [p for p in validate(g) if p.severity == "error"]
        assert errors == [], (cls.type_id, [str(e) for e in errors])


def _wire_required(g, node):
    providers = {
        "spikes": ("input.poisson", "spikes"),
        "labels": ("input.dataset", "labels"),
        "state": ("neuron.lif", "state"),
        "weights": ("synapse.projection", "weights"),
        "modulation": ("modulator.reward", "modulation"),
    }
    for port in node.inputs():
        if not port.required:
            continue
        type_id, out = providers[port.kind.value]
        src = g.add_node(type_id)
        g.connect(src.id, out, node.id, port.name)
        if type_id == "synapse.projection":
            pre, post = g.add_node("input.poisson"), g.add_node("neuron.lif")
            g.connect(pre.id, "spikes", src.id, "pre")
            g.connect(src.id, "post", post.id, "input")
    if node.type_id == "synapse.projection":
        post = g.add_node("neuron.lif")
        g.connect(node.id, "post", post.id, "input")
    if node.category == Category.PLASTICITY:
        pre, prj, post = g.add_node("input.poisson"), g.add_node("synapse.projection"), g.add_node("neuron.lif")
        g.connect(pre.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", post.id, "input")
        g.connect(node.id, "rule", prj.id, "rule")


def test_node_docs_cite_papers_not_the_internal_spec():
    for cls in nodes.all_node_types():
        text = cls.doc()
        assert "MODELS.md" not in text and "§" not in text, cls.type_id
        assert "()" not in text, cls.type_id
