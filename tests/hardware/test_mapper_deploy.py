"""Graph to board mapping, scheduling, and deploys against the twin, the simulation and the
virtual board."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.project import Project, SimulationSettings
from hardware.deploy import deploy, float_simulation, trials_of
from hardware.errors import MappingError
from hardware.neurocorex import protocol as p
from hardware.neurocorex.mapper import MapOptions, map_project
from hardware.neurocorex.twin import NeuroCoreXTwin

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "resources/examples/neurocorex_digits.swproj"


def spike_project(times, indices, n_in=4, n_out=3, weight=6.0, V_th=10.0, t_ref=0.0, recurrent=None):
    """Spike-train inputs -> delta LIF outputs, integer weights (exactly representable)."""
    project = Project(settings=SimulationSettings(dt=1.0, duration=60.0, seed=1))
    g = project.graph
    src = g.add_node("input.spike_train", "In", n=n_in, times=times, indices=indices)
    out = g.add_node("neuron.lif", "Out", n=n_out, tau_m=1e5, E_L=0.0, V_reset=0.0, V_th=V_th,
                     t_ref=t_ref, R=1.0, synapse="delta")
    prj = g.add_node("synapse.projection", "FF", connectivity="all_to_all", weight=weight, delay=1.0)
    g.connect(src.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", out.id, "input")
    if recurrent is not None:
        rec = g.add_node("synapse.projection", "Rec", connectivity="one_to_one", weight=recurrent,
                         delay=1.0)
        g.connect(out.id, "spikes", rec.id, "pre")
        g.connect(rec.id, "post", out.id, "input")
    return project


def test_digits_example_maps_onto_the_board_layout():
    m = map_project(Project.load(DIGITS))
    [slots] = m.neuron_slots.values()
    assert slots.tolist() == list(range(4, 24, 2))  # gaps against the adjacent-neuron artefact
    [addresses] = m.input_addresses.values()
    assert addresses.tolist() == list(range(2, 66))  # as the published host code
    ff = m.image.ff_weights
    used_rows = np.nonzero(np.abs(ff).sum(axis=1))[0]
    assert set(used_rows) <= set((slots + p.FF_ROW_OFFSET).tolist())
    assert not ff[:, 66:].any() and not ff[:, :2].any()
    assert m.image.thresholds[slots].max() < 128 and (m.image.thresholds[slots] > 0).all()
    assert m.silent_address == 95 and not ff[:, 95].any()
    q = m.quantisation["Digit weights"]
    assert q["synapses"] == 640 and q["max_abs_error_board_units"] <= 0.5 + 1e-9


def test_everything_the_board_cannot_run_is_refused_with_its_node():
    project = spike_project([1.0], [0], n_out=95)
    g = project.graph
    izh = g.add_node("neuron.izhikevich", "Izh", n=2)
    astro = g.add_node("modulator.nalsm_astrocyte", "Astro")
    g.connect(izh.id, "spikes", astro.id, "liquid")
    rule = g.add_node("plasticity.stdp", "STDP")
    ff = [n for n in g.nodes.values() if n.label == "FF"][0]
    g.connect(rule.id, "rule", ff.id, "rule")
    g.set_param(ff.id, "delay", 5.0)
    out = [n for n in g.nodes.values() if n.label == "Out"][0]
    g.set_param(out.id, "synapse", "exponential")
    with pytest.raises(MappingError) as info:
        map_project(project)
    text = str(info.value)
    for needle in ("'Izh'", "LIF only", "'Astro'", "'STDP'", "transposed", "95 neurons; the board has 90",
                   "no synaptic delays", "'FF'", "exponential synapses need an approximation",
                   "--exponential delta"):
        assert needle in text, needle


def test_exponential_synapses_map_with_the_users_approximation():
    project = spike_project([1.0], [0])
    out = [n for n in project.graph.nodes.values() if n.label == "Out"][0]
    project.graph.set_param(out.id, "synapse", "exponential")
    project.graph.set_param(out.id, "tau_m", 20.0)
    m = map_project(project, MapOptions(exponential="delta"))
    assert m.image.leak > 0
    assert any("wrap" in w.message for w in m.warnings)


def test_simultaneous_inputs_are_serialised_and_runs_end_on_a_silent_event():
    m = map_project(spike_project([2.0, 2.0, 2.0, 5.0], [0, 1, 2, 3]))
    [src] = m.input_addresses
    sched = m.schedule({src: (np.array([2, 2, 2, 5]), np.array([0, 1, 2, 3]))}, 8)
    steps = p.release_steps(sched.events)
    addr = [a for _, a in sched.events]
    # model steps 0,1 take one board step each, step 2 three, then one each
    assert sched.board_start.tolist() == [0, 1, 2, 5, 6, 7, 8, 9, 10]
    assert list(zip(steps.tolist(), addr)) == [(2, 2), (3, 3), (4, 4), (7, 5), (11, 95)]


def test_long_gaps_are_bridged_with_silent_events():
    m = map_project(spike_project([0.0], [0]))
    [src] = m.input_addresses
    sched = m.schedule({src: (np.array([0]), np.array([0]))}, 600)
    assert max(dt for dt, _ in sched.events) <= 255
    assert p.release_steps(sched.events)[-1] == 601


@pytest.mark.parametrize("case", ["feedforward", "refractory", "recurrent"])
def test_twin_spikes_equal_the_float_simulation_when_quantisation_is_exact(case):
    rng = np.random.default_rng(3)
    times = np.sort(rng.choice(np.arange(0, 50, 3), 12, replace=False)).astype(float)
    indices = rng.integers(0, 4, times.size)
    kw = dict(feedforward={}, refractory=dict(t_ref=0.0, weight=11.0),
              recurrent=dict(recurrent=3.0, weight=4.0))[case]
    project = spike_project(times.tolist(), indices.tolist(), **kw)
    m = map_project(project, MapOptions(weight_scale=1.0))
    from engine.compiler import compile_graph

    plan = compile_graph(project)
    [trial] = trials_of(project, plan, m)
    sched = m.schedule(trial.source_spikes, trial.n_model_steps)
    run = NeuroCoreXTwin(m.image, power_up_byte=False).run(sched.events)
    board = m.population_spikes(run.frames, sched)
    sim = float_simulation(plan, trial, list(m.neuron_slots))
    for pop in m.neuron_slots:
        b = sorted(zip(board[pop][0].tolist(), board[pop][1].tolist()))
        f = sorted(zip(np.asarray(sim[pop][0]).tolist(), np.asarray(sim[pop][1]).tolist()))
        assert b and b == f, (case, b, f)


def test_deploy_digits_to_the_twin_reports_accuracy():
    report = deploy(Project.load(DIGITS), None, max_trials=30, log=lambda m: None)
    assert all(report.frame_agreement)
    assert report.accuracy(report.board_counts) >= 0.6  # 10-class chance is 0.1
    assert report.accuracy(report.float_counts) >= 0.5
    lines = report.summary()
    assert any(line.startswith("accuracy  board") for line in lines)


def test_deploy_cli_against_the_virtual_board(tmp_path):
    emulator = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "board", "emulate", "--fast",
                                 "--seconds", "60"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = emulator.stdout.readline().strip().split()[-1]
        out = subprocess.run([sys.executable, str(ROOT / "main.py"), "deploy", str(DIGITS), "--port", port,
                              "--samples", "8", "--out", str(tmp_path / "deploy.npz")],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    finally:
        emulator.terminate()
        emulator.wait(10)
    assert out.returncode == 0, out.stderr
    assert "uploaded and verified 9215 FF weights" in out.stderr
    assert "board and twin frames identical in 8/8 runs" in out.stdout
    assert "accuracy  board" in out.stdout
    data = np.load(tmp_path / "deploy.npz", allow_pickle=False)
    assert np.array_equal(data["board_counts"], data["twin_counts"])


def test_deploy_of_an_unmappable_project_is_one_clear_error(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "deploy",
                          str(ROOT / "resources/examples/cuba.swproj")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "4000 neurons; the board has 90" in out.stderr


# ------------------------------------------------------------------ board vs twin, per run


def digits_mapping():
    project = Project.load(DIGITS)
    return project, map_project(project)


def test_a_run_that_differs_is_named_by_step_and_model_neurons():
    from hardware.deploy import ModelNames, compare_run

    project, m = digits_mapping()
    names = ModelNames(project, m)
    slots = m.neuron_slots["lif_1"]
    sched = m.schedule({"dataset_1": (np.array([0, 0, 3]), np.array([5, 9, 7]))}, 6)
    # board steps: model step 0 takes 2 board steps (two inputs), then one each: starts 0 2 3 4 5 6 7
    assert list(sched.board_start) == [0, 2, 3, 4, 5, 6, 7]
    twin = np.zeros((sched.board_steps + 1, 90), bool)
    board = twin.copy()
    board[5, slots[1] - 4] = True  # board step 5 -> the spike of model step 3 (board fires one step later)
    board[5, 1] = True  # slot 5: between two Classes neurons, not used by the model
    twin[6, slots[2] - 4] = True
    assert compare_run(twin, twin, sched, names, 0, 1, 7) is None
    mismatch = compare_run(board, twin, sched, names, 2, 20, 7)
    assert (mismatch.board_step, mismatch.model_step, mismatch.differing_steps) == (5, 3, 2)
    assert str(mismatch) == ("run 3 of 20 (sample label 7): the board differs from its twin in 2 of 8 steps; "
                             "first at model step 3 (board step 5): only the board fired Classes[1] and "
                             "1 board neuron the model does not use; only the twin fired nothing")
    assert "k=" not in str(mismatch) and "slot" not in str(mismatch)


def test_deploy_warns_per_run_when_the_board_sends_garbage(fast_board):
    from hardware.neurocorex.driver import NeuroCoreXDriver

    fast_board.inject_fault("garbage", after_bytes=20, skip=1)  # the second run's stream
    messages, agreement = [], []
    with NeuroCoreXDriver(fast_board.device_path, timeout=2.0) as driver:
        report = deploy(Project.load(DIGITS), driver, max_trials=3, simulate=False, log=messages.append,
                        on_agreement=lambda i, mismatch: agreement.append((i, mismatch is None)))
    assert report.frame_agreement == [True, False, True]
    assert agreement == [(0, True), (1, False), (2, True)]
    [warning] = [m for m in messages if m.startswith("warning: run")]
    assert warning.startswith("warning: run 2 of 3 (sample label ")
    assert "the board differs from its twin in" in warning and "first at" in warning
    assert report.mismatches[0].run == 1
    assert "identical in 2/3 runs" in report.summary()[0]


def test_verify_failure_in_a_deploy_names_the_model_weight(fast_board):
    from hardware.errors import VerifyError
    from hardware.neurocorex.driver import NeuroCoreXDriver

    project, m = digits_mapping()
    with NeuroCoreXDriver(fast_board.device_path, timeout=2.0) as driver:
        driver.upload(m.image)
        address = int(m.input_addresses["dataset_1"][3])
        row = int(m.neuron_slots["lif_1"][1]) + p.FF_ROW_OFFSET
        original = int(m.image.ff_weights[row, address])
        # a RAM cell of the board changes right after the upload (a flipped bit): the deploy's
        # verification must name the model's weight, not a RAM row and column
        upload = driver.upload
        driver.upload = lambda image, **kw: (upload(image, **kw), driver.read_back_ff(),  # upload taken
                                             fast_board.poke_ff_weight(row, address, original + 1))
        with pytest.raises(VerifyError, match=rf"the weight Digits\[3\] -> Classes\[1\] reads back as "
                                              rf"{original + 1}, {original} was uploaded") as info:
            deploy(project, driver, max_trials=1, simulate=False, log=lambda msg: None)
    assert "k=" not in str(info.value) and "row" not in str(info.value)


def test_onchip_stdp_deploy_reads_the_learned_weights_back_and_they_match_the_twin(fast_board):
    from hardware.neurocorex.driver import NeuroCoreXDriver

    project = Project.load(DIGITS)
    options = MapOptions(onchip_stdp=(3, 3, 1, 1))
    messages = []
    with NeuroCoreXDriver(fast_board.device_path, timeout=2.0) as driver:
        report = deploy(project, driver, options=options, max_trials=4, simulate=False, log=messages.append)
    twin_only = deploy(project, None, options=options, max_trials=4, simulate=False, log=lambda m: None)
    uploaded = map_project(project, options).image.ff_weights
    assert report.readback is not None
    changed = report.readback != uploaded
    changed[-1, -1] = False
    assert changed.any()  # the board's STDP rewrote RAM entries during the runs
    assert np.array_equal(report.readback[:95], twin_only.readback[:95])
    assert not any("differ from the twin" in m for m in messages)
    assert any("does not train the network's own feed-forward synapses" in m for m in messages)
    assert all(report.frame_agreement)


def test_deploy_without_stdp_does_not_read_back_after_the_runs():
    report = deploy(Project.load(DIGITS), None, max_trials=2, simulate=False, log=lambda m: None)
    assert report.readback is None


def start_emulator(*extra):
    emulator = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "board", "emulate", "--fast",
                                 "--seconds", "60", *extra], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return emulator, emulator.stdout.readline().strip().split()[-1]


def run_deploy(port, *extra):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "deploy", str(DIGITS), "--port", port,
                           "--no-simulation", *extra], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("strict", [False, True])
def test_deploy_cli_reports_garbage_per_run_and_strict_fails(strict):
    emulator, port = start_emulator("--fault", "garbage", "--fault-after", "30")
    try:
        out = run_deploy(port, "--samples", "3", *(["--strict"] if strict else []))
    finally:
        emulator.terminate()
        emulator.wait(10)
    assert "Traceback" not in out.stderr
    assert "warning: run 1 of 3 (sample label " in out.stderr
    assert "board and twin frames identical in 2/3 runs" in out.stdout
    if strict:
        assert out.returncode == 1
        assert out.stderr.splitlines()[-1].startswith("synweave: error: the board differed from its twin in "
                                                      "1 of 3 runs (run 1;")
    else:
        assert out.returncode == 0


def test_deploy_cli_error_starts_on_a_line_of_its_own():
    emulator, port = start_emulator("--fault", "disconnect", "--fault-after", "5", "--fault-skip", "1")
    try:
        out = run_deploy(port, "--samples", "4", "--timeout", "1")
    finally:
        emulator.terminate()
        emulator.wait(10)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    [error] = [line for line in out.stderr.split("\n") if "synweave: error:" in line]
    assert error.startswith("synweave: error: lost the connection")  # not glued to the "runs [##..." bar
    assert "runs       [" in out.stderr  # the bar of the first run was drawn
