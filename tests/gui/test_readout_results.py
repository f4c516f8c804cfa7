"""Readout results in the GUI: a run of the digits examples opens a readout panel with the
accuracy and the confusion matrix drawn, and the branching factor in its monitor's panel."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtWidgets import QApplication

from engine.graph import SetParam

from tests.gui.conftest import example_path, node_by_label


def _run(win, qtbot, duration_ms):
    win.doc.set_setting("duration", duration_ms)
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=180_000)
    QApplication.processEvents()


def test_vote_readout_panel_shows_accuracy_and_confusion(make_window, qtbot, dialogs, tmp_path):
    win = make_window()
    win.open_example(example_path("neurocorex_digits"))
    _run(win, qtbot, 2500.0)
    assert dialogs.errors() == []
    readout_id = node_by_label(win, "Most spikes")
    panel = win.plots.panels[readout_id]
    assert panel.kind == "readout" and readout_id in win.plot_docks
    result = win.run.results.readouts[readout_id]
    cm = panel.matrix()
    # confusion matrix plus the ties column: every test sample is in exactly one cell
    assert cm.shape == (10, 11) and cm.sum() == result["n_test"]
    assert np.array_equal(cm[:, 10], result["ties"])
    assert f"test accuracy {100 * result['accuracy']:.1f} %" in panel.status.text()
    assert "ties" in panel.status.text()
    assert len(panel.cm_texts) == np.count_nonzero(cm)  # every non-empty cell carries its count
    assert "test accuracy" in win.statusBar().currentMessage()
    # the readout's own recording of the class neurons is not counted as monitored spikes
    raster = win.plots.panels[node_by_label(win, "Raster")]
    assert raster.n_spikes > 0 and win.run.spike_count == raster.n_spikes
    assert f"{raster.n_spikes:,} spikes" in win.progress_bar.format()
    win.plot_docks[readout_id].raise_()
    QApplication.processEvents()
    panel.export(tmp_path / "confusion.csv")
    table = np.loadtxt(tmp_path / "confusion.csv", delimiter=",", skiprows=1)
    assert np.array_equal(table[:, 1:], cm)
    panel.grab().save(str(tmp_path / "readout.png"))


def test_nalsm_softmax_curves_and_branching_factor(make_window, qtbot, dialogs, tmp_path):
    win = make_window()
    win.open_example(example_path("nalsm_digits"))
    # the phases set the run's length: the duration field says so instead of being ignored
    duration = win.setting_fields["duration"]
    assert not duration.isEnabled() and "training phases" in duration.edit.toolTip()
    # shorten the example through the inspector's operations: 30 samples per phase
    for label, name, value in (("Digits", "n_samples", 30), ("Liquid initialisation", "samples", 30),
                               ("Readout", "epochs", 300)):
        assert win.doc.apply(SetParam(node_by_label(win, label), name, value))
    assert win.start_run()
    qtbot.waitUntil(lambda: "phase" in win.progress_bar.format(), timeout=180_000)
    assert "'Liquid initialisation'" in win.progress_bar.format() or "'Features'" in win.progress_bar.format()
    qtbot.waitUntil(lambda: not win.run.running, timeout=300_000)
    QApplication.processEvents()
    assert dialogs.errors() == []
    win.grab().save(str(tmp_path / "nalsm.png"))
    if os.environ.get("SYNWEAVE_SHOTS"):
        win.grab().save(os.path.join(os.environ["SYNWEAVE_SHOTS"], "nalsm_phases.png"))
    bf_id = node_by_label(win, "Branching factor")
    signal = win.plots.panels[bf_id]
    bf = win.run.results.branching[bf_id]
    assert signal.has_data and f"mean {bf['branching_factor']:.4g}" in signal.status.text()
    readout = win.plots.panels[node_by_label(win, "Readout")]
    assert "epoch" in readout.status.text() and readout.curve_plot.isVisible()
    # the example compares itself with the LSM baselines: the panel and the status bar list them
    assert "LSM:" in readout.status.text() and "LSM + STDP:" in readout.status.text()
    assert [r["model"] for r in win.run.results.settings["baselines"]] == ["NALSM", "LSM", "LSM + STDP"]
    if os.environ.get("SYNWEAVE_SHOTS"):
        win.plot_docks[node_by_label(win, "Readout")].raise_()
        QApplication.processEvents()
        win.grab().save(os.path.join(os.environ["SYNWEAVE_SHOTS"], "nalsm_readout.png"))
    assert readout.train_curve.getData()[0].size == 300
