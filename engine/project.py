"""Project files (``.swproj``): one JSON document holding the whole project.

Layout (schema 2)::

    {
      "format": "synweave-project", "schema_version": 2,
      "metadata": {"name", "description", "author", "created", "modified", "app_version"},
      "settings": {"dt", "duration", "backend", "device", "dtype", "seed", "chunk"},
      "graph": {"nodes": [{"id", "type", "label", "position": [x, y], "params": {...}}],
                "edges": [{"src", "src_port", "dst", "dst_port"}],
                "groups": [{"id", "title", "members": [...], "colour"}],
                "comments": [{"id", "text", "position": [x, y]}]},
      "view": {... canvas zoom and centre, window layout, theme, open plots ...}
    }

Every random stream is seeded from ``settings.seed`` and the nodes' own ``seed`` parameters.
Loading never executes anything from the file (plain ``json``; no pickle, no eval). Every
problem ends in :class:`ProjectFileError` naming the file, the JSON path and the fix. Older
schema versions are upgraded by the chain in :data:`MIGRATIONS`. Saves are atomic and keep the
previous file as ``<name>.swproj.bak``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

import nodes as catalogue
from engine.errors import GraphError, ParameterError, ProjectFileError, UnknownNodeTypeError
from engine.graph import Comment, Edge, Group, ModelGraph
from nodes.base import NodeType
from nodes.params import Choice, Float, Int, Parameterized

FORMAT_ID = "synweave-project"
SCHEMA_VERSION = 2
SUFFIX = ".swproj"
MAX_FILE_BYTES = 512 * 1024 * 1024
APP_VERSION = "0.1.0"


class SimulationSettings(Parameterized):
    """Simulation settings stored in the project."""

    dt = Float(0.1, unit="ms", low=0.001, high=10.0, doc="time step")
    duration = Float(1000.0, unit="ms", low=0.0, low_open=True, high=1e9, doc="model time to simulate")
    backend = Choice("numba", ("numba", "nest", "torch"), doc="simulation backend")
    device = Choice("cpu", ("cpu", "cuda"), doc="device of the torch backend and of surrogate-gradient training")
    dtype = Choice("float32", ("float32", "float64"), doc="floating-point precision of the state")
    seed = Int(12345, low=0, high=2**32 - 1, doc="project seed: every random stream derives from it")
    chunk = Float(10.0, unit="ms", low=0.1, high=1e6,
                  doc="model time per chunk handed to live plots while running")

    def __eq__(self, other):
        return isinstance(other, SimulationSettings) and self._values == other._values

    def __repr__(self):
        return f"SimulationSettings({self._values})"


class Project:
    """A graph with its settings, metadata and view state; what a ``.swproj`` file holds."""

    def __init__(self, graph: ModelGraph | None = None, settings: SimulationSettings | None = None,
                 metadata: dict | None = None, view: dict | None = None, path: str | Path | None = None):
        self.graph = graph if graph is not None else ModelGraph()
        self.settings = settings or SimulationSettings()
        now = _now()
        self.metadata = {"name": "Untitled", "description": "", "author": "", "created": now,
                         "modified": now, "app_version": APP_VERSION}
        self.metadata.update(metadata or {})
        self.view = dict(view or {})
        self.path = Path(path) if path else None

    @property
    def name(self) -> str:
        return self.metadata.get("name") or (self.path.stem if self.path else "Untitled")

    def resolve_path(self, value: str) -> Path:
        """A path parameter resolved relative to the project file's folder."""
        p = Path(value).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    def absolutize_paths(self, folder: str | Path) -> list[str]:
        """Rewrite relative file parameters as absolute paths below ``folder``.

        Used when a project is detached from its file (an example opened as an untitled copy):
        its data files must still be found, wherever the copy is saved later. Returns the
        ``node.field`` names that were rewritten.
        """
        changed = []
        for node in self.graph.nodes.values():
            for name, param in node.params.items():
                value = node.get(name)
                if getattr(param, "is_path", False) and value and not Path(value).expanduser().is_absolute():
                    node._values[name] = str((Path(folder) / value).resolve())
                    changed.append(f"{node.id}.{name}")
        return changed

    def snapshot(self) -> "Project":
        """An independent copy for a run or a deploy: same contents, same file (for relative paths)."""
        return Project.loads(self.dumps(), self.path if self.path is not None else "<memory>")

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT_ID,
            "schema_version": SCHEMA_VERSION,
            "metadata": dict(self.metadata),
            "settings": self.settings.values_json(),
            "graph": self.graph.to_json(),
            "view": self.view,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=False, allow_nan=False) + "\n"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Project):
            return NotImplemented
        a, b = self.to_json(), other.to_json()
        for d in (a, b):
            d["metadata"] = {k: v for k, v in d["metadata"].items() if k != "modified"}
        return a == b

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None, *, keep_backup: bool = True) -> Path:
        """Write atomically: temporary file, flush, fsync, rename; the old file becomes ``.bak``."""
        target = Path(path) if path else self.path
        if target is None:
            raise ProjectFileError("<unsaved>", "no file name given; choose one with Save As")
        if target.suffix != SUFFIX:
            target = target.with_suffix(target.suffix + SUFFIX) if target.suffix else target.with_suffix(SUFFIX)
        self.metadata["modified"] = _now()
        text = self.dumps()
        atomic_write_text(target, text, keep_backup=keep_backup)
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | Path) -> "Project":
        path = Path(path)
        remove_orphaned_temps(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ProjectFileError(str(path), "file not found; check the path") from None
        except OSError as exc:
            raise ProjectFileError(str(path), f"cannot read the file: {exc.strerror}") from None
        if size > MAX_FILE_BYTES:
            raise ProjectFileError(str(path), f"file is {size} bytes, larger than the "
                                              f"{MAX_FILE_BYTES} byte limit of project files")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ProjectFileError(str(path), f"cannot read the file: {exc.strerror}") from None
        return cls.loads(raw, path)

    @classmethod
    def loads(cls, raw: bytes | str, path: str | Path = "<memory>") -> "Project":
        """Parse a project from bytes or text; every problem raises :class:`ProjectFileError`."""
        where = str(path)
        try:
            text = raw.decode("utf-8-sig") if isinstance(raw, (bytes, bytearray)) else raw
        except UnicodeDecodeError as exc:
            raise ProjectFileError(where, f"not UTF-8 text (bad byte at offset {exc.start}); is "
                                          "this a Synweave project file?") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise ProjectFileError(where, f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                                          f"{exc.msg}") from None
        except (ValueError, RecursionError) as exc:
            raise ProjectFileError(where, f"invalid JSON: {exc}") from None
        try:
            return _project_from_json(data, where, Path(path) if where != "<memory>" else None)
        except ProjectFileError:
            raise
        except RecursionError:
            raise ProjectFileError(where, "the document is nested too deeply") from None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in project files; use a finite number")


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def remove_orphaned_temps(target: Path) -> list[Path]:
    """Delete temporary files a killed save of ``target`` left next to it; return them."""
    removed = []
    try:
        candidates = list(Path(target).parent.glob(f"{_temp_prefix(Path(target))}*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        try:
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:  # make renames durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _replace_backup(target: Path, backup: Path) -> None:
    """Make ``backup`` a complete copy of ``target`` in one rename (never torn or empty).

    A hard link to the current file is renamed over the old backup; where links are not
    supported (FAT, some network shares) a fully written and synced copy is renamed instead.
    """
    fd, staged = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        os.unlink(staged)
        try:
            os.link(target, staged)
        except OSError:
            shutil.copy2(target, staged)
            with open(staged, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(staged, backup)
    except BaseException:
        if os.path.lexists(staged):
            os.unlink(staged)
        raise


def atomic_write_text(target: Path, text: str, *, keep_backup: bool = True) -> None:
    """Write text so that a crash leaves either the old or the new file, never a torn one.

    The previous file becomes ``<name>.bak`` atomically too; the new file keeps the permission
    bits of the file it replaces (a new file gets the usual ``0666 & ~umask``); temporary files
    of an earlier, killed save are removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temps(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if keep_backup and target.exists():
            _replace_backup(target, target.with_name(target.name + ".bak"))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


# ----------------------------------------------------------------------------------------------
# Migrations: each takes a document of version v and returns one of version v + 1.
# ----------------------------------------------------------------------------------------------
def _migrate_1_to_2(doc: dict, where: str) -> dict:
    """Schema 1 (Synweave 0.0.x) kept settings at the top level, positions as x/y fields and
    wires as ``"node.port"`` strings; schema 2 groups them and adds groups, comments and view."""
    _expect(doc, dict, where, "$")
    nodes_in = _expect(doc.get("nodes", []), list, where, "$.nodes")
    new_nodes = []
    for i, n in enumerate(nodes_in):
        n = _expect(n, dict, where, f"$.nodes[{i}]")
        new_nodes.append({"id": n.get("id"), "type": n.get("type"), "label": n.get("label", ""),
                          "position": [n.get("x", 0.0), n.get("y", 0.0)],
                          "params": n.get("params", {})})
    new_edges = []
    for i, e in enumerate(_expect(doc.get("edges", []), list, where, "$.edges")):
        e = _expect(e, dict, where, f"$.edges[{i}]")
        parts = []
        for key in ("from", "to"):
            ref = _expect(e.get(key), str, where, f"$.edges[{i}].{key}")
            if "." not in ref:
                raise ProjectFileError(where, f"expected 'node.port', got {ref!r}",
                                       f"$.edges[{i}].{key}")
            parts.extend(ref.rsplit(".", 1))
        new_edges.append(dict(zip(("src", "src_port", "dst", "dst_port"), parts)))
    settings = {k: doc[k] for k in ("dt", "duration", "seed", "backend") if k in doc}
    return {
        "format": FORMAT_ID,
        "schema_version": 2,
        "metadata": {"name": doc.get("name", "Untitled"), "description": doc.get("description", "")},
        "settings": settings,
        "graph": {"nodes": new_nodes, "edges": new_edges, "groups": [], "comments": []},
        "view": {},
    }


MIGRATIONS: dict[int, Callable[[dict, str], dict]] = {1: _migrate_1_to_2}


def migrate(doc: dict, where: str) -> dict:
    version = doc.get("schema_version", doc.get("version"))
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectFileError(where, f"schema_version must be an integer, got {version!r}",
                               "$.schema_version")
    if version > SCHEMA_VERSION:
        raise ProjectFileError(where, f"written by a newer Synweave (schema {version}; this version "
                                      f"reads up to {SCHEMA_VERSION}); update Synweave to open it",
                               "$.schema_version")
    if version < 1:
        raise ProjectFileError(where, f"unknown schema version {version}", "$.schema_version")
    while version < SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc, where)
        version += 1
    return doc


# ----------------------------------------------------------------------------------------------
# Parsing with JSON paths
# ----------------------------------------------------------------------------------------------
_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer",
               float: "a number", bool: "true or false"}


def _expect(value: Any, kind: type | tuple, where: str, jpath: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
        raise ProjectFileError(where, f"expected {wanted}, got {shown}", jpath)
    return value


def _check_numbers_finite(data: Any, where: str) -> None:
    """Every number in the document is finite: ``1e400`` parses as infinity (and a 400-digit
    integer overflows every float), which could then never be written back."""
    stack: list[tuple[Any, str]] = [(data, "$")]
    while stack:
        value, jpath = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, f"{jpath}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{jpath}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                finite = math.isfinite(float(value))
            except OverflowError:
                finite = False
            if not finite:
                raise ProjectFileError(where, "a number is too large (it reads as infinity); use a "
                                              "finite number, at most about 1.8e308", jpath)


def _project_from_json(data: Any, where: str, path: Path | None) -> Project:
    _expect(data, dict, where, "$")
    _check_numbers_finite(data, where)
    fmt = data.get("format")
    if fmt != FORMAT_ID:
        raise ProjectFileError(where, f"not a Synweave project (format is {fmt!r}, expected "
                                      f"{FORMAT_ID!r})", "$.format")
    data = migrate(data, where)
    known = {"format", "schema_version", "metadata", "settings", "graph", "view"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProjectFileError(where, f"unknown top-level key(s) {unknown}; allowed: {sorted(known)}",
                               f"$.{unknown[0]}")
    metadata = _expect(data.get("metadata", {}), dict, where, "$.metadata")
    for key, value in metadata.items():
        _expect(value, str, where, f"$.metadata.{key}")
    settings = _parse_settings(_expect(data.get("settings", {}), dict, where, "$.settings"), where)
    graph = _parse_graph(_expect(data.get("graph", {}), dict, where, "$.graph"), where, "$.graph")
    view = _expect(data.get("view", {}), dict, where, "$.view")
    return Project(graph, settings, metadata, view, path)


def _parse_settings(obj: dict, where: str) -> SimulationSettings:
    settings = SimulationSettings()
    for key, value in obj.items():
        if key not in settings.params:
            raise ProjectFileError(where, f"unknown setting {key!r}; known: "
                                          f"{', '.join(settings.params)}", f"$.settings.{key}")
        try:
            settings.set(key, value)
        except ParameterError as exc:
            raise ProjectFileError(where, exc.detail, f"$.settings.{key}") from None
    return settings


def _parse_node(obj: Any, where: str, jpath: str) -> NodeType:
    _expect(obj, dict, where, jpath)
    node_id = _expect(obj.get("id"), str, where, f"{jpath}.id")
    if not node_id or len(node_id) > 200:
        raise ProjectFileError(where, "node ids must be 1 to 200 characters", f"{jpath}.id")
    type_id = _expect(obj.get("type"), str, where, f"{jpath}.type")
    label = _expect(obj.get("label", ""), str, where, f"{jpath}.label")
    position = _expect(obj.get("position", [0.0, 0.0]), list, where, f"{jpath}.position")
    if len(position) != 2:
        raise ProjectFileError(where, f"expected [x, y], got {len(position)} values",
                               f"{jpath}.position")
    for i, c in enumerate(position):
        _expect(c, (int, float), where, f"{jpath}.position[{i}]")
        if not math.isfinite(c) or abs(c) > 1e9:
            raise ProjectFileError(where, f"coordinate {c!r} is out of range", f"{jpath}.position[{i}]")
    params = _expect(obj.get("params", {}), dict, where, f"{jpath}.params")
    cls = catalogue.node_type(type_id)  # UnknownNodeTypeError is collected by the caller
    node = cls(node_id, label, (float(position[0]), float(position[1])))
    for name, value in params.items():
        if name not in cls.params:
            raise ProjectFileError(where, f"{type_id} has no parameter {name!r}; known: "
                                          f"{', '.join(cls.params)}", f"{jpath}.params.{name}")
        try:
            node.set(name, value)
        except ParameterError as exc:
            raise ProjectFileError(where, f"node {node_id!r}: {exc.detail}",
                                   f"{jpath}.params.{name}") from None
    return node


def _parse_graph(obj: dict, where: str, root: str) -> ModelGraph:
    graph = ModelGraph()
    raw_nodes = _expect(obj.get("nodes", []), list, where, f"{root}.nodes")
    unknown_types = []
    for i, raw in enumerate(raw_nodes):
        try:
            node = _parse_node(raw, where, f"{root}.nodes[{i}]")
        except UnknownNodeTypeError as exc:
            unknown_types.extend(exc.type_ids)
            continue
        if node.id in graph:
            raise ProjectFileError(where, f"duplicate node id {node.id!r}", f"{root}.nodes[{i}].id")
        graph._insert(node)
    if unknown_types:
        raise ProjectFileError(where, str(UnknownNodeTypeError(unknown_types)), f"{root}.nodes")
    for i, raw in enumerate(_expect(obj.get("edges", []), list, where, f"{root}.edges")):
        jpath = f"{root}.edges[{i}]"
        _expect(raw, dict, where, jpath)
        fields = [_expect(raw.get(k), str, where, f"{jpath}.{k}")
                  for k in ("src", "src_port", "dst", "dst_port")]
        ok, reason = graph.can_connect(*fields)
        if not ok:
            raise ProjectFileError(where, f"invalid wire: {reason}", jpath)
        edge = Edge(*fields)
        graph._g.add_edge(edge.src, edge.dst, key=edge, edge=edge)
    for i, raw in enumerate(_expect(obj.get("groups", []), list, where, f"{root}.groups")):
        jpath = f"{root}.groups[{i}]"
        _expect(raw, dict, where, jpath)
        members = _expect(raw.get("members", []), list, where, f"{jpath}.members")
        for j, m in enumerate(members):
            _expect(m, str, where, f"{jpath}.members[{j}]")
            if m not in graph:
                raise ProjectFileError(where, f"group member {m!r} is not a node", f"{jpath}.members[{j}]")
        group = Group(_expect(raw.get("id"), str, where, f"{jpath}.id"),
                      _expect(raw.get("title", ""), str, where, f"{jpath}.title"), tuple(members),
                      _expect(raw.get("colour", "#4a5a6a"), str, where, f"{jpath}.colour"))
        graph.groups[group.id] = group
    for i, raw in enumerate(_expect(obj.get("comments", []), list, where, f"{root}.comments")):
        jpath = f"{root}.comments[{i}]"
        _expect(raw, dict, where, jpath)
        pos = _expect(raw.get("position", [0, 0]), list, where, f"{jpath}.position")
        if len(pos) != 2 or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                    and math.isfinite(c) for c in pos):
            raise ProjectFileError(where, "expected [x, y] with finite numbers", f"{jpath}.position")
        comment = Comment(_expect(raw.get("id"), str, where, f"{jpath}.id"),
                          _expect(raw.get("text", ""), str, where, f"{jpath}.text"),
                          (float(pos[0]), float(pos[1])))
        graph.comments[comment.id] = comment
    return graph


def parse_fragment(data: Any) -> tuple[list[NodeType], list[Edge]]:
    """Validate a copied fragment (clipboard JSON); raise ProjectFileError if it is malformed."""
    where = "<clipboard>"
    _expect(data, dict, where, "$")
    if data.get("format") != "synweave-fragment":
        raise ProjectFileError(where, "not a Synweave fragment", "$.format")
    try:
        graph = _parse_graph({"nodes": data.get("nodes", []), "edges": data.get("edges", [])},
                             where, "$")
    except GraphError as exc:
        raise ProjectFileError(where, str(exc)) from None
    return list(graph.nodes.values()), graph.edges


def example_projects() -> list[Path]:
    """The example projects bundled in resources/examples."""
    folder = Path(__file__).resolve().parent.parent / "resources" / "examples"
    return sorted(folder.glob(f"*{SUFFIX}"))
