"""Izhikevich (2003) golden table of MODELS.md §1.4, every preset, and the §9.1 network (IZN-1)."""

import numpy as np
import pytest

from engine.plan import (CurrentSourcePlan, MonitorPlan, PopulationPlan, ProjectionPlan,
                         ReceptorPlan, SimulationPlan)
from engine.runner import Simulation
from nodes.neurons import IZHIKEVICH_PRESETS

PRESETS = list(IZHIKEVICH_PRESETS)

# type: (2003 I=10 count, first spike steps), Euler dt=0.1 I=10, Euler dt=0.01 I=10, 2003 I=5, 2003 I=14
TABLE = {
    "RS": (20, (4, 31, 79, 141), 23, 23, 10, 26),
    "IB": (28, (4, 8, 46, 85), 34, 34, 12, 41),
    "CH": (43, (4, 7, 10, 14), 87, 87, 28, 63),
    "FS": (64, (4, 11, 22, 34), 131, 136, 33, 87),
    "LTS": (46, (4, 10, 21, 49), 77, 78, 28, 60),
    "TC": (63, (4, 9, 15, 23), 260, 275, 42, 95),
    "RZ": (76, (4, 22, 30, 42), 186, 195, 54, 100),
}


def run_presets(backend, scheme, dt, current, presets=PRESETS, duration_ms=1000.0, dtype="float64"):
    """One neuron per preset in a single population with per-neuron (a, b, c, d)."""
    a, b, c, d = np.array([IZHIKEVICH_PRESETS[p] for p in presets]).T
    pop = PopulationPlan("izh", "izhikevich", len(presets), params=dict(a=a, b=b, c=c, d=d, I_e=current), scheme=scheme)
    plan = SimulationPlan(dt=dt, dtype=dtype, populations=[pop], monitors=[MonitorPlan("spikes", "izh")])
    steps, idx = Simulation(plan, backend=backend).run(duration_ms).spikes["spikes"]
    return {p: steps[idx == i] for i, p in enumerate(presets)}


def test_split2003_I10_counts_and_first_spikes(backend):
    spikes = run_presets(backend, "split2003", 1.0, 10.0)
    for p in PRESETS:
        count, first = TABLE[p][:2]
        assert spikes[p].size == count, p
        np.testing.assert_array_equal(spikes[p][: len(first)], first, err_msg=p)


@pytest.mark.parametrize("current, column", [(5.0, 4), (14.0, 5)])
def test_split2003_other_currents(backend, current, column):
    spikes = run_presets(backend, "split2003", 1.0, current)
    assert {p: int(spikes[p].size) for p in PRESETS} == {p: TABLE[p][column] for p in PRESETS}


def test_euler_dt01_I10(backend):
    spikes = run_presets(backend, "euler", 0.1, 10.0)
    assert {p: int(spikes[p].size) for p in PRESETS} == {p: TABLE[p][2] for p in PRESETS}


def test_euler_dt001_I10_two_presets(backend):
    """dt = 0.01 ms for two presets only (100k steps)."""
    spikes = run_presets(backend, "euler", 0.01, 10.0, presets=["RS", "FS"])
    assert spikes["RS"].size == 23
    assert spikes["FS"].size == 136


def izhikevich_network_plan(seed, duration_ms=1000.0, dtype="float64"):
    """§9.1: 800 exc + 200 inh, all-to-all S, thalamic noise 5·N(0,1) / 2·N(0,1), dt = 1 ms, 2003 scheme."""
    rng = np.random.default_rng(seed)
    ne, ni = 800, 200
    re, ri = rng.random(ne), rng.random(ni)
    exc = PopulationPlan("exc", "izhikevich", ne, scheme="split2003",
                         params=dict(a=0.02, b=0.2, c=-65 + 15 * re ** 2, d=8 - 6 * re ** 2),
                         receptors=[ReceptorPlan("syn", "delta")])
    inh = PopulationPlan("inh", "izhikevich", ni, scheme="split2003",
                         params=dict(a=0.02 + 0.08 * ri, b=0.25 - 0.05 * ri, c=-65.0, d=2.0),
                         receptors=[ReceptorPlan("syn", "delta")])
    projections = []
    for pre, n_pre, scale in (("exc", ne, 0.5), ("inh", ni, -1.0)):
        for post, n_post in (("exc", ne), ("inh", ni)):
            pre_idx = np.repeat(np.arange(n_pre), n_post)
            post_idx = np.tile(np.arange(n_post), n_pre)
            w = scale * rng.random(pre_idx.size)
            projections.append(ProjectionPlan.from_coo(f"{pre}->{post}", pre, post, n_pre, pre_idx, post_idx, w, 1,
                                                       receptor="syn", weight_dtype=np.float64))
    sources = [CurrentSourcePlan("thal_e", target="exc", waveform="noise", amplitude=5.0),
               CurrentSourcePlan("thal_i", target="inh", waveform="noise", amplitude=2.0)]
    monitors = [MonitorPlan("exc", "exc"), MonitorPlan("inh", "inh"), MonitorPlan("rate", "exc", "rate")]
    return SimulationPlan(dt=1.0, n_steps=int(duration_ms), dtype=dtype, seed=seed, populations=[exc, inh],
                          sources=sources, projections=projections, monitors=monitors)


@pytest.mark.slow
def test_izn1_network_regime(backend):
    """IZN-1: exc rate in [6.5, 9] Hz, dominant rhythm of the population count in [6, 12] Hz."""
    res = Simulation(izhikevich_network_plan(3), backend=backend).run(1000.0)
    exc_rate = res.mean_rate("exc")
    assert 6.5 <= exc_rate <= 9.0
    assert 5.0 <= res.mean_rate("inh") <= 12.0
    counts = res.rates["rate"].astype(float)
    spectrum = np.abs(np.fft.rfft(counts - counts.mean()))
    freqs = np.fft.rfftfreq(counts.size, d=1e-3)
    band = freqs > 2.0
    peak = freqs[band][np.argmax(spectrum[band])]
    assert 6.0 <= peak <= 12.0
