"""Runs a simulation off the GUI thread and hands its chunks to the GUI.

This is the only module of the designer that knows the engine's runner API
(``engine.runner.Simulation``: construction compiles and JIT-builds with progress callbacks,
``run(duration_ms, callback=...)`` steps in chunks, ``pause()/resume()/stop()`` from any thread).

* The simulation is built and run in a Python worker thread; the numba kernels release the GIL,
  so the event loop stays responsive.
* Each chunk is translated into a :class:`LiveChunk` (monitor node id -> arrays in ms) and put
  on a **bounded** queue. When the GUI falls behind, the worker blocks on the full queue
  (back-pressure) rather than dropping data or growing memory.
* A ``QTimer`` on the GUI thread drains the queue at up to 60 Hz and emits ``chunks``; progress is
  a single latest value (phase, fraction, ETA) read by the same timer.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.errors import SynweaveError
from engine.readouts import is_internal_recording

PHASE_TEXT = {"validate": "Validating", "compile": "Compiling network", "jit": "JIT-compiling kernels",
              "run": "Running"}


def import_worker_modules(backend: str = "numba") -> None:
    """Import in the GUI thread what worker threads would otherwise import lazily.

    A first import of a large package (numba, scikit-learn) inside a worker thread can deadlock
    with PySide6 6.12 while the GUI thread runs Qt's event loop (seen in the GUI tests: both
    threads stuck, the worker mid-import). Importing up front makes the workers' imports
    dictionary look-ups.
    """
    import engine.backends.numba_backend  # noqa: F401  (numba itself)
    import engine.compiler  # noqa: F401
    import engine.runner  # noqa: F401
    import engine.training  # noqa: F401
    import engine.branching_kernel  # noqa: F401  (readouts and branching monitors, after the run)
    import scipy.sparse  # noqa: F401
    import sklearn.datasets  # noqa: F401
    from engine.backends import get_backend, missing_dependency
    from engine.errors import SimulationError

    if backend != "numba" and missing_dependency(backend) is None:
        try:
            get_backend(backend)  # e.g. NEST: loads its kernel and OpenMP runtime here, not in the worker
        except SimulationError:  # unknown or broken: the worker reports it
            pass


@dataclass
class LiveChunk:
    """Monitored data of one chunk, keyed by monitor node id, times in ms."""

    t0_ms: float
    t1_ms: float
    dt: float
    spikes: dict = field(default_factory=dict)    # id -> (times_ms float64, indices int32)
    rates: dict = field(default_factory=dict)     # id -> counts per step (int)
    states: dict = field(default_factory=dict)    # id -> {var: (times_ms, values [n, k])}
    weights: dict = field(default_factory=dict)   # id -> (time_ms, weights 1-D or 2-D)
    signals: dict = field(default_factory=dict)   # id -> (times_ms, values)
    readouts: dict = field(default_factory=dict)  # id -> {"accuracy": float, "confusion": 2-D}
    kernel_quality: dict = field(default_factory=dict)  # id -> {"SP": float, "AP": float, ...}

    @property
    def n_spikes(self) -> int:
        return sum(int(t.size) for t, _ in self.spikes.values())


def _monitor_key(name: str, graph, monitor_map: dict | None = None) -> str:
    """The monitor node id a plan monitor name refers to (ids, labels, or ``id/...`` names)."""
    if monitor_map and name in monitor_map:
        return monitor_map[name]
    if graph is None:
        return name
    if name in graph:
        return name
    head = name.split("/")[0].split(":")[0]
    if head in graph:
        return head
    return graph.find(name) or name


def translate(chunk, graph=None, monitor_map: dict | None = None) -> LiveChunk:
    """Engine ``ChunkResult`` -> :class:`LiveChunk` (the one place that knows its layout)."""
    dt = float(chunk.dt)

    def key(name):
        return _monitor_key(name, graph, monitor_map)

    out = LiveChunk(chunk.start_step * dt, chunk.stop_step * dt, dt)
    for name, (steps, idx) in chunk.spikes.items():
        if is_internal_recording(name):
            continue  # a readout's own recording: its results arrive in ``readouts`` at the end
        out.spikes[key(name)] = (np.asarray(steps, np.float64) * dt, np.asarray(idx, np.int32))
    for name, counts in chunk.rates.items():
        out.rates[key(name)] = np.asarray(counts)
    for name, variables in chunk.states.items():
        out.states[key(name)] = {
            var: (np.asarray(steps, np.float64) * dt, np.asarray(values)) for var, (steps, values) in variables.items()}
    for name, (steps, values) in (getattr(chunk, "weights", None) or {}).items():
        out.weights[key(name)] = [(float(k) * dt, np.asarray(w)) for k, w in zip(steps, values)]
    for attr in ("signals", "readouts", "kernel_quality"):  # results of analyses, when present
        for name, value in (getattr(chunk, attr, None) or {}).items():
            getattr(out, attr)[key(name)] = value
    return out


class RunController(QObject):
    """Start / pause / resume / stop one simulation at a time."""

    #: phase ("validate", "compile", "jit", "run"), fraction 0..1, human text
    progress = Signal(str, float, str)
    #: a training protocol's report (engine.runner.Progress with a phase index), for the Phases panel
    phaseProgress = Signal(object)
    #: a list of LiveChunk drained from the queue in one timer tick
    chunks = Signal(list)
    #: "idle", "starting", "running", "paused", "stopping"
    stateChanged = Signal(str)
    #: the run ended; carries the SimulationResults (or None after an error)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None, queue_size: int = 32, fps: float = 60.0):
        super().__init__(parent)
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(1000 / fps)))
        self.timer.timeout.connect(self.poll)
        self.state = "idle"
        self.sim = None
        self.results = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._progress_lock = threading.Lock()
        self._progress: Any = None
        self._phase_reports: dict = {}
        self._graph = None
        self._monitor_map: dict = {}
        self._shown_progress = None
        self.chunk_count = 0
        self.spike_count = 0
        self.wall_start = 0.0
        self.wall_run_s = 0.0
        #: wall time of the stepping alone (after compile and JIT), measured in the worker
        self.run_phase_s = 0.0
        #: the phases reported by the runner, in order (the progress bar shows the latest)
        self.phases_seen: list[str] = []

    # -- control ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state in ("starting", "running", "paused", "stopping")

    def start(self, source, duration_ms: float, backend: str = "numba", settings: dict | None = None,
              graph=None, seed: int | None = None, dtype: str | None = None, monitor_map: dict | None = None,
              **backend_options) -> bool:
        """Build and run ``source`` (a Project, or a SimulationPlan) in a worker thread.

        ``graph`` (the project's graph) maps plan monitor names to monitor node ids;
        ``monitor_map`` gives explicit ``{plan monitor name: node id}`` pairs.
        """
        if self.running:
            return False
        self._stop.clear()
        self._pause.clear()
        self.queue = queue.Queue(maxsize=self.queue.maxsize)
        self.sim = None
        self.results = None
        self.error = None
        self.chunk_count = 0
        self.spike_count = 0
        self.run_phase_s = 0.0
        self.phases_seen = []
        self._graph = graph
        self._monitor_map = dict(monitor_map or {})
        self._progress = None
        self._shown_progress = None
        self._phase_reports = {}
        self.wall_start = time.perf_counter()
        self._set_state("starting")
        args = dict(source=source, duration_ms=float(duration_ms), backend=backend,
                    settings=dict(settings or {}), seed=seed, dtype=dtype, options=backend_options)
        import_worker_modules(backend)
        self.thread = threading.Thread(target=self._worker, kwargs=args, name="synweave-sim", daemon=True)
        self.thread.start()
        self.timer.start()
        return True

    def pause(self) -> None:
        if self.state == "running":
            self._pause.set()
            if self.sim is not None:
                self.sim.pause()
            self._set_state("paused")

    def resume(self) -> None:
        if self.state == "paused":
            self._pause.clear()
            if self.sim is not None:
                self.sim.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.running:
            self._stop.set()
            self._pause.clear()
            if self.sim is not None:
                self.sim.stop()
            self._set_state("stopping")

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until the worker ends (tests, closing the window); then deliver what is left."""
        if self.thread is not None:
            self.thread.join(timeout)
            alive = self.thread.is_alive()
        else:
            alive = False
        self.poll()
        return not alive

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    # -- worker thread -------------------------------------------------------------------------
    def _worker(self, source, duration_ms, backend, settings, seed, dtype, options):
        results = None
        try:
            from engine.runner import Simulation
            from engine.training import Protocol, has_phases

            if hasattr(source, "graph") and has_phases(source.graph):
                # training phases: sample-by-sample presentation, one progress report per phase
                sim = Protocol(source, backend=backend, settings=settings, seed=seed, dtype=dtype,
                               on_progress=self._on_progress, **options)
            else:
                options = {k: v for k, v in options.items() if k not in ("checkpoint", "resume")}
                sim = Simulation(source, backend=backend, settings=settings, seed=seed, dtype=dtype,
                                 on_progress=self._on_progress, **options)
            self.sim = sim
            if self._pause.is_set():
                sim.pause()
            if not self._stop.is_set():
                self._put(("running", None))
                t0 = time.perf_counter()
                results = sim.run(duration_ms, callback=self._on_chunk)
                self.run_phase_s = time.perf_counter() - t0
            else:
                results = sim.results
                results.stopped = True
        except SynweaveError as exc:
            self._put(("error", str(exc)))
        except ModuleNotFoundError as exc:
            self._put(("error", f"this build of Synweave cannot simulate this project yet "
                                f"(missing module {exc.name!r})"))
        except MemoryError:
            self._put(("error", "out of memory while building or running the network; reduce its size "
                                "or the recorded monitors"))
        except Exception as exc:  # a bug must still end the run cleanly and be reported
            self._put(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            self._put(("done", results), force=True)

    def _on_progress(self, progress) -> None:
        with self._progress_lock:
            self._progress = progress
            if getattr(progress, "phase_index", -1) >= 0:
                # every phase's latest report reaches the Phases panel, not only the newest phase's
                self._phase_reports[progress.phase_name] = progress
            if not self.phases_seen or self.phases_seen[-1] != progress.phase:
                self.phases_seen.append(progress.phase)

    def _on_chunk(self, chunk) -> None:
        self._put(("chunk", translate(chunk, self._graph, self._monitor_map)))

    def _put(self, item, force: bool = False) -> None:
        while True:
            try:
                self.queue.put(item, timeout=0.05)
                return
            except queue.Full:
                if self._stop.is_set() and not force:
                    return  # stopping: the GUI no longer needs live data
                if force:
                    # make room: the final message must get through
                    try:
                        self.queue.get_nowait()
                    except queue.Empty:
                        pass

    # -- GUI thread ---------------------------------------------------------------------------
    def poll(self) -> None:
        """Drain the queue (called by the timer); emit chunks, progress and the end of the run."""
        items: list[LiveChunk] = []
        done = False
        while True:
            try:
                kind, payload = self.queue.get_nowait()
            except queue.Empty:
                break
            if kind == "chunk":
                items.append(payload)
                self.chunk_count += 1
                self.spike_count += payload.n_spikes
            elif kind == "running":
                if self.state == "starting":
                    self._set_state("paused" if self._pause.is_set() else "running")
            elif kind == "error":
                self.error = payload
            elif kind == "done":
                self.results = payload
                done = True
        if items:
            self.chunks.emit(items)
        with self._progress_lock:
            prog = self._progress
        if prog is not None and prog is not self._shown_progress:
            self._shown_progress = prog
            self.progress.emit(prog.phase, float(prog.fraction), self.progress_text(prog))
        with self._progress_lock:
            phase_reports, self._phase_reports = self._phase_reports, {}
        for report in phase_reports.values():
            self.phaseProgress.emit(report)
        if done:
            self.timer.stop()
            self.wall_run_s = time.perf_counter() - self.wall_start
            self.sim = None
            self._set_state("idle")
            if self.error:
                self.failed.emit(self.error)
                self.finished.emit(None)
            else:
                self.finished.emit(self.results)

    def progress_text(self, prog) -> str:
        paused = self.state == "paused"
        text = "Paused" if paused else PHASE_TEXT.get(prog.phase, prog.phase)
        if prog.phase == "run":
            plan = getattr(self.sim, "plan", None)  # a protocol has none before its first phase is built
            if prog.n_steps and plan is not None:
                dt = plan.dt
                text += f" {prog.step * dt / 1000:.2f} / {prog.n_steps * dt / 1000:.2f} s"
            # an estimate of time left means nothing while nothing runs
            if prog.eta_s is not None and prog.fraction < 1 and not paused:
                text += f" — {prog.eta_s:.0f} s left" if prog.eta_s >= 1 else " — <1 s left"
        if prog.message:
            text += f" — {prog.message}"
        return text

    def status_text(self) -> str:
        """The progress text of the latest progress report in the current state."""
        with self._progress_lock:
            prog = self._progress
        if prog is None:
            return "Paused" if self.state == "paused" else "Starting…"
        return self.progress_text(prog)
