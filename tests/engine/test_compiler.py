"""Graph -> plan compilation: node mapping, connectivity rules, distributions, seeds, examples."""

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.errors import ValidationError
from engine.graph import ModelGraph
from engine.project import Project, SimulationSettings
from engine.runner import Simulation


def small_graph(connectivity="fixed_probability", **proj):
    g = ModelGraph()
    src = g.add_node("input.poisson", "In", n=50, rate=20.0)
    pop = g.add_node("neuron.lif", "Pop", n=40, I_e=150.0)
    prj = g.add_node("synapse.projection", "P", connectivity=connectivity, **proj)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    mon = g.add_node("monitor.spikes", "Raster")
    g.connect(pop.id, "spikes", mon.id, "source")
    return g, src, pop, prj, mon


def csr_pairs(proj):
    pre = np.repeat(np.arange(proj.n_pre), np.diff(proj.indptr))
    return set(zip(pre.tolist(), proj.indices.tolist()))


def test_populations_sources_monitors_mapped():
    g, src, pop, prj, mon = small_graph(p=0.2, weight=30.0, delay=1.0)
    plan = compile_graph(g, {"dt": 0.1, "duration": 100.0, "seed": 3})
    assert plan.n_steps == 1000 and plan.seed == 3
    (popplan,) = plan.populations
    assert popplan.name == pop.id and popplan.model == "lif" and popplan.size == 40
    assert popplan.params["I_e"] == 150.0
    assert [r.name for r in popplan.receptors] == ["exc", "inh"]
    (source,) = plan.sources
    assert source.name == src.id and source.size == 50
    (proj,) = plan.projections
    assert proj.pre == src.id and proj.post == pop.id and proj.receptor == 0
    assert np.all(proj.weights == 30.0) and np.all(proj.delays == 10)
    assert plan.monitors[0].target == pop.id
    plan.validate()


def test_connectivity_rules_structure():
    rng_counts = {}
    for rule, extra in [("all_to_all", {}), ("one_to_one", {}), ("fixed_probability", {"p": 0.3}),
                        ("fixed_indegree", {"indegree": 7}), ("small_world", {"k": 4, "beta": 0.2})]:
        g, *_ = small_graph(rule, **extra)
        (proj,) = compile_graph(g, {"seed": 1}).projections
        pairs = csr_pairs(proj)
        assert len(pairs) == proj.n_synapses  # no duplicate synapses
        rng_counts[rule] = proj.n_synapses
        for a, b in zip(proj.indptr[:-1], proj.indptr[1:]):
            assert np.all(np.diff(proj.indices[a:b]) > 0)  # sorted targets within a row (constant delay)
    assert rng_counts["all_to_all"] == 50 * 40
    assert rng_counts["one_to_one"] == 40
    assert abs(rng_counts["fixed_probability"] - 0.3 * 2000) < 5 * np.sqrt(2000 * 0.3 * 0.7)
    assert rng_counts["fixed_indegree"] == 7 * 40
    g, *_ = small_graph("fixed_indegree", indegree=7)
    (proj,) = compile_graph(g, {"seed": 1}).projections
    assert np.all(np.bincount(proj.indices, minlength=40) == 7)


def test_recurrent_autapses_excluded_and_distance_rule():
    g = ModelGraph()
    pop = g.add_node("neuron.lif", "Grid", n=27, layout="grid", grid=(3, 3, 3), spacing=1.0)
    prj = g.add_node("synapse.projection", "Rec", connectivity="distance", distance_C=1.0, distance_lambda=1.0)
    g.connect(pop.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    (proj,) = compile_graph(g, {"seed": 5}).projections
    pre = np.repeat(np.arange(27), np.diff(proj.indptr))
    assert not np.any(pre == proj.indices)
    pos = np.stack(np.unravel_index(np.arange(27), (3, 3, 3), order="F"), axis=1)
    dist = np.linalg.norm(pos[pre] - pos[proj.indices], axis=1)
    near = np.mean(dist <= 1.0 + 1e-9)
    assert near > 0.5  # nearest neighbours dominate with lambda = 1


def test_all_to_all_recurrent_without_autapses():
    g = ModelGraph()
    pop = g.add_node("neuron.lif", "Pop", n=30)
    prj = g.add_node("synapse.projection", "Rec", connectivity="all_to_all", receptor="inhibitory", weight=5.0)
    g.connect(pop.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    (proj,) = compile_graph(g).projections
    assert proj.n_synapses == 30 * 29 and proj.receptor == 1
    assert np.all(proj.weights == -5.0)  # inhibitory current receptor: -|w|


def test_weight_and_delay_distributions():
    g, *_ = small_graph("all_to_all", weight_init="lognormal", weight=2.0, weight_std=0.5,
                        delay_init="uniform", delay_low=0.5, delay_high=3.0)
    plan = compile_graph(g, {"dt": 0.1, "seed": 9, "dtype": "float64"})
    (proj,) = plan.projections
    w = proj.weights
    assert w.dtype == np.float64 and np.all(w > 0)
    assert w.mean() == pytest.approx(2.0, rel=0.05) and w.std() == pytest.approx(0.5, rel=0.1)
    d = proj.delays.astype(int)
    assert d.min() >= 5 and d.max() <= 30
    for a, b in zip(proj.indptr[:-1], proj.indptr[1:]):
        assert np.all(np.diff(d[a:b]) >= 0)  # sorted by delay within each row
    g2, *_ = small_graph("all_to_all", weight_init="normal", weight=1.0, weight_std=0.2)
    (p2,) = compile_graph(g2, {"seed": 9}).projections
    assert p2.weights.dtype == np.float32 and p2.weights.mean() == pytest.approx(1.0, rel=0.05)


def test_seeds_reproducible_per_node():
    g, src, pop, prj, mon = small_graph(p=0.3)
    a = compile_graph(g, {"seed": 1}).projections[0]
    b = compile_graph(g, {"seed": 1}).projections[0]
    c = compile_graph(g, {"seed": 2}).projections[0]
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indptr, c.indptr) or not np.array_equal(a.indices, c.indices)
    g.set_param(prj.id, "seed", 77)  # an explicit node seed ignores the project seed
    d = compile_graph(g, {"seed": 1}).projections[0]
    e = compile_graph(g, {"seed": 2}).projections[0]
    np.testing.assert_array_equal(d.indices, e.indices)
    # adding an unrelated node does not change this projection's synapses
    g.add_node("neuron.lif", "Other", n=5)
    f = compile_graph(g, {"seed": 2}).projections[0]
    np.testing.assert_array_equal(e.indices, f.indices)


def test_current_sources_and_state_monitor_run():
    g = ModelGraph()
    pop = g.add_node("neuron.alif", "A", n=3, delta_theta=1.0)
    cur = g.add_node("input.current", "Step", waveform="step", amplitude=300.0, onset=10.0, offset=60.0)
    g.connect(cur.id, "current", pop.id, "input")
    st = g.add_node("monitor.state", "V", variable="V", indices=(0, 1), every=10)
    g.connect(pop.id, "state", st.id, "population")
    th = g.add_node("monitor.state", "theta", variable="theta", indices=(0,))
    g.connect(pop.id, "state", th.id, "population")
    sp = g.add_node("monitor.spikes", "S")
    g.connect(pop.id, "spikes", sp.id, "source")
    res = Simulation(g, settings={"dt": 0.1, "seed": 1}).run(100.0)
    steps, idx = res.spikes[sp.id]
    assert steps.size > 3 and steps.min() >= 100 and steps.max() < 650
    assert res.states[st.id]["V"][1].shape == (100, 2)
    assert res.states[th.id]["theta"][1].max() > 0.5


def test_validation_errors_are_reported():
    g = ModelGraph()
    g.add_node("synapse.projection", "Dangling")
    with pytest.raises(ValidationError):
        compile_graph(g)


def test_izhikevich_and_cobalif_nodes():
    g = ModelGraph()
    izh = g.add_node("neuron.izhikevich", "Izh", n=2, preset="FS", I_e=10.0, scheme="split_2003")
    coba = g.add_node("neuron.cobalif", "Coba", n=2, E_inh=-75.0)
    prj = g.add_node("synapse.projection", "P", connectivity="all_to_all", receptor_type="conductance",
                     receptor="inhibitory", weight=0.5)
    g.connect(izh.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", coba.id, "input")
    plan = compile_graph(g, {"dt": 1.0})
    zp = plan.population(izh.id)
    assert zp.model == "izhikevich" and zp.scheme == "split2003" and zp.params["a"] == 0.1
    cp = plan.population(coba.id)
    assert cp.receptors[1].kind == "conductance" and cp.receptors[1].E_rev == -75.0
    assert np.all(plan.projections[0].weights == 0.5)  # conductances stay positive


def test_cuba_example_project_runs(tmp_path):
    """The shipped CUBA example compiles and runs in the asynchronous irregular regime."""
    from engine.project import example_projects

    path = next(p for p in example_projects() if p.name == "cuba.swproj")
    project = Project.load(path)
    plan = compile_graph(project, {"duration": 200.0})
    assert plan.n_neurons == 4000
    assert 0.019 * 4000 ** 2 < plan.n_synapses < 0.021 * 4000 ** 2  # p = 0.02
    res = Simulation(plan).run(200.0)
    mon = next(m.name for m in plan.monitors if m.kind == "spikes")
    assert 1.0 < res.mean_rate(mon) < 40.0


def test_from_file_connectivity(tmp_path):
    np.savez(tmp_path / "conn.npz", pre=np.array([0, 0, 3]), post=np.array([1, 2, 0]), weight=np.array([1.0, 2.0, 3.0]),
             delay=np.array([0.5, 0.2, 1.0]))
    g, src, pop, prj, mon = small_graph("from_file", file="conn.npz")
    project = Project(g, SimulationSettings(dt=0.1))
    project.path = tmp_path / "net.swproj"
    (proj,) = compile_graph(project).projections
    assert proj.indptr[:5].tolist() == [0, 2, 2, 2, 3]
    # row 0 sorted by delay: (post 2, 2 steps) before (post 1, 5 steps)
    assert proj.indices.tolist() == [2, 1, 0] and proj.delays.tolist() == [2, 5, 10]
    assert proj.weights.tolist() == [2.0, 1.0, 3.0]
