"""Live plots (pyqtgraph): raster with population rate, rates, state traces, weights, signals, readouts.

Panels receive :class:`app.run_controller.LiveChunk` s and only *append* to their buffers; drawing
happens at most once per timer tick, and a panel whose last redraw was expensive waits a few times
that long before the next one, so the event loop stays responsive however fast data arrives.
Large rasters switch to a density image (counts binned incrementally per chunk) instead of
drawing millions of points, and say so in their status line.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph import exporters
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu,
                               QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from app import theme as themes
from app.run_controller import LiveChunk

pg.setConfigOptions(antialias=False, imageAxisOrder="row-major", useOpenGL=False)

SPIKE_COLOUR = "#f2c14e"
#: units of the state variables a state monitor records (nodes/neurons.py)
STATE_UNITS = {"V": "mV", "I_exc": "pA", "I_inh": "pA", "g_exc": "g_L", "g_inh": "g_L", "theta": "mV",
               "w": "pA", "u": "model units",
               # astrocytes (nodes/modulators.py): one trace each, named without an index
               "A": "1", "Ca": "µM", "IP3": "µM", "h": "1", "U_0": "1"}
#: what the astrocyte variables are, for the legend
ASTROCYTE_VARIABLE_NAMES = {"A": "A, STDP depression rate", "Ca": "Ca²⁺", "IP3": "IP3",
                            "h": "h, IP3R de-inactivation", "U_0": "U_0, release probability"}
TRACE_COLOURS = ["#4cc9f0", "#f72585", "#b5e48c", "#ffd166", "#9d4edd", "#ff8c42", "#06d6a0",
                 "#ef476f", "#118ab2", "#e9c46a", "#90be6d", "#f94144", "#577590", "#f3722c",
                 "#43aa8b", "#8338ec"]


def _density_lut(theme: str) -> np.ndarray:
    """A perceptually ordered colour map (dark background to bright yellow) as a LUT."""
    if theme == "light":
        # white (no spikes) through blue to navy: reads like ink on paper
        cmap = pg.ColorMap([0.0, 0.25, 0.6, 1.0], ["#ffffff", "#9ecae1", "#3182bd", "#08306b"])
    else:
        cmap = pg.colormap.get("inferno")
    return cmap.getLookupTable(0.0, 1.0, 256, alpha=False)


class _TimedLayoutWidget(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that remembers how long its last paint took (for the draw budget)."""

    last_paint_s = 0.0

    def paintEvent(self, event):
        t0 = time.perf_counter()
        super().paintEvent(event)
        self.last_paint_s = time.perf_counter() - t0


class PlotPanel(QWidget):
    """Base panel: header (title, controls, live switch, export menu) and a pyqtgraph layout."""

    kind = "plot"
    liveToggled = Signal(str, bool)
    #: wait this many times the last redraw + paint time before the next live redraw (5 % budget)
    BUDGET_FACTOR = 19.0

    def __init__(self, monitor_id: str, title: str, live: bool = True, parent=None):
        super().__init__(parent)
        self.setObjectName(f"plot_{monitor_id}")
        self.monitor_id = monitor_id
        self.title = title
        self.theme = themes.current_theme()
        self.dirty = False
        self.has_data = False
        self.running = False
        self.redraw_count = 0
        self.redraw_time = 0.0  # seconds spent in redraws since the last reset
        self._cost = 0.0
        self._next = 0.0
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(3)
        self.header = QHBoxLayout()
        self.header.setSpacing(6)
        self.title_label = QLabel(title)
        self.title_label.setObjectName("PlotTitle")
        self.title_label.hide()  # the dock's title names the panel
        self.header.addWidget(self.title_label)
        self.status = QLabel("no data yet — press Run (Ctrl+Enter)")
        self.status.setObjectName("PlotStatus")
        # long status lines are cut, never widen the window
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setMinimumWidth(40)
        self.header.addWidget(self.status, 1)
        self.controls = QHBoxLayout()
        self.controls.setSpacing(4)
        self.header.addLayout(self.controls)
        self.live_box = QCheckBox("Live")
        self.live_box.setToolTip("Draw while the simulation runs; off: draw once the run ends "
                                 "(the monitor's 'live' parameter)")
        self.live_box.setChecked(live)
        self.live_box.toggled.connect(lambda on: self.liveToggled.emit(self.monitor_id, on))
        self.header.addWidget(self.live_box)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for label, suffix in (("Image (PNG)…", "png"), ("Vector (SVG)…", "svg"),
                              ("Data (CSV)…", "csv"), ("Data (NumPy .npz)…", "npz")):
            menu.addAction(label, lambda s=suffix: self._export_dialog(s))
        self.export_button.setMenu(menu)
        self.header.addWidget(self.export_button)
        outer.addLayout(self.header)
        self.glw = _TimedLayoutWidget()
        self.glw.ci.setContentsMargins(2, 2, 8, 2)
        outer.addWidget(self.glw, 1)
        self.apply_theme(self.theme)

    # -- appearance -----------------------------------------------------------------------------
    def apply_theme(self, theme: str):
        self.theme = theme
        col = themes.colours(theme)
        self.glw.setBackground(col.plot_background)
        for plot in self.plots():
            for name in ("left", "bottom"):
                ax = plot.getAxis(name)
                ax.setPen(pg.mkPen(col.plot_foreground))
                ax.setTextPen(pg.mkPen(col.plot_foreground))
        self.dirty = True

    def plots(self) -> list[pg.PlotItem]:
        return [it for it in self.glw.ci.items if isinstance(it, pg.PlotItem)]

    def add_control(self, widget: QWidget):
        self.controls.addWidget(widget)

    @property
    def live(self) -> bool:
        return self.live_box.isChecked()

    def set_live(self, on: bool):
        if on != self.live_box.isChecked():
            self.live_box.blockSignals(True)
            self.live_box.setChecked(on)
            self.live_box.blockSignals(False)

    # -- data flow ------------------------------------------------------------------------------
    def reset(self, size: int, duration_ms: float, dt: float):
        self.size = max(int(size), 1)
        self.duration_ms = float(duration_ms)
        self.dt = float(dt)
        self.has_data = False
        self.running = True
        self.dirty = True
        self._next = 0.0

    def add(self, chunk: LiveChunk) -> bool:
        raise NotImplementedError

    def finish(self):
        self.running = False
        self.dirty = True
        self.redraw()

    def showEvent(self, event):
        super().showEvent(event)
        if self.has_data:
            self.dirty = True  # sizes may have changed while hidden (a tab in the back)
            if not self.running:
                QTimer.singleShot(0, self.maybe_redraw)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.has_data and not self.running:
            self.dirty = True
            self._next = 0.0
            QTimer.singleShot(0, self.maybe_redraw)

    def maybe_redraw(self, now: float | None = None) -> bool:
        """Redraw if there is something new, at most as often as the redraw cost allows."""
        if not self.dirty or (self.running and not self.live):
            return False
        now = time.perf_counter() if now is None else now
        if now < self._next or not self.isVisible():
            return False
        self.redraw()
        return True

    def redraw(self):
        t0 = time.perf_counter()
        self.dirty = False
        self._redraw()
        self.redraw_count += 1
        self._cost = time.perf_counter() - t0
        self.redraw_time += self._cost
        # While a run is going, spend at most ~5 % of the time preparing and painting this panel:
        # the simulation's threads need the cores more than the plot needs frames.
        cost = self._cost + self.glw.last_paint_s
        self._next = time.perf_counter() + max(self.BUDGET_FACTOR * cost, 1.0 / 60.0)

    def _redraw(self):
        raise NotImplementedError

    # -- export -------------------------------------------------------------------------------------
    def data_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _export_dialog(self, suffix: str):
        filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "csv": "CSV (*.csv)",
                   "npz": "NumPy archive (*.npz)"}
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title}", f"{self.monitor_id}.{suffix}",
                                              filters[suffix])
        if path:
            self.export(path)

    def export(self, path: str | Path) -> Path:
        path = Path(path)
        suffix = path.suffix.lower().lstrip(".")
        if self.dirty:
            self.redraw()
        if suffix == "png":
            exp = exporters.ImageExporter(self.glw.ci)
            exp.parameters()["width"] = max(800, int(self.glw.width() * 2))
            exp.export(str(path))
        elif suffix == "svg":
            self._export_svg(path)
        elif suffix == "npz":
            np.savez_compressed(path, **self.data_arrays())
        elif suffix == "csv":
            self._export_csv(path)
        else:
            raise ValueError(f"unknown export format {suffix!r}; use png, svg, csv or npz")
        return path

    def _export_svg(self, path: Path):
        """Vector SVG of the plots (QtSvg; pyqtgraph's own SVG exporter cannot parse Qt 6.12 paths)."""
        from PySide6.QtCore import QRectF, QSize
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        scene = self.glw.scene()
        rect = self.glw.ci.sceneBoundingRect()
        gen = QSvgGenerator()
        gen.setFileName(str(path))
        gen.setSize(QSize(int(rect.width()), int(rect.height())))
        gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
        gen.setTitle(self.title)
        gen.setDescription(f"Synweave plot of monitor {self.monitor_id}")
        painter = QPainter(gen)
        try:
            scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        finally:
            painter.end()

    def _export_csv(self, path: Path):
        arrays = self.data_arrays()
        columns = {k: v for k, v in arrays.items() if v.ndim == 1}
        if not columns:
            path.write_text("", encoding="utf-8")
            return
        n = max(v.size for v in columns.values())
        names = list(columns)
        mat = np.full((n, len(names)), np.nan)
        for j, name in enumerate(names):
            v = columns[name]
            mat[: v.size, j] = v
        np.savetxt(path, mat, delimiter=",", header=",".join(names), comments="", fmt="%.9g")


# ------------------------------------------------------------------------------------------------
class RasterPanel(PlotPanel):
    """Spike raster of a whole population with its population rate underneath.

    Controls: which neurons (all / first / random / most active), their order (index / rate),
    drawing (auto / points / density) and the most points drawn (decimation).
    """

    kind = "raster"
    STORE_LIMIT = 20_000_000       # points kept for redraws and export
    DENSITY_COLS = 600
    DENSITY_ROWS = 300

    def __init__(self, monitor_id: str, title: str, live: bool = True, parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.neurons = QComboBox()
        self.neurons.addItems(["All neurons", "First 100", "Random 500", "Most active 200"])
        self.neurons.setToolTip("Which neurons to show")
        self.order = QComboBox()
        self.order.addItems(["By index", "By rate"])
        self.order.setToolTip("Row order: neuron index, or most active at the top")
        self.mode = QComboBox()
        self.mode.addItems(["Auto", "Points", "Density"])
        self.mode.setToolTip("Points for small rasters; a density image (spikes per bin) for large ones")
        self.max_points = QComboBox()
        self.max_points.addItems(["20k pts", "100k pts", "500k pts", "2M pts"])
        self.max_points.setCurrentIndex(1)
        self.max_points.setToolTip("Decimation: draw at most this many spikes as points")
        for w in (self.neurons, self.order, self.mode, self.max_points):
            self.add_control(w)
            w.currentIndexChanged.connect(self._controls_changed)
        self.raster = self.glw.addPlot(row=0, col=0)
        self.raster.setLabel("left", "neuron")
        self.raster.hideButtons()
        self.raster.setMenuEnabled(False)
        self.rate_plot = self.glw.addPlot(row=1, col=0)
        self.rate_plot.setLabel("left", "rate", units="Hz")
        self.rate_plot.setLabel("bottom", "time", units="s")
        self.rate_plot.setXLink(self.raster)
        self.rate_plot.hideButtons()
        self.rate_plot.setMenuEnabled(False)
        self.glw.ci.layout.setRowStretchFactor(0, 4)
        self.glw.ci.layout.setRowStretchFactor(1, 1)
        self.scatter = pg.ScatterPlotItem(pxMode=True, size=2.5, pen=None, symbol="s",
                                          brush=pg.mkBrush(SPIKE_COLOUR))
        self.raster.addItem(self.scatter)
        self.image = pg.ImageItem()
        self.image.setVisible(False)
        self.raster.addItem(self.image)
        self.rate_curve = self.rate_plot.plot(pen=pg.mkPen(SPIKE_COLOUR, width=1.5))
        self.raster.getAxis("bottom").setStyle(showValues=False)
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def apply_theme(self, theme: str):
        super().apply_theme(theme)
        if hasattr(self, "image"):
            self.image.setLookupTable(_density_lut(theme))
            colour = SPIKE_COLOUR if theme == "dark" else "#1b4f9c"
            self.scatter.setBrush(pg.mkBrush(colour))
            self.rate_curve.setPen(pg.mkPen(colour, width=1.5))

    # -- data --------------------------------------------------------------------------------
    def reset(self, size: int, duration_ms: float, dt: float):
        super().reset(size, duration_ms, dt)
        self.t_chunks: list[np.ndarray] = []
        self.i_chunks: list[np.ndarray] = []
        self.n_spikes = 0
        self.n_stored = 0
        self.t_max = 0.0
        self.counts = np.zeros(self.size, np.int64)
        self.rate_bin = max(self.dt, self.duration_ms / 1000.0, 0.5)
        self.rate_counts = np.zeros(int(math.ceil(self.duration_ms / self.rate_bin)) + 1, np.int64)
        self._remap()
        self.raster.setXRange(0, self.duration_ms / 1000.0, padding=0.0)
        self.raster.setYRange(0, self.n_rows, padding=0.0)

    def _remap(self):
        """Row of each neuron (-1: hidden) for the chosen subset and order; rebuilds the density."""
        n = self.size
        choice = self.neurons.currentIndex()
        if choice == 1:
            chosen = np.arange(min(100, n))
        elif choice == 2:
            rng = np.random.default_rng(0)
            chosen = np.sort(rng.choice(n, size=min(500, n), replace=False))
        elif choice == 3:
            chosen = np.sort(np.argsort(-self.counts, kind="stable")[: min(200, n)])
        else:
            chosen = np.arange(n)
        if self.order.currentIndex() == 1:
            chosen = chosen[np.argsort(-self.counts[chosen], kind="stable")]
        self.row_of = np.full(n, -1, np.int64)
        self.row_of[chosen] = np.arange(chosen.size)
        self.n_rows = max(int(chosen.size), 1)
        self.density_rows = min(self.n_rows, self.DENSITY_ROWS)
        self.density = np.zeros((self.density_rows, self.DENSITY_COLS), np.float32)
        if self.n_stored:
            t = np.concatenate(self.t_chunks)
            i = np.concatenate(self.i_chunks)
            self._bin_density(t, i)

    def _bin_density(self, t: np.ndarray, i: np.ndarray):
        rows = self.row_of[np.clip(i, 0, self.size - 1)]
        keep = rows >= 0
        if not keep.all():
            t, rows = t[keep], rows[keep]
        if t.size == 0:
            return
        col = np.minimum((t / max(self.duration_ms, 1e-9) * self.DENSITY_COLS).astype(np.int64), self.DENSITY_COLS - 1)
        r = rows * self.density_rows // self.n_rows
        flat = np.bincount(r * self.DENSITY_COLS + col, minlength=self.density.size)
        self.density += flat.reshape(self.density.shape).astype(np.float32)

    def _density_for_screen(self) -> np.ndarray:
        """The density grid summed down to about one bin per screen pixel (fewer, fuller bins)."""
        img = self.density
        vb = self.raster.vb
        fr = max(1, int(math.ceil(img.shape[0] / max(vb.height(), 100.0))))
        fc = max(1, int(math.ceil(img.shape[1] / max(vb.width(), 200.0))))
        if fr == 1 and fc == 1:
            return img
        rows, cols = img.shape[0] // fr * fr, img.shape[1] // fc * fc
        return img[:rows, :cols].reshape(rows // fr, fr, cols // fc, fc).sum(axis=(1, 3))

    def add(self, chunk: LiveChunk) -> bool:
        data = chunk.spikes.get(self.monitor_id)
        if data is None:
            return False
        t, i = data
        self.t_max = max(self.t_max, chunk.t1_ms)
        if t.size:
            i = np.asarray(i)
            valid = (i >= 0) & (i < self.size)
            if not valid.all():
                t, i = t[valid], i[valid]
            self.n_spikes += t.size
            if self.n_stored + t.size <= self.STORE_LIMIT:
                self.t_chunks.append(t)
                self.i_chunks.append(i)
                self.n_stored += t.size
            self.counts += np.bincount(i, minlength=self.size)[: self.size]
            b = np.minimum((t / self.rate_bin).astype(np.int64), self.rate_counts.size - 1)
            self.rate_counts += np.bincount(b, minlength=self.rate_counts.size)
            self._bin_density(t, i)
        self.has_data = True
        self.dirty = True
        return True

    def _controls_changed(self, *_):
        self._remap()
        self.raster.setYRange(0, self.n_rows, padding=0.0)
        self.dirty = True
        if not self.running:
            self.redraw()

    def max_points_value(self) -> int:
        return (20_000, 100_000, 500_000, 2_000_000)[self.max_points.currentIndex()]

    def visible_count(self) -> int:
        if self.neurons.currentIndex() == 0:
            return self.n_spikes
        return int(self.counts[self.row_of >= 0].sum())

    def use_density(self) -> bool:
        mode = self.mode.currentIndex()
        if mode == 2:
            return True
        if mode == 1:
            return False
        n = self.visible_count()
        if n > self.max_points_value() or self.n_stored < self.n_spikes:
            return True
        # Many more rows than pixels: points would pile up; bins show the activity better.
        height_px = max(self.raster.vb.height(), 1.0)
        return self.n_rows > 3 * height_px and n > 5_000

    def _redraw(self):
        secs = self.duration_ms / 1000.0
        n_visible = self.visible_count()
        if self.use_density():
            self.scatter.setVisible(False)
            self.scatter.clear()
            img = self._density_for_screen()
            top = float(np.percentile(img[img > 0], 99)) if np.any(img > 0) else 1.0
            self.image.setImage(img, autoLevels=False, levels=(0.0, max(top, 1.0)))
            fr, fc = self.density.shape[0] / img.shape[0], self.density.shape[1] / img.shape[1]
            kept_r = img.shape[0] * round(fr) / self.density.shape[0]
            kept_c = img.shape[1] * round(fc) / self.density.shape[1]
            self.image.setRect(0.0, 0.0, secs * kept_c, float(self.n_rows) * kept_r)
            self.image.setVisible(True)
            shown = f"density ({img.shape[0]}×{img.shape[1]} bins)"
        else:
            self.image.setVisible(False)
            if self.n_stored:
                t = np.concatenate(self.t_chunks)
                i = np.concatenate(self.i_chunks)
                if len(self.t_chunks) > 1:
                    self.t_chunks, self.i_chunks = [t], [i]
                rows = self.row_of[i]
                keep = rows >= 0
                t, rows = t[keep], rows[keep]
                limit = self.max_points_value()
                stride = max(1, int(math.ceil(t.size / limit)))
                if stride > 1:
                    t, rows = t[::stride], rows[::stride]
                self.scatter.setData(t / 1000.0, rows.astype(np.float64) + 0.5)
                shown = f"{t.size:,} points" + (f" (1 in {stride})" if stride > 1 else "")
            else:
                self.scatter.clear()
                shown = "0 points"
            self.scatter.setVisible(True)
        upto = min(int(math.ceil(self.t_max / self.rate_bin)), self.rate_counts.size)
        if upto > 0:
            x = (np.arange(upto) + 0.5) * self.rate_bin / 1000.0
            rate = self.rate_counts[:upto] / (self.size * self.rate_bin * 1e-3)
            self.rate_curve.setData(x, rate)
        else:
            self.rate_curve.setData([], [])
        self.raster.setXRange(0, secs, padding=0.0)
        mean = self.n_spikes / (self.size * max(self.t_max, 1e-9) * 1e-3) if self.t_max else 0.0
        subset = f" · {n_visible:,} shown" if n_visible != self.n_spikes else ""
        self.status.setText(f"{self.n_spikes:,} spikes{subset} · {self.size:,} neurons · {mean:.1f} Hz mean · "
                            f"{shown}")

    def data_arrays(self):
        t = np.concatenate(self.t_chunks) if self.t_chunks else np.zeros(0)
        i = np.concatenate(self.i_chunks) if self.i_chunks else np.zeros(0, np.int32)
        return {"time_ms": t, "neuron": i}

    def _export_csv(self, path: Path):
        arrays = self.data_arrays()
        np.savetxt(path, np.column_stack([arrays["time_ms"], arrays["neuron"]]), delimiter=",",
                   header="time_ms,neuron", comments="", fmt=["%.6g", "%d"])


# ------------------------------------------------------------------------------------------------
class RatePanel(PlotPanel):
    """Population rate of a rate monitor: counts per step binned (bin ms) and optionally smoothed."""

    kind = "rate"

    def __init__(self, monitor_id, title, live=True, bin_ms: float = 1.0, smoothing_ms: float = 0.0, parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.bin_ms = bin_ms
        self.smoothing_ms = smoothing_ms
        self.plot = self.glw.addPlot()
        self.plot.setLabel("left", "rate", units="Hz")
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.hideButtons()
        self.curve = self.plot.plot(pen=pg.mkPen("#4cc9f0", width=1.5))
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def reset(self, size, duration_ms, dt):
        super().reset(size, duration_ms, dt)
        self.counts: list[np.ndarray] = []
        self.n_steps = 0
        self.plot.setXRange(0, duration_ms / 1000.0, padding=0.0)

    def add(self, chunk):
        counts = chunk.rates.get(self.monitor_id)
        if counts is None:
            spikes = chunk.spikes.get(self.monitor_id)
            if spikes is None:
                return False
            n = max(int(round((chunk.t1_ms - chunk.t0_ms) / chunk.dt)), 0)
            steps = np.clip(((spikes[0] - chunk.t0_ms) / chunk.dt).astype(np.int64), 0, max(n - 1, 0))
            counts = np.bincount(steps, minlength=n)[:n] if n else np.zeros(0)
        self.counts.append(np.asarray(counts, np.float64))
        self.n_steps += len(counts)
        self.has_data = self.dirty = True
        return True

    def rate(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.counts:
            return np.zeros(0), np.zeros(0)
        c = np.concatenate(self.counts)
        if len(self.counts) > 1:
            self.counts = [c]
        per_bin = max(1, int(round(self.bin_ms / self.dt)))
        n_bins = c.size // per_bin
        if n_bins == 0:
            return np.zeros(0), np.zeros(0)
        binned = c[: n_bins * per_bin].reshape(n_bins, per_bin).sum(axis=1)
        rate = binned / (self.size * per_bin * self.dt * 1e-3)
        if self.smoothing_ms > 0:
            sigma = self.smoothing_ms / (per_bin * self.dt)
            half = int(math.ceil(3 * sigma))
            if half > 0:
                k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
                rate = np.convolve(rate, k / k.sum(), mode="same")
        t = (np.arange(n_bins) + 0.5) * per_bin * self.dt / 1000.0
        return t, rate

    def _redraw(self):
        t, r = self.rate()
        self.curve.setData(t, r)
        if r.size:
            self.status.setText(f"mean {r.mean():.2f} Hz · max {r.max():.1f} Hz · bin {self.bin_ms:g} ms")

    def data_arrays(self):
        t, r = self.rate()
        return {"time_s": t, "rate_hz": r}


# ------------------------------------------------------------------------------------------------
class StatePanel(PlotPanel):
    """State traces (V, currents, conductances ...) of the recorded neurons."""

    kind = "state"
    MAX_TRACES = 16

    def __init__(self, monitor_id, title, live=True, variable: str = "V", indices=(0,), parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.variable = variable
        self.indices = list(indices)
        self.plot = self.glw.addPlot()
        self.plot.setLabel("bottom", "time", units="s")
        unit = STATE_UNITS.get(variable, "")
        self.plot.setLabel("left", f"{variable} ({unit})" if unit and unit != "1" else variable)
        self.plot.hideButtons()
        # the legend gets its own row under the plot: drawn inside the view box it covered the traces
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=8)
        self.glw.addItem(self.legend, row=1, col=0)
        self.curves: list = []
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def reset(self, size, duration_ms, dt):
        super().reset(size, duration_ms, dt)
        self.t_parts: list[np.ndarray] = []
        self.v_parts: list[np.ndarray] = []
        self.plot.setXRange(0, duration_ms / 1000.0, padding=0.0)

    def add(self, chunk):
        variables = chunk.states.get(self.monitor_id)
        if not variables:
            return False
        var = self.variable if self.variable in variables else next(iter(variables))
        t, values = variables[var]
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[:, None]
        self.t_parts.append(np.asarray(t, np.float64))
        self.v_parts.append(values)
        self.has_data = self.dirty = True
        return True

    def traces(self):
        if not self.t_parts:
            return np.zeros(0), np.zeros((0, 0))
        t = np.concatenate(self.t_parts)
        v = np.concatenate(self.v_parts)
        if len(self.t_parts) > 1:
            self.t_parts, self.v_parts = [t], [v]
        return t, v

    def trace_name(self, index: int) -> str:
        """Legend entry: the variable, the neuron index (astrocytes have one state) and the unit."""
        unit = STATE_UNITS.get(self.variable, "")
        unit_text = f" ({'dimensionless' if unit == '1' else unit})" if unit else ""
        if self.variable in ASTROCYTE_VARIABLE_NAMES:
            return ASTROCYTE_VARIABLE_NAMES[self.variable] + unit_text
        return f"{self.variable} #{index}{unit_text}"

    def _redraw(self):
        t, v = self.traces()
        k = min(v.shape[1] if v.ndim == 2 else 0, self.MAX_TRACES)
        while len(self.curves) < k:
            j = len(self.curves)
            name = self.trace_name(self.indices[j] if j < len(self.indices) else j)
            curve = self.plot.plot(pen=pg.mkPen(TRACE_COLOURS[j % len(TRACE_COLOURS)], width=1.3), name=name)
            self.legend.addItem(curve, name)
            self.curves.append(curve)
        # Decimate long traces to ~4 points per horizontal pixel (min/max keeps spikes visible).
        for j in range(k):
            self.curves[j].setData(t / 1000.0, v[:, j])
            self.curves[j].setDownsampling(auto=True, method="peak")
            self.curves[j].setClipToView(True)
        extra = (v.shape[1] - k) if v.ndim == 2 else 0
        what = "astrocyte" if self.variable in ASTROCYTE_VARIABLE_NAMES else "neuron"
        self.status.setText(f"{self.variable} of {k} {what}{'s' if k != 1 else ''}"
                            + (f" (+{extra} not drawn)" if extra > 0 else "")
                            + (f" · {t.size:,} samples" if t.size else ""))

    def data_arrays(self):
        t, v = self.traces()
        out = {"time_ms": t}
        for j in range(v.shape[1] if v.ndim == 2 else 0):
            idx = self.indices[j] if j < len(self.indices) else j
            out[f"{self.variable}_{idx}"] = v[:, j]
        return out


# ------------------------------------------------------------------------------------------------
class WeightPanel(PlotPanel):
    """Weight distribution over time (image), the latest histogram, and a matrix snapshot."""

    kind = "weights"

    def __init__(self, monitor_id, title, live=True, bins: int = 50, view: str = "histogram", parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.bins = bins
        self.view = view
        self.hist_plot = self.glw.addPlot(row=0, col=0)
        self.hist_plot.setLabel("bottom", "weight")
        self.hist_plot.setLabel("left", "synapses")
        self.hist_curve = self.hist_plot.plot(stepMode="center", fillLevel=0, brush=(255, 138, 101, 120),
                                              pen=pg.mkPen("#ff8a65"))
        self.time_plot = self.glw.addPlot(row=0, col=1)
        self.time_plot.setLabel("bottom", "time", units="s")
        self.time_plot.setLabel("left", "weight")
        self.time_image = pg.ImageItem()
        self.time_plot.addItem(self.time_image)
        self.matrix_plot = self.glw.addPlot(row=0, col=2)
        self.matrix_plot.setLabel("bottom", "post")
        self.matrix_plot.setLabel("left", "pre")
        self.matrix_image = pg.ImageItem()
        self.matrix_plot.addItem(self.matrix_image)
        for p in (self.hist_plot, self.time_plot, self.matrix_plot):
            p.hideButtons()
        self.matrix_plot.setVisible(view in ("matrix", "both"))
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def apply_theme(self, theme):
        super().apply_theme(theme)
        if hasattr(self, "time_image"):
            self.time_image.setLookupTable(_density_lut(theme))
            self.matrix_image.setLookupTable(pg.colormap.get("CET-D1").getLookupTable(0, 1, 256))

    def reset(self, size, duration_ms, dt):
        super().reset(size, duration_ms, dt)
        self.times: list[float] = []
        self.hists: list[np.ndarray] = []
        self.edges = None
        self.latest = None

    def add(self, chunk):
        data = chunk.weights.get(self.monitor_id)
        if data is None:
            return False
        snapshots = data if isinstance(data, list) else [data]
        for t_ms, w in snapshots:
            w = np.asarray(w, np.float64)
            flat = w[np.isfinite(w)].ravel()
            lo, hi = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 1.0)
            if self.edges is None:
                if hi <= lo:
                    hi = lo + max(abs(lo), 1e-12)  # one value (a constant start): a range around it
                span = hi - lo
                self.edges = np.linspace(lo - 0.05 * span, hi + 0.05 * span, self.bins + 1)
            elif lo < self.edges[0] or hi > self.edges[-1]:
                self._widen(lo, hi)  # learning moved weights out of the range: never clip them
            self.hists.append(np.histogram(flat, self.edges)[0])
            self.times.append(float(t_ms))
            self.latest = w
        self.has_data = self.dirty = True
        return True

    def _widen(self, lo: float, hi: float) -> None:
        """New bin edges covering ``[lo, hi]`` too; earlier histograms are re-binned by bin centre."""
        old_edges = self.edges
        lo, hi = min(lo, old_edges[0]), max(hi, old_edges[-1])
        span = hi - lo
        self.edges = np.linspace(lo - 0.05 * span, hi + 0.05 * span, self.bins + 1)
        centres = 0.5 * (old_edges[1:] + old_edges[:-1])
        target = np.clip(np.searchsorted(self.edges, centres, side="right") - 1, 0, self.bins - 1)
        self.hists = [np.bincount(target, weights=h, minlength=self.bins).astype(np.int64) for h in self.hists]

    def _redraw(self):
        if not self.hists:
            return
        self.hist_curve.setData(self.edges, self.hists[-1].astype(float))
        img = np.array(self.hists, np.float32).T  # rows: weight bins, cols: snapshots
        self.time_image.setImage(img, autoLevels=True)
        t_end = max(self.times[-1], 1e-9) / 1000.0
        self.time_image.setRect(0.0, float(self.edges[0]), t_end, float(self.edges[-1] - self.edges[0]))
        if self.latest is not None and self.latest.ndim == 2 and self.matrix_plot.isVisible():
            m = self.latest
            lim = float(np.nanmax(np.abs(m))) or 1.0
            self.matrix_image.setImage(m.astype(np.float32), autoLevels=False, levels=(-lim, lim))
        w = self.latest[np.isfinite(self.latest)] if self.latest is not None else np.zeros(0)
        self.status.setText(f"{len(self.times)} snapshot(s) · {w.size:,} synapses · mean {w.mean():.4g} · "
                            f"std {w.std():.3g}" if w.size else f"{len(self.times)} snapshot(s)")

    def data_arrays(self):
        out = {"time_ms": np.array(self.times), "bin_edges": np.asarray(self.edges if self.edges is not None else [])}
        if self.hists:
            out["histograms"] = np.array(self.hists)
        if self.latest is not None:
            out["latest_weights"] = self.latest
        return out

    def _export_csv(self, path):
        if not self.hists:
            path.write_text("", encoding="utf-8")
            return
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        header = "time_ms," + ",".join(f"{c:.6g}" for c in centres)
        mat = np.column_stack([np.array(self.times), np.array(self.hists)])
        np.savetxt(path, mat, delimiter=",", header=header, comments="", fmt="%.9g")


# ------------------------------------------------------------------------------------------------
class SignalPanel(PlotPanel):
    """A scalar signal over time: modulators (dopamine, astrocyte state), branching factor."""

    kind = "signal"

    def __init__(self, monitor_id, title, live=True, ylabel: str = "value", parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.plot = self.glw.addPlot()
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setLabel("left", ylabel)
        self.plot.hideButtons()
        self.curve = self.plot.plot(pen=pg.mkPen("#66bb6a", width=1.5))
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def reset(self, size, duration_ms, dt):
        super().reset(size, duration_ms, dt)
        self.t_parts, self.v_parts = [], []
        self.plot.setXRange(0, duration_ms / 1000.0, padding=0.0)

    def add(self, chunk):
        data = chunk.signals.get(self.monitor_id)
        if data is None:
            return False
        t, v = data
        self.t_parts.append(np.atleast_1d(np.asarray(t, np.float64)))
        self.v_parts.append(np.atleast_1d(np.asarray(v, np.float64)))
        self.has_data = self.dirty = True
        return True

    def _redraw(self):
        if not self.t_parts:
            return
        t, v = np.concatenate(self.t_parts), np.concatenate(self.v_parts)
        self.t_parts, self.v_parts = [t], [v]
        self.curve.setData(t / 1000.0, v, connect="finite")
        self.curve.setDownsampling(auto=True, method="peak")
        finite = v[np.isfinite(v)]  # a branching factor is NaN for a sample without events
        mean = f"{np.mean(finite):.4g}" if finite.size else "–"
        self.status.setText(f"latest {v[-1]:.4g} · mean {mean}")

    def data_arrays(self):
        if not self.t_parts:
            return {"time_ms": np.zeros(0), "value": np.zeros(0)}
        return {"time_ms": np.concatenate(self.t_parts), "value": np.concatenate(self.v_parts)}


# ------------------------------------------------------------------------------------------------
class ReadoutPanel(PlotPanel):
    """A trained readout's results (engine/readouts.py): per-class test accuracy, the confusion
    matrix (true class down, predicted class across, a last column of ties for the vote
    classifier) with the count in every cell, and for the softmax readout the train / validation
    accuracy per epoch with the selected epoch marked."""

    kind = "readout"
    #: above this many classes the confusion cells carry no numbers (they would not fit)
    MAX_LABELLED_CLASSES = 20

    def __init__(self, monitor_id, title, live=True, parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.class_plot = self.glw.addPlot(row=0, col=0)
        self.class_plot.setLabel("bottom", "class")
        self.class_plot.setLabel("left", "test accuracy")
        self.class_plot.setYRange(0, 1, padding=0.02)
        self.class_bars = None
        self.cm_plot = self.glw.addPlot(row=0, col=1)
        self.cm_plot.setLabel("bottom", "predicted")
        self.cm_plot.setLabel("left", "true")
        self.cm_plot.invertY(True)
        self.cm_plot.setAspectLocked(True)
        self.cm_image = pg.ImageItem()
        self.cm_plot.addItem(self.cm_image)
        self.cm_texts: list = []
        self.curve_plot = self.glw.addPlot(row=0, col=2)
        self.curve_plot.setLabel("bottom", "epoch")
        self.curve_plot.setLabel("left", "accuracy")
        self.curve_plot.setYRange(0, 1, padding=0.02)
        self.curve_plot.addLegend(offset=(-5, -5))
        self.train_curve = self.curve_plot.plot(pen=pg.mkPen("#5c9ded", width=1.5), name="train")
        self.val_curve = self.curve_plot.plot(pen=pg.mkPen("#f2c14e", width=1.5), name="validation")
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#66bb6a", style=pg.QtCore.Qt.PenStyle.DashLine))
        self.curve_plot.addItem(self.best_line)
        for p in (self.class_plot, self.cm_plot, self.curve_plot):
            p.hideButtons()
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def apply_theme(self, theme):
        super().apply_theme(theme)
        if hasattr(self, "cm_image"):
            self.cm_image.setLookupTable(_density_lut(theme))
            self.dirty = True

    def reset(self, size, duration_ms, dt):
        super().reset(size, duration_ms, dt)
        self.result: dict = {}

    def add(self, chunk):
        data = chunk.readouts.get(self.monitor_id)
        if data is None:
            return False
        self.result = dict(data)
        self.has_data = self.dirty = True
        return True

    def matrix(self) -> np.ndarray | None:
        """The drawn matrix: the confusion matrix, plus a ties column when ties were counted."""
        r = self.result
        if r.get("confusion") is None:
            return None
        cm = np.asarray(r["confusion"], np.float64)
        if r.get("ties") is not None and r.get("kind") == "vote":
            cm = np.column_stack([cm, np.asarray(r["ties"], np.float64)])
        return cm

    def _redraw(self):
        r = self.result
        if not r:
            return
        cm = self.matrix()
        for item in self.cm_texts:
            self.cm_plot.removeItem(item)
        self.cm_texts = []
        if cm is not None:
            self.cm_image.setImage(cm.astype(np.float32), autoLevels=False, levels=(0.0, max(float(cm.max()), 1.0)))
            n_true, n_cols = cm.shape
            if n_true <= self.MAX_LABELLED_CLASSES:
                # cell text contrasting with the colour map: dark on bright cells, light on dark ones
                bright_high = self.theme != "light"
                top = max(float(cm.max()), 1.0)
                for (i, j), v in np.ndenumerate(cm):
                    if v:
                        high = v > 0.5 * top
                        colour = "#111111" if high == bright_high else "#f0f0f0"
                        text = pg.TextItem(f"{int(v)}", color=colour, anchor=(0.5, 0.5))
                        text.setPos(j + 0.5, i + 0.5)
                        self.cm_plot.addItem(text)
                        self.cm_texts.append(text)
                ticks = [(c + 0.5, str(c)) for c in range(n_true)]
                self.cm_plot.getAxis("left").setTicks([ticks])
                self.cm_plot.getAxis("bottom").setTicks([ticks + ([(n_true + 0.5, "tie")] if n_cols > n_true else [])])
        per_class = r.get("per_class_accuracy")
        if per_class is not None:
            acc = np.nan_to_num(np.asarray(per_class, np.float64))
            if self.class_bars is not None:
                self.class_plot.removeItem(self.class_bars)
            self.class_bars = pg.BarGraphItem(x=np.arange(acc.size), height=acc, width=0.7, brush="#5c9ded")
            self.class_plot.addItem(self.class_bars)
        val = r.get("validation_curve")
        train = r.get("train_curve")
        if train is not None and np.size(train):
            epochs = np.arange(1, np.size(train) + 1)
            self.train_curve.setData(epochs, np.asarray(train, np.float64))
            if val is not None and np.isfinite(np.asarray(val, np.float64)).any():
                self.val_curve.setData(epochs, np.asarray(val, np.float64))
            self.best_line.setValue(float(r.get("best_epoch", 0)))
            self.best_line.show()
        else:
            self.best_line.hide()
        self.curve_plot.setVisible(train is not None and bool(np.size(train)))
        text = f"test accuracy {100 * float(r.get('accuracy', np.nan)):.1f} %"
        if "n_test" in r:
            text += f" on {int(r['n_test'])} samples"
        if r.get("kind") == "vote":
            text += f" · {int(r.get('n_ties', 0))} ties (counted wrong)"
        if r.get("kind") == "softmax" and "best_epoch" in r:
            text += f" · epoch {int(r['best_epoch'])} selected"
        for row in r.get("baselines", [])[1:]:  # the same liquid and readout without astrocyte / plasticity
            text += f" · {row['model']}: {100 * row['accuracy']:.1f} % (BF {row['branching_factor']:.2f}"
            text += f", SP − AP {row['sp_minus_ap']:.1f})" if np.isfinite(row.get("sp_minus_ap", np.nan)) else ")"
        self.status.setText(text)

    def data_arrays(self):
        out = {k: np.asarray(v) for k, v in self.result.items()
               if k != "baselines" and np.asarray(v).dtype.kind in "biuf"}
        if "accuracy" not in out:
            out["accuracy"] = np.array(np.nan)
        return out

    def _export_csv(self, path: Path):
        """The drawn matrix: one row per true class, one column per predicted class (and ties)."""
        cm = self.matrix()
        if cm is None:
            path.write_text("", encoding="utf-8")
            return
        n = cm.shape[0]
        header = "true\\predicted," + ",".join(str(c) for c in range(n)) + (",tie" if cm.shape[1] > n else "")
        np.savetxt(path, np.column_stack([np.arange(n), cm]), delimiter=",", header=header, comments="", fmt="%d")


# ------------------------------------------------------------------------------------------------
class KernelQualityPanel(PlotPanel):
    """A kernel-quality node's ranks (MODELS.md §6.4): SP (clean inputs) and AP (noisy inputs) as
    bars under the largest rank the drawn matrices can have; both arrive when the run ends."""

    kind = "kernel_quality"

    def __init__(self, monitor_id, title, live=True, parent=None):
        super().__init__(monitor_id, title, live, parent)
        self.live_box.hide()  # the ranks exist only once the run (and its noisy twin) ended
        self.plot = self.glw.addPlot()
        self.plot.setLabel("left", "mean rank")
        self.plot.getAxis("bottom").setTicks([[(0, "SP (clean)"), (1, "AP (noisy)")]])
        self.plot.setXRange(-0.6, 1.6, padding=0.0)
        self.plot.hideButtons()
        self.bars = None
        self.ceiling = pg.InfiniteLine(angle=0, pen=pg.mkPen("#9e9e9e", style=pg.QtCore.Qt.PenStyle.DashLine))
        self.plot.addItem(self.ceiling)
        self.reset(1, 1000.0, 0.1)
        self.running = False
        self.apply_theme(self.theme)

    def reset(self, size, duration_ms, dt):
        super().reset(size, duration_ms, dt)
        self.result: dict = {}

    def add(self, chunk):
        data = getattr(chunk, "kernel_quality", {}).get(self.monitor_id)
        if data is None:
            return False
        self.result = dict(data)
        self.has_data = self.dirty = True
        return True

    def _redraw(self):
        r = self.result
        if not r:
            return
        heights = [float(r["SP"]), float(r.get("AP", np.nan))]
        if self.bars is not None:
            self.plot.removeItem(self.bars)
        self.bars = pg.BarGraphItem(x=[0, 1], height=np.nan_to_num(heights), width=0.6,
                                    brushes=["#5c9ded", "#f2c14e"])
        self.plot.addItem(self.bars)
        # the most a drawn matrix can have: min(neurons, classes x per_class)
        top = float(min(r["n_neurons"], r["n_columns"]))
        self.ceiling.setValue(top)
        self.plot.setYRange(0, top, padding=0.05)
        size = (f"rank of {int(r['n_neurons'])} neurons × {int(r['n_columns'])} samples, mean of "
                f"{int(r['draws'])} draws")
        if "AP" in r:
            self.status.setText(f"SP {heights[0]:.1f} · AP {heights[1]:.1f} · SP − AP {float(r['SP_minus_AP']):.1f} · {size}")
        else:
            why = "pixel_noise = 0" if float(r.get("pixel_noise", 0.0)) == 0 else "waiting for the run on noisy inputs"
            self.status.setText(f"SP {heights[0]:.1f} · no AP ({why}) · {size}")

    def data_arrays(self):
        return {k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in self.result.items()}


# ------------------------------------------------------------------------------------------------
def panel_for_node(node) -> PlotPanel | None:
    """The panel that shows a monitor (or modulator / readout) node's data."""
    live = bool(node.values.get("live", True))
    title = f"{node.label}"
    t = node.type_id
    if t == "monitor.spikes":
        return RasterPanel(node.id, title, live)
    if t == "monitor.rate":
        return RatePanel(node.id, title, live, bin_ms=node.bin, smoothing_ms=node.smoothing)
    if t == "monitor.state":
        return StatePanel(node.id, title, live, variable=node.variable, indices=node.indices)
    if t == "monitor.weights":
        return WeightPanel(node.id, title, live, bins=node.bins, view=node.view)
    if t == "monitor.branching":
        return SignalPanel(node.id, title, live, ylabel="branching factor")
    if t == "monitor.kernel_quality":
        return KernelQualityPanel(node.id, title)
    if t.startswith("modulator."):
        return SignalPanel(node.id, title, True, ylabel="signal")
    if t.startswith("readout."):
        return ReadoutPanel(node.id, title, True)
    return None


def monitor_size(graph, node) -> int:
    """How many rows a monitor's plot needs (the watched population's size)."""
    for port in node.inputs():
        for src, _ in graph.upstream(node.id, port.name):
            size = src.size()
            if size:
                return int(size)
    return 1


class PlotManager(QObject):
    """Owns the plot panels of one window and routes chunks to them."""

    panelAdded = Signal(object)
    panelRemoved = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.panels: dict[str, PlotPanel] = {}
        self.running = False

    def sync(self, graph) -> None:
        """One panel per monitor node (modulators and readouts get one when data arrives)."""
        wanted = {nid: node for nid, node in graph.nodes.items() if node.type_id.startswith("monitor.")}
        for nid in list(self.panels):
            if nid not in graph:
                panel = self.panels.pop(nid)
                self.panelRemoved.emit(panel)
        for nid, node in wanted.items():
            panel = self.panels.get(nid)
            if panel is None:
                panel = panel_for_node(node)
                if panel is None:
                    continue
                self.panels[nid] = panel
                self.panelAdded.emit(panel)
            else:
                panel.title = node.label
                panel.title_label.setText(node.label)
                panel.set_live(bool(node.values.get("live", True)))

    def begin_run(self, graph, duration_ms: float, dt: float, sizes: dict | None = None):
        self.running = True
        self.graph = graph
        self.duration_ms, self.dt = duration_ms, dt
        for nid, panel in self.panels.items():
            size = (sizes or {}).get(nid)
            if size is None and graph is not None and nid in graph:
                size = monitor_size(graph, graph.node(nid))
            panel.reset(size or 1, duration_ms, dt)
            panel.status.setText("waiting for the first chunk…")

    def add_chunks(self, chunks: list[LiveChunk]) -> None:
        for chunk in chunks:
            for panel in self.panels.values():
                panel.add(chunk)
            # Panels for modulators / readouts appear when they first send data.
            for store, in ((chunk.signals,), (chunk.readouts,)):
                for nid in store:
                    if nid not in self.panels and self.graph is not None and nid in self.graph:
                        panel = panel_for_node(self.graph.node(nid))
                        if panel is not None:
                            panel.reset(1, self.duration_ms, self.dt)
                            panel.add(chunk)
                            self.panels[nid] = panel
                            self.panelAdded.emit(panel)

    def tick(self) -> None:
        now = time.perf_counter()
        for panel in self.panels.values():
            panel.maybe_redraw(now)

    def finish(self) -> None:
        self.running = False
        for panel in self.panels.values():
            panel.finish()

    def apply_theme(self, theme: str):
        for panel in self.panels.values():
            panel.apply_theme(theme)
            panel.redraw()
