"""Hardware panel: pick a NeuroCoreX port, connect, deploy, and watch the board beside its twin.

Board work (the connection probe, mapping, upload, runs) happens in plain Python threads; each
reports through a queue that a GUI timer drains, so no Qt object is touched off the GUI thread.
Deploys go through :func:`hardware.deploy.deploy`, the same code path as ``python main.py
deploy``. The panel shows

* the link: "connected" only once the board has answered a short read-back probe;
* the board's spikes and the twin's prediction in titled rasters (the same raster panels the
  simulation uses), and the accuracy of board, twin and float simulation, updated after each run;
* the board-vs-twin agreement of every run as it comes in;
* the FF weight RAM read back from the board: at connect, and after a deploy with on-chip STDP;
* link counters, reset whenever another project is opened.

A timer watches the port so an unplugged cable shows at once.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QSplitter, QTabWidget, QVBoxLayout,
                               QWidget)

from app.plots import RasterPanel
from app.run_controller import LiveChunk, import_worker_modules
from app.widgets import FocusWheelComboBox, FocusWheelSpinBox

OK_COLOUR, PENDING_COLOUR, BAD_COLOUR = "#43a047", "#f9a825", "#e53935"
PROBE_TIMEOUT_S = 2.0  # how long a board may take to start answering the connection probe
DEFAULT_ONCHIP_STDP = "3,3,1,1"
NO_RUN_YET = "no runs yet — press Deploy"


class BackgroundJob:
    """Run ``work(put, should_stop)`` in a plain Python thread; it reports ``(kind, payload)`` tuples.

    The GUI drains :attr:`events` with a timer. A ``("finished", result)`` event always comes
    last; a :class:`~engine.errors.SynweaveError` (or a bug) becomes a ``("failed", text)``
    event before it.
    """

    def __init__(self, work, name: str):
        self.work = work
        self.events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self._stop.set()

    def _run(self):
        from engine.errors import SynweaveError

        result = None
        try:
            result = self.work(self.events.put, self._stop.is_set)
        except SynweaveError as exc:
            self.events.put(("failed", str(exc)))
        except Exception as exc:  # a bug must not take the GUI down with it
            self.events.put(("failed", f"internal error: {exc!r}"))
        self.events.put(("finished", result))


def probe_board(port: str, timeout: float):
    """Open ``port`` and read the FF weights back: only a NeuroCoreX board answers with 9215 bytes.

    Returns ``(driver, weights)``; the driver stays open. Raises a HardwareError otherwise (the
    driver closes the port itself).
    """
    from hardware.neurocorex.driver import NeuroCoreXDriver

    driver = NeuroCoreXDriver(port, timeout=timeout)
    weights = driver.read_back_ff()
    return driver, weights


def parse_onchip_stdp(text: str) -> tuple[int, int, int, int]:
    """``"3,3,1,1"`` -> ``(3, 3, 1, 1)``; raises ParameterError naming the field otherwise."""
    from engine.errors import ParameterError

    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(0 <= v <= 255 for v in values):
        raise ParameterError("on-chip STDP", f"needs four numbers 0..255 (tpre, tpost, dw+, dw-), "
                                             f"e.g. {DEFAULT_ONCHIP_STDP}; got {text!r}")
    return values


class AgreementView(QWidget):
    """Board-vs-twin agreement of each run of a deploy: a bar per run, green when identical."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("Board vs twin, per run: share of timesteps whose frames are identical")
        self.title.setObjectName("PlotTitle")
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "run")
        self.plot.setLabel("left", "identical steps")
        self.plot.setYRange(0, 1.05)
        self.plot.setMouseEnabled(y=False)
        self.plot.hideButtons()
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, pen=pg.mkPen(None))
        self.plot.addItem(self.bars)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        self.clear()

    def clear(self):
        self.shares: list[float] = []
        self.identical: list[bool] = []
        self._redraw()

    def add(self, index: int, differing_steps: int, n_steps: int):
        """Record run ``index`` (0-based): ``differing_steps`` of ``n_steps`` differ (0: identical)."""
        while len(self.shares) <= index:
            self.shares.append(np.nan)
            self.identical.append(True)
        self.shares[index] = 1.0 - differing_steps / max(n_steps, 1)
        self.identical[index] = differing_steps == 0
        self._redraw()

    @property
    def text(self) -> str:
        """``"board = twin in 5 of 6 runs"`` (or ``""`` before the first run)."""
        if not self.shares:
            return ""
        return f"board = twin in {sum(self.identical)} of {len(self.shares)} runs"

    def _redraw(self):
        x = np.arange(1, len(self.shares) + 1)
        brushes = [pg.mkBrush(OK_COLOUR if same else BAD_COLOUR) for same in self.identical]
        self.bars.setOpts(x=x, height=np.nan_to_num(np.array(self.shares, float)), width=0.8,
                          brushes=brushes)
        self.plot.setXRange(0.5, max(len(x), 10) + 0.5, padding=0)


class WeightHeatMap(QWidget):
    """The FF weight RAM as a heat map: read-back values, or their change since the upload."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No weights read back yet: connect to a board, or deploy with on-chip STDP")
        self.title.setObjectName("PlotTitle")
        self.title.setWordWrap(True)
        self.view = FocusWheelComboBox()
        self.view.addItems(["Change since upload", "Read-back values"])
        self.view.setToolTip("Show the read-back weights, or how much on-chip learning changed them")
        self.view.currentIndexChanged.connect(self._redraw)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "RAM column (input address)")
        self.plot.setLabel("left", "RAM row")
        self.plot.invertY(True)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setRange(xRange=(0, 96), yRange=(0, 96), padding=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get("CET-D1"),
                                          interactive=False, width=12)
        self.colour_bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.plot, 1)
        self.weights = self.uploaded = None
        self.changed_entries = 0

    def clear(self):
        self.weights = self.uploaded = None
        self.changed_entries = 0
        self.image.clear()
        self.title.setText("No weights read back yet: connect to a board, or deploy with on-chip STDP")

    def show_weights(self, weights: np.ndarray, uploaded: np.ndarray | None, caption: str):
        """Show a read-back (``[96, 96]`` int8); ``uploaded`` is what the host sent, if known."""
        self.weights = np.asarray(weights, np.int64)
        self.uploaded = None if uploaded is None else np.asarray(uploaded, np.int64)
        if self.uploaded is not None:
            change = self.weights - self.uploaded
            change[-1, -1] = 0  # the board never sends entry (95, 95)
            self.changed_entries = int(np.count_nonzero(change))
            caption += f"; {self.changed_entries} entries changed since the upload"
        self.view.setCurrentIndex(0 if self.uploaded is not None else 1)
        self.view.setEnabled(self.uploaded is not None)
        self.title.setText(caption)
        self._redraw()

    def _redraw(self):
        if self.weights is None:
            return
        if self.view.currentIndex() == 0 and self.uploaded is not None:
            data = self.weights - self.uploaded
            data[-1, -1] = 0
        else:
            data = self.weights
        limit = float(max(np.abs(data).max(), 1))
        self.image.setImage(data.astype(float), levels=(-limit, limit))
        self.colour_bar.setLevels((-limit, limit))


class HardwarePanel(QWidget):
    """Dock content: port picker, link status, deploy controls, rasters, agreement, weights, log."""

    status_changed = Signal(str)

    def __init__(self, project_getter, parent=None):
        super().__init__(parent)
        self._project_getter = project_getter
        self._project_ref = None
        self.driver = None
        self.port_path = None
        self.virtual_board = None
        self.worker: BackgroundJob | None = None
        self.probe: BackgroundJob | None = None
        self.report = None
        self.probe_timeout_s = PROBE_TIMEOUT_S
        self._errors = 0
        self._uploaded_ff = None

        # -- connection row
        self.ports = FocusWheelComboBox()
        self.ports.setEditable(True)
        self.ports.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.ports.setMinimumContentsLength(26)
        self.ports.lineEdit().setPlaceholderText("port, e.g. /dev/ttyUSB1 or /dev/pts/3")
        self.ports.setToolTip("Serial ports (★ = likely NeuroCoreX, FTDI 0403:6010) and virtual boards "
                              "started with `board emulate`; you can also type any port path")
        self.refresh_button = QPushButton("Refresh")
        self.virtual_button = QPushButton("Virtual board")
        self.virtual_button.setToolTip("Start a virtual NeuroCoreX board (digital twin on a pseudo-terminal)")
        self.connect_button = QPushButton("Connect")
        self.connect_button.setToolTip("Open the port and check that a NeuroCoreX board answers")
        # -- deploy row
        self.samples = FocusWheelSpinBox()
        self.samples.setRange(1, 100_000)
        self.samples.setValue(20)
        self.samples.setPrefix("samples ")
        self.onchip_stdp = QCheckBox("on-chip STDP")
        self.onchip_stdp.setToolTip(
            "Switch the board's own FF STDP on during the runs and read the weights back after them. "
            "On this board version it does not train the network's synapses: it changes other RAM "
            "entries (see the Weights tab)")
        self.stdp_settings = QLineEdit(DEFAULT_ONCHIP_STDP)
        self.stdp_settings.setValidator(QRegularExpressionValidator(r"^\d{1,3}(,\d{1,3}){0,3}$"))
        self.stdp_settings.setToolTip("tpre, tpost (windows in board steps), dw+, dw- (weight units)")
        self.stdp_settings.setMaximumWidth(90)
        self.stdp_settings.setEnabled(False)
        self.onchip_stdp.toggled.connect(self.stdp_settings.setEnabled)
        self.deploy_button = QPushButton("Deploy")
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        # -- status row
        self.link = QLabel()
        self.link.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counters = QLabel("")
        self.agreement = QLabel("")
        self.accuracy = QLabel("")
        self.accuracy.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        # -- views
        self.board_raster = RasterPanel("board", "Board", live=True)
        self.twin_raster = RasterPanel("twin", "Twin prediction", live=True)
        for panel in (self.board_raster, self.twin_raster):
            panel.title_label.show()  # two rasters side by side: each says what it shows
            panel.mode.hide()  # at most 90 neurons: points always; no decimation needed
            panel.max_points.hide()
            panel.setMinimumHeight(200)
            panel.status.setText(NO_RUN_YET)
        self.agreement_view = AgreementView()
        self.weights_view = WeightHeatMap()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)

        row1 = QHBoxLayout()
        for w in (QLabel("Port"), self.ports, self.refresh_button, self.virtual_button, self.connect_button):
            row1.addWidget(w)
        row1.addWidget(self.link, 1)
        row2 = QHBoxLayout()
        for w in (self.samples, self.onchip_stdp, self.stdp_settings, self.deploy_button, self.stop_button):
            row2.addWidget(w)
        row2.addWidget(self.progress, 1)
        row3 = QHBoxLayout()
        row3.addWidget(self.accuracy, 1)
        row3.addWidget(self.agreement)
        row3.addWidget(self.counters)
        rasters = QSplitter()
        rasters.addWidget(self.board_raster)
        rasters.addWidget(self.twin_raster)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(rasters, "Spikes")
        self.tabs.addTab(self.agreement_view, "Board vs twin")
        self.tabs.addTab(self.weights_view, "Weights")
        self.tabs.addTab(self.log_view, "Log")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)

        self.refresh_button.clicked.connect(self.refresh_ports)
        self.virtual_button.clicked.connect(self.start_virtual_board)
        self.connect_button.clicked.connect(self.toggle_connection)
        self.deploy_button.clicked.connect(self.start_deploy)
        self.stop_button.clicked.connect(self.stop_deploy)
        self.poller = QTimer(self)
        self.poller.setInterval(30)
        self.poller.timeout.connect(self._poll_jobs)
        self.watchdog = QTimer(self)
        self.watchdog.setInterval(500)
        self.watchdog.timeout.connect(self._watch)
        self.watchdog.start()
        self._set_link("● disconnected", BAD_COLOUR)
        self.refresh_ports()
        self._note_project()
        self._update_buttons()

    # -- project ---------------------------------------------------------------------------------
    def _note_project(self) -> bool:
        """Remember the current project; True when it is another one than last time."""
        project = self._project_getter()
        known = self._project_ref() if self._project_ref is not None else None
        if project is known:
            return False
        self._project_ref = weakref.ref(project) if project is not None else None
        return True

    def reset_results(self):
        """Forget the counters and results of the previous project (the link stays as it is)."""
        self._errors = 0
        self.report = None
        self._uploaded_ff = None
        self.summary.setText("")
        self.accuracy.setText("")
        self.agreement.setText("")
        self.agreement_view.clear()
        self.weights_view.clear()
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        for panel in (self.board_raster, self.twin_raster):
            panel.reset(1, 1000.0, 0.1)
            panel.status.setText(NO_RUN_YET)
        if self.driver is not None:
            self.driver.bytes_sent = self.driver.bytes_received = 0
        self._show_counters()

    # -- ports and link -----------------------------------------------------------------------
    def refresh_ports(self):
        from hardware.neurocorex.discovery import emulated_board_ports, list_ports

        typed = self.selected_port()
        self.ports.clear()
        for info in list_ports():
            mark = "★ " if info.likely_board else ""
            self.ports.addItem(f"{mark}{info.device} — {info.description}", info.device)
        for path in emulated_board_ports():
            self.ports.addItem(f"{path} — virtual (board emulate)", path)
        if self.virtual_board is not None and self.ports.findData(self.virtual_board.device_path) < 0:
            self.ports.addItem(f"{self.virtual_board.device_path} — virtual board", self.virtual_board.device_path)
        index = self.ports.findData(typed) if typed else -1
        if index >= 0:
            self.ports.setCurrentIndex(index)
        else:
            self.ports.setEditText(typed or "")

    def selected_port(self) -> str | None:
        """The port to use: the chosen entry's device, or whatever path the user typed."""
        text = self.ports.currentText().strip()
        index = self.ports.currentIndex()
        if index >= 0 and self.ports.itemText(index) == text:
            return self.ports.itemData(index)
        return text.split(" — ", 1)[0].lstrip("★ ").strip() or None

    def start_virtual_board(self):
        from hardware.neurocorex.virtual_board import VirtualBoard

        if self.virtual_board is None:
            self.virtual_board = VirtualBoard(fast=True)
            self.virtual_board.start()
            self._log(f"virtual board on {self.virtual_board.device_path}")
        self.refresh_ports()
        self.ports.setCurrentIndex(self.ports.findData(self.virtual_board.device_path))

    def toggle_connection(self):
        """Connect (open the port, then probe the board in a thread) or disconnect."""
        if self.driver is not None:
            self.disconnect_board()
            return
        if self.probe is not None:
            return
        port = self.selected_port()
        if not port:
            self._error("choose a serial port first (Refresh, start a virtual board, or type its path)")
            return
        self.port_path = port
        self._set_link(f"● checking {port}: waiting for the board to answer…", PENDING_COLOUR)
        timeout = self.probe_timeout_s
        self.probe = BackgroundJob(lambda put, stop: probe_board(port, timeout), "synweave-board-probe")
        self._update_buttons()
        self.probe.start()
        self.poller.start()

    def _on_probe_finished(self, result):
        self.probe.thread.join(1.0)
        self.probe = None
        if result is None:
            self._set_link(f"● not connected: no NeuroCoreX board answered on {self.port_path}", BAD_COLOUR)
        else:
            self.driver, weights = result
            self._set_link(f"● connected to {self.port_path} (the board answered)", OK_COLOUR)
            self.weights_view.show_weights(weights, None, "FF weights on the board when it was connected "
                                                          "(read back as the connection check)")
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
        self._set_link(f"● disconnected{': ' + reason if reason else ''}", BAD_COLOUR)
        self._update_buttons()

    def _watch(self):
        """Timer: another project opened? the cable unplugged?"""
        if self._note_project() and self.worker is None:
            self.reset_results()
        self.check_link()

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
        from engine.errors import SynweaveError
        from hardware.neurocorex.mapper import MapOptions

        if self.worker is not None or self.probe is not None:
            return
        if self._note_project():
            self.reset_results()
        try:
            stdp = parse_onchip_stdp(self.stdp_settings.text()) if self.onchip_stdp.isChecked() else None
        except SynweaveError as exc:
            self._error(str(exc))
            return
        # the worker deploys an independent copy that keeps the file's folder (relative data files)
        # while the panel keeps watching the live project for a change of project
        project = self._project_getter().snapshot()
        self.report = None
        self.summary.setText("")
        self.agreement_view.clear()
        self.agreement.setText("")
        self._counts = {"board": [], "twin": [], "float": []}
        self._labels: list = []
        self.progress.setFormat("mapping…")
        import_worker_modules()
        import hardware.deploy  # noqa: F401  (see import_worker_modules)

        driver, samples, options = self.driver, self.samples.value(), MapOptions(onchip_stdp=stdp)

        def work(put, should_stop):
            from hardware.deploy import deploy

            return deploy(project, driver, options=options, max_trials=samples,
                          progress=lambda d, t, s: put(("progress", (d, t, s))),
                          log=lambda text: put(("log", text)),
                          on_trial=lambda i, trial, mapping, board, twin, sim:
                              put(("trial", (i, trial, mapping, board, twin, sim))),
                          on_agreement=lambda i, mismatch: put(("agreement", (i, mismatch))),
                          should_stop=should_stop, simulate=True)

        self.worker = BackgroundJob(work, "synweave-deploy")
        self._update_buttons(running=True)
        self.worker.start()
        self.poller.start()

    def _poll_jobs(self):
        """Dispatch what the probe and deploy threads reported since the last tick (GUI thread only)."""
        if self.probe is not None:
            self._drain(self.probe, {"failed": self._error, "finished": self._on_probe_finished})
        if self.worker is not None:
            self._drain(self.worker, {"progress": lambda a: self._on_progress(*a), "trial": self._on_trial,
                                      "agreement": lambda a: self._on_agreement(*a),
                                      "log": self._log, "failed": self._error, "finished": self._on_finished})
        if self.probe is None and self.worker is None:
            self.poller.stop()

    @staticmethod
    def _drain(job: BackgroundJob, handlers):
        while True:
            try:
                kind, payload = job.events.get_nowait()
            except queue.Empty:
                return
            handlers[kind](payload)
            if kind == "finished":
                return

    def stop_deploy(self):
        if self.worker is not None:
            self.worker.stop()

    def _on_progress(self, done, total, stage):
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage}: {done}/{total}")

    def _on_trial(self, payload):
        i, trial, mapping, board, twin, sim = payload
        dt = mapping.dt
        period = trial.n_model_steps * dt
        output = list(mapping.neuron_slots)[-1]
        n_out = len(mapping.neuron_slots[output])
        if i == 0:
            total = self.samples.value() * period
            label = self._project_getter().graph.nodes[output].label
            for panel, title in ((self.board_raster, f"Board: {label}"), (self.twin_raster, f"Twin: {label}")):
                panel.title_label.setText(title)
                panel.title_label.setToolTip(f"spikes of the output population {label!r}, one sample after another")
                panel.reset(n_out, total, dt)
                panel.running = True
            if mapping.image.stdp_enabled:
                self._uploaded_ff = mapping.image.ff_weights.copy()
        for panel, spikes, key in ((self.board_raster, board, "board"), (self.twin_raster, twin, "twin")):
            steps, idx = spikes[output]
            chunk = LiveChunk(i * period, (i + 1) * period, dt,
                              spikes={key: (i * period + np.asarray(steps, float) * dt,
                                            np.asarray(idx, np.int32))})
            panel.add(chunk)
            panel.maybe_redraw()
        self._labels.append(trial.label)
        for key, spikes in (("board", board), ("twin", twin), ("float", sim)):
            if spikes is not None:
                self._counts[key].append(np.bincount(np.asarray(spikes[output][1], np.int64), minlength=n_out))
        self._show_accuracy()
        self._show_counters()

    def _show_accuracy(self):
        """Accuracy of board, twin and float simulation over the runs so far (labelled data only)."""
        if not self._labels or self._labels[0] is None:
            self.accuracy.setText("")
            return
        parts = []
        for key, name in (("board", "board"), ("twin", "twin"), ("float", "float simulation")):
            counts = self._counts[key]
            if counts:
                hits = [int(np.argmax(c)) == label for c, label in zip(counts, self._labels) if np.any(c)]
                parts.append(f"{name} {100.0 * sum(hits) / len(counts):.1f}%")
        self.accuracy.setText(f"accuracy over {len(self._labels)} samples: " + " · ".join(parts))

    def _on_agreement(self, index, mismatch):
        if mismatch is None:
            self.agreement_view.add(index, 0, 1)
        else:
            self.agreement_view.add(index, mismatch.differing_steps, mismatch.n_steps)
        self.agreement.setText(self.agreement_view.text)
        same = all(self.agreement_view.identical)
        self.agreement.setStyleSheet(f"color: {OK_COLOUR if same else BAD_COLOUR};")

    def _on_finished(self, report):
        self.report = report
        for panel in (self.board_raster, self.twin_raster):
            panel.finish()
        if report is not None:
            # the accuracy has a line of its own above; the rest of the summary in one line
            self.summary.setText(" · ".join(line for line in report.summary() if not line.startswith("accuracy")))
            self.progress.setFormat("finished")
            if report.readback is not None:
                source = "the board" if self.driver is not None else "the twin (no board connected)"
                self.weights_view.show_weights(report.readback, self._uploaded_ff,
                                               f"FF weights read back from {source} after the on-chip "
                                               f"STDP runs")
        else:
            self.progress.setFormat("failed")
        self.worker.thread.join(5.0)
        self.worker = None
        if self.driver is not None and not self.driver.is_open:
            self.disconnect_board("link lost")
        self._update_buttons()

    # -- helpers ----------------------------------------------------------------------------------
    def _set_link(self, text: str, colour: str):
        self.link.setText(text)
        self.link.setStyleSheet(f"color: {colour};")
        self.status_changed.emit(text)

    def _update_buttons(self, running: bool = False):
        connected = self.driver is not None
        probing = self.probe is not None
        self.connect_button.setText("Disconnect" if connected else "Connect")
        self.connect_button.setEnabled(not running and not probing)
        self.deploy_button.setEnabled(not running and not probing)
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
        self.summary.setText(f"error: {text}")
        self._show_counters()
        self.status_changed.emit(text)

    def shutdown(self):
        """Stop the jobs, close the port and the virtual board (window closing)."""
        self.watchdog.stop()
        self.poller.stop()
        for job in (self.worker, self.probe):
            if job is not None:
                job.stop()
                job.thread.join(10.0)
        if self.probe is not None:
            try:  # a probe that finished meanwhile left an open driver in its queue
                while True:
                    kind, payload = self.probe.events.get_nowait()
                    if kind == "finished" and payload is not None:
                        payload[0].close()
            except queue.Empty:
                pass
        self.worker = self.probe = None
        self.disconnect_board()
        if self.virtual_board is not None:
            self.virtual_board.stop()
            self.virtual_board = None
