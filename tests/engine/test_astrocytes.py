"""Tripartite (G-ChI) astrocyte with gliotransmission: MODELS.md §5.2 tests TRI-1..3 and the
astrocyte acting on a projection's release inside a network run."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernels import astrocytes as ak
from engine.kernels import plasticity as pk

DT_S = 0.001  # RK4 at 1 ms, as the spec's reference runs


def crossings(Cs, theta=0.5):
    up = np.flatnonzero((Cs[1:] >= theta) & (Cs[:-1] < theta)) + 1
    return (up + 1) * DT_S  # time at the end of the step that crossed


@pytest.mark.parametrize("I_bias,want,max_c", [(0.8, [2.085], 1.0446), (1.25, [1.059, 10.342], 1.1869)])
def test_tri1_ex3_calcium_events(I_bias, want, max_c):
    p = ak.preset_vector("ex3_gliotransmission", I_bias=I_bias)
    s = ak.initial_state(0.4)
    Cs, events = ak.tripartite_trajectory(s, p, DT_S, int(17.1 / DT_S), np.zeros(0, np.int64), 0.0)
    np.testing.assert_allclose(crossings(Cs), want, atol=0.020)
    assert Cs.max() == pytest.approx(max_c, rel=0.01)
    assert events.size == len(want), "one gliotransmitter release per upward crossing"


def test_tri2_ex2_synapse_driven_astrocyte():
    p = ak.preset_vector("ex2_synapse_driven")
    s = ak.initial_state(0.0)
    n = int(30 / DT_S)
    spikes = np.arange(2000, n, 2000).astype(np.int64)  # 0.5 Hz from 2 s
    Cs, _ = ak.tripartite_trajectory(s, p, DT_S, n, spikes, p[ak.P_RHOC] * p[ak.P_YT])
    np.testing.assert_allclose(crossings(Cs), [2.44, 7.60, 12.15, 16.61, 20.81, 24.89, 28.92], atol=0.050)
    assert Cs.max() == pytest.approx(1.159, rel=0.01)


def test_tri3_release_probability_with_gliotransmitter():
    """Gamma_S = 0: the released fractions of STP-1 (U = 0.6); Gamma_S = 0.5, alpha = 0: U = 0.3."""
    times = [0, 50, 100, 150, 200] + list(range(300, 401, 10))
    for gamma, first in ((0.0, 0.6), (0.5, 0.3)):
        U = ak.release_probability(gamma, 0.6, 0.0)
        assert U == pytest.approx(first)
        u, x, last, got = 0.0, 1.0, None, []
        for t in times:
            u, x, r = pk.tm_release(u, x, -1.0 if last is None else float(t - last), U, 1000 / 3.33, 1000 / 2.0)
            got.append(r)
            last = t
        want = {0.6: [0.6, 0.36714, 0.15396, 0.10351], 0.3: [0.3, 0.34809, 0.25625, 0.16844]}[first]
        np.testing.assert_allclose(got[:4], want, atol=6e-6)
    assert ak.release_probability(0.5, 0.6, 1.0) == pytest.approx(0.8)


def test_tripartite_astrocyte_lowers_release_in_a_network():
    """Graph -> run: an ex3 astrocyte (I_bias 1.25 µM: its first calcium event at 1.059 s) covers a
    projection; after the event its gliotransmitter lowers U_0 (release-decreasing), so the same
    presynaptic train releases less than with the astrocyte left out."""
    from engine.graph import ModelGraph
    from engine.runner import Simulation

    ids = []

    def build(with_astrocyte):
        g = ModelGraph()
        src = g.add_node("input.spike_train", "Pre", (0, 0), n=1, times=tuple(float(t) for t in range(0, 3000, 100)),
                         indices=(0,) * 30)
        pop = g.add_node("neuron.lif", "Post", (400, 0), n=1, synapse="exponential", tau_syn_exc=10_000.0)
        prj = g.add_node("synapse.projection", "Syn", (200, 0), connectivity="all_to_all", weight=10.0,
                         stp="tsodyks_markram", stp_U=0.6, stp_tau_facil=300.3, stp_tau_rec=500.0)
        g.connect(src.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", pop.id, "input")
        mon = g.add_node("monitor.state", "I", (600, 0), variable="I_exc", indices=(0,))
        ids.append(mon.id)
        g.connect(pop.id, "state", mon.id, "population")
        if with_astrocyte:
            astro = g.add_node("modulator.tripartite_astrocyte", "Astrocyte", (200, 200), I_bias=1.25, U_0=0.6)
            g.connect(astro.id, "modulation", prj.id, "modulation")
        return g

    results = {}
    for flag in (False, True):
        graph = build(flag)
        mon_id = ids[-1]
        sim = Simulation(graph, settings=dict(dt=1.0, duration=3000.0, dtype="float64"))
        res = sim.run()
        (_, values), = res.states[mon_id].values()
        jumps = np.diff(values[:, 0])[np.arange(0, 3000, 100)]  # current added by each spike
        results[flag] = jumps
        if flag:
            (state,) = sim.backend.tripartite_states().values()
    before, after = np.arange(30) * 100 < 1059, np.arange(30) * 100 > 1100
    np.testing.assert_allclose(results[True][before], results[False][before], rtol=1e-12)
    assert np.all(results[True][after] < results[False][after] * 0.95)
    assert state[ak.TRI_GS] > 0.05, "gliotransmitter receptors are activated"
