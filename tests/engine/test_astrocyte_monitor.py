"""Astrocyte state recorded by the state monitor (issue 11): the NALSM astrocyte's A(t) and the
tripartite astrocyte's Ca, IP3, h and release probability U_0, from a project through the compiler
to the results .npz, against the pure kernels of engine/kernels/astrocytes.py."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ParameterError, SimulationError
from engine.graph import ModelGraph
from engine.kernels import astrocytes as ak
from engine.plan import AstrocytePlan, MonitorPlan, SimulationPlan, SpikeTrainSourcePlan
from engine.runner import Simulation, SimulationResults
from engine.validate import validate


def tripartite_graph(I_bias=0.8, every=1, graph=None):
    """An ex3 astrocyte covering one synapse that never fires: its calcium runs on IP3 alone
    (TRI-1 conditions, I(0) = 0), one release event near 2.3 s. Built into ``graph`` when given."""
    g = ModelGraph() if graph is None else graph
    src = g.add_node("input.spike_train", "Pre", (0, 0), n=1)
    pop = g.add_node("neuron.lif", "Post", (400, 0), n=1)
    prj = g.add_node("synapse.projection", "Syn", (200, 0), connectivity="all_to_all", weight=1.0,
                     stp="tsodyks_markram")
    astro = g.add_node("modulator.tripartite_astrocyte", "Astrocyte", (200, 200), I_bias=I_bias, U_0=0.6)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    g.connect(astro.id, "modulation", prj.id, "modulation")
    monitors = {}
    for var in ("Ca", "IP3", "h", "U_0"):
        mon = g.add_node("monitor.state", var, (600, 0), variable=var, indices=(0,), every=every)
        g.connect(astro.id, "state", mon.id, "population")
        monitors[var] = mon.id
    return g, monitors


def reference_trajectory(I_bias, n_steps):
    """State after each of ``n_steps`` RK4 steps of 1 ms, by the pure kernel functions."""
    p = ak.preset_vector("ex3_gliotransmission", I_bias=I_bias)
    s = ak.initial_state(0.0)
    armed = s[ak.TRI_C] < p[ak.P_CTHETA]
    scratch = np.empty((5, ak.TRI_STATE))
    states = np.empty((n_steps, ak.TRI_STATE))
    for k in range(n_steps):
        armed = ak.tripartite_rk4(s, p, 1e-3, armed, scratch)
        states[k] = s
    return states


def test_tripartite_state_monitor_matches_the_kernel_trajectory(tmp_path):
    graph, monitors = tripartite_graph()
    res = Simulation(graph, settings=dict(dt=1.0, duration=4000.0, dtype="float64")).run()
    ref = reference_trajectory(0.8, 4000)
    # the monitor samples the state at t_k, before step k: sample k is the state after k RK4 steps
    C_only, _ = ak.tripartite_trajectory(ak.initial_state(0.0), ak.preset_vector("ex3_gliotransmission", I_bias=0.8),
                                         1e-3, 4000, np.zeros(0, np.int64), 0.0)
    want = {"Ca": ref[:, ak.TRI_C], "IP3": ref[:, ak.TRI_I], "h": ref[:, ak.TRI_H],
            "U_0": (1.0 - ref[:, ak.TRI_GS]) * 0.6}
    np.testing.assert_array_equal(want["Ca"], C_only)
    for var, mon in monitors.items():
        steps, values = res.states[mon][var]
        assert values.shape == (4000, 1)
        np.testing.assert_array_equal(steps, np.arange(4000))
        np.testing.assert_allclose(values[1:, 0], want[var][:-1], rtol=1e-12, atol=1e-15, err_msg=var)
    initial = {var: res.states[mon][var][1][0, 0] for var, mon in monitors.items()}
    assert initial == {"Ca": 0.0, "IP3": 0.0, "h": 0.9, "U_0": 0.6}
    # the calcium event releases gliotransmitter: U_0 falls below U_0* (release-decreasing)
    u0 = res.states[monitors["U_0"]]["U_0"][1][:, 0]
    ca = res.states[monitors["Ca"]]["Ca"][1][:, 0]
    event = int(np.argmax(ca >= 0.5))
    assert 1000 < event < 3000 and u0[event - 1] == 0.6 and u0[-1] < 0.55
    # saved in the results .npz and read back
    path = tmp_path / "astro.npz"
    res.save(path)
    back = SimulationResults.load(path)
    for var, mon in monitors.items():
        np.testing.assert_array_equal(back.states[mon][var][1], res.states[mon][var][1])
    with np.load(path) as data:
        assert f"states/{monitors['Ca']}/Ca/values" in data.files


def test_tripartite_monitor_every_n_steps_subsamples():
    graph, monitors = tripartite_graph(every=10)
    res = Simulation(graph, settings=dict(dt=1.0, duration=500.0, dtype="float64", chunk=0.137)).run()
    steps, values = res.states[monitors["IP3"]]["IP3"]
    np.testing.assert_array_equal(steps, np.arange(0, 500, 10))
    ref = reference_trajectory(0.8, 500)[:, ak.TRI_I]
    np.testing.assert_allclose(values[1:, 0], ref[9:-1:10], rtol=1e-12)


def test_nalsm_astrocyte_A_over_time_is_the_astro1_relaxation():
    """ASTRO-1: +5 spikes per step more in the liquid than in the input: A_k = A* + (A_0 - A*)(1 - 1/tau)^k."""
    srcs = [SpikeTrainSourcePlan("liquid", size=7, steps=np.repeat(np.arange(200), 7), indices=np.tile(np.arange(7), 200)),
            SpikeTrainSourcePlan("input", size=2, steps=np.repeat(np.arange(200), 2), indices=np.tile([0, 1], 200))]
    plan = SimulationPlan(dt=1.0, n_steps=101, dtype="float64", sources=srcs,
                          astrocytes=[AstrocytePlan("astro", ["liquid"], ["input"], tau=100.0, w=0.015, b=0.15,
                                                    A_init=0.15)],
                          monitors=[MonitorPlan("A", "astro", "state", indices=[0], variables=("A",))])
    res = Simulation(plan).run()
    steps, values = res.states["A"]["A"]
    k = np.arange(101)
    np.testing.assert_allclose(values[:, 0], 0.225 - 0.075 * 0.99 ** k, rtol=0, atol=1e-12)
    assert values[100, 0] == pytest.approx(0.197548, abs=1e-6)


def test_nalsm_astrocyte_monitor_from_a_graph():
    """A(t) of a project's astrocyte follows A_{k+1} = A_k + (w (L_k - I_k) + b - A_k)/tau from the
    recorded liquid and input spike counts."""
    g = ModelGraph()
    src = g.add_node("input.poisson", "Input", (0, 0), n=20, rate=50.0)
    liquid = g.add_node("neuron.lif", "Liquid", (300, 0), n=30)
    prj = g.add_node("synapse.projection", "In", (150, 0), connectivity="all_to_all", weight=200.0)
    astro = g.add_node("modulator.nalsm_astrocyte", "Astrocyte", (0, 200))
    mon = g.add_node("monitor.state", "A(t)", (300, 200), variable="A", indices=(0,))
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", liquid.id, "input")
    g.connect(liquid.id, "spikes", astro.id, "liquid")
    g.connect(src.id, "spikes", astro.id, "reference")
    g.connect(astro.id, "state", mon.id, "population")
    counts = {}
    for node in (src, liquid):
        raster = g.add_node("monitor.spikes", f"{node.label} spikes", (600, 0))
        g.connect(node.id, "spikes", raster.id, "source")
        counts[node.id] = raster.id
    assert not [p for p in validate(g) if p.severity == "error"]
    res = Simulation(g, settings=dict(dt=1.0, duration=300.0, dtype="float64")).run()
    L = np.bincount(res.spikes[counts[liquid.id]][0], minlength=300)
    I = np.bincount(res.spikes[counts[src.id]][0], minlength=300)
    assert L.sum() > 0 and I.sum() > 0
    A = [0.15]
    for k in range(299):
        A.append(A[-1] + (0.015 * (L[k] - I[k]) + 0.15 - A[-1]) / 100.0)
    steps, values = res.states[mon.id]["A"]
    np.testing.assert_array_equal(steps, np.arange(300))
    np.testing.assert_allclose(values[:, 0], A, rtol=0, atol=1e-12)
    assert np.ptp(values[:, 0]) > 0.01, "A moves with the activity difference"


def test_astrocyte_monitor_problems_are_named():
    graph, monitors = tripartite_graph()
    mon = graph.nodes[monitors["Ca"]]
    graph.set_param(mon.id, "variable", "V")
    problems = [p for p in validate(graph) if p.node == mon.label]
    assert problems and "has no state variable 'V'" in problems[0].message
    assert "Ca, IP3, h, U_0" in problems[0].hint
    graph.set_param(mon.id, "variable", "Ca")
    graph.set_param(mon.id, "indices", (1,))
    assert any("out of range" in p.message for p in validate(graph) if p.node == mon.label)
    plan = SimulationPlan(dt=1.0, n_steps=10, astrocytes=[AstrocytePlan("astro", [], [])],
                          monitors=[MonitorPlan("m", "astro", "state", indices=[0], variables=("Ca",))])
    with pytest.raises(ParameterError, match="astrocyte 'astro' has no state variable 'Ca'; known: A"):
        plan.validate()
    plan.monitors[0] = MonitorPlan("m", "astro", "state", indices=[1], variables=("A",))
    with pytest.raises(SimulationError, match="an astrocyte has one state, index 0"):
        plan.validate()
