"""Training phases in the designer: a stopped training run leaves a checkpoint that Run > Resume
Training continues, with the results of an uninterrupted run."""

from __future__ import annotations

import os
import queue

from PySide6.QtWidgets import QApplication

from engine.training import Protocol
from tests.engine.test_training import add_phases, assert_same_spikes, liquid
from tests.gui.conftest import example_path


def phased_project():
    project = liquid(n_samples=300, encoding="rate", epochs=10)
    add_phases(project, dict(label="Init", samples=6, presentation=20.0),
               dict(label="Features", reset="state_and_weights", presentation=100.0))
    return project


def test_stop_then_resume_training_matches_an_uninterrupted_run(make_window, qtbot, dialogs, tmp_path):
    reference = Protocol(phased_project()).run()
    path = phased_project().save(tmp_path / "phased.swproj")
    win = make_window()
    win.open_path(str(path))
    assert not win.act_resume_training.isEnabled()  # nothing to resume yet
    # the worker may run at most two chunks ahead of the GUI: a GUI thread stalled on a loaded
    # machine still sees the feature phase begin long before it ends
    win.run.queue = queue.Queue(maxsize=2)
    assert win.start_run()
    # stop early in the feature phase (300 samples of 100 ms take seconds)
    def stop_in_features(progress):
        if progress.phase_name == "Features" and progress.sample >= 3:
            win.stop_run()
    win.run.phaseProgress.connect(stop_in_features)
    qtbot.waitUntil(lambda: not win.run.running, timeout=60_000)
    QApplication.processEvents()
    assert win.run.results.stopped and 0 < win.run.results.n_steps < reference.n_steps
    win.run.phaseProgress.disconnect(stop_in_features)
    assert win.checkpoint_path().is_file() and win.act_resume_training.isEnabled()
    assert "Resume Training" in win.statusBar().currentMessage()
    win.act_resume_training.trigger()
    qtbot.waitUntil(lambda: not win.run.running, timeout=120_000)
    QApplication.processEvents()
    assert dialogs.errors() == []
    results = win.run.results
    assert not results.stopped and results.n_steps == reference.n_steps
    assert_same_spikes(reference, results)
    assert not win.checkpoint_path().exists() and not win.act_resume_training.isEnabled()
    # one progress bar per phase, in chain order, each full at the end
    rows = win.phases_panel.texts()
    assert list(rows) == ["Init", "Features"]
    assert rows["Init"][0] == "6 / 6 samples" and rows["Features"][0] == "300 / 300 samples"
    assert "samples/s" in rows["Features"][1] and "done" in rows["Features"][1]
    if os.environ.get("SYNWEAVE_SHOTS"):
        win.phases_dock.raise_()
        QApplication.processEvents()
        win.grab().save(os.path.join(os.environ["SYNWEAVE_SHOTS"], "phases_panel.png"))


def test_opening_another_project_hides_the_last_ones_phases(make_window, qtbot, tmp_path):
    path = phased_project().save(tmp_path / "phased.swproj")
    win = make_window()
    win.open_path(str(path))
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=120_000)
    assert win.phases_dock.isVisible() and list(win.phases_panel.texts()) == ["Init", "Features"]
    win.open_example(example_path("cuba"))
    assert not win.phases_dock.isVisible() and win.phases_panel.texts() == {}


def test_a_batched_phase_on_torch_runs_in_the_designer(make_window, qtbot, dialogs, tmp_path):
    """Backend torch, the feature phase in batches of 8 with per-copy plastic weights: the designer's
    run equals the headless protocol's, and the Phases panel reports every sample."""
    project = liquid(n_samples=24, encoding="rate", epochs=10)
    add_phases(project, dict(label="Init", samples=6, presentation=20.0),
               dict(label="Features", reset="state_and_weights", presentation=50.0, batch=8))
    project.settings.backend = "torch"
    reference = Protocol(project.snapshot(), backend="torch").run()
    path = project.save(tmp_path / "batched.swproj")
    win = make_window()
    win.open_path(str(path))
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=120_000)
    QApplication.processEvents()
    assert dialogs.errors() == []
    results = win.run.results
    assert not results.stopped and results.n_steps == reference.n_steps
    assert_same_spikes(reference, results, min_spikes=1000)
    rows = win.phases_panel.texts()
    assert rows["Features"][0] == "24 / 24 samples" and "done" in rows["Features"][1]
    if os.environ.get("SYNWEAVE_SHOTS"):
        win.phases_dock.raise_()
        QApplication.processEvents()
        win.grab().save(os.path.join(os.environ["SYNWEAVE_SHOTS"], "phases_batched_torch.png"))
