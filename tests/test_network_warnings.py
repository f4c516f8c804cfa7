"""A default network fires; the Problems panel warns about silent populations, unconnected
populations and networks without a monitor (issue 9, item 4)."""

import pytest

from engine import examples
from engine.project import Project, example_projects
from engine.runner import Simulation
from engine.validate import validate


def _chain(weight=None, monitor=True, **lif):
    project = Project()
    g = project.graph
    src = g.add_node("input.poisson")
    prj = g.add_node("synapse.projection", **({} if weight is None else {"weight": weight}))
    pop = g.add_node("neuron.lif", **lif)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    if monitor:
        mon = g.add_node("monitor.spikes")
        g.connect(pop.id, "spikes", mon.id, "source")
    return project


def _warnings(project, words):
    return [p for p in validate(project.graph, project.settings)
            if p.severity == "warning" and words in p.message]


def _rate_hz(project, duration=1000.0):
    results = Simulation(project).run(duration)
    return results.n_spikes / (project.graph.node("lif_1").n * duration / 1000.0)


def test_poisson_projection_lif_with_defaults_fires_visibly():
    project = _chain()
    assert not [p for p in validate(project.graph, project.settings) if p.severity == "error"]
    assert not _warnings(project, "drive")
    assert 5.0 < _rate_hz(project) < 100.0


@pytest.mark.parametrize("weight, silent", [(1.0, True), (100.0, True), (300.0, False), (500.0, False)])
def test_drive_estimate_agrees_with_the_simulation(weight, silent):
    project = _chain(weight)
    warned = _warnings(project, "too little input drive")
    rate = _rate_hz(project)
    assert bool(warned) == silent
    if silent:
        assert rate < 1.0, rate
        assert warned[0].node == "LIF" and "below V_th = -50 mV" in warned[0].message
    else:
        assert rate > 5.0, rate


def test_delta_and_conductance_targets_are_estimated_too():
    delta = _chain(0.5, synapse="delta")          # 10 inputs/neuron at 10 Hz, 0.5 mV kicks
    assert _warnings(delta, "too little input drive")
    assert _rate_hz(delta) < 1.0
    delta.graph.node("projection_1").weight = 20.0
    assert not _warnings(delta, "too little input drive")
    assert _rate_hz(delta) > 5.0
    project = Project()
    g = project.graph
    src = g.add_node("input.poisson", n=1000, rate=15.0)
    prj = g.add_node("synapse.projection", connectivity="all_to_all", weight=0.0005,
                     receptor_type="conductance")
    pop = g.add_node("neuron.cobalif", n=1)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    assert _warnings(project, "too little input drive")
    prj.weight = 0.05
    assert not _warnings(project, "too little input drive")


def test_a_population_without_input_and_one_without_any_wire():
    project = _chain()
    g = project.graph
    lonely = g.add_node("neuron.lif", "Lonely")
    problems = [p for p in validate(g) if p.node == "Lonely"]
    assert [p.severity for p in problems] == ["warning", "warning"]
    assert "not connected to anything" in problems[0].message
    assert "receives no input" in problems[1].message
    lonely.I_e = 250.0  # R I_e = 25 mV above rest: reaches threshold on its own
    assert [p.message for p in validate(g) if p.node == "Lonely"] == \
           ["the population is not connected to anything"]


def test_no_monitor_is_a_warning():
    project = _chain(monitor=False)
    (problem,) = _warnings(project, "no monitor")
    assert problem.node is None and "Spike monitor" in problem.hint
    assert not _warnings(_chain(), "no monitor")


@pytest.mark.parametrize("path", example_projects(), ids=lambda p: p.stem)
def test_examples_raise_none_of_these_warnings(path):
    project = Project.load(path)
    for words in ("drive", "receives no input", "not connected", "no monitor"):
        assert not _warnings(project, words), path.stem
    assert project == examples.BUILDERS[path.stem]()
