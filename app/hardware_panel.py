"""Hardware panel: pick a NeuroCoreX port, connect, deploy, and watch the board beside its twin.

The board work (mapping, upload, runs) happens in a worker thread through
:func:`hardware.deploy.deploy`, the same code path as ``python main.py deploy``; results come back
through a queue that a GUI timer drains. The board's spikes and the twin's prediction are drawn in the same raster panels
the simulation uses. A timer watches the port so an unplugged cable shows at once.
"""

from __future__ import annotations

import os
import queue
import threading

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from app.plots import RasterPanel
from app.run_controller import LiveChunk, import_worker_modules
from app.widgets import FocusWheelComboBox, FocusWheelSpinBox


class DeployWorker:
    """Runs one deploy in a plain Python thread and reports through a queue.

    The GUI polls the queue with a timer (as the simulation run controller does) instead of
    receiving cross-thread Qt signals: no Qt object is touched off the GUI thread.
    """

    def __init__(self, project, driver, samples: int | None):
        self.project, self.driver, self.samples = project, driver, samples
        self.events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="synweave-deploy", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self._stop.set()

    def run(self):
        from engine.errors import SynweaveError
        from hardware.deploy import deploy

        put = self.events.put
        try:
            report = deploy(self.project, self.driver, max_trials=self.samples,
                            progress=lambda d, t, s: put(("progress", (d, t, s))),
                            log=lambda text: put(("log", text)),
                            on_trial=lambda i, trial, mapping, board, twin, sim:
                                put(("trial", (i, trial, mapping, board, twin))),
                            should_stop=self._stop.is_set, simulate=False)
        except SynweaveError as exc:
            put(("failed", str(exc)))
            report = None
        except Exception as exc:  # a bug must not take the GUI down with it
            put(("failed", f"internal error: {exc!r}"))
            report = None
        put(("finished", report))


class HardwarePanel(QWidget):
    """Dock content: port picker, link status, deploy controls, board and twin rasters."""

    status_changed = Signal(str)

    def __init__(self, project_getter, parent=None):
        super().__init__(parent)
        self._project_getter = project_getter
        self.driver = None
        self.virtual_board = None
        self.worker: DeployWorker | None = None
        self.report = None
        self._errors = 0

        self.ports = FocusWheelComboBox()
        self.ports.setMinimumContentsLength(24)
        self.ports.setToolTip("Serial ports; NeuroCoreX boards (FTDI 0403:6010) are marked")
        self.refresh_button = QPushButton("Refresh")
        self.virtual_button = QPushButton("Virtual board")
        self.virtual_button.setToolTip("Start a virtual NeuroCoreX board (digital twin on a pseudo-terminal)")
        self.connect_button = QPushButton("Connect")
        self.deploy_button = QPushButton("Deploy")
        self.stop_button = QPushButton("Stop")
        self.samples = FocusWheelSpinBox()
        self.samples.setRange(1, 100_000)
        self.samples.setValue(20)
        self.samples.setPrefix("samples ")
        self.link = QLabel("● disconnected")
        self.counters = QLabel("")
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.board_raster = RasterPanel("board", "Board spikes", live=True)
        self.twin_raster = RasterPanel("twin", "Twin prediction", live=True)

        row1 = QHBoxLayout()
        for w in (self.ports, self.refresh_button, self.virtual_button, self.connect_button):
            row1.addWidget(w)
        row1.addStretch(1)
        row1.addWidget(self.link)
        row2 = QHBoxLayout()
        for w in (self.samples, self.deploy_button, self.stop_button):
            row2.addWidget(w)
        row2.addWidget(self.progress, 1)
        row2.addWidget(self.counters)
        rasters = QSplitter()
        rasters.addWidget(self.board_raster)
        rasters.addWidget(self.twin_raster)
        bottom = QSplitter()
        bottom.addWidget(rasters)
        bottom.addWidget(self.log_view)
        bottom.setStretchFactor(0, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.summary)
        layout.addWidget(bottom, 1)

        self.refresh_button.clicked.connect(self.refresh_ports)
        self.virtual_button.clicked.connect(self.start_virtual_board)
        self.connect_button.clicked.connect(self.toggle_connection)
        self.deploy_button.clicked.connect(self.start_deploy)
        self.stop_button.clicked.connect(self.stop_deploy)
        self.poller = QTimer(self)
        self.poller.setInterval(30)
        self.poller.timeout.connect(self._poll_worker)
        self.watchdog = QTimer(self)
        self.watchdog.setInterval(500)
        self.watchdog.timeout.connect(self.check_link)
        self.watchdog.start()
        self.refresh_ports()
        self._update_buttons()

    # -- ports and link -----------------------------------------------------------------------
    def refresh_ports(self):
        from hardware.neurocorex.discovery import list_ports

        current = self.ports.currentData()
        self.ports.clear()
        for info in list_ports():
            mark = "★ " if info.likely_board else ""
            self.ports.addItem(f"{mark}{info.device} — {info.description}", info.device)
        if self.virtual_board is not None:
            self.ports.addItem(f"{self.virtual_board.device_path} — virtual NeuroCoreX",
                               self.virtual_board.device_path)
        if current is not None:
            index = self.ports.findData(current)
            if index >= 0:
                self.ports.setCurrentIndex(index)
        if self.ports.count() == 0:
            self.ports.addItem("no serial ports found", None)

    def start_virtual_board(self):
        from hardware.neurocorex.virtual_board import VirtualBoard

        if self.virtual_board is None:
            self.virtual_board = VirtualBoard(fast=True)
            self.virtual_board.start()
            self._log(f"virtual board on {self.virtual_board.device_path}")
        self.refresh_ports()
        self.ports.setCurrentIndex(self.ports.findData(self.virtual_board.device_path))

    def toggle_connection(self):
        if self.driver is not None:
            self.disconnect_board()
            return
        from engine.errors import SynweaveError
        from hardware.neurocorex.driver import NeuroCoreXDriver

        port = self.ports.currentData()
        if not port:
            self._error("choose a serial port first (Refresh, or start a virtual board)")
            return
        try:
            self.driver = NeuroCoreXDriver(port, timeout=5.0)
        except SynweaveError as exc:
            self._error(str(exc))
            return
        self.port_path = port
        self._set_link(f"● connected to {port}", ok=True)
        self._update_buttons()

    def disconnect_board(self, reason: str = ""):
        if self.worker is not None:
            self.worker.stop()
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception:
                pass
        self.driver = None
        self._set_link(f"● disconnected{': ' + reason if reason else ''}", ok=False)
        self._update_buttons()

    def check_link(self):
        """Notice an unplugged cable or a closed virtual board without waiting for a run."""
        if self.driver is None:
            return
        gone = not self.driver.is_open or (self.port_path.startswith("/dev/")
                                           and not os.path.exists(self.port_path))
        if gone and self.worker is None:
            self._error("the board disconnected (cable unplugged or board reset)")
            self.disconnect_board("link lost")

    # -- deploy ---------------------------------------------------------------------------------
    def start_deploy(self):
        if self.worker is not None:
            return
        project = self._project_getter()
        self.report = None
        self.summary.setText("")
        self.progress.setFormat("mapping…")
        self._trial_ms = None
        import_worker_modules()
        import hardware.deploy  # noqa: F401  (see import_worker_modules)

        self.worker = DeployWorker(project, self.driver, self.samples.value())
        self._update_buttons(running=True)
        self.worker.start()
        self.poller.start()

    def _poll_worker(self):
        """Dispatch what the deploy thread reported since the last tick (GUI thread only)."""
        if self.worker is None:
            self.poller.stop()
            return
        handlers = {"progress": lambda a: self._on_progress(*a), "trial": self._on_trial,
                    "log": self._log, "failed": self._error, "finished": self._on_finished}
        while self.worker is not None:
            try:
                kind, payload = self.worker.events.get_nowait()
            except queue.Empty:
                break
            handlers[kind](payload)

    def stop_deploy(self):
        if self.worker is not None:
            self.worker.stop()

    def _on_progress(self, done, total, stage):
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage}: {done}/{total}")

    def _on_trial(self, payload):
        i, trial, mapping, board, twin = payload
        dt = mapping.dt
        period = trial.n_model_steps * dt
        output = list(mapping.neuron_slots)[-1]
        n_out = len(mapping.neuron_slots[output])
        if i == 0:
            total = self.samples.value() * period
            for panel in (self.board_raster, self.twin_raster):
                panel.reset(n_out, total, dt)
                panel.running = True
        for panel, spikes, key in ((self.board_raster, board, "board"), (self.twin_raster, twin, "twin")):
            steps, idx = spikes[output]
            chunk = LiveChunk(i * period, (i + 1) * period, dt,
                              spikes={key: (i * period + np.asarray(steps, float) * dt,
                                            np.asarray(idx, np.int32))})
            panel.add(chunk)
            panel.maybe_redraw()
        self._show_counters()

    def _on_finished(self, report):
        self.report = report
        for panel in (self.board_raster, self.twin_raster):
            panel.finish()
        if report is not None:
            self.summary.setText("\n".join(report.summary()))
            self.progress.setFormat("finished")
        else:
            self.progress.setFormat("failed")
        self.worker.thread.join(5.0)
        self.worker = None
        self.poller.stop()
        if self.driver is not None and not self.driver.is_open:
            self.disconnect_board("link lost")
        self._update_buttons()

    # -- helpers ----------------------------------------------------------------------------------
    def _set_link(self, text: str, ok: bool):
        self.link.setText(text)
        self.link.setStyleSheet(f"color: {'#43a047' if ok else '#e53935'};")
        self.status_changed.emit(text)

    def _update_buttons(self, running: bool = False):
        connected = self.driver is not None
        self.connect_button.setText("Disconnect" if connected else "Connect")
        self.connect_button.setEnabled(not running)
        self.deploy_button.setEnabled(not running)
        self.deploy_button.setToolTip("Deploy to the connected board" if connected
                                      else "Not connected: runs the digital twin only")
        self.stop_button.setEnabled(running)
        self._show_counters()

    def _show_counters(self):
        parts = []
        if self.driver is not None:
            parts.append(f"sent {self.driver.bytes_sent:,} B · received {self.driver.bytes_received:,} B")
        parts.append(f"errors {self._errors}")
        self.counters.setText(" · ".join(parts))

    def _log(self, text: str):
        self.log_view.appendPlainText(text)

    def _error(self, text: str):
        self._errors += 1
        self.log_view.appendPlainText(f"error: {text}")
        self._show_counters()
        self.status_changed.emit(text)

    def shutdown(self):
        """Stop the worker, close the port and the virtual board (window closing)."""
        self.watchdog.stop()
        self.poller.stop()
        if self.worker is not None:
            self.worker.stop()
            self.worker.thread.join(10.0)
            self.worker = None
        self.disconnect_board()
        if self.virtual_board is not None:
            self.virtual_board.stop()
            self.virtual_board = None
