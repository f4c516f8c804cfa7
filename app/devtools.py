"""Qt-side helpers of scripts/screenshots.py and benchmarks/bench_gui.py (app/ owns every Qt import)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app import theme as themes


def _cuba_window(qapp, theme: str | None = None):
    from app.main_window import MainWindow
    from engine.project import Project, example_projects

    if theme:
        themes.apply_theme(theme)
    win = MainWindow(Project())
    win.resize(1440, 900)
    win.open_example(next(p for p in example_projects() if p.stem == "cuba"))
    win.show()
    qapp.processEvents()
    return win


def _close(win):
    win.doc.undo_stack.setClean()
    win.doc.force_modified = False
    win.close()


def render_screenshot(theme: str, out: Path, duration_ms: float = 1000.0) -> Path:
    """The main window with the CUBA example after a short run, saved as a PNG."""
    qapp = QApplication.instance() or QApplication([])
    win = _cuba_window(qapp, theme)
    win.resizeDocks([win.problems_dock], [330], Qt.Orientation.Vertical)
    win.resizeDocks([win.palette_dock, win.inspector_dock], [210, 330], Qt.Orientation.Horizontal)
    g = win.doc.graph
    raster = next(nid for nid, n in g.nodes.items() if n.type_id == "monitor.spikes")
    exc = next(nid for nid, n in g.nodes.items() if n.label == "Excitatory")
    win.resizeDocks([win.problems_dock, win.plot_docks[raster]], [290, 1150], Qt.Orientation.Horizontal)
    try:
        import engine.compiler  # noqa: F401

        win.doc.set_setting("duration", duration_ms)
        win.start_run()
    except ImportError:  # before graphs could be compiled: the same network as a ready plan
        from engine.networks import cuba_plan

        win.start_plan_run(cuba_plan(n=4000, duration_ms=duration_ms, seed=2007), {"spikes": raster})
    t0 = time.time()
    while win.run.running and time.time() - t0 < 300:
        qapp.processEvents()
        time.sleep(0.005)
    qapp.processEvents()
    win.plot_docks[raster].raise_()
    win.scene.select_nodes([exc])
    qapp.processEvents()
    win.view.fit_all()
    for _ in range(10):
        qapp.processEvents()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(out))
    _close(win)
    return out


def live_run_measurement(plan, probe_ms: int = 10) -> dict:
    """Run ``plan`` in the designer with the CUBA raster live; probe the event loop meanwhile.

    Returns the stepping wall time, the lateness of every probe tick (ms) split into the build
    and run phases, GUI-thread CPU time and raster statistics.
    """
    qapp = QApplication.instance() or QApplication([])
    win = _cuba_window(qapp)
    raster = next(nid for nid, n in win.doc.graph.nodes.items() if n.type_id == "monitor.spikes")
    win.plot_docks[raster].raise_()
    ticks: list[tuple[float, str]] = []
    timer = QTimer()
    timer.setInterval(probe_ms)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), win.run.state)))
    timer.start()
    t0 = time.perf_counter()
    cpu0 = time.thread_time()
    loop = QEventLoop()
    win.run.finished.connect(lambda _res: loop.quit())
    win.start_plan_run(plan, {"spikes": raster})
    loop.exec()  # the real event loop: sleeps until events, as in the application
    total = time.perf_counter() - t0
    gui_cpu = time.thread_time() - cpu0
    timer.stop()
    qapp.processEvents()
    panel = win.plots.panels[raster]
    late = {"build": [], "run": []}
    for (a, _), (b, state) in zip(ticks, ticks[1:]):
        phase = "run" if state in ("running", "paused", "stopping") else "build"
        late[phase].append(max(0.0, (b - a) * 1000.0 - probe_ms))
    out = dict(run_s=win.run.run_phase_s, total_s=total, gui_cpu_s=gui_cpu, redraw_s=panel.redraw_time,
               spikes=panel.n_spikes, redraws=panel.redraw_count, chunks=win.run.chunk_count,
               error=win.run.error, late=late)
    _close(win)
    return out
