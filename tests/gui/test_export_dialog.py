"""File > Export… and File > Import NIR…: the CLI's formats, options and report in the designer."""

from __future__ import annotations

import os
import shutil

import networkx as nx
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.export_dialog import ExportDialog
from tests.gui.conftest import example_path


def menu_actions(win, title):
    menu = next(a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == title)
    return [a.text().replace("&", "") for a in menu.actions()]


def test_file_menu_offers_export_and_nir_import(window):
    items = menu_actions(window, "File")
    assert "Export…" in items and "Import NIR or Connectome…" in items


def test_export_dialog_writes_graphml_and_shows_the_report(cuba_window, qtbot, tmp_path):
    win = cuba_window
    seen = {}

    def drive():
        dialog = QApplication.activeModalWidget()
        seen["dialog"] = dialog
        assert isinstance(dialog, ExportDialog)
        dialog.set_format("graphml")
        dialog.what_combo.setCurrentIndex(dialog.what_combo.findData("model"))
        dialog.out_edit.setText(str(tmp_path / "cuba.graphml"))
        dialog.export_button.click()
        seen["text"] = dialog.report_view.toPlainText()
        dialog.reject()

    QTimer.singleShot(0, drive)
    win.act_export.trigger()
    assert f"wrote {tmp_path / 'cuba.graphml'}" in seen["text"]
    g = nx.read_graphml(tmp_path / "cuba.graphml")
    assert g.number_of_nodes() == len(win.doc.graph)


def test_export_dialog_options_follow_the_format_and_match_the_cli(qtbot, tmp_path):
    from engine.project import Project

    project = Project.load(example_path("nalsm_digits"))
    dialog = ExportDialog(project)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_format("nir")
    assert dialog.spikes_combo.isVisible() and not dialog.threads_spin.isVisible()
    assert dialog.out_edit.text().endswith("nalsm_digits.nir")
    dialog.spikes_combo.setCurrentIndex(dialog.spikes_combo.findData("step"))
    assert dialog.options() == {"spikes": "step"}
    dialog.out_edit.setText(str(tmp_path / "liquid.nir"))
    dialog.export_button.click()
    text = dialog.report_view.toPlainText()
    # the same report lines the CLI prints
    assert "not carried by NIR" in text and "Liquid STDP: plasticity rule" in text
    assert "Astrocyte: modulator" in text and "refractory period t_ref = 2 ms" in text
    assert (tmp_path / "liquid.nir").exists()
    dialog.set_format("nest")
    assert dialog.threads_spin.isVisible() and dialog.duration_edit.isVisible()
    assert not dialog.spikes_combo.isVisible()
    dialog.set_format("csv")
    assert dialog.results_widget.isVisible() and not dialog.out_edit.text().endswith(".csv")
    # a user mistake is shown in the dialog, not raised
    dialog.results_edit.setText(str(tmp_path / "missing.npz"))
    dialog.out_edit.setText(str(tmp_path / "tables"))
    dialog.export_button.click()
    assert dialog.report_view.toPlainText().startswith("error:") and "results file not found" in \
        dialog.report_view.toPlainText()
    dialog.set_format("nir")
    dialog.out_edit.setText(str(tmp_path / "liquid.nir"))
    dialog.export_button.click()
    dialog.resize(760, 560)
    QApplication.processEvents()
    path = tmp_path / "export_dialog.png"
    assert dialog.grab().save(str(path))
    if os.environ.get("SYNWEAVE_SCREENSHOTS"):  # a file name: keep the picture to look at
        shutil.copy(path, os.environ["SYNWEAVE_SCREENSHOTS"])


def test_import_nir_opens_the_imported_project(window, monkeypatch, tmp_path):
    pytest.importorskip("nir")
    from app import dialogs
    from engine import examples
    from engine.exporters import export

    project = examples.cuba(n=200, p=0.05)
    export(project, "nir", tmp_path / "small.nir")
    monkeypatch.setattr(dialogs, "open_nir_path", lambda parent, directory="": str(tmp_path / "small.nir"))
    monkeypatch.setattr(dialogs, "save_path", lambda parent, suggested="": str(tmp_path / "small.swproj"))
    window.act_import_nir.trigger()
    QApplication.processEvents()
    assert window.doc.path == tmp_path / "small.swproj"
    labels = {n.label for n in window.doc.graph.nodes.values()}
    assert {"Excitatory", "Inhibitory", "E→E", "I→I", "Excitatory output"} <= labels
    assert len(window.scene.node_items) == len(window.doc.graph)
    assert "Imported small.nir" in window.statusBar().currentMessage()
