"""The inspector: editors generated from the selected node's Param descriptors.

Each editor parses what the user typed, checks it with the descriptor (``Param.coerce``) and only
then applies a ``SetParam`` through the document (one undo step). A value the descriptor refuses
is marked red with the ParameterError message underneath and the graph is left unchanged.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout,
                               QLabel, QLineEdit, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from app.document import Document
from app.widgets import FocusWheelComboBox
from engine.errors import ParameterError
from engine.graph import Compound, Operation, SetLabel, SetParam
from nodes.params import Bool, Choice, Float, FloatList, Int, IntList, Param, Text


def format_value(param: Param, value: Any) -> str:
    if isinstance(param, (FloatList, IntList)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def parse_value(param: Param, text: str) -> Any:
    """Turn typed text into the value the descriptor checks; raise ParameterError if unreadable."""
    text = text.strip()
    if isinstance(param, Int):
        try:
            f = float(text.replace("_", ""))
        except ValueError:
            raise ParameterError(param.name, f"must be an integer, got {text!r}") from None
        return int(f) if f.is_integer() else f
    if isinstance(param, Float):
        unit = param.unit_text()
        if unit and text.endswith(unit):
            text = text[: -len(unit)].strip()
        try:
            return float(text.replace("_", ""))
        except ValueError:
            raise ParameterError(param.name, f"must be a number, got {text!r}") from None
    if isinstance(param, (FloatList, IntList)):
        parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
        out = []
        for p in parts:
            try:
                out.append(float(p))
            except ValueError:
                raise ParameterError(param.name, f"must be a list of numbers, got {p!r}") from None
        return out
    return text


class ParamEditor(QWidget):
    """One parameter row: editor, unit suffix, and an error line shown when the value is refused."""

    committed = Signal(str, object)  # name, value

    def __init__(self, param: Param, value: Any, parent=None):
        super().__init__(parent)
        self.param = param
        self.name = param.name
        self.setObjectName(f"param_{param.name}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        outer.addLayout(row)
        self.editor: QWidget
        tip = param.doc
        if param.describe():
            tip += f"\nvalid: {param.describe()}" + (f" {param.unit_text()}" if param.unit_text() else "")
        if isinstance(param, Bool):
            self.editor = QCheckBox()
            self.editor.toggled.connect(lambda v: self.committed.emit(self.name, bool(v)))
        elif isinstance(param, Choice):
            self.editor = FocusWheelComboBox()
            self.editor.addItems(list(param.choices))
            # sized to the dock, not to the longest choice: the inspector must not be clipped
            self.editor.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.editor.setMinimumContentsLength(6)
            self.editor.currentTextChanged.connect(lambda t: self.committed.emit(self.name, t))
        else:
            self.editor = QLineEdit()
            self.editor.editingFinished.connect(self._line_finished)
            if isinstance(param, (Float, Int, FloatList)):
                self.editor.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.editor.setObjectName(f"edit_{param.name}")
        self.editor.setToolTip(tip)
        self.editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        row.addWidget(self.editor, 1)
        unit = param.unit_text()
        self.unit_label = QLabel(unit)
        self.unit_label.setObjectName("UnitLabel")
        self.unit_label.setMinimumWidth(38)
        self.unit_label.setVisible(bool(unit) or isinstance(param, (Float, Int)))
        if isinstance(param, Text) and param.is_path:
            browse = QToolButton()
            browse.setObjectName(f"browse_{param.name}")
            browse.setText("Browse…")
            browse.setToolTip(f"Choose a file ({getattr(param, 'file_filter', '') or 'any file'})")
            browse.clicked.connect(self._browse)
            row.addWidget(browse)
        elif not isinstance(param, (Bool, Choice)):
            row.addWidget(self.unit_label)
        self.error = QLabel()
        self.error.setObjectName("ErrorLabel")
        self.error.setWordWrap(True)
        self.error.hide()
        outer.addWidget(self.error)
        self.set_value(value)

    def set_value(self, value: Any) -> None:
        blocker = QSignalBlocker(self.editor)
        if isinstance(self.editor, QCheckBox):
            self.editor.setChecked(bool(value))
        elif isinstance(self.editor, QComboBox):
            self.editor.setCurrentText(str(value))
        else:
            self.editor.setText(format_value(self.param, value))
            self.editor.setCursorPosition(0)
        del blocker
        self.set_error("")

    def text(self) -> str:
        return self.editor.text() if isinstance(self.editor, QLineEdit) else ""

    def set_error(self, message: str) -> None:
        invalid = bool(message)
        self.editor.setProperty("invalid", invalid)
        self.editor.style().unpolish(self.editor)
        self.editor.style().polish(self.editor)
        self.error.setText(message)
        self.error.setVisible(invalid)

    @property
    def invalid(self) -> bool:
        return bool(self.editor.property("invalid"))

    def _line_finished(self):
        try:
            value = parse_value(self.param, self.editor.text())
            value = self.param.coerce(value)
        except ParameterError as exc:
            self.set_error(exc.detail)
            return
        self.set_error("")
        self.committed.emit(self.name, value)

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, f"Choose {self.name}", self.text(),
                                              getattr(self.param, "file_filter", "") or "All files (*)")
        if path:
            self.editor.setText(path)
            self._line_finished()


class Inspector(QScrollArea):
    """Shows and edits the selected node; follows undo/redo through the document's signals."""

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.setObjectName("Inspector")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doc = doc
        self.node_id: str | None = None
        self.editors: dict[str, ParamEditor] = {}
        self.rows: dict[str, tuple[QLabel, ParamEditor]] = {}
        self._build_empty()
        doc.graphChanged.connect(self._on_graph_changed)

    def set_document(self, doc: Document):
        try:
            self.doc.graphChanged.disconnect(self._on_graph_changed)
        except (RuntimeError, TypeError):
            pass
        self.doc = doc
        doc.graphChanged.connect(self._on_graph_changed)
        self.show_node(None)

    def _build_empty(self):
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(16, 20, 16, 16)
        hint = QLabel("Select a node to see and edit its parameters.\n\n"
                      "Tab or double-click on the canvas adds a node; drag from a port to wire it.")
        hint.setObjectName("HintLabel")
        hint.setWordWrap(True)
        lay.addWidget(hint)
        lay.addStretch(1)
        self.editors = {}
        self.rows = {}
        self.label_edit = None
        self.setWidget(w)

    def show_node(self, node_id: str | None):
        if node_id is None or node_id not in self.doc.graph:
            self.node_id = None
            self._build_empty()
            return
        self.node_id = node_id
        node = self.doc.graph.node(node_id)
        w = QWidget()
        w.setObjectName("InspectorBody")
        lay = QVBoxLayout(w)
        lay.setContentsMargins(12, 10, 12, 12)
        lay.setSpacing(8)

        head = QFrame()
        head.setObjectName("InspectorHeader")
        head.setStyleSheet(f"#InspectorHeader {{ border-left: 4px solid {node.category.colour}; }}")
        hl = QVBoxLayout(head)
        hl.setContentsMargins(10, 4, 4, 4)
        hl.setSpacing(2)
        title = QLabel(f"{html.escape(node.title)}")
        title.setObjectName("InspectorTitle")
        sub = QLabel(f"{node.category.value} · <code>{node.type_id}</code> · id <code>{node.id}</code>")
        sub.setObjectName("InspectorSubtitle")
        sub.setWordWrap(True)
        hl.addWidget(title)
        hl.addWidget(sub)
        lay.addWidget(head)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        self.label_edit = QLineEdit(node.label)
        self.label_edit.setObjectName("edit_label")
        self.label_edit.editingFinished.connect(
            lambda nid=node_id, edit=self.label_edit: self._label_finished(nid, edit))
        form.addRow("label", self.label_edit)
        self.editors = {}
        self.rows = {}
        advanced = []
        for name, param in node.params.items():
            if param.advanced:
                advanced.append((name, param))
                continue
            self._add_row(form, name, param, node.get(name))
        lay.addLayout(form)
        if advanced:
            toggle = QToolButton()
            toggle.setText("Advanced")
            toggle.setCheckable(True)
            toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            toggle.setArrowType(Qt.ArrowType.RightArrow)
            box = QWidget()
            adv_form = QFormLayout(box)
            adv_form.setContentsMargins(0, 0, 0, 0)
            for name, param in advanced:
                self._add_row(adv_form, name, param, node.get(name))
            box.setVisible(False)

            def flip(on):
                box.setVisible(on)
                toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
            toggle.toggled.connect(flip)
            lay.addWidget(toggle)
            lay.addWidget(box)

        ports = QLabel(self._ports_html(node))
        ports.setObjectName("PortsLabel")
        ports.setWordWrap(True)
        ports.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(ports)

        doc_title = QLabel("Model")
        doc_title.setObjectName("SectionLabel")
        lay.addWidget(doc_title)
        docs = QLabel()
        docs.setObjectName("DocLabel")
        docs.setTextFormat(Qt.TextFormat.RichText)
        docs.setWordWrap(True)
        docs.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        docs.setText(self._doc_html(node.doc()))
        lay.addWidget(docs)
        lay.addStretch(1)
        self.setWidget(w)
        self._update_visibility()

    @staticmethod
    def _doc_html(text: str) -> str:
        paras = text.split("\n\n")
        out = []
        for i, para in enumerate(paras):
            lines = para.splitlines()
            # Equation blocks (lines with '=' or indentation) keep their line breaks in monospace.
            if i > 0 and any(("=" in ln or ln.startswith("  ")) for ln in lines):
                out.append("<p style='margin:4px 0; white-space:pre-wrap; font-family:\"DejaVu Sans Mono\",monospace; "
                           "font-size:9pt'>" + html.escape(para) + "</p>")
            else:
                out.append("<p style='margin:4px 0'>" + html.escape(" ".join(ln.strip() for ln in lines)) + "</p>")
        return "".join(out)

    @staticmethod
    def _ports_html(node) -> str:
        def fmt(p):
            return (f"<span style='color:{p.kind.colour}'>●</span> {html.escape(p.name)} "
                    f"<span style='opacity:0.7'>({p.kind.value})</span>")
        ins = ", ".join(fmt(p) for p in node.inputs()) or "—"
        outs = ", ".join(fmt(p) for p in node.outputs()) or "—"
        return f"<b>in</b> {ins}<br><b>out</b> {outs}"

    def _add_row(self, form: QFormLayout, name: str, param: Param, value: Any):
        editor = ParamEditor(param, value)
        nid = self.node_id
        editor.committed.connect(lambda n, v, nid=nid: self._commit(nid, n, v))
        label = QLabel(param.label)
        label.setToolTip(param.doc)
        form.addRow(label, editor)
        self.editors[name] = editor
        self.rows[name] = (label, editor)

    def _update_visibility(self):
        if self.node_id is None or self.node_id not in self.doc.graph:
            return
        node = self.doc.graph.node(self.node_id)
        for name, (label, editor) in self.rows.items():
            conds = node.params[name].visible_if
            visible = all(node.get(other) in allowed for other, allowed in conds.items())
            label.setVisible(visible)
            editor.setVisible(visible)

    def is_visible(self, name: str) -> bool:
        label, editor = self.rows[name]
        return not editor.isHidden()

    # -- edits --------------------------------------------------------------------------------
    def _commit(self, node_id: str, name: str, value: Any):
        # The node id is bound when the editor is made: an editor that finishes while the
        # inspector switches to another node still edits the node it belongs to.
        if node_id is None or node_id not in self.doc.graph:
            return
        node = self.doc.graph.node(node_id)
        if node.get(name) == value:
            return
        try:
            node.params[name].coerce(value)
        except ParameterError as exc:
            if node_id == self.node_id:
                self.editors[name].set_error(exc.detail)
            return
        self.doc.apply(SetParam(node_id, name, value), f"set {node.label}.{name}")

    def _label_finished(self, node_id: str, edit: QLineEdit):
        if node_id not in self.doc.graph:
            return
        text = edit.text().strip()
        node = self.doc.graph.node(node_id)
        if not text:
            edit.setText(node.label)
            return
        if text != node.label:
            self.doc.apply(SetLabel(node_id, text), f"rename {node.label}")

    def _on_graph_changed(self, op: Operation):
        if self.node_id is None:
            return
        if self.node_id not in self.doc.graph:
            self.show_node(None)
            return
        ops = op.operations if isinstance(op, Compound) else [op]
        touched = any(getattr(o, "node_id", None) == self.node_id for o in ops) or isinstance(op, Compound)
        if not touched:
            return
        node = self.doc.graph.node(self.node_id)
        for name, editor in self.editors.items():
            editor.set_value(node.get(name))
        if self.label_edit is not None and self.label_edit.text() != node.label:
            self.label_edit.setText(node.label)
        self._update_visibility()
