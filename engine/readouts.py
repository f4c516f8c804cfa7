"""Readouts and liquid diagnostics computed from a finished run (MODELS.md §6, §7.9).

The compiler gives every readout and branching monitor node a spike recording of the population
it reads (:func:`plan_readout`, :func:`plan_branching`) and describes the node in
``plan.metadata["readouts"]`` / ``["branching"]``. After the run, :func:`analyse` turns the
recorded spikes into per-sample features (spike counts, or filtered states, in each sample's
presentation window as the data-set encoder recorded it in ``plan.metadata["datasets"]``), trains
the readouts and computes the branching factor. Everything here is plain numpy/scipy (no Qt).

Samples are split in presentation order (the encoder presents them in a seeded random order):
the first ones train, the next ``validation_fraction`` validate, the last ``test_fraction`` test.

* ``readout.vote`` (Diehl & Cook 2015): every neuron is assigned the class with the highest mean
  count over its training samples; a neuron that never fired in training, or whose highest mean is
  shared by two classes, stays unassigned. A sample is predicted as the class whose assigned
  neurons have the highest mean count; when several classes share that highest mean (e.g. no
  assigned neuron fired), the sample is a **tie**: prediction -1, counted as wrong, and reported.
* ``readout.softmax``: MODELS.md §7.9 — L1-normalised counts divided by the maximum of each
  mini-batch, soft targets softmax(±1), cross-entropy + l2/2·ΣW², W and b start at 0, fixed batch
  order, Adadelta (lr, ρ = 0.95, ε = 1e-8) or SGD / Adam; the reported test accuracy is the one
  at the epoch with the highest validation accuracy (first maximum; the NALSM script's habit of
  ignoring the very last epoch is not copied). Accuracy is over all samples of a split, which
  equals the reference's mean over equal-size batches.
* ``readout.ridge``: MODELS.md §6.2 — W = (XᵀX + λI)⁻¹XᵀY on one-hot targets with an unpenalised
  intercept (X and Y centred on the training split, as scikit-learn's ``Ridge``); features are the
  L1-normalised counts (or filtered states) divided by the training split's maximum; with
  ``select_lambda`` λ is chosen on the validation split from ``ridge_lambda·10^k, k = -3..3``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

READOUT_TYPES = ("readout.vote", "readout.softmax", "readout.ridge")
KERNEL_QUALITY_TYPE = "monitor.kernel_quality"
#: nodes evaluated by the runner from spike recordings after a run: every backend that records
#: spikes supports them
ANALYSIS_TYPES = READOUT_TYPES + ("monitor.branching", KERNEL_QUALITY_TYPE)
#: λ grid of the ridge readout's validation search, as multiples of the node's ridge_lambda
RIDGE_LAMBDA_FACTORS = 10.0 ** np.arange(-3, 4)
#: Adadelta constants of the NALSM reference (TF1 defaults, MODELS.md §7.9)
ADADELTA_RHO, ADADELTA_EPS = 0.95, 1e-8
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8


# ---------------------------------------------------------------------------------------------
# compile-time part: what to record (called by the builders in engine/compiler.py)
# ---------------------------------------------------------------------------------------------


RECORDING_TAG = "/spikes:"


def recording_name(node_id: str, source_id: str) -> str:
    """Name of the spike recording a readout / branching node makes of ``source_id``; it starts
    with the node id, so live views file it under that node."""
    return f"{node_id}{RECORDING_TAG}{source_id}"


def is_internal_recording(name: str) -> bool:
    """Whether a spike recording is one a readout / branching node made for itself (not a
    monitor's: live spike counts and rasters leave it out)."""
    return RECORDING_TAG in name


def _record_populations(graph, node, port: str, plan) -> dict:
    """Record every population wired to ``node``'s ``port`` (one spike recording each) and find the
    data-set encoder wired to its ``labels``: the ``recordings``, ``sizes`` and ``dataset`` (None
    when the labels do not come from one) of the node's metadata entry."""
    from engine.plan import MonitorPlan

    sources = [src for src, _ in graph.upstream(node.id, port)]
    names = []
    for src in sources:
        names.append(recording_name(node.id, src.id))
        plan.monitors.append(MonitorPlan(names[-1], src.id, "spikes"))
    labels = [src for src, _ in graph.upstream(node.id, "labels")]
    datasets = plan.metadata.get("datasets", {})
    return dict(recordings=names, sizes=[int(src.size()) for src in sources],
                dataset=next((src.id for src in labels if src.id in datasets), None))


def plan_readout(graph, node, plan, steps) -> None:
    """Record the feature populations of a readout node and describe it in ``plan.metadata``.

    ``steps(ms)`` converts a duration to steps on the plan's grid.
    """
    params = {k: node.get(k) for k in node.params}
    plan.metadata.setdefault("readouts", {})[node.id] = dict(
        kind=node.type_id.split(".", 1)[1], **_record_populations(graph, node, "features", plan),
        window_steps=steps(node.window) if node.window > 0 else 0, params=params)


def plan_branching(graph, node, plan, steps) -> None:
    """Record the population of a branching monitor; its connectivity mask is the union of the
    compiled projections from the population onto itself."""
    from engine.plan import MonitorPlan

    ups = graph.upstream(node.id, "population")
    if not ups:
        return
    pop = ups[0][0]
    name = recording_name(node.id, pop.id)
    plan.monitors.append(MonitorPlan(name, pop.id, "spikes"))
    recurrent = [p.name for p in plan.projections if p.pre == pop.id and p.post == pop.id]
    datasets = plan.metadata.get("datasets", {})
    plan.metadata.setdefault("branching", {})[node.id] = dict(
        recording=name, size=int(pop.size()), projections=recurrent,
        dataset=next(iter(datasets), None), window=int(node.window), buffer_steps=steps(node.buffer))


def plan_kernel_quality(graph, node, plan, seed: int) -> None:
    """Record the populations of a kernel-quality node; its samples are those of the data-set
    encoder wired to its labels."""
    plan.metadata.setdefault("kernel_quality", {})[node.id] = dict(
        **_record_populations(graph, node, "population", plan),
        per_class=int(node.per_class), draws=int(node.draws), pixel_noise=float(node.pixel_noise), seed=seed)


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


def spike_count_features(steps, indices, n_neurons: int, sample_start, window_steps: int,
                         tau_steps: float | None = None) -> np.ndarray:
    """Per-sample features of one population: ``[n_samples, n_neurons]`` float64.

    Sample ``s`` covers steps ``[sample_start[s], sample_start[s] + window_steps)``. Without
    ``tau_steps`` a feature is the neuron's spike count in that window (MODELS.md §6.1); with it,
    the filtered state ``Σ exp(-(t_end - t_spike)/τ)`` at ``t_end = sample_start + window_steps``
    (Maass et al.), over the spikes of the window.
    """
    starts = np.asarray(sample_start, np.int64)
    steps = np.asarray(steps, np.int64)
    indices = np.asarray(indices, np.int64)
    n_samples = starts.size
    out = np.zeros((n_samples, n_neurons), np.float64)
    if not n_samples or not steps.size:
        return out
    order = np.argsort(starts, kind="stable")
    sorted_starts = starts[order]
    pos = np.searchsorted(sorted_starts, steps, side="right") - 1
    valid = pos >= 0
    pos_c = np.where(valid, pos, 0)
    offset = steps - sorted_starts[pos_c]
    valid &= offset < window_steps
    sample = order[pos_c[valid]]
    if tau_steps is None:
        weight = np.ones(int(valid.sum()))
    else:
        weight = np.exp(-(window_steps - offset[valid]) / float(tau_steps))
    np.add.at(out, (sample, indices[valid]), weight)
    return out


def population_features(recordings, sizes, sample_start, window_steps: int, tau_steps: float | None = None) -> np.ndarray:
    """:func:`spike_count_features` of several populations, their neurons side by side."""
    return np.concatenate([spike_count_features(s, i, size, sample_start, window_steps, tau_steps)
                           for (s, i), size in zip(recordings, sizes)], axis=1)


def l1_normalise(counts) -> np.ndarray:
    """Each row divided by its L1 norm (rows without spikes stay 0), MODELS.md §7.9."""
    counts = np.asarray(counts, np.float64)
    norm = np.abs(counts).sum(axis=1, keepdims=True)
    return np.divide(counts, norm, out=np.zeros_like(counts), where=norm > 0)


def batch_max_normalise(counts, batch: int) -> np.ndarray:
    """L1-normalise every row, then divide each consecutive block of ``batch`` rows by the block's
    maximum (the NALSM recipe's batch-dependent scaling, MODELS.md §7.9)."""
    x = l1_normalise(counts)
    for lo in range(0, x.shape[0], max(int(batch), 1)):
        block = x[lo:lo + batch]
        m = block.max() if block.size else 0.0
        if m > 0:
            block /= m
    return x


def split_samples(n: int, test_fraction: float, validation_fraction: float) -> tuple:
    """``(train, validation, test)`` index arrays in presentation order: test = the last
    ``round(n·test_fraction)`` samples (at least one when n >= 2), validation the
    ``round(n·validation_fraction)`` before them, train the rest."""
    n_test = int(round(n * test_fraction))
    if n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    n_val = min(int(round(n * validation_fraction)), max(n - n_test - 1, 0))
    n_train = n - n_test - n_val
    idx = np.arange(n)
    return idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]


# ---------------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------------


def classification_scores(predicted, labels, n_classes: int) -> dict:
    """Accuracy, per-class accuracy (NaN for a class without samples), confusion matrix
    ``[true, predicted]`` of the decided samples, and the ties (prediction -1) per true class."""
    predicted = np.asarray(predicted, np.int64)
    labels = np.asarray(labels, np.int64)
    decided = predicted >= 0
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels[decided], predicted[decided]), 1)
    ties = np.bincount(labels[~decided], minlength=n_classes).astype(np.int64)
    per_class_n = np.bincount(labels, minlength=n_classes)
    correct = np.diag(confusion)
    per_class = np.divide(correct, per_class_n, out=np.full(n_classes, np.nan), where=per_class_n > 0)
    accuracy = float(correct.sum() / labels.size) if labels.size else float("nan")
    return dict(accuracy=accuracy, per_class_accuracy=per_class, confusion=confusion, ties=ties,
                n_samples=int(labels.size))


# ---------------------------------------------------------------------------------------------
# vote classifier
# ---------------------------------------------------------------------------------------------


def vote_assign(counts, labels, n_classes: int) -> np.ndarray:
    """Class of each neuron: the class with the highest mean count on the training samples; -1
    when the neuron never fired or its highest mean is shared by several classes."""
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels, np.int64)
    sums = np.zeros((n_classes, counts.shape[1]))
    np.add.at(sums, labels, counts)
    n_per_class = np.bincount(labels, minlength=n_classes)
    means = np.divide(sums, n_per_class[:, None], out=np.full_like(sums, -np.inf), where=n_per_class[:, None] > 0)
    best = means.max(axis=0)
    winners = (means == best[None, :]).sum(axis=0)
    assignment = means.argmax(axis=0).astype(np.int64)
    assignment[(best <= 0) | (winners > 1)] = -1
    return assignment


def vote_predict(counts, assignment, n_classes: int) -> np.ndarray:
    """Predicted class per sample, -1 for a tie (several classes share the highest mean count of
    their assigned neurons; classes without assigned neurons take no part)."""
    counts = np.asarray(counts, np.float64)
    assignment = np.asarray(assignment, np.int64)
    scores = np.full((counts.shape[0], n_classes), -np.inf)
    for c in range(n_classes):
        members = assignment == c
        if members.any():
            scores[:, c] = counts[:, members].mean(axis=1)
    best = scores.max(axis=1)
    winners = (scores == best[:, None]).sum(axis=1)
    predicted = scores.argmax(axis=1).astype(np.int64)
    predicted[(winners != 1) | ~np.isfinite(best)] = -1
    return predicted


# ---------------------------------------------------------------------------------------------
# softmax readout
# ---------------------------------------------------------------------------------------------


def soft_targets(labels, n_classes: int) -> np.ndarray:
    """softmax(τ) with τ = +1 for the true class and -1 elsewhere (MODELS.md §7.9)."""
    tau = np.full((len(labels), n_classes), -1.0)
    tau[np.arange(len(labels)), np.asarray(labels, np.int64)] = 1.0
    return _softmax(tau)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_loss_and_grads(x, targets, W, b, l2: float) -> tuple:
    """Mean cross-entropy of softmax(xW + b) against ``targets`` plus ``l2/2·ΣW²``, and its
    gradients with respect to W and b."""
    p = _softmax(x @ W + b)
    loss = float(-np.mean(np.sum(targets * np.log(np.clip(p, 1e-300, None)), axis=1)) + 0.5 * l2 * np.sum(W * W))
    d = (p - targets) / x.shape[0]
    return loss, x.T @ d + l2 * W, d.sum(axis=0)


class Optimiser:
    """Adadelta / SGD / Adam on a list of numpy arrays, with the update rules of torch.optim (and
    TF1 for Adadelta): one :meth:`step` per mini-batch."""

    def __init__(self, kind: str, params: list, lr: float):
        if kind not in ("adadelta", "sgd", "adam"):
            raise ValueError(f"unknown optimiser {kind!r}")
        self.kind, self.params, self.lr, self.t = kind, params, float(lr), 0
        self.a = [np.zeros_like(p) for p in params]  # E[g²] / Adam first moment
        self.b = [np.zeros_like(p) for p in params]  # E[Δx²] / Adam second moment

    def step(self, grads: list) -> None:
        self.t += 1
        for p, g, a, b in zip(self.params, grads, self.a, self.b):
            if self.kind == "sgd":
                p -= self.lr * g
            elif self.kind == "adadelta":
                a *= ADADELTA_RHO
                a += (1 - ADADELTA_RHO) * g * g
                delta = np.sqrt(b + ADADELTA_EPS) / np.sqrt(a + ADADELTA_EPS) * g
                b *= ADADELTA_RHO
                b += (1 - ADADELTA_RHO) * delta * delta
                p -= self.lr * delta
            else:
                a *= ADAM_BETA1
                a += (1 - ADAM_BETA1) * g
                b *= ADAM_BETA2
                b += (1 - ADAM_BETA2) * g * g
                m_hat = a / (1 - ADAM_BETA1 ** self.t)
                v_hat = b / (1 - ADAM_BETA2 ** self.t)
                p -= self.lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)


def _accuracy(x, labels, W, b) -> float:
    return float(np.mean(np.argmax(x @ W + b, axis=1) == labels)) if len(labels) else float("nan")


def train_softmax(x_train, y_train, x_val, y_val, n_classes: int, optimizer: str = "adadelta", lr: float = 0.1,
                  epochs: int = 200, batch: int = 250, l2: float = 5e-10) -> dict:
    """Train the §7.9 softmax layer on already-normalised features.

    Returns ``W``, ``b`` of the selected epoch (highest validation accuracy, first maximum; the
    last epoch without validation samples), ``best_epoch`` (1-based) and per-epoch
    ``train_accuracy`` / ``validation_accuracy`` / ``loss`` curves.
    """
    x_train = np.asarray(x_train, np.float64)
    y_train = np.asarray(y_train, np.int64)
    n_features = x_train.shape[1]
    W = np.zeros((n_features, n_classes))
    b = np.zeros(n_classes)
    opt = Optimiser(optimizer, [W, b], lr)
    targets = soft_targets(y_train, n_classes)
    curves = {"train_accuracy": [], "validation_accuracy": [], "loss": []}
    best = (-1.0, 0, W.copy(), b.copy())
    for epoch in range(1, epochs + 1):
        losses = []
        for lo in range(0, x_train.shape[0], batch):
            loss, gW, gb = softmax_loss_and_grads(x_train[lo:lo + batch], targets[lo:lo + batch], W, b, l2)
            opt.step([gW, gb])
            losses.append(loss)
        val = _accuracy(x_val, y_val, W, b)
        curves["train_accuracy"].append(_accuracy(x_train, y_train, W, b))
        curves["validation_accuracy"].append(val)
        curves["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        if len(y_val) == 0 or val > best[0]:
            best = (val, epoch, W.copy(), b.copy())
    return dict(W=best[2], b=best[3], best_epoch=best[1], **{k: np.asarray(v) for k, v in curves.items()})


# ---------------------------------------------------------------------------------------------
# ridge readout
# ---------------------------------------------------------------------------------------------


def fit_ridge(x, labels, n_classes: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``W = (XcᵀXc + λI)⁻¹XcᵀYc`` on one-hot targets, X and Y centred (unpenalised intercept
    ``b = ȳ - x̄W``); λ = 0 falls back to least squares."""
    x = np.asarray(x, np.float64)
    y = np.eye(n_classes)[np.asarray(labels, np.int64)]
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    if lam > 0:
        W = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)
    else:
        W = np.linalg.lstsq(xc, yc, rcond=None)[0]
    return W, y_mean - x_mean @ W


# ---------------------------------------------------------------------------------------------
# branching factor and kernel quality
# ---------------------------------------------------------------------------------------------


def connectivity_mask(n: int, csr_list) -> "scipy.sparse.csr_matrix":
    """Binary ``n × n`` pre→post mask (A[p, q] = 1 if p projects to q) from CSR ``(indptr, indices)`` pairs."""
    import scipy.sparse as sp

    mask = sp.csr_matrix((n, n), dtype=np.float64)
    for indptr, indices in csr_list:
        data = np.ones(len(indices))
        mask = mask + sp.csr_matrix((data, np.asarray(indices), np.asarray(indptr)), shape=(n, n))
    mask.data[:] = 1.0
    mask.eliminate_zeros()
    return mask


def branching_factor_per_neuron(steps, indices, n: int, mask, T: int, buffer: int = 25,
                                window: int = 4, mask_t=None) -> np.ndarray:
    """``bf_n`` of every neuron for one sample, MODELS.md §6.3 (steps relative to the sample start;
    NaN for a neuron without events).

    For each spike of neuron n at t with ``buffer + window <= t < T - buffer - window``:
    ``bf_t = post / max(pre, 1)``, pre = spikes of n's presynaptic partners in ``[t - window, t)``,
    post = spikes of its postsynaptic partners in ``[t + 1, t + 1 + window)`` (only spikes with
    ``buffer <= t < T - buffer`` count); ``bf_n`` = mean of bf_t over n's events. ``mask`` is the
    binary pre→post matrix of :func:`connectivity_mask` (``mask_t``: its transpose in CSR, when
    the caller already has it).
    """
    mask = mask.tocsr()
    mask_t = mask.T.tocsr() if mask_t is None else mask_t
    steps = np.asarray(steps, np.int64)
    indices = np.asarray(indices, np.int64)
    keep = (steps >= buffer) & (steps < T - buffer)
    raster = np.zeros((T + 1, n), np.float64)
    raster[steps[keep], indices[keep]] = 1.0
    before = np.zeros((T + 2, n))
    np.cumsum(raster, axis=0, out=before[1:])  # before[t] = spikes in [0, t)
    ev = (steps >= buffer + window) & (steps < T - buffer - window)
    t_ev, n_ev = steps[ev], indices[ev]
    out = np.full(n, np.nan)
    if not t_ev.size:
        return out
    # Only the events' partners are summed (CSR rows of the mask and of its transpose), not whole
    # window x mask products: events x mean degree operations per sample.
    from engine.branching_kernel import partner_window_sums  # numba: imported when first needed

    pre = partner_window_sums(mask_t.indptr, mask_t.indices, before, n_ev, t_ev - window, t_ev)  # [t - w, t)
    post = partner_window_sums(mask.indptr, mask.indices, before, n_ev, t_ev + 1, t_ev + 1 + window)
    bf_t = post / np.maximum(pre, 1.0)
    sums = np.bincount(n_ev, weights=bf_t, minlength=n)
    counts = np.bincount(n_ev, minlength=n)
    has = counts > 0
    out[has] = sums[has] / counts[has]
    return out


def branching_factor_sample(steps, indices, n: int, mask, T: int, buffer: int = 25, window: int = 4,
                            mask_t=None) -> float:
    """Branching factor of one sample: the mean of :func:`branching_factor_per_neuron` over the
    neurons that had events (NaN-mean, MODELS.md §6.3); NaN when none had."""
    bf_n = branching_factor_per_neuron(steps, indices, n, mask, T, buffer, window, mask_t)
    return float(np.nanmean(bf_n)) if np.isfinite(bf_n).any() else float("nan")


def branching_factor(steps, indices, n: int, mask, sample_start, T: int, buffer: int = 25,
                     window: int = 4) -> np.ndarray:
    """Branching factor of every sample ``[sample_start[s], sample_start[s] + T)`` (NaN for a
    sample without events); the model value is the mean over samples (MODELS.md §6.3)."""
    steps = np.asarray(steps, np.int64)
    indices = np.asarray(indices, np.int64)
    order = np.argsort(steps, kind="stable")
    steps, indices = steps[order], indices[order]
    mask = mask.tocsr()
    mask_t = mask.T.tocsr()
    out = np.empty(len(sample_start))
    for s, start in enumerate(np.asarray(sample_start, np.int64)):
        lo, hi = np.searchsorted(steps, [start, start + T])
        out[s] = branching_factor_sample(steps[lo:hi] - start, indices[lo:hi], n, mask, T, buffer, window, mask_t)
    return out


def kernel_rank(counts, labels, per_class: int = 100, draws: int = 1000, seed: int = 0) -> float:
    """Mean rank of ``N_neurons × (n_classes·per_class)`` response matrices drawn from the samples'
    spike counts, ``per_class`` samples per class (with replacement when a class has fewer),
    MODELS.md §6.4. On clean inputs this is SP (separation), on noisy ones AP (generalisation)."""
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    ranks = np.empty(draws)
    for k in range(draws):
        cols = np.concatenate([rng.choice(idx, per_class, replace=idx.size < per_class) for idx in classes])
        ranks[k] = np.linalg.matrix_rank(counts[cols].T)
    return float(ranks.mean())


# ---------------------------------------------------------------------------------------------
# after a run
# ---------------------------------------------------------------------------------------------


@dataclass
class Analysis:
    """What :func:`analyse` computed: readout node id -> result arrays, branching node id ->
    result arrays, kernel-quality node id -> SP (the runner adds AP), and (times_ms, values)
    signals for live views (branching factor per sample)."""

    readouts: dict = field(default_factory=dict)
    branching: dict = field(default_factory=dict)
    signals: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    kernel_quality: dict = field(default_factory=dict)


def _complete_samples(dataset: dict, window: int, n_steps: int) -> np.ndarray:
    starts = np.asarray(dataset["sample_start"], np.int64)
    return np.flatnonzero(starts + window <= n_steps)


def evaluate_readout(info: dict, dataset: dict, recordings: list, n_steps: int) -> dict:
    """Train and score one readout from its recorded spikes; raises ValueError with the reason
    when the run is too short or has no labelled samples."""
    params = info["params"]
    window = info["window_steps"] or int(dataset["presentation_steps"])
    use = _complete_samples(dataset, window, n_steps)
    if use.size < 2:
        raise ValueError(f"needs at least 2 complete samples of {window} steps; the run covers {use.size}")
    starts = np.asarray(dataset["sample_start"], np.int64)[use]
    labels = np.asarray(dataset["labels"], np.int64)[use]
    n_classes = int(np.max(dataset["labels"])) + 1
    tau = None
    if info["kind"] == "ridge" and params.get("features") == "filtered":
        tau = float(params["tau_filter"]) / float(dataset.get("dt", 1.0))
    features = population_features(recordings, info["sizes"], starts, window, tau)
    by_index = info["kind"] == "vote" and params.get("assignment") == "by_index"
    if by_index:  # nothing to train: every sample is a test sample
        none = np.zeros(0, np.int64)
        train, val, test = none, none, np.arange(len(labels))
    else:
        train, val, test = split_samples(len(labels), params["test_fraction"],
                                         params.get("validation_fraction", 0.0))
    out: dict = dict(kind=info["kind"], n_train=train.size, n_validation=val.size, n_test=test.size,
                     n_features=features.shape[1], mean_count=float(features.mean()) if features.size else 0.0)
    if info["kind"] == "vote":
        if by_index:
            assignment = np.where(np.arange(features.shape[1]) < n_classes, np.arange(features.shape[1]), -1)
        else:
            assignment = vote_assign(features[train], labels[train], n_classes)
        predicted = vote_predict(features, assignment, n_classes)
        out["assignment"] = assignment
        out["unassigned_neurons"] = int(np.sum(assignment < 0))
    elif info["kind"] == "softmax":
        batch = int(params["batch"])
        x = {name: batch_max_normalise(features[idx], batch) for name, idx in
             (("train", train), ("val", val), ("test", test))}
        fit = train_softmax(x["train"], labels[train], x["val"], labels[val], n_classes, params["optimizer"],
                            params["learning_rate"], int(params["epochs"]), batch, params["l2"])
        predicted = np.empty(len(labels), np.int64)
        for name, idx in (("train", train), ("val", val), ("test", test)):
            predicted[idx] = np.argmax(x[name] @ fit["W"] + fit["b"], axis=1)
        out.update(best_epoch=fit["best_epoch"], train_curve=fit["train_accuracy"],
                   validation_curve=fit["validation_accuracy"], loss_curve=fit["loss"])
    else:
        x = l1_normalise(features)
        scale = x[train].max() if train.size else 0.0
        x = x / scale if scale > 0 else x
        lam = float(params["ridge_lambda"])
        grid = lam * RIDGE_LAMBDA_FACTORS if params.get("select_lambda") and val.size and lam > 0 else [lam]
        best = None
        for candidate in grid:
            W, b = fit_ridge(x[train], labels[train], n_classes, candidate)
            acc = float(np.mean(np.argmax(x[val] @ W + b, axis=1) == labels[val])) if val.size else 0.0
            if best is None or acc > best[0]:
                best = (acc, candidate, W, b)
        predicted = np.argmax(x @ best[2] + best[3], axis=1)
        out["ridge_lambda"] = best[1]
    for name, idx in (("train", train), ("validation", val)):
        scores = classification_scores(predicted[idx], labels[idx], n_classes)
        out[f"{name}_accuracy"] = scores["accuracy"]
    test_scores = classification_scores(predicted[test], labels[test], n_classes)
    out.update(test_scores)
    out["n_ties"] = int(test_scores["ties"].sum())
    out["predicted"] = predicted
    out["labels"] = labels
    return out


def evaluate_branching(info: dict, dataset: dict | None, recording, plan, n_steps: int) -> dict:
    """Branching factor per complete sample (the whole run as one sample without a data set)."""
    projections = {p.name: p for p in plan.projections}
    mask = connectivity_mask(info["size"], [(projections[name].indptr, projections[name].indices)
                                            for name in info["projections"]])
    if dataset is not None:
        T = int(dataset["presentation_steps"])
        use = _complete_samples(dataset, T, n_steps)
        starts = np.asarray(dataset["sample_start"], np.int64)[use]
    else:
        T, starts = n_steps, np.zeros(1, np.int64)
    per_sample = branching_factor(recording[0], recording[1], info["size"], mask, starts, T,
                                  info["buffer_steps"], info["window"])
    finite = per_sample[np.isfinite(per_sample)]
    return dict(branching_factor=float(finite.mean()) if finite.size else float("nan"), per_sample=per_sample,
                sample_end_step=starts + T, n_samples=int(starts.size), n_synapses=int(mask.nnz),
                rate_hz=float(recording[0].size / (info["size"] * n_steps * plan.dt / 1000.0)) if n_steps else 0.0)


def evaluate_kernel_quality(info: dict, dataset: dict, recordings: list, n_steps: int) -> dict:
    """SP of the recorded responses: the mean rank of spike-count matrices over complete samples
    (MODELS.md §6.4); the runner adds AP from its noisy second run. Raises ValueError with the
    reason when fewer than two complete samples were recorded."""
    T = int(dataset["presentation_steps"])
    use = _complete_samples(dataset, T, n_steps)
    if use.size < 2:
        raise ValueError(f"needs at least 2 complete samples of {T} steps; the run covers {use.size}")
    starts = np.asarray(dataset["sample_start"], np.int64)[use]
    labels = np.asarray(dataset["labels"], np.int64)[use]
    counts = population_features(recordings, info["sizes"], starts, T)
    sp = kernel_rank(counts, labels, info["per_class"], info["draws"], info["seed"])
    n_classes = int(np.unique(labels).size)
    return dict(SP=sp, n_samples=int(use.size), n_neurons=int(counts.shape[1]), n_columns=n_classes * info["per_class"],
                draws=int(info["draws"]), pixel_noise=float(info["pixel_noise"]))


def add_generalisation(result: dict, noisy: dict) -> dict:
    """``result`` (SP on clean inputs) with AP (the SP of the noisy run) and SP − AP."""
    return dict(result, AP=noisy["SP"], SP_minus_AP=result["SP"] - noisy["SP"])


def has_analysis(plan) -> bool:
    """Whether a plan has readouts, branching monitors or kernel-quality nodes to evaluate after its run."""
    return any(plan.metadata.get(k) for k in ("readouts", "branching", "kernel_quality"))


def analyse(plan, results) -> Analysis:
    """Readouts and branching factors of a finished (or stopped) run, from ``results.spikes``.

    A node that cannot be evaluated (no data set, run shorter than two samples, no recurrent
    projection) gets a problem line instead of numbers. BLAS runs single-threaded here: the
    matrices are small, and OpenBLAS's threads spinning against a busy second core made softmax
    training 20x slower on a loaded 2-core machine (and one thread gives one summation order).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _analyse(plan, results)


def _analyse(plan, results) -> Analysis:
    out = Analysis()
    labels = plan.metadata.get("labels", {})
    datasets = {k: dict(v, dt=plan.dt) for k, v in plan.metadata.get("datasets", {}).items()}
    empty = (np.zeros(0, np.int32), np.zeros(0, np.int32))
    for node_id, info in plan.metadata.get("readouts", {}).items():
        name = labels.get(node_id, node_id)
        if info["dataset"] is None:
            out.problems.append(f"readout {name!r}: its labels input is not a data-set encoder; nothing to train on")
            continue
        recordings = [results.spikes.get(r, empty) for r in info["recordings"]]
        try:
            out.readouts[node_id] = evaluate_readout(info, datasets[info["dataset"]], recordings, results.n_steps)
        except ValueError as exc:
            out.problems.append(f"readout {name!r}: {exc}")
    for node_id, info in plan.metadata.get("branching", {}).items():
        name = labels.get(node_id, node_id)
        if not info["projections"]:
            out.problems.append(f"branching monitor {name!r}: its population has no projection onto itself")
            continue
        result = evaluate_branching(info, datasets.get(info["dataset"]), results.spikes.get(info["recording"], empty),
                                    plan, results.n_steps)
        out.branching[node_id] = result
        out.signals[node_id] = (result["sample_end_step"] * plan.dt, result["per_sample"])
    for node_id, info in plan.metadata.get("kernel_quality", {}).items():
        name = labels.get(node_id, node_id)
        if info["dataset"] is None:
            out.problems.append(f"kernel quality {name!r}: its labels input is not a data-set encoder; "
                                "there are no samples to rank")
            continue
        try:
            out.kernel_quality[node_id] = evaluate_kernel_quality(
                info, datasets[info["dataset"]], [results.spikes.get(r, empty) for r in info["recordings"]],
                results.n_steps)
        except ValueError as exc:
            out.problems.append(f"kernel quality {name!r}: {exc}")
    return out
