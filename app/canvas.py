"""The node canvas: a QGraphicsScene mirroring the model graph, and the view users work in.

The scene never edits the graph directly: every gesture becomes an ``engine.graph`` operation
applied through :meth:`app.document.Document.apply` (one undo step). The scene subscribes to the
graph (through the document's ``graphChanged`` signal) and updates its items from the operations,
so undo, redo, scripts and other views all show up the same way.
"""

from __future__ import annotations

import json
import math
from typing import Iterable

from PySide6.QtCore import QEvent, QLineF, QMimeData, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QCursor, QFont, QFontMetricsF, QKeySequence,
                           QPainter, QPainterPath, QPainterPathStroker, QPen, QPolygonF, QTransform)
from PySide6.QtWidgets import (QApplication, QGraphicsItem, QGraphicsPathItem, QGraphicsScene,
                               QGraphicsView, QInputDialog, QMenu, QStyleOptionGraphicsItem,
                               QToolTip)

import nodes as catalogue
from app import theme as themes
from app.document import Document
from app.layout import layered_positions
from app.search import AddNodePopup
from engine.errors import ProjectFileError, SynweaveError
# node geometry: one definition, shared with the headless SVG export (engine/ may not import Qt)
from engine.exporters.svg import (CORNER, GROUP_PAD, GROUP_TITLE_H, NODE_MAX_WIDTH, NODE_MIN_WIDTH, PORT_R, ROW_H,
                                  SUMMARY_LINE_H, TITLE_H)
from engine.graph import (AddNode, Comment, Compound, Connect, Disconnect, Edge, Group, MoveNodes,
                          Operation, RemoveComment, RemoveGroup, RemoveNode, SetComment, SetGroup,
                          SetLabel, SetParam)
from engine.graph import needs_projection
from nodes.base import Port, PortKind

MIME_FRAGMENT = "application/x-synweave-fragment"
MIME_NODE_TYPE = "application/x-synweave-node-type"


#: below this zoom, nodes are drawn as coloured blocks without text (level of detail)
LOD_BLOCKS = 0.25
#: below this zoom, port names and summaries are left out
LOD_TEXT = 0.45

_FONT_TITLE = None
_FONT_BODY = None
_FONT_SMALL = None


def _fonts():
    global _FONT_TITLE, _FONT_BODY, _FONT_SMALL
    if _FONT_TITLE is None:
        base = QApplication.font()
        _FONT_TITLE = QFont(base)
        _FONT_TITLE.setPointSizeF(max(8.0, base.pointSizeF() * 1.0))
        _FONT_TITLE.setBold(True)
        _FONT_BODY = QFont(base)
        _FONT_BODY.setPointSizeF(max(7.0, base.pointSizeF() * 0.9))
        _FONT_SMALL = QFont(base)
        _FONT_SMALL.setPointSizeF(max(6.5, base.pointSizeF() * 0.82))
    return _FONT_TITLE, _FONT_BODY, _FONT_SMALL


def port_shape(kind: PortKind, r: float) -> QPainterPath:
    """Port glyphs: circle = spikes, square = analog (synaptic, current, state, labels),
    diamond = modulatory (rules, modulation), triangle = weights."""
    path = QPainterPath()
    if kind == PortKind.SPIKES:
        path.addEllipse(QPointF(0, 0), r, r)
    elif kind in (PortKind.RULE, PortKind.MODULATION):
        k = r * 1.25
        path.addPolygon(QPolygonF([QPointF(0, -k), QPointF(k, 0), QPointF(0, k), QPointF(-k, 0)]))
        path.closeSubpath()
    elif kind == PortKind.WEIGHTS:
        k = r * 1.15
        path.addPolygon(QPolygonF([QPointF(-k, -k), QPointF(k, 0), QPointF(-k, k)]))
        path.closeSubpath()
    else:
        path.addRoundedRect(QRectF(-r * 0.95, -r * 0.95, 1.9 * r, 1.9 * r), 2, 2)
    return path


# ----------------------------------------------------------------------------------------------
# Items
# ----------------------------------------------------------------------------------------------
class PortItem(QGraphicsItem):
    """A typed port on a node; press and drag from it to draw a wire."""

    HIT = 11.0

    def __init__(self, node_item: "NodeItem", port: Port):
        super().__init__(node_item)
        self.node_item = node_item
        self.port = port
        self.highlight = False   # compatible target during a drag
        self.dimmed = False      # incompatible during a drag
        self.connected = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(2)
        kinds = " or ".join(k.value for k in port.kinds)
        extra = []
        if port.direction == "in":
            extra.append("many wires" if port.multiple else "one wire")
            if port.required:
                extra.append("required")
        self.setToolTip(f"<b>{port.name}</b> ({'input' if port.direction == 'in' else 'output'}, "
                        f"{kinds}{', ' + ', '.join(extra) if extra else ''})<br>{port.doc}")

    @property
    def node_id(self) -> str:
        return self.node_item.node_id

    @property
    def is_output(self) -> bool:
        return self.port.direction == "out"

    def boundingRect(self) -> QRectF:
        return QRectF(-self.HIT, -self.HIT, 2 * self.HIT, 2 * self.HIT)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def anchor(self) -> QPointF:
        return self.scenePos()

    def paint(self, painter: QPainter, option, widget=None):
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        col = themes.colours(self.scene().theme if self.scene() else "dark")
        colour = QColor(self.port.kind.colour)
        if self.dimmed:
            colour.setAlpha(60)
        r = PORT_R * (1.25 if self.highlight else 1.0)
        if lod < LOD_BLOCKS:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawRect(QRectF(-r, -r, 2 * r, 2 * r))
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.highlight:
            painter.setPen(QPen(QColor(col.highlight), 2.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(QPointF(0, 0), r + 4, r + 4)
        painter.setPen(QPen(QColor(col.node_border), 1.5))
        painter.setBrush(colour if (self.connected or self.is_output) else QColor(col.node_body))
        if not (self.connected or self.is_output):
            painter.setPen(QPen(colour, 2.0))
        painter.drawPath(port_shape(self.port.kind, r))

    def hoverEnterEvent(self, event):
        self.setScale(1.15)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event):
        self.setScale(1.0)
        super().hoverLeaveEvent(event)

    def mousePressEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton and self.scene() is not None:
            self.scene().begin_wire_drag(self, event.scenePos())
            event.accept()
        else:
            event.ignore()

    def mouseMoveEvent(self, event):
        if self.scene() is not None:
            self.scene().update_wire_drag(event.scenePos())

    def mouseReleaseEvent(self, event):
        if self.scene() is not None:
            self.scene().end_wire_drag(event.scenePos(), event.screenPos())


def node_geometry(node) -> tuple[float, float, float]:
    """Width, height and the summary's top edge of a node as drawn on the canvas."""
    text = node.summary_text()
    summary = [t for t in text.split(" · ") if t] if text else []
    title_font, body_font, small_font = _fonts()
    fm_t, fm_b, fm_s = QFontMetricsF(title_font), QFontMetricsF(body_font), QFontMetricsF(small_font)
    ins, outs = node.inputs(), node.outputs()
    widest_in = max([fm_b.horizontalAdvance(p.name) for p in ins] + [0])
    widest_out = max([fm_b.horizontalAdvance(p.name) for p in outs] + [0])
    type_w = fm_s.horizontalAdvance(node.title) if node.title != node.label else 0
    want = max(NODE_MIN_WIDTH, fm_t.horizontalAdvance(node.label) + type_w + 48,
               widest_in + widest_out + 56, max([fm_s.horizontalAdvance(t) for t in summary] + [0]) + 28)
    width = min(NODE_MAX_WIDTH, math.ceil(want / 4) * 4)
    rows = max(len(ins), len(outs), 1)
    summary_top = TITLE_H + rows * ROW_H + 8
    height = summary_top + (len(summary) * SUMMARY_LINE_H + 10 if summary else 0)
    return float(width), float(height), float(summary_top)


class NodeItem(QGraphicsItem):
    """One node: title bar in the category colour, typed ports, a parameter summary."""

    def __init__(self, scene: "GraphScene", node_id: str):
        super().__init__()
        self.node_id = node_id
        self._scene_ref = scene
        self.width = NODE_MIN_WIDTH
        self.height = 80.0
        self.label = ""
        self.type_title = ""
        self.colour = QColor("#777")
        self.summary: list[str] = []
        self.in_ports: list[PortItem] = []
        self.out_ports: list[PortItem] = []
        self.problem: str | None = None   # None, "warning" or "error"
        self.problem_text = ""
        self.wires: set["WireItem"] = set()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsScenePositionChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        node = scene.doc.graph.node(node_id)
        for port in node.inputs():
            self.in_ports.append(PortItem(self, port))
        for port in node.outputs():
            self.out_ports.append(PortItem(self, port))
        self.refresh()
        self.setPos(*node.position)

    def ports(self) -> list[PortItem]:
        return self.in_ports + self.out_ports

    def port_item(self, name: str, direction: str) -> PortItem | None:
        for p in (self.in_ports if direction == "in" else self.out_ports):
            if p.port.name == name:
                return p
        return None

    def refresh(self) -> None:
        node = self._scene_ref.doc.graph.node(self.node_id)
        self.label = node.label
        self.type_title = node.title
        self.colour = QColor(node.category.colour)
        text = node.summary_text()
        self.summary = [s for s in text.split(" · ") if s] if text else []
        self.prepareGeometryChange()
        self.width, self.height, self.summary_top = node_geometry(node)
        for i, p in enumerate(self.in_ports):
            p.setPos(0, TITLE_H + 4 + ROW_H * (i + 0.5))
        for i, p in enumerate(self.out_ports):
            p.setPos(self.width, TITLE_H + 4 + ROW_H * (i + 0.5))
        self.setToolTip(f"<b>{self.label}</b> — {node.title} ({node.category.value})<br>{node.doc_line()}")
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-3, -3, self.width + 6, self.height + 6)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, self.width, self.height), CORNER, CORNER)
        return path

    def paint(self, painter: QPainter, option, widget=None):
        scene = self.scene()
        col = themes.colours(scene.theme if scene else "dark")
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        rect = QRectF(0, 0, self.width, self.height)
        selected = self.isSelected()
        if lod < LOD_BLOCKS:
            painter.setPen(QPen(QColor(col.node_selected), 6) if selected else Qt.PenStyle.NoPen)
            painter.setBrush(QColor(col.node_body))
            painter.drawRect(rect)
            painter.setBrush(self.colour)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRect(QRectF(0, 0, self.width, TITLE_H * 1.6))
            if self.problem == "error":
                painter.setBrush(QColor(col.refused))
                painter.drawRect(QRectF(self.width - 30, 0, 30, 30))
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        title_font, body_font, small_font = _fonts()
        # shadow and body
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 60))
        painter.drawRoundedRect(rect.translated(0, 2.5), CORNER, CORNER)
        painter.setBrush(QColor(col.node_body))
        painter.setPen(QPen(QColor(col.node_selected), 2.4) if selected
                       else QPen(QColor(col.node_border), 1.0))
        painter.drawRoundedRect(rect, CORNER, CORNER)
        # title bar
        title = QPainterPath()
        title.addRoundedRect(QRectF(0.5, 0.5, self.width - 1, TITLE_H), CORNER - 0.5, CORNER - 0.5)
        square = QPainterPath()
        square.addRect(QRectF(0.5, TITLE_H / 2, self.width - 1, TITLE_H / 2 + 0.5))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawPath(title.united(square))
        painter.setPen(QColor("#ffffff"))
        painter.setFont(title_font)
        right_pad = 10.0
        if self.problem:
            right_pad = 30.0
        fm_s = QFontMetricsF(small_font)
        type_w = fm_s.horizontalAdvance(self.type_title) if self.type_title != self.label else 0.0
        fm_t = QFontMetricsF(title_font)
        label = fm_t.elidedText(self.label, Qt.TextElideMode.ElideRight,
                                self.width - 20 - right_pad - (type_w + 8 if type_w else 0))
        painter.drawText(QRectF(10, 0, self.width - 20, TITLE_H),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
        if type_w:
            painter.setFont(small_font)
            painter.setPen(QColor(255, 255, 255, 175))
            painter.drawText(QRectF(10, 0, self.width - 10 - right_pad, TITLE_H),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self.type_title)
        if self.problem:
            badge = QColor(col.refused if self.problem == "error" else "#f0ad1c")
            c = QPointF(self.width - 15, TITLE_H / 2)
            painter.setPen(QPen(QColor("#ffffff"), 1.4))
            painter.setBrush(badge)
            painter.drawEllipse(c, 7.5, 7.5)
            painter.setFont(small_font)
            painter.drawText(QRectF(c.x() - 7.5, c.y() - 7.5, 15, 15), Qt.AlignmentFlag.AlignCenter, "!")
        if lod < LOD_TEXT:
            return
        # port names
        painter.setFont(body_font)
        painter.setPen(QColor(col.port_label))
        for p in self.in_ports:
            y = p.pos().y()
            painter.drawText(QRectF(PORT_R + 8, y - ROW_H / 2, self.width / 2, ROW_H),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, p.port.name)
        for p in self.out_ports:
            y = p.pos().y()
            painter.drawText(QRectF(self.width / 2 - 8, y - ROW_H / 2, self.width / 2 - PORT_R - 6, ROW_H),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, p.port.name)
        # summary
        if self.summary:
            top = self.summary_top
            painter.setPen(QPen(QColor(col.node_border), 1.0))
            painter.drawLine(QLineF(8, top, self.width - 8, top))
            painter.setFont(small_font)
            painter.setPen(QColor(col.node_subtext))
            for i, line in enumerate(self.summary):
                name, _, value = line.partition(" ")
                r = QRectF(12, top + 5 + i * SUMMARY_LINE_H, self.width - 24, SUMMARY_LINE_H)
                painter.drawText(r, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
                painter.setPen(QColor(col.node_text))
                painter.drawText(r, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                                 fm_s.elidedText(value, Qt.TextElideMode.ElideLeft, self.width * 0.62))
                painter.setPen(QColor(col.node_subtext))

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemScenePositionHasChanged:
            for wire in list(self.wires):
                wire.update_path()
            scene = self.scene()
            if scene is not None:
                scene.node_geometry_changed(self)
        return super().itemChange(change, value)

    def mouseDoubleClickEvent(self, event):
        scene = self.scene()
        if scene is not None:
            scene.nodeActivated.emit(self.node_id)
        event.accept()


class WireItem(QGraphicsPathItem):
    """A cubic wire from an output port to an input port, coloured by what it carries."""

    def __init__(self, edge: Edge, src: PortItem, dst: PortItem):
        super().__init__()
        self.edge = edge
        self.src = src
        self.dst = dst
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(0)
        self.hover = False
        self.colour = QColor(src.port.kind.colour)
        src.node_item.wires.add(self)
        dst.node_item.wires.add(self)
        self.setToolTip(f"{edge.src}.{edge.src_port} → {edge.dst}.{edge.dst_port} "
                        f"({src.port.kind.value})")
        self.update_path()

    def detach(self):
        self.src.node_item.wires.discard(self)
        self.dst.node_item.wires.discard(self)

    def update_path(self):
        self.setPath(wire_path(self.src.anchor(), self.dst.anchor()))

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        return stroker.createStroke(self.path())

    def paint(self, painter: QPainter, option, widget=None):
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        col = themes.colours(self.scene().theme if self.scene() else "dark")
        if lod >= LOD_BLOCKS:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = 2.4 if not (self.isSelected() or self.hover) else 3.6
        if self.isSelected():
            painter.setPen(QPen(QColor(col.node_selected), width + 3))
            painter.drawPath(self.path())
        painter.setPen(QPen(self.colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.drawPath(self.path())

    def hoverEnterEvent(self, event):
        self.hover = True
        self.update()

    def hoverLeaveEvent(self, event):
        self.hover = False
        self.update()


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    dx = max(50.0, abs(b.x() - a.x()) * 0.5)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class GroupItem(QGraphicsItem):
    """A titled frame around member nodes; drag its title bar to move them all."""

    def __init__(self, scene: "GraphScene", group: Group):
        super().__init__()
        self._scene_ref = scene
        self.group = group
        self.rect = QRectF()
        self._drag_origin: QPointF | None = None
        self._start_positions: dict[str, QPointF] = {}
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-10)
        self.setAcceptHoverEvents(True)
        self.update_geometry()

    def set_group(self, group: Group):
        self.group = group
        self.update_geometry()
        self.update()

    def update_geometry(self):
        items = [self._scene_ref.node_items[m] for m in self.group.members if m in self._scene_ref.node_items]
        if items:
            r = items[0].sceneBoundingRect()
            for it in items[1:]:
                r = r.united(it.sceneBoundingRect())
            r = r.adjusted(-GROUP_PAD, -GROUP_PAD - GROUP_TITLE_H, GROUP_PAD, GROUP_PAD)
        else:
            r = QRectF(0, 0, 0, 0)
        if r != self.rect:
            self.prepareGeometryChange()
            self.rect = r

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-3, -3, 3, 3)

    def title_rect(self) -> QRectF:
        return QRectF(self.rect.left(), self.rect.top(), self.rect.width(), GROUP_TITLE_H)

    def shape(self) -> QPainterPath:
        # Only the title bar and the border take clicks, so nodes inside stay easy to pick.
        path = QPainterPath()
        path.addRect(self.title_rect())
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        border = QPainterPath()
        border.addRect(self.rect)
        return path.united(stroker.createStroke(border))

    def paint(self, painter: QPainter, option, widget=None):
        if self.rect.isEmpty():
            return
        col = themes.colours(self.scene().theme if self.scene() else "dark")
        base = QColor(self.group.colour)
        fill = QColor(base)
        fill.setAlpha(col.group_fill_alpha)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(fill)
        border = QColor(col.node_selected) if self.isSelected() else QColor(base.lighter(150))
        border.setAlpha(255 if self.isSelected() else 140)
        painter.setPen(QPen(border, 2.0 if self.isSelected() else 1.2, Qt.PenStyle.SolidLine))
        painter.drawRoundedRect(self.rect, 10, 10)
        head = QColor(base)
        head.setAlpha(min(255, col.group_fill_alpha * 3))
        path = QPainterPath()
        path.addRoundedRect(self.title_rect(), 10, 10)
        sq = QPainterPath()
        sq.addRect(QRectF(self.rect.left(), self.rect.top() + GROUP_TITLE_H / 2, self.rect.width(), GROUP_TITLE_H / 2))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(head)
        painter.drawPath(path.united(sq))
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        font = QFont(_fonts()[0])
        if lod < LOD_TEXT:
            font.setPointSizeF(font.pointSizeF() / max(lod, 0.15) * 0.5)
        painter.setFont(font)
        painter.setPen(QColor(col.node_text))
        painter.drawText(self.title_rect().adjusted(12, 0, -12, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.group.title)

    def mousePressEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton and self.title_rect().contains(event.pos()):
            scene = self._scene_ref
            if not (event.modifiers() & Qt.KeyboardModifier.ControlModifier):
                scene.clearSelection()
            self.setSelected(True)
            self._drag_origin = event.scenePos()
            self._start_positions = {m: scene.node_items[m].pos() for m in self.group.members
                                     if m in scene.node_items}
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._drag_origin is not None:
            delta = event.scenePos() - self._drag_origin
            for m, p in self._start_positions.items():
                item = self._scene_ref.node_items.get(m)
                if item is not None:
                    item.setPos(p + delta)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        self._drag_origin = None
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event):
        if self.title_rect().contains(event.pos()):
            self._scene_ref.rename_group(self.group.id)
            event.accept()


class CommentItem(QGraphicsItem):
    """A free text note on the canvas."""

    WIDTH = 260.0

    def __init__(self, scene: "GraphScene", comment: Comment):
        super().__init__()
        self._scene_ref = scene
        self.comment = comment
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-5)
        self.set_comment(comment)

    def set_comment(self, comment: Comment):
        self.comment = comment
        fm = QFontMetricsF(_fonts()[1])
        r = fm.boundingRect(QRectF(0, 0, self.WIDTH - 24, 10_000),
                            int(Qt.TextFlag.TextWordWrap), comment.text or " ")
        self.prepareGeometryChange()
        self.height = r.height() + 22
        self.setPos(*comment.position)
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, self.WIDTH + 4, self.height + 4)

    def paint(self, painter: QPainter, option, widget=None):
        col = themes.colours(self.scene().theme if self.scene() else "dark")
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor(col.comment_fill))
        painter.setPen(QPen(QColor(col.node_selected), 2) if self.isSelected()
                       else QPen(QColor(col.comment_fill).darker(130), 1))
        painter.drawRoundedRect(QRectF(0, 0, self.WIDTH, self.height), 4, 4)
        painter.setFont(_fonts()[1])
        painter.setPen(QColor(col.comment_text))
        painter.drawText(QRectF(12, 11, self.WIDTH - 24, self.height - 22),
                         int(Qt.TextFlag.TextWordWrap), self.comment.text)

    def mouseDoubleClickEvent(self, event):
        self._scene_ref.edit_comment(self.comment.id)
        event.accept()


# ----------------------------------------------------------------------------------------------
# Scene
# ----------------------------------------------------------------------------------------------
class GraphScene(QGraphicsScene):
    """Items mirroring the document's graph, and the gestures that turn into operations."""

    status = Signal(str)
    nodeActivated = Signal(str)

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.theme = themes.current_theme()
        self.node_items: dict[str, NodeItem] = {}
        self.wire_items: dict[Edge, WireItem] = {}
        self.group_items: dict[str, GroupItem] = {}
        self.comment_items: dict[str, CommentItem] = {}
        self.setSceneRect(-100_000, -100_000, 200_000, 200_000)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self._drag_port: PortItem | None = None
        self._drag_wire: QGraphicsPathItem | None = None
        self._drag_targets: set[tuple[str, str]] = set()
        self.last_refusal = ""
        self._groups_dirty = False
        self._group_timer = QTimer(self)
        self._group_timer.setSingleShot(True)
        self._group_timer.setInterval(0)
        self._group_timer.timeout.connect(self._update_groups)
        self.doc.graphChanged.connect(self.on_operation)
        self.rebuild()

    # -- views ------------------------------------------------------------------------------
    def view(self) -> "GraphView | None":
        views = self.views()
        return views[0] if views else None

    def set_theme(self, theme: str):
        self.theme = theme
        for item in self.items():
            item.update()
        for item in self.node_items.values():
            item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.update()

    def drawBackground(self, painter: QPainter, rect: QRectF):
        col = themes.colours(self.theme)
        painter.fillRect(rect, QColor(col.background))
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        step = 24.0
        if lod < 0.5:
            step = 120.0
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = [], []
        x = left
        while x < rect.right():
            (major if round(x / step) % 5 == 0 else minor).append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            (major if round(y / step) % 5 == 0 else minor).append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        pen = QPen(QColor(col.grid_minor), 0)
        painter.setPen(pen)
        if lod >= 0.25:
            painter.drawLines(minor)
        painter.setPen(QPen(QColor(col.grid_major), 0))
        painter.drawLines(major)

    # -- mirroring the graph ----------------------------------------------------------------------
    def rebuild(self):
        for wire in list(self.wire_items.values()):
            wire.detach()
        self.clear()
        self.node_items.clear()
        self.wire_items.clear()
        self.group_items.clear()
        self.comment_items.clear()
        g = self.doc.graph
        for nid in g.nodes:
            self._add_node_item(nid)
        for edge in g.edges:
            self._add_wire(edge)
        for group in g.groups.values():
            self._add_group(group)
        for comment in g.comments.values():
            self._add_comment(comment)

    def _add_node_item(self, nid: str) -> NodeItem:
        item = NodeItem(self, nid)
        self.node_items[nid] = item
        self.addItem(item)
        return item

    def _remove_node_item(self, nid: str):
        item = self.node_items.pop(nid, None)
        if item is None:
            return
        for wire in list(item.wires):
            self._remove_wire(wire.edge)
        self.removeItem(item)

    def _add_wire(self, edge: Edge):
        a, b = self.node_items.get(edge.src), self.node_items.get(edge.dst)
        if a is None or b is None or edge in self.wire_items:
            return
        src, dst = a.port_item(edge.src_port, "out"), b.port_item(edge.dst_port, "in")
        if src is None or dst is None:
            return
        wire = WireItem(edge, src, dst)
        self.wire_items[edge] = wire
        self.addItem(wire)
        self._update_port_state(src)
        self._update_port_state(dst)

    def _remove_wire(self, edge: Edge):
        wire = self.wire_items.pop(edge, None)
        if wire is None:
            return
        wire.detach()
        self.removeItem(wire)
        self._update_port_state(wire.src)
        self._update_port_state(wire.dst)

    def _update_port_state(self, port_item: PortItem):
        nid = port_item.node_id
        if nid not in self.doc.graph:
            return
        name = port_item.port.name
        edges = self.doc.graph.edges_of(nid)
        if port_item.is_output:
            port_item.connected = any(e.src == nid and e.src_port == name for e in edges)
        else:
            port_item.connected = any(e.dst == nid and e.dst_port == name for e in edges)
        port_item.update()
        port_item.node_item.update()

    def _add_group(self, group: Group):
        item = GroupItem(self, group)
        self.group_items[group.id] = item
        self.addItem(item)

    def _add_comment(self, comment: Comment):
        item = CommentItem(self, comment)
        self.comment_items[comment.id] = item
        self.addItem(item)

    def on_operation(self, op: Operation):
        """Update the items for one applied operation (also on undo and redo)."""
        g = self.doc.graph
        if isinstance(op, Compound):
            for sub in op.operations:
                self.on_operation(sub)
            return
        if isinstance(op, AddNode):
            if op.node.id not in self.node_items and op.node.id in g:
                self._add_node_item(op.node.id)
        elif isinstance(op, RemoveNode):
            self._remove_node_item(op.node_id)
            self._sync_groups()
        elif isinstance(op, Connect):
            self._add_wire(op.edge)
        elif isinstance(op, Disconnect):
            self._remove_wire(op.edge)
        elif isinstance(op, (SetParam, SetLabel)):
            item = self.node_items.get(op.node_id)
            if item is not None:
                item.refresh()
                for wire in item.wires:
                    wire.update_path()
                self._schedule_groups()
        elif isinstance(op, MoveNodes):
            for nid in op.positions:
                item = self.node_items.get(nid)
                if item is not None and nid in g:
                    item.setPos(*g.node(nid).position)
        elif isinstance(op, (SetGroup, RemoveGroup)):
            self._sync_groups()
        elif isinstance(op, (SetComment, RemoveComment)):
            self._sync_comments()
        else:
            self.rebuild()

    def _sync_groups(self):
        groups = self.doc.graph.groups
        for gid in list(self.group_items):
            if gid not in groups:
                self.removeItem(self.group_items.pop(gid))
        for gid, group in groups.items():
            if gid in self.group_items:
                self.group_items[gid].set_group(group)
            else:
                self._add_group(group)

    def _sync_comments(self):
        comments = self.doc.graph.comments
        for cid in list(self.comment_items):
            if cid not in comments:
                self.removeItem(self.comment_items.pop(cid))
        for cid, comment in comments.items():
            if cid in self.comment_items:
                self.comment_items[cid].set_comment(comment)
            else:
                self._add_comment(comment)

    def node_geometry_changed(self, item: NodeItem):
        self._schedule_groups()

    def _schedule_groups(self):
        if self.group_items and not self._group_timer.isActive():
            self._group_timer.start()

    def _update_groups(self):
        for g in self.group_items.values():
            g.update_geometry()

    def set_problems(self, by_node: dict[str, tuple[str, str]]):
        """Mark nodes with validation problems: ``{node_id: (severity, text)}``."""
        for nid, item in self.node_items.items():
            level, text = by_node.get(nid, (None, ""))
            if level != item.problem or text != item.problem_text:
                item.problem, item.problem_text = level, text
                item.update()

    # -- selection helpers ------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        return [it.node_id for it in self.selectedItems() if isinstance(it, NodeItem)]

    def select_nodes(self, ids: Iterable[str]):
        ids = set(ids)
        self.clearSelection()
        for nid in ids:
            item = self.node_items.get(nid)
            if item is not None:
                item.setSelected(True)

    # -- moving ----------------------------------------------------------------------------------
    def mouseReleaseEvent(self, event):
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self.commit_moves()

    def commit_moves(self) -> bool:
        """One MoveNodes for every node dragged away from its model position (on release)."""
        g = self.doc.graph
        moved = {}
        for nid, item in self.node_items.items():
            p = item.pos()
            x, y = round(p.x(), 1), round(p.y(), 1)
            if nid in g and (abs(g.node(nid).position[0] - x) > 0.05 or abs(g.node(nid).position[1] - y) > 0.05):
                moved[nid] = (x, y)
        ops: list[Operation] = []
        if moved:
            ops.append(MoveNodes(moved))
        for cid, item in self.comment_items.items():
            c = g.comments.get(cid)
            p = item.pos()
            if c is not None and (abs(c.position[0] - p.x()) > 0.05 or abs(c.position[1] - p.y()) > 0.05):
                ops.append(SetComment(Comment(c.id, c.text, (round(p.x(), 1), round(p.y(), 1)))))
        if not ops:
            return False
        op = ops[0] if len(ops) == 1 else Compound(ops, "move")
        n = len(moved)
        return self.doc.apply(op, f"move {n} node{'s' if n != 1 else ''}" if n else "move comment")

    # -- wires by dragging ------------------------------------------------------------------------
    def begin_wire_drag(self, port_item: PortItem, pos: QPointF):
        self._drag_port = port_item
        g = self.doc.graph
        if port_item.is_output:
            targets = set(g.compatible_ports(port_item.node_id, port_item.port.name))
        else:
            targets = set()
            for nid, node in g.nodes.items():
                for p in node.outputs():
                    if g.can_connect(nid, p.name, port_item.node_id, port_item.port.name)[0]:
                        targets.add((nid, p.name))
        self._drag_targets = targets
        want = "in" if port_item.is_output else "out"
        for nid, item in self.node_items.items():
            for p in (item.in_ports if want == "in" else item.out_ports):
                ok = (nid, p.port.name) in targets
                p.highlight, p.dimmed = ok, not ok
                p.update()
        wire = QGraphicsPathItem()
        colour = QColor(port_item.port.kind.colour)
        wire.setPen(QPen(colour, 2.4, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap))
        wire.setZValue(5)
        self.addItem(wire)
        self._drag_wire = wire
        n = len(targets)
        self.status.emit(f"Connecting {port_item.node_id}.{port_item.port.name}: {n} compatible "
                         f"port{'s' if n != 1 else ''} highlighted; drop on empty space to add a node")
        self.update_wire_drag(pos)

    def _port_at(self, pos: QPointF, want_output: bool) -> PortItem | None:
        for it in self.items(pos):
            if isinstance(it, PortItem) and it.is_output == want_output and it is not self._drag_port:
                return it
        # snap to a nearby highlighted port
        best, best_d = None, 22.0
        for it in self.items(QRectF(pos.x() - 22, pos.y() - 22, 44, 44)):
            if isinstance(it, PortItem) and it.highlight:
                d = QLineF(it.anchor(), pos).length()
                if d < best_d:
                    best, best_d = it, d
        return best

    def _endpoints(self, target: PortItem) -> tuple[str, str, str, str]:
        a = self._drag_port
        if a.is_output:
            return (a.node_id, a.port.name, target.node_id, target.port.name)
        return (target.node_id, target.port.name, a.node_id, a.port.name)

    def update_wire_drag(self, pos: QPointF):
        if self._drag_port is None or self._drag_wire is None:
            return
        start = self._drag_port.anchor()
        target = self._port_at(pos, want_output=not self._drag_port.is_output)
        end = target.anchor() if target is not None and target.highlight else pos
        if self._drag_port.is_output:
            self._drag_wire.setPath(wire_path(start, end))
        else:
            self._drag_wire.setPath(wire_path(end, start))
        if target is not None and not target.highlight:
            ok, reason = self.doc.graph.can_connect(*self._endpoints(target))
            if not ok:
                self.status.emit(f"Cannot connect: {reason}")

    def _end_drag_visuals(self):
        for item in self.node_items.values():
            for p in item.ports():
                if p.highlight or p.dimmed:
                    p.highlight = p.dimmed = False
                    p.update()
        if self._drag_wire is not None:
            self.removeItem(self._drag_wire)
        self._drag_wire = None

    def end_wire_drag(self, pos: QPointF, screen_pos=None):
        source = self._drag_port
        if source is None:
            return
        target = self._port_at(pos, want_output=not source.is_output)
        endpoints = self._endpoints(target) if target is not None else None
        self._end_drag_visuals()
        self._drag_port = None
        if target is not None:
            src, sp, dst, dp = endpoints
            ok, reason = self.doc.graph.can_connect(src, sp, dst, dp)
            if ok:
                if self.doc.apply(Connect(Edge(src, sp, dst, dp)), "connect"):
                    self.status.emit(f"Connected {src}.{sp} → {dst}.{dp}")
                return
            if self.offer_projection(src, sp, dst, dp):
                return
            self.refuse(reason, screen_pos)
            return
        # Dropped on nothing: if the pointer is over a node body, refuse with the reason; on
        # empty canvas, offer the node types that could take this wire.
        for it in self.items(pos):
            if isinstance(it, NodeItem):
                if it.node_id == source.node_id:
                    return  # a click on the port, or a drag back onto its own node
                node = self.doc.graph.node(it.node_id)
                inputs = [p for p in node.inputs() if p.accepts_kind(PortKind.SYNAPTIC)]
                if source.is_output and inputs and self.offer_projection(
                        source.node_id, source.port.name, it.node_id, inputs[0].name):
                    return
                self.refuse(self._why_not_node(source, it.node_id), screen_pos)
                return
        self.open_connect_search(source, pos)

    def offer_projection(self, src: str, src_port: str, dst: str, dst_port: str) -> bool:
        """Spikes dropped on a population's input: offer to insert the Projection they need
        (as NEST Desktop creates the synapse); one undo step. True if it was inserted."""
        g = self.doc.graph
        a, b = g.node(src), g.node(dst)
        out, inp = a.port(src_port, "out"), b.port(dst_port, "in")
        if out is None or inp is None or not needs_projection(out, inp):
            return False
        from app import dialogs

        if not dialogs.confirm(self.view(), "Insert a Projection?",
                               f"Spikes of {a.label!r} reach {b.label!r} through synapses. Insert a "
                               "Projection between them (it holds the weights, delays and "
                               "connectivity)?"):
            return False
        (ax, ay), (bx, by) = a.position, b.position
        prj = g.make_node("synapse.projection", position=(round((ax + bx) / 2), round((ay + by) / 2 + 60)))
        ops = [AddNode(prj), Connect(Edge(src, src_port, prj.id, "pre")),
               Connect(Edge(prj.id, "post", dst, dst_port))]
        if not self.doc.apply(Compound(ops, "insert Projection")):
            return False
        self.select_nodes([prj.id])
        self.status.emit(f"Inserted {prj.label} between {a.label} and {b.label} (Ctrl+Z removes it)")
        return True

    def _why_not_node(self, source: PortItem, nid: str) -> str:
        g = self.doc.graph
        node = g.node(nid)
        ports = node.inputs() if source.is_output else node.outputs()
        if not ports:
            return f"{node.label!r} has no {'inputs' if source.is_output else 'outputs'}"
        reasons = []
        for p in ports:
            if source.is_output:
                ok, reason = g.can_connect(source.node_id, source.port.name, nid, p.name)
            else:
                ok, reason = g.can_connect(nid, p.name, source.node_id, source.port.name)
            reasons.append(reason)
        return reasons[0] if reasons else "incompatible"

    def refuse(self, reason: str, screen_pos=None):
        self.last_refusal = reason
        self.status.emit(f"Cannot connect: {reason}")
        view = self.view()
        if view is not None:
            where = screen_pos if screen_pos is not None else QCursor.pos()
            QToolTip.showText(where.toPoint() if hasattr(where, "toPoint") else where,
                              f"Cannot connect: {reason}", view.viewport())

    def open_connect_search(self, source: PortItem, pos: QPointF):
        """Wire dropped on empty canvas: search node types with a compatible port, add, connect."""
        kind = source.port.kind
        if source.is_output:
            candidates = [c for c in catalogue.all_node_types()
                          if any(p.accepts_kind(kind) for p in c.inputs())]
        else:
            candidates = [c for c in catalogue.all_node_types()
                          if any(source.port.accepts_kind(p.kind) for p in c.outputs())]
        src_id, src_port, src_out = source.node_id, source.port.name, source.is_output

        def add(type_id: str):
            self.add_connected_node(type_id, pos, src_id, src_port, src_out)

        view = self.view()
        if view is not None:
            view.open_search(pos, candidates, f"Add node for {src_id}.{src_port} ({kind.value})", add)

    def add_connected_node(self, type_id: str, pos: QPointF, other_id: str, other_port: str,
                           other_is_output: bool) -> str | None:
        g = self.doc.graph
        cls = catalogue.node_type(type_id)
        other = g.node(other_id)
        kind = other.port(other_port, "out" if other_is_output else "in").kind
        if other_is_output:
            ports = [p for p in cls.inputs() if p.accepts_kind(kind)]
            x, y = pos.x(), pos.y() - TITLE_H - ROW_H / 2
        else:
            port = other.port(other_port, "in")
            ports = [p for p in cls.outputs() if port.accepts_kind(p.kind)]
            x, y = pos.x() - NODE_MIN_WIDTH, pos.y() - TITLE_H - ROW_H / 2
        if not ports:
            return None
        node = g.make_node(type_id, position=(round(x), round(y)))
        if other_is_output:
            edge = Edge(other_id, other_port, node.id, ports[0].name)
        else:
            edge = Edge(node.id, ports[0].name, other_id, other_port)
        if self.doc.apply(Compound([AddNode(node), Connect(edge)], f"add {node.label}")):
            self.select_nodes([node.id])
            return node.id
        return None

    # -- editing ------------------------------------------------------------------------------------
    def add_node(self, type_id: str, pos: QPointF | tuple[float, float]) -> str | None:
        x, y = (pos.x(), pos.y()) if isinstance(pos, QPointF) else pos
        node = self.doc.graph.make_node(type_id, position=(round(x), round(y)))
        if self.doc.apply(AddNode(node), f"add {node.label}"):
            self.select_nodes([node.id])
            self.status.emit(f"Added {node.label} ({node.title})")
            return node.id
        return None

    def delete_selection(self) -> bool:
        g = self.doc.graph
        nodes_ = set(self.selected_node_ids())
        ops: list[Operation] = []
        for it in self.selectedItems():
            if isinstance(it, WireItem) and it.edge.src not in nodes_ and it.edge.dst not in nodes_:
                ops.append(Disconnect(it.edge))
        for nid in sorted(nodes_):
            ops.append(RemoveNode(nid))
        groups = {it.group.id for it in self.selectedItems() if isinstance(it, GroupItem)}
        for gid, group in g.groups.items():
            if group.members and set(group.members) <= nodes_:
                groups.add(gid)
        for gid in sorted(groups):
            ops.append(RemoveGroup(gid))
        for it in self.selectedItems():
            if isinstance(it, CommentItem):
                ops.append(RemoveComment(it.comment.id))
        if not ops:
            return False
        n = len(nodes_)
        return self.doc.apply(Compound(ops, f"delete {n} node{'s' if n != 1 else ''}" if n else "delete"))

    def fragment_json(self) -> str | None:
        ids = self.selected_node_ids()
        if not ids:
            return None
        return json.dumps(self.doc.graph.fragment(ids))

    def copy_selection(self) -> bool:
        text = self.fragment_json()
        if text is None:
            return False
        mime = QMimeData()
        mime.setData(MIME_FRAGMENT, text.encode("utf-8"))
        mime.setText(text)
        QApplication.clipboard().setMimeData(mime)
        n = len(self.selected_node_ids())
        self.status.emit(f"Copied {n} node{'s' if n != 1 else ''}")
        return True

    def cut_selection(self) -> bool:
        return self.copy_selection() and self.delete_selection()

    def paste(self, at: QPointF | None = None) -> list[str]:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return []
        if mime.hasFormat(MIME_FRAGMENT):
            text = bytes(mime.data(MIME_FRAGMENT)).decode("utf-8", "replace")
        else:
            text = mime.text()
        if not text.strip():
            return []
        try:
            fragment = json.loads(text)
        except ValueError:
            self.status.emit("The clipboard does not hold Synweave nodes")
            return []
        return self.paste_fragment(fragment, at)

    def paste_fragment(self, fragment: dict, at: QPointF | None = None, offset=None) -> list[str]:
        if offset is None:
            xs = [n.get("position", [0, 0])[0] for n in fragment.get("nodes", []) if isinstance(n, dict)]
            ys = [n.get("position", [0, 0])[1] for n in fragment.get("nodes", []) if isinstance(n, dict)]
            try:
                left, top = float(min(xs)), float(min(ys))
            except (ValueError, TypeError):
                left, top = 0.0, 0.0
            if at is None:
                view = self.view()
                at = view.paste_position() if view is not None else QPointF(left + 40, top + 40)
            offset = (round(at.x() - left), round(at.y() - top))
        try:
            op, ids = self.doc.graph.paste_operation(fragment, offset)
        except (ProjectFileError, SynweaveError) as exc:
            self.status.emit(f"Cannot paste: {exc}")
            return []
        if not ids:
            return []
        if self.doc.apply(op, op.label):
            self.select_nodes(ids)
            self.status.emit(f"Pasted {len(ids)} node{'s' if len(ids) != 1 else ''}")
            return ids
        return []

    def duplicate_selection(self) -> list[str]:
        ids = self.selected_node_ids()
        if not ids:
            return []
        return self.paste_fragment(self.doc.graph.fragment(ids), offset=(40.0, 40.0))

    def group_selection(self, title: str = "") -> str | None:
        ids = self.selected_node_ids()
        if not ids:
            self.status.emit("Select nodes to frame (Ctrl+G)")
            return None
        g = self.doc.graph
        gid = next(f"group_{i}" for i in range(1, 10_000) if f"group_{i}" not in g.groups)
        title = title or f"Group {gid.split('_')[1]}"
        if self.doc.apply(SetGroup(Group(gid, title, tuple(sorted(ids)))), "frame selection"):
            return gid
        return None

    def ungroup_selection(self) -> bool:
        ops = [RemoveGroup(it.group.id) for it in self.selectedItems() if isinstance(it, GroupItem)]
        if not ops:
            return False
        return self.doc.apply(Compound(ops, "ungroup") if len(ops) > 1 else ops[0], "ungroup")

    def rename_group(self, gid: str, title: str | None = None) -> bool:
        group = self.doc.graph.groups.get(gid)
        if group is None:
            return False
        if title is None:
            view = self.view()
            title, ok = QInputDialog.getText(view, "Rename frame", "Title:", text=group.title)
            if not ok:
                return False
        title = title.strip()
        if not title or title == group.title:
            return False
        return self.doc.apply(SetGroup(Group(group.id, title, group.members, group.colour)), "rename frame")

    def add_comment(self, pos: QPointF, text: str = "") -> str | None:
        g = self.doc.graph
        cid = next(f"comment_{i}" for i in range(1, 100_000) if f"comment_{i}" not in g.comments)
        if self.doc.apply(SetComment(Comment(cid, text or "Note", (round(pos.x()), round(pos.y())))),
                          "add comment"):
            return cid
        return None

    def edit_comment(self, cid: str, text: str | None = None) -> bool:
        c = self.doc.graph.comments.get(cid)
        if c is None:
            return False
        if text is None:
            text, ok = QInputDialog.getMultiLineText(self.view(), "Edit comment", "Text:", c.text)
            if not ok:
                return False
        if text == c.text:
            return False
        return self.doc.apply(SetComment(Comment(c.id, text, c.position)), "edit comment")

    def auto_layout(self) -> bool:
        g = self.doc.graph
        ids = self.selected_node_ids()
        heights = {nid: item.height for nid, item in self.node_items.items()}
        positions = layered_positions(g, heights)
        if len(ids) > 1:
            positions = {k: v for k, v in positions.items() if k in ids}
        changed = {k: v for k, v in positions.items() if tuple(g.node(k).position) != tuple(map(float, v))}
        if not changed:
            return False
        return self.doc.apply(MoveNodes(changed), "auto-layout")

    def items_rect(self, selected_only: bool = False) -> QRectF:
        items: list[QGraphicsItem] = list(self.node_items.values()) + list(self.comment_items.values())
        items += list(self.group_items.values())
        if selected_only:
            items = [it for it in self.selectedItems() if not isinstance(it, WireItem)] or []
        rect = QRectF()
        for it in items:
            rect = rect.united(it.sceneBoundingRect()) if not rect.isNull() else it.sceneBoundingRect()
        return rect


# ----------------------------------------------------------------------------------------------
# View
# ----------------------------------------------------------------------------------------------
class GraphView(QGraphicsView):
    """Zoom to the cursor, pan with the middle button or space+drag, node-editor keys."""

    zoomChanged = Signal(float)
    runRequested = Signal()

    MIN_ZOOM = 0.08
    MAX_ZOOM = 3.0

    def __init__(self, scene: GraphScene, parent=None):
        super().__init__(scene, parent)
        self.setObjectName("Canvas")
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self._pan_origin = None
        self._space = False
        self._last_mouse = None  # pointer position over the viewport, for Tab / paste at cursor
        self.popup = AddNodePopup(self)
        self.popup.hide()

    @property
    def graph_scene(self) -> GraphScene:
        return self.scene()

    # -- zoom and centre ----------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float):
        z = max(self.MIN_ZOOM, min(self.MAX_ZOOM, z))
        t = QTransform()
        t.scale(z, z)
        self.setTransform(t)
        self.resetCachedContent()
        self.zoomChanged.emit(z)

    def center(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    def view_state(self) -> dict:
        c = self.center()
        return {"zoom": round(self.zoom(), 4), "center": [round(c.x(), 1), round(c.y(), 1)]}

    def restore_view_state(self, state: dict) -> bool:
        try:
            z = float(state["zoom"])
            cx, cy = (float(v) for v in state["center"])
        except (KeyError, TypeError, ValueError, OverflowError):
            return False
        if not (math.isfinite(z) and math.isfinite(cx) and math.isfinite(cy)):
            return False
        self.set_zoom(z)
        self.centerOn(cx, cy)
        return True

    def wheelEvent(self, event):
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0:
            return
        factor = 1.0015 ** delta
        z = self.zoom()
        new = max(self.MIN_ZOOM, min(self.MAX_ZOOM, z * factor))
        if abs(new - z) < 1e-6:
            return
        self.zoom_at(new, event.position().toPoint())
        event.accept()

    def zoom_at(self, z: float, vp_point):
        """Zoom to ``z`` keeping the scene point under ``vp_point`` (viewport pixels) in place."""
        anchor = self.mapToScene(vp_point)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.set_zoom(z)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        moved = self.mapFromScene(anchor) - vp_point
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    def fit_rect(self, rect: QRectF, max_zoom: float = 1.25):
        if rect.isNull() or rect.isEmpty():
            return
        rect = rect.adjusted(-40, -40, 40, 40)
        vp = self.viewport().rect()
        z = min(vp.width() / rect.width(), vp.height() / rect.height(), max_zoom)
        self.set_zoom(z)
        self.centerOn(rect.center())

    def fit_all(self):
        self.fit_rect(self.graph_scene.items_rect())

    def fit_selection(self):
        rect = self.graph_scene.items_rect(selected_only=True)
        if rect.isNull():
            self.fit_all()
        else:
            self.fit_rect(rect, max_zoom=1.5)

    def centre_on_node(self, nid: str):
        item = self.graph_scene.node_items.get(nid)
        if item is not None:
            if self.zoom() < 0.6:
                self.set_zoom(0.9)
            self.centerOn(item.sceneBoundingRect().center())

    def cursor_scene_pos(self) -> QPointF | None:
        """Scene position of the mouse pointer if it is over the canvas (else None)."""
        if self._last_mouse is not None:
            return self.mapToScene(self._last_mouse)
        p = self.viewport().mapFromGlobal(QCursor.pos())
        if self.viewport().rect().contains(p):
            return self.mapToScene(p)
        return None

    def paste_position(self) -> QPointF:
        return self.cursor_scene_pos() or self.center()

    # -- search to add ------------------------------------------------------------------------
    def open_search(self, scene_pos: QPointF | None = None, types=None, heading: str = "Add node",
                    callback=None):
        if scene_pos is None:
            scene_pos = self.cursor_scene_pos() or self.center()
        if callback is None:
            def callback(type_id, _pos=scene_pos):
                self.graph_scene.add_node(type_id, _pos)
        vp = self.mapFromScene(scene_pos)
        vp.setX(max(0, min(vp.x(), self.viewport().width() - self.popup.width())))
        vp.setY(max(0, min(vp.y(), self.viewport().height() - self.popup.height())))
        self.popup.open(self.viewport().mapToGlobal(vp), types, heading, callback)

    # -- events -----------------------------------------------------------------------------------
    def event(self, event):
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Tab \
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.open_search()
            return True
        return super().event(event)

    def keyPressEvent(self, event):
        key, mods = event.key(), event.modifiers()
        plain = not (mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                             | Qt.KeyboardModifier.MetaModifier))
        scene = self.graph_scene
        if plain and key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            self.setInteractive(False)
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        # Window shortcuts normally handle these; when the key reaches the canvas directly
        # (an inactive window, an embedding), the canvas does the same thing.
        if event.matches(QKeySequence.StandardKey.Copy):
            scene.copy_selection()
        elif event.matches(QKeySequence.StandardKey.Cut):
            scene.cut_selection()
        elif event.matches(QKeySequence.StandardKey.Paste):
            scene.paste()
        elif event.matches(QKeySequence.StandardKey.Undo):
            scene.doc.undo_stack.undo()
        elif event.matches(QKeySequence.StandardKey.Redo):
            scene.doc.undo_stack.redo()
        elif mods == Qt.KeyboardModifier.ControlModifier and key == Qt.Key.Key_D:
            scene.duplicate_selection()
        elif mods == Qt.KeyboardModifier.ControlModifier and key == Qt.Key.Key_G:
            scene.group_selection()
        elif plain and key == Qt.Key.Key_H:
            self.fit_all()
        elif plain and key == Qt.Key.Key_F:
            self.fit_selection()
        elif plain and key == Qt.Key.Key_L:
            scene.auto_layout()
        elif plain and key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            scene.delete_selection()
        elif plain and key == Qt.Key.Key_Escape:
            scene.clearSelection()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat() and self._space:
            self._space = False
            self.setInteractive(True)
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event):
        self._last_mouse = event.position().toPoint()
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_origin = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def leaveEvent(self, event):
        self._last_mouse = None
        super().leaveEvent(event)

    def mouseMoveEvent(self, event):
        self._last_mouse = event.position().toPoint()
        if self._pan_origin is not None:
            delta = event.position() - self._pan_origin
            self._pan_origin = event.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if event.button() == Qt.MouseButton.MiddleButton and self._pan_origin is not None:
            self._pan_origin = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event):
        item = self.itemAt(event.position().toPoint())
        if item is None and event.button() == Qt.MouseButton.LeftButton:
            self.open_search(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event):
        scene = self.graph_scene
        pos = self.mapToScene(event.pos())
        item = self.itemAt(event.pos())
        menu = QMenu(self)
        menu.addAction("Add node…  (Tab)", lambda: self.open_search(pos))
        menu.addAction("Add comment", lambda: scene.add_comment(pos))
        if isinstance(item, (NodeItem, PortItem)):
            node_item = item if isinstance(item, NodeItem) else item.node_item
            if not node_item.isSelected():
                scene.select_nodes([node_item.node_id])
        if scene.selectedItems():
            menu.addSeparator()
            menu.addAction("Copy", scene.copy_selection)
            menu.addAction("Duplicate", scene.duplicate_selection)
            menu.addAction("Frame selection", scene.group_selection)
            menu.addAction("Delete", scene.delete_selection)
        menu.addSeparator()
        menu.addAction("Paste", lambda: scene.paste(pos))
        menu.addAction("Auto-layout  (L)", scene.auto_layout)
        menu.addAction("Fit all  (H)", self.fit_all)
        menu.exec(event.globalPos())

    def dragEnterEvent(self, event):
        if event.mimeData().hasFormat(MIME_NODE_TYPE):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event):
        if event.mimeData().hasFormat(MIME_NODE_TYPE):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event):
        if event.mimeData().hasFormat(MIME_NODE_TYPE):
            type_id = bytes(event.mimeData().data(MIME_NODE_TYPE)).decode()
            self.graph_scene.add_node(type_id, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
            self.setFocus()
        else:
            super().dropEvent(event)
