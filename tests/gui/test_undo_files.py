"""Undo/redo of mixed edits, save / close / reopen, title, unsaved-changes prompt, load errors."""

from __future__ import annotations

import json

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.graph import Connect, Edge
from engine.project import Project
from tests.gui.conftest import drag, example_path, node_by_label, port_point


def test_twenty_mixed_edits_undo_and_redo_to_identical_graph(window):
    win, scene, g = window, window.scene, window.doc.graph
    stack = win.doc.undo_stack
    win.view.set_zoom(1.0)
    win.view.centerOn(300, 150)
    QApplication.processEvents()
    initial = json.dumps(g.to_json(), sort_keys=True)
    src = scene.add_node("input.poisson", (0, 0))                           # 1
    prj = scene.add_node("synapse.projection", (300, 0))                     # 2
    pop = scene.add_node("neuron.lif", (600, 0))                             # 3
    drag(win.view, port_point(win, src, "spikes", "out"), port_point(win, prj, "pre", "in"))   # 4
    drag(win.view, port_point(win, prj, "post", "out"), port_point(win, pop, "input", "in"))   # 5
    scene.select_nodes([pop])
    ed = win.inspector.editors["n"].editor
    ed.selectAll()
    QTest.keyClicks(ed, "250")
    QTest.keyClick(ed, Qt.Key.Key_Return)                                    # 6
    win.inspector.editors["synapse"].editor.setCurrentText("delta")          # 7
    win.inspector.label_edit.setText("Targets")
    win.inspector.label_edit.editingFinished.emit()                          # 8
    item = scene.node_items[pop]
    start = win.view.mapFromScene(item.sceneBoundingRect().center().x(), item.pos().y() + 10)
    drag(win.view, start, start + (start - start) + type(start)(40, 60))     # 9 (move by drag)
    scene.select_nodes([src, prj])
    scene.group_selection("Input stage")                                      # 10
    scene.add_comment(QPointF(0, 300), "a note")                              # 11
    mon = scene.add_node("monitor.spikes", (900, 0))                          # 12
    win.doc.apply(Connect(Edge(pop, "spikes", mon, "source")))                # 13
    scene.select_nodes([mon])
    scene.duplicate_selection()                                               # 14
    scene.select_nodes([pop])
    win.inspector.editors["tau_m"].editor.setText("15")
    win.inspector.editors["tau_m"].editor.editingFinished.emit()              # 15
    scene.auto_layout()                                                       # 16
    scene.select_nodes([mon])
    scene.delete_selection()                                                  # 17
    win.doc.set_setting("dt", 0.05)                                           # 18 (a setting)
    rate = scene.add_node("monitor.rate", (900, 200))                         # 19
    win.doc.apply(Connect(Edge(src, "spikes", rate, "source")))               # 20
    assert stack.count() == 20, [stack.text(i) for i in range(stack.count())]
    final = json.dumps(g.to_json(), sort_keys=True)
    final_settings = win.doc.project.settings.values_json()
    for _ in range(20):
        stack.undo()
    assert json.dumps(g.to_json(), sort_keys=True) == initial
    assert win.doc.project.settings.dt == 0.1
    assert not win.modified and "*" not in win.windowTitle()
    assert not scene.node_items and not scene.wire_items and not scene.group_items
    for _ in range(20):
        stack.redo()
    assert json.dumps(g.to_json(), sort_keys=True) == final
    assert win.doc.project.settings.values_json() == final_settings
    # the canvas mirrors the graph exactly
    assert set(scene.node_items) == set(g.nodes)
    assert set(scene.wire_items) == set(g.edges)
    assert set(scene.group_items) == set(g.groups)
    for nid, item in scene.node_items.items():
        assert (item.pos().x(), item.pos().y()) == g.node(nid).position


def test_move_by_drag_is_one_undo_step(window):
    win = window
    a = win.scene.add_node("neuron.lif", (0, 0))
    b = win.scene.add_node("neuron.lif", (0, 250))
    win.view.set_zoom(1.0)
    win.view.centerOn(100, 150)
    QApplication.processEvents()
    win.scene.select_nodes([a, b])
    before = win.doc.undo_stack.count()
    p = win.view.mapFromScene(60, 10)
    QTest.mousePress(win.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    for k in range(1, 8):
        QTest.mouseMove(win.view.viewport(), p + type(p)(10 * k, 5 * k))
    QTest.mouseRelease(win.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       p + type(p)(70, 35))
    assert win.doc.undo_stack.count() == before + 1
    assert win.doc.graph.node(a).position == (70.0, 35.0)
    assert win.doc.graph.node(b).position == (70.0, 285.0)
    win.doc.undo_stack.undo()
    assert win.doc.graph.node(a).position == (0.0, 0.0)
    assert win.scene.node_items[a].pos() == QPointF(0, 0)


def test_save_close_reopen_same_graph_and_layout(make_window, tmp_path, dialogs):
    from app import appdata

    win = make_window()
    win.open_example(example_path("cuba"))
    exc = node_by_label(win, "Excitatory")
    win.scene.select_nodes([exc])
    win.inspector.editors["n"].editor.setText("1000")
    win.inspector.editors["n"].editor.editingFinished.emit()
    win.view.set_zoom(0.8)
    win.view.centerOn(123.0, 45.0)
    assert "*" in win.windowTitle() and "CUBA network" in win.windowTitle()
    target = tmp_path / "my net.swproj"
    dialogs.save_path_answer = str(target)
    assert win.file_save()  # untitled: asks for a name
    assert target.exists()
    assert win.windowTitle().startswith("my net.swproj") and "*" not in win.windowTitle()
    saved_graph = win.doc.graph.to_json()
    saved_view = win.view.view_state()
    win.close()
    assert dialogs.asked == [("save_path", dialogs.asked[0][1])]  # no unsaved-changes prompt
    assert appdata.recent_files()[0] == str(target.resolve())

    win2 = make_window()
    assert win2.open_path(target)
    QApplication.processEvents()
    assert win2.doc.graph.to_json() == saved_graph
    state = win2.view.view_state()
    assert abs(state["zoom"] - saved_view["zoom"]) < 1e-3
    assert abs(state["center"][0] - saved_view["center"][0]) < 2
    assert abs(state["center"][1] - saved_view["center"][1]) < 2
    assert win2.doc.project.view["theme"] in ("dark", "light")
    assert isinstance(win2.doc.project.view["window_state"], str)
    assert not win2.modified


def test_close_with_unsaved_changes_asks(make_window, dialogs):
    win = make_window()
    win.scene.add_node("neuron.lif", (0, 0))
    dialogs.save_answer = "cancel"
    assert not win.close()
    assert win.isVisible()
    assert dialogs.asked[-1][0] == "save_changes"
    dialogs.save_answer = "discard"
    assert win.close()


def test_revert_and_new(make_window, tmp_path, dialogs):
    path = tmp_path / "p.swproj"
    Project.load(example_path("cuba")).save(path)
    win = make_window()
    win.open_path(path)
    before = win.doc.graph.to_json()
    win.scene.select_nodes(list(win.doc.graph.nodes)[:2])
    win.scene.delete_selection()
    assert win.modified
    win.file_revert()
    assert win.doc.graph.to_json() == before and not win.modified
    dialogs.save_answer = "discard"
    win.scene.add_node("neuron.lif", (0, 0))
    win.file_new()
    assert len(win.doc.graph) == 0 and win.doc.path is None


def test_bad_file_shows_error_dialog_not_traceback(window, tmp_path, dialogs):
    bad = tmp_path / "broken.swproj"
    bad.write_text('{"format": "synweave-project", "schema_version": 2, "graph": {"nodes": [1]}}')
    assert not window.open_path(bad)
    (kind, title, text, detail), = dialogs.errors()
    assert "Cannot open" in title and "broken.swproj" in text
    assert "expected an object" in detail and "Traceback" not in detail
    assert not window.open_path(tmp_path / "missing.swproj")
    assert "file not found" in dialogs.errors()[-1][3]


def test_first_start_opens_cuba_then_not_again(qtbot):
    from app import main_window

    wins = main_window.open_initial_windows()
    for w in wins:
        qtbot.addWidget(w)
    assert len(wins) == 1 and wins[0].doc.project.name == "CUBA network"
    assert wins[0].doc.path is None and not wins[0].modified
    wins[0].close()
    again = main_window.open_initial_windows()
    for w in again:
        qtbot.addWidget(w)
    assert len(again[0].doc.graph) == 0
    again[0].close()


def test_examples_menu_lists_every_example(window):
    from engine.project import example_projects

    help_menu = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"][0]
    examples = [a.menu() for a in help_menu.actions() if a.menu() is not None][0]
    assert len(examples.actions()) == len(example_projects())
    examples.actions()[0].trigger()
    assert len(window.doc.graph) > 0 and window.doc.path is None
