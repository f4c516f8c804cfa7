"""The Hardware panel: ports (typed or listed, virtual boards included), a connection that is only
called "connected" once the board answered, deploys with live board/twin rasters, per-run
agreement, accuracy of board, twin and float simulation, the weight heat map after on-chip STDP,
counters that start over with another project, and a disconnection noticed by the watchdog."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.project import Project

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "resources/examples/neurocorex_digits.swproj"


@pytest.fixture
def project_holder():
    return {"project": Project.load(DIGITS)}


@pytest.fixture
def panel(qtbot, project_holder):
    from app.hardware_panel import HardwarePanel

    widget = HardwarePanel(lambda: project_holder["project"])
    qtbot.addWidget(widget)
    widget.resize(1200, 600)
    widget.show()
    yield widget
    widget.shutdown()


def connect(panel, qtbot):
    panel.toggle_connection()
    qtbot.waitUntil(lambda: panel.probe is None, timeout=10_000)


def deploy(panel, qtbot, samples):
    panel.samples.setValue(samples)
    panel.start_deploy()
    assert not panel.deploy_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=90_000)


def test_deploy_to_the_virtual_board_shows_board_twin_accuracy_and_agreement(panel, qtbot, tmp_path):
    panel.start_virtual_board()
    assert panel.selected_port() == panel.virtual_board.device_path
    connect(panel, qtbot)
    assert panel.driver is not None and "connected to" in panel.link.text()
    deploy(panel, qtbot, 6)
    assert panel.report is not None and panel.report.frame_agreement == [True] * 6
    assert "identical in 6/6 runs" in panel.summary.text()
    assert panel.board_raster.n_spikes > 0
    assert panel.board_raster.n_spikes == panel.twin_raster.n_spikes
    # titled rasters, named after the output population
    assert panel.board_raster.title_label.isVisible() and panel.board_raster.title_label.text() == "Board: Classes"
    assert panel.twin_raster.title_label.text() == "Twin: Classes"
    # the float simulation's accuracy beside the board's and the twin's, as the report has them
    board, twin, flt = (panel.report.accuracy(c) for c in (panel.report.board_counts, panel.report.twin_counts,
                                                         panel.report.float_counts))
    assert panel.accuracy.text() == (f"accuracy over 6 samples: board {board * 100:.1f}% · twin {twin * 100:.1f}% "
                                     f"· float simulation {flt * 100:.1f}%")
    assert panel.agreement.text() == "board = twin in 6 of 6 runs"
    assert panel.agreement_view.identical == [True] * 6
    assert "sent" in panel.counters.text() and "errors 0" in panel.counters.text()
    assert panel.driver.bytes_sent > 9216 * 2 and panel.driver.bytes_received >= 2 * 9215
    assert panel.deploy_button.isEnabled()
    panel.grab().save(str(tmp_path / "hardware_panel.png"))


def test_a_run_that_differs_shows_in_the_live_agreement_view(panel, qtbot):
    panel.start_virtual_board()
    connect(panel, qtbot)
    panel.virtual_board.inject_fault("garbage", after_bytes=30, skip=1)  # the 2nd run's stream
    seen = []
    original = panel._on_agreement
    panel._on_agreement = lambda i, m: (original(i, m), seen.append((i, panel.report)))
    deploy(panel, qtbot, 4)
    assert panel.agreement_view.identical == [True, False, True, True]
    assert 0 < panel.agreement_view.shares[1] < 1 and panel.agreement_view.shares[0] == 1.0
    assert panel.agreement.text() == "board = twin in 3 of 4 runs"
    assert [i for i, _ in seen] == [0, 1, 2, 3] and all(report is None for _, report in seen)  # live
    assert "warning: run 2 of 4" in panel.log_view.toPlainText()


def test_onchip_stdp_deploy_shows_the_read_back_weights_as_a_heat_map(panel, qtbot):
    panel.start_virtual_board()
    connect(panel, qtbot)
    assert panel.weights_view.weights is not None  # the connection probe's read-back
    assert "when it was connected" in panel.weights_view.title.text()
    panel.onchip_stdp.setChecked(True)
    panel.stdp_settings.setText("3,3,1,1")
    deploy(panel, qtbot, 4)
    view = panel.weights_view
    assert np.array_equal(view.weights[:95], panel.report.readback[:95])
    assert view.changed_entries > 0 and f"{view.changed_entries} entries changed" in view.title.text()
    assert "read back from the board after the on-chip STDP runs" in view.title.text()
    assert view.image.image is not None and view.image.image.shape == (96, 96)
    assert view.view.currentText() == "Change since upload"
    assert "does not train the network's own feed-forward synapses" in panel.log_view.toPlainText()


def test_bad_onchip_stdp_settings_are_refused_before_anything_runs(panel):
    panel.onchip_stdp.setChecked(True)
    panel.stdp_settings.setText("3,3,1")
    panel.start_deploy()
    assert panel.worker is None
    assert "needs four numbers 0..255" in panel.log_view.toPlainText()


def test_a_port_with_no_board_is_never_called_connected(panel, qtbot):
    master, slave = os.openpty()  # a real serial device with nothing behind it
    try:
        path = os.ttyname(slave)
        panel.probe_timeout_s = 0.3
        panel.ports.setEditText(path)  # typed: a pty is never in the OS port list
        assert panel.selected_port() == path
        panel.toggle_connection()
        assert "checking" in panel.link.text() and "connected to" not in panel.link.text()
        assert not panel.connect_button.isEnabled() and not panel.deploy_button.isEnabled()
        qtbot.waitUntil(lambda: panel.probe is None, timeout=10_000)
        assert panel.driver is None
        assert panel.link.text() == f"● not connected: no NeuroCoreX board answered on {path}"
        assert "no start marker" in panel.log_view.toPlainText() or "0 of 9215" in panel.log_view.toPlainText()
        assert "errors 1" in panel.counters.text()
        assert panel.connect_button.isEnabled() and panel.connect_button.text() == "Connect"
    finally:
        os.close(master)
        os.close(slave)


def test_a_board_started_with_board_emulate_is_listed_and_can_be_typed(panel, qtbot):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "board", "emulate", "--fast", "--seconds", "60"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        panel.refresh_ports()
        assert panel.ports.findData(path) >= 0  # found although pyserial lists only /dev/ttyS*, USB ...
        panel.ports.setEditText(path)
        connect(panel, qtbot)
        assert panel.link.text() == f"● connected to {path} (the board answered)"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_an_unplugged_board_is_noticed(panel, qtbot):
    panel.start_virtual_board()
    connect(panel, qtbot)
    assert panel.driver is not None
    panel.virtual_board.disconnect()
    qtbot.waitUntil(lambda: panel.driver is None, timeout=5_000)
    assert "disconnected" in panel.link.text()
    assert "disconnected" in panel.log_view.toPlainText()


def test_connect_without_a_port_says_what_to_do(panel):
    panel.ports.clear()
    panel.ports.setEditText("")
    panel.toggle_connection()
    assert panel.driver is None and panel.probe is None
    assert "choose a serial port" in panel.log_view.toPlainText()
    assert "choose a serial port" in panel.summary.text()  # visible without opening the Log tab


def test_counters_and_results_start_over_when_another_project_is_opened(window, qtbot):
    assert window.open_path(DIGITS)
    window.show_hardware()
    panel = window.hardware
    panel.start_virtual_board()
    connect(panel, qtbot)
    panel.samples.setValue(2)
    panel.start_deploy()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=90_000)
    panel.ports.setEditText("")
    panel.driver.close()  # the watchdog reports the lost link as an error
    qtbot.waitUntil(lambda: "errors 1" in panel.counters.text(), timeout=5_000)
    assert panel.accuracy.text() and panel.agreement.text()
    assert window.open_path(DIGITS)  # another project (the same file, opened again)
    qtbot.waitUntil(lambda: "errors 0" in panel.counters.text(), timeout=5_000)
    assert panel.accuracy.text() == panel.agreement.text() == panel.summary.text() == ""
    assert panel.report is None and panel.agreement_view.shares == []
    assert panel.board_raster.n_spikes == 0


def test_the_panel_fits_the_dock_without_cutting_anything(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    window.resize(1400, 900)
    assert window.open_path(DIGITS)
    window.show_hardware()
    QApplication.processEvents()
    panel = window.hardware
    assert window.hardware_dock.height() >= panel.minimumSizeHint().height()
    for label in (panel.link, panel.counters):
        assert label.width() >= label.sizeHint().width(), label.text()
    for raster in (panel.board_raster, panel.twin_raster):
        assert raster.isVisible() and raster.title_label.isVisible()
        assert raster.glw.height() >= 150  # a usable raster, not a strip
    window.grab().save(str(tmp_path / "window_with_hardware_panel.png"))


def test_main_window_docks_the_hardware_panel(window, qtbot):
    assert window.hardware_dock.isHidden()
    window.show_hardware()
    assert window.hardware_dock.isVisible()
    assert window.hardware.deploy_button.isEnabled()
