"""numba and torch side by side: the same plan gives the same run.

The rest of the engine suite (golden LIF / Izhikevich values, reference networks, chunking, state
files) already runs on every registered backend through the ``backend`` fixture; this file compares
the backends directly. In float64 every network here is bit-identical between numba and torch on
the CPU, Poisson and noise inputs included (the torch backend runs numba's own host-side source
kernels, so the random streams are the same); float32 is compared the same way. CUDA runs are
compared with the CPU where a GPU is present and skipped elsewhere.
"""

import numpy as np
import pytest
import torch

from engine.backends import backend_supported_node_types, get_backend
from engine.errors import SimulationError
from engine.plan import (
    CurrentSourcePlan,
    MonitorPlan,
    PoissonSourcePlan,
    PopulationPlan,
    ProjectionPlan,
    ReceptorPlan,
    RewardPlan,
    RulePlan,
    SimulationPlan,
    SpikeTrainSourcePlan,
    STPPlan,
)
from engine.runner import Simulation

CUDA = torch.cuda.is_available()

#: (model, scheme, parameters, receptors, weights exc/inh): one entry per neuron model and scheme
MODELS = {
    "lif": ("lif", None, dict(tau_m=20.0, t_ref=2.0), None, (60.0, -120.0)),
    "lif_delta": ("lif", None, dict(tau_m=20.0), [ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")],
                  (1.5, -3.0)),
    "alif_coupled": ("alif", None, dict(tau_m=20.0, delta_theta=1.0, tau_theta=80.0, a_w=2.0, b_w=20.0, tau_w=60.0),
                     None, (60.0, -120.0)),
    "cobalif": ("cobalif", None, dict(tau_m=20.0, E_L=-60.0, V_reset=-60.0, V_th=-50.0, t_ref=5.0,
                                      delta_theta=0.5, tau_theta=50.0), None, (0.15, 0.4)),
    "izhikevich_split2003": ("izhikevich", "split2003", dict(a=0.02, b=0.2, c=-65.0, d=8.0), None, (4.0, -6.0)),
    "izhikevich_euler": ("izhikevich", "euler", dict(a=0.1, b=0.2, c=-65.0, d=2.0),
                         [ReceptorPlan("fast", "delta"), ReceptorPlan("slow", "exponential", 5.0)], (4.0, -6.0)),
}


def deterministic_network(model_key, n=60, seed=0, dtype="float64", dt=0.1, n_steps=1500):
    """Recurrent 80/20 network with delays U{1..20}, driven by a spike-train source, a DC current on
    half the neurons and a sine current on the other half; every monitor kind."""
    model, scheme, params, receptors, (w_exc, w_inh) = MODELS[model_key]
    rng = np.random.default_rng(seed)
    pop = PopulationPlan("net", model, n, params=dict(params), receptors=list(receptors or []), scheme=scheme)
    size = 20
    steps = np.sort(rng.integers(0, n_steps, 600))
    train = SpikeTrainSourcePlan("train", size=size, steps=steps, indices=rng.integers(0, size, steps.size))
    unit = 10.0 if model in ("lif", "alif", "cobalif") else 0.05  # pA, or Izhikevich model units
    currents = [CurrentSourcePlan("dc", target="net", waveform="dc", amplitude=rng.uniform(150, 260, n // 2) * unit / 10,
                                  indices=np.arange(n // 2)),
                CurrentSourcePlan("sine", target="net", waveform="sine", amplitude=8 * unit, offset=20 * unit,
                                  frequency=7.0, indices=np.arange(n // 2, n))]
    n_exc = int(0.8 * n)
    pre, post = np.nonzero(rng.random((n, n)) < 0.1)
    exc = pre < n_exc
    projections = [
        ProjectionPlan.from_coo("E", "net", "net", n, pre[exc], post[exc], w_exc * rng.uniform(0.5, 1.5, exc.sum()),
                                rng.integers(1, 21, exc.sum()), receptor=0, weight_dtype=np.float64),
        ProjectionPlan.from_coo("I", "net", "net", n, pre[~exc], post[~exc], abs(w_inh) * rng.uniform(0.5, 1.5, (~exc).sum())
                                * (1 if model == "cobalif" else -1), rng.integers(1, 21, (~exc).sum()), receptor=1,
                                weight_dtype=np.float64),
    ]
    tpre, tpost = np.nonzero(rng.random((size, n)) < 0.2)
    projections.append(ProjectionPlan.from_coo("in", "train", "net", size, tpre, tpost, 2 * abs(w_exc),
                                               rng.integers(1, 21, tpre.size), receptor=0, weight_dtype=np.float64))
    variables = pop.state_names()
    monitors = [MonitorPlan("spikes", "net"), MonitorPlan("some", "net", indices=[1, 5, 7]),
                MonitorPlan("state", "net", "state", variables=variables, indices=[0, 3, n - 1], every=7),
                MonitorPlan("rate", "net", "rate"), MonitorPlan("w", "E", "weights", every=0)]
    return SimulationPlan(dt=dt, n_steps=n_steps, dtype=dtype, seed=seed, populations=[pop], sources=[train] + currents,
                          projections=projections, monitors=monitors)


def stochastic_network(dtype="float64", seed=3):
    """LIF network driven by heterogeneous and homogeneous Poisson sources and a noise current."""
    rng = np.random.default_rng(9)
    n = 150
    pop = PopulationPlan("p", "lif", n, params=dict(tau_m=20.0, I_e=120.0))
    het = PoissonSourcePlan("het", size=80, rates=rng.uniform(5, 40, 80))
    hom = PoissonSourcePlan("hom", size=50, rates=25.0, start_step=200, stop_step=1500)
    pre, post = np.nonzero(rng.random((80, n)) < 0.1)
    hpre, hpost = np.nonzero(rng.random((50, n)) < 0.1)
    rpre, rpost = np.nonzero(rng.random((n, n)) < 0.05)
    projections = [ProjectionPlan.from_coo("het", "het", "p", 80, pre, post, 150.0, rng.integers(1, 15, pre.size)),
                   ProjectionPlan.from_coo("hom", "hom", "p", 50, hpre, hpost, 120.0, 3),
                   ProjectionPlan.from_coo("rec", "p", "p", n, rpre, rpost, -60.0, rng.integers(1, 20, rpre.size),
                                           receptor="inh")]
    noise = CurrentSourcePlan("noise", target="p", waveform="noise", amplitude=60.0, offset=10.0)
    monitors = [MonitorPlan("spikes", "p"), MonitorPlan("het", "het"), MonitorPlan("hom", "hom"),
                MonitorPlan("v", "p", "state", variables=("V", "I_exc"), indices=[0, 1, 2], every=5)]
    return SimulationPlan(dt=0.1, n_steps=2000, dtype=dtype, seed=seed, populations=[pop], sources=[het, hom, noise],
                          projections=projections, monitors=monitors)


def run(plan, backend, **kw):
    sim = Simulation(plan, backend=backend, **kw)
    return sim, sim.run()


def assert_same_results(a, b):
    assert a.spikes.keys() == b.spikes.keys() and a.states.keys() == b.states.keys()
    for name in a.spikes:
        for x, y in zip(a.spikes[name], b.spikes[name]):
            np.testing.assert_array_equal(x, y, err_msg=name)
            assert x.dtype == y.dtype
    for name in a.rates:
        np.testing.assert_array_equal(a.rates[name], b.rates[name], err_msg=name)
    for name, variables in a.states.items():
        for var, (steps, values) in variables.items():
            np.testing.assert_array_equal(steps, b.states[name][var][0])
            np.testing.assert_array_equal(values, b.states[name][var][1], err_msg=f"{name}/{var}")
    for name in a.weights:
        np.testing.assert_array_equal(a.weights[name][1], b.weights[name][1])


@pytest.mark.parametrize("model_key", sorted(MODELS))
def test_deterministic_networks_identical_on_numba_and_torch_cpu(model_key):
    """Every model and scheme, delays 1..20, spike-train and DC/sine inputs: float64 spikes, sampled
    state and final state are bit-identical."""
    plan = deterministic_network(model_key)
    sim_n, res_n = run(plan, "numba")
    sim_t, res_t = run(plan, "torch")
    assert res_n.spikes["spikes"][0].size > 100, "the network is active"
    assert 0 < res_n.spikes["spikes"][0].size < 0.5 * 60 * 1500, "and not saturated"
    assert_same_results(res_n, res_t)
    for var in plan.populations[0].state_names():
        np.testing.assert_array_equal(sim_n.get_state("net", var), sim_t.get_state("net", var), err_msg=var)
    if plan.populations[0].model != "izhikevich":
        np.testing.assert_array_equal(sim_n.get_state("net", "refractory"), sim_t.get_state("net", "refractory"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stochastic_network_identical_streams(dtype):
    """Poisson (heterogeneous, homogeneous with an on/off window) and noise currents: the torch
    backend draws numba's streams, so the runs are identical, not only alike."""
    plan = stochastic_network(dtype)
    _, res_n = run(plan, "numba")
    _, res_t = run(plan, "torch")
    assert_same_results(res_n, res_t)
    # and the rates are the planned ones (Bernoulli p = rate dt): 80 neurons at mean 22.5 Hz for 0.2 s
    _, idx = res_t.spikes["het"]
    expected = np.sum(plan.sources[0].rates) * 0.2
    assert abs(idx.size - expected) < 4 * np.sqrt(expected)
    steps, _ = res_t.spikes["hom"]
    assert steps.min() >= 200 and steps.max() < 1500
    assert abs(steps.size - 50 * 25.0 * 0.13) < 4 * np.sqrt(50 * 25.0 * 0.13)


def test_float32_izhikevich_and_coba_follow_numbas_float64_promotion():
    """numba evaluates the Izhikevich and conductance updates in float64 even for float32 state; the
    torch backend does the same, so float32 runs are identical too."""
    for key in ("izhikevich_split2003", "cobalif"):
        plan = deterministic_network(key, dtype="float32", n_steps=1000)
        assert_same_results(run(plan, "numba")[1], run(plan, "torch")[1])


def test_chunked_save_restore_and_weights_on_torch(tmp_path):
    """Chunks of odd sizes == one shot; a restored state continues bit for bit; weights read back."""
    plan = stochastic_network()
    _, one = run(plan, "torch")
    sim = Simulation(plan, backend="torch")
    sim.run(37 * 0.1, chunk_steps=37)
    sim.save_state(tmp_path / "s.npz")
    rest = sim.run((2000 - 37) * 0.1, chunk_steps=301)
    assert_same_results(one, rest)
    other = Simulation(plan, backend="torch")
    other.restore_state(tmp_path / "s.npz")
    continued = other.run((2000 - 37) * 0.1)
    for name in continued.spikes:
        s, i = rest.spikes[name]
        keep = s >= 37
        np.testing.assert_array_equal(continued.spikes[name][0], s[keep])
        np.testing.assert_array_equal(continued.spikes[name][1], i[keep])
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        assert {"ring", "lif_state", "poisson_rng", "current_rng", "fingerprint"} <= set(data.files)
    np.testing.assert_array_equal(sim.backend.projection_weights("rec"), plan.projections[2].weights)
    with pytest.raises(SimulationError, match="no projection"):
        sim.backend.projection_weights("nope")


def test_numba_state_file_is_refused_by_torch(tmp_path):
    plan = stochastic_network()
    Simulation(plan, backend="numba").save_state(tmp_path / "numba.npz")
    with pytest.raises(SimulationError, match="another backend"):
        Simulation(plan, backend="torch").restore_state(tmp_path / "numba.npz")


def _with(plan_mutation):
    plan = deterministic_network("lif", n_steps=10)
    plan_mutation(plan)
    return plan


def test_torch_refuses_short_term_plasticity_naming_it():
    plan = _with(lambda p: setattr(p.projections[1], "stp", STPPlan()))
    with pytest.raises(SimulationError, match="does not simulate these yet") as info:
        get_backend("torch")(plan)
    assert "short-term" in str(info.value) and "'I'" in str(info.value) and "numba" in str(info.value)


@pytest.mark.parametrize("mutation, names", [
    (lambda p: p.modulators.append(RewardPlan("dopamine")), ("'dopamine'", "batch of 2")),
    (lambda p: setattr(p.populations[0], "threshold_rule", {"theta_plus": 0.05, "offset": 0.0}),
     ("'net'", "threshold rule")),
])
def test_what_a_batch_cannot_run_is_refused_naming_it(mutation, names):
    """Batch 1 on the CPU runs it (the host rule kernels); a batch refuses it by name: a reward
    signal (its rewards are timed on the whole run), a threshold rule (not in the torch rule kernels)."""
    plan = _with(mutation)
    get_backend("torch")(plan)
    with pytest.raises(SimulationError) as info:
        get_backend("torch")(plan, batch=2)
    for name in names:
        assert name in str(info.value)


def test_supported_node_types_declared():
    torch_types = backend_supported_node_types("torch")
    assert {"neuron.lif", "neuron.alif", "neuron.cobalif", "neuron.izhikevich", "synapse.projection",
            "input.poisson", "input.current", "monitor.state", "plasticity.stdp", "modulator.reward"} <= torch_types
    assert "modulator.tripartite_astrocyte" not in torch_types  # acts through short-term plasticity
    assert torch_types < backend_supported_node_types("numba")


def plastic_network(dtype="float64"):
    """Poisson inputs onto a LIF population: pair STDP with axonal delays of 1-14 steps whose
    depression a NALSM astrocyte sets, reward STDP gated by timed dopamine, a Hao threshold rule:
    the host-kernel paths of the torch backend's plasticity."""
    from engine.plan import AstrocytePlan

    plan = stochastic_network(dtype=dtype)
    plan.n_steps = 1500
    inp, rec = plan.projections[0], plan.projections[1]
    inp.rules.append(RulePlan("stdp", name="stdp_in", params=dict(A_plus=0.02, A_minus=0.021, w_max=200.0),
                              astrocyte="astro"))
    rec.rules.append(RulePlan("rstdp", name="rstdp_rec", params=dict(w_max=400.0), modulator="da"))
    plan.astrocytes.append(AstrocytePlan("astro", liquid=["p"], reference=["het"]))
    inp.plastic = rec.plastic = True  # as the compiler marks projections with rules
    plan.modulators.append(RewardPlan("da", steps=np.arange(100, 1500, 200, dtype=np.int64),
                                      amplitudes=np.full(7, 0.5)))
    pop = plan.populations[0]
    pop.model = "alif"  # the threshold rule acts on theta, as the compiler arranges
    pop.params.update(tau_theta=200.0, delta_theta=0.0)
    pop.threshold_rule = {"theta_plus": 0.05, "offset": 0.0}
    for proj in (inp, rec):
        plan.monitors.append(MonitorPlan(f"w_{proj.name}", proj.name, "weights"))
    return plan


@pytest.mark.skipif(CUDA, reason="checks the message shown where CUDA is missing")
def test_missing_cuda_is_a_clear_error_offering_the_cpu():
    plan = deterministic_network("lif", n_steps=10)
    with pytest.raises(SimulationError, match="CUDA is not available.*device 'cpu'"):
        Simulation(plan, backend="torch", device="cuda")
    with pytest.raises(SimulationError, match="unsupported torch device|unknown torch device"):
        Simulation(plan, backend="torch", device="tpu")


@pytest.mark.skipif(CUDA, reason="checks the message shown where CUDA is missing")
def test_cli_device_cuda_without_gpu_is_one_line_user_error(tmp_path):
    from engine.project import example_projects
    from tests.engine.test_cli_run import make_parser

    path = next(p for p in example_projects() if p.name == "cuba.swproj")
    args = make_parser().parse_args(["run", str(path), "--duration", "1ms", "--backend", "torch", "--device", "cuda",
                                     "-q"])
    with pytest.raises(SimulationError, match="CUDA is not available"):
        args.func(args)
    args = make_parser().parse_args(["run", str(path), "--duration", "1ms", "--backend", "numba", "--device", "cuda"])
    with pytest.raises(Exception, match="torch backend only"):
        args.func(args)


def test_cli_runs_the_cuba_example_on_torch_cpu(tmp_path, capsys):
    from engine.project import example_projects
    from engine.runner import SimulationResults
    from tests.engine.test_cli_run import make_parser

    path = next(p for p in example_projects() if p.name == "cuba.swproj")
    common = ["run", str(path), "--duration", "20ms", "--seed", "2", "--dtype", "float64", "-q"]
    for backend in ("numba", "torch"):
        args = make_parser().parse_args(common + ["--backend", backend, "--out", str(tmp_path / f"{backend}.npz")]
                                        + (["--device", "cpu"] if backend == "torch" else []))
        assert args.func(args) == 0
    a, b = (SimulationResults.load(tmp_path / f"{x}.npz") for x in ("numba", "torch"))
    assert b.settings["backend"] == "torch" and a.n_spikes > 0
    assert_same_results(a, b)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
@pytest.mark.parametrize("model_key", sorted(MODELS))
def test_cuda_agrees_with_cpu(model_key):
    """On a GPU the ring-buffer additions are atomic (their order varies) and exp is CUDA's: values
    differ in the last bits, so a threshold tie can flip a spike and the recurrent network then
    diverges. Asserted: identical spikes over the first 100 steps and the same rate within 5 %."""
    plan = deterministic_network(model_key, n_steps=500)
    _, cpu = run(plan, "torch", device="cpu")
    _, gpu = run(plan, "torch", device="cuda")
    (s_cpu, i_cpu), (s_gpu, i_gpu) = cpu.spikes["spikes"], gpu.spikes["spikes"]
    np.testing.assert_array_equal(i_cpu[s_cpu < 100], i_gpu[s_gpu < 100])
    assert abs(s_cpu.size - s_gpu.size) <= max(3, 0.05 * s_cpu.size)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_stochastic_streams_match_cpu():
    plan = stochastic_network()
    _, cpu = run(plan, "torch", device="cpu")
    _, gpu = run(plan, "torch", device="cuda")
    for name in ("het", "hom"):  # source spikes come from the same host streams
        np.testing.assert_array_equal(cpu.spikes[name][1], gpu.spikes[name][1])


def test_mixed_populations_in_one_group_identical():
    """Several populations per model group (a LIF, an ALIF and a second LIF share the LIF group; a
    conductance LIF and an Izhikevich population beside them), projections between all of them:
    spikes are split by population correctly and every run is identical to numba's."""
    rng = np.random.default_rng(21)
    pops = [PopulationPlan("a", "lif", 30, params=dict(I_e=rng.uniform(150, 300, 30))),
            PopulationPlan("b", "alif", 25, params=dict(I_e=260.0, delta_theta=1.0, b_w=10.0)),
            PopulationPlan("c", "lif", 20, params=dict(I_e=rng.uniform(100, 320, 20), tau_m=15.0)),
            PopulationPlan("d", "cobalif", 15, params=dict(I_e=230.0)),
            PopulationPlan("e", "izhikevich", 10, params=dict(I_e=rng.uniform(3, 12, 10)))]
    weights = {"lif": 50.0, "alif": 50.0, "cobalif": 0.2, "izhikevich": 3.0}
    projections = []
    for src in pops:
        for dst in pops:
            pre, post = np.nonzero(rng.random((src.size, dst.size)) < 0.15)
            projections.append(ProjectionPlan.from_coo(f"{src.name}{dst.name}", src.name, dst.name, src.size, pre, post,
                                                       weights[dst.model] * rng.uniform(0.2, 1.0, pre.size),
                                                       rng.integers(1, 21, pre.size), weight_dtype=np.float64))
    monitors = [MonitorPlan(f"s{p.name}", p.name) for p in pops] + [MonitorPlan(f"r{p.name}", p.name, "rate") for p in pops]
    plan = SimulationPlan(dt=0.1, n_steps=1500, dtype="float64", populations=pops, projections=projections,
                          monitors=monitors)
    a, b = run(plan, "numba")[1], run(plan, "torch")[1]
    assert all(a.spikes[f"s{p.name}"][0].size > 10 for p in pops), "every population fires"
    assert_same_results(a, b)


def test_readout_example_identical_on_torch():
    """The NeuroCoreX digits example (vote readout, evaluated after the run on the recorded
    spikes): same spikes and same readout on both backends."""
    from engine.project import Project, example_projects

    project = Project.load(next(p for p in example_projects() if p.name == "neurocorex_digits.swproj"))
    results = [Simulation(project, backend=b, settings={"duration": 100.0}).run(100.0) for b in ("numba", "torch")]
    a, b = results
    assert a.n_spikes > 100
    assert_same_results(a, b)
    assert a.readouts.keys() == b.readouts.keys() and a.readouts
    for name in a.readouts:
        assert a.readouts[name].keys() == b.readouts[name].keys()
        for key, value in a.readouts[name].items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(b.readouts[name][key]), err_msg=f"{name}/{key}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_plasticity_on_torch_cpu_identical_to_numba(dtype):
    plan = plastic_network(dtype)
    sim_a, a = run(plan, "numba")
    sim_b, b = run(plastic_network(dtype), "torch")
    assert a.n_spikes > 100
    assert_same_results(a, b)
    for name, w in sim_a.final_weights().items():
        initial = next(p for p in plan.projections if p.name == name).weights
        assert not np.array_equal(w, initial), f"{name} learned"
        np.testing.assert_array_equal(sim_b.final_weights()[name], w)
