"""The Hardware panel: virtual board, connect, deploy with live board and twin rasters, and a
disconnection noticed by the watchdog."""

from pathlib import Path

import pytest

from engine.project import Project

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "resources/examples/neurocorex_digits.swproj"


@pytest.fixture
def panel(qtbot):
    from app.hardware_panel import HardwarePanel

    project = Project.load(DIGITS)
    widget = HardwarePanel(lambda: project)
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.show()
    yield widget
    widget.shutdown()


def test_deploy_to_the_virtual_board_shows_board_and_twin(panel, qtbot):
    panel.start_virtual_board()
    assert panel.ports.currentData() == panel.virtual_board.device_path
    panel.toggle_connection()
    assert panel.driver is not None and "connected" in panel.link.text()
    panel.samples.setValue(6)
    panel.start_deploy()
    assert not panel.deploy_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=60_000)
    assert panel.report is not None
    assert "identical in 6/6 runs" in panel.summary.text()
    assert panel.board_raster.n_spikes > 0
    assert panel.board_raster.n_spikes == panel.twin_raster.n_spikes
    assert "sent" in panel.counters.text() and "errors 0" in panel.counters.text()
    assert panel.driver.bytes_sent > 9216 * 2 and panel.driver.bytes_received >= 9215
    assert panel.deploy_button.isEnabled()


def test_an_unplugged_board_is_noticed(panel, qtbot):
    panel.start_virtual_board()
    panel.toggle_connection()
    panel.virtual_board.disconnect()
    qtbot.waitUntil(lambda: panel.driver is None, timeout=5_000)
    assert "disconnected" in panel.link.text()
    assert "disconnected" in panel.log_view.toPlainText()


def test_connect_without_a_port_says_what_to_do(panel):
    panel.ports.clear()
    panel.ports.addItem("no serial ports found", None)
    panel.toggle_connection()
    assert panel.driver is None
    assert "choose a serial port" in panel.log_view.toPlainText()


def test_main_window_docks_the_hardware_panel(window, qtbot):
    assert window.hardware_dock.isHidden()
    window.show_hardware()
    assert window.hardware_dock.isVisible()
    assert window.hardware.deploy_button.isEnabled()
