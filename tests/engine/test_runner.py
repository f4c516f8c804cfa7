"""Runner and backend behaviour: determinism, instability detection, chunking, threads, state files."""

import threading
import time

import numpy as np
import pytest

from engine.backends import available_backends, get_backend, register_backend
from engine.errors import NumericalInstabilityError, ParameterError, SimulationError, SynweaveError
from engine.networks import cuba_plan
from engine.plan import (CurrentSourcePlan, MonitorPlan, PoissonSourcePlan, PopulationPlan, ProjectionPlan,
                         SimulationPlan, SpikeTrainSourcePlan)
from engine.runner import Simulation, SimulationResults
from tests.engine.helpers import single_neuron_plan


def driven_network(seed=0, n=200, dtype="float64"):
    """LIF network driven by Poisson input and a noise current: exercises every random stream."""
    rng = np.random.default_rng(123)  # structure fixed; only the simulation seed varies
    pop = PopulationPlan("p", "lif", n, params=dict(tau_m=20.0, I_e=100.0))
    src = PoissonSourcePlan("poisson", size=100, rates=rng.uniform(10, 30, 100))
    train = SpikeTrainSourcePlan("train", size=3, steps=np.arange(0, 5000, 97), indices=np.arange(0, 5000, 97) % 3)
    pre, post = np.nonzero(rng.random((100, n)) < 0.1)
    rpre, rpost = np.nonzero(rng.random((n, n)) < 0.05)
    projs = [ProjectionPlan.from_coo("in", "poisson", "p", 100, pre, post, 150.0, rng.integers(1, 15, pre.size)),
             ProjectionPlan.from_coo("tr", "train", "p", 3, [0, 1, 2], [0, 1, 2], 400.0, 3),
             ProjectionPlan.from_coo("rec", "p", "p", n, rpre, rpost, -60.0, rng.integers(1, 25, rpre.size), receptor="inh")]
    cur = CurrentSourcePlan("noise", target="p", waveform="noise", amplitude=50.0)
    monitors = [MonitorPlan("spikes", "p"), MonitorPlan("some", "p", indices=[3, 5, 7]),
                MonitorPlan("v", "p", "state", variables=("V", "I_exc"), indices=[0, 1], every=3),
                MonitorPlan("rate", "p", "rate")]
    return SimulationPlan(dt=0.1, n_steps=2000, dtype=dtype, seed=seed, populations=[pop], sources=[src, train, cur],
                          projections=projs, monitors=monitors)


def test_registry():
    assert "numba" in available_backends()
    assert get_backend("numba").name == "numba"
    with pytest.raises(SimulationError, match="unknown backend"):
        get_backend("nope")
    register_backend("broken", "engine.backends.does_not_exist:X")
    with pytest.raises(SimulationError, match="cannot be loaded"):
        get_backend("broken")


def test_same_seed_identical_different_seed_differs(backend):
    a = Simulation(driven_network(1), backend=backend).run(200.0)
    b = Simulation(driven_network(1), backend=backend).run(200.0)
    c = Simulation(driven_network(2), backend=backend).run(200.0)
    for k in (0, 1):
        np.testing.assert_array_equal(a.spikes["spikes"][k], b.spikes["spikes"][k])
    assert a.spikes["spikes"][0].size > 100
    assert not (a.spikes["spikes"][0].size == c.spikes["spikes"][0].size
                and np.array_equal(a.spikes["spikes"][1], c.spikes["spikes"][1]))


def test_nan_detection_names_population_variable_step(backend):
    # a peak that is never reached lets the quadratic term run away to inf
    pop = PopulationPlan("blowup", "izhikevich", 3, params=dict(I_e=np.array([0.0, 0.0, 10.0]), v_peak=1e300),
                         scheme="euler")
    plan = SimulationPlan(dt=0.1, dtype="float64", populations=[pop], monitors=[MonitorPlan("s", "blowup")])
    sim = Simulation(plan, backend=backend)
    with pytest.raises(NumericalInstabilityError) as info:
        sim.run(100.0)
    err = info.value
    assert err.population == "blowup" and err.variable in ("v", "u")
    assert 0 < err.step < 1000
    assert "blowup" in str(err) and "step" in str(err)
    assert isinstance(err, SynweaveError)


def test_chunked_equals_one_shot(backend):
    plan = driven_network(3)
    one = Simulation(plan, backend=backend).run(200.0, chunk_steps=2000)
    sim = Simulation(plan, backend=backend)
    chunks = []
    res = sim.run(200.0, callback=chunks.append, chunk_steps=37)
    assert len(chunks) == -(-2000 // 37)
    for name in ("spikes", "some"):
        for k in (0, 1):
            np.testing.assert_array_equal(one.spikes[name][k], res.spikes[name][k])
    np.testing.assert_array_equal(one.rates["rate"], res.rates["rate"])
    for var in ("V", "I_exc"):
        np.testing.assert_array_equal(one.states["v"][var][0], res.states["v"][var][0])
        np.testing.assert_array_equal(one.states["v"][var][1], res.states["v"][var][1])
    steps = one.states["v"]["V"][0]
    np.testing.assert_array_equal(steps, np.arange(0, 2000, 3))
    # subset monitor == the full monitor restricted to the subset
    s, i = one.spikes["spikes"]
    keep = np.isin(i, [3, 5, 7])
    np.testing.assert_array_equal(one.spikes["some"][0], s[keep])
    # rate monitor counts == spike monitor per step
    np.testing.assert_array_equal(one.rates["rate"], np.bincount(s, minlength=2000))


def test_iter_chunks_and_progress(backend):
    reports = []
    sim = Simulation(driven_network(4), backend=backend, on_progress=reports.append)
    phases = [r.phase for r in reports]
    assert phases[0] == "validate" and "jit" in phases
    total = 0
    for chunk in sim.iter_chunks(50.0, chunk_steps=100):
        total += chunk.n_steps
        assert chunk.spikes["spikes"][0].size == 0 or chunk.spikes["spikes"][0].min() >= chunk.start_step
    assert total == 500 and sim.step == 500
    run_reports = [r for r in reports if r.phase == "run"]
    assert run_reports[-1].fraction == 1.0 and run_reports[-1].eta_s == 0.0
    assert all(0.0 <= r.fraction <= 1.0 for r in run_reports)


def test_pause_resume_stop_from_another_thread(backend):
    sim = Simulation(cuba_plan(2000, seed=0), backend=backend)
    done = {}

    def worker():
        done["results"] = sim.run(1e6, chunk_steps=50)  # far longer than the test: ended by stop()

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.3)
    sim.pause()
    time.sleep(0.2)  # let the current chunk finish
    held = sim.step
    time.sleep(0.3)
    assert sim.step == held and sim.paused
    sim.resume()
    time.sleep(0.2)
    assert sim.step > held
    sim.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    res = done["results"]
    assert res.stopped and 0 < res.n_steps == sim.step < sim.plan.steps_for(1e6)


def test_save_restore_continues_identically(backend, tmp_path):
    plan = driven_network(5)
    full = Simulation(plan, backend=backend)
    full.run(100.0)
    full.save_state(tmp_path / "state.npz")
    full.reset_results()
    second_half = full.run(100.0)

    other = Simulation(plan, backend=backend)
    other.restore_state(tmp_path / "state.npz")
    assert other.step == 1000
    resumed = other.run(100.0)
    for name in ("spikes", "some"):
        for k in (0, 1):
            np.testing.assert_array_equal(second_half.spikes[name][k], resumed.spikes[name][k])
    np.testing.assert_array_equal(second_half.states["v"]["V"][1], resumed.states["v"]["V"][1])
    assert second_half.spikes["spikes"][0].size > 50
    # the file holds plain arrays only
    with np.load(tmp_path / "state.npz", allow_pickle=False) as data:
        assert "ring" in data.files and "poisson_rng" in data.files


def test_restore_rejects_other_network(backend, tmp_path):
    sim = Simulation(driven_network(0, n=200), backend=backend)
    sim.save_state(tmp_path / "s.npz")
    other = Simulation(driven_network(0, n=150), backend=backend)
    with pytest.raises(SimulationError, match="different network"):
        other.restore_state(tmp_path / "s.npz")


def test_float32_matches_float64(backend):
    """Single-neuron golden LIF-2 holds in float32; a PSP agrees to 1e-4 relative."""
    for dtype in ("float32", "float64"):
        plan = single_neuron_plan(params=dict(I_e=300.0), dtype=dtype)
        steps = Simulation(plan, backend=backend).run(1000.0).spikes["spikes"][0]
        assert steps[0] == 110 and steps.size == 77 and np.all(np.diff(steps) == 130)
    traces = {}
    for dtype in ("float32", "float64"):
        plan = single_neuron_plan(params=dict(I_e=195.0), dtype=dtype)
        traces[dtype] = Simulation(plan, backend=backend).run(200.0).states["state"]["V"][1][:, 0]
    np.testing.assert_allclose(traces["float32"], traces["float64"], rtol=1e-4)
    assert traces["float32"].dtype == np.float32


def test_network_float32_vs_float64_statistics(backend):
    r64 = Simulation(driven_network(6, dtype="float64"), backend=backend).run(200.0)
    r32 = Simulation(driven_network(6, dtype="float32"), backend=backend).run(200.0)
    assert r32.mean_rate("spikes") == pytest.approx(r64.mean_rate("spikes"), rel=0.05)


def test_results_save_load_roundtrip(backend, tmp_path):
    sim = Simulation(driven_network(7), backend=backend)
    res = sim.run(50.0)
    res.save(tmp_path / "r.npz")
    back = SimulationResults.load(tmp_path / "r.npz")
    assert back.dt == res.dt and back.n_steps == 500
    np.testing.assert_array_equal(back.spikes["spikes"][1], res.spikes["spikes"][1])
    np.testing.assert_array_equal(back.states["v"]["I_exc"][1], res.states["v"]["I_exc"][1])
    np.testing.assert_array_equal(back.rates["rate"], res.rates["rate"])
    assert back.settings["seed"] == 7 and back.settings["backend"] == backend
    assert {"numpy", "numba", "python"} <= set(back.versions)
    assert back.mean_rate("spikes") == pytest.approx(res.mean_rate("spikes"))


def test_get_set_state(backend):
    plan = single_neuron_plan(params=dict(I_e=0.0), size=3)
    sim = Simulation(plan, backend=backend)
    np.testing.assert_array_equal(sim.get_state("n", "V"), [-70.0] * 3)
    sim.backend.set_state("n", "V", [-49.0, -70.0, -60.0])
    steps, idx = sim.run(0.2).spikes["spikes"]
    assert steps.tolist() == [0] and idx.tolist() == [0]
    assert sim.get_state("n", "refractory").tolist()[0] == 18


def test_set_state_between_chunks_overrides_predetected_spikes(backend):
    """The fused update lists the next step's threshold crossings; a chunk boundary must drop that list
    (the state may be changed from outside before the next step)."""
    from engine.plan import ReceptorPlan

    def plan():
        return single_neuron_plan(params=dict(I_e=250.0, t_ref=2.0), size=4, record=(),
                                  receptors=[ReceptorPlan("exc", "exponential", 5.0)], dtype="float32")

    free = Simulation(plan(), backend=backend).run(50.0).spikes["spikes"][0]
    first = int(free[0])
    assert first > 2
    for uniform in (True, False):
        opts = dict(uniform=uniform) if backend == "numba" else {}
        sim = Simulation(plan(), backend=backend, **opts)
        sim.run(first * 0.1)  # ends right after the update that brings all four neurons over threshold
        sim.backend.set_state("n", "V", [-70.0, -40.0, -70.0, -70.0])
        steps, idx = sim.run(0.1).spikes["spikes"]
        assert steps.tolist() == [first] and idx.tolist() == [1]


@pytest.mark.parametrize("mutate, error", [
    (lambda p: setattr(p, "dt", -1.0), ParameterError),
    (lambda p: p.monitors.append(MonitorPlan("bad", "nowhere")), SimulationError),
    (lambda p: p.populations[0].params.update(tau_x=1.0), ParameterError),
    (lambda p: p.monitors.append(MonitorPlan("bad2", "p", "state", variables=("Q",))), ParameterError),
    (lambda p: p.sources.append(PoissonSourcePlan("fast", 2, rates=2e4)), ParameterError),
])
def test_validation_errors(mutate, error):
    plan = driven_network(0)
    mutate(plan)
    with pytest.raises(error):
        Simulation(plan)


def test_projection_plan_csr_and_memory():
    proj = ProjectionPlan.from_coo("x", "a", "b", 4, [3, 0, 0, 2, 0], [1, 2, 0, 3, 1], [1, 2, 3, 4, 5], [2, 1, 3, 1, 1])
    assert proj.indptr.tolist() == [0, 3, 3, 4, 5]
    # row 0 sorted by delay then post: (d1, post 1 w5), (d1, post 2 w2), (d3, post 0 w3)
    assert proj.indices[:3].tolist() == [1, 2, 0] and proj.delays[:3].tolist() == [1, 1, 3]
    assert proj.weights.dtype == np.float32 and proj.delays.dtype == np.uint8 and proj.indices.dtype == np.int32
    assert proj.bytes_per_synapse() == 9.0
    perm = proj.post_major()
    assert np.all(np.diff(proj.indices[perm]) >= 0)
    assert proj.pre_indices().tolist() == [0, 0, 0, 2, 3]


def test_numba_parallel_blocks_equal_serial():
    """Thread-parallel neuron updates give bit-identical results (every model family)."""
    from tests.engine.test_golden_izhikevich import izhikevich_network_plan

    for plan in (driven_network(8), izhikevich_network_plan(1, duration_ms=200.0)):
        serial = Simulation(plan, parallel=False).run(100.0)
        parallel_sim = Simulation(plan, parallel=True)
        parallel = parallel_sim.run(100.0)
        name = plan.monitors[0].name
        np.testing.assert_array_equal(serial.spikes[name][1], parallel.spikes[name][1])
        np.testing.assert_array_equal(serial.spikes[name][0], parallel.spikes[name][0])


def test_numba_uniform_fast_path_equals_general_path():
    """The fused path for homogeneous populations is bit-identical to the per-neuron path."""
    plan = cuba_plan(1000, seed=3, dtype="float32")
    fast = Simulation(plan).run(200.0)
    general = Simulation(plan, uniform=False).run(200.0)
    assert fast.spikes["spikes"][0].size > 100
    for k in (0, 1):
        np.testing.assert_array_equal(fast.spikes["spikes"][k], general.spikes["spikes"][k])
    one_channel = driven_network(9)
    one_channel.populations[0].receptors = one_channel.populations[0].receptors[:1]
    one_channel.projections = [p for p in one_channel.projections if p.receptor != "inh"]
    a = Simulation(one_channel).run(100.0).spikes["spikes"]
    b = Simulation(one_channel, uniform=False).run(100.0).spikes["spikes"]
    np.testing.assert_array_equal(a[1], b[1])
