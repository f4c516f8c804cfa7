"""Batched torch runs (MODELS.md §0.5): B copies of one network, each with its own state, in one run.

Every copy must be the run the numba backend makes of the same inputs on its own: copy ``b`` of a
batch started at input step ``s_b`` is compared, in float64 spike for spike, with a numba backend
whose clock was moved to ``s_b`` (as the training protocol's parallel workers do).
"""

import numpy as np
import pytest
import torch

from engine.errors import SimulationError
from engine.runner import Simulation
from tests.engine.test_backends_shared import MODELS, deterministic_network, stochastic_network

CUDA = torch.cuda.is_available()


def numba_from(plan, start: int, n: int):
    """The numba backend's run of steps ``start .. start + n - 1`` from the initial state."""
    sim = Simulation(plan, backend="numba")
    sim.backend._k = start
    return sim.backend.run_steps(n)


def assert_chunk_equal(a, b, context):
    assert (a.start_step, a.stop_step) == (b.start_step, b.stop_step), context
    for name in a.spikes:
        for x, y in zip(a.spikes[name], b.spikes[name]):
            np.testing.assert_array_equal(x, y, err_msg=f"{context}: {name}")
    for name in a.rates:
        np.testing.assert_array_equal(a.rates[name], b.rates[name], err_msg=f"{context}: {name}")
    for name, variables in a.states.items():
        for var, (steps, values) in variables.items():
            np.testing.assert_array_equal(steps, b.states[name][var][0], err_msg=f"{context}: {name}/{var}")
            np.testing.assert_array_equal(values, b.states[name][var][1], err_msg=f"{context}: {name}/{var}")


@pytest.mark.parametrize("model_key", sorted(MODELS))
def test_each_copy_of_a_batch_is_its_own_numba_run(model_key):
    """Every model and scheme with delays 1..20 and spike-train, DC and sine inputs (which depend on
    the step): three copies started at different input steps, each identical to numba's run."""
    plan = deterministic_network(model_key, n_steps=1400)
    starts, n = [0, 400, 905], 500
    batched = Simulation(plan, backend="torch", batch=3).backend.run_samples(starts, n)
    assert len(batched) == 3
    counts = []
    for b, start in enumerate(starts):
        reference = numba_from(plan, start, n)
        assert_chunk_equal(batched[b], reference, f"{model_key}, copy {b}")
        counts.append(reference.spikes["spikes"][0].size)
    assert min(counts) > 20 and len(set(counts)) > 1, "active copies with different inputs"


@pytest.mark.parametrize("model_key", ["lif", "izhikevich_euler"])
def test_the_gpus_torch_op_path_gives_the_same_copies(model_key):
    """The propagation a GPU runs (torch ops, ``host_loops=False``), here on the CPU: the same."""
    plan = deterministic_network(model_key, n_steps=1400)
    backend = Simulation(plan, backend="torch", batch=3).backend
    host = backend.run_samples([0, 400, 905], 500)
    backend.host_loops = False
    ops = backend.run_samples([0, 400, 905], 500)
    for b in range(3):
        assert_chunk_equal(ops[b], host[b], f"copy {b}")
    single = Simulation(plan, backend="torch").backend
    single.host_loops = False
    assert_chunk_equal(single.run_steps(500), numba_from(plan, 0, 500), "batch 1")


def test_a_batch_starts_every_sample_from_the_built_state():
    """Two batches in a row give the same result: nothing of the first leaks into the second."""
    plan = deterministic_network("lif", n_steps=1400)
    backend = Simulation(plan, backend="torch", batch=2).backend
    first = backend.run_samples([100, 600], 300)
    again = backend.run_samples([100, 600], 300)
    for a, b in zip(first, again):
        assert_chunk_equal(a, b, "repeat")
    swapped = backend.run_samples([600, 100], 300)
    assert_chunk_equal(first[0], swapped[1], "swapped")


def test_batched_state_and_weights_have_a_batch_axis():
    plan = deterministic_network("lif", n_steps=1400)
    backend = Simulation(plan, backend="torch", batch=4).backend
    backend.run_samples([0, 200, 400, 600], 100)
    assert backend.get_state("net", "V").shape == (4, 60)
    assert backend.get_state("net", "refractory").shape == (4, 60)
    proj = plan.projections[-1]
    w = backend.batch_projection_weights(proj.name)
    assert w.shape == (4, proj.n_synapses)
    np.testing.assert_array_equal(w[3], backend.projection_weights(proj.name))
    np.testing.assert_array_equal(w[3], proj.weights)
    with pytest.raises(SimulationError, match="run_samples"):
        backend.run_steps(10)
    with pytest.raises(SimulationError, match="one start step per batch element"):
        backend.run_samples([0, 1], 10)


def test_random_streams_are_drawn_per_copy_and_sample():
    """Poisson (heterogeneous; homogeneous with an on/off window) and noise-current sources draw one
    stream per copy, keyed by the seed, the source and the sample: a sample gets the same spikes
    in any batch and at any position, other samples and other seeds other spikes, at the planned
    rates; the network's rate matches numba's one stream through the run (statistically)."""
    plan = stochastic_network()
    three = Simulation(plan, backend="torch", batch=3).backend.run_samples([0, 500, 1000], 500)
    two = Simulation(plan, backend="torch", batch=2).backend.run_samples([1000, 0], 500)
    for a, b in ((three[0], two[1]), (three[2], two[0])):
        assert_chunk_equal(a, b, "same sample, other batch")
    assert not np.array_equal(three[0].spikes["het"][1], three[1].spikes["het"][1])
    reseeded = stochastic_network(seed=4)
    other = Simulation(reseeded, backend="torch", batch=3).backend.run_samples([0, 500, 1000], 500)
    assert not np.array_equal(other[0].spikes["het"][1], three[0].spikes["het"][1])
    # the planned rates: 80 heterogeneous inputs, 50 homogeneous at 25 Hz on steps 200..1499
    het = sum(c.spikes["het"][1].size for c in three)
    expected = np.sum(plan.sources[0].rates) * 3 * 500 * plan.dt * 1e-3
    assert abs(het - expected) < 4 * np.sqrt(expected)
    on_steps = sum(np.clip(min(s + 500, 1500) - max(s, 200), 0, None) for s in (0, 500, 1000))
    hom = sum(c.spikes["hom"][1].size for c in three)
    assert abs(hom - 50 * 25.0 * on_steps * plan.dt * 1e-3) < 4 * np.sqrt(50 * 25.0 * on_steps * plan.dt * 1e-3)
    assert all(np.all((c.spikes["hom"][0] >= 200) & (c.spikes["hom"][0] < 1500)) for c in three)
    # the network's response: numba's run of the same steps with its one stream, within 15 %
    reference = Simulation(plan, backend="numba").run()
    net = sum(c.spikes["spikes"][1].size for c in three)
    steps, _ = reference.spikes["spikes"]
    same_steps = sum(int(np.sum((steps >= s) & (steps < s + 500))) for s in (0, 500, 1000))
    assert same_steps > 300
    assert net == pytest.approx(same_steps, rel=0.15)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_batch_agrees_with_cpu_batch():
    plan = deterministic_network("lif", n_steps=1400)
    starts = [0, 400, 900]
    cpu = Simulation(plan, backend="torch", batch=3).backend.run_samples(starts, 400)
    gpu = Simulation(plan, backend="torch", batch=3, device="cuda").backend.run_samples(starts, 400)
    for a, b in zip(cpu, gpu):
        assert a.spikes["spikes"][0].size == pytest.approx(b.spikes["spikes"][0].size, rel=0.02)


def test_out_of_memory_names_the_batch_that_fits():
    """The message a GPU out-of-memory becomes (no GPU needed: the estimate and the wording)."""
    from engine.backends.torch_backend import batch_memory, out_of_memory_message

    plan = deterministic_network("lif", n_steps=100)
    per_copy, shared = batch_memory(plan, np.float32, plastic=False)
    n_syn = sum(p.n_synapses for p in plan.projections)
    assert per_copy >= 4 * (6 * 60 + 21 * 60) and shared == 21 * n_syn
    assert batch_memory(plan, np.float32, plastic=True)[0] > per_copy
    gib = 2 ** 30
    message = out_of_memory_message(4096, "cuda:0", 2 * gib, 80 * gib, 2 ** 20, 2 ** 20)
    assert "batch 4096 does not fit" in message and "batch 2047 would fit" in message
    assert "2.0 GiB free of 80.0 GiB" in message
    assert "not even batch 1" in out_of_memory_message(8, "cuda:0", 2 ** 20, gib, 2 ** 21, 0)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_out_of_memory_is_an_error_naming_a_batch_that_fits():
    from engine.backends.torch_backend import batch_memory

    plan = deterministic_network("lif", n_steps=100)
    free, _total = torch.cuda.mem_get_info()
    per_copy, _shared = batch_memory(plan, np.float32, plastic=False)
    with pytest.raises(SimulationError, match=r"does not fit in the memory of cuda.*batch \d+ would fit"):
        Simulation(plan, backend="torch", device="cuda", batch=int(3 * free / per_copy))


def plastic_plan():
    """The deterministic LIF network with pair STDP (delays 1..20) on its excitatory recurrent and
    input projections, the input one's depression set by a NALSM astrocyte."""
    from engine.plan import AstrocytePlan, RulePlan

    plan = deterministic_network("lif", n_steps=1400)
    rec, inp = plan.projections[0], plan.projections[2]
    rec.rules.append(RulePlan("stdp", name="stdp_rec", params=dict(A_plus=0.01, A_minus=0.0105, w_max=120.0)))
    inp.rules.append(RulePlan("stdp", name="stdp_in", params=dict(A_plus=0.02, A_minus=0.021, w_max=200.0),
                              astrocyte="astro"))
    plan.astrocytes.append(AstrocytePlan("astro", liquid=["net"], reference=["train"]))
    rec.plastic = inp.plastic = True
    return plan


def test_plastic_copies_learn_their_own_weights_as_numba_would():
    """Per-copy weights W[b, syn] (MODELS.md §0.5): each copy of a plastic batch ends with the weights
    and spikes numba's run of its inputs gives (float64; the torch rule kernels keep dense traces
    where numba's are lazy, so weights agree to rounding: 1e-12 relative)."""
    plan = plastic_plan()
    starts, n = [0, 400, 905], 400
    backend = Simulation(plan, backend="torch", batch=3).backend
    copies = backend.run_samples(starts, n)
    learned = {name: backend.batch_projection_weights(name) for name in ("E", "in")}
    moved = 0.0
    for b, start in enumerate(starts):
        sim = Simulation(plan, backend="numba")
        sim.backend._k = start
        reference = sim.backend.run_steps(n)
        assert_chunk_equal(copies[b], reference, f"copy {b}")
        for name, w in learned.items():
            expected = sim.backend.projection_weights(name)
            np.testing.assert_allclose(w[b], expected, rtol=1e-12, atol=1e-12, err_msg=f"{name}, copy {b}")
            moved = max(moved, float(np.abs(expected - backend.projection_weights(name)).max()))
    assert moved > 0.1, "the weights learned something"
    # the next batch starts again from the shared start weights
    again = backend.run_samples(starts, n)
    for a, b in zip(copies, again):
        assert_chunk_equal(a, b, "second batch")


def test_torch_rule_kernels_at_batch_1_match_the_host_kernels():
    """What a GPU runs (torch rule kernels, torch-op propagation), on the CPU, against numba."""
    plan = plastic_plan()
    gpu_path = Simulation(plan, backend="torch", rules="torch").backend
    gpu_path.host_loops = False
    chunk = gpu_path.run_steps(600)
    numba = Simulation(plan, backend="numba").backend
    assert_chunk_equal(chunk, numba.run_steps(600), "batch 1")
    for name in ("E", "in"):
        np.testing.assert_allclose(gpu_path.projection_weights(name), numba.projection_weights(name),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_path_runs_every_rule_of_the_plastic_network_as_numba(dtype):
    """Poisson inputs, pair STDP with delays gated by a NALSM astrocyte, reward STDP with timed
    dopamine, a Hao threshold rule: the torch rule kernels and torch-op propagation (a GPU's path)
    give numba's spikes; weights and thresholds agree to rounding."""
    from tests.engine.test_backends_shared import plastic_network

    plan = plastic_network(dtype)
    gpu_path = Simulation(plan, backend="torch", rules="torch")
    gpu_path.backend.host_loops = False
    numba = Simulation(plan, backend="numba")
    a, b = numba.run(), gpu_path.run()
    for name in a.spikes:
        np.testing.assert_array_equal(b.spikes[name][0], a.spikes[name][0], err_msg=name)
        np.testing.assert_array_equal(b.spikes[name][1], a.spikes[name][1], err_msg=name)
    tol = 1e-12 if dtype == "float64" else 1e-6
    for proj in plan.projections:
        if proj.rules:
            np.testing.assert_allclose(gpu_path.backend.projection_weights(proj.name),
                                       numba.backend.projection_weights(proj.name), rtol=tol, atol=tol)
    np.testing.assert_allclose(gpu_path.get_state("p", "theta"), numba.get_state("p", "theta"), rtol=tol, atol=tol)
    assert np.abs(numba.get_state("p", "theta")).max() > 0.01, "the threshold rule acted"


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_plastic_batch_agrees_with_the_cpu_batch():
    """On a GPU the spikes are summed atomically (last-bit differences), so copies agree in spike
    counts (2 %) and weights (mean absolute difference below 1 % of the weight scale)."""
    plan = plastic_plan()
    starts = [0, 400, 905]
    cpu = Simulation(plan, backend="torch", batch=3).backend
    gpu = Simulation(plan, backend="torch", batch=3, device="cuda").backend
    a, b = cpu.run_samples(starts, 400), gpu.run_samples(starts, 400)
    for x, y in zip(a, b):
        assert y.spikes["spikes"][0].size == pytest.approx(x.spikes["spikes"][0].size, rel=0.02)
    for name in ("E", "in"):
        wa, wb = cpu.batch_projection_weights(name), gpu.batch_projection_weights(name)
        assert np.abs(wa - wb).mean() < 0.01 * np.abs(wa).mean()


@pytest.mark.skipif(CUDA, reason="checks the problem shown where CUDA is missing")
def test_choosing_cuda_without_a_gpu_is_a_problem_on_the_device_setting():
    from engine import examples
    from engine.validate import errors_only, validate

    project = examples.cuba()
    project.settings.backend = "torch"
    assert not errors_only(validate(project.graph, project.settings))
    project.settings.device = "cuda"
    [problem] = [p for p in errors_only(validate(project.graph, project.settings)) if p.field == "device"]
    assert "not available here" in str(problem) and "choose device cpu" in problem.hint
    project.settings.backend = "numba"  # the device only matters to torch
    assert not [p for p in validate(project.graph, project.settings) if p.field == "device"]
