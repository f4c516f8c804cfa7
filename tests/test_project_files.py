"""Project files: round trips, atomic saves, migrations, and clear errors for malformed files."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine import examples
from engine.errors import ProjectFileError
from engine.project import SCHEMA_VERSION, Project, example_projects

DATA = Path(__file__).parent / "data"
EXAMPLES = example_projects()


def test_every_bundled_example_is_listed():
    assert {p.stem for p in EXAMPLES} >= set(examples.BUILDERS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trips(path, tmp_path):
    project = Project.load(path)
    copy = project.save(tmp_path / path.name)
    again = Project.load(copy)
    assert again == project
    assert again.graph == project.graph
    assert again.settings == project.settings
    assert [n.position for n in again.graph.nodes.values()] == \
           [n.position for n in project.graph.nodes.values()]


@pytest.mark.parametrize("name", sorted(examples.BUILDERS))
def test_shipped_example_equals_its_builder(name):
    shipped = Project.load(examples.EXAMPLES_DIR / f"{name}.swproj")
    assert shipped == examples.BUILDERS[name](), \
        f"resources/examples/{name}.swproj is stale: run `python -m engine.examples`"


def test_save_is_atomic_and_keeps_a_backup(tmp_path):
    project = examples.cuba()
    target = tmp_path / "net.swproj"
    project.save(target)
    first = target.read_text()
    project.settings.duration = 50.0
    project.save()
    assert json.loads((tmp_path / "net.swproj.bak").read_text()) == json.loads(first)
    assert Project.load(target).settings.duration == 50.0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    project = examples.cuba()
    target = project.save(tmp_path / "net.swproj")
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    project.settings.duration = 5.0
    with pytest.raises(OSError):
        project.save()
    assert target.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_older_schema_is_migrated():
    project = Project.load(DATA / "project_v1.swproj")
    g = project.graph
    assert project.name == "Legacy two-population network"
    assert project.settings.duration == 250.0 and project.settings.seed == 42
    assert g.node("lif_1").tau_m == 15.0 and g.node("lif_1").position == (400.0, 10.0)
    assert sorted(e.dst_port for e in g.edges) == ["input", "pre", "source"]
    assert g.upstream("projection_1", "pre")[0][0].id == "poisson_1"
    assert project.to_json()["schema_version"] == SCHEMA_VERSION


def test_newer_schema_says_so(tmp_path):
    doc = examples.cuba().to_json()
    doc["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "future.swproj"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match="newer Synweave") as info:
        Project.load(path)
    assert str(path) in str(info.value) and info.value.json_path == "$.schema_version"


def test_unknown_node_types_are_listed_by_name():
    doc = examples.cuba().to_json()
    doc["graph"]["nodes"][0]["type"] = "neuron.hodgkin_huxley"
    doc["graph"]["nodes"][1]["type"] = "plasticity.magic"
    doc["graph"]["edges"] = []
    with pytest.raises(ProjectFileError) as info:
        Project.loads(json.dumps(doc), "x.swproj")
    assert "'neuron.hodgkin_huxley'" in str(info.value) and "'plasticity.magic'" in str(info.value)


@pytest.mark.parametrize("mutate, path, words", [
    (lambda d: d["graph"]["nodes"][0]["params"].__setitem__("tau_m", -5), "$.graph.nodes[0].params.tau_m", ">= 0.01"),
    (lambda d: d["graph"]["nodes"][0].__setitem__("position", [1]), "$.graph.nodes[0].position", "[x, y]"),
    (lambda d: d["settings"].__setitem__("dt", "fast"), "$.settings.dt", "number"),
    (lambda d: d["graph"]["edges"][0].__setitem__("dst_port", "nowhere"), "$.graph.edges[0]", "no input port"),
    (lambda d: d.__setitem__("format", "nest-desktop"), "$.format", "not a Synweave project"),
    (lambda d: d["graph"]["nodes"][1].__setitem__("id", d["graph"]["nodes"][0]["id"]), "$.graph.nodes[1].id", "duplicate"),
])
def test_malformed_files_name_the_json_path(mutate, path, words):
    doc = examples.cuba().to_json()
    mutate(doc)
    with pytest.raises(ProjectFileError) as info:
        Project.loads(json.dumps(doc), "bad.swproj")
    assert info.value.json_path == path
    assert words in str(info.value) and "bad.swproj" in str(info.value)


def test_non_json_inputs_fail_cleanly():
    for raw in (b"", b"\xff\xfe\x00garbage", b"[1, 2", b'{"format": NaN}', b"\x80abc",
                b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(ProjectFileError):
            Project.loads(raw, "junk.swproj")


# -- property-based fuzzing: thousands of malformed files, every one a ProjectFileError -------
_BASE = examples.nalsm_digits().to_json()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(_BASE) if p]


@st.composite
def mutated_documents(draw):
    doc = json.loads(json.dumps(_BASE))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "wrong-type"]))
            if action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif action == "delete" and isinstance(parent, list) and path[-1] < len(parent):
                parent.pop(path[-1])
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed this path
    return doc


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_documents())
def test_fuzzed_documents_load_or_fail_with_project_error(doc):
    try:
        text = json.dumps(doc)
    except ValueError:
        return
    try:
        project = Project.loads(text, "fuzz.swproj")
    except ProjectFileError as exc:
        assert str(exc).startswith("fuzz.swproj: at $")
        assert exc.detail
    else:
        # whatever loads must save and load back identically
        assert Project.loads(project.dumps(), "again.swproj") == project


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzzed_bytes_fail_with_project_error(data):
    raw = bytearray(json.dumps(_BASE).encode())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + data.draw(st.integers(1, 50))]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        if not raw:
            break
    try:
        Project.loads(bytes(raw), "bytes.swproj")
    except ProjectFileError as exc:
        assert "bytes.swproj" in str(exc)
