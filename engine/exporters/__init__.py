"""Headless exporters and importers: GraphML, SVG, CSV / npz results, NIR, NEST (no Qt).

Every exporter is one function ``export_<format>(project, out, **options) -> ExportReport``.
The report lists, node by node, everything the target format cannot carry and every
conversion applied, so that nothing is ever dropped silently; the CLI prints it and the GUI's
File > Export dialog shows the same lines.

``export(project, fmt, out, **options)`` dispatches on the format name; :data:`FORMATS`
describes each format (suffix, what it writes) for the CLI and the GUI.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.errors import ExportError


@dataclass(frozen=True)
class ReportItem:
    """One line of an export report.

    ``level`` is ``"dropped"`` (not carried by the format), ``"converted"`` (carried with an
    explicit conversion or approximation) or ``"note"``.
    """

    node: str
    level: str
    message: str

    def __str__(self) -> str:
        return f"{self.level:<9} {self.node}: {self.message}"


@dataclass
class ExportReport:
    """What an export wrote and what it could not carry."""

    format: str
    written: list[Path] = field(default_factory=list)
    items: list[ReportItem] = field(default_factory=list)

    def add(self, node: str, level: str, message: str) -> None:
        item = ReportItem(node, level, message)
        if item not in self.items:
            self.items.append(item)

    def about(self, node: str) -> list:
        """The items already reported for ``node``."""
        return [i for i in self.items if i.node == node]

    def dropped(self, node: str, message: str) -> None:
        self.add(node, "dropped", message)

    def converted(self, node: str, message: str) -> None:
        self.add(node, "converted", message)

    def note(self, node: str, message: str) -> None:
        self.add(node, "note", message)

    def of_level(self, level: str) -> list[ReportItem]:
        return [i for i in self.items if i.level == level]

    def lines(self) -> list[str]:
        out = [f"wrote {p}" for p in self.written]
        dropped = self.of_level("dropped")
        if dropped:
            out.append(f"not carried by {self.format} ({len(dropped)}):")
            out += [f"  {i.node}: {i.message}" for i in dropped]
        converted = self.of_level("converted")
        if converted:
            out.append(f"converted ({len(converted)}):")
            out += [f"  {i.node}: {i.message}" for i in converted]
        notes = self.of_level("note")
        if notes:
            out.append("notes:")
            out += [f"  {i.node}: {i.message}" for i in notes]
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class FormatInfo:
    name: str
    suffix: str          # "" when the output is a folder
    title: str
    description: str


FORMATS: dict[str, FormatInfo] = {
    "graphml": FormatInfo("graphml", ".graphml", "GraphML",
                          "model graph, or the expanded connectome (--what connectome), for networkx/Gephi"),
    "svg": FormatInfo("svg", ".svg", "SVG picture", "a picture of the model graph as drawn on the canvas"),
    "csv": FormatInfo("csv", "", "CSV tables",
                      "recorded spikes, states, rates and weights, one CSV file per monitor, in a folder"),
    "npz": FormatInfo("npz", ".npz", "NumPy .npz",
                      "recorded spikes, states, rates and weights with times in ms and monitor labels"),
    "nir": FormatInfo("nir", ".nir", "NIR", "Neuromorphic Intermediate Representation (HDF5) "
                                             "for snnTorch, Norse, Sinabs, Rockpool, Lava ..."),
    "nest": FormatInfo("nest", ".py", "NEST script", "a standalone PyNEST script that writes spikes to files"),
}


def safe_name(text: str) -> str:
    """A file-name-safe version of a label or id (letters, digits, ``_``, ``-``, ``.``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
    return cleaned or "unnamed"


def default_output(project_path: Path | None, fmt: str, what: str = "") -> Path:
    """``cuba.swproj`` -> ``cuba.nir`` (or ``cuba_connectome.graphml``, ``cuba_results/`` for CSV)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    stem = project_path.with_suffix("") if project_path else Path("export")
    if what and what != "model":
        stem = stem.with_name(f"{stem.name}_{what}")
    if fmt == "csv":
        return stem.with_name(stem.name + "_results")
    if fmt == "npz":
        return stem.with_name(stem.name + "_results.npz")
    if fmt == "nest":
        return stem.with_name(stem.name + "_nest.py")
    return stem.with_suffix(FORMATS[fmt].suffix)


def write_atomic(out: Path, write) -> None:
    """Write through a temporary file in the same folder and rename (no torn files)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an export is an ordinary file
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _exporter(fmt: str) -> Callable:
    if fmt == "graphml":
        from engine.exporters.graphml import export_graphml
        return export_graphml
    if fmt == "svg":
        from engine.exporters.svg import export_svg
        return export_svg
    if fmt in ("csv", "npz"):
        from engine.exporters.results import export_results
        return lambda project, out, **kw: export_results(project, out, fmt=fmt, **kw)
    if fmt == "nir":
        from engine.exporters.nir_io import export_nir
        return export_nir
    if fmt == "nest":
        from engine.exporters.nest_script import export_nest_script
        return export_nest_script
    raise ExportError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


def export(project, fmt: str, out, **options) -> ExportReport:
    """Export ``project`` (an :class:`engine.project.Project`) to ``out`` in format ``fmt``.

    Options are format specific (see each exporter); unknown options raise a ``TypeError``
    from the exporter, which is a programming error, not a user mistake.
    """
    return _exporter(fmt)(project, Path(out), **options)


IMPORT_SUFFIXES = {".nir": "NIR", ".csv": "connectome", ".npz": "connectome"}


def import_file(src, out, dt_ms: float | None = None, spikes: str | None = None):
    """A project from a NIR graph (.nir) or a connectome (.csv / .npz edge list or adjacency matrix),
    written to ``out``; returns ``(project, report, kind)``."""
    src, out = Path(src), Path(out)
    kind = IMPORT_SUFFIXES.get(src.suffix.lower())
    if kind == "NIR":
        from engine.exporters.nir_io import import_nir

        project, report = import_nir(src, out, dt_ms=dt_ms, spikes=spikes)
    elif kind == "connectome":
        from engine.exporters.connectome_import import import_connectome

        if spikes:
            raise ExportError("the spike convention applies to .nir files only")
        project, report = import_connectome(src, out, dt_ms=dt_ms or 0.1)
    else:
        raise ExportError(f"{src}: import reads .nir graphs, or .csv / .npz edge lists and adjacency matrices")
    return project, report, kind
