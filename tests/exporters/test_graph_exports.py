"""GraphML, SVG and CSV / npz exports, and the `export` command line."""

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import main
from engine import examples
from engine.compiler import compile_graph
from engine.errors import ExportError
from engine.exporters import export
from engine.exporters.svg import port_position
from engine.project import Project, example_projects
from engine.runner import Simulation

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def small_cuba(tmp_path, n=200) -> Project:
    project = examples.cuba(n=n, p=0.05)
    project.save(tmp_path / "cuba_small.swproj", keep_backup=False)
    return project


@pytest.mark.parametrize("path", example_projects(), ids=lambda p: p.stem)
def test_model_graphml_loads_back_with_every_node_wire_and_parameter(path, tmp_path):
    project = Project.load(path)
    out = tmp_path / "model.graphml"
    export(project, "graphml", out)
    g = nx.read_graphml(out, force_multigraph=True)
    assert g.number_of_nodes() == len(project.graph)
    assert g.number_of_edges() == len(project.graph.edges)
    for node in project.graph.nodes.values():
        attrs = g.nodes[node.id]
        assert attrs["label"] == node.label and attrs["type"] == node.type_id
        assert (attrs["x"], attrs["y"]) == node.position
        for name, value in node.values_json().items():
            stored = attrs[f"p_{name}"]
            assert (json.loads(stored) if isinstance(value, list) else stored) == value, name
    wires = sorted((s, d, a["src_port"], a["dst_port"]) for s, d, a in g.edges(data=True))
    assert wires == sorted((e.src, e.dst, e.src_port, e.dst_port) for e in project.graph.edges)


def test_connectome_graphml_holds_every_synapse_with_weight_and_delay(tmp_path):
    project = small_cuba(tmp_path)
    out = tmp_path / "net.graphml"
    report = export(project, "graphml", out, what="connectome")
    plan = compile_graph(project)
    g = nx.read_graphml(out, force_multigraph=True)
    assert g.number_of_nodes() == plan.n_neurons == 200
    assert g.number_of_edges() == plan.n_synapses > 1000
    expected = sorted(
        (f"{p.pre}:{j}", f"{p.post}:{i}", round(float(w), 5), round(float(d) * plan.dt, 6))
        for p in plan.projections
        for j, i, w, d in zip(p.pre_indices(), p.indices, p.weights, p.delays))
    got = sorted((s, d, round(a["weight"], 5), round(a["delay_ms"], 6)) for s, d, a in g.edges(data=True))
    assert got == expected
    # inhibitory synapses carry negative current weights onto the inh receptor
    receptors = {a["receptor"] for _, _, a in g.edges(data=True) if a["weight"] < 0}
    assert receptors == {"inh"}
    assert g.nodes["lif_1:0"]["model"] == "lif"
    assert any("monitors are not part" in str(i) for i in report.items)


def test_connectome_refuses_too_many_synapses(tmp_path):
    project = small_cuba(tmp_path)
    with pytest.raises(ExportError, match="more than the 10 a GraphML file"):
        export(project, "graphml", tmp_path / "x.graphml", what="connectome", max_synapses=10)


def test_svg_draws_every_node_and_wire_at_canvas_positions(tmp_path):
    project = Project.load(ROOT / "resources/examples/nalsm_digits.swproj")
    out = tmp_path / "g.svg"
    export(project, "svg", out)
    root = ET.parse(out).getroot()
    node_groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert sorted(g.get("id") for g in node_groups) == sorted(project.graph.nodes)
    wires = [p for p in root.iter(f"{SVG}path") if p.get("class") == "wire"]
    assert len(wires) == len(project.graph.edges)
    for wire in wires:
        src, src_port = wire.get("data-src").split(".")
        dst, dst_port = wire.get("data-dst").split(".")
        numbers = [float(t) for t in wire.get("d").replace("M", "").replace("C", "").split()]
        assert numbers[:2] == pytest.approx(port_position(project.graph.node(src), src_port, "out"), abs=0.06)
        assert numbers[-2:] == pytest.approx(port_position(project.graph.node(dst), dst_port, "in"), abs=0.06)
    # every node lies inside the view box
    x0, y0, w, h = (float(v) for v in root.get("viewBox").split())
    for node in project.graph.nodes.values():
        assert x0 <= node.position[0] <= x0 + w and y0 <= node.position[1] <= y0 + h


def run_small(project, tmp_path, duration=100.0):
    results = Simulation(project, settings={"duration": duration}).run(duration)
    path = tmp_path / "r.npz"
    results.save(path)
    return results, path


def test_csv_export_of_results_file_matches_the_recorded_arrays(tmp_path):
    project = small_cuba(tmp_path)
    results, path = run_small(project, tmp_path)
    # a weight monitor's snapshots, as the weight-monitor work writes them
    with np.load(path) as data:
        arrays = dict(data)
    arrays["weights/wm/steps"] = np.array([0, 500], np.int64)
    arrays["weights/wm/values"] = np.array([[0.5, 1.0, 1.5], [0.25, 1.0, 2.0]])
    np.savez(path, **arrays)
    folder = tmp_path / "csv"
    report = export(project, "csv", folder, results=path)
    [spike_mon] = results.spikes
    with open(folder / f"spikes_{spike_mon}.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_ms", "index"]
    steps, idx = results.spikes[spike_mon]
    assert len(rows) - 1 == steps.size > 0
    assert [float(r[0]) for r in rows[1:]] == pytest.approx(steps * 0.1)
    assert [int(r[1]) for r in rows[1:]] == idx.tolist()
    [state_mon] = results.states
    with open(folder / f"state_{state_mon}_V.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_ms", "n0", "n1", "n2"]
    np.testing.assert_allclose(np.array(rows[1:], float)[:, 1:], results.states[state_mon]["V"][1], rtol=1e-6)
    with open(folder / "weights_wm.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["time_ms", "w0", "w1", "w2"], ["0.0", "0.5", "1.0", "1.5"], ["50.0", "0.25", "1.0", "2.0"]]
    with open(folder / "monitors.csv") as f:
        manifest = {r["file"]: r for r in csv.DictReader(f)}
    assert manifest[f"spikes_{spike_mon}.csv"]["label"] == "Raster"
    assert manifest[f"spikes_{spike_mon}.csv"]["target"] == "Excitatory"
    assert len(report.written) == len(manifest) + 1


def test_npz_export_simulates_when_no_results_file_is_given(tmp_path):
    project = small_cuba(tmp_path)
    out = tmp_path / "labelled.npz"
    export(project, "npz", out, duration_ms=50.0)
    with np.load(out, allow_pickle=False) as data:
        monitors = json.loads(str(data["monitors"]))
        labels = {v["label"] for v in monitors.values()}
        assert labels == {"Raster", "Rate", "Membrane"}
        [raster] = [k for k, v in monitors.items() if v["label"] == "Raster"]
        times = data[f"spikes/{raster}/times_ms"]
        assert times.size and times.max() < 50.0
        [rate] = [k for k, v in monitors.items() if v["label"] == "Rate"]
        assert data[f"rates/{rate}/count"].sum() == times.size  # both watch the excitatory population
        assert float(data["dt_ms"]) == 0.1


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_export_writes_the_default_file_next_to_the_project(tmp_path):
    small_cuba(tmp_path)
    assert main.main(["export", str(tmp_path / "cuba_small.swproj"), "--format", "graphml"]) == 0
    assert nx.read_graphml(tmp_path / "cuba_small.graphml").number_of_nodes() == 9


@pytest.mark.parametrize("args, message", [
    (["--format", "csv", "--results", "missing.npz"], "results file not found"),
    (["--format", "svg", "--results", "x.npz"], "--results applies to --format csv/npz only"),
    (["--format", "svg", "--what", "connectome"], "--what applies to --format graphml only"),
    (["--format", "graphml", "--threads", "2"], "--threads applies to --format nest only"),
    (["--format", "nest", "--nir-spikes", "step"], "--nir-spikes applies to --format nir only"),
    (["--format", "svg", "--duration", "1s"], "--duration applies to --format csv/npz/nest only"),
])
def test_cli_export_mistakes_print_one_line_and_exit_1(tmp_path, args, message):
    small_cuba(tmp_path)
    out = run_cli("export", str(tmp_path / "cuba_small.swproj"), *args, "--out", str(tmp_path / "o"))
    assert out.returncode == 1, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
