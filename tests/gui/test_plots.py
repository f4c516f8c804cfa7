"""Plot panels: raster controls and density view, exports, weights / signals / readouts."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from app.plots import RasterPanel, ReadoutPanel, SignalPanel, StatePanel, WeightPanel, RatePanel
from app.run_controller import LiveChunk


def _spike_chunks(n=2000, dur=500.0, rate=20.0, chunks=5, seed=1):
    rng = np.random.default_rng(seed)
    per = dur / chunks
    out = []
    for k in range(chunks):
        m = rng.poisson(n * rate * per * 1e-3)
        t = np.sort(rng.uniform(k * per, (k + 1) * per, m))
        i = rng.integers(0, n, m).astype(np.int32)
        i[: m // 4] = rng.integers(0, 50, m // 4)  # the first 50 neurons fire more
        out.append(LiveChunk(k * per, (k + 1) * per, 0.1, spikes={"mon": (t, i)}))
    return out


@pytest.fixture
def raster(qtbot):
    panel = RasterPanel("mon", "Raster")
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    return panel


def test_raster_points_density_and_controls(raster):
    raster.reset(2000, 500.0, 0.1)
    chunks = _spike_chunks()
    for c in chunks:
        assert raster.add(c)
    total = sum(c.n_spikes for c in chunks)
    assert raster.n_spikes == total and raster.density.sum() == total
    raster.max_points.setCurrentIndex(0)       # 20k points at most
    raster.mode.setCurrentIndex(0)             # auto
    raster.redraw()
    assert raster.use_density() and raster.image.isVisible() and not raster.scatter.isVisible()
    assert "density (" in raster.status.text()
    raster.mode.setCurrentIndex(1)             # points, decimated
    raster.redraw()
    assert raster.scatter.isVisible() and len(raster.scatter.data) <= 20_000
    assert "1 in" in raster.status.text()
    raster.neurons.setCurrentIndex(1)          # first 100 neurons
    raster.redraw()
    assert raster.n_rows == 100 and raster.visible_count() < total
    raster.neurons.setCurrentIndex(3)          # most active 200, by rate
    raster.order.setCurrentIndex(1)
    raster.redraw()
    top = np.argsort(-raster.counts)[0]
    assert raster.row_of[top] == 0             # the most active neuron is the first row
    # population rate: mean matches spikes / (n * T)
    x, y = raster.rate_curve.getData()
    assert abs(np.mean(y) - total / (2000 * 0.5)) / (total / 1000) < 0.05


def test_raster_exports(raster, tmp_path):
    raster.reset(2000, 500.0, 0.1)
    for c in _spike_chunks():
        raster.add(c)
    raster.redraw()
    for suffix in ("png", "svg", "csv", "npz"):
        path = raster.export(tmp_path / f"raster.{suffix}")
        assert path.exists() and path.stat().st_size > 100, suffix
    data = np.load(tmp_path / "raster.npz")
    assert data["time_ms"].size == raster.n_spikes
    csv = np.loadtxt(tmp_path / "raster.csv", delimiter=",", skiprows=1)
    assert csv.shape == (raster.n_spikes, 2)
    assert (tmp_path / "raster.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "raster.png").read_bytes()[:4] == b"\x89PNG"


def test_rate_state_weight_signal_readout_panels(qtbot, tmp_path):
    rate = RatePanel("r", "Rate", bin_ms=5.0, smoothing_ms=5.0)
    state = StatePanel("s", "V", variable="V", indices=(0, 1, 2))
    weights = WeightPanel("w", "Weights", bins=20, view="both")
    signal = SignalPanel("d", "Dopamine")
    readout = ReadoutPanel("o", "Readout")
    for p in (rate, state, weights, signal, readout):
        qtbot.addWidget(p)
        p.resize(700, 300)
        p.show()
        p.reset(100, 1000.0, 0.1)
    t = np.arange(0, 1000, 0.1)
    counts = np.random.default_rng(0).poisson(0.2, t.size)
    v = -65 + 5 * np.sin(np.outer(t, [0.01, 0.02, 0.03]))
    rng = np.random.default_rng(1)
    chunk = LiveChunk(0.0, 1000.0, 0.1, rates={"r": counts},
                      states={"s": {"V": (t, v)}},
                      weights={"w": [(500.0, rng.normal(1, 0.1, (30, 40))), (1000.0, rng.normal(1.2, 0.2, (30, 40)))]},
                      signals={"d": (t[::100], np.exp(-t[::100] / 300))},
                      readouts={"o": {"accuracy": 0.82, "confusion": np.eye(10) * 8 + 1}})
    for p in (rate, state, weights, signal, readout):
        assert p.add(chunk)
        p.finish()
        assert p.redraw_count >= 1
        for suffix in ("csv", "npz", "png"):
            assert p.export(tmp_path / f"{p.monitor_id}.{suffix}").exists()
    tr, r = rate.rate()
    assert abs(r.mean() - counts.mean() / (100 * 0.1e-3)) < 0.1 * r.mean()
    assert len(state.curves) == 3
    assert weights.data_arrays()["histograms"].shape == (2, 20)
    assert "accuracy 82.0 %" in readout.status.text()
    assert "latest" in signal.status.text()


def test_monitor_panels_follow_the_graph(cuba_window):
    win = cuba_window
    kinds = sorted(p.kind for p in win.plots.panels.values())
    assert kinds == ["raster", "rate", "state"]
    mon = win.scene.add_node("monitor.weights", (900, 500))
    assert win.plots.panels[mon].kind == "weights" and mon in win.plot_docks
    win.doc.undo_stack.undo()
    QApplication.processEvents()
    assert mon not in win.plots.panels and mon not in win.plot_docks


def test_membrane_legend_does_not_cover_the_traces(qtbot):
    """Issue 9: the legend of a state plot sat inside the plot and hid the traces."""
    from PySide6.QtWidgets import QApplication

    state = StatePanel("s", "V", variable="V", indices=(0, 1, 2))
    qtbot.addWidget(state)
    state.resize(700, 300)
    state.show()
    state.reset(3, 1000.0, 0.1)
    t = np.arange(0, 1000, 0.1)
    state.add(LiveChunk(0.0, 1000.0, 0.1, states={"s": {"V": (t, -65 + 5 * np.sin(np.outer(t, [0.01, 0.02, 0.03])))}}))
    state._redraw()
    QApplication.processEvents()
    names = [label.text for _, label in state.legend.items]
    assert names == ["V #0 (mV)", "V #1 (mV)", "V #2 (mV)"]
    view = state.plot.vb.sceneBoundingRect()
    assert not state.legend.sceneBoundingRect().intersects(view)
    assert view.height() > 150, "the traces keep most of the panel"
    state.grab().save("/tmp/state_legend.png")


def test_weight_histogram_widens_when_learning_leaves_the_first_range(qtbot):
    """A constant start (every weight 0.5) must not pin the histogram's range: weights learned up
    to 4 are counted in their own bins, not clipped into the last one."""
    weights = WeightPanel("w", "Weights", bins=20)
    qtbot.addWidget(weights)
    weights.reset(1, 1000.0, 0.1)
    weights.add(LiveChunk(0.0, 10.0, 0.1, weights={"w": [(0.0, np.full(100, 0.5))]}))
    later = np.r_[np.full(50, 0.5), np.linspace(1.0, 4.0, 50)]
    weights.add(LiveChunk(10.0, 20.0, 0.1, weights={"w": [(10.0, later)]}))
    assert weights.edges[0] < 0.5 and weights.edges[-1] > 4.0
    assert [int(h.sum()) for h in weights.hists] == [100, 100]
    np.testing.assert_array_equal(weights.hists[-1], np.histogram(later, weights.edges)[0])
    first = weights.hists[0]  # re-binned by bin centre: within one bin of where it was
    centre = 0.5 * (weights.edges[np.argmax(first)] + weights.edges[np.argmax(first) + 1])
    assert first.max() == 100 and abs(centre - 0.5) <= weights.edges[1] - weights.edges[0]
