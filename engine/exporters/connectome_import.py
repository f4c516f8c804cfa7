"""A connectome (edge list or adjacency matrix) as a project: one population and one projection.

Accepted files
--------------
edge list    ``.npz`` with integer arrays ``pre``, ``post`` (optional ``weight``, ``delay`` in ms), or
             ``.csv`` with columns ``pre,post[,weight[,delay_ms]]`` (a header line is skipped)
adjacency    ``.npz`` holding one square 2-D array (or one named ``adjacency``), or a ``.csv`` square
             matrix of numbers; entry ``A[i, j]`` is the weight of the synapse from neuron i onto
             neuron j (row = presynaptic), 0 = no synapse

The project holds a LIF population of N neurons (N = matrix size, or the largest index + 1), a
recurrent projection reading the connection list (``from_file``; weights keep their sign, so
inhibitory synapses are negative entries), and a spike monitor. An adjacency matrix is stored as an
edge list ``<project>_connections.npz`` next to the project. Nothing drives the network yet: add an
input (the report says so).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.errors import ExportError, ParameterError
from engine.exporters import ExportReport, write_atomic

ADJACENCY_KEYS = ("adjacency", "matrix", "weights", "A", "W")


def _read_adjacency(path: Path) -> np.ndarray | None:
    """The square matrix of an adjacency file, or None when the file is an edge list."""
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if {"pre", "post"} <= set(data.files):
                    return None
                named = [k for k in ADJACENCY_KEYS if k in data.files]
                keys = named or data.files
                if len(keys) != 1:
                    raise ExportError(f"{path}: expected arrays 'pre' and 'post' (edge list) or one square "
                                      f"array (adjacency), found {sorted(data.files)}")
                matrix = np.asarray(data[keys[0]], np.float64)
        except (OSError, ValueError) as exc:
            raise ExportError(f"{path}: not a readable .npz ({exc})") from None
    elif path.suffix.lower() == ".csv":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ExportError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise ExportError(f"{path}: the file is empty")
        first = [c.strip().lower() for c in lines[0].split(",")]
        if first[:2] == ["pre", "post"]:
            return None
        try:
            rows = [[float(c) for c in ln.split(",")] for ln in lines]
        except ValueError:
            return None  # a header of another spelling: let the edge-list reader explain
        if len({len(r) for r in rows}) != 1 or len(rows) != len(rows[0]) or len(rows) < 2:
            return None
        matrix = np.asarray(rows, np.float64)
        if len(rows) <= 4:
            raise ExportError(f"{path}: a {len(rows)}x{len(rows)} table could be an adjacency matrix or an "
                              "edge list; give the edge list a 'pre,post,...' header line")
    else:
        raise ExportError(f"{path}: use a .npz or .csv edge list or adjacency matrix")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ExportError(f"{path}: an adjacency matrix must be square, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ExportError(f"{path}: the matrix holds NaN or infinite entries")
    return matrix


def import_connectome(path: Path, out: Path, label: str = "Connectome", dt_ms: float = 0.1):
    """Write a project with the connectome of ``path`` to ``out``; return ``(project, report)``."""
    from engine.encoders import load_connection_file
    from engine.project import Project, SimulationSettings

    path, out = Path(path), Path(out)
    if not path.exists():
        raise ExportError(f"{path}: file not found")
    report = ExportReport("connectome import")
    matrix = _read_adjacency(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if matrix is not None:
        pre, post = np.nonzero(matrix)
        n = matrix.shape[0]
        arrays = dict(pre=pre.astype(np.int64), post=post.astype(np.int64), weight=matrix[pre, post])
        conn = out.with_name(out.stem + "_connections.npz")

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        write_atomic(conn, write)
        report.written.append(conn)
        report.converted(label, f"{n}x{n} adjacency matrix (row = presynaptic) -> {pre.size:,} synapses in "
                                f"{conn.name}")
        weights = arrays["weight"]
        file_ref = conn.name
    else:
        big = np.iinfo(np.int32).max
        try:
            pre, post, weights, delays = load_connection_file(path, big, big)
        except ParameterError as exc:
            raise ExportError(str(exc)) from None
        n = int(max(pre.max(initial=-1), post.max(initial=-1)) + 1)
        if n == 0:
            raise ExportError(f"{path}: the edge list has no synapses")
        file_ref = os.path.relpath(path.resolve(), out.resolve().parent)  # project paths are relative
        report.note(label, f"edge list of {pre.size:,} synapses among {n:,} neurons (largest index + 1); the "
                           f"projection reads {path.name} directly")
        if weights is None:
            report.note(label, "no weights in the file: every synapse gets the projection's weight")
    project = Project(settings=SimulationSettings(dt=dt_ms),
                      metadata={"name": path.stem, "description": f"connectome imported from {path.name}"})
    g = project.graph
    pop = g.add_node("neuron.lif", label, (300, 0), n=n, synapse="delta", t_ref=0.0)
    prj = g.add_node("synapse.projection", f"{label} synapses", (300, 260), connectivity="from_file",
                     file=file_ref, autapses=True, delay=dt_ms)
    mon = g.add_node("monitor.spikes", "Spikes", (620, 0))
    g.connect(pop.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    g.connect(pop.id, "spikes", mon.id, "source")
    if weights is not None and np.any(weights < 0):
        report.note(label, f"{int(np.sum(weights < 0)):,} negative weights act as inhibitory currents")
    report.note(label, "LIF neurons with delta synapses (weights in mV) and default parameters; nothing drives "
                       "the network yet: add an input")
    project.save(out, keep_backup=False)
    report.written.insert(0, project.path)
    return project, report
