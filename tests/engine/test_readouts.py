"""Readouts and liquid diagnostics (MODELS.md §6, §7.9): hand-computed cases, the spec's golden
values (BF-1..4, soft targets), and scikit-learn / torch as independent references."""

import numpy as np
import pytest

from engine import readouts as R


# ---------------------------------------------------------------------------------------------
# branching factor: MODELS.md §6.3 golden tests
# ---------------------------------------------------------------------------------------------


def ring_mask(n=10):
    return R.connectivity_mask(n, [(np.arange(n + 1), (np.arange(n) + 1) % n)])


def test_bf1_ring_is_exactly_one():
    t = np.arange(250)
    bf = R.branching_factor_sample(t, t % 10, 10, ring_mask(), T=250)
    assert bf == 1.0


def test_bf2_silence_after_each_spike_is_zero():
    # a chain 0 -> 1 -> 2: only neuron 0 ever fires (its pre partner is silent, its post one too)
    mask = R.connectivity_mask(3, [(np.array([0, 1, 2, 2]), np.array([1, 2]))])
    steps = np.arange(30, 220, 10)
    assert R.branching_factor_sample(steps, np.zeros_like(steps), 3, mask, T=250) == 0.0


def test_bf3_no_presynaptic_spikes_clips_the_denominator_to_one():
    # neuron 0 -> 1 and 0 -> 2; 0 fires at 100 with no presynaptic spike, both targets fire in [101, 105)
    mask = R.connectivity_mask(3, [(np.array([0, 2, 2, 2]), np.array([1, 2]))])
    steps, idx = np.array([100, 102, 104]), np.array([0, 1, 2])
    bf_n = R.branching_factor_per_neuron(steps, idx, 3, mask, T=250)
    assert bf_n[0] == 2.0
    # neurons 1 and 2 project nowhere: their own events give 0
    np.testing.assert_array_equal(bf_n[1:], [0.0, 0.0])
    assert R.branching_factor_sample(steps, idx, 3, mask, T=250) == pytest.approx(2 / 3)


def test_bf4_neurons_without_events_are_excluded_not_zero():
    # 10-neuron ring; only neurons 0..4 fire, in a chain 0 -> 1 -> ... -> 4 one step apart
    mask = ring_mask()
    steps, idx = [], []
    for start in range(40, 200, 20):
        for k in range(5):
            steps.append(start + k)
            idx.append(k)
    bf_n = R.branching_factor_per_neuron(np.array(steps), np.array(idx), 10, mask, T=250)
    # neurons 0..3: post 1 / clip(pre) 1; neuron 4: its post (5) is silent -> 0; 5..9: no events
    np.testing.assert_array_equal(bf_n[:5], [1, 1, 1, 1, 0])
    assert np.isnan(bf_n[5:]).all()
    bf = R.branching_factor_sample(np.array(steps), np.array(idx), 10, mask, T=250)
    assert bf == pytest.approx(4 / 5)  # not 4 / 10


def test_branching_factor_windows_and_edges_match_a_loop_reference():
    """The vectorised estimator against a literal transcription of the §6.3 pseudo-code."""
    rng = np.random.default_rng(3)
    n, T = 30, 250
    pre_of = rng.random((n, n)) < 0.15
    np.fill_diagonal(pre_of, False)
    indptr = np.concatenate([[0], np.cumsum(pre_of.sum(axis=1))])
    mask = R.connectivity_mask(n, [(indptr, np.nonzero(pre_of)[1])])
    raster = rng.random((T, n)) < 0.05
    steps, idx = np.nonzero(raster)

    def reference():
        r = raster.copy()
        r[:25] = r[225:] = False
        bfs = []
        for j in range(n):
            vals = []
            for t in range(29, 221):
                if r[t, j]:
                    pre = r[t - 4:t][:, pre_of[:, j]].sum()
                    post = r[t + 1:t + 5][:, pre_of[j, :]].sum()
                    vals.append(post / max(pre, 1))
            if vals:
                bfs.append(np.mean(vals))
        return np.mean(bfs)

    assert R.branching_factor_sample(steps, idx, n, mask, T=T) == pytest.approx(reference(), rel=1e-12)
    # per sample: the same raster shown twice, shifted by 300 steps
    both = R.branching_factor(np.concatenate([steps, steps + 300]), np.concatenate([idx, idx]), n, mask,
                              [0, 300], T)
    np.testing.assert_allclose(both, reference(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# features, normalisation, splits, scores
# ---------------------------------------------------------------------------------------------


def test_spike_count_features_by_hand():
    # two samples starting at 0 and 10, window 5: spikes after the window are not counted
    steps = np.array([0, 1, 4, 5, 9, 10, 12, 14, 15])
    idx = np.array([0, 0, 1, 1, 2, 2, 0, 2, 1])
    counts = R.spike_count_features(steps, idx, 3, [0, 10], 5)
    np.testing.assert_array_equal(counts, [[2, 1, 0], [1, 0, 2]])
    filtered = R.spike_count_features(steps, idx, 3, [0, 10], 5, tau_steps=2.0)
    np.testing.assert_allclose(filtered[0], [np.exp(-5 / 2) + np.exp(-4 / 2), np.exp(-1 / 2), 0])
    np.testing.assert_allclose(filtered[1], [np.exp(-3 / 2), 0, np.exp(-5 / 2) + np.exp(-1 / 2)])


def test_nalsm_normalisation_l1_then_batch_max():
    counts = np.array([[1, 3], [0, 0], [2, 2], [4, 0]], float)
    x = R.batch_max_normalise(counts, batch=2)
    # batch 1: L1 rows [.25 .75], [0 0] -> max .75; batch 2: [.5 .5], [1 0] -> max 1
    np.testing.assert_allclose(x, [[1 / 3, 1], [0, 0], [0.5, 0.5], [1, 0]])


def test_soft_targets_are_the_spec_values():
    t = R.soft_targets([3], 10)[0]
    # e²/(e² + 9) = 0.450853 exactly; the spec prints 0.45086 (last digit rounded up)
    assert t[3] == pytest.approx(np.e ** 2 / (np.e ** 2 + 9)) and t[3] == pytest.approx(0.45086, abs=1e-5)
    assert np.delete(t, 3) == pytest.approx(np.full(9, 0.06102), abs=5e-6)


def test_split_in_presentation_order():
    train, val, test = R.split_samples(10, 0.3, 0.2)
    assert list(train) == [0, 1, 2, 3, 4] and list(val) == [5, 6] and list(test) == [7, 8, 9]
    train, val, test = R.split_samples(3, 0.01, 0.0)
    assert list(test) == [2] and list(train) == [0, 1]


def test_classification_scores_with_ties():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, -1, 1, 0, -1, -1])
    s = R.classification_scores(predicted, labels, 3)
    assert s["accuracy"] == pytest.approx(2 / 6)
    np.testing.assert_allclose(s["per_class_accuracy"], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(s["ties"], [1, 0, 2])
    np.testing.assert_array_equal(s["confusion"], [[1, 0, 0], [1, 1, 0], [0, 0, 0]])


# ---------------------------------------------------------------------------------------------
# vote classifier
# ---------------------------------------------------------------------------------------------


def test_vote_assignment_and_prediction_by_hand():
    # neurons: 0 loves class 0, 1 loves class 1, 2 never fires, 3 equally loves 0 and 1
    train = np.array([[5, 0, 0, 2], [3, 1, 0, 2], [0, 4, 0, 2], [1, 6, 0, 2]], float)
    labels = np.array([0, 0, 1, 1])
    assignment = R.vote_assign(train, labels, 3)
    np.testing.assert_array_equal(assignment, [0, 1, -1, -1])
    test = np.array([[4, 1, 9, 9], [0, 2, 0, 0], [3, 3, 0, 0], [0, 0, 5, 5]], float)
    # equal best counts and silence are ties (-1), never class 0 by default
    np.testing.assert_array_equal(R.vote_predict(test, assignment, 3), [0, 1, -1, -1])


def test_vote_matches_a_loop_reference():
    rng = np.random.default_rng(5)
    counts = rng.poisson(2.0, (60, 12)).astype(float)
    labels = rng.integers(0, 4, 60)
    assignment = R.vote_assign(counts, labels, 4)
    for j in range(12):
        means = [counts[labels == c, j].mean() for c in range(4)]
        top = [c for c in range(4) if means[c] == max(means)]
        assert assignment[j] == (top[0] if len(top) == 1 and max(means) > 0 else -1)
    predicted = R.vote_predict(counts, assignment, 4)
    for s in range(60):
        scores = {c: counts[s, assignment == c].mean() for c in range(4) if (assignment == c).any()}
        top = [c for c, v in scores.items() if v == max(scores.values())]
        assert predicted[s] == (top[0] if len(top) == 1 else -1)


# ---------------------------------------------------------------------------------------------
# ridge and softmax against scikit-learn / torch
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target


def test_ridge_equals_scikit_learn(digits):
    from sklearn.linear_model import Ridge

    x, y = digits
    W, b = R.fit_ridge(x[:500], y[:500], 10, 3.0)
    ref = Ridge(alpha=3.0, fit_intercept=True, solver="cholesky").fit(x[:500], np.eye(10)[y[:500]])
    np.testing.assert_allclose(W, ref.coef_.T, atol=1e-9)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-9)


def test_softmax_gradients_and_optimisers_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.random((20, 7))
    labels = rng.integers(0, 4, 20)
    targets = R.soft_targets(labels, 4)
    for kind, lr in (("adadelta", 0.1), ("adam", 0.01), ("sgd", 0.5)):
        W, b = rng.normal(size=(7, 4)) * 0.1, np.zeros(4)
        tW, tb = torch.tensor(W.copy(), requires_grad=True), torch.tensor(b.copy(), requires_grad=True)
        ours = R.Optimiser(kind, [W, b], lr)
        theirs = {"adadelta": lambda p: torch.optim.Adadelta(p, lr=lr, rho=0.95, eps=1e-8),
                  "adam": lambda p: torch.optim.Adam(p, lr=lr, eps=1e-8),
                  "sgd": lambda p: torch.optim.SGD(p, lr=lr)}[kind]([tW, tb])
        tx, tt = torch.tensor(x), torch.tensor(targets)
        for _ in range(25):
            loss, gW, gb = R.softmax_loss_and_grads(x, targets, W, b, 1e-3)
            theirs.zero_grad()
            tloss = -(tt * torch.log_softmax(tx @ tW + tb, dim=1)).sum(1).mean() + 0.5e-3 * (tW ** 2).sum()
            tloss.backward()
            assert loss == pytest.approx(tloss.item(), rel=1e-12)
            np.testing.assert_allclose(gW, tW.grad.numpy(), atol=1e-13)
            ours.step([gW, gb])
            theirs.step()
        np.testing.assert_allclose(W, tW.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(b, tb.detach().numpy(), atol=1e-10)


def test_softmax_readout_agrees_with_logistic_regression(digits):
    """Same features, same split: the §7.9 softmax (Adam here, for speed) and scikit-learn's
    multinomial logistic regression reach test accuracies within 3 percentage points."""
    from sklearn.linear_model import LogisticRegression

    x, y = digits
    train, val, test = R.split_samples(len(y), 0.25, 0.15)
    fit = R.train_softmax(x[train], y[train], x[val], y[val], 10, "adam", 0.01, 150, 250, 0.0)
    ours = np.mean(np.argmax(x[test] @ fit["W"] + fit["b"], axis=1) == y[test])
    ref = LogisticRegression(max_iter=2000).fit(x[train], y[train]).score(x[test], y[test])
    assert ours > 0.85 and abs(ours - ref) < 0.03
    # selection: the reported epoch has the first maximum of the validation curve
    assert fit["best_epoch"] == int(np.argmax(fit["validation_accuracy"])) + 1


# ---------------------------------------------------------------------------------------------
# kernel quality (§6.4)
# ---------------------------------------------------------------------------------------------


def test_kernel_rank_of_class_one_hot_responses_is_the_class_count():
    labels = np.repeat(np.arange(4), 30)
    counts = np.eye(20)[labels] * 3.0  # neuron c fires only for class c: rank 4 in every draw
    assert R.kernel_rank(counts, labels, per_class=10, draws=20) == 4.0
    generic = np.random.default_rng(0).random((120, 20))  # full rank: min(20, 40 columns) = 20
    assert R.kernel_rank(generic, labels, per_class=10, draws=5) == 20.0


def test_kernel_quality_sp_minus_ap():
    labels = np.repeat(np.arange(3), 20)
    clean = dict(SP=R.kernel_rank(np.random.default_rng(1).random((60, 12)), labels, per_class=5, draws=10))
    assert clean["SP"] == 12.0
    collapsed = np.eye(12)[labels]  # noisy responses that only keep the class: rank 3
    q = R.add_generalisation(clean, dict(SP=R.kernel_rank(collapsed, labels, per_class=5, draws=10)))
    assert (q["SP"], q["AP"], q["SP_minus_AP"]) == (12.0, 3.0, 9.0)


def test_pixel_noise_clips_to_the_unit_range():
    from engine.encoders import Dataset, add_pixel_noise

    data = Dataset(np.array([[0.0, 128.0 / 255.0, 1.0]] * 2000), np.zeros(2000, np.int64))
    noisy = add_pixel_noise(data, 125.0 / 255.0, np.random.default_rng(2)).images
    assert noisy.min() == 0.0 and noisy.max() == 1.0

    def clipped_moments(mu, sigma):
        """Mean and std of clip(N(mu, sigma²), 0, 1) by quadrature (an independent reference)."""
        x = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 400_001)
        pdf = np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        y = np.clip(x, 0.0, 1.0)
        m = np.trapezoid(y * pdf, x)
        return m, np.sqrt(np.trapezoid((y - m) ** 2 * pdf, x))

    for column, mu in enumerate([0.0, 128.0 / 255.0, 1.0]):
        mean, std = clipped_moments(mu, 125.0 / 255.0)
        # 2000 draws: 4 standard errors
        assert abs(noisy[:, column].mean() - mean) < 4 * std / np.sqrt(2000)
        assert abs(noisy[:, column].std() - std) < 0.03
    assert abs(np.mean(noisy[:, 0] == 0.0) - 0.5) < 0.05  # half the draws fall below 0


# ---------------------------------------------------------------------------------------------
# examples, end to end: `main.py run` prints the numbers, the .npz keeps them
# ---------------------------------------------------------------------------------------------


def _run_example(name, duration, tmp_path, capsys, limit=("--duration",)):
    import argparse

    from engine.cli_run import register
    from engine.project import example_projects

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    path = next(p for p in example_projects() if p.name == f"{name}.swproj")
    out = tmp_path / "r.npz"
    extra = ["--checkpoint", str(tmp_path / "checkpoint.npz")] if limit == ("--samples",) else []
    args = parser.parse_args(["run", str(path), *limit, duration, "--out", str(out), "-q", *extra])
    assert args.func(args) == 0
    return capsys.readouterr(), out, path


def test_neurocorex_digits_vote_readout(tmp_path, capsys):
    from engine.runner import SimulationResults

    captured, out, _ = _run_example("neurocorex_digits", "5s", tmp_path, capsys)
    assert "readout 'Most spikes' (vote): test accuracy" in captured.out
    assert "tied (counted wrong)" in captured.out and "true\\pred" in captured.out
    r = SimulationResults.load(out).readouts["vote_1"]
    confusion, ties = np.asarray(r["confusion"]), np.asarray(r["ties"])
    assert confusion.sum() + ties.sum() == r["n_test"] == 25
    assert r["accuracy"] == pytest.approx(np.trace(confusion) / r["n_test"])
    assert r["n_ties"] == ties.sum() and f"{r['n_ties']} of 25 test samples tied" in captured.out
    # the template weights make class neuron c answer digit c: training finds that back
    assert np.sum(np.asarray(r["assignment"]) == np.arange(10)) >= 7
    assert r["accuracy"] > 0.3  # chance is 0.1


def test_nalsm_digits_readout_and_branching_factor(tmp_path, capsys):
    """A shortened NALSM run (30 samples per phase) prints accuracy and the branching factor; the
    branching factor equals a loop transcription of §6.3 on the recorded spikes of the feature
    phase and the compiled connectivity."""
    from engine.compiler import compile_graph
    from engine.project import Project
    from engine.runner import SimulationResults
    from engine.training import phase_project, phase_specs

    captured, out, path = _run_example("nalsm_digits", "30", tmp_path, capsys, limit=("--samples",))
    assert "readout 'Readout' (softmax): test accuracy" in captured.out
    assert "branching factor 'Branching factor':" in captured.out
    assert "phase 1 'Liquid initialisation': 30 samples x 20 ms" in captured.out
    res = SimulationResults.load(out)
    bf = res.branching["branching_1"]
    assert bf["n_samples"] == 30 and np.isfinite(bf["branching_factor"])
    project = Project.load(path)
    features = phase_specs(project.graph)[1]
    plan = compile_graph(phase_project(project, features), {"duration": 3000.0})
    [info] = plan.metadata["branching"].values()
    [proj] = [p for p in plan.projections if p.name in info["projections"]]
    n = info["size"]
    adjacency = np.zeros((n, n), bool)
    adjacency[proj.pre_indices(), proj.indices] = True
    steps, idx = res.spikes[info["recording"]]
    offset = 30 * 20  # the feature phase follows 30 samples of 20 ms
    keep = steps >= offset
    raster = np.zeros((res.n_steps - offset, n), bool)
    raster[steps[keep] - offset, idx[keep]] = True
    sample = 7
    r = raster[sample * 100:(sample + 1) * 100].copy()
    r[:25] = r[75:] = False
    per_neuron = []
    for j in range(n):
        vals = [r[t + 1:t + 5][:, adjacency[j]].sum() / max(r[t - 4:t][:, adjacency[:, j]].sum(), 1)
                for t in range(29, 71) if r[t, j]]
        if vals:
            per_neuron.append(np.mean(vals))
    assert bf["per_sample"][sample] == pytest.approx(np.mean(per_neuron), rel=1e-12)
    readout = res.readouts["softmax_1"]
    assert readout["n_train"] + readout["n_validation"] + readout["n_test"] == 30


@pytest.mark.parametrize("kind, extra", [("vote", {}), ("softmax", dict(optimizer="adam", learning_rate=0.05,
                                                                          epochs=100, batch=20, l2=0.0)),
                                          ("ridge", dict(ridge_lambda=0.1, select_lambda=True, features="counts")),
                                          ("ridge", dict(ridge_lambda=0.1, select_lambda=False, features="filtered",
                                                         tau_filter=5.0))])
def test_every_readout_learns_a_class_code_spread_over_two_populations(kind, extra):
    """Class c makes neuron c of population A (or neuron c - 3 of population B) fire 3 times per
    sample, plus background noise: every readout recovers the label on the test samples."""
    rng = np.random.default_rng(7)
    n_samples, window, classes = 60, 20, 6
    labels = rng.integers(0, classes, n_samples)
    starts = np.arange(n_samples) * window
    recs = {0: ([], []), 1: ([], [])}
    for s, c in enumerate(labels):
        pop, neuron = (0, c) if c < 3 else (1, c - 3)
        for k in (2, 8, 14):
            recs[pop][0].append(starts[s] + k)
            recs[pop][1].append(neuron)
        noise_pop = rng.integers(0, 2)
        recs[noise_pop][0].append(starts[s] + 17)
        recs[noise_pop][1].append(3)  # a fourth, uninformative neuron in each population
    recordings = []
    for pop in (0, 1):
        order = np.argsort(recs[pop][0], kind="stable")
        recordings.append((np.asarray(recs[pop][0])[order], np.asarray(recs[pop][1])[order]))
    info = dict(kind=kind, sizes=[4, 4], window_steps=0,
                params=dict(test_fraction=0.25, validation_fraction=0.0 if kind == "vote" else 0.2, **extra))
    dataset = dict(labels=labels, sample_start=starts, presentation_steps=window, dt=1.0)
    r = R.evaluate_readout(info, dataset, recordings, n_steps=n_samples * window)
    assert r["n_features"] == 8 and r["n_test"] == 15
    assert r["accuracy"] == 1.0 and r["confusion"].trace() == 15
    # a run that stops after one sample cannot train a readout: a reason, not a crash
    with pytest.raises(ValueError, match="at least 2 complete samples"):
        R.evaluate_readout(info, dataset, recordings, n_steps=window + 5)


def test_a_run_too_short_for_a_readout_says_why(tmp_path, capsys):
    captured, out, _ = _run_example("neurocorex_digits", "60ms", tmp_path, capsys)
    assert "readout 'Most spikes': needs at least 2 complete samples" in captured.err
    assert "test accuracy" not in captured.out
    from engine.runner import SimulationResults

    res = SimulationResults.load(out)
    assert res.readouts == {} and "needs at least 2 complete samples" in res.analysis_problems[0]
