"""The problems panel: ``engine.validate.validate_project`` run live (debounced) after every change."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget, QLabel

from app.document import Document
from engine.errors import Problem
from engine.validate import validate_project


def severity_icon(severity: str, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#e5484d" if severity == "error" else "#f0ad1c"))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.setPen(QColor("#ffffff"))
    f = p.font()
    f.setBold(True)
    f.setPixelSize(size - 4)
    p.setFont(f)
    p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, "!")
    p.end()
    return QIcon(pix)


class ProblemsPanel(QWidget):
    """Lists every problem; clicking one emits ``nodeRequested`` with the node's id."""

    nodeRequested = Signal(str, str)   # node id, field
    problemsChanged = Signal(list)

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.setObjectName("Problems")
        self.doc = doc
        self.problems: list[Problem] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.summary = QLabel()
        self.summary.setObjectName("ProblemsSummary")
        lay.addWidget(self.summary)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Node", "Problem and fix"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(0)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setStretchLastSection(True)
        lay.addWidget(self.tree)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(120)
        self.timer.timeout.connect(self.refresh)
        self.tree.itemClicked.connect(self._clicked)
        self.tree.itemActivated.connect(self._clicked)
        self._connect(doc)
        self.refresh()

    def _connect(self, doc: Document):
        doc.graphChanged.connect(self.schedule)
        doc.settingsChanged.connect(self.schedule)

    def set_document(self, doc: Document):
        for sig in (self.doc.graphChanged, self.doc.settingsChanged):
            try:
                sig.disconnect(self.schedule)
            except (RuntimeError, TypeError):
                pass
        self.doc = doc
        self._connect(doc)
        self.refresh()

    def schedule(self, *args):
        self.timer.start()

    def node_id_for(self, label: str | None) -> str | None:
        return self.doc.graph.find(label)

    def refresh(self):
        self.timer.stop()
        try:
            problems = validate_project(self.doc.project)
        except Exception as exc:  # a bug in a check must not take the panel down
            problems = [Problem(f"validation failed: {exc}", severity="error")]
        self.problems = problems
        self.tree.clear()
        for p in problems:
            text = p.message + (f"  [{p.field}]" if p.field else "")
            item = QTreeWidgetItem([p.node or "(project)", text])
            if p.hint:
                fix = QTreeWidgetItem(["", f"→ {p.hint}"])
                fix.setForeground(1, self.palette().placeholderText())
                fix.setData(0, Qt.ItemDataRole.UserRole, self.node_id_for(p.node))
                fix.setData(1, Qt.ItemDataRole.UserRole, p.field or "")
                fix.setToolTip(1, p.hint)
                item.addChild(fix)
            item.setIcon(0, severity_icon(p.severity))
            item.setData(0, Qt.ItemDataRole.UserRole, self.node_id_for(p.node))
            item.setData(1, Qt.ItemDataRole.UserRole, p.field or "")
            item.setToolTip(1, str(p))
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
        errors = sum(p.severity == "error" for p in problems)
        warnings = len(problems) - errors
        if not problems:
            self.summary.setText("  ✓ No problems — ready to run")
        else:
            self.summary.setText(f"  {errors} error{'s' if errors != 1 else ''}, "
                                 f"{warnings} warning{'s' if warnings != 1 else ''}")
        self.summary.setProperty("state", "error" if errors else "warning" if warnings else "ok")
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)
        self.problemsChanged.emit(problems)

    def by_node(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for p in self.problems:
            nid = self.node_id_for(p.node)
            if nid is None:
                continue
            level = "error" if p.severity == "error" or out.get(nid, ("",))[0] == "error" else "warning"
            text = (out[nid][1] + "\n" if nid in out else "") + str(p)
            out[nid] = (level, text)
        return out

    def error_count(self) -> int:
        return sum(p.severity == "error" for p in self.problems)

    def _clicked(self, item, column=0):
        nid = item.data(0, Qt.ItemDataRole.UserRole)
        if nid:
            self.nodeRequested.emit(nid, item.data(1, Qt.ItemDataRole.UserRole) or "")
