"""Torch rule kernels for batched runs (engine/backends/torch_rules.py) against the numba backend.

Each case runs a plan with plasticity on the numba backend, records the spikes of every population
and source, replays them step by step into :class:`BatchedRules` from the same initial weights and
compares the final weights (and astrocyte states, thresholds), in float64 and float32. The numba
kernels decay some traces lazily (``exp(age log_decay)`` when read), the torch ones densely (one
multiplication per step): the results agree to rounding. Measured in float64 on these cases:
largest relative weight difference 4e-14, largest absolute 1.2e-14 (asserted: 1e-12 relative plus
1e-15 absolute); Oja and BCM (dense traces in numba too) bit-identical; float32 bit-identical.
Every case must move most weights without pinning them to a bound (clipped weights compare nothing).

Batched runs: three samples with different recorded rasters in one ``B = 3`` replay; each row
must equal its own ``B = 1`` replay (the samples do not see each other), and rows may start from
their own weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.backends.numba_backend import NumbaBackend
from engine.backends.torch_rules import BatchedRules
from engine.errors import SimulationError
from engine.kernels import neurons as nk
from engine.plan import (
    AstrocytePlan,
    MonitorPlan,
    PoissonSourcePlan,
    PopulationPlan,
    ProjectionPlan,
    ReceptorPlan,
    RewardPlan,
    RulePlan,
    SimulationPlan,
    STPPlan,
)
from engine.runner import Simulation
from tests.engine.test_plasticity import driven_plan, random_case

#: float64 agreement with numba (lazy vs dense trace decay differ in the last bits)
RTOL, ATOL = 1e-12, 1e-15
CUDA = torch.cuda.is_available()

STDP = dict(A_plus=0.01, A_minus=0.012, w_max=0.05)
MULT = dict(STDP, form="multiplicative", mu_plus=0.4, mu_minus=0.6)
# amplitudes small enough that most weights end inside their bounds (clipped ones compare nothing)
TRIPLET = dict(A2_plus=0.0001, A3_plus=0.0002, A2_minus=0.00014, A3_minus=0.00004, w_max=0.05)
SYMMETRIC = dict(eta_pre=0.005, eta_post=0.004, w_max=0.5)
RSTDP = dict(A_plus=0.0005, A_minus=0.0006, tau_c=50.0, w_max=0.05)


# ---------------------------------------------------------------------------------------------
# recording on numba, replaying into BatchedRules
# ---------------------------------------------------------------------------------------------


def spike_emitters(plan) -> list[str]:
    return [p.name for p in plan.populations] + [s.name for s in plan.sources if s.emits_spikes]


def numba_run(plan):
    """(simulation, spikes per emitter name) of a numba run with a spike monitor on every
    population and source."""
    plan.monitors = [MonitorPlan("spikes:" + name, name) for name in spike_emitters(plan)]
    sim = Simulation(plan)
    res = sim.run()
    return sim, {name: res.spikes["spikes:" + name] for name in spike_emitters(plan)}


def run_numba(plan):
    """(final weights of the shared CSR, spikes per emitter name, astrocyte states) of a numba run."""
    sim, spikes = numba_run(plan)
    return sim.backend.net[6].copy(), spikes, sim.backend.astrocyte_states()


def packed_for(plan, dtype="float64") -> NumbaBackend:
    """The numba backend's tables only (as the torch backend builds them)."""
    return NumbaBackend(plan, dtype=dtype, parallel=False, uniform=False, lazy_inputs=False)


def replay(packed, rasters, n_steps, device="cpu", rules=None, weight=None, k0=0, dtype=torch.float64):
    """Feed ``rasters`` (one spikes-by-name dict per sample) into ``BatchedRules`` for steps
    ``k0 .. n_steps - 1``; returns (weights (B, n_syn) as numpy, the rules object, the weight tensor)."""
    device = torch.device(device)
    B = len(rasters)
    if rules is None:
        rules = BatchedRules(packed, B, device, dtype)
    if weight is None:
        weight = torch.from_numpy(np.asarray(packed.net[6])).to(device, dtype).repeat(B, 1)
    for k, spikes in step_spikes(packed, rasters, n_steps, device, k0):
        rules.step(k, spikes, weight)
    return weight.cpu().numpy(), rules, weight


def step_spikes(packed, rasters, n_steps, device="cpu", k0=0):
    """``(k, spikes)`` of steps ``k0 .. n_steps - 1``: entity -> flat ``b * size + i`` (ascending)."""
    per_entity = []
    for e, name in enumerate(packed.entity_names):
        size = int(packed.entity_sizes[e])
        steps = np.concatenate([np.asarray(r[name][0], np.int64) for r in rasters])
        flat = np.concatenate([b * size + np.asarray(r[name][1], np.int64) for b, r in enumerate(rasters)])
        order = np.lexsort((flat, steps))
        bounds = np.searchsorted(steps[order], np.arange(n_steps + 1))
        per_entity.append((e, torch.from_numpy(flat[order]).to(device), bounds))
    for k in range(k0, n_steps):
        yield k, {e: flat[bounds[k]:bounds[k + 1]] for e, flat, bounds in per_entity if bounds[k + 1] > bounds[k]}


def check_against_numba(make_plan, device="cpu", dtype="float64"):
    """Numba run, B = 1 replay, weights compared; returns (numba weights, initial weights)."""
    plan = make_plan()
    plan.dtype = dtype
    want, spikes, astro = run_numba(plan)
    packed = packed_for(make_plan(), dtype)
    got, rules, _ = replay(packed, [spikes], plan.n_steps, device, dtype=getattr(torch, dtype))
    w0 = np.asarray(packed.net[6])
    for p in packed.plastic_projections.values():
        s0, n = int(packed.plast.pp_syn0[p]), int(packed.plast.pp_nsyn[p])
        changed = np.abs(want[s0:s0 + n] - w0[s0:s0 + n]) > 1e-9
        m = np.abs(want[s0:s0 + n])
        inside = changed & (m > m.min()) & (m < m.max())
        assert inside.sum() >= n // 2, "the case must move most weights, and not all to a bound"
    np.testing.assert_allclose(got[0], want, rtol=RTOL, atol=ATOL)
    for a, name in enumerate(astro):
        assert float(rules.astro_A[0, a]) == pytest.approx(astro[name], rel=RTOL)
    return want, w0


# ---------------------------------------------------------------------------------------------
# plans
# ---------------------------------------------------------------------------------------------


def driven(rule_kw, max_delay=1, sign=1.0, seed=1, rewards=False):
    """tests/engine/test_plasticity.py's driven cases: random trains plus the edge cases
    (simultaneous pre and post, pairs exactly a window or a delay apart, weights at both bounds).
    ``rewards``: a dopamine signal ``da`` with positive and negative rewards, two at one step."""
    def make():
        case = random_case(seed, max_delay=max_delay, sign=sign, n_steps=1200)
        pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0, n_pre, n_post, n_steps = case
        mods = [RewardPlan("da", tau_d=20.0, tonic=0.0, steps=[150, 400, 400, 700, 1000],
                           amplitudes=[1.0, 0.5, 0.25, -0.8, 1.2])] if rewards else []
        return driven_plan(pre_steps, pre_idx, post_steps, post_idx, syn_pre, syn_post, delays, w0,
                           RulePlan(**rule_kw), n_pre, n_post, n_steps, modulators=mods)
    return make


def network(rules_in=(), rules_rec=(), seed=0, astrocyte=False, n=40, n_in=20, n_steps=1000, max_delay=4,
            rewards=False, input_delay=1):
    """A Poisson-driven LIF liquid (80 % excitatory, 20 % inhibitory) with a plastic input
    projection (delays 1..``input_delay``) and a plastic recurrent one (delays 1..``max_delay``); the
    topology is fixed, ``seed`` changes the Poisson streams only. Optionally a NALSM astrocyte
    counting the liquid minus the input; optionally a dopamine signal ``da``."""
    def make():
        rng = np.random.default_rng(123)
        delta = [ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")]
        pop = PopulationPlan("liq", "lif", n, params=dict(tau_m=20.0, t_ref=2.0), receptors=delta)
        src = PoissonSourcePlan("in", size=n_in, rates=rng.uniform(20.0, 60.0, n_in))
        pi, po = np.nonzero(rng.random((n_in, n)) < 0.5)
        w_in = rng.uniform(2.0, 6.0, pi.size)
        d_in = np.random.default_rng(7).integers(1, input_delay + 1, pi.size)
        proj_in = ProjectionPlan.from_coo("input", "in", "liq", n_in, pi, po, w_in, d_in, weight_dtype=np.float64,
                                          rules=[RulePlan(**kw) for kw in rules_in])
        ri, ro = np.nonzero((rng.random((n, n)) < 0.2) & ~np.eye(n, dtype=bool))
        sign = np.where(ri < int(0.8 * n), 1.0, -1.0)
        w_rec = sign * rng.uniform(0.5, 3.0, ri.size) * np.where(sign > 0, 1.0, 2.0)
        delays = rng.integers(1, max_delay + 1, ri.size)
        proj_rec = ProjectionPlan.from_coo("recurrent", "liq", "liq", n, ri, ro, w_rec, delays,
                                           weight_dtype=np.float64, rules=[RulePlan(**kw) for kw in rules_rec])
        astros = [AstrocytePlan("astro", ["liq"], ["in"], tau=100.0, w=0.015, b=0.15, A_init=0.15)] if astrocyte else []
        mods = [RewardPlan("da", tau_d=50.0, steps=[150, 300, 450], amplitudes=[1.0, -0.5, 2.0])] if rewards else []
        return SimulationPlan(dt=0.5, n_steps=n_steps, dtype="float64", seed=seed, populations=[pop], sources=[src],
                              projections=[proj_in, proj_rec], astrocytes=astros, modulators=mods)
    return make


def rule(kind, params, **kw):
    return dict(kind=kind, params=params, **kw)


NET_STDP = dict(A_plus=0.05, A_minus=0.06, w_max=8.0, tau_plus=10.0, tau_minus=10.0)


# ---------------------------------------------------------------------------------------------
# B = 1 against numba
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_delay", [1, 7])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
@pytest.mark.parametrize("same_step", ["pre_then_post", "exclusive"])
def test_pair_stdp_additive_matches_numba(max_delay, pairing, same_step):
    check_against_numba(driven(rule("stdp", STDP, pairing=pairing, same_step=same_step), max_delay))


@pytest.mark.parametrize("max_delay", [1, 5])
@pytest.mark.parametrize("pairing,same_step", [("all_to_all", "pre_then_post"), ("nearest", "exclusive")])
def test_pair_stdp_multiplicative_matches_numba(max_delay, pairing, same_step):
    check_against_numba(driven(rule("stdp", MULT, pairing=pairing, same_step=same_step), max_delay))


@pytest.mark.parametrize("max_delay", [1, 6])
@pytest.mark.parametrize("pairing,same_step", [("all_to_all", "pre_then_post"), ("nearest", "exclusive")])
def test_triplet_matches_numba(max_delay, pairing, same_step):
    check_against_numba(driven(rule("triplet", TRIPLET, pairing=pairing, same_step=same_step), max_delay))


@pytest.mark.parametrize("max_delay", [1, 4])
def test_symmetric_matches_numba(max_delay):
    check_against_numba(driven(rule("symmetric", SYMMETRIC, same_step="exclusive"), max_delay))


@pytest.mark.parametrize("kind,params", [("stdp", STDP), ("triplet", TRIPLET), ("symmetric", SYMMETRIC)])
@pytest.mark.parametrize("pairing,same_step", [("all_to_all", "pre_then_post"), ("nearest", "exclusive"),
                                               ("all_to_all", "exclusive")])
def test_dendritic_delays_match_numba(kind, params, pairing, same_step):
    """NEST's convention: presynaptic events at emission, postsynaptic ones d - 1 steps late."""
    check_against_numba(driven(rule(kind, params, pairing=pairing, same_step=same_step, dendritic=True),
                               max_delay=6))



@pytest.mark.parametrize("max_delay,dendritic", [(1, False), (5, False), (5, True)])
def test_reward_stdp_matches_numba(max_delay, dendritic):
    """Eligibility from the pair terms, weights moving only while dopamine is present (positive
    and negative rewards, two at one step), the eligibility decaying meanwhile."""
    check_against_numba(driven(rule("rstdp", RSTDP, modulator="da", dendritic=dendritic), max_delay, rewards=True))


def test_inhibitory_weights_keep_their_sign_as_in_numba():
    want, _ = check_against_numba(driven(rule("stdp", STDP), max_delay=3, sign=-1.0))
    assert np.all(want[:18] <= 0.0)


def test_recurrent_network_with_delays_and_two_rules_matches_numba():
    """Plastic input (one-step delays, lazy-trace path in numba) and plastic recurrent synapses
    with delays 1..4 (history-ring path), excitatory and inhibitory, pre and post the same
    population; normalisation composed with STDP on the input."""
    check_against_numba(network(
        rules_in=[rule("stdp", NET_STDP, pairing="nearest"),
                  rule("scaling_normalize", dict(target_sum=40.0, interval=50.0, w_max=8.0))],
        rules_rec=[rule("stdp", dict(NET_STDP, w_max=6.0), same_step="exclusive")]))


def test_astrocyte_gates_depression_per_sample_as_in_numba():
    """NALSM astrocyte setting A_minus of the recurrent rule (inhibitory synapses swap the two
    amplitudes) and of the input rule; its state A also compared."""
    check_against_numba(network(rules_in=[rule("stdp", NET_STDP, astrocyte="astro")],
                                rules_rec=[rule("stdp", NET_STDP, astrocyte="astro", same_step="exclusive")],
                                astrocyte=True))


@pytest.mark.parametrize("input_delay,max_delay,dendritic", [(1, 1, False), (2, 4, False), (2, 4, True)],
                         ids=["one_step", "ring", "dendritic"])
def test_projections_sharing_a_group_match_numba(input_delay, max_delay, dendritic):
    """Two projections with rules of one kind and options but different parameters (bounds,
    amplitudes, time constants) and different maximum delays run as one group; only one of them
    gated by the astrocyte."""
    other = dict(A_plus=0.03, A_minus=0.04, w_max=6.0, tau_plus=15.0, tau_minus=25.0)
    check_against_numba(network(rules_in=[rule("stdp", NET_STDP, astrocyte="astro", dendritic=dendritic)],
                                rules_rec=[rule("stdp", other, dendritic=dendritic)], astrocyte=True,
                                input_delay=input_delay, max_delay=max_delay, n_steps=1000))


@pytest.mark.parametrize("kw", [
    rule("scaling_activity", dict(a_target=5.0, tau_a=200.0, beta=2e-4, interval=5.0, w_max=8.0)),
    rule("oja", dict(eta=1e-4, tau_rate=100.0, interval=2.0, w_max=8.0)),
    rule("bcm", dict(eta=1e-5, tau_rate=100.0, tau_theta=300.0, y0=10.0, interval=1.0, w_max=8.0)),
], ids=["scaling_activity", "oja", "bcm"])
def test_rate_rules_match_numba(kw):
    check_against_numba(network(rules_in=[kw], rules_rec=[kw]))


def test_float32_weights_match_numba_float32():
    """float32 weights with float64 traces and arithmetic, as numba: measured bit-identical here
    (the lazy/dense trace difference stays below float32 rounding)."""
    check_against_numba(driven(rule("stdp", STDP, pairing="nearest"), max_delay=7), dtype="float32")
    check_against_numba(network(seed=1, **BATCH_RULES_REWARD), dtype="float32")


# ---------------------------------------------------------------------------------------------
# batched: samples are independent
# ---------------------------------------------------------------------------------------------

BATCH_RULES = dict(rules_in=[rule("stdp", NET_STDP, astrocyte="astro"),
                             rule("scaling_normalize", dict(target_sum=40.0, interval=50.0, w_max=8.0))],
                   rules_rec=[rule("triplet", dict(TRIPLET, w_max=6.0)),
                              rule("stdp", MULT | dict(w_max=6.0), pairing="nearest")],
                   astrocyte=True, n_steps=600)
#: reward-modulated input, dendritic delays on the recurrent synapses
BATCH_RULES_REWARD = dict(rules_in=[rule("rstdp", dict(NET_STDP, tau_c=100.0), modulator="da")],
                          rules_rec=[rule("stdp", dict(NET_STDP, w_max=6.0), dendritic=True, same_step="exclusive")],
                          rewards=True, n_steps=600)


@pytest.mark.parametrize("config", [BATCH_RULES, BATCH_RULES_REWARD], ids=["astrocyte", "reward_dendritic"])
def test_batch_rows_equal_their_own_runs(config):
    """B = 3 with three rasters (three Poisson seeds): row b equals the B = 1 replay of raster b
    and the numba run it was recorded from."""
    runs = [run_numba(network(seed=seed, **config)()) for seed in (1, 2, 3)]
    plan = network(**config)()
    packed = packed_for(plan)
    rasters = [spikes for _, spikes, _ in runs]
    assert len({len(r["liq"][0]) for r in rasters}) == 3, "the samples must differ"
    batched, rules, _ = replay(packed, rasters, plan.n_steps)
    for b, (want, spikes, astro) in enumerate(runs):
        single, _, _ = replay(packed_for(network(**config)()), [spikes], plan.n_steps)
        # equal up to the last bit: torch's CPU kernels take vectorised or scalar paths (pow in the
        # multiplicative rule) depending on an element's position in the batch
        np.testing.assert_allclose(batched[b], single[0], rtol=1e-14, atol=0.0)
        np.testing.assert_allclose(batched[b], want, rtol=RTOL, atol=ATOL)
        for a, name in enumerate(astro):
            assert float(rules.astro_A[b, a]) == pytest.approx(astro[name], rel=RTOL)
    assert not np.allclose(batched[0], batched[1])


def test_rows_with_their_own_weights_and_scaled_learning_rates():
    """Each row learns from its own weights: row 1 starts from other initial weights and equals
    the numba run started from those. Learning rates scaled as numba's
    ``set_learning_rate_scale`` scales them (astrocyte-gated depression included)."""
    make = driven(rule("stdp", STDP, same_step="exclusive"), max_delay=3)
    plan_a, plan_b = make(), make()
    plan_b.projections[0].weights = plan_b.projections[0].weights * 0.5
    want_a, spikes_a, _ = run_numba(plan_a)
    want_b, spikes_b, _ = run_numba(plan_b)
    assert all(np.array_equal(spikes_a[n][0], spikes_b[n][0]) for n in spikes_a), "driven: the same spikes"
    packed = packed_for(make())
    weight = torch.from_numpy(np.stack([np.asarray(packed.net[6]), np.asarray(packed_for(plan_b).net[6])]))
    got, _, _ = replay(packed, [spikes_a, spikes_b], plan_a.n_steps, weight=weight)
    np.testing.assert_allclose(got, np.stack([want_a, want_b]), rtol=RTOL, atol=ATOL)
    # learning rates at 0.3 of their built values, astrocyte gating on the input projection
    make = network(rules_in=[rule("stdp", NET_STDP, astrocyte="astro")], rules_rec=[rule("triplet", TRIPLET)],
                   astrocyte=True, n_steps=600)
    plan = make()
    plan.monitors = [MonitorPlan("spikes:" + name, name) for name in spike_emitters(plan)]
    sim = Simulation(plan)
    sim.backend.set_learning_rate_scale(0.3)
    res = sim.run()
    spikes = {name: res.spikes["spikes:" + name] for name in spike_emitters(plan)}  # as numba_run, scaled
    packed = packed_for(make())
    rules = BatchedRules(packed, 1, torch.device("cpu"), torch.float64)
    rules.set_learning_rate_scale(0.3)
    got, _, _ = replay(packed, [spikes], 600, rules=rules)
    np.testing.assert_allclose(got[0], sim.backend.net[6], rtol=RTOL, atol=ATOL)
    unscaled, _, _ = replay(packed, [spikes], 600)
    assert not np.allclose(unscaled[0], got[0])


def test_reset_and_state_tensors_restore():
    """reset() starts new samples (same weights in, same weights out); copying state_tensors()
    back restores a run mid-way."""
    make = network(seed=4, **BATCH_RULES)
    _, spikes, _ = run_numba(make())
    packed = packed_for(make())
    n = 400
    full, rules, _ = replay(packed, [spikes], n)
    # restore at step 200
    _, rules2, weight2 = replay(packed, [spikes], 200)
    saved = {key: t.clone() for key, t in rules2.state_tensors().items()}
    assert "astrocyte_A" in saved
    assert any(key.endswith(".spike_history") for key in saved), "the presynaptic spike ring (delays)"
    assert any(key.endswith("pre_trace_history1") for key in saved), "the triplet rule's r2 history"
    saved_w = weight2.clone()
    replay(packed, [spikes], 300, rules=rules2, weight=weight2, k0=200)
    for key, t in rules2.state_tensors().items():
        t.copy_(saved[key])
    weight2.copy_(saved_w)
    resumed, _, _ = replay(packed, [spikes], n, rules=rules2, weight=weight2, k0=200)
    np.testing.assert_array_equal(resumed, full)
    # reset: the same raster again from the initial weights gives the same weights
    rules.reset()
    again, _, _ = replay(packed, [spikes], n, rules=rules)
    np.testing.assert_array_equal(again, full)


# ---------------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------------


def _refused(plan) -> str:
    with pytest.raises(SimulationError) as err:
        BatchedRules(packed_for(plan), 2, torch.device("cpu"), torch.float64)
    return str(err.value)


def with_threshold_rule(make):
    """The driven case's targets as ALIF neurons with a Hao threshold rule (theta decaying)."""
    def make_alif():
        plan = make()
        plan.populations[0] = PopulationPlan("post", "alif", 3, params=dict(t_ref=0.0, tau_theta=150.0),
                                             receptors=list(plan.populations[0].receptors),
                                             threshold_rule=dict(theta_plus=0.07, offset=20.0))
        return plan
    return make_alif


def test_refuses_intrinsic_threshold_rules_unless_the_caller_applies_them():
    msg = _refused(with_threshold_rule(driven(rule("stdp", STDP)))())
    assert "threshold rule (intrinsic plasticity) of population 'post'" in msg and "numba backend" in msg


def test_threshold_step_matches_numba():
    """Hao's rule through threshold_step on a theta the caller decays each step (as the neuron
    update does): the final theta and the weights equal numba's."""
    make = with_threshold_rule(driven(rule("stdp", STDP), max_delay=3))
    plan = make()
    sim, spikes = numba_run(plan)
    packed = packed_for(make())
    rules = BatchedRules(packed, 1, torch.device("cpu"), torch.float64, threshold_rules=True)
    (name, e, _, _), = rules.threshold_rules
    slot = packed.slots[name]
    p_theta = torch.from_numpy(packed.lif[3][nk.LIF_PTHETA, slot.start:slot.stop].copy())
    theta = torch.from_numpy(packed.lif[0][nk.LIF_THETA, slot.start:slot.stop].copy())[None, :]
    weight = torch.from_numpy(np.asarray(packed.net[6]).copy())[None, :]
    for k, spikes_k in step_spikes(packed, [spikes], plan.n_steps):
        theta.mul_(p_theta)  # the neuron update of step k
        rules.step(k, spikes_k, weight)
        rules.threshold_step(spikes_k, {e: theta}, {e: p_theta})
    want_theta = sim.backend.get_state(name, "theta")
    assert np.all(want_theta > 0.05), "the rule must raise the thresholds"
    np.testing.assert_allclose(theta[0].numpy(), want_theta, rtol=1e-12)
    np.testing.assert_allclose(weight[0].numpy(), sim.backend.net[6], rtol=RTOL, atol=ATOL)


def test_refuses_short_term_plasticity():
    plan = driven(rule("stdp", STDP))()
    plan.projections[0].stp = STPPlan()
    assert "short-term plasticity of projection 'plastic'" in _refused(plan)


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_matches_numba():
    check_against_numba(driven(rule("stdp", STDP, pairing="nearest", same_step="exclusive"), max_delay=7), "cuda")
    check_against_numba(network(seed=5, **BATCH_RULES), "cuda")


def test_two_dendritic_rules_on_one_projection_see_the_same_delayed_post_spikes():
    """Every dendritic rule on a projection gets the step's delayed postsynaptic events (numba's
    kernel once recorded the post-spike ring per rule, so a second rule saw none of the older
    ones; the torch kernels, written independently, always gave every rule the same events)."""
    sym = dict(eta_pre=0.01, eta_post=0.012, w_max=8.0)
    check_against_numba(network(rules_rec=[rule("stdp", NET_STDP, dendritic=True),
                                           rule("symmetric", sym, dendritic=True)], max_delay=6))


@pytest.mark.parametrize("max_delay", [1, 5])
def test_multiplicative_stdp_in_float32_stays_finite_at_the_bounds(max_delay):
    """A float32 weight clipped to w_max can be stored a rounding step above it; the rule's
    (1 - u)^mu_plus was then NaN (numba raised an instability). Both kernels clamp u to [0, 1]."""
    want, _ = check_against_numba(driven(rule("stdp", MULT), max_delay), dtype="float32")
    assert np.all(np.isfinite(want))


@pytest.mark.parametrize("config", [
    BATCH_RULES, BATCH_RULES_REWARD,
    dict(rules_in=[rule("oja", dict(eta=1e-4, tau_rate=100.0, interval=2.0, w_max=8.0))],
         rules_rec=[rule("bcm", dict(eta=1e-5, tau_rate=100.0, tau_theta=300.0, y0=10.0, interval=1.0, w_max=8.0))],
         n_steps=600),
    dict(rules_in=[rule("scaling_activity", dict(a_target=5.0, tau_a=200.0, beta=2e-4, interval=5.0, w_max=8.0))],
         n_steps=600),
], ids=["astrocyte", "reward_dendritic", "oja_bcm", "scaling"])
def test_each_copy_learns_at_its_own_point_of_a_learning_rate_schedule(config):
    """A batch's copies present samples at different points of a learning-rate schedule: with
    per-copy scales (1, 0.3, 0.05) row b equals numba's run at ``set_learning_rate_scale(s_b)``
    (every rule kind, the astrocyte-gated depression and reward eligibility included)."""
    scales = np.array([1.0, 0.3, 0.05])
    wants, rasters = [], []
    for scale in scales:
        plan = network(seed=1, **config)()
        plan.monitors = [MonitorPlan("spikes:" + name, name) for name in spike_emitters(plan)]
        sim = Simulation(plan)
        sim.backend.set_learning_rate_scale(float(scale))
        res = sim.run()
        wants.append(sim.backend.net[6].copy())
        rasters.append({name: res.spikes["spikes:" + name] for name in spike_emitters(plan)})
    packed = packed_for(network(seed=1, **config)())
    rules = BatchedRules(packed, 3, torch.device("cpu"), torch.float64)
    rules.set_learning_rate_scale(scales)
    got, _, _ = replay(packed, rasters, 600, rules=rules)
    for b in range(3):
        np.testing.assert_allclose(got[b], wants[b], rtol=RTOL, atol=ATOL, err_msg=f"copy {b}")
    assert not np.allclose(wants[0], wants[2]), "the scale changes what is learned"
    with pytest.raises(SimulationError, match="one value per copy"):
        rules.set_learning_rate_scale(scales[:2])
