"""Run toolbar settings, themes, shortcuts sheet, title."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app import theme as themes


def test_settings_fields_validate_and_undo(window):
    win = window
    field = win.setting_fields["dt"]
    edit = field.edit
    edit.selectAll()
    QTest.keyClicks(edit, "50")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert win.doc.project.settings.dt == 0.1            # refused: above 10 ms
    assert edit.property("invalid") is True
    assert "must be <= 10 ms" in win.statusBar().currentMessage()
    edit.selectAll()
    QTest.keyClicks(edit, "0.05")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert win.doc.project.settings.dt == 0.05 and not edit.property("invalid")
    assert win.modified and "*" in win.windowTitle()
    win.backend_combo.setCurrentText("torch")
    assert win.doc.project.settings.backend == "torch"
    win.doc.undo_stack.undo()
    win.doc.undo_stack.undo()
    assert win.doc.project.settings.dt == 0.1 and edit.text() == "0.1"
    assert win.backend_combo.currentText() == "numba"
    assert not win.modified


def test_theme_switch_saved_in_project(window, tmp_path):
    win = window
    win.theme_actions["light"].trigger()
    assert themes.current_theme() == "light" and win.scene.theme == "light"
    assert "#f3f4f6" in QApplication.instance().styleSheet()
    win.save_to(tmp_path / "t.swproj")
    assert win.doc.project.view["theme"] == "light"
    win.theme_actions["dark"].trigger()
    assert themes.current_theme() == "dark"
    win.open_path(tmp_path / "t.swproj")
    assert themes.current_theme() == "light"
    win.set_theme("dark")


def test_menus_and_shortcuts(window):
    win = window
    titles = [a.text() for a in win.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&View", "&Run", "&Help"]
    assert win.act_run.shortcuts()[0].toString() == "Ctrl+Return"
    assert win.act_stop.shortcut().toString() == "Ctrl+."
    assert win.act_cheats.shortcut().toString() == "?"
    assert win.act_group.shortcut().toString() == "Ctrl+G"
    from app.main_window import SHORTCUTS, CheatSheet
    from PySide6.QtWidgets import QTableWidget
    sheet = CheatSheet(win)
    assert sheet.findChild(QTableWidget).rowCount() == len(SHORTCUTS)
    assert any("Tab" in keys for _, keys in SHORTCUTS)
    sheet.deleteLater()


def test_run_shortcut_starts_and_stop_shortcut_stops(cuba_window, qtbot, dialogs):
    win = cuba_window
    from engine.networks import cuba_plan
    raster = next(nid for nid, n in win.doc.graph.nodes.items() if n.type_id == "monitor.spikes")
    # 10 min of model time, so the run cannot finish before the stop shortcut lands
    assert win.start_plan_run(cuba_plan(n=4000, duration_ms=600_000.0), {"spikes": raster})
    qtbot.waitUntil(lambda: win.run.state == "running", timeout=60_000)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    win.view.setFocus()
    QTest.keyClick(win.view, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not win.run.running, timeout=30_000)
    assert win.run.results.stopped
