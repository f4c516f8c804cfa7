"""Connectomes as projects: edge lists and adjacency matrices (.csv / .npz) -> population + projection."""

import numpy as np
import pytest

import main
from engine.compiler import compile_graph
from engine.errors import ExportError
from engine.exporters.connectome_import import import_connectome
from engine.project import Project


def synapses(project):
    plan = compile_graph(project)
    [prj] = plan.projections
    return sorted(zip(prj.pre_indices().tolist(), prj.indices.tolist(), np.round(prj.weights.astype(np.float64), 4).tolist()))


def random_adjacency(n=30, seed=1):
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((n, n)) < 0.1, np.round(rng.normal(0.5, 1.0, (n, n)), 3), 0.0)
    return a


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_adjacency_matrix_becomes_one_recurrent_projection(tmp_path, suffix):
    a = random_adjacency()
    src = tmp_path / f"worm{suffix}"
    if suffix == ".csv":
        np.savetxt(src, a, delimiter=",", fmt="%.3f")
    else:
        np.savez(src, adjacency=a)
    project, report = import_connectome(src, tmp_path / "worm.swproj")
    again = Project.load(tmp_path / "worm.swproj")
    [pop] = [n for n in again.graph.nodes.values() if n.type_id == "neuron.lif"]
    assert pop.n == 30
    pre, post = np.nonzero(a)
    assert synapses(again) == sorted(zip(pre.tolist(), post.tolist(), np.round(a[pre, post], 4).tolist()))
    assert any("adjacency matrix (row = presynaptic)" in i.message for i in report.items)
    assert any("negative weights act as inhibitory" in i.message for i in report.items)


def test_edge_list_csv_with_header_is_referenced_relative_to_the_project(tmp_path):
    src = tmp_path / "data" / "edges.csv"
    src.parent.mkdir()
    src.write_text("pre,post,weight,delay_ms\n0,5,1.5,1.0\n5,0,-2.0,2.0\n3,3,0.25,0.5\n")
    project, _ = import_connectome(src, tmp_path / "proj" / "edges.swproj")
    prj = next(n for n in project.graph.nodes.values() if n.type_id == "synapse.projection")
    assert prj.file == "../data/edges.csv"
    again = Project.load(tmp_path / "proj" / "edges.swproj")
    assert again.graph.node(next(n.id for n in again.graph.nodes.values() if n.type_id == "neuron.lif")).n == 6
    assert synapses(again) == [(0, 5, 1.5), (3, 3, 0.25), (5, 0, -2.0)]
    plan = compile_graph(again)
    assert sorted(plan.projections[0].delays.tolist()) == [5, 10, 20]  # ms / dt = 0.1 ms


def test_ambiguous_or_bad_files_are_refused_with_a_fix(tmp_path):
    small = tmp_path / "small.csv"
    np.savetxt(small, np.eye(3), delimiter=",")
    with pytest.raises(ExportError, match="could be an adjacency matrix or an edge list"):
        import_connectome(small, tmp_path / "s.swproj")
    rect = tmp_path / "rect.npz"
    np.savez(rect, adjacency=np.ones((3, 4)))
    with pytest.raises(ExportError, match="must be square"):
        import_connectome(rect, tmp_path / "r.swproj")


def test_cli_import_of_a_connectome(tmp_path, capsys):
    src = tmp_path / "a.npz"
    np.savez(src, random_adjacency(12, seed=2))
    assert main.main(["import", str(src), "--out", str(tmp_path / "a.swproj")]) == 0
    assert "connectome import" in capsys.readouterr().out
    assert main.main(["import", str(tmp_path / "x.txt")]) == 1
    assert "import reads .nir graphs" in capsys.readouterr().err


#: the first rows of cect 0.3.5's cect/data/aconnectome_white_1986_whole.csv (tab-separated, as shipped)
WHITE_1986_HEAD = """pre\tpost\ttype\tsynapses
ADAL\tADFL\telectrical\t1
ADAL\tAIBL\tchemical\t1
ADAL\tAIBR\tchemical\t2
ADAL\tASHL\telectrical\t1
ADAL\tAVAR\tchemical\t2
ADAL\tAVBL\tchemical\t4
"""


def test_cect_worked_example_reads_the_wheel_and_imports(tmp_path):
    """scripts/cect_connectome.py reads the connectome out of a cect wheel (a zip; cect is not
    installed, its numpy<2.4 pin would downgrade ours) and its edge list imports as a project:
    names sorted to indices, chemical counts x weight, electrical entries skipped."""
    import zipfile

    from scripts.cect_connectome import main as cect_main

    wheel = tmp_path / "cect-0.3.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("cect/data/aconnectome_white_1986_whole.csv", WHITE_1986_HEAD)
    out = tmp_path / "worm.csv"
    assert cect_main([str(wheel), "--out", str(out), "--weight", "0.5"]) == 0
    names = (tmp_path / "worm_neurons.txt").read_text().split()
    assert names == ["ADAL", "ADFL", "AIBL", "AIBR", "ASHL", "AVAR", "AVBL"]
    assert out.read_text().splitlines() == ["pre,post,weight", "0,2,0.5", "0,3,1", "0,5,1", "0,6,2"]
    project = import_connectome(out, tmp_path / "worm.swproj")[0]
    assert synapses(project) == [(0, 2, 0.5), (0, 3, 1.0), (0, 5, 1.0), (0, 6, 2.0)]
    assert compile_graph(project).populations[0].size == 7
