"""Running from the GUI: live raster, progress phases, pause, stop midway, refusal, live switch."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtWidgets import QApplication

from engine.networks import cuba_plan
from tests.gui.conftest import node_by_label



def _wait(qtbot, win, timeout=120_000):
    qtbot.waitUntil(lambda: not win.run.running, timeout=timeout)
    QApplication.processEvents()


def _raster(win):
    return win.plots.panels[node_by_label(win, "Raster")]


def test_live_raster_points_arrive(cuba_window, qtbot):
    win = cuba_window
    raster_id = node_by_label(win, "Raster")
    phases = []
    win.run.progress.connect(lambda phase, frac, text: phases.append((phase, text)))
    seen = []
    win.run.chunks.connect(lambda chunks: seen.append(sum(c.n_spikes for c in chunks)))
    assert win.start_plan_run(cuba_plan(n=4000, duration_ms=400.0), {"spikes": raster_id})
    assert not win.act_run.isEnabled() and win.act_stop.isEnabled()
    _wait(qtbot, win)
    panel = _raster(win)
    assert panel.n_spikes > 1000 and panel.n_spikes == win.run.spike_count
    assert sum(seen) == panel.n_spikes
    assert panel.redraw_count >= 1
    assert "spikes" in panel.status.text() and "4,000 neurons" in panel.status.text()
    assert panel.rate_counts.sum() == panel.n_spikes
    assert win.run.phases_seen[-2:] == ["jit", "run"] and "validate" in win.run.phases_seen
    assert any("Running" in text for p, text in phases if p == "run")
    assert win.progress_bar.format().startswith("Finished")
    assert win.act_run.isEnabled() and not win.act_stop.isEnabled()
    # the data is what a headless run of the same plan records
    from engine.runner import Simulation
    res = Simulation(cuba_plan(n=4000, duration_ms=400.0)).run(400.0)
    t, i = res.spike_times("spikes")
    arrays = panel.data_arrays()
    assert np.array_equal(np.sort(arrays["neuron"]), np.sort(i))


def test_stop_midway_and_pause(cuba_window, qtbot):
    win = cuba_window
    raster_id = node_by_label(win, "Raster")
    win.run.fps = 60
    # 10 min of model time: far longer than the test, so the run is always stopped midway
    assert win.start_plan_run(cuba_plan(n=4000, duration_ms=600_000.0), {"spikes": raster_id})
    qtbot.waitUntil(lambda: win.run.chunk_count >= 3, timeout=60_000)
    win.toggle_pause()
    assert win.run.state == "paused" and win.act_pause.text() == "Resume"
    time.sleep(0.3)
    QApplication.processEvents()
    n = win.run.chunk_count
    time.sleep(0.4)
    QApplication.processEvents()
    assert win.run.chunk_count <= n + 1  # at most the chunk that was running
    win.toggle_pause()
    assert win.run.state == "running"
    qtbot.waitUntil(lambda: win.run.chunk_count > n + 1, timeout=30_000)
    win.stop_run()
    _wait(qtbot, win, 30_000)
    res = win.run.results
    assert res is not None and res.stopped
    assert 0 < res.n_steps < 6_000_000
    assert win.progress_bar.format().startswith("Stopped")
    assert _raster(win).n_spikes > 0


def test_run_refused_while_the_network_has_errors(window, dialogs):
    win = window
    win.scene.add_node("synapse.projection", (0, 0))
    assert not win.start_run()
    assert not win.run.running
    assert "problem" in win.statusBar().currentMessage()
    assert "Fix 2 problem(s) first" == win.progress_bar.format() or "Fix" in win.progress_bar.format()


def test_project_run_from_the_designer(cuba_window, qtbot, dialogs):
    win = cuba_window
    win.doc.set_setting("duration", 200.0)
    assert win.start_run()
    _wait(qtbot, win)
    assert dialogs.errors() == []
    assert _raster(win).n_spikes > 0


def test_live_switch_is_a_project_edit_and_defers_drawing(cuba_window, qtbot):
    win = cuba_window
    raster_id = node_by_label(win, "Raster")
    panel = _raster(win)
    panel.live_box.setChecked(False)
    assert win.doc.graph.node(raster_id).live is False
    assert win.modified
    assert win.start_plan_run(cuba_plan(n=2000, duration_ms=300.0), {"spikes": raster_id})
    counts = []
    win.run.chunks.connect(lambda c: counts.append(panel.redraw_count))
    _wait(qtbot, win)
    assert counts and max(counts) == 0        # nothing drawn while running
    assert panel.redraw_count >= 1            # drawn once at the end
    win.doc.undo_stack.undo()
    assert win.doc.graph.node(raster_id).live is True and panel.live


def test_nest_is_listed_but_run_from_the_command_line(cuba_window, qtbot, dialogs):
    """The designer does not start NEST runs (one hung inside NEST's kernel from a worker thread):
    the toolbar lists nest disabled with the reason, and a project saved with backend nest is
    refused with a pointer to the CLI instead of hanging the window."""
    from PySide6.QtCore import Qt

    from app.main_window import CLI_ONLY_BACKENDS

    win = cuba_window
    combo = win.backend_combo
    i = combo.findText("nest")
    assert i >= 0 and not combo.model().item(i).isEnabled()
    assert "command line" in combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
    win.doc.set_setting("backend", "nest")
    assert not win.start_run()
    assert not win.run.running
    assert "--backend nest" in win.statusBar().currentMessage()
    assert "nest" in CLI_ONLY_BACKENDS


def test_the_toolbar_sets_the_torch_device_and_a_missing_gpu_is_a_problem(make_window, qtbot, tmp_path):
    import torch

    from tests.gui.conftest import example_path

    win = make_window()
    win.open_example(example_path("cuba"))
    assert not win.device_combo.isEnabled() and "torch backend" in win.device_combo.toolTip()
    win.backend_combo.setCurrentText("torch")
    assert win.doc.project.settings.backend == "torch" and win.device_combo.isEnabled()
    win.device_combo.setCurrentText("cuda")
    assert win.doc.project.settings.device == "cuda"
    win.problems.refresh()
    device_problems = [p for p in win.problems.problems if p.field == "device"]
    if torch.cuda.is_available():
        assert device_problems == []
    else:
        assert device_problems and "not available here" in device_problems[0].message
        assert not win.start_run()  # refused with the problem named, nothing started
        win.grab().save(str(tmp_path / "device.png"))
    win.doc.undo_stack.undo()
    assert win.doc.project.settings.device == "cpu" and win.device_combo.currentText() == "cpu"
