"""Training phases (engine.training): validation of the chain, what each phase builds, the
per-sample reset, learning-rate schedules, weights carried between phases, checkpoints whose
resume is bit-identical to an uninterrupted run, and the command line."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import examples
from engine.errors import SimulationError
from engine.project import Project
from engine.training import Protocol, phase_project, phase_specs
from engine.validate import errors_only, validate

ROOT = Path(__file__).resolve().parents[2]


def liquid(n_samples=16, encoding="latency", epochs=30, rest=0.0):
    """A small NALSM-style liquid (125 LIF neurons on a grid, astrocyte-gated STDP on the
    recurrent synapses, softmax readout and branching monitor); deterministic latency input
    unless asked otherwise."""
    project = examples._project("Small liquid", "", dt=1.0, duration=1000.0, seed=2021)
    g = project.graph
    enc = g.add_node("input.dataset", "Digits", (0, 0), encoding=encoding, max_rate=200.0, presentation=100.0,
                     rest=rest, n_samples=n_samples)
    pop = g.add_node("neuron.lif", "Liquid", (560, 0), n=125, layout="grid", grid=(5, 5, 5), spacing=1.0,
                     tau_m=64.0, E_L=0.0, V_th=20.0, V_reset=0.0, t_ref=2.0, R=1.0, synapse="delta")
    inp = g.add_node("synapse.projection", "Input→liquid", (280, 0), p=0.15, weight=3.0, weight_init="constant")
    rec = g.add_node("synapse.projection", "Liquid→liquid", (560, 260), connectivity="distance",
                     distance_C=0.2, distance_lambda=3.0, weight=3.0)
    rule = g.add_node("plasticity.stdp", "Liquid STDP", (280, 330), A_plus=0.015, A_minus=0.015, tau_plus=10.0,
                      tau_minus=10.0, same_step="exclusive", w_min=0.0, w_max=3.0)
    astro = g.add_node("modulator.nalsm_astrocyte", "Astrocyte", (0, 330))
    readout = g.add_node("readout.softmax", "Readout", (840, 0), epochs=epochs)
    bf = g.add_node("monitor.branching", "Branching factor", (840, 200))
    for a, ap, b, bp in [(enc, "spikes", inp, "pre"), (inp, "post", pop, "input"), (pop, "spikes", rec, "pre"),
                         (rec, "post", pop, "input"), (rule, "rule", rec, "rule"), (astro, "modulation", rec, "modulation"),
                         (pop, "spikes", astro, "liquid"), (enc, "spikes", astro, "reference"),
                         (pop, "spikes", readout, "features"), (enc, "labels", readout, "labels"),
                         (pop, "spikes", bf, "population")]:
        g.connect(a.id, ap, b.id, bp)
    return project


def assert_same_spikes(expected, got, min_spikes: int | None = None) -> None:
    """``got`` (results) has every spike recording of ``expected``, spike for spike; with
    ``min_spikes``, each of ``expected``'s recordings has more spikes than that."""
    for name, (steps, idx) in expected.spikes.items():
        if min_spikes is not None:
            assert steps.size > min_spikes, name
        np.testing.assert_array_equal(got.spikes[name][0], steps, err_msg=name)
        np.testing.assert_array_equal(got.spikes[name][1], idx, err_msg=name)


def add_phases(project, *phases):
    """Chain phase nodes built from keyword dicts; returns them."""
    nodes = []
    for i, values in enumerate(phases):
        label = values.pop("label", f"Phase {i + 1}")
        nodes.append(project.graph.add_node("training.phase", label, (i * 250.0, 700.0), **values))
    for a, b in zip(nodes, nodes[1:]):
        project.graph.connect(a.id, "next", b.id, "previous")
    return nodes


def node_of(project, type_id):
    [node] = [n for n in project.graph.nodes.values() if n.type_id == type_id]
    return node


# ---------------------------------------------------------------------------------------------
# validation and phase builds
# ---------------------------------------------------------------------------------------------


def messages(project):
    return [str(p) for p in errors_only(validate(project.graph, project.settings))]


def test_a_valid_chain_has_no_errors_and_runs_in_chain_order():
    project = liquid()
    a, b, c = add_phases(project, dict(label="A"), dict(label="B"), dict(label="C"))
    assert messages(project) == []
    specs = phase_specs(project.graph)
    assert [s.name for s in specs] == ["A", "B", "C"]
    assert [s.analyse for s in specs] == [False, False, True]  # the last phase when none is marked


def test_two_chains_a_loop_a_fork_and_bad_overrides_are_named_errors():
    project = liquid()
    a, b = add_phases(project, dict(label="A"), dict(label="B"))
    c = project.graph.add_node("training.phase", "C", (0, 900))
    assert any("2 separate chains" in m for m in messages(project))
    project.graph.connect(a.id, "next", c.id, "previous")
    assert any("2 phases follow this one" in m and "'A'" in m for m in messages(project))
    project.graph.remove_node(c.id)
    project.graph.connect(b.id, "next", a.id, "previous")
    assert any("loop" in m for m in messages(project))

    project = liquid()
    [a] = add_phases(project, dict(label="A", overrides="Astrocyte.decay = 2"))
    assert any("'overrides'" in m and "decay" in m and "<= 1" in m for m in messages(project))
    a.set("overrides", "Nobody.tau = 1")
    assert any("no node labelled 'Nobody'" in m for m in messages(project))
    a.set("overrides", "Astrocyte.colour = 1")
    assert any("no parameter 'colour'" in m for m in messages(project))


def test_phases_need_exactly_one_dataset():
    project = Project()
    project.graph.add_node("neuron.lif", "P", (0, 0))
    add_phases(project, dict(label="Only"))
    assert any("no Dataset encoder" in m for m in messages(project))


def test_a_phase_without_plasticity_builds_no_rule_and_no_astrocyte():
    project = liquid()
    [frozen] = add_phases(project, dict(label="Frozen", plasticity=False, samples=7, presentation=30.0,
                                        overrides="Readout.epochs = 5"))
    copy = phase_project(project, phase_specs(project.graph)[0])
    types = {n.type_id for n in copy.graph.nodes.values()}
    assert "plasticity.stdp" not in types and "modulator.nalsm_astrocyte" not in types
    assert "training.phase" not in types
    assert node_of(copy, "input.dataset").n_samples == 7
    assert node_of(copy, "input.dataset").presentation == 30.0
    assert node_of(copy, "readout.softmax").epochs == 5
    # the original is untouched
    assert node_of(project, "readout.softmax").epochs == 30 and "plasticity.stdp" in {
        n.type_id for n in project.graph.nodes.values()}


# ---------------------------------------------------------------------------------------------
# per-sample behaviour
# ---------------------------------------------------------------------------------------------


def per_image_responses(project, seed):
    """Liquid spikes of every presented sample relative to its start, keyed by the sample's input
    spike pattern (latency coding: the image itself)."""
    node_of(project, "input.dataset").set("seed", seed)
    protocol = Protocol(project)
    results = protocol.run()
    plan = protocol.plan
    dataset = next(iter(plan.metadata["datasets"].values()))
    starts = np.asarray(dataset["sample_start"])
    period = int(starts[1] - starts[0])
    [source] = [s for s in plan.sources if s.kind == "dataset"]
    [name] = [k for k in results.spikes if k.startswith(node_of(project, "readout.softmax").id)]
    steps, idx = results.spikes[name]
    out = {}
    for s0 in starts:
        m = (steps >= s0) & (steps < s0 + period)
        i = (source.steps >= s0) & (source.steps < s0 + period)
        key = (source.steps[i] - s0).tobytes() + source.indices[i].tobytes()
        out[key] = (steps[m] - s0, idx[m])
    return out


def test_reset_makes_each_sample_independent_of_what_came_before():
    def responses(reset, seed):
        project = liquid(n_samples=60)
        add_phases(project, dict(label="Present", plasticity=False, reset=reset))
        return per_image_responses(project, seed)

    a, b = responses("state", 1), responses("state", 2)
    shared = sorted(set(a) & set(b))
    assert len(shared) >= 1
    for image in shared:  # the same image at another position in another order: the same spikes
        np.testing.assert_array_equal(a[image][0], b[image][0])
        np.testing.assert_array_equal(a[image][1], b[image][1])
    # without the reset the liquid remembers the previous sample
    a, b = responses("none", 1), responses("none", 2)
    differ = [i for i in sorted(set(a) & set(b)) if not np.array_equal(a[i][0], b[i][0])
              or not np.array_equal(a[i][1], b[i][1])]
    assert differ


def test_reset_keeps_weights_random_streams_and_the_adaptive_threshold():
    from engine.compiler import compile_graph
    from engine.runner import Simulation

    project = liquid(encoding="rate")
    sim = Simulation(compile_graph(project))
    backend = sim.backend
    initial = backend.state_arrays()
    backend.lif[0][1] = 0.5  # theta
    backend.run_steps(150)
    before = backend.state_arrays()
    backend.reset_sample_state(initial)
    after = backend.state_arrays()
    for key in backend.SAMPLE_STATE:
        np.testing.assert_array_equal(after[key], initial[key], err_msg=key)
    np.testing.assert_array_equal(after["lif_state"][0], initial["lif_state"][0])
    np.testing.assert_array_equal(after["lif_state"][1], before["lif_state"][1])  # theta kept
    for key in ("weight", "poisson_rng", "pre_traces", "post_traces"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert not np.array_equal(before["weight"], initial["weight"])  # STDP acted, and was kept


def test_state_and_weights_starts_every_sample_from_the_phase_weights():
    project = liquid(n_samples=6, encoding="rate")
    wm = project.graph.add_node("monitor.weights", "W", (900, 400), interval=50.0)
    [rec] = [n for n in project.graph.nodes.values() if n.label == "Liquid→liquid"]
    project.graph.connect(rec.id, "weights", wm.id, "projection")
    add_phases(project, dict(label="Per-sample", reset="state_and_weights"))
    results = Protocol(project).run()
    steps, values = results.weights[wm.id]
    at_start = (steps % 100 == 0) & (steps < results.n_steps)  # the last one is taken at the end
    assert at_start.sum() >= 6 and (~at_start).sum() >= 5
    for v in values[at_start]:
        np.testing.assert_array_equal(v, values[0])
    assert any(not np.array_equal(v, values[0]) for v in values[~at_start])  # learning within samples


def test_learning_rate_zero_freezes_and_the_schedule_scales_the_rule_amplitudes():
    project = liquid(n_samples=5, encoding="rate")
    add_phases(project, dict(label="Still", learning_rate=0.0, learning_rate_end=0.0))
    protocol = Protocol(project)
    protocol.run()
    [name] = [p.name for p in protocol.plan.projections if p.plastic]
    initial = [p for p in protocol.plan.projections if p.name == name][0].weights
    np.testing.assert_array_equal(protocol.final_weights()[name], initial)

    backend = protocol.sim.backend
    backend.set_learning_rate_scale(0.25)
    base_prm, base_astro = backend._base_rates
    np.testing.assert_allclose(backend.rules.r_prm[:, 2:4], 0.25 * base_prm[:, 2:4])
    np.testing.assert_allclose(backend.rules.r_astro_scale, 0.25 * base_astro)
    np.testing.assert_array_equal(backend.rules.r_prm[:, 4:], base_prm[:, 4:])  # time constants untouched
    spec = phase_specs(project.graph)[0]
    assert spec.learning_rate_at(0, 5) == 0.0
    import dataclasses

    ramp = dataclasses.replace(spec, learning_rate=1.0, learning_rate_end=0.2)
    assert [ramp.learning_rate_at(s, 5) for s in range(5)] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])


def test_learned_weights_pass_through_a_frozen_phase():
    project = liquid(n_samples=8, encoding="rate")
    add_phases(project, dict(label="Learn", samples=4, presentation=20.0),
               dict(label="Frozen", plasticity=False, samples=4))
    learn_only = liquid(n_samples=8, encoding="rate")
    add_phases(learn_only, dict(label="Learn", samples=4, presentation=20.0))
    both, first = Protocol(project), Protocol(learn_only)
    both.run()
    first.run()
    assert both.final_weights().keys() == first.final_weights().keys()
    for name, w in first.final_weights().items():
        np.testing.assert_array_equal(both.final_weights()[name], w)
        # ... and the frozen phase simulated with them
        [proj] = [p for p in both.plan.projections if p.name == name]
        np.testing.assert_array_equal(proj.weights, w)


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def three_phases():
    project = liquid(n_samples=14, encoding="rate", epochs=20)
    add_phases(project,
               dict(label="Init", samples=8, presentation=20.0, learning_rate=1.0, learning_rate_end=0.2,
                    checkpoint_every=3),
               dict(label="Frozen", samples=4, presentation=20.0, plasticity=False, reset="none"),
               dict(label="Features", reset="state_and_weights", presentation=40.0, analyse=True,
                    overrides="Astrocyte.decay = 0.99", checkpoint_every=5))
    return project


@pytest.fixture(scope="module")
def uninterrupted():
    return Protocol(three_phases()).run()


def stop_then_resume(make_project, checkpoint, stop_after_chunks, uninterrupted, backend="numba"):
    """Stop a run after its ``stop_after_chunks``-th chunk, resume it from the checkpoint, and check
    that the resumed run has the uninterrupted run's spikes; returns the resumed results."""
    protocol = Protocol(make_project(), backend=backend, checkpoint=checkpoint)
    protocol.target_chunk_s = 0.0  # hand every chunk to the callback
    seen = []

    def stop_soon(chunk):
        seen.append(chunk)
        if len(seen) == stop_after_chunks:
            protocol.stop()

    stopped = protocol.run(callback=stop_soon)
    assert stopped.stopped and checkpoint.is_file()
    assert stopped.n_steps < uninterrupted.n_steps
    resumed = Protocol(make_project(), backend=backend, checkpoint=checkpoint, resume=True).run()
    assert not resumed.stopped and resumed.n_steps == uninterrupted.n_steps
    assert_same_spikes(uninterrupted, resumed)
    return resumed


@pytest.mark.parametrize("stop_after_chunks", [2, 8, 9, 17, 21])
def test_a_stopped_run_resumes_bit_identical(tmp_path, uninterrupted, stop_after_chunks):
    checkpoint = tmp_path / "run.checkpoint.npz"
    resumed = stop_then_resume(three_phases, checkpoint, stop_after_chunks, uninterrupted)
    for node, r in uninterrupted.readouts.items():
        np.testing.assert_array_equal(resumed.readouts[node]["predicted"], r["predicted"])
        assert resumed.readouts[node]["accuracy"] == r["accuracy"]
    assert not checkpoint.exists()  # a finished run leaves no stale checkpoint


def test_resume_refuses_a_missing_or_foreign_checkpoint(tmp_path):
    checkpoint = tmp_path / "c.npz"
    with pytest.raises(SimulationError, match="no checkpoint to resume from"):
        Protocol(three_phases(), checkpoint=checkpoint, resume=True).run()
    protocol = Protocol(three_phases(), checkpoint=checkpoint)
    protocol.target_chunk_s = 0.0
    protocol.run(callback=lambda chunk: protocol.stop())
    changed = three_phases()
    node_of(changed, "modulator.nalsm_astrocyte").set("w_astro", 0.02)
    with pytest.raises(SimulationError, match="another version of this project"):
        Protocol(changed, checkpoint=checkpoint, resume=True).run()
    checkpoint.write_bytes(b"not a zip")
    with pytest.raises(SimulationError, match="cannot be read"):
        Protocol(three_phases(), checkpoint=checkpoint, resume=True).run()


def test_phases_are_refused_on_backends_without_sample_resets():
    from engine.backends import backend_supported_node_types

    assert "training.phase" not in backend_supported_node_types("nest")
    assert "training.phase" in backend_supported_node_types("torch")


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_cli_runs_the_phases_and_reports_each(tmp_path):
    project = liquid(n_samples=12, encoding="rate", epochs=10)
    add_phases(project, dict(label="Init", samples=6, presentation=20.0),
               dict(label="Features", reset="state_and_weights", presentation=40.0))
    path = project.save(tmp_path / "phased.swproj")
    done = run_cli(str(path), "-q", "--save-weights", str(tmp_path / "learned.swproj"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "phase 1 'Init': 6 samples x 20 ms" in done.stdout
    assert "phase 2 'Features': 12 samples x 40 ms" in done.stdout
    assert "readout 'Readout' (softmax): test accuracy" in done.stdout
    assert "learned weights of 1 projection(s) written" in done.stdout
    refused = run_cli(str(path), "--duration", "1s", cwd=tmp_path)
    assert refused.returncode == 1 and "--duration does not apply" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = run_cli(str(path), "--resume", cwd=tmp_path)
    assert missing.returncode == 1 and "no checkpoint to resume from" in missing.stderr


# ---------------------------------------------------------------------------------------------
# parallel presentation
# ---------------------------------------------------------------------------------------------


def frozen_features(workers, n_samples=12):
    project = liquid(n_samples=n_samples, encoding="rate")
    add_phases(project, dict(label="Learn", samples=4, presentation=20.0),
               dict(label="Features", plasticity=False, reset="state", workers=workers))
    protocol = Protocol(project)
    return protocol, protocol.run()


def test_parallel_workers_give_the_serial_spikes_when_nothing_carries_over():
    serial, a = frozen_features(1)
    parallel, b = frozen_features(3)
    assert a.n_steps == b.n_steps
    assert_same_spikes(a, b)
    for node, r in a.readouts.items():
        np.testing.assert_array_equal(b.readouts[node]["predicted"], r["predicted"])
    assert parallel.reports[1].samples == 12


def test_parallel_workers_refuse_random_streams_and_no_reset():
    project = liquid(n_samples=6, encoding="rate")
    noise = project.graph.add_node("input.poisson", "Noise", (0, 500), n=10, rate=5.0)
    [pop] = [n for n in project.graph.nodes.values() if n.type_id == "neuron.lif"]
    prj = project.graph.add_node("synapse.projection", "Noise→liquid", (200, 500))
    project.graph.connect(noise.id, "spikes", prj.id, "pre")
    project.graph.connect(prj.id, "post", pop.id, "input")
    [phase] = add_phases(project, dict(label="Par", plasticity=False, workers=2))
    with pytest.raises(SimulationError, match="'Noise' follows one stream.*set workers to 1"):
        Protocol(project).run()
    phase.set("reset", "none")
    assert any("'workers'" in m and "reset between them" in m for m in messages(project))


# ---------------------------------------------------------------------------------------------
# NALSM baselines
# ---------------------------------------------------------------------------------------------


def test_baselines_are_the_same_liquid_without_plasticity_and_without_the_astrocyte():
    from engine.training import baseline_projects

    project = liquid(n_samples=8, encoding="rate", epochs=5)
    add_phases(project, dict(label="Init", samples=4, presentation=20.0),
               dict(label="Features", reset="state_and_weights", overrides="Astrocyte.decay = 0.99; Readout.epochs = 4"))
    assert baseline_projects(project) == []
    node_of(project, "modulator.nalsm_astrocyte").set("compare_baselines", True)
    node_of(project, "modulator.nalsm_astrocyte").set("lsm_weight", 1.25)
    (lsm_name, lsm), (stdp_name, stdp) = baseline_projects(project)
    assert (lsm_name, stdp_name) == ("LSM", "LSM + STDP")
    lsm_types = [n.type_id for n in lsm.graph.nodes.values()]
    assert "plasticity.stdp" not in lsm_types and "modulator.nalsm_astrocyte" not in lsm_types
    assert [s.name for s in phase_specs(lsm.graph)] == ["Features"]  # Init only shaped weights
    [rec] = [n for n in lsm.graph.nodes.values() if n.label == "Liquid→liquid"]
    assert rec.weight == 1.25 and rec.weight_init == "constant"
    stdp_types = [n.type_id for n in stdp.graph.nodes.values()]
    assert "plasticity.stdp" in stdp_types and "modulator.nalsm_astrocyte" not in stdp_types
    assert [s.overrides for s in phase_specs(stdp.graph)] == ["", "Readout.epochs = 4"]
    for variant in (lsm, stdp):
        assert messages(variant) == []


def test_a_run_with_baselines_reports_three_rows():
    project = liquid(n_samples=10, encoding="rate", epochs=5)
    add_phases(project, dict(label="Init", samples=4, presentation=20.0),
               dict(label="Features", reset="state_and_weights"))
    node_of(project, "modulator.nalsm_astrocyte").set("compare_baselines", True)
    protocol = Protocol(project)
    results = protocol.run()
    rows = results.settings["baselines"]
    assert [r["model"] for r in rows] == ["NALSM", "LSM", "LSM + STDP"]
    assert rows[0]["accuracy"] == next(iter(results.readouts.values()))["accuracy"]
    # the variants differ: the static LSM at |w| = 1 fires far less than the plastic liquids
    assert rows[1]["rate_hz"] < rows[0]["rate_hz"] and rows[1]["rate_hz"] < rows[2]["rate_hz"]
    from engine.cli_run import baseline_table

    table = baseline_table(rows)
    assert table[0].split() == ["model", "test", "accuracy", "branching", "factor", "liquid", "rate"]
    assert table[2].startswith("LSM ") and "%" in table[2]


# ---------------------------------------------------------------------------------------------
# batches on the torch backend
# ---------------------------------------------------------------------------------------------


def batched_features(backend, batch, n_samples=12, **protocol_options):
    project = liquid(n_samples=n_samples, encoding="rate")
    add_phases(project, dict(label="Learn", samples=4, presentation=20.0),
               dict(label="Features", plasticity=False, reset="state", batch=batch))
    project.settings.backend = backend
    assert not messages(project)
    protocol = Protocol(project, backend=backend, **protocol_options)
    return protocol, protocol.run()


@pytest.fixture(scope="module")
def numba_features():
    return batched_features("numba", 1)


@pytest.mark.parametrize("batch", [1, 5])
def test_torch_batches_give_numbas_spikes_and_readouts(numba_features, batch):
    """A plastic phase one sample after another (the host rule kernels), then a frozen phase in
    batches of 5 (12 samples: the last batch is partly empty): the spikes, the learned weights and
    the readout's predictions equal numba's."""
    reference, a = numba_features
    protocol, b = batched_features("torch", batch)
    assert a.n_steps == b.n_steps and b.spikes
    assert_same_spikes(a, b)
    for node, r in a.readouts.items():
        np.testing.assert_array_equal(b.readouts[node]["predicted"], r["predicted"])
    for name, w in reference.final_weights().items():
        np.testing.assert_array_equal(protocol.final_weights()[name], w)
    assert protocol.reports[1].samples == 12


def test_batch_settings_that_cannot_work_are_named():
    project = liquid(n_samples=6, encoding="rate")
    [phase] = add_phases(project, dict(label="Side by side", batch=4, reset="none"))
    assert any("'batch'" in m and "reset network" in m for m in messages(project))
    phase.set("reset", "state")
    assert any("'batch'" in m and "weights the previous one left" in m for m in messages(project))
    phase.set("reset", "state_and_weights")
    assert not messages(project)
    warnings = [str(p) for p in validate(project.graph, project.settings) if p.severity == "warning"]
    assert any("batch 4 has no effect on the numba backend" in w for w in warnings)
    project.settings.backend = "torch"
    assert not any("batch" in str(p) for p in validate(project.graph, project.settings))


def three_phases_on_torch():
    project = three_phases()
    node_of_label = {n.label: n for n in project.graph.nodes.values()}
    node_of_label["Features"].set("batch", 4)
    project.settings.backend = "torch"
    return project


@pytest.fixture(scope="module")
def uninterrupted_torch():
    return Protocol(three_phases_on_torch(), backend="torch").run()


@pytest.mark.parametrize("stop_after_chunks", [2, 9, 12])
def test_a_stopped_torch_run_with_a_batched_phase_resumes_identical(tmp_path, uninterrupted_torch,
                                                                     stop_after_chunks):
    """Stops in the scheduled plastic phase (batch 1, host rule kernels), the frozen one, and between
    two batches of the plastic batched phase: the resumed run equals the uninterrupted one."""
    checkpoint = tmp_path / "run.checkpoint.npz"
    stop_then_resume(three_phases_on_torch, checkpoint, stop_after_chunks, uninterrupted_torch, backend="torch")
    assert not checkpoint.exists()


def test_a_noisy_frozen_phase_gives_the_same_spikes_for_any_batch():
    """Background Poisson noise in a batched phase: one stream per copy, keyed by the sample."""
    def run(batch):
        project = liquid(n_samples=7, encoding="rate")
        noise = project.graph.add_node("input.poisson", "Noise", (0, 500), n=10, rate=20.0)
        [pop] = [n for n in project.graph.nodes.values() if n.type_id == "neuron.lif"]
        prj = project.graph.add_node("synapse.projection", "Noise→liquid", (200, 500), weight=5.0)
        project.graph.connect(noise.id, "spikes", prj.id, "pre")
        project.graph.connect(prj.id, "post", pop.id, "input")
        add_phases(project, dict(label="Features", plasticity=False, reset="state", batch=batch))
        project.settings.backend = "torch"
        return Protocol(project, backend="torch").run()

    a, b = run(2), run(3)
    assert_same_spikes(a, b, min_spikes=100)


def test_a_scheduled_plastic_phase_gives_the_same_spikes_for_any_batch():
    """Each copy learns at its own sample's point of the learning-rate schedule, so how the samples
    are grouped into batches changes nothing; the schedule itself does change the spikes."""
    def run(batch, learning_rate_end=0.05):
        project = liquid(n_samples=7, encoding="rate")
        add_phases(project, dict(label="Features", reset="state_and_weights", presentation=60.0, batch=batch,
                                 learning_rate=3.0, learning_rate_end=learning_rate_end))
        project.settings.backend = "torch"
        assert not messages(project)
        return Protocol(project, backend="torch").run()

    a, b = run(2), run(3)
    assert_same_spikes(a, b, min_spikes=100)
    flat = run(3, learning_rate_end=3.0)
    assert any(not np.array_equal(flat.spikes[name][1], idx) for name, (_, idx) in a.spikes.items())
