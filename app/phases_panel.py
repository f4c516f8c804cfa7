"""The Phases panel: one progress bar per training phase (samples done, samples/s, time left).

Filled from the :class:`engine.runner.Progress` reports of a training protocol
(:mod:`engine.training`); the rows are the project's phases in chain order, and a row is added for
each phase a baseline run reports under its own name ("LSM: Features").
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QVBoxLayout, QWidget


class PhasesPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        self.grid = QGridLayout()
        self.grid.setColumnStretch(1, 1)
        outer.addLayout(self.grid)
        outer.addStretch(1)
        self.rows: dict[str, tuple[QLabel, QProgressBar, QLabel]] = {}

    def reset(self, names: list[str]) -> None:
        """One idle row per phase, in the order they will run."""
        for label, bar, info in self.rows.values():
            for widget in (label, bar, info):
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows = {}
        for name in names:
            self._row(name)

    def _row(self, name: str):
        if name not in self.rows:
            label, bar, info = QLabel(name), QProgressBar(), QLabel("waiting")
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setFormat("")
            r = len(self.rows)
            self.grid.addWidget(label, r, 0)
            self.grid.addWidget(bar, r, 1)
            self.grid.addWidget(info, r, 2)
            self.rows[name] = (label, bar, info)
        return self.rows[name]

    def update_progress(self, progress) -> None:
        """Show a training protocol's report in its phase's row."""
        if progress.phase_index < 0:
            return
        _label, bar, info = self._row(progress.phase_name)
        n = max(progress.n_samples, 1)
        bar.setValue(int(1000 * progress.sample / n))
        bar.setFormat(f"{progress.sample} / {progress.n_samples} samples")
        text = f"{progress.samples_per_s:.0f} samples/s" if progress.samples_per_s else ""
        if progress.sample >= progress.n_samples:
            text = (text + " · done") if text else "done"
        elif progress.eta_s is not None:
            text += f" · {progress.eta_s:.0f} s left" if progress.eta_s >= 1 else " · <1 s left"
        info.setText(text)

    def texts(self) -> dict[str, tuple[str, str]]:
        """Row name -> (bar text, info text), for tests."""
        return {name: (bar.format(), info.text()) for name, (_label, bar, info) in self.rows.items()}
