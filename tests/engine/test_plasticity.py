"""Plasticity on the numba backend: every rule against an independent slow reference, the golden
tests of MODELS.md §2.3, §3.5 and §4, reproducibility and plastic state."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from engine.kernels import plasticity as pk
from engine.plan import (RULE_PARAMS, MonitorPlan, PopulationPlan, ProjectionPlan, ReceptorPlan, RewardPlan, RulePlan,
                         SimulationPlan, SpikeTrainSourcePlan, STPPlan)
from engine.runner import Simulation
from tests.engine.plasticity_reference import reference_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def driven_plan(pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0, rule, n_pre, n_post,
                n_steps, dt=0.1, modulators=(), stp=None):
    """Pre neurons fire at ``pre_steps``; post neuron ``i`` fires exactly at each step of
    ``post_steps`` (a driver spike one step earlier through a 100 mV delta synapse; plastic inputs
    are far too weak to make the LIF targets fire on their own)."""
    pops = [PopulationPlan("post", "lif", n_post, params=dict(t_ref=0.0),
                           receptors=[ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")])]
    post_steps = np.asarray(post_steps, np.int64)
    srcs = [SpikeTrainSourcePlan("pre", size=n_pre, steps=pre_steps, indices=pre_idx),
            SpikeTrainSourcePlan("drv", size=n_post, steps=post_steps - 1, indices=post_idx)]
    rules = [rule] if rule is not None else []
    receptor = 0 if np.all(np.asarray(w0) >= 0) else 1
    proj = ProjectionPlan.from_coo("plastic", "pre", "post", n_pre, syn_pre, syn_post, w0, delays, receptor=receptor,
                                   weight_dtype=np.float64, rules=rules, stp=stp)
    drive = ProjectionPlan.from_coo("drive", "drv", "post", n_post, np.arange(n_post), np.arange(n_post), 100.0, 1,
                                    weight_dtype=np.float64)
    mons = [MonitorPlan("pre", "pre"), MonitorPlan("post", "post")]
    return SimulationPlan(dt=dt, n_steps=n_steps, dtype="float64", populations=pops, sources=srcs,
                          projections=[proj, drive], monitors=mons, modulators=list(modulators))


def random_case(seed, n_pre=6, n_post=3, n_steps=3000, max_delay=1, sign=1.0):
    """Random trains plus the edge cases: simultaneous pre and post, pairs exactly a window or a
    delay apart, and weights that hit both bounds."""
    rng = np.random.default_rng(seed)
    pre_steps = np.r_[rng.choice(np.arange(5, n_steps), 60), 100, 200, 300, 300 + 200]
    pre_idx = np.r_[rng.integers(0, n_pre, 60), 0, 1, 2, 2]
    post_steps = np.r_[rng.choice(np.arange(5, n_steps), 40), 100, 200 + max_delay - 1, 500]
    post_idx = np.r_[rng.integers(0, n_post, 40), 0, 1, 2]
    key = np.unique(post_steps * n_post + post_idx)
    post_steps, post_idx = key // n_post, key % n_post
    pi, po = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
    delays = rng.integers(1, max_delay + 1, pi.size)
    w0 = sign * rng.uniform(0.0, 0.05, pi.size)
    w0[0] = sign * 0.05  # at the upper bound
    w0[1] = 0.0          # at the lower bound
    return pre_steps, pre_idx, post_steps, post_idx, pi.ravel(), po.ravel(), delays, w0, n_pre, n_post, n_steps


def run_against_reference(kind, params, pairing="all_to_all", same_step="pre_then_post", max_delay=1, seed=1,
                          sign=1.0, dendritic=False):
    case = random_case(seed, max_delay=max_delay, sign=sign)
    pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0, n_pre, n_post, n_steps = case
    rule = RulePlan(kind, params=params, pairing=pairing, same_step=same_step, dendritic=dendritic)
    plan = driven_plan(pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0, rule, n_pre, n_post,
                       n_steps)
    sim = Simulation(plan)
    res = sim.run()
    got = sim.backend.projection_weights("plastic").copy()
    ps, pi = res.spikes["pre"]
    qs, qi = res.spikes["post"]
    # the driver makes the targets fire exactly where asked
    assert sorted(zip(qs.tolist(), qi.tolist())) == sorted(zip(post_steps.tolist(), post_idx.tolist()))
    proj = plan.projections[0]
    ref_kind = ("stdp_mult" if params.get("form") == "multiplicative" else "stdp_add") if kind == "stdp" else kind
    full = dict(RULE_PARAMS[kind], **params)
    want = reference_weights(ref_kind, full, proj.pre_indices(), proj.indices, proj.delays.astype(int), proj.weights,
                             list(zip(ps, pi)), list(zip(qs, qi)), n_steps, plan.dt, pairing, same_step,
                             dendritic=dendritic)
    assert np.any(np.abs(got - proj.weights) > 1e-4), "the case must change weights"
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    return got, proj


STDP = dict(A_plus=0.01, A_minus=0.012, w_max=0.05)
TRIPLET = dict(A2_plus=0.005, A3_plus=0.01, A2_minus=0.007, A3_minus=0.002, w_max=0.05)


@pytest.mark.parametrize("max_delay", [1, 7])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
@pytest.mark.parametrize("same_step", ["pre_then_post", "exclusive"])
def test_pair_stdp_additive_matches_reference(max_delay, pairing, same_step):
    run_against_reference("stdp", STDP, pairing, same_step, max_delay)


@pytest.mark.parametrize("kind,params", [("stdp", STDP), ("triplet", TRIPLET),
                                         ("symmetric", dict(eta_pre=0.05, eta_post=0.05, w_max=0.05))])
@pytest.mark.parametrize("pairing,same_step", [("all_to_all", "pre_then_post"), ("nearest", "exclusive"),
                                               ("all_to_all", "exclusive")])
def test_dendritic_delay_semantics_match_reference(kind, params, pairing, same_step):
    """NEST's convention: the synapse sees a presynaptic spike at emission and a postsynaptic one
    d - 1 steps late (delays 1..6 steps)."""
    run_against_reference(kind, params, pairing, same_step, max_delay=6, dendritic=True)


def test_dendritic_shifts_the_window_the_other_way():
    """Pre at step 0, post at step 9, d = 5: axonal dt = 9 - 4 = 5 steps, dendritic dt = 9 + 4 = 13."""
    got = {}
    for dendritic in (False, True):
        rule = RulePlan("stdp", params=dict(A_plus=0.01, A_minus=0.0105, w_max=10.0), dendritic=dendritic)
        plan = driven_plan([0], [0], [9], [0], [0], [0], [5], [0.5], rule, 1, 1, 30)
        sim = Simulation(plan)
        sim.run()
        got[dendritic] = sim.backend.projection_weights("plastic")[0] - 0.5
    assert got[False] == pytest.approx(0.01 * math.exp(-5 * 0.1 / 20.0), rel=1e-12)
    assert got[True] == pytest.approx(0.01 * math.exp(-13 * 0.1 / 20.0), rel=1e-12)


@pytest.mark.parametrize("max_delay", [1, 5])
def test_pair_stdp_multiplicative_matches_reference(max_delay):
    run_against_reference("stdp", dict(form="multiplicative", A_plus=0.1, A_minus=0.12, mu_plus=1.0, mu_minus=0.5,
                                       w_max=0.05), max_delay=max_delay)


@pytest.mark.parametrize("pairing,same_step,max_delay", [("all_to_all", "pre_then_post", 5),
                                                         ("nearest", "exclusive", 1), ("all_to_all", "exclusive", 3)])
def test_triplet_matches_reference(pairing, same_step, max_delay):
    run_against_reference("triplet", TRIPLET, pairing, same_step, max_delay)


@pytest.mark.parametrize("max_delay", [1, 3])
def test_symmetric_matches_reference(max_delay):
    got, proj = run_against_reference("symmetric", dict(eta_pre=0.05, eta_post=0.05, w_max=0.05), max_delay=max_delay)
    assert np.all(got >= proj.weights - 1e-15), "symmetric STDP never depresses"


def test_inhibitory_weights_keep_their_sign():
    got, proj = run_against_reference("stdp", STDP, max_delay=4, sign=-1.0)
    assert np.all(got <= 0.0) and np.all(got >= -0.05)


# ---------------------------------------------------------------------------------------------
# golden values
# ---------------------------------------------------------------------------------------------


def window_plan(offsets, rule, dt=0.1, delay=1, w0=0.5):
    """One independent pre/post pair per offset n: pre at step 300, post at 300 + n (+ delay - 1)."""
    n = len(offsets)
    pre_steps = np.full(n, 300)
    post_steps = 300 + np.asarray(offsets) + delay - 1
    plan = driven_plan(pre_steps, np.arange(n), post_steps, np.arange(n), np.arange(n), np.arange(n),
                       np.full(n, delay), np.full(n, w0), rule, n, n, int(post_steps.max()) + 5, dt)
    sim = Simulation(plan)
    sim.run()
    return sim.backend.projection_weights("plastic").copy() - w0


@pytest.mark.parametrize("same_step,dw0", [("pre_then_post", 1.0), ("exclusive", 0.0)])
def test_stdp1_window(same_step, dw0):
    """STDP-1: dw = A+ exp(-n dt / tau+) (n > 0), -A- exp(n dt / tau-) (n < 0), n = 0 by mode."""
    A_p, A_m, tau_p, tau_m, dt = 0.01, 0.0105, 20.0, 20.0, 0.1
    offsets = np.arange(-200, 201)
    rule = RulePlan("stdp", params=dict(A_plus=A_p, A_minus=A_m, tau_plus=tau_p, tau_minus=tau_m, w_max=10.0),
                    same_step=same_step)
    dw = window_plan(offsets, rule, dt)
    want = np.where(offsets > 0, A_p * np.exp(-offsets * dt / tau_p), -A_m * np.exp(offsets * dt / tau_m))
    want[offsets == 0] = dw0 * A_p
    np.testing.assert_allclose(dw, want, rtol=1e-10, atol=1e-15)


def test_del3_stdp_with_delay_uses_arrival():
    """DEL-3: d = 5, pre at step 0, post at step 9: effective dt = 9 - (0 + 5 - 1) = 5 steps."""
    rule = RulePlan("stdp", params=dict(A_plus=0.01, A_minus=0.0105, w_max=10.0))
    plan = driven_plan([0], [0], [9], [0], [0], [0], [5], [0.5], rule, 1, 1, 20)
    sim = Simulation(plan)
    sim.run()
    dw = sim.backend.projection_weights("plastic")[0] - 0.5
    assert dw == pytest.approx(0.01 * math.exp(-5 * 0.1 / 20.0), rel=1e-12)


def test_ssstdp1_symmetric_window():
    """SSTDP-1 at dt = 0.5 ms: dw = eta a exp(-|n| dt / 20) for both signs, dw(0) = eta_post a."""
    eta, a, dt = 0.05, 0.1, 0.5
    offsets = np.arange(-100, 101)
    rule = RulePlan("symmetric", params=dict(eta_pre=eta, eta_post=eta, a=a, tau=20.0, w_max=10.0))
    dw = window_plan(offsets, rule, dt)
    np.testing.assert_allclose(dw, eta * a * np.exp(-np.abs(offsets) * dt / 20.0), rtol=1e-10)


def test_trip1_pairing_frequency_table():
    """TRIP-1: 60 pairs at rho Hz, dt = +-10 ms, visual-cortex all-to-all set, within 2 %."""
    table = {+10: [0.00000, 0.00007, 0.04933, 0.13205, 0.24696, 0.37069, 0.53372, 0.74091],
             -10: [-0.31216, -0.31216, -0.31459, -0.33362, -0.35162, -0.20471, 0.15479, 0.72725]}
    rhos = [0.1, 1, 5, 10, 20, 30, 40, 50]
    dt = 0.1
    pre_steps, pre_idx, post_steps, post_idx, want = [], [], [], [], []
    for sign, values in table.items():
        for rho, value in zip(rhos, values):
            n = len(want)
            t_pre = 100.0 + np.arange(60) * 1000.0 / rho
            pre_steps.append(np.rint(t_pre / dt))
            post_steps.append(np.rint((t_pre + sign) / dt))
            pre_idx.append(np.full(60, n))
            post_idx.append(np.full(60, n))
            want.append(value)
    n = len(want)
    pre_steps, post_steps = np.concatenate(pre_steps).astype(int), np.concatenate(post_steps).astype(int)
    rule = RulePlan("triplet", params=dict(w_min=-1e6, w_max=1e6))
    # weights start high enough that no depression reaches the (sign-preserving) lower bound
    plan = driven_plan(pre_steps, np.concatenate(pre_idx), post_steps, np.concatenate(post_idx), np.arange(n),
                       np.arange(n), np.ones(n, int), np.full(n, 5.0), rule, n, n, int(post_steps.max()) + 10, dt)
    sim = Simulation(plan)
    sim.run()
    dw = sim.backend.projection_weights("plastic") - 5.0
    want = np.asarray(want)
    big = np.abs(want) > 0.01
    np.testing.assert_allclose(dw[big], want[big], rtol=0.02)
    assert np.all(np.abs(dw[~big] - want[~big]) < 2e-4)


def test_stp1_tsodyks_markram_release_sequence():
    """STP-1: U = 0.6, Omega_f = 3.33 /s, Omega_d = 2 /s, the spec's spike times, released fractions."""
    times = [0, 50, 100, 150, 200] + list(range(300, 401, 10))
    want = {0.6: [0.6, 0.36714, 0.15396, 0.10351, 0.09584, 0.16293, 0.04291, 0.02196, 0.02010, 0.01988, 0.01983,
                  0.01981, 0.01980, 0.01979, 0.01979, 0.01979],
            0.3: [0.3, 0.34809, 0.25625, 0.16844, 0.12207, 0.14632, 0.07321, 0.03643, 0.02424, 0.02113, 0.02037,
                  0.02011, 0.01999, 0.01991, 0.01987, 0.01983]}
    for U, values in want.items():
        # the kernel's pure release function, spike by spike
        u, x, last, got = 0.0, 1.0, None, []
        for t in times:
            u, x, r = pk.tm_release(u, x, -1.0 if last is None else float(t - last), U, 1000 / 3.33, 1000 / 2.0)
            got.append(r)
            last = t
        np.testing.assert_allclose(got, values, atol=6e-6)
        # and in a network: the jump of a (non-decaying) synaptic current is w r
        plan = driven_plan(np.asarray(times) * 10, np.zeros(len(times), int), [5], [0], [0], [0], [1], [100.0],
                           None, 1, 1, 4100, stp=STPPlan(U=U, tau_facil=1000 / 3.33, tau_rec=1000 / 2.0))
        plan.populations[0].receptors = [ReceptorPlan("exc", "exponential", 1e15), ReceptorPlan("inh", "delta")]
        plan.monitors.append(MonitorPlan("I", "post", "state", indices=[0], variables=("I_exc",)))
        sim = Simulation(plan)
        res = sim.run()
        steps, values_ = res.states["I"]["I_exc"]
        k = np.asarray(times) * 10
        jumps = values_[k + 1, 0] - values_[k, 0]
        np.testing.assert_allclose(jumps, 100.0 * np.asarray(got), rtol=1e-9)


def rstdp_run(reward_amp, tonic=0.0, T_r=1000.0, dt=0.1):
    """RSTDP-1 set-up: one synapse, one pair with dt = +10 ms, one reward T_r after the pair."""
    t_pair = 50.0
    pre, post = int(round(t_pair / dt)), int(round((t_pair + 10.0) / dt))
    reward = RewardPlan("da", tau_d=200.0, tonic=tonic, steps=[post + int(round(T_r / dt))], amplitudes=reward_amp)
    rule = RulePlan("rstdp", params=dict(A_plus=0.1, A_minus=0.15, tau_c=1000.0, w_min=-1e6, w_max=1e6),
                    modulator="da")
    n_steps = post + int(round((T_r + 8000.0) / dt))
    plan = driven_plan([pre], [0], [post], [0], [0], [0], [1], [5.0], rule, 1, 1, n_steps, dt, modulators=[reward])
    sim = Simulation(plan)
    sim.run()
    return sim.backend.projection_weights("plastic")[0] - 5.0


def test_rstdp1_eligibility_times_dopamine():
    """RSTDP-1: ds = c0 D exp(-T_r/tau_c) tau_c tau_d / (tau_c + tau_d) = 1.85942, dt = 0.1 ms gives
    1.85998 (0.1 %)."""
    ds = rstdp_run(0.5)
    c0 = 0.1 * math.exp(-10 / 20)
    analytic = c0 * 0.5 * math.exp(-1.0) * 1000 * 200 / 1200
    assert analytic == pytest.approx(1.85942, abs=1e-5)
    assert ds == pytest.approx(1.85998, rel=1e-3)
    assert ds == pytest.approx(analytic, rel=1e-3)


def test_rstdp2_no_reward_no_change():
    assert rstdp_run(0.0) == 0.0


def test_norm1_hard_normalisation():
    """NORM-1: after normalisation every row sums to T and ratios within a row are kept."""
    rng = np.random.default_rng(3)
    n_pre, n_post = 20, 4
    pi, po = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
    w0 = rng.uniform(0.1, 1.0, pi.size)
    rule = RulePlan("scaling_normalize", params=dict(target_sum=7.8, interval=1.0))
    plan = driven_plan([], [], [], [], pi.ravel(), po.ravel(), np.ones(pi.size, int), w0, rule, n_pre, n_post, 20)
    sim = Simulation(plan)
    sim.run()
    w = sim.backend.projection_weights("plastic")
    proj = plan.projections[0]
    for i in range(n_post):
        row = w[proj.indices == i]
        assert row.sum() == pytest.approx(7.8, rel=1e-6)
        np.testing.assert_allclose(row / row[0], proj.weights[proj.indices == i] / proj.weights[proj.indices == i][0],
                                   rtol=1e-12)


def test_norm2_activity_scaling_fixed_point():
    """NORM-2: a LIF (§1.1 defaults) driven with R I = 30 w mV scales its gain w to 0.6722 (ISI 50 ms,
    20 Hz). The drive is a delta synapse pulsing every step with 30 w (1 - P22) mV, which is the
    exact-propagator contribution of the constant current; the rule scales that synapse."""
    from engine.plan import PoissonSourcePlan

    dt = 0.1
    pulse = 30.0 * (1.0 - math.exp(-dt / 10.0))
    pop = PopulationPlan("post", "lif", 1, receptors=[ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")])
    every_step = PoissonSourcePlan("tonic", size=1, rates=1000.0 / dt)
    rule = RulePlan("scaling_activity", params=dict(a_target=20.0, tau_a=1000.0, beta=1e-6, interval=dt, w_max=1e6))
    proj = ProjectionPlan.from_coo("gain", "tonic", "post", 1, [0], [0], [pulse], 1, weight_dtype=np.float64,
                                   rules=[rule])
    plan = SimulationPlan(dt=dt, n_steps=1_000_000, dtype="float64", populations=[pop], sources=[every_step],
                          projections=[proj], monitors=[MonitorPlan("post", "post")])
    sim = Simulation(plan)
    res = sim.run(20_000.0)
    assert sim.backend.projection_weights("gain")[0] / pulse == pytest.approx(0.67220, abs=2e-3)
    res = sim.run(80_000.0)
    assert sim.backend.projection_weights("gain")[0] / pulse == pytest.approx(0.67220, abs=1e-3)
    steps, _ = res.spikes["post"]
    assert np.sum(steps >= 900_000) / 10.0 == pytest.approx(20.0, abs=0.2)


def test_ip1_ip2_adaptive_threshold_increments():
    """IP-1 (Hao form) and IP-2 (Diehl & Cook) theta after successive spikes, no decay."""
    want = [20.07, 20.139513, 20.208550, 20.277120, 20.345233, 20.412897, 20.480121, 20.546914, 20.613284,
            20.679239]
    for form, expect in (("hao", want), ("diehl_cook", [20 + 0.05 * n for n in range(1, 11)])):
        theta_plus = 0.07 if form == "hao" else 0.05
        pop = PopulationPlan("post", "alif", 1, params=dict(t_ref=0.0, tau_theta=1e12,
                                                            delta_theta=theta_plus if form == "diehl_cook" else 0.0,
                                                            V_th=-50.0 - 20.0),
                             initial_state=dict(theta=20.0), receptors=[ReceptorPlan("exc", "delta"),
                                                                         ReceptorPlan("inh", "delta")],
                             threshold_rule=dict(theta_plus=theta_plus, offset=20.0) if form == "hao" else None)
        src = SpikeTrainSourcePlan("drv", size=1, steps=np.arange(10) * 50, indices=np.zeros(10, int))
        proj = ProjectionPlan.from_coo("drive", "drv", "post", 1, [0], [0], [200.0], 1, weight_dtype=np.float64)
        plan = SimulationPlan(dt=0.1, n_steps=600, dtype="float64", populations=[pop], sources=[src],
                              projections=[proj], monitors=[MonitorPlan("post", "post"),
                                                            MonitorPlan("theta", "post", "state", variables=("theta",))])
        res = Simulation(plan).run()
        steps, _ = res.spikes["post"]
        assert steps.size == 10
        _, theta = res.states["theta"]["theta"]
        np.testing.assert_allclose(theta[steps + 1, 0], expect, rtol=1e-6)


def test_oja1_and_bcm1_rate_kernels():
    """OJA-1 and BCM-1 on the kernels' pure update functions."""
    rng = np.random.default_rng(0)
    cov = np.array([[3.0, 1.0], [1.0, 2.0]])
    xs = rng.multivariate_normal([0, 0], cov, 20_000)
    w = rng.normal(0, 0.1, 2)
    for x in xs:
        y = float(w @ x)
        w = w + np.array([pk.oja_dw(x[0], y, w[0], 0.005), pk.oja_dw(x[1], y, w[1], 0.005)])
    e1 = np.linalg.eigh(cov)[1][:, -1]
    assert abs(w @ e1) / np.linalg.norm(w) > 0.99
    assert 0.95 <= np.linalg.norm(w) <= 1.05
    w, theta = 0.5, 0.0
    for _ in range(200_000):
        y = w * 1.0
        w += pk.bcm_dw(1.0, y, theta, 1e-4)
        theta += (y * y / 10.0 - theta) / 10.0
    assert w * 1.0 == pytest.approx(10.0, abs=1e-6)
    assert theta == pytest.approx(10.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# networks: Song et al., reproducibility, plastic state
# ---------------------------------------------------------------------------------------------


def song_plan(form="additive", duration_ms=100_000.0, seed=2000):
    from engine.compiler import compile_graph
    from engine.project import Project

    project = Project.load(os.path.join(ROOT, "resources", "examples", "song_stdp.swproj"))
    stdp = next(n for n in project.graph.nodes.values() if n.type_id == "plasticity.stdp")
    if form == "multiplicative":
        stdp.set("form", "multiplicative")
        stdp.set("A_plus", 0.01)
        stdp.set("A_minus", 0.0105)
    return compile_graph(project, dict(duration=duration_ms, seed=seed))


@pytest.mark.slow
def test_stdp2_song_bimodal_distribution():
    plan = song_plan()
    res = Simulation(plan).run()
    steps, values = res.weights["weights_1"]
    w = values[-1] / 0.01
    hist = np.histogram(w, bins=10, range=(0, 1))[0]
    assert hist[0] >= 200 and hist[-1] >= 150, hist
    assert np.all(hist[2:8] <= 100), hist
    assert 0.44 <= w.mean() <= 0.50
    rate_last = res.rates["rate_1"][-100_000:].sum() / 10.0
    assert 15.0 <= rate_last <= 25.0


@pytest.mark.slow
def test_stdp3_multiplicative_unimodal_distribution():
    plan = song_plan("multiplicative")
    res = Simulation(plan).run()
    w = res.weights["weights_1"][1][-1] / 0.01
    assert w.mean() == pytest.approx(0.499, abs=0.02)
    assert w.std() == pytest.approx(0.019, abs=0.01)
    assert w.min() >= 0.4 and w.max() <= 0.6


def test_chunked_and_resumed_runs_are_bit_identical(tmp_path):
    plan = song_plan(duration_ms=2000.0)
    one = Simulation(plan)
    one.run(2000.0, chunk_steps=20_000)
    w_one = one.final_weights()
    two = Simulation(plan)
    two.run(700.0, chunk_steps=333)
    two.save_state(tmp_path / "state.npz")
    three = Simulation(plan)
    three.restore_state(tmp_path / "state.npz")
    three.run(1300.0, chunk_steps=1234)
    for name, w in w_one.items():
        assert np.array_equal(w, three.final_weights()[name])
        assert not np.array_equal(w, plan.projections[0].weights), "the weights learned something"


def _weights_in_subprocess(threads: int) -> bytes:
    code = ("import sys, hashlib; sys.path.insert(0, sys.argv[1]);"
            "from tests.engine.test_plasticity import song_plan; from engine.runner import Simulation;"
            "sim = Simulation(song_plan(duration_ms=1000.0)); sim.run();"
            "print(hashlib.sha256(sim.final_weights()['projection_1->cobalif_1'].tobytes()).hexdigest())")
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", code, ROOT], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def test_same_seed_same_weights_across_processes_and_threads():
    assert _weights_in_subprocess(1) == _weights_in_subprocess(2)


def test_weight_monitor_results_file(tmp_path):
    plan = song_plan(duration_ms=2500.0)
    res = Simulation(plan).run()
    res.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as data:
        steps = data["weights/weights_1/steps"]
        values = data["weights/weights_1/values"]
        assert steps.tolist() == [0, 10_000, 20_000, 25_000]  # every 1 s, and the end of the run
        assert values.shape == (4, 1000)
        assert data["weights/weights_1/pre"].tolist() == list(range(1000))
        assert np.all(data["weights/weights_1/post"] == 0)
    np.testing.assert_array_equal(values[0], plan.projections[0].weights)


def test_reward_stdp_example_learns_the_rewarded_cue():
    """The shipped example: dopamine follows cue A only; A's synapses and the response to A grow."""
    from engine.project import Project

    project = Project.load(os.path.join(ROOT, "resources", "examples", "reward_stdp.swproj"))
    res = Simulation(project).run()
    (steps, values), = res.weights.values()
    (pre, _), = res.weight_synapses.values()
    a, b = values[:, pre < 50].mean(axis=1), values[:, pre >= 50].mean(axis=1)
    assert a[0] == b[0] == pytest.approx(0.5)
    assert a[-1] > 2 * a[0] and a[-1] > b[-1] + 0.5
    spikes, _ = next(iter(res.spikes.values()))
    trial, phase = spikes // 4000, spikes % 4000
    response_a = np.bincount(trial[(phase >= 100) & (phase < 130)], minlength=6)
    assert response_a[-2:].mean() > 2 * max(response_a[0], 1)
    # without dopamine nothing changes (RSTDP-2 on the whole example)
    reward = next(n for n in project.graph.nodes.values() if n.type_id == "modulator.reward")
    reward.set("amplitude", 0.0)
    res = Simulation(project).run()
    (steps, values), = res.weights.values()
    assert np.array_equal(values[-1], values[0])


def test_run_save_weights_writes_a_project_that_starts_from_learned_weights(tmp_path, capsys):
    import main
    from engine.compiler import compile_graph
    from engine.project import Project

    out = tmp_path / "learned.swproj"
    src = os.path.join(ROOT, "resources", "examples", "song_stdp.swproj")
    assert main.main(["run", src, "--duration", "2s", "-q", "--save-weights", str(out), "--out",
                      str(tmp_path / "r.npz")]) == 0
    text = capsys.readouterr().out
    assert "weights 'Weights' at 2 s: 1000 synapses, mean" in text and "at w_max" in text
    learned = Project.load(out)
    node = learned.graph.nodes["projection_1"]
    assert node.connectivity == "from_file" and (tmp_path / node.file).is_file()
    with np.load(tmp_path / "r.npz") as data:
        final = data["weights/weights_1/values"][-1]
    plan = compile_graph(learned)
    np.testing.assert_array_equal(plan.projections[0].weights, final)
    assert plan.projections[0].rules, "the copy is still plastic"
    original = Project.load(src)
    assert original.graph.nodes["projection_1"].connectivity == "all_to_all"


def test_validation_names_nodes_the_backend_cannot_simulate():
    """What a backend declares it supports decides the per-node warnings (no hand-kept list)."""
    from types import SimpleNamespace

    from engine.backends import _REGISTRY, register_backend
    from engine.backends.numba_backend import NumbaBackend
    from engine.project import Project
    from engine.validate import validate

    class NoPlasticity(NumbaBackend):
        supported_node_types = frozenset({"input.poisson", "neuron.cobalif", "synapse.projection", "monitor.rate",
                                          "monitor.weights"})

    song = Project.load(os.path.join(ROOT, "resources", "examples", "song_stdp.swproj"))
    assert not [p for p in validate(song.graph, song.settings) if "not simulated" in p.message]
    register_backend("no_plasticity", NoPlasticity)
    try:
        # settings only name the project's choices; validation reads .backend
        settings = SimpleNamespace(**song.settings.values_json())
        settings.backend = "no_plasticity"
        refused = [p for p in validate(song.graph, settings) if "no_plasticity backend" in p.message]
        # built into the plan but not run by that backend: an error on the node (the run would fail)
        assert [p.node for p in refused] == ["Song STDP"] and refused[0].severity == "error"
    finally:
        _REGISTRY.pop("no_plasticity")
    song.settings.backend = "torch"  # runs plasticity on the CPU: no error
    assert [p for p in validate(song.graph, song.settings) if p.severity == "error"] == []
    tripartite = Project()
    tripartite.graph.add_node("modulator.tripartite_astrocyte", "Glia")
    tripartite.settings.backend = "torch"  # acts through short-term plasticity, which torch refuses
    errors = [p for p in validate(tripartite.graph, tripartite.settings) if p.severity == "error"]
    assert [p.node for p in errors] == ["Glia"]
    assert "would be refused" in errors[0].message and "numba" in errors[0].hint


def test_stdp_and_normalisation_compose_in_the_documented_order():
    """Two rules on one projection: STDP acts on the step's spikes, normalisation acts last, so
    every row sums to the target after each normalisation step while STDP keeps learning."""
    case = random_case(5)
    pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0, n_pre, n_post, n_steps = case
    plan = driven_plan(pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0 + 0.01, None,
                       n_pre, n_post, n_steps)
    proj = plan.projections[0]
    proj.rules = [RulePlan("scaling_normalize", params=dict(target_sum=0.2, interval=50.0)),
                  RulePlan("stdp", params=STDP)]
    proj.__post_init__()
    assert [r.kind for r in proj.rules] == ["stdp", "scaling_normalize"]
    sim = Simulation(plan)
    sim.run(50.0)  # 500 steps: normalised at the end of step 499
    w = sim.backend.projection_weights("plastic")
    for i in range(n_post):
        assert w[proj.indices == i].sum() == pytest.approx(0.2, rel=1e-9)
    sim.run(20.0)
    w2 = sim.backend.projection_weights("plastic")
    assert not np.allclose([w2[proj.indices == i].sum() for i in range(n_post)], 0.2), "STDP acts in between"


# ---------------------------------------------------------------------------------------------
# NALSM astrocyte (MODELS.md §5.1, §7.4)
# ---------------------------------------------------------------------------------------------


def test_astro1_relaxation():
    """ASTRO-1: +5 spikes per step more in the liquid than the input: A(100) = 0.197548."""
    from engine.plan import AstrocytePlan

    srcs = [SpikeTrainSourcePlan("liquid", size=7, steps=np.repeat(np.arange(200), 7),
                                 indices=np.tile(np.arange(7), 200)),
            SpikeTrainSourcePlan("input", size=2, steps=np.repeat(np.arange(200), 2), indices=np.tile([0, 1], 200))]
    plan = SimulationPlan(dt=1.0, n_steps=100, dtype="float64", sources=srcs,
                          astrocytes=[AstrocytePlan("astro", ["liquid"], ["input"], tau=100.0, w=0.015, b=0.15,
                                                    A_init=0.15)])
    sim = Simulation(plan)
    sim.run(100.0)
    assert sim.backend.astrocyte_states()["astro"] == pytest.approx(0.225 - 0.075 * 0.99 ** 100, abs=1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_astrocyte_sets_the_depression_rate(sign):
    """The astrocyte's A(t) scales A_minus (excitatory) or, for inhibitory synapses, the
    potentiation of the inhibition (§7.4): checked on one pair of each order against A(t)
    computed by hand from the liquid's spike counts."""
    from engine.plan import AstrocytePlan

    dt, A_plus, A_minus, tau = 1.0, 0.015, 0.015, 10.0
    n_liquid = 3
    liquid_steps = np.repeat(np.arange(0, 60, 2), n_liquid)
    # pair 1 (synapse 0): post at 20, pre at 24 -> depression term; pair 2 (synapse 1): pre at 40,
    # post at 43 -> potentiation term
    rule = RulePlan("stdp", params=dict(A_plus=A_plus, A_minus=A_minus, tau_plus=tau, tau_minus=tau, w_min=0.0,
                                        w_max=3.0), same_step="exclusive", astrocyte="astro")
    plan = driven_plan([24, 40], [0, 1], [20, 43], [0, 1], [0, 1], [0, 1], [1, 1], [sign * 1.0, sign * 1.0], rule,
                       2, 2, 60, dt)
    plan.sources.append(SpikeTrainSourcePlan("liquid", size=n_liquid, steps=liquid_steps,
                                             indices=np.tile(np.arange(n_liquid), liquid_steps.size // n_liquid)))
    plan.astrocytes.append(AstrocytePlan("astro", ["liquid"], ["pre"], tau=100.0, w=0.015, b=0.15, A_init=0.15))
    sim = Simulation(plan)
    res = sim.run()
    # A used by the plasticity of step k: the value after k astrocyte updates
    liquid = np.bincount(liquid_steps, minlength=60)
    inputs = np.bincount(res.spikes["pre"][0], minlength=60)
    A = [0.15]
    for k in range(60):
        A.append(A[-1] + (0.015 * (liquid[k] - inputs[k]) + 0.15 - A[-1]) / 100.0)
    dw = np.abs(sim.backend.projection_weights("plastic")) - 1.0
    astro_rate = lambda k: A[k] * A_minus / 0.15  # noqa: E731
    if sign > 0:
        want = [-astro_rate(24) * math.exp(-4 / tau), A_plus * math.exp(-3 / tau)]
    else:  # inhibitory: post-before-pre weakens inhibition at A_plus, pre-before-post strengthens it at A(t)
        want = [-A_plus * math.exp(-4 / tau), astro_rate(43) * math.exp(-3 / tau)]
    np.testing.assert_allclose(dw, want, rtol=1e-10)
    assert np.all(np.sign(sim.backend.projection_weights("plastic")) == sign)
