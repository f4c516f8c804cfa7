"""Adding nodes (palette, search), wiring by dragging, refusals, the inspector."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.graph import Edge
from tests.gui.conftest import drag, node_by_label, port_point


def _types(win):
    return sorted(n.type_id for n in win.doc.graph.nodes.values())


def test_add_from_palette_filter_and_activate(window):
    pal = window.palette
    pal.search.setText("poisson")
    assert pal.visible_type_ids() == ["input.poisson"]
    pal.search.setText("")
    assert len(pal.visible_type_ids()) > 20
    item = pal.item_for("neuron.lif")
    pal.tree.setCurrentItem(item)
    pal.tree.scrollToItem(item)
    rect = pal.tree.visualItemRect(item)
    # a real double-click: the first click, then the second one that Qt reports as a double-click
    QTest.mouseClick(pal.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    QTest.mouseDClick(pal.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      rect.center())
    QApplication.processEvents()
    assert _types(window) == ["neuron.lif"]
    # Enter on the current palette item adds another one
    pal.tree.setFocus()
    QTest.keyClick(pal.tree, Qt.Key.Key_Return)
    assert _types(window) == ["neuron.lif", "neuron.lif"]
    # the new node is selected and shown in the inspector
    nid = window.scene.selected_node_ids()[0]
    assert window.inspector.node_id == nid
    assert window.doc.graph.node(nid).label == "LIF 2"


def test_tab_search_adds_at_cursor(window):
    view = window.view
    view.setFocus()
    vp_point = QPoint(300, 200)
    QTest.mouseMove(view.viewport(), vp_point)
    QTest.keyClick(view, Qt.Key.Key_Tab)
    popup = view.popup
    assert popup.isVisible()
    QTest.keyClicks(popup.field, "izhi")
    assert popup.visible_type_ids()[0] == "neuron.izhikevich"  # title matches rank first
    QTest.keyClick(popup.field, Qt.Key.Key_Return)
    assert not popup.isVisible()
    assert _types(window) == ["neuron.izhikevich"]
    node = next(iter(window.doc.graph.nodes.values()))
    expected = view.mapToScene(vp_point)
    assert abs(node.position[0] - expected.x()) < 2 and abs(node.position[1] - expected.y()) < 2


def test_double_click_empty_canvas_opens_search(window):
    view = window.view
    QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(250, 250))
    assert view.popup.isVisible()
    QTest.keyClicks(view.popup.field, "poisson")
    QTest.keyClick(view.popup.field, Qt.Key.Key_Escape)
    assert not view.popup.isVisible()
    assert len(window.doc.graph) == 0


def _two_nodes(win, a_type, b_type):
    a = win.scene.add_node(a_type, (0, 0))
    b = win.scene.add_node(b_type, (320, 0))
    win.view.set_zoom(1.0)
    win.view.centerOn(250, 60)
    QApplication.processEvents()
    return a, b


def test_connect_by_dragging_highlights_compatible_ports(window):
    a, b = _two_nodes(window, "input.poisson", "synapse.projection")
    c = window.scene.add_node("neuron.lif", (320, 260))
    QApplication.processEvents()
    view, scene = window.view, window.scene
    start = port_point(window, a, "spikes", "out")
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(view.viewport(), start + QPoint(40, 10))
    pre = scene.node_items[b].port_item("pre", "in")
    rule = scene.node_items[b].port_item("rule", "in")
    lif_in = scene.node_items[c].port_item("input", "in")
    assert pre.highlight and not pre.dimmed
    assert rule.dimmed and not rule.highlight
    assert lif_in.dimmed  # a population takes synaptic input or current, not raw spikes
    end = port_point(window, b, "pre", "in")
    QTest.mouseMove(view.viewport(), end)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    assert window.doc.graph.edges == [Edge(a, "spikes", b, "pre")]
    assert not pre.highlight and not rule.dimmed  # highlights cleared
    # dragging the other way (input to output) works too
    drag(view, port_point(window, c, "input", "in"), port_point(window, b, "post", "out"))
    assert Edge(b, "post", c, "input") in window.doc.graph.edges
    window.doc.undo_stack.undo()
    assert Edge(b, "post", c, "input") not in window.doc.graph.edges


def test_incompatible_connection_is_refused_with_reason(window, dialogs):
    dialogs.confirm_answer = False  # declines the offer to insert a Projection
    a, b = _two_nodes(window, "input.poisson", "neuron.lif")
    drag(window.view, port_point(window, a, "spikes", "out"), port_point(window, b, "input", "in"))
    assert window.doc.graph.edges == []
    reason = window.scene.last_refusal
    assert "takes synaptic or current" in reason and "gives spikes" in reason
    assert "insert a Projection" in reason
    assert "Cannot connect" in window.statusBar().currentMessage()
    assert reason in window.statusBar().currentMessage()
    assert window.doc.undo_stack.count() == 2  # only the two AddNode steps


def test_drop_wire_on_empty_space_offers_compatible_nodes(window):
    a = window.scene.add_node("input.poisson", (0, 0))
    window.view.set_zoom(1.0)
    window.view.centerOn(300, 60)
    QApplication.processEvents()
    before = window.doc.undo_stack.count()
    empty = window.view.mapFromScene(520, 120)
    drag(window.view, port_point(window, a, "spikes", "out"), empty)
    popup = window.view.popup
    assert popup.isVisible()
    offered = set(popup.visible_type_ids())
    assert "synapse.projection" in offered and "monitor.spikes" in offered
    assert "neuron.lif" not in offered and "plasticity.stdp" not in offered
    QTest.keyClicks(popup.field, "spike monitor")
    QTest.keyClick(popup.field, Qt.Key.Key_Return)
    g = window.doc.graph
    mon = next(nid for nid, n in g.nodes.items() if n.type_id == "monitor.spikes")
    assert g.edges == [Edge(a, "spikes", mon, "source")]
    assert window.doc.undo_stack.count() == before + 1  # node + wire are one undo step
    window.doc.undo_stack.undo()
    assert mon not in g and g.edges == []


def test_inspector_edits_go_through_undo(cuba_window):
    win = cuba_window
    nid = node_by_label(win, "Excitatory")
    win.scene.select_nodes([nid])
    insp = win.inspector
    assert insp.node_id == nid
    editor = insp.editors["tau_m"]
    assert editor.unit_label.text() == "ms"
    edit = editor.editor
    edit.setFocus()
    edit.selectAll()
    QTest.keyClicks(edit, "12.5")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert win.doc.graph.node(nid).tau_m == 12.5
    assert not editor.invalid
    assert "*" in win.windowTitle()
    # out of bounds: marked invalid with the descriptor's message, graph unchanged
    edit.selectAll()
    QTest.keyClicks(edit, "-3")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert win.doc.graph.node(nid).tau_m == 12.5
    assert editor.invalid
    assert "must be >= 0.01 ms" in editor.error.text() and editor.error.isVisibleTo(insp)
    # not a number
    edit.selectAll()
    QTest.keyClicks(edit, "fast")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    assert editor.invalid and win.doc.graph.node(nid).tau_m == 12.5
    # undo puts the old value back and the editor follows
    win.doc.undo_stack.undo()
    assert win.doc.graph.node(nid).tau_m == 20.0
    assert editor.editor.text() == "20" and not editor.invalid


def test_inspector_visible_if_choice_and_label(cuba_window):
    win = cuba_window
    nid = node_by_label(win, "E→E")
    win.scene.select_nodes([nid])
    insp = win.inspector
    assert insp.is_visible("p") and not insp.is_visible("indegree")
    combo = insp.editors["connectivity"].editor
    combo.setCurrentText("fixed_indegree")
    assert win.doc.graph.node(nid).connectivity == "fixed_indegree"
    assert insp.is_visible("indegree") and not insp.is_visible("p")
    insp.label_edit.setText("Recurrent E")
    insp.label_edit.editingFinished.emit()
    assert win.doc.graph.node(nid).label == "Recurrent E"
    assert win.scene.node_items[nid].label == "Recurrent E"
    win.doc.undo_stack.undo()
    assert win.doc.graph.node(nid).label == "E→E"
    win.doc.undo_stack.undo()
    assert insp.is_visible("p")


def test_inspector_shows_doc_with_equations(cuba_window):
    from PySide6.QtWidgets import QLabel

    win = cuba_window
    win.scene.select_nodes([node_by_label(win, "Inhibitory")])
    texts = [lab.text() for lab in win.inspector.widget().findChildren(QLabel) if lab.objectName() == "DocLabel"]
    assert texts and "tau_m dV/dt" in texts[0]


def test_problems_panel_lists_and_reveals(window):
    win = window
    prj = win.scene.add_node("synapse.projection", (0, 0))
    win.problems.refresh()
    msgs = [p.message for p in win.problems.problems]
    assert any("required input 'pre'" in m for m in msgs)
    item = win.problems.tree.topLevelItem(0)
    win.scene.clearSelection()
    win.problems._clicked(item)
    assert win.scene.selected_node_ids() == [prj]
    assert win.scene.node_items[prj].problem == "error"
    # fixing the problem updates the list live
    src = win.scene.add_node("input.poisson", (-300, 0))
    from engine.graph import Connect
    win.doc.apply(Connect(Edge(src, "spikes", prj, "pre")))
    win.problems.refresh()
    assert not any("required input 'pre'" in p.message for p in win.problems.problems)
