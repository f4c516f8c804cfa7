"""The NEST mappings of short-term plasticity, triplet and reward STDP and the adaptive LIF
(engine/exporters/nest_mapping.py), each run on numba and on NEST and compared.

Deterministic protocols (spike trains through delta synapses, whose spike steps NEST reproduces
exactly) are compared with MODELS.md's golden values; Poisson-driven networks are compared
statistically over two seeds, with the bands stated in each test.
"""

import importlib.util

import numpy as np
import pytest

from engine.plan import (MonitorPlan, PopulationPlan, ProjectionPlan, ReceptorPlan, RewardPlan,
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
    """Same spike count and the same spike steps within one (NEST integrates aeif with an adaptive
    Runge-Kutta solver, we propagate (V, w) exactly; measured: identical); ALIF-3's 42 spikes."""
    ours, nest = both(lambda: alif_plan(kind), 1000.0)
    for i in range(2):
        t_ours = ours.spikes["a"][0][ours.spikes["a"][1] == i]
        t_nest = nest.spikes["a"][0][nest.spikes["a"][1] == i]
        assert t_ours.size == t_nest.size, (i, t_ours.size, t_nest.size)
        assert np.max(np.abs(t_ours - t_nest)) <= 1  # measured: the same steps
    assert np.sum(ours.spikes["a"][1] == 0) == 42


# ------------------------------------------------------------------------------------------------
# the same Poisson-driven networks on both backends, two seeds: statistics
# ------------------------------------------------------------------------------------------------

N_IN, N_OUT, P_CONNECT, RATE_HZ, DURATION_MS = 400, 20, 0.25, 15.0, 1000.0
SEEDS = (1, 2)


FLUSH_MS = (1300.0, 1700.0)  # one more spike per input, spread thinly: NEST applies pending potentiation
RUN_MS = 1800.0


def poisson_trains(seed: int) -> SpikeTrainSourcePlan:
    """Poisson trains drawn here (the same on both backends) for ``DURATION_MS``, then, after a quiet
    300 ms, one spike per input spread over 400 ms (too thin to make a neuron fire), so that NEST's
    STDP synapses apply the potentiation of postsynaptic spikes that followed each input's last spike
    (NEST applies it when the next presynaptic spike passes); its depression reads post traces
    decayed by e^-(300 / 33.7)."""
    rng = np.random.default_rng(seed)
    n_steps = int(DURATION_MS / DT)
    fire = rng.random((n_steps, N_IN)) < RATE_HZ * DT / 1000.0
    fire[:2] = False  # NEST's relays emit from step 2 on
    steps, channels = np.nonzero(fire)
    flush = np.rint(rng.uniform(*FLUSH_MS, N_IN) / DT).astype(np.int64)
    steps, channels = np.concatenate([steps, flush]), np.concatenate([channels, np.arange(N_IN)])
    order = np.argsort(steps, kind="stable")
    return SpikeTrainSourcePlan("in", size=N_IN, steps=steps[order], indices=channels[order].astype(np.int32))


def poisson_plan(seed: int) -> SimulationPlan:
    """400 Poisson inputs (15 Hz, :func:`poisson_trains`) drive four groups of 20 current-based neurons, each neuron from 100
    random inputs (initial weights U[1.5, 3.5] pA, R = 1 GOhm, fluctuation-driven): ``trip`` learns
    with triplet STDP (the visual-cortex set, amplitudes x10), ``rew`` with reward STDP (4 rewards),
    ``stp`` has depressing synapses (U = 0.5, tau_rec = 200 ms, weights x5 for the steady release of
    ~0.2) and ``adapt`` is an adaptive LIF (a_w = 0.2 nS, b_w = 1 pA, tau_w = 100 ms). Static
    projections have delays of 1-20 steps; the plastic ones one step, where NEST's dendritic and our
    axonal delay conventions coincide (up to NEST's one-step later pairing)."""
    rng = np.random.default_rng(1234)  # the same synapses in every run; only the inputs change with the seed
    src = poisson_trains(seed)
    lif = dict(tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0, R=1.0)
    pops = [PopulationPlan(name, "lif", N_OUT, params=dict(lif)) for name in ("trip", "rew", "stp")]
    pops.append(PopulationPlan("adapt", "alif", N_OUT, params=dict(lif, delta_theta=0.0, a_w=0.2, b_w=1.0,
                                                                   tau_w=100.0)))
    n_in = int(P_CONNECT * N_IN)
    pre = np.concatenate([rng.choice(N_IN, n_in, replace=False) for _ in range(N_OUT)])
    post = np.repeat(np.arange(N_OUT), n_in)
    projections = []
    for pop in pops:
        w = rng.uniform(1.5, 3.5, pre.size) * (5.0 if pop.name == "stp" else 1.0)
        delays = np.ones(pre.size, np.int64) if pop.name in ("trip", "rew") else rng.integers(1, 20, pre.size)
        projections.append(ProjectionPlan.from_coo(f"in->{pop.name}", "in", pop.name, N_IN, pre, post, w,
                                                   delays=delays, weight_dtype=np.float64))
    trip, rew, stp = projections[:3]
    trip.rules.append(RulePlan("triplet", "Triplet", dict(A2_plus=5e-9, A3_plus=6.2e-2, A2_minus=7e-2,
                                                          A3_minus=2.3e-3, w_min=0.0, w_max=6.0)))
    rew.rules.append(RulePlan("rstdp", "R-STDP", dict(A_plus=0.001, A_minus=0.0015, w_min=0.0, w_max=6.0),
                              modulator="da"))
    trip.plastic = rew.plastic = True
    stp.stp = STPPlan(U=0.5, tau_facil=0.0, tau_rec=200.0)
    reward_steps = np.sort(np.random.default_rng(seed).integers(1, int(DURATION_MS / DT), 4))
    reward = RewardPlan("da", tau_d=200.0, steps=reward_steps, amplitudes=0.5)
    return SimulationPlan(dt=DT, n_steps=0, seed=seed, populations=pops, sources=[src], projections=projections,
                          modulators=[reward], monitors=[MonitorPlan(p.name, p.name) for p in pops])


@pytest.fixture(scope="module")
def poisson_runs():
    """``{backend: [(rates per group in Hz, {projection: (w0, w1)}) per seed]}``."""
    out = {}
    for backend in ("numba", "nest"):
        out[backend] = []
        for seed in SEEDS:
            sim = Simulation(poisson_plan(seed), backend=backend)
            w0 = {p.name: np.array(p.weights, np.float64) for p in sim.plan.projections if p.plastic}
            results = sim.run(RUN_MS)
            rates = {name: np.sum(results.spikes[name][0] < DURATION_MS / DT) / N_OUT / (DURATION_MS / 1000.0)
                     for name in ("trip", "rew", "stp", "adapt")}
            weights = {name: (w0[name], final_weights(sim, name)) for name in w0}
            out[backend].append((rates, weights))
    return out


def mean_over_seeds(runs, fn):
    return float(np.mean([fn(run) for run in runs]))


#: rate bands: the static groups see the same input trains and spike alike (measured: equal counts);
#: the plastic ones follow their learning (measured, seeds 1-4: triplet NEST 10 % lower, reward 1 %)
RATE_BANDS = {"stp": 0.03, "adapt": 0.03, "rew": 0.05, "trip": 0.15}


@pytest.mark.parametrize("group", sorted(RATE_BANDS))
def test_poisson_driven_rates_agree(poisson_runs, group):
    """Mean rate over the seeds within the group's band of ours."""
    ours = mean_over_seeds(poisson_runs["numba"], lambda run: run[0][group])
    theirs = mean_over_seeds(poisson_runs["nest"], lambda run: run[0][group])
    assert ours > 3.0
    assert abs(theirs - ours) < RATE_BANDS[group] * ours, (group, ours, theirs)


@pytest.mark.parametrize("projection", ["in->trip", "in->rew"])
def test_learned_weights_agree_in_mean_and_spread(poisson_runs, projection):
    """Over the seeds: the mean final weight within 4 % of ours and its spread (std) within 10 %; the
    weights stay within [0, w_max]. Reward STDP's mean change agrees within 10 % (measured 2 %);
    triplet STDP depresses more on NEST (mean change -0.13 against our -0.07 from weights of ~2.5,
    measured over seeds 1-4): NEST transmits each presynaptic spike with the weight after that spike's
    own depression (test_nest_transmits_the_weight_after_the_spikes_own_update), so the drive and the
    rate are a little lower and the rate-sensitive triplet rule potentiates less; the mean-weight band
    covers it."""
    def mean_weight(run):
        return np.mean(run[1][projection][1])

    def change(run):
        w0, w1 = run[1][projection]
        return np.mean(w1 - w0)

    def spread(run):
        return np.std(run[1][projection][1])

    for run in poisson_runs["nest"]:
        assert run[1][projection][1].min() >= 0.0 and run[1][projection][1].max() <= 6.0 + 1e-9
    ours, theirs = (mean_over_seeds(poisson_runs[b], mean_weight) for b in ("numba", "nest"))
    assert abs(theirs - ours) < 0.04 * ours, (projection, ours, theirs)
    ours, theirs = (mean_over_seeds(poisson_runs[b], spread) for b in ("numba", "nest"))
    assert abs(theirs - ours) < 0.10 * ours, (projection, ours, theirs)
    ours, theirs = (mean_over_seeds(poisson_runs[b], change) for b in ("numba", "nest"))
    assert abs(ours) > 0.05  # the weights have learned something
    if projection == "in->rew":
        assert abs(theirs - ours) < 0.10 * abs(ours), (projection, ours, theirs)


def test_nest_transmits_the_weight_after_the_spikes_own_update():
    """Why input-driven triplet populations end weaker on NEST: NEST's STDP synapses update the weight
    at a presynaptic spike (pending potentiation, then this spike's depression) and transmit the new
    weight; our step order (MODELS.md §0.2) routes the spike with the weight before its own update.
    Post forced 2 ms before each pre spike (20 Hz): the PSP jumps on NEST are ours one update ahead,
    the final weights agree."""
    rule = RulePlan("triplet", "Triplet", dict(w_min=0.0, w_max=100.0, A2_minus=7e-2, A3_minus=2.3e-3))

    def plan():
        p = pairing_plan([(20.0, -2.0)], rule, n_pairs=5)
        p.monitors.append(MonitorPlan("V", "post", "state", variables=("V",)))
        return p

    ours, r_ours, nest, r_nest = run_both(plan, 400.0)
    jumps = []
    for results in (r_ours, r_nest):
        v = results.states["V"]["V"][1][:, 0]
        jump = v[1:] - (-70.0 + (v[:-1] + 70.0) * np.exp(-DT / 10.0))
        jumps.append(jump[(jump > 1e-6) & (jump < 50.0)])  # the plastic synapse's PSPs, not the forcing ones
    j_ours, j_nest = jumps
    assert j_ours.size == j_nest.size == 5
    assert j_ours[0] == pytest.approx(1.0)  # the initial weight
    np.testing.assert_allclose(j_nest[:-1], j_ours[1:], rtol=0.01)  # measured: 0.934 0.853 0.770 0.687 / ours 0.936 0.858 0.776 0.694
    assert final_weights(nest)[0] == pytest.approx(final_weights(ours)[0], rel=0.01)
