"""Running simulations: chunked stepping, live chunks, pause/resume/stop, progress, state files, results.

Typical use::

    sim = Simulation(plan)                      # or a project / graph (compiled by engine.compiler)
    results = sim.run(1000.0)                   # ms
    results.save("results.npz")

Live viewers iterate over chunks (or pass ``callback=``)::

    for chunk in sim.iter_chunks(1000.0):
        viewer.add(chunk.spikes)

``pause()``, ``resume()`` and ``stop()`` may be called from any thread while ``run`` executes in a
worker thread; they take effect between chunks (chunks last ~``target_chunk_s`` of wall time).
Chunking never changes the result: a run split into chunks equals the one-shot run bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from engine.backends import get_backend
from engine.backends.base import ChunkResult
from engine.errors import SimulationError
from engine.plan import SimulationPlan, astrocyte_variables

#: most steps one chunk of :meth:`Simulation.iter_chunks` runs (data-set inputs are encoded per chunk)
MAX_CHUNK_STEPS = 1_000_000
#: the results of nodes evaluated after a run, each a dict of node id -> named arrays
ANALYSIS_GROUPS = ("readouts", "branching", "kernel_quality")

PHASES = ("validate", "compile", "jit", "run")


@dataclass
class Progress:
    """A progress report.

    Attributes
    ----------
    phase : {"validate", "compile", "jit", "run"}
    fraction : float
        0..1 within the phase.
    eta_s : float or None
        Estimated seconds left in the phase (run phase only).
    step, n_steps : int
        Steps done / planned in this ``run`` call.
    wall_s : float
        Seconds spent in the phase so far.
    """

    phase: str
    fraction: float
    eta_s: float | None = None
    step: int = 0
    n_steps: int = 0
    wall_s: float = 0.0
    message: str = ""
    #: training protocols (engine.training): the phase, its sample count and throughput
    phase_index: int = -1
    phase_name: str = ""
    sample: int = 0
    n_samples: int = 0
    samples_per_s: float = 0.0


def library_versions() -> dict:
    """Versions recorded in results files (reproducibility, PEERS.md §2.3)."""
    import numba

    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    try:
        from importlib.metadata import version

        versions["synweave"] = version("synweave")
    except Exception:  # not installed as a distribution: running from the source tree
        versions["synweave"] = "source"
    return versions


@dataclass
class SimulationResults:
    """Recorded data of a simulation, concatenated over chunks.

    Attributes
    ----------
    spikes : dict
        Monitor name -> ``(steps int32, indices int32)``.
    states : dict
        Monitor name -> ``{variable: (steps int64, values [n_samples, n_indices])}``.
    rates : dict
        Monitor name -> spike count per step.
    weights : dict
        Weight monitor name -> ``(steps int64, values [n_snapshots, n_synapses])``.
    weight_synapses : dict
        Weight monitor name -> ``(pre, post)`` neuron indices of the recorded synapses.
    readouts : dict
        Readout node id -> its results (accuracy, per_class_accuracy, confusion, ties, ...), filled
        at the end of :meth:`Simulation.run` by :func:`engine.readouts.analyse`.
    branching : dict
        Branching monitor node id -> ``branching_factor``, ``per_sample`` ...
    kernel_quality : dict
        Kernel-quality node id -> ``SP``, ``AP``, ``SP_minus_AP`` (MODELS.md §6.4) and the sizes.
    analysis_problems : list
        Why a readout or branching monitor has no numbers (one line each).
    """

    dt: float
    n_steps: int = 0
    _spikes: dict = field(default_factory=dict, repr=False)
    _states: dict = field(default_factory=dict, repr=False)
    _rates: dict = field(default_factory=dict, repr=False)
    _weights: dict = field(default_factory=dict, repr=False)
    _pending: list = field(default_factory=list, repr=False)
    weight_synapses: dict = field(default_factory=dict)
    readouts: dict = field(default_factory=dict)
    branching: dict = field(default_factory=dict)
    kernel_quality: dict = field(default_factory=dict)
    analysis_problems: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    wall_time_s: float = 0.0
    stopped: bool = False

    # -- convenience ---------------------------------------------------------------------------
    def spike_times(self, monitor: str) -> tuple[np.ndarray, np.ndarray]:
        """``(times_ms, indices)`` of a spike monitor."""
        steps, idx = self.spikes[monitor]
        return steps.astype(np.float64) * self.dt, idx

    @property
    def n_spikes(self) -> int:
        return sum(int(s.size) for s, _ in self.spikes.values())

    def mean_rate(self, monitor: str) -> float:
        """Mean firing rate (Hz) of the neurons a spike monitor watches, over the recorded steps."""
        steps, _ = self.spikes[monitor]
        n = self.sizes.get(monitor, 0)
        duration_s = self.n_steps * self.dt / 1000.0
        return float(steps.size) / (n * duration_s) if n and duration_s else 0.0

    def total_mean_rate(self) -> float:
        """Mean rate (Hz) over every neuron watched by a spike monitor."""
        n = sum(self.sizes.get(k, 0) for k in self.spikes)
        duration_s = self.n_steps * self.dt / 1000.0
        return self.n_spikes / (n * duration_s) if n and duration_s else 0.0

    # -- accumulation --------------------------------------------------------------------------
    # Chunks are kept as they come and concatenated when the data is read: appending one chunk per
    # sample to ever longer arrays would copy the whole record each time (quadratic).
    def _append(self, chunk: ChunkResult) -> None:
        self.n_steps += chunk.n_steps
        self._pending.append(chunk)

    def _consolidate(self) -> None:
        if not self._pending:
            return
        chunks, self._pending = self._pending, []
        chunk = ChunkResult.concatenate(chunks)
        spikes, rates, weights, states = self._spikes, self._rates, self._weights, self._states
        for name, (s, i) in chunk.spikes.items():
            if name in spikes:
                s0, i0 = spikes[name]
                s, i = np.concatenate([s0, s]), np.concatenate([i0, i])
            spikes[name] = (s, i)
        for name, counts in chunk.rates.items():
            rates[name] = np.concatenate([rates[name], counts]) if name in rates else counts
        for name, (steps, values) in chunk.weights.items():
            if name in weights:
                s0, v0 = weights[name]
                steps, values = np.concatenate([s0, steps]), np.concatenate([v0, values])
            weights[name] = (steps, values)
        for name, variables in chunk.states.items():
            store = states.setdefault(name, {})
            for var, (steps, values) in variables.items():
                if var in store:
                    s0, v0 = store[var]
                    steps, values = np.concatenate([s0, steps]), np.concatenate([v0, values])
                store[var] = (steps, values)

    @property
    def spikes(self) -> dict:
        self._consolidate()
        return self._spikes

    @property
    def states(self) -> dict:
        self._consolidate()
        return self._states

    @property
    def rates(self) -> dict:
        self._consolidate()
        return self._rates

    @property
    def weights(self) -> dict:
        self._consolidate()
        return self._weights

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write all recorded data, the settings and library versions to an ``.npz`` (no pickle)."""
        np.savez_compressed(path, **self.to_arrays())

    def to_arrays(self) -> dict:
        """Name -> array of everything recorded (the ``.npz`` layout of :meth:`save`)."""
        arrays = {
            "dt": np.array(self.dt), "n_steps": np.array(self.n_steps, np.int64),
            "settings": np.array(json.dumps(self.settings, default=str)),
            "versions": np.array(json.dumps(self.versions)),
            "sizes": np.array(json.dumps(self.sizes)),
            "wall_time_s": np.array(self.wall_time_s),
        }
        for name, (s, i) in self.spikes.items():
            arrays[f"spikes/{name}/steps"] = s
            arrays[f"spikes/{name}/indices"] = i
        for name, counts in self.rates.items():
            arrays[f"rates/{name}"] = counts
        for name, variables in self.states.items():
            for var, (steps, values) in variables.items():
                arrays[f"states/{name}/{var}/steps"] = steps
                arrays[f"states/{name}/{var}/values"] = values
        for name, (steps, values) in self.weights.items():
            arrays[f"weights/{name}/steps"] = steps
            arrays[f"weights/{name}/values"] = values
            if name in self.weight_synapses:
                arrays[f"weights/{name}/pre"], arrays[f"weights/{name}/post"] = self.weight_synapses[name]
        for group in ANALYSIS_GROUPS:
            for name, values in getattr(self, group).items():
                for key, value in values.items():
                    arrays[f"{group}/{name}/{key}"] = np.asarray(value)
        arrays["analysis_problems"] = np.array(json.dumps(self.analysis_problems))
        arrays["stopped"] = np.array(self.stopped)
        return arrays

    @classmethod
    def load(cls, path) -> "SimulationResults":
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays(data)

    @classmethod
    def from_arrays(cls, data) -> "SimulationResults":
        """Inverse of :meth:`to_arrays` (``data``: a mapping or an open ``.npz``)."""
        res = cls(dt=float(data["dt"]), n_steps=int(data["n_steps"]),
                  settings=json.loads(str(data["settings"])), versions=json.loads(str(data["versions"])),
                  sizes=json.loads(str(data["sizes"])), wall_time_s=float(data["wall_time_s"]))
        files = list(data.files) if hasattr(data, "files") else list(data)
        for key in files:
            parts = key.split("/")
            if parts[0] == "spikes" and parts[-1] == "steps":
                name = "/".join(parts[1:-1])
                res.spikes[name] = (data[key], data[f"spikes/{name}/indices"])
            elif parts[0] == "rates":
                res.rates["/".join(parts[1:])] = data[key]
            elif parts[0] == "states" and parts[-1] == "steps":
                name, var = "/".join(parts[1:-2]), parts[-2]
                res.states.setdefault(name, {})[var] = (data[key], data[f"states/{name}/{var}/values"])
            elif parts[0] == "weights" and parts[-1] == "steps":
                name = "/".join(parts[1:-1])
                res.weights[name] = (data[key], data[f"weights/{name}/values"])
                if f"weights/{name}/pre" in files:
                    res.weight_synapses[name] = (data[f"weights/{name}/pre"], data[f"weights/{name}/post"])
            elif parts[0] in ANALYSIS_GROUPS and len(parts) >= 3:
                value = data[key]
                value = value.item() if value.ndim == 0 else value
                getattr(res, parts[0]).setdefault("/".join(parts[1:-1]), {})[parts[-1]] = value
        if "analysis_problems" in files:
            res.analysis_problems = json.loads(str(data["analysis_problems"]))
        if "stopped" in files:
            res.stopped = bool(data["stopped"])
        return res


def noisy_run_progress(on_progress):
    """Progress of a kernel-quality node's noisy run, said to be that (None without a listener)."""
    if on_progress is None:
        return None

    def report(progress):
        on_progress(dataclasses.replace(progress, message=f"noisy inputs for the kernel quality (AP)"
                                                          f"{': ' + progress.message if progress.message else ''}"))
    return report


def next_chunk_steps(steps: int, wall_s: float, target_s: float) -> int:
    """Steps of the next chunk so that it lasts about ``target_s`` of wall time (responsive pause and
    stop, low call overhead): at most 4x the last chunk, at least 10 steps."""
    scale = target_s / max(wall_s, 1e-6)
    return int(min(max(steps * min(scale, 4.0), 10), MAX_CHUNK_STEPS))


class RunControls:
    """Pause / resume / stop from any thread; a run takes them up between chunks
    (:class:`Simulation`, :class:`engine.training.Protocol`)."""

    def _init_controls(self) -> None:
        self._pause = threading.Event()
        self._stop = threading.Event()
        #: a run this one started and waits for (a baseline, the noisy run of a kernel-quality
        #: node): pause, resume and stop reach it too
        self._sub_run = None

    def pause(self) -> None:
        """Hold the run after the current chunk until :meth:`resume` (or :meth:`stop`)."""
        self._pause.set()
        if self._sub_run is not None:
            self._sub_run.pause()

    def resume(self) -> None:
        self._pause.clear()
        if self._sub_run is not None:
            self._sub_run.resume()

    def stop(self) -> None:
        """End the current run after the current chunk; recorded data so far is kept."""
        self._stop.set()
        self._pause.clear()
        if self._sub_run is not None:
            self._sub_run.stop()

    def _run_sub(self, run, *args):
        """``run.run(*args)`` as this run's sub-run (see :attr:`_sub_run`); None when this run was
        stopped before the sub-run could start (a stop while it was being built: a run clears its
        own stop flag when it starts, so the stop is taken up here)."""
        self._sub_run = run
        try:
            if self._stop.is_set():
                return None
            if self._pause.is_set():
                run.pause()
            return run.run(*args)
        finally:
            self._sub_run = None

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    def _hold_while_paused(self) -> bool:
        """Wait while paused; True when the run is to stop."""
        while self._pause.is_set() and not self._stop.is_set():
            time.sleep(0.01)
        return self._stop.is_set()


class Simulation(RunControls):
    """A runnable simulation.

    Parameters
    ----------
    source : SimulationPlan, or a project / model graph
        Graphs and projects are compiled with :func:`engine.compiler.compile_graph`.
    backend : str
        Registered backend name (:func:`engine.backends.get_backend`).
    dtype : {"float32", "float64"}, optional
        Overrides the plan's dtype.
    seed : int, optional
        Overrides the plan's root seed.
    settings : dict, optional
        Passed to the compiler; recorded in the results.
    on_progress : callable, optional
        Called with a :class:`Progress` at each phase change and after every chunk.
    backend_options
        Extra keyword arguments of the backend constructor (e.g. ``parallel=False``).
    """

    def __init__(self, source, backend: str = "numba", dtype: str | None = None, seed: int | None = None,
                 settings: dict | None = None, on_progress: Callable[[Progress], None] | None = None,
                 **backend_options):
        self.settings = dict(settings or {})
        self.on_progress = on_progress
        self.progress = Progress("validate", 0.0)
        self._init_controls()
        self._lock = threading.Lock()
        self.target_chunk_s = 0.1
        if not isinstance(source, SimulationPlan):
            self._report(Progress("compile", 0.0))
            t0 = time.perf_counter()
            from engine.compiler import compile_graph  # lazy: phase 2 module, pulls in the graph model

            plan = compile_graph(source, self.settings)
            self._report(Progress("compile", 1.0, wall_s=time.perf_counter() - t0))
        else:
            plan = source
        if seed is not None:
            plan = dataclasses.replace(plan, seed=int(seed))
        if dtype is not None:
            plan = dataclasses.replace(plan, dtype=str(np.dtype(dtype)))
        #: the project a kernel-quality node's noisy run is made from (None for a plan)
        self.project = None if isinstance(source, SimulationPlan) else source
        self._backend_options = dict(backend_options)
        self._report(Progress("validate", 0.0))
        plan.validate()
        self._report(Progress("validate", 1.0))
        self.plan = plan
        self.backend_name = backend
        t0 = time.perf_counter()
        self._report(Progress("jit", 0.0, message="building state"))
        self.backend = get_backend(backend)(plan, dtype=plan.dtype, **backend_options)
        self.setup_time_s = time.perf_counter() - t0
        self._report(Progress("jit", 0.5, message="compiling kernels"))
        t1 = time.perf_counter()
        self.backend.warmup()
        self.jit_time_s = time.perf_counter() - t1
        self._report(Progress("jit", 1.0, wall_s=self.jit_time_s))
        self.results = self._new_results()

    @property
    def step(self) -> int:
        return self.backend.step

    @property
    def time_ms(self) -> float:
        return self.backend.step * self.plan.dt

    # -- running -------------------------------------------------------------------------------
    def iter_chunks(self, duration_ms: float | None = None, chunk_steps: int | None = None) -> Iterator[ChunkResult]:
        """Run ``duration_ms`` (default: the plan's ``n_steps``) and yield every chunk as it completes.

        Chunks are also appended to :attr:`results`. Stops early after :meth:`stop`.
        """
        n_total = self.plan.n_steps if duration_ms is None else self.plan.steps_for(duration_ms)
        if n_total < 0:
            raise SimulationError("duration must be >= 0 ms")
        self._stop.clear()
        done = 0
        chunk = int(chunk_steps) if chunk_steps else min(max(n_total, 1), 100)
        t_start = time.perf_counter()
        self._report(Progress("run", 0.0, None, 0, n_total))
        with self._lock:
            while done < n_total:
                if self._hold_while_paused():
                    self.results.stopped = True
                    break
                n = min(chunk, n_total - done, self._steps_to_next_snapshot())
                result, wall = self.run_backend_chunk(n, last=lambda: done + n >= n_total or self._stop.is_set())
                done += n
                self.results._append(result)
                elapsed = time.perf_counter() - t_start
                self.results.wall_time_s += wall
                eta = elapsed / done * (n_total - done) if done else None
                self._report(Progress("run", done / n_total, eta, done, n_total, elapsed))
                if not chunk_steps:
                    chunk = next_chunk_steps(n, wall, self.target_chunk_s)
                yield result

    def run_backend_chunk(self, n: int, last) -> tuple[ChunkResult, float]:
        """Run ``n`` steps on the backend with the weight snapshots due: periodic ones before the
        chunk and, when ``last()`` says the run ends with this chunk, the end-of-run ones. Returns
        the chunk and its wall time; the caller records it."""
        snapshots = self._weight_snapshots(periodic=True)
        t0 = time.perf_counter()
        result = self.backend.run_steps(n)
        wall = time.perf_counter() - t0
        if last():
            for name, (steps, values) in self._weight_snapshots(periodic=False).items():
                if name in snapshots:
                    steps = np.concatenate([snapshots[name][0], steps])
                    values = np.concatenate([snapshots[name][1], values])
                snapshots[name] = (steps, values)
        result.weights.update(snapshots)
        return result, wall

    def run(self, duration_ms: float | None = None, callback: Callable[[ChunkResult], None] | None = None,
            chunk_steps: int | None = None) -> SimulationResults:
        """Run ``duration_ms`` (blocking) and return all results recorded since construction.

        ``callback(chunk)`` is called after every chunk (from the running thread).
        """
        for chunk in self.iter_chunks(duration_ms, chunk_steps):
            if callback is not None:
                callback(chunk)
        # -- readouts, branching monitors, kernel quality: computed on what was recorded ---------
        analysis_chunk = self.analyse()
        if callback is not None and analysis_chunk is not None:
            callback(analysis_chunk)
        if self.project is not None and self.results.kernel_quality:
            from engine.training import add_generalisation_ranks

            duration = self.results.n_steps * self.plan.dt
            add_generalisation_ranks(self.project, self.results, lambda variant: self._run_sub(
                Simulation(variant, backend=self.backend_name, settings=self.settings, seed=self.plan.seed,
                           dtype=self.plan.dtype, on_progress=noisy_run_progress(self.on_progress),
                           **self._backend_options), duration), self._stop.is_set, callback)
        return self.results

    def analyse(self) -> ChunkResult | None:
        """Train the readouts, compute the branching factors and kernel ranks on the results
        recorded so far (:func:`engine.readouts.analyse`); store them in :attr:`results` and return
        them as an empty chunk carrying ``readouts`` and ``signals`` for live views (None when the
        plan has nothing to analyse)."""
        from engine.readouts import analyse, has_analysis

        if not has_analysis(self.plan):
            return None
        analysis = analyse(self.plan, self.results)
        for group in ANALYSIS_GROUPS:
            setattr(self.results, group, getattr(analysis, group))
        self.results.analysis_problems = analysis.problems
        step = self.backend.step
        chunk = ChunkResult(step, step, self.plan.dt)
        chunk.readouts = analysis.readouts
        chunk.signals = analysis.signals
        chunk.kernel_quality = analysis.kernel_quality
        return chunk

    # -- weight monitors -----------------------------------------------------------------------
    def _weight_monitors(self) -> list:
        return [m for m in self.plan.monitors if m.kind == "weights"]

    def _steps_to_next_snapshot(self) -> int:
        """Chunks end at the next periodic snapshot step, so snapshots never depend on chunking."""
        k = self.backend.step
        gaps = [m.every - k % m.every for m in self._weight_monitors() if m.every > 0]
        return min(gaps) if gaps else 1 << 62

    def _weight_snapshots(self, periodic: bool) -> dict:
        """Snapshots due now: periodic monitors at multiples of their interval; at the end of a run
        (``periodic=False``) every monitor whose last snapshot is older, end-only ones included."""
        out: dict = {}
        k = self.backend.step
        for mon in self._weight_monitors():
            taken = self._snapshot_steps.get(mon.name, -1)
            if periodic:
                due = mon.every > 0 and k % mon.every == 0 and taken != k
            else:
                due = taken != k
            if not due:
                continue
            w = self.backend.projection_weights(mon.target)
            values = np.array(w if mon.indices is None else w[mon.indices], copy=True)
            out[mon.name] = (np.array([k], np.int64), values[None, :])
            self._snapshot_steps[mon.name] = k
        return out

    def final_weights(self) -> dict:
        """Projection name -> copy of its current weights (CSR order) for every plastic projection."""
        return {p.name: np.array(self.backend.projection_weights(p.name), copy=True)
                for p in self.plan.projections if p.plastic}

    def reset_results(self) -> None:
        """Forget the recorded data (the network state is kept)."""
        self.results = self._new_results()

    # -- state files ---------------------------------------------------------------------------
    def save_state(self, path) -> None:
        """Save the dynamic network state (``.npz``); restoring continues the run identically."""
        self.backend.save_state(path)

    def restore_state(self, path) -> None:
        self.backend.restore_state(path)

    def get_state(self, population: str, variable: str) -> np.ndarray:
        return self.backend.get_state(population, variable)

    # -- internals -----------------------------------------------------------------------------
    def _new_results(self) -> SimulationResults:
        sizes = {}
        for mon in self.plan.monitors:
            if mon.kind == "weights":
                continue
            astrocyte = mon.kind == "state" and astrocyte_variables(self.plan, mon.target) is not None
            size = 1 if astrocyte else self.plan.emitter_size(mon.target)
            sizes[mon.name] = int(mon.indices.size) if mon.indices is not None else size
        settings = dict(self.settings)
        settings.update(dt=self.plan.dt, seed=self.plan.seed, dtype=self.plan.dtype, backend=self.backend_name,
                        n_neurons=self.plan.n_neurons, n_synapses=self.plan.n_synapses)
        versions = dict(library_versions(), **getattr(self.backend, "library_versions", {}))  # e.g. NEST's
        res = SimulationResults(dt=self.plan.dt, settings=settings, versions=versions, sizes=sizes)
        self._snapshot_steps = {}
        projections = {p.name: p for p in self.plan.projections}
        for mon in self._weight_monitors():
            proj = projections[mon.target]
            pre, post = proj.pre_indices(), proj.indices
            if mon.indices is not None:
                pre, post = pre[mon.indices], post[mon.indices]
            res.weight_synapses[mon.name] = (pre.astype(np.int32), post.astype(np.int32))
        return res

    def _report(self, progress: Progress) -> None:
        self.progress = progress
        if self.on_progress is not None:
            self.on_progress(progress)
