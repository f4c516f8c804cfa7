"""Search-to-add popup: type to filter the catalogue, Enter (or click) adds the node."""

from __future__ import annotations

from typing import Callable, Iterable

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

import nodes as catalogue


def category_icon(colour: str, size: int = 12) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(colour))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    p.end()
    return QIcon(pix)


def matches(cls, words: list[str]) -> bool:
    hay = " ".join([cls.title, cls.type_id, cls.category.value, cls.doc_line()]).lower()
    return all(w in hay for w in words)


def score(cls, text: str) -> tuple:
    t = text.lower()
    title = cls.title.lower()
    return (0 if title.startswith(t) else 1 if t in title else 2 if t in cls.type_id else 3, title)


class AddNodePopup(QFrame):
    """A frameless popup with a search field and the matching node types."""

    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("AddNodePopup")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        self.heading = QLabel("Add node")
        self.heading.setObjectName("PopupHeading")
        self.field = QLineEdit()
        self.field.setPlaceholderText("Search nodes…  (Enter adds, Esc closes)")
        self.field.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setUniformItemSizes(True)
        layout.addWidget(self.heading)
        layout.addWidget(self.field)
        layout.addWidget(self.list)
        self.resize(340, 380)
        self._types: list = []
        self.field.textChanged.connect(self._refilter)
        self.field.installEventFilter(self)
        self.list.itemActivated.connect(self._activate)
        self.list.itemClicked.connect(self._activate)
        self._callback: Callable[[str], None] | None = None

    def open(self, global_pos: QPoint, types: Iterable | None = None, heading: str = "Add node",
             callback: Callable[[str], None] | None = None) -> None:
        self._types = list(types) if types is not None else catalogue.all_node_types()
        self._callback = callback
        self.heading.setText(heading)
        self.field.clear()
        self._refilter("")
        self.move(global_pos)
        self.show()
        self.raise_()
        self.field.setFocus()

    def _refilter(self, text: str) -> None:
        words = text.lower().split()
        found = [c for c in self._types if matches(c, words)]
        if text.strip():
            found.sort(key=lambda c: score(c, text.strip()))
        self.list.clear()
        for cls in found:
            item = QListWidgetItem(category_icon(cls.category.colour), f"{cls.title}")
            item.setData(Qt.ItemDataRole.UserRole, cls.type_id)
            item.setToolTip(f"{cls.type_id} — {cls.category.value}\n{cls.doc_line()}")
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def visible_type_ids(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def eventFilter(self, obj, event):
        if obj is self.field and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                row = self.list.currentRow()
                step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 8,
                        Qt.Key.Key_PageUp: -8}[key]
                if self.list.count():
                    self.list.setCurrentRow(max(0, min(self.list.count() - 1, row + step)))
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                item = self.list.currentItem()
                if item is not None:
                    self._activate(item)
                return True
            if key == Qt.Key.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(obj, event)

    def _activate(self, item: QListWidgetItem) -> None:
        type_id = item.data(Qt.ItemDataRole.UserRole)
        callback = self._callback
        self._callback = None
        self.hide()
        if callback is not None:
            callback(type_id)
        self.chosen.emit(type_id)
