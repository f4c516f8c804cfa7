"""Train in the designer: the action's enabled state, live loss curve from the worker thread,
and the undoable step that applies the trained weights."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import example_path, node_by_label

pytest.importorskip("torch")


def test_train_action_is_disabled_with_the_reason(make_window, qtbot):
    win = make_window()
    assert not win.act_train.isEnabled()
    assert "no Surrogate-gradient training node" in win.act_train.toolTip()
    win.open_example(example_path("gradient_digits"))
    assert win.act_train.isEnabled()
    assert "Hidden → Classes" in win.act_train.toolTip()
    # an extra drive into the hidden layer makes the chain untrainable: disabled, naming the node
    drive = win.doc.graph.add_node("input.current", "Bias")
    win.doc.graph.connect(drive.id, "current", node_by_label(win, "Hidden"), "input")
    assert not win.act_train.isEnabled()
    assert "'Hidden'" in win.act_train.toolTip() and "'Bias'" in win.act_train.toolTip()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the state shown where CUDA is missing")
def test_train_uses_the_device_setting_and_says_when_it_is_missing(make_window, qtbot):
    """Training runs on torch whatever the run backend: with a training node the device combo is
    enabled (on numba too); cuda where there is none disables Train with the reason; Undo restores."""
    win = make_window()
    assert not win.device_combo.isEnabled()  # numba, nothing to train: the device means nothing
    win.open_example(example_path("gradient_digits"))
    assert win.doc.project.settings.backend == "numba"
    assert win.device_combo.isEnabled() and "device of Train" in win.device_combo.toolTip()
    assert win.act_train.isEnabled()
    win.device_combo.setCurrentText("cuda")
    assert win.doc.project.settings.device == "cuda"
    assert not win.act_train.isEnabled()
    assert "device 'cuda' is not available here" in win.act_train.toolTip()
    assert "choose device cpu" in win.act_train.toolTip()
    # the Problems panel says it too, as a warning on the device setting: the numba run still works
    win.problems.refresh()
    warnings = [p for p in win.problems.problems if p.field == "device"]
    assert [p.severity for p in warnings] == ["warning"] and "Train cannot run on it" in warnings[0].message
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=120_000)
    assert win.run.error is None
    win.doc.undo_stack.undo()
    assert win.device_combo.currentText() == "cpu" and win.act_train.isEnabled()


def test_train_shows_the_loss_curve_and_applies_weights_undoably(make_window, qtbot, dialogs, tmp_path):
    win = make_window()
    win.open_example(example_path("gradient_digits"))
    epochs_seen = []
    win.trainer.epoch.connect(lambda stats: epochs_seen.append(stats.epoch))
    assert win.start_training(epochs=2)
    assert not win.act_train.isEnabled() and not win.act_run.isEnabled()
    qtbot.waitUntil(lambda: not win.trainer.running, timeout=180_000)
    QApplication.processEvents()
    assert dialogs.errors() == []
    assert epochs_seen == [1, 2]  # delivered epoch by epoch from the worker
    x, loss = win.training_panel.loss_curve.getData()
    assert list(x) == [1.0, 2.0] and np.all(np.isfinite(loss))
    assert [s.loss for s in win.training_panel.history] == list(loss)
    result = win.trained
    assert f"test accuracy {100 * result.test_accuracy:.1f} %" in win.training_panel.status.text()
    assert win.training_panel.apply_button.isEnabled() and win.act_train.isEnabled()
    win.training_dock.raise_()
    QApplication.processEvents()
    win.grab().save(str(tmp_path / "training.png"))

    # an untitled example copy has no folder for the weight files: Save As is asked first
    assert not win.apply_trained_weights()  # the save was cancelled
    assert dialogs.asked[-1][0] == "save_path" and "save the project first" in win.statusBar().currentMessage()
    assert win.doc.graph.node(node_by_label(win, "Input→hidden")).connectivity == "all_to_all"
    dialogs.save_path_answer = str(tmp_path / "digits.swproj")
    assert win.apply_trained_weights()
    assert win.doc.path == tmp_path / "digits.swproj" and dialogs.errors() == []
    first = win.doc.graph.node(node_by_label(win, "Input→hidden"))
    assert first.connectivity == "from_file" and (tmp_path / first.file).is_file()
    with np.load(tmp_path / first.file) as f:
        np.testing.assert_array_equal(f["weight"], result.projections[0].weight)
    assert win.modified
    win.doc.undo_stack.undo()  # one step reverts both projections
    assert {win.doc.graph.node(node_by_label(win, label)).connectivity
            for label in ("Input→hidden", "Hidden→classes")} == {"all_to_all"}
    win.doc.undo_stack.redo()
    assert win.doc.graph.node(node_by_label(win, "Hidden→classes")).connectivity == "from_file"


def test_stop_ends_training_early(make_window, qtbot, dialogs):
    win = make_window()
    win.open_example(example_path("gradient_digits"))
    win.trainer.epoch.connect(lambda stats: win.training_panel.stop_button.click())
    assert win.start_training(epochs=50)
    qtbot.waitUntil(lambda: not win.trainer.running, timeout=180_000)
    # the stop reaches the worker while it is in epoch 2 (epochs are delivered by a timer): it ends
    # after the current mini-batch
    assert win.trained.stopped and len(win.trained.history) <= 3
    assert win.training_panel.status.text().startswith("Stopped")
