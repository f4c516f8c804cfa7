"""The PyNEST script export: its structure (always), and, where the PyPI NEST is installed, runs of
the script on 1 and 2 threads compared with our numba engine."""

import ast
import glob
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.exporters import export
from engine.project import Project
from engine.runner import Simulation

ROOT = Path(__file__).resolve().parents[2]
HAVE_NEST = importlib.util.find_spec("nest") is not None
needs_nest = pytest.mark.skipif(not HAVE_NEST, reason="nest-simulator is not installed (pip install -e '.[nest]')")


def calls(tree, name):
    """Every call of ``nest.<name>`` in a parsed script, as (positional args, keywords) literals where literal."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
            out.append(node)
    return out


def literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def test_cuba_script_builds_the_network_with_nest_rules(tmp_path):
    project = Project.load(ROOT / "resources/examples/cuba.swproj")
    report = export(project, "nest", tmp_path / "cuba.py", threads=2)
    text = (tmp_path / "cuba.py").read_text()
    tree = ast.parse(text)
    creates = [(literal(c.args[0]), literal(c.args[1]) if len(c.args) > 1 else None, c)
               for c in calls(tree, "Create")]
    neurons = [(m, n, c) for m, n, c in creates if m == "iaf_psc_exp"]
    assert [n for _, n, _ in neurons] == [3200, 800]
    params = literal(neurons[0][2].keywords[0].value)
    # C_m = tau_m / R = 20 ms / 0.1 GOhm = 200 pF; CUBA's constants
    assert params == {"E_L": -49.0, "V_th": -50.0, "V_reset": -60.0, "t_ref": 5.0, "I_e": 0.0, "tau_m": 20.0,
                      "C_m": 200.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0}
    assert "excitatory.V_m = nest.random.uniform(-60.0, -50.0)" in text
    connects = [c for c in calls(tree, "Connect") if len(c.args) == 4]
    specs = [(literal(c.args[2]), literal(c.args[3])) for c in connects]
    assert len(specs) == 4
    for conn, syn in specs:
        assert conn["rule"] == "pairwise_bernoulli" and conn["p"] == 0.02
        assert syn["weight"] in (16.2, -90.0) and syn["delay"] == 0.1
    assert sorted(s["weight"] for _, s in specs) == [-90.0, -90.0, 16.2, 16.2]
    recorders = [literal(c.keywords[0].value) for c in calls(tree, "Create")
                 if literal(c.args[0]) == "spike_recorder"]
    assert recorders == [{"record_to": "ascii", "label": "Raster"}, {"record_to": "ascii", "label": "Rate"}]
    assert "default=2, help='local threads per MPI process'" in text
    assert report.written == [tmp_path / "cuba.py"]


def test_explicit_connection_lists_and_encoded_inputs_go_next_to_the_script(tmp_path):
    project = Project.load(ROOT / "resources/examples/nalsm_digits.swproj")
    report = export(project, "nest", tmp_path / "nalsm.py")
    plan = compile_graph(project)
    with np.load(tmp_path / "nalsm_connections.npz") as data:
        explicit = sorted(k[:-4] for k in data.files if k.endswith("_pre"))
        by_distance = {n.id for n in project.graph.nodes.values()
                       if n.type_id == "synapse.projection" and n.connectivity == "distance"}
        distance = sorted(p.name.replace("->", "_") for p in plan.projections if p.name.split("->")[0] in by_distance)
        assert explicit == distance and len(explicit) == 4  # E->E, E->I, I->E, I->I: explicit lists
        for prj in plan.projections:
            key = prj.name.replace("->", "_")
            if key in explicit:
                np.testing.assert_array_equal(data[f"{key}_pre"], prj.pre_indices())
                np.testing.assert_allclose(data[f"{key}_weight"], prj.weights)
    with np.load(tmp_path / "nalsm_inputs.npz") as data:
        [src] = [s for s in plan.sources if s.emits_spikes]
        np.testing.assert_array_equal(data["digits_steps"], src.steps)
    dropped = {i.node for i in report.of_level("dropped")}
    assert {"Astrocyte", "Readout", "Branching factor", "Liquid initialisation", "Features"} <= dropped
    # NEST has no synapse whose depression an astrocyte sets: the rule is dropped with that reason, once
    reasons = [i.message for i in report.of_level("dropped") if i.node == "Liquid STDP"]
    assert len(reasons) == 1 and "astrocyte" in reasons[0]


def run_script(script: Path, threads: int, duration: float, out: Path) -> np.ndarray:
    """Run an exported script as a subprocess; return its spikes as rows (sender, time_ms)."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # the 2 test cores are shared: do not spin
    done = subprocess.run([sys.executable, str(script), "--threads", str(threads), "--duration", str(duration),
                           "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    files = glob.glob(str(out / "Raster-*.dat"))
    assert len(files) == threads  # one file per virtual process
    return np.concatenate([np.loadtxt(f, comments="#", skiprows=3, ndmin=2) for f in files])


def rate_and_cv(times_ms, senders, n, duration_ms):
    """Mean rate (Hz) and mean CV of the inter-spike intervals (neurons with >= 3 intervals)."""
    order = np.lexsort((times_ms, senders))
    t, s = times_ms[order], senders[order]
    cvs = [np.std(isi) / np.mean(isi) for u in np.unique(s) if (isi := np.diff(t[s == u])).size >= 3]
    return times_ms.size / (n * duration_ms / 1000.0), float(np.mean(cvs))


@needs_nest
@pytest.mark.slow
def test_cuba_script_agrees_with_numba_on_one_and_two_threads(tmp_path):
    """Bands: the mean excitatory rate of each NEST run within 20 % of our mean over two seeds (we
    measured 5.4 / 5.7 Hz here, NEST 5.9 / 6.0 Hz), the mean CV of ISIs within 0.1 (0.54 / 0.55 vs
    0.55 / 0.53): the network is chaotic, so only statistics can agree."""
    duration = 1000.0
    project = Project.load(ROOT / "resources/examples/cuba.swproj")
    ours = []
    for seed in (1, 2):
        results = Simulation(project, settings={"seed": seed, "duration": duration}).run(duration)
        [raster] = [m for m in results.spikes if project.graph.node(m).label == "Raster"]
        steps, idx = results.spikes[raster]
        ours.append(rate_and_cv(steps * project.settings.dt, idx, 3200, duration))
    rate, cv = np.mean(ours, axis=0)
    assert 3.0 < rate < 9.0 and 0.3 < cv < 0.9  # CUBA's asynchronous irregular state
    export(project, "nest", tmp_path / "cuba.py")
    for threads in (1, 2):
        rows = run_script(tmp_path / "cuba.py", threads, duration, tmp_path / f"spikes{threads}")
        nest_rate, nest_cv = rate_and_cv(rows[:, 1], rows[:, 0], 3200, duration)
        assert abs(nest_rate - rate) < 0.2 * rate, (threads, nest_rate, rate)
        assert abs(nest_cv - cv) < 0.1, (threads, nest_cv, cv)


@needs_nest
def test_deterministic_digits_script_reproduces_our_spikes(tmp_path):
    """The NeuroCoreX digits net is deterministic given its input spikes (delta synapses, exact
    integration in both): NEST's spike generators emit each spike one step late (NEST cannot emit at
    t = 0) and the parrot relay adds the projection's delay, so its spikes trail ours by one or two steps (dt = 1 ms);
    a neuron may lose or gain a spike at the edges."""
    project = Project.load(ROOT / "resources/examples/neurocorex_digits.swproj")
    duration = 500.0
    results = Simulation(project, settings={"duration": duration}).run(duration)
    from engine.readouts import is_internal_recording

    [raster] = [name for name in results.spikes if not is_internal_recording(name)]  # not the readout's own
    steps, idx = results.spikes[raster]
    export(project, "nest", tmp_path / "digits.py")
    rows = run_script(tmp_path / "digits.py", 1, duration, tmp_path / "spikes")
    senders = rows[:, 0].astype(int)
    assert senders.min() >= 1 and senders.max() <= 10  # the 10 class neurons are created first: ids 1..10
    nest_times = {i: np.sort(rows[senders == i + 1, 1]) for i in range(10)}
    matched = 0
    for s, i in zip(steps, idx):
        t = s * 1.0  # dt = 1 ms in this example
        near = nest_times[int(i)]
        matched += bool(near.size and np.min(np.abs(near - t)) <= 2.0)
    assert steps.size > 300
    assert matched >= 0.95 * steps.size
    assert abs(rows.shape[0] - steps.size) <= 0.02 * steps.size


@needs_nest
def test_pair_stdp_becomes_nest_stdp_synapse_and_learns(tmp_path):
    """Song et al.'s additive STDP on conductance synapses: Wmax = w_max g_L (0.01 x 10 nS),
    lambda = A_plus / w_max, alpha = A_minus / A_plus; NEST's run moves weights towards both bounds
    (20 s: 29 % of the weights within 10 % of Wmax from a bound, against 20 +- 1.3 % for the uniform start;
    full bimodality needs ~100 s, too long for a test)."""
    project = Project.load(ROOT / "resources/examples/song_stdp.swproj")
    report = export(project, "nest", tmp_path / "song.py")
    tree = ast.parse((tmp_path / "song.py").read_text())
    [copy] = calls(tree, "CopyModel")
    assert literal(copy.args[0]) == "stdp_synapse"
    params = literal(copy.args[2])
    assert params == pytest.approx({"tau_plus": 20.0, "lambda": 0.01, "alpha": 1.05, "mu_plus": 0.0,
                                    "mu_minus": 0.0, "Wmax": 0.1})
    assert any("pair STDP (additive) -> NEST stdp_synapse" in i.message for i in report.of_level("converted"))
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, str(tmp_path / "song.py"), "--duration", "20000", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    [weights_file] = glob.glob(str(tmp_path / "out" / "stdp_*-rank0.csv"))
    w = np.loadtxt(weights_file, delimiter=",", skiprows=1)[:, 2]
    assert w.size == 1000 and w.min() >= 0.0 and w.max() <= 0.1 + 1e-12
    at_bounds = np.mean((w < 0.01) | (w > 0.09))
    assert at_bounds > 0.25, at_bounds


def mapping_project(seed: int = 1) -> Project:
    """Poisson inputs (1000, 15 Hz) onto four groups of 40 neurons (fixed probability 0.1, weights
    2.5 pA, R = 1 GOhm): ``Trip`` learns with triplet STDP (visual-cortex set, amplitudes x10),
    ``Dep`` has depressing Tsodyks-Markram synapses (weights x5), ``Adapt`` is an adaptive LIF with
    an adaptation current only; a Reward node fires at 2 Hz (random) for an R-STDP rule onto ``Trip``'s
    twin ``Rew``."""
    from engine.project import SimulationSettings

    project = Project(settings=SimulationSettings(dt=0.1, duration=1000.0, seed=seed))
    g = project.graph
    src = g.add_node("input.poisson", "Inputs", n=1000, rate=15.0)
    lif = dict(n=40, tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0, R=1.0)
    groups = {"Trip": g.add_node("neuron.lif", "Trip", **lif), "Rew": g.add_node("neuron.lif", "Rew", **lif),
              "Dep": g.add_node("neuron.lif", "Dep", **lif),
              "Adapt": g.add_node("neuron.alif", "Adapt", **lif, delta_theta=0.0, a_w=0.2, b_w=1.0, tau_w=100.0)}
    projections = {}
    for name, pop in groups.items():
        extra = dict(stp="tsodyks_markram", stp_U=0.5, stp_tau_facil=0.0, stp_tau_rec=200.0) if name == "Dep" else {}
        prj = g.add_node("synapse.projection", f"To {name}", connectivity="fixed_probability", p=0.1,
                         weight=12.5 if name == "Dep" else 2.5, delay=0.1, **extra)
        g.connect(src.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", pop.id, "input")
        mon = g.add_node("monitor.spikes", f"{name}Raster")
        g.connect(pop.id, "spikes", mon.id, "source")
        projections[name] = prj
    trip = g.add_node("plasticity.triplet", "Triplet", A2_plus=5e-9, A3_plus=6.2e-2, A2_minus=7e-2, A3_minus=2.3e-3,
                      w_min=0.0, w_max=6.0)
    g.connect(trip.id, "rule", projections["Trip"].id, "rule")
    rew = g.add_node("plasticity.rstdp", "R-STDP", A_plus=0.001, A_minus=0.0015, w_min=0.0, w_max=6.0)
    reward = g.add_node("modulator.reward", "Dopamine", mode="random", rate=4.0, amplitude=0.5)
    g.connect(reward.id, "modulation", rew.id, "modulation")
    g.connect(rew.id, "rule", projections["Rew"].id, "rule")
    return project


@needs_nest
def test_new_mappings_are_written_from_the_shared_table(tmp_path):
    """Triplet STDP, reward STDP with its volume transmitter, STP and the adaptive LIF appear in the
    script as the NEST backend builds them (the same table), and the report says so."""
    report = export(mapping_project(), "nest", tmp_path / "maps.py")
    tree = ast.parse((tmp_path / "maps.py").read_text())
    models = {literal(c.args[0]): c for c in calls(tree, "CopyModel")}
    assert set(models) == {"stdp_triplet_synapse", "stdp_dopamine_synapse", "tsodyks2_synapse"}
    trip = literal(models["stdp_triplet_synapse"].args[2])
    assert trip == pytest.approx({"tau_plus": 16.8, "tau_plus_triplet": 101.0, "Aplus": 5e-9, "Aminus": 7e-2,
                                  "Aplus_triplet": 6.2e-2, "Aminus_triplet": 2.3e-3, "Wmax": 6.0})
    dopa = models["stdp_dopamine_synapse"].args[2]
    assert "'volume_transmitter': dopamine" in ast.unparse(dopa)
    assert literal(models["tsodyks2_synapse"].args[2]) == {"U": 0.5, "tau_fac": 0.0, "tau_rec": 200.0, "u": 0.5,
                                                           "x": 1.0}
    created = [literal(c.args[0]) for c in calls(tree, "Create")]
    assert "aeif_psc_exp" in created and "volume_transmitter" in created and "poisson_generator" in created
    converted = " ".join(i.message for i in report.of_level("converted"))
    assert "NEST stdp_triplet_synapse" in converted and "NEST stdp_dopamine_synapse" in converted
    assert "tsodyks2_synapse" in converted and "aeif_psc_exp with Delta_T = 0" in converted
    assert not report.of_level("dropped")


@needs_nest
def test_tripartite_astrocyte_is_reported_with_the_reason(tmp_path):
    project = mapping_project()
    g = project.graph
    astro = g.add_node("modulator.tripartite_astrocyte", "Astro")
    [dep] = [n for n in g.nodes.values() if n.label == "To Dep"]
    g.connect(astro.id, "modulation", dep.id, "modulation")
    report = export(project, "nest", tmp_path / "astro.py")
    [item] = [i for i in report.of_level("dropped") if i.node == "Astro"]
    assert "astrocyte_lr_1994" in item.message and "slow inward current" in item.message


@needs_nest
def test_new_mappings_script_agrees_with_numba(tmp_path):
    """The exported script (1 thread; NEST draws its own connections and Poisson trains per --seed)
    against numba, each over seeds: a group's mean rate (and the mean final weight of the triplet and
    reward STDP projections) on NEST's two seeds lies within three standard errors of ours, the
    standard error taken from our four seeds' spread (connectivity and inputs change with the seed:
    measured here, e.g. the adaptive group's rate ranges 4.2-7.7 Hz over six seeds). Weights stay
    within [0, w_max].

    Known difference: in these input-driven groups NEST's stdp_triplet_synapse ends with mean weights
    about 10 % below ours (measured 2.57 against 2.86 at ~19 Hz, the same at dt = 0.05 ms), while
    single-synapse protocols (TRIP-1, independent random trains) agree within 1.5 %: NEST transmits a
    presynaptic spike with the weight after that spike's own depression, ours with the weight before
    (tests/engine/test_nest_mappings.py), which lowers the drive, the rate and with it the
    rate-sensitive triplet potentiation; the band is one-sided: lower, by less than 20 %."""
    groups = ("Trip", "Rew", "Dep", "Adapt")
    ours = {name: [] for name in (*groups, "w Trip", "w Rew")}
    for seed in (1, 2, 3, 4):
        project = mapping_project(seed)
        sim = Simulation(project)
        results = sim.run(1000.0)
        for mon, (steps, _) in results.spikes.items():
            ours[project.graph.node(mon).label.replace("Raster", "")].append(steps.size / 40.0)
        for proj in sim.plan.projections:
            if proj.plastic:
                label = project.graph.node(proj.name.split("->")[0]).label.replace("To ", "w ")
                ours[label].append(np.mean(sim.backend.projection_weights(proj.name)))
    project = mapping_project()
    export(project, "nest", tmp_path / "maps.py")
    ids = {n.label: n.id for n in project.graph.nodes.values()}
    theirs = {name: [] for name in ours}
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    for seed in (1, 2):
        out = tmp_path / f"out{seed}"
        done = subprocess.run([sys.executable, str(tmp_path / "maps.py"), "--seed", str(seed), "--out", str(out)],
                              capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        for name in groups:
            [f] = glob.glob(str(out / f"{name}Raster-*.dat"))
            theirs[name].append(np.loadtxt(f, comments="#", skiprows=3, ndmin=2).shape[0] / 40.0)
        for name in ("Trip", "Rew"):  # the model is named after the plan's projection, "<projection>-><population>"
            w = np.loadtxt(out / f"stdp_{ids['To ' + name]}_{ids[name]}-rank0.csv", delimiter=",", skiprows=1)[:, 2]
            assert w.min() >= 0.0 and w.max() <= 6.0 + 1e-9
            theirs["w " + name].append(w.mean())
    for name in ours:
        mean, spread = np.mean(ours[name]), np.std(ours[name], ddof=1)
        if name == "w Trip":  # a known difference, see the docstring
            assert mean * 0.8 < np.mean(theirs[name]) < mean, (ours[name], theirs[name])
            continue
        assert abs(np.mean(theirs[name]) - mean) < 3.0 * spread / np.sqrt(2) + 0.02 * mean, (name, ours[name],
                                                                                             theirs[name])
