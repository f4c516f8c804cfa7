"""The plasticity benchmark simulates what it claims: the MODELS.md §4.1 Song network, comparable
summaries, and a "pinned" plastic projection that changes nothing but the cost."""

import numpy as np
import pytest

from benchmarks.bench_song import SONG, cuba_variant_plan, song_plan, song_summary, stdp2_verdict
from engine.runner import Simulation


def test_song_plan_is_the_models_spec_network():
    plan = song_plan(100.0, 0.1, 2000, "float32")
    (src,) = plan.sources
    assert src.size == SONG["n_inputs"] and float(np.asarray(src.rates)) == SONG["rate_hz"]
    (pop,) = plan.populations
    assert pop.model == "cobalif" and pop.size == 1
    for key, spec in (("tau_m", "tau_m"), ("E_L", "E_L"), ("V_th", "V_th"), ("V_reset", "V_reset")):
        assert float(np.asarray(pop.params[key])) == SONG[spec]
    assert float(np.asarray(pop.params["t_ref"])) == 0.0
    exc = pop.receptors[pop.receptor_index("exc")]
    assert (exc.tau, exc.E_rev) == (SONG["tau_e"], SONG["E_e"])
    (proj,) = plan.projections
    assert proj.n_synapses == SONG["n_inputs"] and np.all(proj.delays == 1)
    assert proj.weights.min() >= 0.0 and proj.weights.max() <= SONG["g_max"]
    (rule,) = proj.rules
    g = rule.get
    assert (rule.kind, g("form"), rule.pairing, rule.same_step) == ("stdp", "additive", "all_to_all", "pre_then_post")
    assert (g("w_min"), g("w_max"), g("tau_plus"), g("tau_minus")) == (0.0, SONG["g_max"], 20.0, 20.0)
    assert g("A_plus") == pytest.approx(SONG["a_plus_frac"] * SONG["g_max"], rel=1e-12)
    assert g("A_minus") == pytest.approx(SONG["a_minus_ratio"] * g("A_plus"), rel=1e-12)
    assert [(m.name, m.kind) for m in plan.monitors] == [("out", "spikes")]


def test_song_summary_bins_rates_and_bands():
    u = np.array([0.0, 0.05, 0.1, 0.55, 0.999, 1.0, 1.0 + 1e-7])
    row = song_summary([0.0, 5000.0, 95000.0, 99999.9], u, 100000.0)
    assert row["hist"] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 3]  # 0.1 opens bin 1; g_max (and above) in the last bin
    assert row["rate_hz"] == pytest.approx(4 / 100.0)
    assert row["rate_last_hz"] == pytest.approx(2 / 10.0)
    assert row["n_syn"] == 7
    song_like = dict(hist=[241, 108, 76, 51, 54, 57, 65, 60, 89, 199], mean_w=0.473, rate_last_hz=23.4)
    assert stdp2_verdict(song_like) == "yes"
    assert stdp2_verdict(dict(song_like, rate_last_hz=12.1)) == "no"
    assert stdp2_verdict(dict(song_like, hist=[100] * 10)) == "no"


def test_pinned_stdp_costs_but_changes_nothing():
    """Pinned bounds keep every weight (and so every spike) of the static run; with free bounds the
    same rule moves the weights, so the rule really is attached to the projection."""
    runs = {}
    for variant in ("static", "pinned", "learning"):
        plan = cuba_variant_plan(variant, 400, 100.0, 0.1, 3, "float32")
        sim = Simulation(plan)
        res = sim.run(100.0)
        runs[variant] = (res.spikes["spikes"], sim.final_weights().get("Ce"))
    (s_static, i_static), _ = runs["static"]
    (s_pinned, i_pinned), w_pinned = runs["pinned"]
    assert s_static.size > 50
    np.testing.assert_array_equal(s_pinned, s_static)
    np.testing.assert_array_equal(i_pinned, i_static)
    assert np.all(w_pinned == np.float32(1.62))
    w_learning = runs["learning"][1]
    assert np.count_nonzero(w_learning != np.float32(1.62)) > w_learning.size // 10
