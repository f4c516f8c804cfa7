"""The Weights tab is live: Song STDP's weight histogram and weight-vs-time image fill during a run."""

from __future__ import annotations

import queue

import numpy as np
from PySide6.QtWidgets import QApplication

from engine.project import Project
from tests.gui.conftest import example_path, node_by_label


def test_weights_tab_is_live_for_song_stdp(make_window, qtbot, tmp_path):
    project = Project.load(example_path("song_stdp"))
    project.settings.duration = 20_000.0
    path = tmp_path / "song.swproj"
    project.save(path)
    win = make_window()
    assert win.open_path(path)
    panel = win.plots.panels[node_by_label(win, "Weights")]
    during = []
    # the worker may run at most two chunks ahead of the GUI, so a loaded machine whose GUI thread
    # stalls cannot deliver the whole run in one poll (the run has about 25 chunks)
    win.run.queue = queue.Queue(maxsize=2)
    win.run.chunks.connect(lambda chunks: during.append(len(panel.times)))
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=120_000)
    QApplication.processEvents()
    assert any(0 < n < 21 for n in during), "snapshots arrived while the run was going on"
    assert panel.times[0] == 0.0 and panel.times[-1] == 20_000.0 and len(panel.times) == 21
    assert panel.latest.shape == (1000,)
    assert panel.hists[-1].sum() == 1000
    # the distribution spreads from uniform towards both bounds: the final histogram differs
    assert not np.array_equal(panel.hists[0], panel.hists[-1])
    panel._redraw()
    assert "21 snapshot(s)" in panel.status.text() and "1,000 synapses" in panel.status.text()
    win.resize(1400, 900)
    dock = win.plot_docks[node_by_label(win, "Weights")]
    dock.show()
    dock.raise_()
    QApplication.processEvents()
    win.grab().save(str(tmp_path / "song_weights.png"))
    panel.grab().save("/tmp/song_weights_panel.png")
    win.grab().save("/tmp/song_weights_window.png")
