"""One open project: the model graph, its settings, the file name and the undo stack.

The GUI never edits the graph directly. :meth:`Document.apply` applies an ``engine.graph``
operation and pushes a :class:`GraphCommand` holding the inverse onto the one ``QUndoStack``;
undo applies the inverse, redo the operation again. Settings edits are commands on the same stack,
so they mark the project modified and undo like any other change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.errors import SynweaveError
from engine.graph import ModelGraph, Operation
from engine.project import Project


class GraphCommand(QUndoCommand):
    """redo = ``graph.apply(op)`` storing the returned inverse; undo = ``graph.apply(inverse)``."""

    def __init__(self, graph: ModelGraph, op: Operation, inverse: Operation | None, text: str):
        super().__init__(text)
        self.graph = graph
        self.op = op
        self.inverse = inverse
        # The document applies the operation before pushing (to report errors without touching
        # the stack); QUndoStack.push calls redo() at once, which must then do nothing.
        self._applied = inverse is not None

    def redo(self):
        if self._applied:
            self._applied = False
            return
        self.inverse = self.graph.apply(self.op)

    def undo(self):
        self.graph.apply(self.inverse)


class SettingsCommand(QUndoCommand):
    """Change one simulation setting of the project."""

    def __init__(self, doc: "Document", name: str, value: Any, old: Any):
        super().__init__(f"set {name}")
        self.doc, self.name, self.value, self.old = doc, name, value, old

    def redo(self):
        self.doc.project.settings.set(self.name, self.value)
        self.doc.settingsChanged.emit(self.name)

    def undo(self):
        self.doc.project.settings.set(self.name, self.old)
        self.doc.settingsChanged.emit(self.name)

    def id(self):
        return 0x5E7

    def mergeWith(self, other):
        # Typing into the same setting field produces one undo step, not one per keystroke.
        if isinstance(other, SettingsCommand) and other.name == self.name:
            self.value = other.value
            return True
        return False


class Document(QObject):
    """A project open in a window."""

    #: an operation was applied to the graph (also on undo/redo); carries the operation
    graphChanged = Signal(object)
    #: a simulation setting changed; carries its name
    settingsChanged = Signal(str)
    #: an edit was refused; carries the reason
    refused = Signal(str)

    def __init__(self, project: Project | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project or Project()
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(1000)
        #: set for recovered projects: modified although nothing is on the undo stack yet
        self.force_modified = False
        self.graph.subscribe(self._on_graph_op)

    @property
    def graph(self) -> ModelGraph:
        return self.project.graph

    @property
    def path(self) -> Path | None:
        return self.project.path

    def _on_graph_op(self, op: Operation) -> None:
        self.graphChanged.emit(op)

    def close(self) -> None:
        try:
            self.graph.unsubscribe(self._on_graph_op)
        except ValueError:
            pass

    # -- edits ------------------------------------------------------------------------------
    def apply(self, op: Operation, text: str | None = None) -> bool:
        """Apply an operation as one undo step. Returns False (and emits ``refused``) on error."""
        try:
            inverse = self.graph.apply(op)
        except SynweaveError as exc:
            self.refused.emit(str(exc))
            return False
        self.undo_stack.push(GraphCommand(self.graph, op, inverse, text or op.description))
        return True

    def set_setting(self, name: str, value: Any) -> bool:
        settings = self.project.settings
        old = settings.get(name)
        if old == value:
            return True
        try:
            settings.params[name].coerce(value)
        except SynweaveError as exc:
            self.refused.emit(str(exc))
            return False
        self.undo_stack.push(SettingsCommand(self, name, value, old))
        return True

    @property
    def modified(self) -> bool:
        return self.force_modified or not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.force_modified = False
        self.undo_stack.setClean()
