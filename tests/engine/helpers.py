"""Small plan builders shared by the engine tests."""

from __future__ import annotations

import numpy as np

from engine.plan import (MonitorPlan, PopulationPlan, ProjectionPlan, SimulationPlan,
                         SpikeTrainSourcePlan)
from engine.runner import Simulation


def single_neuron_plan(model="lif", dt=0.1, duration_ms=1000.0, params=None, receptors=None, scheme=None,
                       record=("V",), size=1, dtype="float64", initial_state=None):
    pop = PopulationPlan("n", model, size, params=dict(params or {}), receptors=list(receptors or []), scheme=scheme,
                         initial_state=dict(initial_state or {}))
    monitors = [MonitorPlan("spikes", "n", "spikes")]
    if record:
        monitors.append(MonitorPlan("state", "n", "state", variables=tuple(record)))
    return SimulationPlan(dt=dt, n_steps=int(round(duration_ms / dt)), dtype=dtype, populations=[pop], monitors=monitors)


def run_plan(plan, backend="numba", duration_ms=None, **kw):
    sim = Simulation(plan, backend=backend, **kw)
    return sim.run(duration_ms)


def spike_steps(results, monitor="spikes", index=None):
    steps, idx = results.spikes[monitor]
    if index is not None:
        steps = steps[idx == index]
    return np.asarray(steps, np.int64)


def pulse_plan(model, receptor, weight, delay=1, dt=0.1, duration_ms=20.0, params=None, spike_step=0):
    """One source spike at ``spike_step`` into a single neuron through one synapse."""
    pop = PopulationPlan("n", model, 1, params=dict(params or {}), receptors=[receptor])
    src = SpikeTrainSourcePlan("src", size=1, steps=[spike_step], indices=[0])
    proj = ProjectionPlan.from_coo("syn", "src", "n", 1, [0], [0], [weight], [delay], weight_dtype=np.float64)
    monitors = [MonitorPlan("state", "n", "state", variables=("V",))]
    return SimulationPlan(dt=dt, n_steps=int(round(duration_ms / dt)), dtype="float64", populations=[pop],
                          sources=[src], projections=[proj], monitors=monitors)


def isi_cv(steps, idx, n):
    """Mean coefficient of variation of the ISIs over neurons with at least 3 spikes."""
    cvs = []
    order = np.lexsort((steps, idx))
    steps, idx = steps[order], idx[order]
    bounds = np.searchsorted(idx, np.arange(n + 1))
    for i in range(n):
        s = steps[bounds[i]:bounds[i + 1]]
        if s.size >= 3:
            isi = np.diff(s)
            cvs.append(isi.std() / isi.mean())
    return float(np.mean(cvs)) if cvs else float("nan")
