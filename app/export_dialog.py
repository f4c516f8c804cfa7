"""File > Export…: the formats and options of ``python main.py export``, and the same report.

The dialog runs :func:`engine.exporters.export` (the CLI's code path) and shows the report lines
the CLI prints: what was written, what the format cannot carry (per node), what was converted.
Exports that simulate first (CSV / npz without a results file) run in the GUI thread behind a
busy cursor; they are short by design (the project's duration, or the one given here).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from engine.errors import SynweaveError
from engine.exporters import FORMATS, default_output, export


def choose_output(parent, fmt: str, suggested: str) -> str | None:
    """Ask for an output file (a folder for CSV); tests replace this function."""
    if fmt == "csv":
        path = QFileDialog.getExistingDirectory(parent, "Folder for the CSV tables", suggested)
    else:
        info = FORMATS[fmt]
        path, _ = QFileDialog.getSaveFileName(parent, f"Export {info.title}", suggested,
                                              f"{info.title} (*{info.suffix});;All files (*)")
    return path or None


def choose_results(parent, directory: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Results file of a run", directory,
                                          "Results (*.npz);;All files (*)")
    return path or None


class ExportDialog(QDialog):
    """Format, output path, the format's options, an Export button and the report."""

    def __init__(self, project, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.report = None
        self.setWindowTitle("Export")
        self.setMinimumWidth(640)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.format_combo = QComboBox()
        for name, info in FORMATS.items():
            self.format_combo.addItem(f"{info.title} — {info.description}", name)
        form.addRow("Format", self.format_combo)
        row = QHBoxLayout()
        self.out_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        form.addRow("Write to", row)
        # per-format options, shown only for their format (the CLI's flags)
        self.what_combo = QComboBox()
        self.what_combo.addItem("model graph (nodes and wires)", "model")
        self.what_combo.addItem("connectome (every neuron and synapse)", "connectome")
        self.results_edit = QLineEdit()
        self.results_edit.setPlaceholderText("empty: simulate the project now")
        results_row = QHBoxLayout()
        results_row.addWidget(self.results_edit, 1)
        pick = QPushButton("Browse…")
        pick.clicked.connect(self._browse_results)
        results_row.addWidget(pick)
        self.results_widget = QWidget()
        self.results_widget.setLayout(results_row)
        results_row.setContentsMargins(0, 0, 0, 0)
        self.duration_edit = QLineEdit()
        self.duration_edit.setPlaceholderText(f"{project.settings.duration:g} ms (the project's)")
        self.spikes_combo = QComboBox()
        self.spikes_combo.addItem("Dirac impulses (NIR's continuous time)", "dirac")
        self.spikes_combo.addItem("one-step pulses (snnTorch's discrete import)", "step")
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, 1024)
        self.option_rows = {
            "what": ("GraphML holds", self.what_combo, ("graphml",)),
            "results": ("Results file", self.results_widget, ("csv", "npz")),
            "duration": ("Duration", self.duration_edit, ("csv", "npz", "nest")),
            "spikes": ("Spikes as", self.spikes_combo, ("nir",)),
            "threads": ("Threads", self.threads_spin, ("nest",)),
        }
        self.option_labels = {}
        for key, (label, widget, _) in self.option_rows.items():
            self.option_labels[key] = QLabel(label)
            form.addRow(self.option_labels[key], widget)
        layout.addLayout(form)
        self.report_view = QPlainTextEdit()
        self.report_view.setReadOnly(True)
        self.report_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.report_view.setPlaceholderText("The report appears here: what was written, what the format "
                                            "cannot carry (per node) and what was converted.")
        self.report_view.setMinimumHeight(220)
        layout.addWidget(self.report_view, 1)
        buttons = QDialogButtonBox()
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.run_export)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.what_combo.currentIndexChanged.connect(self._suggest_output)
        self._format_changed()

    # -- state -------------------------------------------------------------------------------
    @property
    def fmt(self) -> str:
        return self.format_combo.currentData()

    def set_format(self, fmt: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(fmt))

    def _format_changed(self) -> None:
        for key, (_, widget, formats) in self.option_rows.items():
            visible = self.fmt in formats
            widget.setVisible(visible)
            self.option_labels[key].setVisible(visible)
        self._suggest_output()

    def _suggest_output(self) -> None:
        path = self.project.path or Path.home() / f"{self.project.name}.swproj"
        what = self.what_combo.currentData() if self.fmt == "graphml" else ""
        self.out_edit.setText(str(default_output(Path(path), self.fmt, what)))

    def _browse_output(self) -> None:
        path = choose_output(self, self.fmt, self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def _browse_results(self) -> None:
        directory = str(self.project.path.parent) if self.project.path else str(Path.home())
        path = choose_results(self, directory)
        if path:
            self.results_edit.setText(path)

    def options(self) -> dict:
        """The exporter's options, as the CLI passes them."""
        from engine.cli_run import parse_duration

        fmt, opts = self.fmt, {}
        duration = self.duration_edit.text().strip()
        if fmt == "graphml":
            opts["what"] = self.what_combo.currentData()
        elif fmt in ("csv", "npz"):
            opts["results"] = self.results_edit.text().strip() or None
            opts["duration_ms"] = parse_duration(duration) if duration else None
        elif fmt == "nir":
            opts["spikes"] = self.spikes_combo.currentData()
        elif fmt == "nest":
            opts["duration_ms"] = parse_duration(duration) if duration else None
            opts["threads"] = self.threads_spin.value()
        return opts

    # -- export ------------------------------------------------------------------------------
    def run_export(self) -> None:
        out = self.out_edit.text().strip()
        if not out:
            self.show_text("error: choose where to write the export", error=True)
            return
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.report = export(self.project, self.fmt, Path(out), **self.options())
        except SynweaveError as exc:
            self.report = None
            self.show_text(f"error: {exc}", error=True)
            return
        except OSError as exc:
            self.report = None
            self.show_text(f"error: cannot write {out}: {exc.strerror or exc}", error=True)
            return
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.show_text(f"{self.project.name}: {FORMATS[self.fmt].title} export\n" + self.report.text())

    def show_text(self, text: str, error: bool = False) -> None:
        self.report_view.setProperty("error", error)
        self.report_view.setStyleSheet("color: #e57373;" if error else "")
        self.report_view.setPlainText(text)
