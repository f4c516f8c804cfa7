"""Whole networks against the independent slow reference (tests/engine/reference.py), spike for spike."""

import numpy as np
import pytest

from engine.networks import cuba_plan
from engine.plan import (CurrentSourcePlan, MonitorPlan, PoissonSourcePlan, PopulationPlan, ProjectionPlan,
                         ReceptorPlan, SimulationPlan, SpikeTrainSourcePlan)
from engine.runner import Simulation
from tests.engine import reference
from tests.engine.helpers import isi_cv


def engine_spikes(plan, backend, n_steps, **kw):
    res = Simulation(plan, backend=backend, **kw).run(n_steps * plan.dt)
    return {name: res.spikes[name] for name in res.spikes}, res


def assert_same_spikes(plan, backend, n_steps, names=None):
    ours, _ = engine_spikes(plan, backend, n_steps)
    ref, _ = reference.simulate(plan, n_steps)
    names = names or [m.target for m in plan.monitors if m.kind == "spikes"]
    total = 0
    for mon in plan.monitors:
        if mon.kind != "spikes":
            continue
        s, i = ours[mon.name]
        rs, ri = ref[mon.target]
        np.testing.assert_array_equal(s, rs, err_msg=mon.name)
        np.testing.assert_array_equal(i, ri, err_msg=mon.name)
        total += s.size
    return total


def random_network(seed, model="lif", n=100, max_delay=20, p=0.1, dt=0.1, receptors=None, params=None,
                   drive=None, w_exc=None, w_inh=None):
    """Random recurrent network with heterogeneous drive, delays U{1..max_delay}, 80/20 E/I."""
    rng = np.random.default_rng(seed)
    receptors = receptors or None
    params = dict(params or {})
    pop = PopulationPlan("net", model, n, params=params, receptors=receptors or [])
    if model in ("lif", "alif"):
        pop.params.setdefault("I_e", rng.uniform(150, 350, n))  # R·I_e 15..35 mV: a mix of silent and tonic
    n_exc = int(0.8 * n)
    pre, post = np.nonzero(rng.random((n, n)) < p)
    exc = pre < n_exc
    projections = []
    for name, sel, rec, w in (("E", exc, 0, w_exc or 40.0), ("I", ~exc, 1, w_inh or -80.0)):
        d = rng.integers(1, max_delay + 1, sel.sum())
        weights = w * rng.uniform(0.5, 1.5, sel.sum())
        projections.append(ProjectionPlan.from_coo(name, "net", "net", n, pre[sel], post[sel], weights, d,
                                                   receptor=rec, weight_dtype=np.float64))
    return SimulationPlan(dt=dt, dtype="float64", seed=seed, populations=[pop], projections=projections,
                          monitors=[MonitorPlan("spikes", "net")])


def test_del2_ring_buffer_equals_spike_history(backend):
    """DEL-2: 100 neurons, delays U{1..20}, 1 s: ring buffer == spike-history reference, bit for bit."""
    plan = random_network(1)
    total = assert_same_spikes(plan, backend, 10000)
    assert total > 500  # the comparison is meaningful


def test_single_delay_projections_heterogeneous_weights(backend):
    """One delay per projection (1 and 3 steps, so no per-synapse delay lookup) with varying weights."""
    for delays in ((1, 1), (3, 2)):
        plan = random_network(6, max_delay=1)
        for proj, d in zip(plan.projections, delays):
            proj.delays[:] = d
        assert assert_same_spikes(plan, backend, 3000) > 100


def test_delta_synapses_network(backend):
    plan = random_network(2, receptors=[ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")],
                          w_exc=0.5, w_inh=-1.0)
    assert assert_same_spikes(plan, backend, 3000) > 100


def test_alif_coupled_network(backend):
    """Adaptive LIF with a_w != 0 (matrix exponential) and threshold adaptation vs the reference."""
    plan = random_network(3, model="alif", params=dict(a_w=2.0, b_w=30.0, tau_w=150.0, delta_theta=1.0,
                                                       tau_theta=80.0))
    plan.populations[0].params["I_e"] = np.random.default_rng(3).uniform(250, 450, 100)
    assert assert_same_spikes(plan, backend, 5000) > 200


def test_coba_network_with_poisson_input(backend):
    """COBA sanity: conductance LIF (exponential Euler) driven by Poisson input vs the reference."""
    rng = np.random.default_rng(4)
    n = 60
    pop = PopulationPlan("coba", "cobalif", n, params=dict(tau_m=20.0, E_L=-60.0, V_reset=-60.0, V_th=-50.0, t_ref=5.0),
                         receptors=[ReceptorPlan("exc", "conductance", 5.0, 0.0),
                                    ReceptorPlan("inh", "conductance", 10.0, -80.0)],
                         initial_state=dict(V=rng.uniform(-60, -50, n)))
    src = PoissonSourcePlan("poisson", size=40, rates=rng.uniform(5, 40, 40))
    pre, post = np.nonzero(rng.random((40, n)) < 0.3)
    inp = ProjectionPlan.from_coo("in", "poisson", "coba", 40, pre, post, 0.1, rng.integers(1, 5, pre.size),
                                  receptor="exc", weight_dtype=np.float64)
    rpre, rpost = np.nonzero(rng.random((n, n)) < 0.1)
    inh = ProjectionPlan.from_coo("rec", "coba", "coba", n, rpre, rpost, 0.3, 2, receptor="inh", weight_dtype=np.float64)
    plan = SimulationPlan(dt=0.1, dtype="float64", seed=5, populations=[pop], sources=[src], projections=[inp, inh],
                          monitors=[MonitorPlan("spikes", "coba"), MonitorPlan("input", "poisson")])
    assert assert_same_spikes(plan, backend, 5000) > 100


def test_coba_steady_state_constant_conductance(backend):
    """With a frozen conductance (tau huge) V relaxes to (E_L + g E)/(1 + g) exactly."""
    pop = PopulationPlan("c", "cobalif", 1, params=dict(V_th=1e9, E_L=-70.0),
                         receptors=[ReceptorPlan("exc", "conductance", 1e12, 0.0)], initial_state={"g_exc": 0.5})
    plan = SimulationPlan(dt=0.1, dtype="float64", populations=[pop],
                          monitors=[MonitorPlan("v", "c", "state", variables=("V",))])
    steps, V = Simulation(plan, backend=backend).run(50.0).states["v"]["V"]
    v_inf = -70.0 / 1.5
    np.testing.assert_allclose(V[:, 0], v_inf + (-70.0 - v_inf) * np.exp(-steps * 0.1 * 1.5 / 10.0), atol=1e-9)


def test_izhikevich_network_exponential_and_delta(backend):
    rng = np.random.default_rng(6)
    n = 50
    pop = PopulationPlan("izh", "izhikevich", n, scheme="euler",
                         params=dict(a=0.02, b=0.2, c=-65.0, d=8.0, I_e=rng.uniform(0, 12, n)),
                         receptors=[ReceptorPlan("fast", "delta"), ReceptorPlan("slow", "exponential", 5.0)])
    pre, post = np.nonzero(rng.random((n, n)) < 0.2)
    half = pre.size // 2
    projs = [ProjectionPlan.from_coo("a", "izh", "izh", n, pre[:half], post[:half], 2.0, rng.integers(1, 10, half),
                                     receptor="fast", weight_dtype=np.float64),
             ProjectionPlan.from_coo("b", "izh", "izh", n, pre[half:], post[half:], 1.5,
                                     rng.integers(1, 10, pre.size - half), receptor="slow", weight_dtype=np.float64)]
    plan = SimulationPlan(dt=0.1, dtype="float64", populations=[pop], projections=projs,
                          monitors=[MonitorPlan("spikes", "izh")])
    assert assert_same_spikes(plan, backend, 5000) > 100


def test_sources_and_currents(backend):
    """Spike trains (with duplicates), homogeneous Poisson, step/sine/noise/dc currents vs the reference."""
    n = 20
    pop = PopulationPlan("p", "lif", n, params=dict(I_e=150.0),
                         receptors=[ReceptorPlan("exc", "exponential", 2.0), ReceptorPlan("inh", "delta")])
    train = SpikeTrainSourcePlan("train", size=5, steps=[0, 3, 3, 3, 50, 51, 400], indices=[0, 1, 1, 4, 2, 2, 3])
    poisson = PoissonSourcePlan("pois", size=30, rates=80.0, start_step=100, stop_step=1500)
    rng = np.random.default_rng(7)
    pre, post = np.nonzero(rng.random((30, n)) < 0.3)
    projs = [ProjectionPlan.from_coo("t", "train", "p", 5, np.arange(5), np.arange(5), 300.0, 1, weight_dtype=np.float64),
             ProjectionPlan.from_coo("q", "pois", "p", 30, pre, post, 60.0, rng.integers(1, 30, pre.size),
                                     weight_dtype=np.float64),
             ProjectionPlan.from_coo("r", "p", "p", n, np.arange(n), (np.arange(n) + 1) % n, -2.0, 5, receptor="inh",
                                     weight_dtype=np.float64)]
    currents = [CurrentSourcePlan("step", target="p", waveform="step", times=[10.0, 60.0], amplitudes=[60.0, -20.0],
                                  indices=[0, 1, 2]),
                CurrentSourcePlan("sine", target="p", waveform="sine", amplitude=40.0, frequency=10.0, phase=0.3),
                CurrentSourcePlan("noise", target="p", waveform="noise", amplitude=30.0, offset=5.0, indices=[5, 6, 7]),
                CurrentSourcePlan("dc", target="p", waveform="dc", amplitude=np.linspace(0, 50, 4), indices=[8, 9, 10, 11])]
    plan = SimulationPlan(dt=0.1, dtype="float64", seed=11, populations=[pop], sources=[train, poisson] + currents,
                          projections=projs,
                          monitors=[MonitorPlan("spikes", "p"), MonitorPlan("train", "train"), MonitorPlan("pois", "pois")])
    assert assert_same_spikes(plan, backend, 2000) > 100
    steps, idx = Simulation(plan, backend=backend).run(10.0).spikes["train"]
    assert list(zip(steps.tolist(), idx.tolist())) == [(0, 0), (3, 1), (3, 4), (50, 2), (51, 2)]


def test_poisson_rate_statistics(backend):
    """Bernoulli sources fire at rate·dt per step (homogeneous and heterogeneous paths)."""
    rates = np.where(np.arange(2000) < 1000, 20.0, 50.0)
    plan = SimulationPlan(dt=0.1, dtype="float64", seed=1,
                          sources=[PoissonSourcePlan("het", size=2000, rates=rates), PoissonSourcePlan("hom", 2000, 20.0)],
                          monitors=[MonitorPlan("het", "het"), MonitorPlan("hom", "hom")])
    res = Simulation(plan, backend=backend).run(1000.0)
    _, idx = res.spikes["het"]
    assert np.sum(idx < 1000) / 1000 == pytest.approx(20.0, rel=0.05)
    assert np.sum(idx >= 1000) / 1000 == pytest.approx(50.0, rel=0.05)
    assert res.mean_rate("hom") == pytest.approx(20.0, rel=0.05)
    # no neuron index preference in the geometric-skip path
    counts = np.bincount(res.spikes["hom"][1], minlength=2000)
    assert counts[:1000].sum() == pytest.approx(counts[1000:].sum(), rel=0.1)


# ----------------------------------------------------------------------------------------------
# CUBA (Vogels & Abbott / Brette et al. 2007)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cuba_against_reference(backend):
    """CUBA 4000 neurons, 300 ms: float64 engine == reference spike for spike; float32 statistics agree.

    Tolerances for float32 (rounding differences make the balanced network's trajectories diverge):
    mean rate within 15 %, mean ISI CV within 0.15 of the reference.
    """
    plan = cuba_plan(4000, seed=1, dtype="float64")
    n_steps = 3000
    ref, _ = reference.simulate(plan, n_steps)
    rs, ri = ref["P"]
    ours, _ = engine_spikes(plan, backend, n_steps)
    s, i = ours["spikes"]
    np.testing.assert_array_equal(s, rs)
    np.testing.assert_array_equal(i, ri)
    ref_rate = rs.size / (4000 * 0.3)
    assert 2.0 < ref_rate < 40.0  # asynchronous irregular regime, not silent, not saturated
    ref_cv = isi_cv(rs, ri, 4000)
    f32 = cuba_plan(4000, seed=1, dtype="float32")
    s32, i32 = engine_spikes(f32, backend, n_steps)[0]["spikes"]
    assert s32.size / (4000 * 0.3) == pytest.approx(ref_rate, rel=0.15)
    assert abs(isi_cv(s32, i32, 4000) - ref_cv) < 0.15


def test_shared_csr_adopts_projection_arrays():
    """With several projections the backend concatenates them once and the plan's projections then
    hold views of the shared arrays (no second copy of the connectivity); values are unchanged."""
    plan = cuba_plan(n=300, synapses_per_neuron=20, duration_ms=5.0)
    before = [(p.indices.copy(), p.weights.copy(), p.delays.copy()) for p in plan.projections]
    sim = Simulation(plan)
    post, weight, delay = sim.backend.net[5:8]
    s = 0
    for p, (i, w, d) in zip(plan.projections, before):
        n = p.n_synapses
        assert np.array_equal(p.indices, i) and np.array_equal(p.weights, w) and np.array_equal(p.delays, d)
        assert np.shares_memory(p.indices, post[s:s + n]) and np.shares_memory(p.weights, weight[s:s + n])
        assert np.shares_memory(p.delays, delay[s:s + n])
        s += n
    assert s == post.size
    sim.run(5.0)
