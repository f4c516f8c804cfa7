"""Kernel quality in the designer: the palette offers it, and a run reports SP and AP when it ends."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QApplication

from tests.engine.test_kernel_quality import latency_liquid, with_kernel_quality


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
    if os.environ.get("SYNWEAVE_SHOTS"):
        win.grab().save(os.path.join(os.environ["SYNWEAVE_SHOTS"], "kernel_quality.png"))
