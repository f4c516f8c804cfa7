"""Compile the simulation kernels in the background while the designer starts.

A fresh install spends most of its first Run in numba compiling the kernels (see
``benchmarks/RESULTS.md``, "First run"). :func:`start` runs a tiny CUBA network for a few steps
in a daemon thread right after the window is shown, so the compile overlaps the time a user
spends looking at the window; the kernels land in numba's on-disk cache and in this process's
dispatchers, and the first real Run only loads them. numba's compiler lock makes a Run pressed
during the warm-up wait for it instead of compiling twice.
"""

from __future__ import annotations

import os
import threading

#: set to 1 to skip the background compile (benchmarks of a cold first Run)
DISABLE_ENV = "SYNWEAVE_NO_WARMUP"


def start() -> threading.Thread | None:
    """Start the background compile; None when disabled by ``$SYNWEAVE_NO_WARMUP``."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    from app.run_controller import import_worker_modules

    import_worker_modules()  # in the GUI thread: a first import in a worker can deadlock PySide6
    import engine.networks  # noqa: F401  (same reason)

    thread = threading.Thread(target=_compile, name="synweave-warmup", daemon=True)
    thread.start()
    return thread


def _compile() -> None:
    from engine.networks import cuba_plan
    from engine.runner import Simulation

    try:
        # small: below PARALLEL_MIN_NEURONS, as are the networks a first Run usually has
        Simulation(cuba_plan(n=100, duration_ms=1.0)).run(1.0)
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first Run compiles itself
        pass
