"""Kernel quality (MODELS.md §6.4) as a node: SP from the run, AP from a second run on noisy pixels.

SP is checked against ranks computed here from a spike monitor's recording (counts by a plain loop
over the samples), AP against the SP of a project built by hand with the encoder's pixel noise.
"""

from __future__ import annotations

import numpy as np

import main
from engine.readouts import kernel_rank
from engine.runner import Simulation, SimulationResults
from engine.training import Protocol, kernel_quality_projects
from tests.engine.test_training import add_phases, liquid, node_of


def with_kernel_quality(project, monitor=False, **params):
    """Add a Kernel quality node (and optionally a spike monitor) on the liquid of ``liquid()``."""
    g = project.graph
    pop = next(n for n in g.nodes.values() if n.label == "Liquid")
    enc = node_of(project, "input.dataset")
    kq = g.add_node("monitor.kernel_quality", "Kernel quality", (840, 400), **params)
    g.connect(pop.id, "spikes", kq.id, "population")
    g.connect(enc.id, "labels", kq.id, "labels")
    if monitor:
        mon = g.add_node("monitor.spikes", "Liquid spikes", (840, 600))
        g.connect(pop.id, "spikes", mon.id, "source")
    return kq


def latency_liquid(n_samples=40):
    project = liquid(n_samples=n_samples, encoding="latency")
    project.settings.duration = n_samples * 100.0
    return project


def counts_by_loop(steps, indices, n, starts, T):
    out = np.zeros((len(starts), n))
    for s, start in enumerate(starts):
        for k, i in zip(steps, indices):
            if start <= k < start + T:
                out[s, i] += 1
    return out


def reference_sp(sim, results, node_id):
    """SP of a run from its spike monitor 'Liquid spikes', computed here."""
    info = sim.plan.metadata["kernel_quality"][node_id]
    [size] = info["sizes"]
    dataset = next(iter(sim.plan.metadata["datasets"].values()))
    T = int(dataset["presentation_steps"])
    starts = np.asarray(dataset["sample_start"])
    whole = starts + T <= results.n_steps
    monitor = next(name for name in results.spikes if not name.startswith(node_id))
    steps, indices = results.spikes[monitor]
    counts = counts_by_loop(steps, indices, size, starts[whole], T)
    return kernel_rank(counts, np.asarray(dataset["labels"])[whole], info["per_class"], info["draws"], info["seed"])


def test_sp_and_ap_are_the_ranks_of_the_clean_and_the_noisy_run():
    project = latency_liquid()
    kq = with_kernel_quality(project, monitor=True, per_class=20, draws=10)
    sim = Simulation(project)
    res = sim.run()
    k = res.kernel_quality[kq.id]
    assert k["SP"] == reference_sp(sim, res, kq.id)
    assert (k["n_samples"], k["n_neurons"], k["n_columns"], k["draws"]) == (40, 125, 200, 10)
    # AP: the same project built by hand with noisy pixels, its kernel-quality node without noise
    noisy = latency_liquid()
    noisy_kq = with_kernel_quality(noisy, monitor=True, per_class=20, draws=10, pixel_noise=0.0)
    node_of(noisy, "input.dataset").set("pixel_noise", 125.0 / 255.0)
    noisy_sim = Simulation(noisy)
    noisy_res = noisy_sim.run()
    assert "AP" not in noisy_res.kernel_quality[noisy_kq.id]  # no noise asked for: SP alone
    assert k["AP"] == reference_sp(noisy_sim, noisy_res, noisy_kq.id)
    assert k["SP_minus_AP"] == k["SP"] - k["AP"]
    assert k["SP"] != k["AP"], "noise changes the responses' rank here (latency code, 200 columns)"
    # the noisy run saw the same samples in the same order, with other spikes
    dataset, noisy_dataset = (next(iter(s.plan.metadata["datasets"].values())) for s in (sim, noisy_sim))
    np.testing.assert_array_equal(dataset["labels"], noisy_dataset["labels"])
    name = "Liquid spikes"
    clean_spikes = next(v for m, v in res.spikes.items() if not m.startswith(kq.id))
    noisy_spikes = next(v for m, v in noisy_res.spikes.items() if not m.startswith(noisy_kq.id))
    assert clean_spikes[0].size != noisy_spikes[0].size, name


def test_the_noisy_project_keeps_seeds_and_drops_other_analyses():
    project = latency_liquid()
    node_of(project, "modulator.nalsm_astrocyte").set("compare_baselines", True)
    kq = with_kernel_quality(project, pixel_noise=0.3)
    other = with_kernel_quality(project, pixel_noise=0.0)
    [(node_id, variant)] = kernel_quality_projects(project)
    assert node_id == kq.id
    types = sorted(n.type_id for n in variant.graph.nodes.values())
    assert "readout.softmax" not in types and "monitor.branching" not in types and other.id not in variant.graph
    assert variant.graph.node(kq.id).pixel_noise == 0.0
    assert node_of(variant, "input.dataset").pixel_noise == 0.3
    assert node_of(variant, "modulator.nalsm_astrocyte").compare_baselines is False
    assert variant.settings.seed == project.settings.seed
    assert node_of(project, "input.dataset").pixel_noise == 0.0  # the project itself is untouched


def test_a_protocol_measures_the_analysed_phase_and_keeps_the_result_in_the_npz(tmp_path):
    from engine.compiler import node_seed

    project = liquid(n_samples=30, encoding="latency")
    add_phases(project, dict(label="Init", samples=8, presentation=20.0),
               dict(label="Features", reset="state_and_weights"))
    kq = with_kernel_quality(project, monitor=True, per_class=10, draws=5)
    seen = []
    protocol = Protocol(project, on_progress=lambda p: seen.append(p.phase_name))
    res = protocol.run()
    k = res.kernel_quality[kq.id]
    assert k["n_samples"] == 30 and {"SP", "AP", "SP_minus_AP"} <= set(k)
    # SP from the monitor on the protocol's timeline: the Features samples follow 8 x 20 Init steps
    steps, indices = next(v for m, v in res.spikes.items() if not m.startswith(kq.id) and "/spikes:" not in m)
    counts = counts_by_loop(steps, indices, 125, 8 * 20 + np.arange(30) * 100, 100)
    labels = protocol.sim.plan.metadata["datasets"][node_of(project, "input.dataset").id]["labels"]
    assert k["SP"] == kernel_rank(counts, labels, 10, 5, node_seed(project.settings.seed, kq, "kernel_quality"))
    assert "Noisy inputs (AP): Features" in seen and "Noisy inputs (AP): Init" in seen
    res.save(tmp_path / "run.npz")
    again = SimulationResults.load(tmp_path / "run.npz")
    assert again.kernel_quality[kq.id]["AP"] == k["AP"] and again.kernel_quality[kq.id]["SP"] == k["SP"]


def test_a_stop_during_the_noisy_run_leaves_sp_alone():
    """One Stop, pressed while the noisy run is still being built (its first progress report), ends
    it: the noisy run does not go on to completion."""
    project = latency_liquid()
    kq = with_kernel_quality(project, per_class=10, draws=5)
    noisy_reports = []

    def stop_in_noisy_run(progress):
        if "noisy inputs" in progress.message:
            noisy_reports.append(progress.phase)
            if len(noisy_reports) == 1:
                sim.stop()
    sim = Simulation(project, on_progress=stop_in_noisy_run)
    res = sim.run()
    assert noisy_reports[0] != "run" and "run" not in noisy_reports, "stopped before it stepped"
    assert "SP" in res.kernel_quality[kq.id] and "AP" not in res.kernel_quality[kq.id]
    from engine.cli_run import kernel_quality_text

    assert "no AP: the run on noisy inputs did not finish" in kernel_quality_text(res.kernel_quality[kq.id])


def test_labels_that_are_not_a_data_set_are_an_analysis_problem():
    project = latency_liquid()
    kq = with_kernel_quality(project)
    g = project.graph
    g.disconnect(next(e for e in g.edges if e.dst == kq.id and e.dst_port == "labels"))
    g.connect(node_of(project, "readout.softmax").id, "prediction", kq.id, "labels")  # labels, not samples
    res = Simulation(project).run()
    assert kq.id not in res.kernel_quality
    assert any("kernel quality 'Kernel quality'" in p and "not a data-set encoder" in p for p in res.analysis_problems)


def test_run_prints_sp_and_ap(tmp_path, capsys):
    project = latency_liquid(n_samples=20)
    with_kernel_quality(project, per_class=5, draws=5)
    project.save(tmp_path / "kq.swproj")
    assert main.main(["run", str(tmp_path / "kq.swproj")]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("kernel quality"))
    assert "'Kernel quality': SP " in line and ", AP " in line and "SP - AP" in line
    assert "rank of 125 neurons x 50 samples, mean of 5 draws over 20 samples" in line


def test_pixel_noise_on_the_encoder_changes_its_spikes_reproducibly():
    def spikes(noise, seed=2021):
        project = latency_liquid(n_samples=5)
        project.settings.seed = seed
        node_of(project, "input.dataset").set("pixel_noise", noise)
        enc = Simulation(project).plan.sources[0].encoder
        return enc.steps, enc.indices

    clean, noisy, again = spikes(0.0), spikes(0.3), spikes(0.3)
    assert clean[0].size != noisy[0].size
    for a, b in zip(noisy, again):
        np.testing.assert_array_equal(a, b)
    assert spikes(0.3, seed=7)[0].size != noisy[0].size




def test_nalsms_liquid_is_ranked_over_both_populations():
    """The NALSM example's liquid is two populations (800 E, 200 I): wired side by side into one
    node, the rank runs over all 1000 neurons (a short protocol: 30 samples per phase)."""
    from engine.project import Project, example_projects

    project = Project.load(next(p for p in example_projects() if p.stem == "nalsm_digits"))
    g = project.graph
    by_label = {n.label: n for n in g.nodes.values()}
    kq = g.add_node("monitor.kernel_quality", "Kernel quality", (0, 0), per_class=3, draws=3)
    g.connect(by_label["Liquid E"].id, "spikes", kq.id, "population")
    g.connect(by_label["Liquid I"].id, "spikes", kq.id, "population")
    g.connect(by_label["Digits"].id, "labels", kq.id, "labels")
    by_label["Astrocyte"].set("compare_baselines", False)
    res = Protocol(project, sample_limit=30).run()
    k = res.kernel_quality[kq.id]
    assert (k["n_neurons"], k["n_samples"], k["n_columns"]) == (1000, 30, 30)
    assert 0 < k["SP"] <= 30 and 0 < k["AP"] <= 30


def test_the_baseline_table_compares_kernel_quality():
    """With NALSM baselines the LSM and LSM + STDP liquids are ranked too (each with its own noisy
    run), and the table gets an SP - AP column."""
    from engine.cli_run import baseline_table

    project = liquid(n_samples=30, encoding="latency", epochs=5)
    add_phases(project, dict(label="Init", samples=8, presentation=20.0),
               dict(label="Features", reset="state_and_weights"))
    node_of(project, "modulator.nalsm_astrocyte").set("compare_baselines", True)
    with_kernel_quality(project, per_class=10, draws=5)
    rows = Protocol(project).run().settings["baselines"]
    assert [r["model"] for r in rows] == ["NALSM", "LSM", "LSM + STDP"]
    assert all(np.isfinite(r["sp_minus_ap"]) for r in rows)
    table = baseline_table(rows)
    assert table[0].split()[-3:] == ["SP", "-", "AP"]
    assert table[1].split()[-1] == f"{rows[0]['sp_minus_ap']:.1f}"
