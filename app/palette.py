"""The node palette: every node type of the catalogue by category, searchable, draggable."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

import nodes as catalogue
from app.canvas import MIME_NODE_TYPE
from app.search import category_icon, matches


class _Tree(QTreeWidget):
    def startDrag(self, actions):
        item = self.currentItem()
        type_id = item.data(0, Qt.ItemDataRole.UserRole) if item else None
        if not type_id:
            return
        mime = QMimeData()
        mime.setData(MIME_NODE_TYPE, type_id.encode())
        mime.setText(type_id)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)


class Palette(QWidget):
    """Double-click (or Enter) adds the node at the canvas centre; drag drops it where you like."""

    addRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("Palette")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter nodes…")
        self.search.setClearButtonEnabled(True)
        self.tree = _Tree()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(14)
        self.tree.setDragEnabled(True)
        self.tree.setUniformRowHeights(True)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._categories: dict[str, QTreeWidgetItem] = {}
        for cls in catalogue.all_node_types():
            cat = self._categories.get(cls.category.value)
            if cat is None:
                cat = QTreeWidgetItem([cls.category.value])
                cat.setIcon(0, category_icon(cls.category.colour, 14))
                cat.setFlags(Qt.ItemFlag.ItemIsEnabled)
                f = cat.font(0)
                f.setBold(True)
                cat.setFont(0, f)
                self.tree.addTopLevelItem(cat)
                self._categories[cls.category.value] = cat
            item = QTreeWidgetItem([cls.title])
            item.setData(0, Qt.ItemDataRole.UserRole, cls.type_id)
            item.setIcon(0, category_icon(cls.category.colour, 10))
            item.setToolTip(0, f"<b>{cls.title}</b> <code>{cls.type_id}</code><br>{cls.doc_line()}")
            cat.addChild(item)
            self._items[cls.type_id] = item
        self.tree.expandAll()
        self.search.textChanged.connect(self.apply_filter)
        self.tree.itemActivated.connect(self._activated)

    def item_for(self, type_id: str) -> QTreeWidgetItem:
        return self._items[type_id]

    def apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for cat in self._categories.values():
            visible = 0
            for i in range(cat.childCount()):
                child = cat.child(i)
                ok = matches(catalogue.node_type(child.data(0, Qt.ItemDataRole.UserRole)), words)
                child.setHidden(not ok)
                visible += ok
            cat.setHidden(visible == 0)
        self.tree.expandAll()

    def visible_type_ids(self) -> list[str]:
        return [tid for tid, item in self._items.items() if not item.isHidden() and not item.parent().isHidden()]

    def _activated(self, item, column=0):
        type_id = item.data(0, Qt.ItemDataRole.UserRole)
        if type_id:
            self.addRequested.emit(type_id)
