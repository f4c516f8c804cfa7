"""Copy/paste between two windows through the system clipboard; crash recovery."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.graph import Edge
from tests.gui.conftest import example_path, node_by_label

ROOT = Path(__file__).resolve().parents[2]


def _activate(qtbot, win):
    win.activateWindow()
    win.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    win.view.setFocus()


def test_copy_paste_between_two_windows(make_window, qtbot):
    a = make_window()
    a.open_example(example_path("cuba"))
    b = make_window()
    exc, inh = node_by_label(a, "Excitatory"), node_by_label(a, "Inhibitory")
    ee = node_by_label(a, "E→E")
    a.scene.select_nodes([exc, ee])
    _activate(qtbot, a)
    QTest.keyClick(a.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    text = QApplication.clipboard().text()
    assert '"synweave-fragment"' in text
    _activate(qtbot, b)
    QTest.keyClick(b.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    g = b.doc.graph
    assert sorted(n.label for n in g.nodes.values()) == sorted(["E→E", "Excitatory"])
    new_exc = node_by_label(b, "Excitatory")
    new_ee = node_by_label(b, "E→E")
    # only the wires among the copied nodes come along
    assert sorted(g.edges) == sorted([Edge(new_exc, "spikes", new_ee, "pre"), Edge(new_ee, "post", new_exc, "input")])
    assert g.node(new_exc).values == a.doc.graph.node(exc).values
    assert sorted(b.scene.selected_node_ids()) == sorted([new_exc, new_ee])
    # pasting again in the same window gives fresh ids and labels
    b.scene.paste(QPointF(500, 500))
    assert len(g) == 4 and "Excitatory 2" in {n.label for n in g.nodes.values()}
    # cut removes from the source window in one undo step
    a.scene.select_nodes([inh])
    n_before = len(a.doc.graph)
    a.scene.cut_selection()
    assert len(a.doc.graph) == n_before - 1
    a.doc.undo_stack.undo()
    assert len(a.doc.graph) == n_before


def test_paste_of_foreign_text_is_refused_politely(window):
    QApplication.clipboard().setText('{"format": "synweave-fragment", "nodes": [{"id": "x", "type": "nope"}]}')
    assert window.scene.paste() == []
    assert "Cannot paste" in window.statusBar().currentMessage()
    QApplication.clipboard().setText("hello")
    assert window.scene.paste() == []
    assert len(window.doc.graph) == 0


def test_duplicate_and_delete_keys(window):
    win = window
    a = win.scene.add_node("neuron.lif", (0, 0))
    win.view.setFocus()
    QTest.keyClick(win.view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(win.doc.graph) == 2
    dup = win.scene.selected_node_ids()[0]
    assert win.doc.graph.node(dup).position == (40.0, 40.0)
    QTest.keyClick(win.view, Qt.Key.Key_Delete)
    assert list(win.doc.graph.nodes) == [a]


CRASHER = textwrap.dedent("""
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path.insert(0, {root!r})
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from app.main_window import MainWindow
    from engine.project import Project
    win = MainWindow(Project())
    win.scene.add_node("input.poisson", (0, 0))
    lif = win.scene.add_node("neuron.lif", (300, 0))
    win.doc.set_setting("duration", 250.0)
    win.inspector.show_node(lif)
    assert win.autosaver.autosave()
    print("autosaved", win.autosaver.path, flush=True)
    os._exit(3)   # crash: no close, no cleanup
""")


def test_recover_after_crash(make_window, data_dir, dialogs):
    from app import main_window, recovery

    env = dict(os.environ, SYNWEAVE_DATA_DIR=str(data_dir))
    proc = subprocess.run([sys.executable, "-c", CRASHER.format(root=str(ROOT))], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    files = list((data_dir / "recovery").glob("*.swproj.recovery"))
    assert len(files) == 1
    entries = recovery.orphaned_files()
    assert len(entries) == 1 and "Untitled" in entries[0].describe()
    dialogs.recover_answer = "recover"
    wins = main_window.open_initial_windows()
    recovered = [w for w in wins if len(w.doc.graph)]
    assert len(recovered) == 1
    win = recovered[0]
    try:
        assert sorted(n.type_id for n in win.doc.graph.nodes.values()) == ["input.poisson", "neuron.lif"]
        assert win.doc.project.settings.duration == 250.0
        assert win.modified and "*" in win.windowTitle()
        assert "recovery" not in win.doc.project.view
        assert ("recover", entries[0].describe()) in dialogs.asked
        # the old file is gone; this window autosaves to its own file
        assert not files[0].exists()
        assert recovery.orphaned_files() == []
    finally:
        for w in wins:
            w.doc.force_modified = False
            w.doc.undo_stack.setClean()
            w.close()


def test_autosave_writes_while_modified_and_cleans_up(window, data_dir):
    win = window
    assert not win.autosaver.autosave()  # nothing to save
    win.scene.add_node("neuron.lif", (0, 0))
    assert win.autosaver.autosave()
    assert win.autosaver.path.exists()
    assert not win.autosaver.autosave()  # unchanged since
    assert win.autosaver.timer.interval() == 2_000 and win.autosaver.timer.isSingleShot()
    win.doc.undo_stack.undo()  # back to clean: the recovery file goes
    win.autosaver.autosave()
    assert not win.autosaver.path.exists()
