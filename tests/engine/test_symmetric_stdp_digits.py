"""Supervised symmetric STDP on the digits (Hao et al. 2020, MODELS.md §8): the teacher source
(HAO-3), the vote readout by index, learned thresholds carried from training into the test phase,
and a shortened run of the shipped example."""

from __future__ import annotations

import numpy as np
import pytest

from engine import encoders, examples
from engine.compiler import compile_graph
from engine.graph import ModelGraph
from engine.readouts import evaluate_readout
from engine.training import THRESHOLD_CARRY, Protocol
from engine.validate import validate


def test_hao3_teacher_label_neuron_count_and_dead_time():
    """HAO-3: p = 0.1 per step (200 Hz at dt = 0.5 ms) with a one-step dead time: 700 steps give
    700·0.1/1.1 = 63.6 spikes on average (sd about 7); the other channels emit nothing."""
    n = 2000
    labels = np.arange(n) % 10
    starts = np.arange(n) * 800
    steps, channels = encoders.teacher_spikes(labels, starts, 700, 0.1, np.random.default_rng(1), 10)
    sample = steps // 800
    assert np.all(channels == labels[sample]), "only the label's channel fires"
    assert np.all(steps - starts[sample] < 700), "silent outside the presentation"
    assert np.all(np.diff(steps)[np.diff(sample) == 0] >= 2), "never in two consecutive steps"
    counts = np.bincount(sample, minlength=n)
    assert counts.mean() == pytest.approx(700 * 0.1 / 1.1, abs=4 * 7 / np.sqrt(n))
    assert 5.0 < counts.std() < 9.0
    assert np.all(np.diff(steps) >= 0)


def test_teacher_all_but_label_silences_the_label_channel():
    labels = np.array([3, 0, 9])
    steps, channels = encoders.teacher_spikes(labels, [0, 100, 200], 50, 1.0, np.random.default_rng(0), 10,
                                              others=True)
    sample = steps // 100
    assert np.all(channels != labels[sample])
    # p = 1 with the dead time: every second step, on each of the nine other channels
    assert np.bincount(sample).tolist() == [9 * 25] * 3


def test_teacher_compiles_from_the_dataset_labels():
    g = ModelGraph()
    enc = g.add_node("input.dataset", "Digits", (0, 0), presentation=20.0, rest=5.0, n_samples=12)
    teacher = g.add_node("input.teacher", "Teacher", (200, 0), n=10, rate=100.0)
    g.connect(enc.id, "labels", teacher.id, "labels")
    assert not [p for p in validate(g) if p.severity == "error"]
    plan = compile_graph(g, {"dt": 1.0, "duration": 300.0})
    [src] = [s for s in plan.sources if s.name == teacher.id]
    dataset = plan.metadata["datasets"][enc.id]
    sample = np.searchsorted(dataset["sample_start"], src.steps, side="right") - 1
    assert src.steps.size > 0
    np.testing.assert_array_equal(src.indices, np.asarray(dataset["labels"])[sample])
    assert np.all(src.steps - np.asarray(dataset["sample_start"])[sample] < 20)
    g.set_param(teacher.id, "n", 5)
    assert any(p.field == "n" and p.node == "Teacher" for p in validate(g))


def test_vote_by_index_scores_every_sample_with_neuron_c_for_class_c():
    labels = np.array([0, 1, 2, 2, 1])
    steps = np.array([1, 12, 23, 33, 41, 42])
    idx = np.array([0, 1, 2, 1, 1, 0])  # sample 3: class 1 wins (wrong); sample 4: tie 0/1
    dataset = dict(labels=labels, sample_start=np.arange(5) * 10, presentation_steps=10)
    info = dict(kind="vote", window_steps=0, sizes=[3], params=dict(assignment="by_index", test_fraction=0.25))
    out = evaluate_readout(info, dataset, [(steps, idx)], 50)
    assert out["n_test"] == 5 and out["n_train"] == 0
    np.testing.assert_array_equal(out["assignment"], [0, 1, 2])
    np.testing.assert_array_equal(out["predicted"], [0, 1, 2, 1, -1])
    assert out["accuracy"] == pytest.approx(3 / 5) and out["n_ties"] == 1
    # a neuron beyond the classes is unassigned and takes no part
    more = evaluate_readout(dict(info, sizes=[4]), dataset, [(np.append(steps, 3), np.append(idx, 3))], 50)
    np.testing.assert_array_equal(more["assignment"], [0, 1, 2, -1])
    np.testing.assert_array_equal(more["predicted"], out["predicted"])


@pytest.fixture(scope="module")
def short_run():
    """The shipped recipe shortened: 400 training and 150 test samples (about 15 s)."""
    protocol = Protocol(examples.symmetric_stdp_digits(train_samples=400, test_samples=150))
    return protocol, protocol.run()


def test_thresholds_learned_in_training_are_frozen_for_testing(short_run):
    protocol, _ = short_run
    learned = protocol.learned[THRESHOLD_CARRY + next(p.name for p in protocol.plan.populations if p.size == 100)]
    hidden = next(p for p in protocol.plan.populations if p.size == 100)  # the test phase's plan
    assert "theta" not in hidden.initial_state, "plasticity is off in the test phase"
    np.testing.assert_array_equal(hidden.param("V_th"), learned)
    # theta grows per spike and decays with tau_theta = 6e6 ms: a neuron that never fired in the
    # 400 x 350 ms of training ends at -52 - 20 (1 - exp(-140 s / 6000 s)) = -52.461 mV
    floor = -52.0 - 20.0 * (1.0 - np.exp(-400 * 350.0 / 6e6))
    assert learned.min() == pytest.approx(floor, abs=1e-4) or learned.min() > floor
    assert learned.max() > -52.0 + 1.0, "the busiest neurons raised their thresholds"
    assert "threshold:" not in "".join(protocol.final_weights())


def test_shortened_symmetric_stdp_digits_is_well_above_chance(short_run):
    """Chance is 10 %; this shortened run (400 training samples, 150 test samples) measured 82.0 %,
    the full example 88.5 % (2408 training samples, 593 test samples). Bound: 50 %."""
    _, results = short_run
    [readout] = results.readouts.values()
    assert readout["n_test"] == 150
    assert readout["accuracy"] >= 0.5
    assert readout["confusion"].sum() + readout["n_ties"] == 150


def test_the_test_phase_presents_the_whole_test_split():
    """The test phase's override (Digits.split = test) sets its length: 593 of the 1797 digits."""
    protocol = Protocol(examples.symmetric_stdp_digits())
    assert protocol.sizes == [(2408, 350.0), (593, 350.0)]
    assert protocol.total_steps == (2408 + 593) * 700
