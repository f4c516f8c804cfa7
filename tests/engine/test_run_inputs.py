"""Run-time inputs (issue 9): only regular data files, a memory preflight, finite time bounds,
empty data-set splits and non-finite numbers are clear errors before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import nodes
from engine import encoders, examples
from engine.errors import ParameterError, ProjectFileError, SimulationError
from engine.info import check_memory, human_bytes
from engine.project import Project, SimulationSettings
from engine.validate import validate_project
from nodes.params import MAX_TIME_MS

ROOT = Path(__file__).resolve().parents[2]


def chain(src=None, prj=None, pop=None) -> Project:
    project = Project()
    g = project.graph
    s = g.add_node("input.poisson", **(src or {}))
    p = g.add_node("synapse.projection", **(prj or {}))
    n = g.add_node("neuron.lif", **(pop or {}))
    m = g.add_node("monitor.spikes")
    g.connect(s.id, "spikes", p.id, "pre")
    g.connect(p.id, "post", n.id, "input")
    g.connect(n.id, "spikes", m.id, "source")
    return project


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def _finishes(fn, seconds=20.0):
    """Call fn in a thread; what it raised, or 'hung' when it blocks (a FIFO open waits forever)."""
    out = {}

    def target():
        try:
            fn()
            out["result"] = "returned"
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out["result"] = exc
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return out.get("result", "hung")


@pytest.fixture
def special_files(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    return {"FIFO": fifo, "directory": folder, "device": Path("/dev/zero"), "FIFO ": Path("/dev/stdin")}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_only_regular_files_pass_validation_and_opening(special_files, tmp_path):
    for what, path in special_files.items():
        if what == "FIFO " and not Path("/dev/stdin").exists():
            continue
        project = chain(prj=dict(connectivity="from_file", file=str(path)))
        project.path = tmp_path / "net.swproj"
        errors = [p for p in validate_project(project) if p.severity == "error"]
        assert len(errors) == 1 and errors[0].field == "file" and errors[0].node == "Projection"
        assert "not a regular file" in errors[0].message, what
        for loader in (lambda: encoders.load_connection_file(path, 10, 10),
                       lambda: encoders.load_spike_file(path, 10),
                       lambda: encoders.load_npz_dataset(path)):
            result = _finishes(loader)
            assert isinstance(result, ParameterError), (what, result)
            assert "not a regular file" in str(result)


def test_relative_data_files_are_checked_below_the_project_folder(tmp_path):
    project = chain(prj=dict(connectivity="from_file", file="w.npz"))
    project.path = tmp_path / "net.swproj"
    (error,) = [p for p in validate_project(project) if p.severity == "error"]
    assert "not found" in error.message and str(tmp_path / "w.npz") in error.message
    np.savez(tmp_path / "w.npz", pre=np.arange(3), post=np.arange(3))
    assert not [p for p in validate_project(project) if p.severity == "error"]


def test_memory_preflight_refuses_with_estimate_and_available_memory():
    huge = chain(src=dict(n=99_999_999), prj=dict(connectivity="all_to_all"), pop=dict(n=99_999_999))
    with pytest.raises(SimulationError) as info:
        check_memory(huge, available=8 * 2**30)
    text = str(info.value)
    assert "88.8 PiB" in text and "8.0 GiB available" in text and "synapses" in text
    small = chain()
    estimate = check_memory(small, available=8 * 2**30).total_bytes
    with pytest.raises(SimulationError):
        check_memory(small, available=int(estimate))  # the peak factor leaves no room
    assert human_bytes(2.0 ** 70) == "1.0 ZiB"


def test_cli_run_refuses_a_huge_network_in_one_line(tmp_path):
    path = chain(src=dict(n=99_999_999), prj=dict(connectivity="all_to_all"),
                 pop=dict(n=99_999_999)).save(tmp_path / "huge.swproj")
    out = run_cli("run", str(path), "--duration", "1ms", "-q")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "not enough memory" in out.stderr and "available" in out.stderr


def test_every_time_like_parameter_has_a_finite_upper_bound():
    owners = [*nodes.all_node_types(), SimulationSettings]
    unbounded = [(getattr(cls, "type_id", cls.__name__), name) for cls in owners
                 for name, p in cls.params.items()
                 if p.unit in ("ms", "s") and getattr(p, "high", None) is None]
    assert unbounded == []
    with pytest.raises(ParameterError, match="must be <= 1e"):
        nodes.node_type("input.poisson")("p", start=1.8e19)
    with pytest.raises(ParameterError):
        nodes.node_type("input.spike_train")("s", times=[1.8e19], indices=[0])


def test_empty_data_set_splits_are_clear_errors():
    data = encoders.Dataset(np.ones((10, 4)), np.arange(10))
    with pytest.raises(ParameterError, match="test split is empty"):
        encoders.split_dataset(data, "test", 1e-300, seed=1)
    with pytest.raises(ParameterError, match="train split is empty"):
        encoders.split_dataset(data, "train", 0.99, seed=1)
    assert len(encoders.split_dataset(data, "test", 0.3, seed=1).labels) == 3
    project = examples.nalsm_digits()
    enc = next(n for n in project.graph.nodes.values() if n.type_id == "input.dataset")
    enc.split, enc.test_fraction = "test", 1e-300
    (error,) = [p for p in validate_project(project) if p.severity == "error"]
    assert error.field == "test_fraction" and error.node == enc.label


def test_empty_npz_data_set_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 4)), labels=np.zeros(0, np.int64))
    with pytest.raises(ParameterError, match="holds no images"):
        encoders.load_npz_dataset(tmp_path / "empty.npz")


def test_numbers_from_data_files_must_be_finite(tmp_path):
    np.savez(tmp_path / "c.npz", pre=np.arange(3), post=np.arange(3), weight=np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ParameterError, match="weights must be finite"):
        encoders.load_connection_file(tmp_path / "c.npz", 3, 3)
    np.savez(tmp_path / "d.npz", pre=np.arange(3), post=np.arange(3), delay=np.array([1.0, np.inf, 2.0]))
    with pytest.raises(ParameterError, match="delays must be finite"):
        encoders.load_connection_file(tmp_path / "d.npz", 3, 3)
    (tmp_path / "c.csv").write_text("0,0,1e400\n")
    with pytest.raises(ParameterError, match="weights must be finite"):
        encoders.load_connection_file(tmp_path / "c.csv", 3, 3)
    np.savez(tmp_path / "s.npz", times=np.array(["a", "b"]), indices=np.arange(2))
    with pytest.raises(ParameterError, match="real numbers"):
        encoders.load_spike_file(tmp_path / "s.npz", 3)
    np.savez(tmp_path / "t.npz", times=np.array([1e300]), indices=np.array([0]))
    with pytest.raises(ParameterError, match="<= 1e"):
        encoders.load_spike_file(tmp_path / "t.npz", 3)


@pytest.mark.parametrize("text, where", [
    ('"view": {"canvas": {"zoom": 1e400}}', "$.view.canvas.zoom"),
    ('"view": {"canvas": {"center": [0, -1e999]}}', "$.view.canvas.center[1]"),
    ('"view": {"big": ' + "9" * 400 + "}", "$.view.big"),
])
def test_infinite_numbers_anywhere_in_a_file_are_refused(text, where):
    doc = json.dumps(examples.cuba().to_json()).replace('"view": {}', text)
    assert text in doc
    with pytest.raises(ProjectFileError) as info:
        Project.loads(doc, "x.swproj")
    assert info.value.json_path == where and "finite" in str(info.value)


def test_time_bound_keeps_step_counts_in_int64():
    assert MAX_TIME_MS / SimulationSettings.params["dt"].low < 2 ** 62


def test_encoded_data_set_inputs_are_in_the_estimate():
    from engine.compiler import compile_graph
    from engine.info import BYTES_PER_ENCODED_SPIKE, summarize
    from engine.runner import MAX_CHUNK_STEPS

    project = examples.nalsm_digits()
    project.settings.duration = 25_000.0  # a plain run of the graph (its phases set their own lengths)
    plan = compile_graph(project)
    [src] = [s for s in plan.sources if getattr(s, "kind", "") == "dataset"]
    # samples are encoded as the run reaches them: at most one chunk's spikes are held at once
    actual = src.spikes_between(0, min(plan.n_steps, MAX_CHUNK_STEPS))[0].size
    estimate = summarize(project).memory_bytes["encoded inputs"] / BYTES_PER_ENCODED_SPIKE
    assert actual > 10_000 and abs(estimate - actual) < 0.2 * actual
    # 250 samples shown for 12 minutes each: about 700 million spikes in all, one chunk's in memory
    enc = next(n for n in project.graph.nodes.values() if n.type_id == "input.dataset")
    enc.presentation = 720_000.0
    assert summarize(project).memory_bytes["encoded inputs"] < 2 ** 30
    check_memory(project, available=8 * 2**30)
    big = examples.nalsm_digits()
    big.settings.duration = 25_000.0
    node = next(n for n in big.graph.nodes.values() if n.type_id == "input.dataset")
    node.dataset, node.pixels, node.presentation, node.max_rate = "npz", 1_000_000, 720_000.0, 1000.0
    node.n_samples = 250  # an .npz's sample count is unknown before it is read
    with pytest.raises(SimulationError, match="encoded inputs .* fewer pixels or a lower max_rate"):
        check_memory(big, available=8 * 2**30)
