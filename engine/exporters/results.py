"""Recorded results (spikes, states, rates, weights) to CSV tables or a labelled ``.npz``.

The input is a results file written by ``python main.py run FILE --out results.npz`` (or
:meth:`engine.runner.SimulationResults.save`); without one, the project is simulated first.
Keys read from a results file (steps are time-grid indices, times are ``step * dt`` in ms)::

    spikes/<monitor>/steps, spikes/<monitor>/indices
    states/<monitor>/<variable>/steps, states/<monitor>/<variable>/values   [samples, neurons]
    rates/<monitor>                                                       spike count per step
    weights/<monitor>/steps, weights/<monitor>/values                     [snapshots, ...]

CSV (a folder): ``spikes_<monitor>.csv`` (``time_ms,index``), ``state_<monitor>_<var>.csv``
(``time_ms`` then one column per recorded neuron), ``rate_<monitor>.csv``
(``time_ms,count,rate_hz``), ``weights_<monitor>.csv`` (``time_ms`` then one column per recorded
value), and ``monitors.csv`` listing every file with the monitor's label and target.

npz: the same data with times in ms: ``spikes/<monitor>/times_ms``, ``.../indices``,
``states/<monitor>/<var>/times_ms``, ``.../values``, ``rates/<monitor>/times_ms``, ``.../rate_hz``,
``weights/<monitor>/times_ms``, ``.../values``, and ``monitors`` (JSON text: id -> label, kind,
target, file keys), ``dt_ms``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from engine.errors import ExportError
from engine.exporters import ExportReport, safe_name, write_atomic

KINDS = ("spikes", "states", "rates", "weights")


class RecordedData:
    """Arrays of a results file grouped by kind and monitor (read without pickle)."""

    def __init__(self, dt: float, n_steps: int, sizes: dict):
        self.dt = float(dt)
        self.n_steps = int(n_steps)
        self.sizes = sizes
        self.spikes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.states: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        self.rates: dict[str, np.ndarray] = {}
        self.weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def load(cls, path) -> "RecordedData":
        """Read a results ``.npz`` from a path or a binary file object."""
        path = path if hasattr(path, "read") else Path(path)
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise ExportError(f"{path}: results file not found; write one with "
                              "`python main.py run FILE --out results.npz`") from None
        except (OSError, ValueError) as exc:
            raise ExportError(f"{path}: not a results .npz ({exc})") from None
        with data:
            if "dt" not in data.files:
                raise ExportError(f"{path}: no 'dt' array; is this a results file of `python main.py run --out`?")
            sizes = json.loads(str(data["sizes"])) if "sizes" in data.files else {}
            rec = cls(float(data["dt"]), int(data["n_steps"]) if "n_steps" in data.files else 0, sizes)
            for key in data.files:
                parts = key.split("/")
                if parts[0] == "spikes" and parts[-1] == "steps":
                    name = "/".join(parts[1:-1])
                    rec.spikes[name] = (data[key], _require(data, f"spikes/{name}/indices", path))
                elif parts[0] == "rates" and len(parts) >= 2:
                    rec.rates["/".join(parts[1:])] = data[key]
                elif parts[0] == "states" and parts[-1] == "steps":
                    name, var = "/".join(parts[1:-2]), parts[-2]
                    rec.states.setdefault(name, {})[var] = (
                        data[key], _require(data, f"states/{name}/{var}/values", path))
                elif parts[0] == "weights" and parts[-1] == "steps":
                    name = "/".join(parts[1:-1])
                    rec.weights[name] = (data[key], _require(data, f"weights/{name}/values", path))
        return rec

    @classmethod
    def from_results(cls, results) -> "RecordedData":
        """From an in-memory :class:`engine.runner.SimulationResults` (same layout as its file)."""
        buf = io.BytesIO()
        results.save(buf)
        buf.seek(0)
        return cls.load(buf)

    def monitors(self) -> list[tuple[str, str]]:
        """``(kind, monitor)`` of everything recorded, in a stable order."""
        out = [("spikes", m) for m in self.spikes] + [("rates", m) for m in self.rates]
        out += [("states", m) for m in self.states] + [("weights", m) for m in self.weights]
        return out

    def is_empty(self) -> bool:
        return not (self.spikes or self.states or self.rates or self.weights)


def _require(data, key: str, path: Path) -> np.ndarray:
    if key not in data.files:
        raise ExportError(f"{path}: {key!r} is missing (the file is incomplete)")
    return data[key]


def _as_2d(values: np.ndarray, n_rows: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 1:
        return values.reshape(n_rows, -1) if n_rows and values.size % n_rows == 0 else values[:, None]
    return values.reshape(values.shape[0], -1)


def recorded_data(project, results: str | Path | None = None, duration_ms: float | None = None,
                  backend: str | None = None) -> RecordedData:
    """Data of a results file, or of a fresh headless run of ``project`` when ``results`` is None."""
    if results is not None:
        return RecordedData.load(Path(results))
    from engine.runner import Simulation

    settings = {"duration": duration_ms} if duration_ms else {}
    sim = Simulation(project, backend=backend or project.settings.backend, settings=settings)
    return RecordedData.from_results(sim.run(duration_ms or project.settings.duration))


def _monitor_info(project, monitor: str) -> tuple[str, str]:
    """(label, target label) of a monitor node id; the id itself when the project lacks it."""
    graph = project.graph
    if monitor not in graph:
        return monitor, ""
    node = graph.node(monitor)
    port = next(iter(p.name for p in node.inputs()), None)
    ups = graph.upstream(monitor, port) if port else []
    return node.label, (ups[0][0].label if ups else "")


def export_results(project, out: Path, fmt: str = "csv", results: str | Path | None = None,
                   duration_ms: float | None = None, backend: str | None = None, **_ignored) -> ExportReport:
    """Write recorded data as CSV tables (a folder) or a labelled ``.npz``."""
    rec = recorded_data(project, results, duration_ms, backend)
    report = ExportReport("CSV" if fmt == "csv" else "npz")
    if rec.is_empty():
        report.note("results", "nothing was recorded: add spike, state, rate or weight monitors")
    dt = rec.dt
    if fmt == "csv":
        _write_csv_folder(project, rec, Path(out), report)
    elif fmt == "npz":
        _write_npz(project, rec, Path(out), report)
    else:
        raise ExportError(f"results export writes csv or npz, not {fmt!r}")
    report.note("results", f"{len(rec.monitors())} recorded item(s), dt = {dt:g} ms, "
                           f"{rec.n_steps:,} steps; times are step x dt in ms")
    return report


def _csv_text(header: list[str], columns: list[np.ndarray]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    if columns and len(columns[0]):
        writer.writerows(zip(*(c.tolist() for c in columns)))
    return buf.getvalue()


def _tables(rec: RecordedData) -> list[tuple[str, str, str, list[str], list[np.ndarray]]]:
    """(kind, monitor, variable, header, columns) of every table to write."""
    dt = rec.dt
    out = []
    for name, (steps, idx) in rec.spikes.items():
        out.append(("spikes", name, "", ["time_ms", "index"],
                    [np.round(steps.astype(np.float64) * dt, 9), idx.astype(np.int64)]))
    for name, counts in rec.rates.items():
        n = rec.sizes.get(name, 0)
        rate = counts.astype(np.float64) / (n * dt / 1000.0) if n else np.zeros(len(counts))
        out.append(("rates", name, "", ["time_ms", "count", "rate_hz"],
                    [np.round(np.arange(len(counts)) * dt, 9), counts.astype(np.int64), rate]))
    for name, variables in rec.states.items():
        for var, (steps, values) in variables.items():
            v = _as_2d(values, len(steps))
            out.append(("states", name, var, ["time_ms"] + [f"n{i}" for i in range(v.shape[1])],
                        [np.round(steps.astype(np.float64) * dt, 9)] + [v[:, i] for i in range(v.shape[1])]))
    for name, (steps, values) in rec.weights.items():
        v = _as_2d(values, len(steps))
        out.append(("weights", name, "", ["time_ms"] + [f"w{i}" for i in range(v.shape[1])],
                    [np.round(steps.astype(np.float64) * dt, 9)] + [v[:, i] for i in range(v.shape[1])]))
    return out


_CSV_PREFIX = {"spikes": "spikes", "rates": "rate", "states": "state", "weights": "weights"}


def _write_csv_folder(project, rec: RecordedData, folder: Path, report: ExportReport) -> None:
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file; CSV export writes a folder of tables, give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = [["file", "kind", "monitor", "label", "target", "variable", "rows"]]
    for kind, name, var, header, columns in _tables(rec):
        fname = f"{_CSV_PREFIX[kind]}_{safe_name(name)}{'_' + safe_name(var) if var else ''}.csv"
        text = _csv_text(header, columns)
        write_atomic(folder / fname, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))
        label, target = _monitor_info(project, name)
        manifest.append([fname, kind, name, label, target, var, str(len(columns[0]))])
        report.written.append(folder / fname)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(manifest)
    write_atomic(folder / "monitors.csv", lambda tmp: Path(tmp).write_text(buf.getvalue(), encoding="utf-8"))
    report.written.append(folder / "monitors.csv")


def _write_npz(project, rec: RecordedData, out: Path, report: ExportReport) -> None:
    dt = rec.dt
    arrays: dict[str, np.ndarray] = {"dt_ms": np.array(dt)}
    index: dict[str, dict] = {}
    for name, (steps, idx) in rec.spikes.items():
        arrays[f"spikes/{name}/times_ms"] = steps.astype(np.float64) * dt
        arrays[f"spikes/{name}/indices"] = idx
    for name, counts in rec.rates.items():
        n = rec.sizes.get(name, 0)
        arrays[f"rates/{name}/times_ms"] = np.arange(len(counts)) * dt
        arrays[f"rates/{name}/count"] = counts
        arrays[f"rates/{name}/rate_hz"] = counts.astype(np.float64) / (n * dt / 1000.0) if n else np.zeros(len(counts))
    for name, variables in rec.states.items():
        for var, (steps, values) in variables.items():
            arrays[f"states/{name}/{var}/times_ms"] = steps.astype(np.float64) * dt
            arrays[f"states/{name}/{var}/values"] = values
    for name, (steps, values) in rec.weights.items():
        arrays[f"weights/{name}/times_ms"] = steps.astype(np.float64) * dt
        arrays[f"weights/{name}/values"] = values
    for kind, name in rec.monitors():
        label, target = _monitor_info(project, name)
        entry = index.setdefault(name, {"label": label, "target": target, "kinds": []})
        entry["kinds"].append(kind)
    arrays["monitors"] = np.array(json.dumps(index))

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the name
            np.savez_compressed(f, **arrays)

    write_atomic(out, write)
    report.written.append(out)
