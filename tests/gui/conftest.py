"""GUI test fixtures: headless Qt, a private data folder, no modal dialog ever blocks a test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

import app  # noqa: E402,F401  (PySide6 6.12 refcount work-around before any Qt call)
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

pytestmark = pytest.mark.gui


class Dialogs:
    """Scripted answers for app.dialogs; records every question asked."""

    def __init__(self):
        self.asked: list[tuple] = []
        self.save_answer = "discard"
        self.recover_answer = "recover"
        self.confirm_answer = True
        self.open_answer = None
        self.save_path_answer = None

    def install(self, monkeypatch):
        from app import dialogs

        monkeypatch.setattr(dialogs, "ask_save_changes", self._ask_save)
        monkeypatch.setattr(dialogs, "ask_recover", self._ask_recover)
        monkeypatch.setattr(dialogs, "show_error", self._show_error)
        monkeypatch.setattr(dialogs, "confirm", self._confirm)
        monkeypatch.setattr(dialogs, "open_path", lambda parent, d="": self._record("open", d) or self.open_answer)
        monkeypatch.setattr(dialogs, "save_path", lambda parent, s="": self._record("save_path", s) or self.save_path_answer)

    def _record(self, *item):
        self.asked.append(item)
        return None

    def _ask_save(self, parent, name, before="closing"):
        self.asked.append(("save_changes", name))
        self.save_question = f"Save the changes to “{name}” before {before}?"
        return self.save_answer

    def _ask_recover(self, parent, description):
        self.asked.append(("recover", description))
        return self.recover_answer

    def _show_error(self, parent, title, text, detail=""):
        self.asked.append(("error", title, text, detail))

    def _confirm(self, parent, title, text):
        self.asked.append(("confirm", title, text))
        return self.confirm_answer

    def errors(self):
        return [a for a in self.asked if a[0] == "error"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "synweave-data"
    monkeypatch.setenv("SYNWEAVE_DATA_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def dialogs(monkeypatch, qapp):
    d = Dialogs()
    d.install(monkeypatch)
    return d


@pytest.fixture
def make_window(qtbot):
    from app.main_window import MainWindow
    from engine.project import Project

    made = []

    def make(project=None, show=True):
        win = MainWindow(project or Project())
        qtbot.addWidget(win)
        if show:
            win.show()
            qtbot.waitExposed(win)
            QApplication.processEvents()
        made.append(win)
        return win

    yield make
    for win in made:
        if win.run.running:
            win.run.stop()
            win.run.wait(10)
        win.doc.force_modified = False
        win.doc.undo_stack.setClean()
        win.close()


@pytest.fixture
def window(make_window):
    return make_window()


def example_path(stem: str):
    from engine.project import example_projects

    return next(p for p in example_projects() if p.stem == stem)


@pytest.fixture
def cuba_window(make_window):
    win = make_window()
    win.open_example(example_path("cuba"))
    QApplication.processEvents()
    return win


def view_point(view, scene_pos) -> QPoint:
    return view.mapFromScene(QPointF(scene_pos))


def port_point(win, node_id: str, port: str, direction: str) -> QPoint:
    item = win.scene.node_items[node_id].port_item(port, direction)
    return view_point(win.view, item.scenePos())


def drag(view, start: QPoint, end: QPoint, steps: int = 5):
    """Press at start, move in steps, release at end (left button), on the view's viewport."""
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for k in range(1, steps + 1):
        p = start + (end - start) * k / steps
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    QApplication.processEvents()


def node_by_label(win, label: str) -> str:
    return next(nid for nid, n in win.doc.graph.nodes.items() if n.label == label)
