"""Golden values of MODELS.md §1.1 (LIF-1..5), §1.3 (ALIF-1..3), §2.1 (SYN-1), §3.5 (DEL-1).

All float64, exact integration, threshold-first step order; spike steps must match exactly.
"""

import math

import numpy as np
import pytest

from engine.plan import ReceptorPlan
from tests.engine.helpers import pulse_plan, run_plan, single_neuron_plan, spike_steps

# generic LIF defaults (§1.1): tau_m 10 ms, E_L = V_reset = -70, V_th = -50, t_ref 2 ms, R = 0.1 GΩ
R = 0.1


def lif_plan(RI, dt=0.1, duration_ms=1000.0, model="lif", **params):
    return single_neuron_plan(model, dt=dt, duration_ms=duration_ms, params=dict(I_e=RI / R, **params))


def analytic_isi(RI, tau_m=10.0, t_ref=2.0, v_gap=20.0):
    return t_ref + tau_m * math.log(RI / (RI - v_gap))


def test_lif1_analytic_rate_and_fine_grid(backend):
    """LIF-1: analytic rate 77.005 Hz (ISI 12.986 ms); a fine grid converges to it."""
    assert analytic_isi(30.0) == pytest.approx(12.986, abs=5e-4)
    assert 1000.0 / analytic_isi(30.0) == pytest.approx(77.005, abs=5e-4)
    res = run_plan(lif_plan(30.0, dt=0.001, duration_ms=100.0), backend)
    isi = np.diff(spike_steps(res)) * 0.001
    assert np.all(np.abs(isi - analytic_isi(30.0)) <= 0.001 + 1e-12)


def test_lif2_discrete_dt_01(backend):
    """LIF-2: first spike at step 110, every ISI 130 steps, 77 spikes in [0, 1000) ms."""
    steps = spike_steps(run_plan(lif_plan(30.0), backend))
    assert steps[0] == 110
    assert np.all(np.diff(steps) == 130)
    assert steps.size == 77


def test_lif3_discrete_dt_1(backend):
    """LIF-3: dt = 1 ms: first spike at 11 ms, ISI 13 ms, 77 spikes."""
    steps = spike_steps(run_plan(lif_plan(30.0, dt=1.0), backend))
    assert steps[0] == 11
    assert np.all(np.diff(steps) == 13)
    assert steps.size == 77


def test_lif4_subthreshold(backend):
    """LIF-4: R·I_e = 19.9 mV: no spike, V rises monotonically to -50.1 mV."""
    res = run_plan(lif_plan(19.9), backend)
    assert spike_steps(res).size == 0
    steps, V = res.states["state"]["V"]
    v = V[:, 0]
    assert np.all(np.diff(v) >= 0)
    assert v[-1] == pytest.approx(-50.1, abs=1e-9)
    # exact solution on the grid
    t = steps * 0.1
    np.testing.assert_allclose(v, -70.0 + 19.9 * (1 - np.exp(-t / 10.0)), rtol=0, atol=1e-10)


@pytest.mark.parametrize("RI", [21.0, 25.0, 30.0, 40.0, 60.0])
def test_lif5_fI_sweep(backend, RI):
    """LIF-5: simulated ISI = n_ref·dt + m·dt, m = ceil((tau_m/dt)·ln(RI/(RI - 20)))."""
    dt = 0.1
    steps = spike_steps(run_plan(lif_plan(RI, duration_ms=300.0), backend))
    m = math.ceil((10.0 / dt) * math.log(RI / (RI - 20.0)))
    assert steps[0] == m
    assert np.all(np.diff(steps) == 20 + m)


def test_syn1_psp_shape(backend):
    """SYN-1: tau_m 10, tau_s 5, R·w = 10 mV at t = 0: peak 2.5 mV at 6.931 ms (2.49998 at 6.9 ms)."""
    plan = pulse_plan("lif", ReceptorPlan("exc", "exponential", 5.0), weight=100.0, duration_ms=30.0,
                      params=dict(V_th=1e9))
    steps, V = run_plan(plan, backend).states["state"]["V"]
    dv = V[:, 0] + 70.0
    t = steps * 0.1
    analytic = 10.0 * 5.0 / (5.0 - 10.0) * (np.exp(-t / 5.0) - np.exp(-t / 10.0))
    np.testing.assert_allclose(dv, analytic, rtol=1e-9, atol=1e-12)
    peak = int(np.argmax(dv))
    assert steps[peak] == 69
    assert dv[peak] == pytest.approx(2.49998, abs=5e-6)


def test_syn1_psp_dt_1(backend):
    plan = pulse_plan("lif", ReceptorPlan("exc", "exponential", 5.0), weight=100.0, dt=1.0, duration_ms=30.0,
                      params=dict(V_th=1e9))
    steps, V = run_plan(plan, backend).states["state"]["V"]
    dv = V[:, 0] + 70.0
    assert steps[int(np.argmax(dv))] == 7
    assert dv.max() == pytest.approx(2.49988, abs=5e-6)


def test_syn_equal_time_constants(backend):
    """tau_s == tau_m uses the degenerate propagator: PSP = R w (t/tau) e^{-t/tau}."""
    plan = pulse_plan("lif", ReceptorPlan("exc", "exponential", 10.0), weight=100.0, duration_ms=30.0,
                      params=dict(V_th=1e9))
    steps, V = run_plan(plan, backend).states["state"]["V"]
    t = steps * 0.1
    np.testing.assert_allclose(V[:, 0] + 70.0, 10.0 * (t / 10.0) * np.exp(-t / 10.0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 7, 20])
def test_del1_latency(backend, d):
    """DEL-1: a spike at step 0 through a delta synapse of delay d first changes V at step d."""
    plan = pulse_plan("lif", ReceptorPlan("exc", "delta"), weight=1.0, delay=d, duration_ms=5.0,
                      params=dict(V_th=1e9))
    steps, V = run_plan(plan, backend).states["state"]["V"]
    changed = np.flatnonzero(V[:, 0] != -70.0)
    assert steps[changed[0]] == d
    assert V[changed[0], 0] == pytest.approx(-69.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# adaptive LIF (§1.3): LIF defaults, R·I = 30 mV, dt = 0.1 ms, 1000 ms
# ----------------------------------------------------------------------------------------------


def test_alif1_threshold_adaptation(backend):
    """ALIF-1: 42 spikes; first spikes 11.0, 25.9, 42.7, 61.3, 81.5 ms; steady ISI 25.1 ms."""
    steps = spike_steps(run_plan(lif_plan(30.0, model="alif", delta_theta=2.0, tau_theta=100.0), backend))
    assert steps.size == 42
    np.testing.assert_array_equal(steps[:5], [110, 259, 427, 613, 815])
    assert np.all(np.diff(steps)[-10:] == 251)


def test_alif2_analytic_fixed_point(backend):
    """ALIF-2: periodic fixed point T* = 25.080 ms; simulated steady ISI within one step."""
    # T = t_ref + tau_m ln(30 / (30 - 20 - Δθ x/(1-x))), x = exp(-T/tau_θ); root of T - rhs(T)
    from scipy.optimize import brentq

    def gap(T):
        x = math.exp(-T / 100.0)
        return T - (2.0 + 10.0 * math.log(30.0 / (30.0 - 20.0 - 2.0 * x / (1.0 - x))))

    T = brentq(gap, 19.0, 100.0, xtol=1e-12)
    assert T == pytest.approx(25.080, abs=5e-4)
    steps = spike_steps(run_plan(lif_plan(30.0, model="alif", delta_theta=2.0, tau_theta=100.0), backend))
    assert abs(np.diff(steps)[-1] * 0.1 - T) <= 0.1


def test_alif3_adaptation_current(backend):
    """ALIF-3: a_w = 0, R·b_w = 2 mV, tau_w = 100 ms: 42 spikes, steady ISI 24.7 ms."""
    steps = spike_steps(run_plan(lif_plan(30.0, model="alif", b_w=2.0 / R, tau_w=100.0), backend))
    assert steps.size == 42
    # the continuous steady ISI lies between grid points: the discrete one alternates 247/248 steps
    last = np.diff(steps)[-20:]
    assert set(last.tolist()) <= {247, 248}
    assert round(last.mean() * 0.1, 1) == 24.7


def test_alif_coupled_limit_matches_uncoupled(backend):
    """The matrix-exponential path (a_w != 0) tends to the closed form as a_w -> 0."""
    base = dict(b_w=20.0, tau_w=100.0)
    a = run_plan(lif_plan(30.0, model="alif", a_w=0.0, **base), backend).states["state"]["V"][1]
    b = run_plan(lif_plan(30.0, model="alif", a_w=1e-12, **base), backend).states["state"]["V"][1]
    np.testing.assert_allclose(a, b, atol=1e-8)
