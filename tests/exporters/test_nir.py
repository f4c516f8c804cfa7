"""NIR export and import: round trips of every example NIR can express, the report of what it
cannot carry, foreign graphs, and a real consumer (snnTorch) producing our output spikes."""

from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="NIR export needs the 'nir' package (pip install -e '.[export]')")

import main  # noqa: E402
from engine import examples  # noqa: E402
from engine.compiler import compile_graph  # noqa: E402
from engine.errors import ExportError  # noqa: E402
from engine.exporters import export  # noqa: E402
from engine.exporters.nir_io import build_nir_graph, import_nir, project_from_nir  # noqa: E402
from engine.exporters.svg import node_geometry  # noqa: E402
from engine.project import Project, SimulationSettings  # noqa: E402
from engine.runner import Simulation  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NEURON_FIELDS = ("n", "tau_m", "E_L", "V_th", "V_reset", "synapse", "t_ref", "layout", "grid", "V_init")
CURRENT_FIELDS = ("R", "tau_syn_exc", "tau_syn_inh")


def expressible_examples():
    """Every example with LIF populations (the others hold only Izhikevich / conductance neurons)."""
    return {
        "cuba": lambda: Project.load(ROOT / "resources/examples/cuba.swproj"),
        "nalsm_digits": lambda: Project.load(ROOT / "resources/examples/nalsm_digits.swproj"),
        "neurocorex_digits": lambda: Project.load(ROOT / "resources/examples/neurocorex_digits.swproj"),
    }


def synapses_by_label(project):
    """{(pre label, post label, receptor): sorted (pre, post, weight, delay steps)} of the compiled net,
    synapses of weight 0 left out (a dense NIR weight matrix cannot hold them; the report says so)."""
    plan = compile_graph(project)
    labels = plan.metadata["labels"]
    out = {}
    for prj in plan.projections:
        rec = plan.population(prj.post).receptor_index(prj.receptor)
        key = (labels[prj.pre], labels[prj.post], rec)
        rows = sorted(zip(prj.pre_indices().tolist(), prj.indices.tolist(),
                          np.round(prj.weights.astype(np.float64), 4).tolist(), prj.delays.tolist()))
        out.setdefault(key, []).extend(r for r in rows if r[2] != 0)
    return {k: sorted(v) for k, v in out.items()}


def populations_by_label(project):
    return {n.label: n for n in project.graph.nodes.values() if n.category.value == "Neurons"}


@pytest.mark.parametrize("spikes", ["dirac", "step"])
@pytest.mark.parametrize("name", list(expressible_examples()))
def test_round_trip_keeps_parameters_and_connectivity(name, spikes, tmp_path):
    project = expressible_examples()[name]()
    project.save(tmp_path / f"{name}.swproj", keep_backup=False)
    if name == "neurocorex_digits":  # its connection list lives next to the example
        import shutil
        shutil.copy(ROOT / "resources/examples" / examples.DIGIT_TEMPLATE_FILE, tmp_path)
    report = export(project, "nir", tmp_path / f"{name}.nir", spikes=spikes)
    back, _ = import_nir(tmp_path / f"{name}.nir", tmp_path / "imported" / f"{name}.swproj")
    # the imported project loads and validates like any other
    again = Project.load(back.path)
    pops, pops_back = populations_by_label(project), populations_by_label(again)
    assert pops.keys() == pops_back.keys()
    for label, node in pops.items():
        other = pops_back[label]
        fields = NEURON_FIELDS + (CURRENT_FIELDS if node.synapse == "exponential" else ())
        for f in fields:
            assert other.get(f) == pytest.approx(node.get(f), rel=1e-9), (label, f)
        assert other.position == node.position
    assert synapses_by_label(again) == synapses_by_label(project)
    assert report.written == [tmp_path / f"{name}.nir"]
    if name == "neurocorex_digits":  # template weights of 0 are said to be left out
        assert any("of weight 0" in i.message for i in report.of_level("converted"))


def test_cuba_exports_li_synaptic_currents_and_si_units(tmp_path):
    project = examples.cuba(n=200, p=0.05)
    graph, report = build_nir_graph(project)
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    # tau_exc = 5 ms != tau_inh = 10 ms: one LI per synaptic current into each LIF
    assert kinds["lif_1"] == "LIF" and kinds["lif_1_syn_exc"] == "LI" and kinds["lif_1_syn_inh"] == "LI"
    assert ("lif_1_syn_exc", "lif_1") in graph.edges and ("lif_1_syn_inh", "lif_1") in graph.edges
    lif = graph.nodes["lif_1"]
    np.testing.assert_allclose(lif.tau, 0.020)           # seconds
    np.testing.assert_allclose(lif.v_leak, 0.0)          # relative to E_L = -49 mV
    np.testing.assert_allclose(lif.v_threshold, -1.0)    # V_th - E_L
    np.testing.assert_allclose(lif.v_reset, -11.0)
    np.testing.assert_allclose(lif.r, 0.1)               # GOhm: R pA = mV
    np.testing.assert_allclose(graph.nodes["lif_1_syn_inh"].tau, 0.010)
    assert graph.metadata["time_unit"] == "s" and graph.metadata["dt_s"] == pytest.approx(1e-4)
    assert kinds["lif_1_output"] == "Output" and "lif_2_output" not in kinds  # only the watched one
    # inhibitory weights land on the inhibitory current, negative
    w = graph.nodes["projection_3"].weight
    assert ("projection_3", "lif_1_syn_inh") in graph.edges and w.min() == pytest.approx(-90.0) and w.max() == 0
    dropped = {(i.node, i.message.split(" ")[0]) for i in report.of_level("dropped")}
    assert ("Excitatory", "refractory") in dropped and ("Raster", "monitor:") in dropped
    assert any(i.node == "Excitatory" and "initial potentials" in i.message for i in report.items)


def test_report_names_every_node_nir_cannot_carry():
    project = Project.load(ROOT / "resources/examples/nalsm_digits.swproj")
    _, report = build_nir_graph(project)
    dropped = {i.node: i.message for i in report.of_level("dropped")}
    assert "plasticity rule" in dropped["Liquid STDP"]
    assert "astrocyte" in dropped["Astrocyte"]
    assert "encoder" in dropped["Digits"]
    assert "monitor" in dropped["Branching factor"]
    assert "readout" in dropped["Readout"]
    assert "refractory" in dropped["Liquid E"] and "refractory" in dropped["Liquid I"]
    assert "training phase" in dropped["Features"]


def test_conductance_and_izhikevich_models_are_refused_with_the_reasons():
    song = Project.load(ROOT / "resources/examples/song_stdp.swproj")
    with pytest.raises(ExportError, match="conductance-based LIF: NIR has no conductance synapses"):
        build_nir_graph(song)
    izh = Project.load(ROOT / "resources/examples/izhikevich_2003.swproj")
    with pytest.raises(ExportError, match="Izhikevich neuron: no NIR primitive"):
        build_nir_graph(izh)


def test_delays_beyond_one_step_become_delay_nodes(tmp_path):
    project = examples.cuba(n=100, p=0.1)
    for node in project.graph.nodes.values():
        if node.type_id == "synapse.projection":
            project.graph.set_param(node.id, "delay_init", "uniform")
            project.graph.set_param(node.id, "delay_low", 0.1)
            project.graph.set_param(node.id, "delay_high", 0.4)
    graph, report = build_nir_graph(project)
    delays = {k: v for k, v in graph.nodes.items() if type(v).__name__ == "Delay"}
    # delays of 1..4 steps: the first step is implicit, three Delay nodes per projection carry 1..3 dt
    assert sorted({round(float(v.delay[0]) * 1e4) for v in delays.values()}) == [1, 2, 3]
    assert any("distinct delays" in i.message for i in report.items)
    project.save(tmp_path / "d.swproj", keep_backup=False)
    nir.write(tmp_path / "d.nir", graph)
    back, _ = import_nir(tmp_path / "d.nir", tmp_path / "back.swproj")
    assert synapses_by_label(back) == synapses_by_label(project)
    assert len([n for n in back.graph.nodes.values() if n.type_id == "synapse.projection"]) == 4


def snntorch_style_graph(dt_s=1e-4):
    """A graph as snnTorch's exporter writes it: Affine + CubaLIF with r = tau_mem/dt, w_in = 1."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 1, (6, 4)).astype(np.float32)
    w2 = rng.normal(0, 1, (2, 6)).astype(np.float32)
    tau_syn, tau_mem = np.full(6, 5e-3), np.full(6, 2e-2)
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc1": nir.Affine(weight=w1, bias=np.zeros(6, np.float32)),
        "lif1": nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt_s, v_leak=np.zeros(6),
                            v_threshold=np.ones(6), w_in=np.ones(6)),
        "delay": nir.Delay(delay=np.full(6, 3e-4)),
        "fc2": nir.Linear(weight=w2),
        "lif2": nir.LIF(tau=np.full(2, 1e-2), r=np.full(2, 1e-2 / dt_s), v_leak=np.zeros(2),
                        v_threshold=np.ones(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }, edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "delay"), ("delay", "fc2"), ("fc2", "lif2"),
              ("lif2", "output")]), w1, w2


def test_foreign_graph_imports_with_step_spikes_and_a_readable_layout(tmp_path):
    graph, w1, w2 = snntorch_style_graph()
    project, report = project_from_nir(graph, tmp_path / "foreign.swproj", dt_ms=0.1, spikes="step")
    project.save(tmp_path / "foreign.swproj", keep_backup=False)
    nodes = {n.label: n for n in project.graph.nodes.values()}
    lif1, lif2 = nodes["lif1"], nodes["lif2"]
    assert lif1.synapse == "exponential" and lif1.tau_m == pytest.approx(20.0)
    assert lif1.tau_syn_exc == pytest.approx(5.0)
    # step convention: I_nir jumps by w_in dt/tau_syn * w and V += r dt/tau_mem * I_nir; ours: I jumps by w
    # and V += R dt/tau_mem * I, so R = r w_in dt / tau_syn = 200 * 1e-4 / 5e-3 = 4 GOhm
    assert lif1.R == pytest.approx(4.0)
    assert lif2.synapse == "delta" and lif2.tau_m == pytest.approx(10.0) and lif2.V_th == 1.0
    syn = synapses_by_label(Project.load(tmp_path / "foreign.swproj"))
    [(k1, rows1)] = [(k, v) for k, v in syn.items() if k[1] == "lif1"]
    [(k2, rows2)] = [(k, v) for k, v in syn.items() if k[1] == "lif2"]
    assert len(rows1) == w1.size and len(rows2) == w2.size
    assert {(r[0], r[1]): r[2] for r in rows1}[(3, 5)] == pytest.approx(float(w1[5, 3]), abs=1e-4)
    # r dt / tau = 1 for lif2: weights unchanged; 0.3 ms of Delay + the implicit step = 4 steps
    assert {r[3] for r in rows2} == {4}
    assert {(r[0], r[1]): r[2] for r in rows2}[(5, 1)] == pytest.approx(float(w2[1, 5]), abs=1e-4)
    assert any("Input of 4 channels" in i.message for i in report.items)
    # readable layout: data flows left to right in columns, no two nodes overlap
    flow = ["input", "fc1->lif1", "lif1", "fc2->lif2", "lif2", "lif2 output"]
    xs = [nodes[label].position[0] for label in flow]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    boxes = [(n.position[0], n.position[1], n.position[0] + node_geometry(n)[0],
              n.position[1] + node_geometry(n)[1]) for n in project.graph.nodes.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_import_refuses_what_synweave_cannot_hold(tmp_path):
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Linear(weight=np.ones((2, 3))),
        "li": nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }, edges=[("input", "fc"), ("fc", "li"), ("li", "output")])
    with pytest.raises(ExportError, match="'li' \\(LI\\) -> 'output' \\(Output\\) has no Synweave counterpart"):
        project_from_nir(graph, tmp_path / "x.swproj")
    direct = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2])}),
        "lif": nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
    }, edges=[("input", "lif")])
    with pytest.raises(ExportError, match="through Linear/Affine weights"):
        project_from_nir(direct, tmp_path / "y.swproj")


def test_cli_export_and_import(tmp_path, capsys):
    project = examples.cuba(n=200, p=0.05)
    project.save(tmp_path / "c.swproj", keep_backup=False)
    assert main.main(["export", str(tmp_path / "c.swproj"), "--format", "nir"]) == 0
    out = capsys.readouterr().out
    assert "not carried by NIR" in out and "refractory period t_ref = 5 ms" in out
    assert main.main(["import", str(tmp_path / "c.nir"), "--out", str(tmp_path / "back.swproj")]) == 0
    assert Project.load(tmp_path / "back.swproj").graph.node("lif_1").n == 160
    assert main.main(["import", str(tmp_path / "missing.nir")]) == 1
    assert "file not found" in capsys.readouterr().err


def feed_forward_project(tmp_path, steps=300):
    """Input (8) -> hidden LIF (5) -> output LIF (3), delta synapses, leaky, dense random weights."""
    rng = np.random.default_rng(3)
    project = Project(settings=SimulationSettings(dt=0.1, duration=steps * 0.1, seed=1))
    g = project.graph
    raster = rng.random((steps, 8)) < 0.08
    step_idx, chan = np.nonzero(raster)
    src = g.add_node("input.spike_train", "In", n=8, times=(step_idx * 0.1).tolist(), indices=chan.tolist())
    lif = dict(tau_m=500.0, E_L=0.0, V_th=1.0, V_reset=0.0, t_ref=0.0, synapse="delta")
    hidden = g.add_node("neuron.lif", "Hidden", n=5, **lif)
    out = g.add_node("neuron.lif", "Out", n=3, **lif)
    for pre, post, shape in ((src, hidden, (5, 8)), (hidden, out, (3, 5))):
        w = rng.uniform(-0.2, 0.65, shape)
        post_idx, pre_idx = np.nonzero(np.ones(shape))
        f = tmp_path / f"{pre.id}_{post.id}.npz"
        np.savez(f, pre=pre_idx, post=post_idx, weight=w[post_idx, pre_idx])
        prj = g.add_node("synapse.projection", connectivity="from_file", file=str(f), delay=0.1)
        g.connect(pre.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", post.id, "input")
    mon = g.add_node("monitor.spikes", "Output spikes")
    g.connect(out.id, "spikes", mon.id, "source")
    return project, raster, mon.id


def test_snntorch_runs_the_exported_network_with_our_output_spikes(tmp_path):
    """snnTorch's NIR import (Euler steps at its fixed dt = 0.1 ms, reset to zero, a spike is an input of
    height 1 for one step: export with spikes="step") on the same input spikes gives the same output
    spikes as our engine, shifted by the one-step delay each of our two projections has (a snnTorch
    layer passes spikes on within the step). tau_m = 500 ms keeps Euler's (1 - dt/tau) and our exact
    exp(-dt/tau) within 2e-8 per step; t_ref = 0 and V_reset = E_L = 0 match snnTorch's reset."""
    pytest.importorskip("snntorch", reason="optional consumer test: pip install snntorch nirtorch")
    pytest.importorskip("nirtorch", reason="optional consumer test: pip install snntorch nirtorch")
    import torch
    from snntorch.import_nir import import_from_nir

    steps = 300
    project, raster, mon = feed_forward_project(tmp_path, steps)
    results = Simulation(project, settings={"dtype": "float64"}).run(steps * 0.1)
    ours = np.zeros((steps, 3), int)
    s, i = results.spikes[mon]
    ours[s, i] = 1
    export(project, "nir", tmp_path / "ff.nir", spikes="step")
    net = import_from_nir(nir.read(tmp_path / "ff.nir"))
    theirs = []
    with torch.no_grad():
        for t in range(steps):
            spikes, _state = net(torch.tensor(raster[t:t + 1], dtype=torch.float32))
            theirs.append(spikes.numpy()[0])
    theirs = np.array(theirs).astype(int)
    assert ours.sum() > 40  # every output neuron is busy enough for the comparison to mean something
    assert (ours.sum(axis=0) > 5).all()
    np.testing.assert_array_equal(theirs[:steps - 2], ours[2:])
