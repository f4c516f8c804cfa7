"""Compile the simulation kernels in the background while the designer starts.

A fresh install spends most of its first Run in numba compiling the kernels (see
``benchmarks/RESULTS.md``, "First run"). The step loop is compiled per feature set (neuron models,
inputs, monitors, plasticity: :func:`engine.kernels.network.chunk_kernel`), so the warm-up compiles
the variants a first Run most likely needs, in a daemon thread right after the window is shown:

1. the project open in the window (on a first start: the CUBA example), when it is small enough
   to build twice without a noticeable cost;
2. the CUBA example's variant (LIF, spike / rate / state monitors);
3. the variant of the network a new user builds first (Poisson -> Projection -> LIF, spike monitor).

The kernels land in numba's on-disk cache and in this process's dispatchers, so the first real
Run only loads them. numba's compiler lock makes a Run pressed during the warm-up wait for it
instead of compiling twice; while a Run is in progress, the warm-up compiles no further
candidates.
"""

from __future__ import annotations

import os
import threading

#: set to 1 to skip the background compile (benchmarks of a cold first Run)
DISABLE_ENV = "SYNWEAVE_NO_WARMUP"
#: the open project is warmed up with its own network only below this memory estimate
OPEN_PROJECT_MAX_BYTES = 64 * 2 ** 20


def start(window=None) -> threading.Thread | None:
    """Start the background compile; None when disabled by ``$SYNWEAVE_NO_WARMUP``.

    Parameters
    ----------
    window : app.main_window.MainWindow, optional
        Its open project is compiled first (see the module docstring).
    """
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    from app.run_controller import import_worker_modules

    import_worker_modules()  # in the GUI thread: a first import in a worker can deadlock PySide6
    import engine.networks  # noqa: F401  (same reason)

    # taken in the GUI thread: the document may change while the warm-up runs
    open_project = window.run_snapshot() if window is not None else None
    # a run in progress needs the CPU more than the next candidate's compile
    busy = (lambda: window.run.running) if window is not None else (lambda: False)  # noqa: E731
    thread = threading.Thread(target=_compile, args=(open_project, busy), name="synweave-warmup", daemon=True)
    thread.start()
    return thread


def candidates(open_project=None) -> list:
    """What the warm-up runs for 0 ms, in order: (project or plan, Simulation settings)."""
    from engine import examples
    from engine.info import summarize
    from engine.plan import MonitorPlan, PoissonSourcePlan
    from engine.networks import cuba_plan

    out = []
    if open_project is not None:
        snapshot, settings = open_project
        try:
            small = summarize(snapshot).total_bytes < OPEN_PROJECT_MAX_BYTES
        except Exception:  # noqa: BLE001 - a project that cannot be estimated is not warmed up
            small = False
        if small and settings.get("backend", "numba") == "numba":
            out.append((snapshot, settings))
    cuba = examples.cuba()
    out.append((cuba, cuba.settings.values_json()))
    # Poisson -> LIF with a spike monitor (a 100-neuron CUBA population as the target)
    plan = cuba_plan(n=100, duration_ms=1.0)
    plan.sources.append(PoissonSourcePlan("poisson", size=10, rates=10.0))
    plan.monitors = [MonitorPlan("spikes", "P", "spikes")]
    out.append((plan, None))
    return out


def _compile(open_project=None, busy=lambda: False) -> None:
    from engine.runner import Simulation

    for source, settings in candidates(open_project):
        if busy():
            return
        try:
            # building the simulation compiles (or loads) its kernels; one step is enough to build
            Simulation(source, settings=None if settings is None else dict(settings, duration=settings["dt"]))
        except Exception:  # noqa: BLE001 - a failed warm-up only means the first Run compiles itself
            pass
