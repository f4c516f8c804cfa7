"""The command line: exit codes, messages on stderr, no tracebacks for user mistakes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import main
import nodes
from engine.project import example_projects

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_nodes_lists_every_type_with_parameters_and_units():
    out = run_cli("nodes")
    assert out.returncode == 0
    for cls in nodes.all_node_types():
        assert cls.type_id in out.stdout
    assert "tau_m              ms" in out.stdout
    assert "rate               Hz" in out.stdout


def test_nodes_markdown(tmp_path, capsys):
    assert main.main(["nodes", "--markdown", "-o", str(tmp_path / "n.md")]) == 0
    text = (tmp_path / "n.md").read_text()
    assert "## LIF — `neuron.lif`" in text and "| `tau_m` | ms | `10.0` |" in text


@pytest.mark.parametrize("path", example_projects(), ids=lambda p: p.stem)
def test_validate_and_info_on_examples(path, capsys):
    assert main.main(["validate", str(path)]) == 0
    assert "0 error(s)" in capsys.readouterr().out
    assert main.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "neurons" in out and "memory estimate" in out


def test_info_counts_cuba(capsys):
    main.main(["info", str(ROOT / "resources/examples/cuba.swproj")])
    out = capsys.readouterr().out
    assert "neurons          4,000" in out
    # 4000^2 pairs minus autapses of the two recurrent blocks, times p = 0.02
    assert "synapses         319,920" in out


def test_invalid_project_exit_code_and_problem_list(tmp_path):
    doc = json.loads((ROOT / "resources/examples/cuba.swproj").read_text())
    doc["graph"]["edges"] = [e for e in doc["graph"]["edges"] if e["dst_port"] != "pre"]
    bad = tmp_path / "bad.swproj"
    bad.write_text(json.dumps(doc))
    out = run_cli("validate", str(bad))
    assert out.returncode == 1
    assert out.stdout.count("required input 'pre' is not connected") == 4
    assert "Traceback" not in out.stderr


def test_malformed_file_gives_one_line_error_without_traceback(tmp_path):
    bad = tmp_path / "broken.swproj"
    bad.write_text('{"format": "synweave-project", "schema_version": 2, "graph": {"nodes": [1]}}')
    out = run_cli("info", str(bad))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "broken.swproj: at $.graph.nodes[0]: expected an object" in out.stderr


def test_missing_file():
    out = run_cli("validate", "does-not-exist.swproj")
    assert out.returncode == 1 and "file not found" in out.stderr and "Traceback" not in out.stderr


def test_catalogue_docs_are_current():
    """docs/nodes.md is generated from the catalogue; regenerate it when node types change."""
    assert (ROOT / "docs/nodes.md").read_text() == main.catalogue_table(markdown=True) + "\n", \
        "run `python main.py nodes --markdown -o docs/nodes.md`"
