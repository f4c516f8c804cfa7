"""The NEST mappings of short-term plasticity, triplet and reward STDP and the adaptive LIF
(engine/exporters/nest_mapping.py), each run on numba and on NEST and compared.

Deterministic protocols (spike trains through delta synapses, whose spike steps NEST reproduces
exactly) are compared with MODELS.md's golden values; Poisson-driven networks are compared
statistically over two seeds, with the bands stated in each test.
"""

import importlib.util

import numpy as np
import pytest

from engine.plan import (MonitorPlan, PoissonSourcePlan, PopulationPlan, ProjectionPlan, ReceptorPlan, RewardPlan,
                         RulePlan, SimulationPlan, SpikeTrainSourcePlan, STPPlan)
from engine.runner import Simulation

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nest") is None,
                                reason="nest-simulator is not installed (pip install -e '.[nest]')")

DT = 0.1


def both(make_plan, duration_ms: float):
    """Results of ``make_plan()`` on numba and on NEST."""
    return Simulation(make_plan()).run(duration_ms), Simulation(make_plan(), backend="nest").run(duration_ms)


def quiet_lif(name: str, n: int, kind: str = "delta") -> PopulationPlan:
    """LIF neurons that fire only when forced (a 100 mV delta input)."""
    return PopulationPlan(name, "lif", n, params=dict(tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0,
                                                      R=1.0),
                          receptors=[ReceptorPlan("exc", kind, 2.0), ReceptorPlan("inh", kind, 2.0)])


# ------------------------------------------------------------------------------------------------
# Tsodyks-Markram short-term plasticity -> tsodyks2_synapse
# ------------------------------------------------------------------------------------------------

STP1_TIMES = [0, 50, 100, 150, 200] + list(range(300, 401, 10))
#: MODELS.md §2.3, test STP-1: released fractions, U = 0.6, Omega_f = 3.33 /s, Omega_d = 2 /s
STP1_RELEASE = [0.6, 0.36714, 0.15396, 0.10351, 0.09584, 0.16293, 0.04291, 0.02196, 0.02010, 0.01988, 0.01983,
                0.01981, 0.01980, 0.01979, 0.01979, 0.01979]


def stp_plan() -> SimulationPlan:
    """STP-1's presynaptic train (shifted by 10 ms: NEST's relays cannot emit before step 2) through a
    10 mV delta synapse onto a neuron that never fires: each jump of V is 10 mV times the release."""
    steps = np.rint((np.asarray(STP1_TIMES) + 10.0) / DT).astype(np.int64)
    src = SpikeTrainSourcePlan("pre", size=1, steps=steps, indices=np.zeros(steps.size, np.int32))
    proj = ProjectionPlan.from_coo("pre->post", "pre", "post", 1, [0], [0], [10.0], weight_dtype=np.float64)
    proj.stp = STPPlan(U=0.6, tau_facil=1000.0 / 3.33, tau_rec=1000.0 / 2.0)
    post = quiet_lif("post", 1)
    post.params["V_th"] = 100.0
    return SimulationPlan(dt=DT, n_steps=0, dtype="float64", populations=[post], sources=[src], projections=[proj],
                          monitors=[MonitorPlan("V", "post", "state", variables=("V",))])


def released_fractions(v: np.ndarray, weight: float = 10.0, tau_m: float = 10.0, e_l: float = -70.0) -> np.ndarray:
    """The jumps of a delta-synapse membrane trace above its exact decay, in units of the weight."""
    jump = v[1:] - (e_l + (v[:-1] - e_l) * np.exp(-DT / tau_m))
    return jump[jump > 1e-9] / weight


def test_tsodyks_markram_releases_match_stp1_on_both_backends():
    ours, nest = both(stp_plan, 450.0)
    v_ours, v_nest = ours.states["V"]["V"][1][:, 0], nest.states["V"]["V"][1][:, 0]
    np.testing.assert_allclose(released_fractions(v_ours), STP1_RELEASE, atol=2e-5)
    np.testing.assert_allclose(released_fractions(v_nest), STP1_RELEASE, atol=2e-5)
    np.testing.assert_allclose(v_nest, v_ours, atol=1e-9)  # the same trace, step for step


# ------------------------------------------------------------------------------------------------
# triplet STDP -> stdp_triplet_synapse
# ------------------------------------------------------------------------------------------------

#: MODELS.md §4.3, test TRIP-1: total weight change of 60 pairs, visual-cortex all-to-all set
TRIP1 = {(20.0, 10.0): 0.24696, (50.0, 10.0): 0.74091, (20.0, -10.0): -0.35162, (50.0, -10.0): 0.72725}


def pairing_plan(protocols, rule: RulePlan, n_pairs: int = 60, extra=None, flush_ms: float = 0.0) -> SimulationPlan:
    """One pre channel and one post neuron per protocol ``(rho_hz, delta_ms)``: pre spikes at
    ``100 + n 1000/rho`` ms reach the post neuron through the plastic synapse (weight 1 mV), and a
    forcing channel makes the post neuron fire ``delta`` ms after (before) each pre spike.

    ``flush_ms``: one more presynaptic spike this long after the last pair. NEST's STDP synapses apply
    the potentiation of postsynaptic spikes when the next presynaptic spike passes, so without it
    NEST's weights would miss the last pair's potentiation; the extra spike's depression is negligible
    (the post traces have decayed by e^-(flush_ms / tau))."""
    n = len(protocols)
    steps, channels = [], []
    for i, (rho, delta) in enumerate(protocols):
        pre = 100.0 + np.arange(n_pairs) * 1000.0 / rho
        post = pre + delta - DT  # the forcing spike arrives one step later
        if flush_ms:
            pre = np.append(pre, pre[-1] + flush_ms)
        for times, channel in ((pre, i), (post, n + i)):
            steps.append(np.rint(times / DT).astype(np.int64))
            channels.append(np.full(times.size, channel, np.int32))
    steps, channels = np.concatenate(steps), np.concatenate(channels)
    order = np.argsort(steps, kind="stable")
    src = SpikeTrainSourcePlan("in", size=2 * n, steps=steps[order], indices=channels[order])
    plastic = ProjectionPlan.from_coo("in->post", "in", "post", 2 * n, np.arange(n), np.arange(n), np.ones(n),
                                      weight_dtype=np.float64)
    plastic.rules.append(rule)
    plastic.plastic = True
    forcing = ProjectionPlan.from_coo("force->post", "in", "post", 2 * n, np.arange(n, 2 * n), np.arange(n),
                                      np.full(n, 100.0), weight_dtype=np.float64)
    return SimulationPlan(dt=DT, n_steps=0, dtype="float64", populations=[quiet_lif("post", n)], sources=[src],
                          projections=[plastic, forcing], monitors=[MonitorPlan("post", "post")],
                          modulators=list(extra or []))


def final_weights(results_sim: Simulation, name: str = "in->post") -> np.ndarray:
    return np.asarray(results_sim.backend.projection_weights(name), np.float64)


def run_both(make_plan, duration_ms: float):
    ours, nest = Simulation(make_plan()), Simulation(make_plan(), backend="nest")
    return ours, ours.run(duration_ms), nest, nest.run(duration_ms)


def test_triplet_pairing_protocol_matches_trip1_on_both_backends():
    """NEST pairs the spikes one step (0.1 ms) further apart than our axonal convention (its delay is
    dendritic), which moves each total by up to 1.5 % (measured: NEST 0.2440, 0.7297, -0.3533, 0.7160
    against 0.2470, 0.7409, -0.3516, 0.7272 here and in MODELS.md); the spec's band is 2 %."""
    protocols = list(TRIP1)
    rule = RulePlan("triplet", "Triplet", dict(w_min=0.0, w_max=100.0))
    ours, r_ours, nest, r_nest = run_both(lambda: pairing_plan(protocols, rule, flush_ms=600.0), 3700.0)
    for results in (r_ours, r_nest):  # every forced spike, nothing else
        assert results.spikes["post"][0].size == 60 * len(protocols)
    expected = np.array([TRIP1[p] for p in protocols])
    dw_ours, dw_nest = final_weights(ours) - 1.0, final_weights(nest) - 1.0
    np.testing.assert_allclose(dw_ours, expected, rtol=0.02, atol=2e-3)
    np.testing.assert_allclose(dw_nest, expected, rtol=0.02, atol=2e-3)
    np.testing.assert_allclose(dw_nest, dw_ours, rtol=0.02)  # measured: at most 1.5 % apart


# ------------------------------------------------------------------------------------------------
# reward STDP -> stdp_dopamine_synapse + volume_transmitter
# ------------------------------------------------------------------------------------------------

def test_reward_stdp_single_pair_matches_the_rstdp1_integral_on_both_backends():
    """MODELS.md §4.4 RSTDP-1: one pair with dt = +10 ms (c0 = 0.1 e^-0.5), one reward of 0.5 one second
    later, tau_c = 1 s, tau_d = 0.2 s: dw = c0 D e^(-T_r/tau_c) tau_c tau_d / (tau_c + tau_d) = 1.85942.
    A tonic level makes NEST's baseline b negative: a second protocol adds tonic = 0.002 over 1.3 s
    of eligibility, (c0 tonic) integrated over the eligibility's lifetime."""
    pair_ms, reward_ms = 100.0, 1110.0
    expected = 0.1 * np.exp(-0.5) * 0.5 * np.exp(-1000.0 / 1000.0) * 1000.0 * 200.0 / 1200.0
    rule = RulePlan("rstdp", "R-STDP", dict(w_min=0.0, w_max=100.0), modulator="da")

    def plan(tonic=0.0):
        reward = RewardPlan("da", tau_d=200.0, tonic=tonic, steps=[round(reward_ms / DT)], amplitudes=[0.5])
        return pairing_plan([(1000.0 / pair_ms, 10.0)], rule, n_pairs=1, extra=[reward])

    ours, _, nest, _ = run_both(plan, 4000.0)
    dw_ours, dw_nest = final_weights(ours)[0] - 1.0, final_weights(nest)[0] - 1.0
    assert dw_ours == pytest.approx(expected, rel=0.01) and dw_nest == pytest.approx(expected, rel=0.01)
    # with tonic dopamine: + c0 tonic tau_c (1 - e^-(T/tau_c)) up to the end T of the run
    tonic = 0.002
    ours, _, nest, _ = run_both(lambda: plan(tonic), 4000.0)
    c0 = 0.1 * np.exp(-0.5)
    expected_tonic = expected + c0 * tonic * 1000.0 * (1.0 - np.exp(-(4000.0 - 110.0) / 1000.0))
    assert final_weights(ours)[0] - 1.0 == pytest.approx(expected_tonic, rel=0.01)
    assert final_weights(nest)[0] - 1.0 == pytest.approx(expected_tonic, rel=0.01)


# ------------------------------------------------------------------------------------------------
# adaptive LIF -> aeif_psc_exp / aeif_psc_delta with Delta_T = 0
# ------------------------------------------------------------------------------------------------

def alif_plan(kind: str) -> SimulationPlan:
    """MODELS.md §1.3 ALIF-3 (R I = 30 mV, R b_w = 2 mV, tau_w = 100 ms) and the same neuron with a
    subthreshold coupling a_w = 5 nS."""
    pop = PopulationPlan("a", "alif", 2, params=dict(tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0,
                                                     R=0.1, I_e=300.0, delta_theta=0.0, b_w=20.0, tau_w=100.0,
                                                     a_w=np.array([0.0, 5.0])),
                         receptors=[ReceptorPlan("exc", kind, 5.0), ReceptorPlan("inh", kind, 5.0)])
    return SimulationPlan(dt=DT, n_steps=0, dtype="float64", populations=[pop], monitors=[MonitorPlan("a", "a")])


@pytest.mark.parametrize("kind", ["exponential", "delta"])
def test_adaptive_lif_spikes_like_aeif_with_delta_t_zero(kind):
    """Same spike count and the same spike times within two steps (NEST integrates aeif with an adaptive
    Runge-Kutta solver, we propagate (V, w) exactly); ALIF-3's 42 spikes."""
    ours, nest = both(lambda: alif_plan(kind), 1000.0)
    for i in range(2):
        t_ours = ours.spikes["a"][0][ours.spikes["a"][1] == i]
        t_nest = nest.spikes["a"][0][nest.spikes["a"][1] == i]
        assert t_ours.size == t_nest.size, (i, t_ours.size, t_nest.size)
        assert np.max(np.abs(t_ours - t_nest)) <= 2
    assert np.sum(ours.spikes["a"][1] == 0) == 42
