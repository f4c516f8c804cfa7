"""Surrogate-gradient training from the designer: a worker thread, a live loss curve, and the
undoable step that puts the trained weights into the graph.

The engine side is :mod:`engine.gradient` (no Qt). As runs do (:mod:`app.run_controller`),
training happens in a Python worker thread on a snapshot of the project; each finished epoch is
put on a queue that a ``QTimer`` on the GUI thread drains, so the window stays responsive and the
curves grow epoch by epoch. Stop ends training after the current mini-batch; the weights reached
so far can still be applied.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app import theme as themes
from engine.backends.base import cuda_missing_reason
from engine.errors import SynweaveError
from engine.graph import SetParam


def trainability(project) -> tuple[bool, str]:
    """(True, what is trained) or (False, why Train is disabled): a cheap graph inspection."""
    from engine.gradient import TrainingError, find_chain

    try:
        chain = find_chain(project)
    except TrainingError as exc:
        return False, str(exc)
    device = project.settings.device
    why = None if device == "cpu" else cuda_missing_reason()
    if why is not None:
        return False, f"device {device!r} is not available here ({why}); choose device cpu"
    return True, ("train " + " → ".join(p.label for p in chain.populations) + " with surrogate gradients"
                  + ("" if device == "cpu" else f" on {device}"))


class TrainController(QObject):
    """Train one project at a time in a worker thread."""

    #: an :class:`engine.gradient.EpochStats` after every epoch
    epoch = Signal(object)
    #: the :class:`engine.gradient.TrainingResult` (None after an error)
    finished = Signal(object)
    failed = Signal(str)
    #: "idle", "preparing", "training", "stopping"
    stateChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.queue: queue.Queue = queue.Queue()
        self.timer = QTimer(self)
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.poll)
        self.state = "idle"
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.result = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        return self.state != "idle"

    def start(self, project, epochs: int | None = None) -> bool:
        """Train a snapshot of ``project`` (later edits do not reach the worker)."""
        if self.running:
            return False
        from app.run_controller import import_worker_modules

        import_worker_modules("torch")  # first imports off the GUI thread can deadlock with Qt
        import engine.gradient  # noqa: F401

        self._stop.clear()
        self.queue = queue.Queue()
        self.result, self.error = None, None
        self._set_state("preparing")
        self.thread = threading.Thread(target=self._worker, args=(project.snapshot(), epochs),
                                       name="synweave-train", daemon=True)
        self.thread.start()
        self.timer.start()
        return True

    def stop(self) -> None:
        if self.running:
            self._stop.set()
            self._set_state("stopping")

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the worker ends (tests, closing the window); then deliver what is left."""
        if self.thread is not None:
            self.thread.join(timeout)
        self.poll()
        return self.thread is None or not self.thread.is_alive()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _worker(self, project, epochs) -> None:
        result = None
        try:
            from engine.gradient import SurrogateGradientTrainer

            trainer = SurrogateGradientTrainer(project, epochs=epochs)
            self.queue.put(("training", trainer))
            result = trainer.train(progress=lambda stats: self.queue.put(("epoch", stats)),
                                   should_stop=self._stop.is_set)
        except SynweaveError as exc:
            self.queue.put(("error", str(exc)))
        except MemoryError:
            self.queue.put(("error", "out of memory while training; lower the batch size"))
        except Exception as exc:  # a bug must still end training cleanly and be reported
            self.queue.put(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            self.queue.put(("done", result))

    def poll(self) -> None:
        while True:
            try:
                kind, payload = self.queue.get_nowait()
            except queue.Empty:
                return
            if kind == "training" and self.state == "preparing":
                self._set_state("training")
            elif kind == "epoch":
                self.epoch.emit(payload)
            elif kind == "error":
                self.error = payload
            elif kind == "done":
                self.timer.stop()
                self.result = payload
                self._set_state("idle")
                if self.error:
                    self.failed.emit(self.error)
                self.finished.emit(payload)
                return


class TrainingPanel(QWidget):
    """Loss and accuracy per epoch (live), Stop, and Apply trained weights."""

    applyRequested = Signal()
    stopRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("TrainingPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        head = QHBoxLayout()
        self.status = QLabel("Not trained yet")
        self.status.setObjectName("TrainingStatus")
        self.status.setWordWrap(True)
        head.addWidget(self.status, 1)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("TrainingStop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stopRequested)
        self.apply_button = QPushButton("Apply trained weights")
        self.apply_button.setObjectName("TrainingApply")
        self.apply_button.setEnabled(False)
        self.apply_button.setToolTip("write the trained weights next to the project file (an untitled project is "
                                     "saved first) and make the trained projections read them (undoable)")
        self.apply_button.clicked.connect(self.applyRequested)
        head.addWidget(self.stop_button)
        head.addWidget(self.apply_button)
        lay.addLayout(head)
        self.glw = pg.GraphicsLayoutWidget()
        lay.addWidget(self.glw, 1)
        self.loss_plot = self.glw.addPlot(row=0, col=0, title="loss")
        self.acc_plot = self.glw.addPlot(row=0, col=1, title="accuracy (%)")
        for plot in (self.loss_plot, self.acc_plot):
            plot.setLabel("bottom", "epoch")
            plot.showGrid(x=True, y=True, alpha=0.2)
        self.acc_plot.setYRange(0, 100)
        self.acc_plot.addLegend(offset=(-10, 10))
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#f72585", width=2), symbol="o", symbolSize=5,
                                              symbolBrush="#f72585")
        self.train_curve = self.acc_plot.plot([], [], pen=pg.mkPen("#4cc9f0", width=2), name="train")
        self.val_curve = self.acc_plot.plot([], [], pen=pg.mkPen("#b5e48c", width=2), name="validation")
        self.history: list = []
        self.apply_theme(themes.current_theme())

    def apply_theme(self, theme: str) -> None:
        col = themes.colours(theme)
        self.glw.setBackground(col.plot_background)
        for plot in (self.loss_plot, self.acc_plot):
            for name in ("left", "bottom"):
                plot.getAxis(name).setPen(pg.mkPen(col.plot_foreground))
                plot.getAxis(name).setTextPen(pg.mkPen(col.plot_foreground))

    def clear(self) -> None:
        self.history = []
        for curve in (self.loss_curve, self.train_curve, self.val_curve):
            curve.setData([], [])

    def add_epoch(self, stats) -> None:
        self.history.append(stats)
        epochs = np.array([s.epoch for s in self.history], float)
        self.loss_curve.setData(epochs, np.array([s.loss for s in self.history]))
        self.train_curve.setData(epochs, 100 * np.array([s.train_accuracy for s in self.history]))
        val = np.array([s.validation_accuracy for s in self.history])
        if np.all(np.isfinite(val)):
            self.val_curve.setData(epochs, 100 * val)
        self.status.setText(f"epoch {stats.epoch}: loss {stats.loss:.4f}, train {100 * stats.train_accuracy:.1f} %, "
                            f"validation {100 * stats.validation_accuracy:.1f} % ({stats.seconds:.1f} s)")


def apply_trained_weights(doc, result) -> list[str]:
    """Write the trained connection files next to the project file and set the trained projections
    to read them, as one undo step. Returns the files written; raises SynweaveError when the project
    has not been saved (the files need a folder) or a projection is gone."""
    from engine.gradient import TrainingError, write_trained_weights

    path = doc.project.path
    if path is None:
        raise TrainingError("save the project first: the trained weights are written next to its file")
    missing = [p.label for p in result.projections if p.node_id not in doc.graph]
    if missing:
        raise TrainingError(f"projection {missing[0]!r} was removed after training; train again")
    edits = write_trained_weights(result, path.parent, path.stem)
    doc.undo_stack.beginMacro("apply trained weights")
    try:
        for node_id, name, value in edits:
            doc.apply(SetParam(node_id, name, value))
    finally:
        doc.undo_stack.endMacro()
    return [value for _, name, value in edits if name == "file"]
