"""Step-loop kernels compiled per feature set (engine.kernels.network.chunk_kernel).

Each network runs on the variant compiled for its features only; these tests check that a variant
gives bit-identical results to the general kernel (every code path compiled: the kernel as it was
before the split), that the features name what a network uses, and that a variant's machine code
holds none of the kernels it does not need.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import examples
from engine.compiler import compile_graph
from engine.kernels import network as netk
from engine.kernels import plasticity as pk
from engine.kernels import specialise
from engine.networks import cuba_plan
from engine.plan import MonitorPlan
from engine.runner import Simulation


def _example_plan(make, duration_ms):
    project = make()
    return compile_graph(project, dict(project.settings.values_json(), duration=duration_ms))


def _cuba_with_probes():
    plan = cuba_plan(n=300, duration_ms=50.0, dtype="float64")
    plan.monitors.append(MonitorPlan("v", "P", "state", variables=("V", "I_exc"), indices=np.arange(0, 300, 7)))
    return plan


NETWORKS = {
    "cuba with state probes": _cuba_with_probes,
    "song STDP (Poisson, conductance LIF, STDP)": lambda: _example_plan(examples.song_stdp, 300.0),
    "Izhikevich with currents": lambda: _example_plan(examples.izhikevich_network, 200.0),
    "reward STDP (trains, Poisson, Izhikevich, R-STDP)": lambda: _example_plan(examples.reward_conditioning, 300.0),
    "NALSM digits (data set, astrocyte, STDP)": lambda: _example_plan(examples.nalsm_digits, 300.0),
}


@pytest.fixture(autouse=True)
def variants_on(monkeypatch):
    """This file checks the per-feature variants themselves (the rest of the suite runs the general
    kernel, tests/conftest.py)."""
    monkeypatch.delenv("SYNWEAVE_GENERAL_KERNEL", raising=False)


def _run(plan, general: bool):
    sim = Simulation(plan)
    if general:
        sim.backend._run_chunk = netk.chunk_kernel(netk.ChunkFeatures())
    results = sim.run(plan.n_steps * plan.dt, chunk_steps=37)
    return sim, results


def _same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x.view(np.uint8) if x.dtype.kind == "f" else x,
                              y.view(np.uint8) if y.dtype.kind == "f" else y)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_each_variant_is_bit_identical_to_the_general_kernel(name):
    make = NETWORKS[name]
    sim, special = _run(make(), general=False)
    assert sim.backend._run_chunk is not netk.chunk_kernel(netk.ChunkFeatures())
    ref_sim, general = _run(make(), general=True)
    assert special.n_spikes + sum(int(r.sum()) for r in special.rates.values()) > 0  # the network is not idle
    for attr in ("spikes", "states", "rates", "weights"):
        _same(getattr(special, attr), getattr(general, attr))
    _same(sim.backend.state_arrays(), ref_sim.backend.state_arrays())


def test_features_name_what_a_network_uses():
    f = Simulation(_cuba_with_probes()).backend.kernel_features
    assert f == netk.ChunkFeatures(lif_serial=True, lif_parallel=False, coba_serial=False, coba_parallel=False,
                                   izh_serial=False, izh_parallel=False, poisson=False, trains=False, current=False,
                                   probes=True, stp=False, plasticity=pk.PlasticityFeatures(*[False] * 10))
    song = Simulation(_example_plan(examples.song_stdp, 1.0)).backend.kernel_features
    assert song.coba_serial and song.poisson and not (song.lif_serial or song.probes or song.trains)
    assert song.plasticity == pk.PlasticityFeatures(*[False] * 10)._replace(timing=True)
    nalsm = Simulation(_example_plan(examples.nalsm_digits, 1.0)).backend.kernel_features
    assert nalsm.trains and nalsm.lif_serial and nalsm.plasticity.astrocytes and nalsm.plasticity.timing
    assert not (nalsm.plasticity.rstdp or nalsm.plasticity.tripartite or nalsm.plasticity.rate)
    assert len({f.name, song.name, nalsm.name, netk.ChunkFeatures().name}) == 4


def test_a_variant_compiles_only_the_kernels_its_network_needs():
    """The CUBA variant's machine code holds the LIF, propagation and monitor kernels and none of
    the other neuron models, sources, short-term plasticity or plasticity kernels (compiled here
    under a name of its own, without the disk cache, so that it is really compiled)."""
    sim = Simulation(_cuba_with_probes())
    constants = netk.chunk_constants(sim.backend.kernel_features)
    assert constants["_COBA"] is False and constants["_LIF_SERIAL"] is True
    kernel = specialise(netk._run_chunk, "run_chunk_test_uncached", constants, dict(nogil=True))
    sig = sim.backend._run_chunk.signatures[0]
    kernel.compile(sig)
    code = kernel.inspect_llvm(sig)
    for needed in ("lif_update", "lif_detect", "propagate", "_probe_value"):
        assert needed in code
    for unneeded in ("coba_update", "izh_update", "lif_update_parallel", "poisson_step", "spike_train_step",
                     "current_step", "stp_release", "plasticity_step", "_timing_rule", "tripartite"):
        assert unneeded not in code, unneeded
