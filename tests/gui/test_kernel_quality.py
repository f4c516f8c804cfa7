"""Kernel quality in the designer: the palette offers it, and a run reports SP and AP when it ends."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QApplication

from tests.engine.test_kernel_quality import latency_liquid, with_kernel_quality
from tests.gui.conftest import node_by_label


def test_a_run_reports_sp_and_ap_in_the_status_bar(make_window, qtbot, dialogs, tmp_path):
    project = latency_liquid(n_samples=30)
    with_kernel_quality(project, per_class=10, draws=5)
    path = project.save(tmp_path / "kq.swproj")
    win = make_window()
    assert "monitor.kernel_quality" in win.palette.visible_type_ids()
    assert win.open_path(str(path))
    phases = []
    win.run.progress.connect(lambda phase, fraction, text: phases.append(text))
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=120_000)
    QApplication.processEvents()
    assert dialogs.errors() == []
    k = next(iter(win.run.results.kernel_quality.values()))
    message = win.statusBar().currentMessage()
    assert f"Kernel quality: SP {k['SP']:.1f}, AP {k['AP']:.1f}, SP − AP {k['SP_minus_AP']:.1f}" in message
    assert any("noisy inputs for the kernel quality" in text for text in phases)
    # the node's panel draws both ranks under the largest rank a drawn matrix can have
    panel = win.plots.panels[node_by_label(win, "Kernel quality")]
    panel._redraw()
    assert panel.status.text().startswith(f"SP {k['SP']:.1f} · AP {k['AP']:.1f} · SP − AP")
    assert list(panel.bars.opts["height"]) == [k["SP"], k["AP"]]
    assert panel.ceiling.value() == min(125, k["n_columns"])
    assert panel.data_arrays()["SP_minus_AP"][0] == k["SP_minus_AP"]
    if os.environ.get("SYNWEAVE_SHOTS"):
        dock = win.plot_docks[node_by_label(win, "Kernel quality")]
        dock.show()
        dock.raise_()
        QApplication.processEvents()
        win.grab().save(os.path.join(os.environ["SYNWEAVE_SHOTS"], "kernel_quality.png"))
