"""Reference networks built directly as simulation plans (tests, benchmarks, examples)."""

from __future__ import annotations

import numpy as np

from engine.connectivity import fixed_probability
from engine.plan import (MonitorPlan, PopulationPlan, ProjectionPlan, ReceptorPlan, SimulationPlan)

#: Vogels & Abbott (2005) CUBA network as in Brette et al. (2007) and Brian2's ``examples/CUBA.py``.
CUBA_PARAMS = dict(tau_m=20.0, E_L=-49.0, V_th=-50.0, V_reset=-60.0, t_ref=5.0, tau_exc=5.0, tau_inh=10.0,
                   w_exc=1.62, w_inh=-9.0, p=0.02, exc_fraction=0.8)


def cuba_plan(n: int = 4000, seed: int = 0, dt: float = 0.1, duration_ms: float = 1000.0,
              synapses_per_neuron: float | None = 80.0, dtype: str = "float32", monitor: str = "spikes",
              delay_steps: int = 1, **overrides) -> SimulationPlan:
    """The CUBA benchmark network (Brette et al. 2007, Brian2 ``CUBA.py``) as a plan.

    Model (current-based LIF, currents expressed in mV, i.e. ``R = 1``)::

        tau_m dV/dt = -(V - E_L) + g_e + g_i        (V clamped for t_ref after a spike)
        tau_e dg_e/dt = -g_e ;   tau_i dg_i/dt = -g_i
        V >= V_th  ->  V = V_reset

    with ``tau_m = 20 ms, E_L = -49 mV, V_th = -50 mV, V_reset = -60 mV, t_ref = 5 ms,
    tau_e = 5 ms, tau_i = 10 ms``; 80 % excitatory neurons (``g_e += 1.62 mV``), 20 % inhibitory
    (``g_i += -9 mV``); every ordered pair connected with probability ``p`` (autapses allowed, as in
    Brian2's ``connect(p=...)``); ``V(0) ~ U[V_reset, V_th)``; no external input (``E_L`` above
    threshold drives the network). Brian2's zero synaptic delay is ``d = 1`` step here.

    Parameters
    ----------
    n : int
        Number of neurons (4000 in the original).
    synapses_per_neuron : float, optional
        Sets ``p = synapses_per_neuron / n`` (80 gives the original p = 0.02 at n = 4000 and keeps the
        in-degree fixed for larger n); None keeps ``p = 0.02``.
    monitor : {"spikes", "none"}
        Record all spikes of the population (monitor ``"spikes"``) or nothing.
    overrides
        Replace entries of :data:`CUBA_PARAMS`.
    """
    prm = dict(CUBA_PARAMS, **overrides)
    p = prm["p"] if synapses_per_neuron is None else min(1.0, synapses_per_neuron / n)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0xC0BA,)))
    n_exc = int(round(prm["exc_fraction"] * n))
    is_exc = np.arange(n) < n_exc
    v0 = prm["V_reset"] + rng.random(n) * (prm["V_th"] - prm["V_reset"])
    pop = PopulationPlan(
        "P", "lif", n,
        params=dict(tau_m=prm["tau_m"], E_L=prm["E_L"], V_th=prm["V_th"], V_reset=prm["V_reset"],
                    t_ref=prm["t_ref"], R=1.0, I_e=0.0),
        initial_state=dict(V=v0),
        receptors=[ReceptorPlan("exc", "exponential", prm["tau_exc"]), ReceptorPlan("inh", "exponential", prm["tau_inh"])],
    )
    wdtype = np.float32 if dtype == "float32" else np.float64
    projections = []
    for name, rows, receptor, w in (("Ce", is_exc, "exc", prm["w_exc"]), ("Ci", ~is_exc, "inh", prm["w_inh"])):
        indptr, indices = fixed_probability(n, n, p, rng, allow_autapses=True, same_population=True, pre_rows=rows)
        nsyn = indices.size
        projections.append(ProjectionPlan(name, "P", "P", receptor, indptr, indices,
                                          np.full(nsyn, w, wdtype), np.full(nsyn, delay_steps, np.uint8)))
    monitors = [MonitorPlan("spikes", "P", "spikes")] if monitor == "spikes" else []
    return SimulationPlan(dt=dt, n_steps=int(round(duration_ms / dt)), dtype=dtype, seed=int(seed),
                          populations=[pop], projections=projections, monitors=monitors,
                          metadata=dict(network="cuba", n=n, p=p))
