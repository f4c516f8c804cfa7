"""Astrocyte state in the GUI (issue 11): a run of a project with a tripartite astrocyte fills the
state monitors' plots with Ca, IP3, h and U_0, the legend naming the variable and its unit."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from engine.project import Project, SimulationSettings
from engine.runner import Simulation
from tests.engine.test_astrocyte_monitor import tripartite_graph


def test_tripartite_state_is_plotted_with_variable_and_unit(make_window, qtbot, dialogs, tmp_path):
    project = Project(settings=SimulationSettings(dt=1.0, duration=4000.0, dtype="float64"))
    _, monitors = tripartite_graph(graph=project.graph)
    path = tmp_path / "astrocyte.swproj"
    project.save(path)
    win = make_window()
    assert win.open_path(path)
    assert win.start_run()
    qtbot.waitUntil(lambda: not win.run.running, timeout=180_000)
    QApplication.processEvents()
    assert dialogs.errors() == []
    headless = Simulation(Project.load(path)).run()
    legends = {}
    for var, mon in monitors.items():
        panel = win.plots.panels[mon]
        panel._redraw()
        t, v = panel.traces()
        steps, values = headless.states[mon][var]
        np.testing.assert_array_equal(t, steps * 1.0)
        np.testing.assert_allclose(v, values)
        legends[var] = [label.text for _, label in panel.legend.items]
        assert "astrocyte" in panel.status.text()
    assert legends == {"Ca": ["Ca²⁺ (µM)"], "IP3": ["IP3 (µM)"], "h": ["h, IP3R de-inactivation (dimensionless)"],
                       "U_0": ["U_0, release probability (dimensionless)"]}
    assert win.plots.panels[monitors["Ca"]].plot.getAxis("left").labelText == "Ca (µM)"
    assert win.plots.panels[monitors["h"]].plot.getAxis("left").labelText == "h"
    ca_panel = win.plots.panels[monitors["Ca"]]
    win.plot_docks[monitors["Ca"]].raise_()
    ca_panel.resize(700, 320)
    QApplication.processEvents()
    ca_panel.grab().save(str(tmp_path / "astrocyte_ca.png"))
    ca_panel.grab().save("/tmp/astrocyte_ca.png")
