"""Surrogate-gradient training (BPTT) of a feed-forward LIF chain, on the simulator's own step.

A project declares training with a ``training.surrogate_gradient`` node wired to the output
population and to the labels of the data-set encoder. The trainable graph is a chain::

    input.dataset -> synapse.projection -> neuron.lif -> ... -> synapse.projection -> neuron.lif

(any number of hidden populations, each driven by exactly one projection). Anything else is refused
with a :class:`TrainingError` naming the node that cannot be trained and why.

The torch model is built from the :class:`engine.plan.SimulationPlan` the compiler makes, so the
trained network is the one the simulator runs (MODELS.md §0.2, §1.1):

* per step ``k``: threshold first (spike if ``V >= V_th`` and not refractory; ``V <- V_reset``,
  refractory counter ``<- round(t_ref/dt)``), then the exact LIF propagation
  ``V_{k+1} = E_L + P22 (V_k - E_L) + drive + P21 x_k`` outside the refractory period (``V_reset``
  during it), ``x_k = I_k + arrivals_k``, ``I_{k+1} = P11 x_k`` with the coefficients of
  :func:`engine.kernels.propagators.lif_coefficients` (delta synapses: ``P11 = 0, P21 = 1``);
* a spike emitted at step ``k`` through a synapse of ``d`` steps reaches the target's update of step
  ``k + d - 1`` (the ring buffer's rule), so a chain of layers is computed layer after layer over
  the whole presentation;
* the input spikes are made by :func:`engine.encoders.encode` from the encoder node's own
  parameters and seed; the test set is exactly the encoder's test split as a run streams it.

Each sample starts from rest (``V = E_L + R I_e``, no synaptic current, not refractory): in a run,
the encoder's ``rest`` between samples must let the state decay (:func:`carry_over_warning`); a
population whose ``I_e`` alone drives it above threshold is refused (it has no rest).

The spike nonlinearity is the Heaviside step forward and the fast sigmoid backward (Zenke & Ganguli
2018): ``dS/dV = 1/(1 + a |V - V_th| / (V_th - V_reset))^2``. The reset is not differentiated
through (the spike's effect on its own neuron's reset is detached). The loss is on the output spike
counts in the presentation window (not the membrane): cross-entropy of ``softmax(counts)`` or the
squared error to target counts. Prediction: the output neuron with the most spikes; a tie for the
most is counted wrong (as ``readout.vote`` with ``assignment = by_index`` scores it).

Weights are learned in units of ``w_unit = (V_th - V_reset) / peak PSP of a unit weight`` of each
target neuron (one such weight alone lifts a target from ``V_reset`` to ``V_th``), which makes the
learning rate dimensionless. Learnable delays follow DCLS (MODELS.md §3.4): every synapse's kernel
over ``0..K-1`` steps of delay is a normalised Gaussian at a learned position, whose width shrinks
from ``K/2`` to 0.23 over the first quarter of the epochs; positions are rounded to whole steps, and
every reported accuracy (validation, test) is that of the rounded network, which is the one written
back into the project.

Deterministic: every random number comes from seeded numpy streams and a seeded
``torch.Generator`` (on the CPU, whatever the device); on the CPU training runs single-threaded.
``device`` (the project's setting, or ``main.py train --device``) puts the model and the batches on
a GPU; there the sums may differ from the CPU's in the last bits (cuBLAS and cuDNN reductions).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from engine.errors import SynweaveError

if TYPE_CHECKING:  # torch is imported when training starts, not with this module
    import torch

TRAINING_TYPE = "training.surrogate_gradient"
#: final width of the DCLS Gaussians (MODELS.md §3.4: sigma -> 0.23, sigma_eff = |sigma| + 0.27)
DCLS_SIGMA_END, DCLS_SIGMA_OFFSET = 0.23, 0.27
#: a state that decayed to this fraction of its value counts as back at rest
REST_TOLERANCE = math.exp(-10.0)


class TrainingError(SynweaveError):
    """A project cannot be trained; ``node`` names the node at fault, ``hint`` the fix."""

    def __init__(self, message: str, node: str | None = None, hint: str = ""):
        self.node, self.hint = node, hint
        where = f"node {node!r}: " if node else ""
        super().__init__(f"{where}{message}" + (f" (fix: {hint})" if hint else ""))
        self.reason = message


# ---------------------------------------------------------------------------------------------
# which graphs can be trained
# ---------------------------------------------------------------------------------------------


@dataclass
class Chain:
    """The nodes of a trainable chain: ``projections[i]`` drives ``populations[i]``."""

    training: object
    encoder: object
    projections: list
    populations: list


def training_nodes(graph) -> list:
    return [n for n in graph.nodes.values() if n.type_id == TRAINING_TYPE]


def _single_upstream(graph, node, port: str, what: str):
    ups = graph.upstream(node.id, port)
    if not ups:
        raise TrainingError(f"its {port!r} input is not connected", node=node.label, hint=f"connect {what}")
    return ups[0][0]


def trainable_chain(graph, training) -> Chain:
    """The chain ``training`` trains, or a :class:`TrainingError` naming the node that cannot be
    trained and why. Pure graph inspection (no data is loaded, torch is not imported)."""
    output = _single_upstream(graph, training, "output", "the output population's 'spikes'")
    encoder = _single_upstream(graph, training, "labels", "the data-set encoder's 'labels'")
    if encoder.type_id != "input.dataset":
        raise TrainingError(f"its labels come from {encoder.title} {encoder.label!r}, not a data-set "
                            "encoder", node=training.label, hint="connect a Dataset encoder's 'labels'")
    populations, projections, seen = [], [], set()
    pop = output
    while True:
        if pop.type_id != "neuron.lif":
            raise TrainingError(f"{pop.title} nodes cannot be trained: surrogate-gradient training runs "
                                "LIF populations (neuron.lif) fed by projections from a data-set encoder",
                                node=pop.label, hint="use LIF populations in a feed-forward chain")
        if pop.id in seen:
            raise TrainingError("the chain loops back onto this population (a recurrent network); only "
                                "feed-forward chains can be trained", node=pop.label)
        seen.add(pop.id)
        drivers = [n for n, _ in graph.upstream(pop.id, "input")]
        others = [n for n in drivers if n.type_id != "synapse.projection"]
        if others:
            raise TrainingError(f"{others[0].title} {others[0].label!r} drives it; a trained population may "
                                "only be driven by the one projection of the chain", node=pop.label,
                                hint=f"remove {others[0].label!r} or its wire")
        if len(drivers) != 1:
            raise TrainingError(f"it is driven by {len(drivers)} projections; a trained chain is feed-forward "
                                "with exactly one projection into each population", node=pop.label)
        prj = drivers[0]
        _check_projection(graph, prj)
        populations.insert(0, pop)
        projections.insert(0, prj)
        pre = _single_upstream(graph, prj, "pre", "a population's or the encoder's 'spikes'")
        if pre.type_id == "input.dataset":
            if pre.id != encoder.id:
                raise TrainingError(f"the chain starts at encoder {pre.label!r} but the labels come from "
                                    f"{encoder.label!r}", node=training.label,
                                    hint=f"connect the labels of {pre.label!r}")
            return Chain(training, encoder, projections, populations)
        if pre.type_id.startswith("input."):
            raise TrainingError(f"{pre.title} inputs cannot be trained on: the chain must start at a "
                                "data-set encoder, whose labels are the targets", node=pre.label,
                                hint="feed the first projection from a Dataset encoder")
        pop = pre


def _check_projection(graph, prj) -> None:
    if graph.upstream(prj.id, "rule") or graph.upstream(prj.id, "modulation"):
        raise TrainingError("plastic synapses (a rule or astrocyte acts on them) cannot be trained by "
                            "gradients at the same time", node=prj.label, hint="remove the rule's wire")
    if prj.stp != "none":
        raise TrainingError("short-term plasticity is not part of the trained model", node=prj.label,
                            hint="set stp = none")
    if prj.receptor_type != "current":
        raise TrainingError("conductance synapses cannot be trained (LIF targets take currents)",
                            node=prj.label, hint="set receptor_type = current")
    targets = graph.downstream(prj.id, "post")
    if len(targets) != 1:
        raise TrainingError(f"it targets {len(targets)} populations; a trained projection drives one",
                            node=prj.label, hint="use one projection per target")


def find_chain(project) -> Chain:
    """The project's single training node and its chain."""
    found = training_nodes(project.graph)
    if not found:
        raise TrainingError("the project has no Surrogate-gradient training node; add one and wire the "
                            "output population's spikes and the encoder's labels into it")
    if len(found) > 1:
        raise TrainingError(f"the project has {len(found)} training nodes; keep one", node=found[1].label)
    return trainable_chain(project.graph, found[0])


def carry_over_warning(chain: Chain, plan) -> str | None:
    """A warning when the encoder's rest between samples is too short for the network to return to
    rest: training starts every sample from rest, a run would not."""
    enc = chain.encoder
    taus = []
    for pop in chain.populations:
        taus.append(pop.tau_m)
        if pop.synapse == "exponential":
            taus += [pop.tau_syn_exc, pop.tau_syn_inh]
    ids = {p.id for p in chain.populations}
    longest_delay = max(p.max_delay for p in plan.projections if p.post in ids) * plan.dt
    needed = -math.log(REST_TOLERANCE) * max(taus) + longest_delay * len(chain.projections)
    if enc.rest + 1e-9 < needed:
        return (f"encoder {enc.label!r}: rest {enc.rest:g} ms lets the network carry state from one sample "
                f"into the next, which training ignores (every sample starts from rest); a run reproduces "
                f"the trained accuracy with rest >= {needed:g} ms")
    return None


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def dense_samples(enc) -> np.ndarray:
    """Spikes of an :class:`engine.encoders.Encoding` as ``[samples, presentation steps, channels]``
    booleans (spikes in the rest after a presentation are dropped: there are none)."""
    n, T = enc.sample_start.size, int(enc.presentation_steps)
    out = np.zeros((n, T, enc.n_channels), bool)
    sample = np.searchsorted(enc.sample_start, enc.steps, side="right") - 1
    offset = enc.steps - enc.sample_start[sample]
    keep = offset < T
    out[sample[keep], offset[keep], enc.indices[keep]] = True
    return out


@dataclass
class DataSplits:
    """Training, validation and test samples as dense spikes and labels."""

    train: tuple
    validation: tuple
    test: tuple
    n_classes: int
    presentation_steps: int
    reencode: Callable | None = None  # epoch -> fresh training spikes (rate coding), else None


def prepare_data(project, chain: Chain, plan, validation_fraction: float) -> DataSplits:
    """The encoder's train split (less a validation part) and its test split as a run streams it."""
    from engine import encoders
    from engine.compiler import load_dataset, node_seed

    enc = chain.encoder
    data = load_dataset(enc, project.resolve_path(enc.file) if enc.dataset == "npz" else None, plan.seed)
    seed = node_seed(plan.seed, enc, "dataset")
    train = encoders.split_dataset(data, "train", enc.test_fraction, seed)
    test = encoders.split_dataset(data, "test", enc.test_fraction, seed)
    common = dict(encoding=enc.encoding, max_rate=enc.max_rate, presentation=enc.presentation, rest=0.0,
                  dt=plan.dt, latency_threshold=enc.latency_threshold)
    # the test set: exactly the stream of the encoder set to split = test (samples, order, spikes)
    test_enc = encoders.encode(test, n_samples=enc.n_samples, shuffle=enc.shuffle == "yes", seed=seed, **common)
    n_val = int(round(validation_fraction * len(train.labels)))
    order = np.random.default_rng(seed).permutation(len(train.labels))
    val_data = encoders.Dataset(train.images[order[:n_val]], train.labels[order[:n_val]])
    fit_data = encoders.Dataset(train.images[order[n_val:]], train.labels[order[n_val:]])

    def encoded(dataset, stream_seed):
        e = encoders.encode(dataset, shuffle=False, seed=stream_seed, **common)
        return dense_samples(e), e.labels

    n_classes = int(data.labels.max()) + 1
    fit = encoded(fit_data, seed)
    def reencode(epoch: int):
        s = int(np.random.SeedSequence(seed, spawn_key=(epoch,)).generate_state(1)[0])
        return encoded(fit_data, s)

    return DataSplits(fit, encoded(val_data, seed + 1) if n_val else (fit[0][:0], fit[1][:0]),
                      (dense_samples(test_enc), test_enc.labels), n_classes, int(test_enc.presentation_steps),
                      # fresh Bernoulli spikes every epoch: the encoder's noise, not one draw of it
                      reencode if enc.encoding == "rate" else None)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def unit_psp_peak(P22, P21, P11, steps: int) -> np.ndarray:
    """Peak of ``V - E_L`` after one arrival of weight 1 (exact propagators, per neuron)."""
    v = np.zeros_like(P22)
    x = np.ones_like(P22)
    peak = np.zeros_like(P22)
    for _ in range(max(int(steps), 1)):
        v = P22 * v + P21 * x
        x = P11 * x
        np.maximum(peak, v, out=peak)
    return peak


@dataclass
class LayerSpec:
    """One projection + target population, as numpy arrays from the plan."""

    projection_node: object
    population_node: object
    plan_name: str
    n_pre: int
    n_post: int
    mask: np.ndarray         # [n_pre, n_post] bool: synapse present
    weights: np.ndarray      # [n_pre, n_post] initial weights (receptor units)
    delays: np.ndarray       # [n_pre, n_post] int steps >= 1
    E_L: np.ndarray
    V_rest: np.ndarray       # fixed point without input: E_L + R I_e (each sample starts there)
    V_th: np.ndarray
    V_reset: np.ndarray
    P22: np.ndarray
    drive: np.ndarray
    P21: np.ndarray
    P11: np.ndarray
    nref: np.ndarray
    w_unit: np.ndarray       # [n_post]


def layer_specs(plan, chain: Chain) -> list[LayerSpec]:
    from engine.compiler import projection_plan_name
    from engine.kernels.propagators import lif_coefficients

    dt = plan.dt
    projections = {p.name: p for p in plan.projections}
    specs = []
    for prj_node, pop_node in zip(chain.projections, chain.populations):
        name = projection_plan_name(prj_node, pop_node)
        proj = projections[name]
        pop = plan.population(pop_node.id)
        n_pre, n_post = proj.n_pre, pop.size
        pre_idx, post_idx = proj.pre_indices().astype(np.int64), proj.indices.astype(np.int64)
        if np.unique(pre_idx * n_post + post_idx).size != pre_idx.size:
            raise TrainingError("it connects some neuron pairs more than once; a trained projection has at "
                                "most one synapse per pair", node=prj_node.label)
        mask = np.zeros((n_pre, n_post), bool)
        mask[pre_idx, post_idx] = True
        weights = np.zeros((n_pre, n_post))
        weights[pre_idx, post_idx] = proj.weights
        delays = np.ones((n_pre, n_post), np.int64)
        delays[pre_idx, post_idx] = proj.delays
        c = pop.receptor_index(proj.receptor)
        kinds = [r.kind for r in pop.receptors]
        taus = [np.broadcast_to(np.asarray(r.tau, np.float64), (n_post,)) for r in pop.receptors]
        co = lif_coefficients(dt, pop.param("tau_m"), pop.param("E_L"), pop.param("R"), pop.param("I_e"), kinds, taus)
        gap = pop.param("V_th") - pop.param("V_reset")
        if np.any(pop.param("E_L") + co["drive"] / (1.0 - co["P22"]) >= pop.param("V_th")):
            raise TrainingError("its resting potential E_L + R I_e is at or above V_th (it fires without "
                                "input), so samples have no resting start", node=pop_node.label,
                                hint="lower I_e or E_L below V_th")
        longest = max(float(np.max(pop.param("tau_m"))), float(np.max(taus[c])) if kinds[c] != "delta" else 0.0)
        peak = unit_psp_peak(co["P22"], co["P21"][c], co["P11"][c], int(np.ceil(10 * longest / dt)) + 2)
        specs.append(LayerSpec(prj_node, pop_node, name, n_pre, n_post, mask, weights, delays,
                               pop.param("E_L"), pop.param("E_L") + co["drive"] / (1.0 - co["P22"]),
                               pop.param("V_th"), pop.param("V_reset"), co["P22"], co["drive"],
                               co["P21"][c], co["P11"][c], np.rint(pop.param("t_ref") / dt).astype(np.int64),
                               gap / np.maximum(peak, 1e-300)))
    return specs


def _spike_function():
    import torch

    class FastSigmoidSpike(torch.autograd.Function):
        """Heaviside forward; fast-sigmoid derivative ``1/(1 + a|x|)^2`` backward."""

        @staticmethod
        def forward(ctx, x, slope):
            ctx.save_for_backward(x)
            ctx.slope = slope
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad / (ctx.slope * x.abs() + 1.0) ** 2, None

    return FastSigmoidSpike.apply


class SpikingChain:
    """The trainable torch model of a chain (weights, optional DCLS delay positions).

    ``forward(x)`` takes input spikes ``[batch, T, n_in]`` and returns every layer's spikes
    ``[batch, T, n]``; ``exact=True`` uses the rounded integer delays (the exported network).
    """

    def __init__(self, specs: list[LayerSpec], dtype: str, surrogate_slope: float, learn_delays: bool,
                 max_delay_steps: int, generator, device="cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float64 if dtype == "float64" else torch.float32
        self.specs = specs
        self.slope = float(surrogate_slope)
        self.spike = _spike_function()
        self.learn_delays = learn_delays
        t = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=self.dtype, device=self.device)
        self.layers = []
        for s in specs:
            layer = dict(mask=t(s.mask), unit=t(s.w_unit), E_L=t(s.E_L), V_rest=t(s.V_rest), V_th=t(s.V_th),
                         V_reset=t(s.V_reset),
                         gap=t(s.V_th - s.V_reset), P22=t(s.P22), drive=t(s.drive), P21=t(s.P21), P11=t(s.P11),
                         nref=torch.as_tensor(s.nref, dtype=torch.int64, device=self.device))
            theta = (s.weights / s.w_unit[None, :]) * s.mask
            layer["theta"] = t(theta).requires_grad_(True)
            if learn_delays:
                # K odd taps of lag 0..K-1 steps = engine delays 1..K steps, K <= max_delay_steps
                K = max(1, max_delay_steps if max_delay_steps % 2 else max_delay_steps - 1)
                half = K // 2
                pos = (torch.rand(s.mask.shape, generator=generator, dtype=torch.float64) * 2 - 1) * half
                layer.update(K=K, half=half, positions=pos.to(self.device, self.dtype).requires_grad_(True))
            else:
                layer["delays"] = s.delays
            self.layers.append(layer)
        self.sigma = float(self.layers[0]["half"]) if learn_delays else 0.0

    def parameters(self) -> list:
        return [layer["theta"] for layer in self.layers]

    def positions(self) -> list:
        return [layer["positions"] for layer in self.layers] if self.learn_delays else []

    def weights(self, layer) -> "torch.Tensor":
        """Weights in receptor units, the synapses' own (absent pairs 0)."""
        return layer["theta"] * layer["mask"] * layer["unit"][None, :]

    def integer_delays(self, layer) -> np.ndarray:
        """Delays in steps (>= 1): the plan's, or the rounded DCLS positions (delay = K//2 - p + 1)."""
        if not self.learn_delays:
            return layer["delays"]
        p = self.torch.round(layer["positions"].detach()).to(self.torch.int64).cpu().numpy()
        return layer["half"] - p + 1

    # -- arrivals of one layer -------------------------------------------------------------------
    def _arrivals_integer(self, spikes, W, delays, mask_np) -> "torch.Tensor":
        """``a[t, j] = sum_i W_ij S_i[t - d_ij + 1]``, grouped by distinct delay."""
        torch = self.torch
        T = spikes.shape[1]
        total = None
        for d in np.unique(delays[mask_np]):
            shift = int(d) - 1
            if shift >= T:
                continue
            Wd = W * torch.as_tensor(delays == d, dtype=W.dtype, device=W.device)
            part = spikes[:, :T - shift] @ Wd
            if shift:
                part = torch.nn.functional.pad(part, (0, 0, shift, 0))
            total = part if total is None else total + part
        if total is None:
            total = spikes.new_zeros(spikes.shape[0], T, W.shape[1])
        return total

    def _arrivals_dcls(self, spikes, W, layer) -> "torch.Tensor":
        torch = self.torch
        K, half = layer["K"], layer["half"]
        n = torch.arange(K, dtype=W.dtype, device=W.device)
        centre = layer["positions"] + half
        sigma = abs(self.sigma) + DCLS_SIGMA_OFFSET
        g = torch.exp(-0.5 * ((n - centre[..., None]) / sigma) ** 2)
        g = g / (g.sum(-1, keepdim=True) + 1e-7)
        kernel = (W[..., None] * g).permute(1, 0, 2)  # [n_post, n_pre, K]
        x = torch.nn.functional.pad(spikes.transpose(1, 2), (K - 1, 0))
        return torch.nn.functional.conv1d(x, kernel).transpose(1, 2)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x, exact: bool = False) -> list:
        out = []
        spikes = x
        for layer, spec in zip(self.layers, self.specs):
            W = self.weights(layer)
            if self.learn_delays and not exact:
                arrivals = self._arrivals_dcls(spikes, W, layer)
            else:
                arrivals = self._arrivals_integer(spikes, W, self.integer_delays(layer), spec.mask)
            spikes = self._lif(arrivals, layer)
            out.append(spikes)
        return out

    def _lif(self, arrivals, layer) -> "torch.Tensor":
        """The simulator's LIF step over the presentation, from rest."""
        torch = self.torch
        B, T, n = arrivals.shape
        E_L, V_th, V_reset, gap = layer["E_L"], layer["V_th"], layer["V_reset"], layer["gap"]
        P22, drive, P21, P11, nref = layer["P22"], layer["drive"], layer["P21"], layer["P11"], layer["nref"]
        V = layer["V_rest"].expand(B, n)
        I = arrivals.new_zeros(B, n)
        ref = torch.zeros(B, n, dtype=torch.int64, device=arrivals.device)
        out = []
        for k in range(T):
            free_to_fire = ref == 0
            s = self.spike((V - V_th) / gap, self.slope) * free_to_fire.to(V.dtype)
            fired = s > 0
            V = torch.where(fired, V_reset, V)            # the reset is not differentiated through
            ref = torch.where(fired, nref, ref)
            x = I + arrivals[:, k]
            free = P22 * (V - E_L) + drive + P21 * x + E_L
            refractory = ref != 0
            V = torch.where(refractory, V_reset.expand(B, n), free)
            ref = ref - refractory.to(ref.dtype)
            I = P11 * x
            out.append(s)
        return torch.stack(out, 1)


def predict(counts) -> np.ndarray:
    """Class per sample: the output neuron with the most spikes, -1 for a tie (counted wrong)."""
    from engine.readouts import vote_predict

    counts = np.asarray(counts, np.float64)
    return vote_predict(counts, np.arange(counts.shape[1]), counts.shape[1])


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


@dataclass
class EpochStats:
    epoch: int
    loss: float
    train_accuracy: float
    validation_accuracy: float
    seconds: float


@dataclass
class TrainedProjection:
    """Connection list of one trained projection (receptor units, delays in ms)."""

    node_id: str
    label: str
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay_ms: np.ndarray


@dataclass
class TrainingResult:
    history: list
    test_accuracy: float
    test_predictions: np.ndarray
    test_labels: np.ndarray
    test_counts: np.ndarray
    projections: list
    seconds: float
    stopped: bool = False
    warnings: list = field(default_factory=list)


class SurrogateGradientTrainer:
    """Train the chain of ``project``'s training node.

    Parameters
    ----------
    project : engine.project.Project
    epochs : int, optional
        Overrides the node's ``epochs``.
    device : str, optional
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; the project's ``device`` setting when omitted. A missing
        GPU is an error that offers the CPU.
    """

    def __init__(self, project, epochs: int | None = None, device: str | None = None):
        from engine.backends.torch_backend import resolve_device
        from engine.compiler import compile_graph, node_seed

        self.project = project
        self.chain = find_chain(project)
        self.device = resolve_device(device or project.settings.device)
        node = self.chain.training
        self.params = {k: node.get(k) for k in node.params}
        if epochs is not None:
            if int(epochs) < 1:
                raise TrainingError("epochs must be at least 1", node=node.label)
            self.params["epochs"] = int(epochs)
        self.plan = compile_graph(project)
        self.warnings = [w for w in [carry_over_warning(self.chain, self.plan)] if w]
        if self.chain.encoder.split != "test":
            self.warnings.append(f"encoder {self.chain.encoder.label!r} streams its {self.chain.encoder.split!r} "
                                 "split in a run, not the test split training is scored on; set split = test "
                                 "to score the trained network on unseen samples in a run")
        self.data = prepare_data(project, self.chain, self.plan, self.params["validation_fraction"])
        out = self.chain.populations[-1]
        if out.n != self.data.n_classes:
            raise TrainingError(f"it has {out.n} neurons but the data set has {self.data.n_classes} classes; "
                                "output neuron i scores class i", node=out.label,
                                hint=f"set n = {self.data.n_classes}")
        self.specs = layer_specs(self.plan, self.chain)
        if len(self.data.train[1]) == 0:
            raise TrainingError("no training samples are left after the validation part",
                                node=node.label, hint="lower validation_fraction")
        self.seed = node_seed(self.plan.seed, node, "surrogate_gradient")

    def _model(self, generator) -> SpikingChain:
        max_steps = max(1, int(round(self.params["max_delay"] / self.plan.dt)))
        return SpikingChain(self.specs, self.plan.dtype, self.params["surrogate_slope"],
                            bool(self.params["learn_delays"]), max_steps, generator, self.device)

    def _loss(self, counts, labels):
        import torch

        if self.params["loss"] == "count_cross_entropy":
            return torch.nn.functional.cross_entropy(counts, labels)
        T = self.data.presentation_steps
        target = torch.full_like(counts, self.params["target_wrong"] * T)
        target[torch.arange(len(labels), device=counts.device), labels] = self.params["target_correct"] * T
        return torch.mean((counts - target) ** 2) / T

    def evaluate(self, model: SpikingChain, spikes: np.ndarray, batch: int = 256) -> np.ndarray:
        """Output spike counts of the exported (integer-delay) network, ``[samples, classes]``."""
        import torch

        counts = []
        with torch.no_grad():
            for lo in range(0, len(spikes), batch):
                x = torch.as_tensor(spikes[lo:lo + batch], dtype=model.dtype, device=model.device)
                counts.append(model.forward(x, exact=True)[-1].sum(1).cpu().numpy())
        return np.concatenate(counts) if counts else np.zeros((0, self.data.n_classes))

    def train(self, progress: Callable[[EpochStats], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> TrainingResult:
        """Run the epochs; ``progress`` after each, ``should_stop()`` checked after every batch."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._train(progress, should_stop or (lambda: False))
        finally:
            torch.set_num_threads(threads)

    def _train(self, progress, should_stop) -> TrainingResult:
        import torch

        started = time.monotonic()
        p = self.params
        gen = torch.Generator().manual_seed(self.seed)
        model = self._model(gen)
        groups = [dict(params=model.parameters(), lr=p["learning_rate"])]
        if model.learn_delays:
            # positions are in steps; DCLS's own factor (100 x the weight rate, MODELS.md §3.4) assumes
            # its weight scale, not ours, so the node states the position step size itself
            groups.append(dict(params=model.positions(), lr=p["delay_learning_rate"] / self.plan.dt))
        optimiser = torch.optim.Adam(groups)
        epochs, batch = int(p["epochs"]), int(p["batch"])
        sigma_epochs = max(1, epochs // 4)
        sigma_factor = (DCLS_SIGMA_END / max(model.sigma, 1e-9)) ** (1.0 / sigma_epochs) if model.learn_delays else 1.0
        x_train, y_train = self.data.train
        history, stopped = [], False
        for epoch in range(1, epochs + 1):
            t0 = time.monotonic()
            if self.data.reencode is not None and epoch > 1:
                x_train, y_train = self.data.reencode(epoch)
            order = torch.randperm(len(y_train), generator=gen).numpy()
            total_loss, correct = 0.0, 0
            for lo in range(0, len(order), batch):
                idx = order[lo:lo + batch]
                x = torch.as_tensor(x_train[idx], dtype=model.dtype, device=model.device)
                y = torch.as_tensor(y_train[idx], dtype=torch.int64, device=model.device)
                counts = model.forward(x)[-1].sum(1)
                loss = self._loss(counts, y)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                if model.learn_delays:
                    with torch.no_grad():
                        for layer in model.layers:
                            layer["positions"].clamp_(-layer["half"], layer["half"])
                total_loss += float(loss.detach()) * len(idx)
                correct += int(np.sum(predict(counts.detach().cpu().numpy()) == y_train[idx]))
                if should_stop():
                    stopped = True
                    break
            if model.learn_delays and epoch <= sigma_epochs:
                model.sigma *= sigma_factor
            seen = min(len(order), lo + batch)
            x_val, y_val = self.data.validation
            val_acc = (float(np.mean(predict(self.evaluate(model, x_val)) == y_val)) if len(y_val)
                       else float("nan"))
            stats = EpochStats(epoch, total_loss / seen, correct / seen, val_acc, time.monotonic() - t0)
            history.append(stats)
            if progress is not None:
                progress(stats)
            if stopped:
                break
        x_test, y_test = self.data.test
        counts = self.evaluate(model, x_test)
        predicted = predict(counts)
        return TrainingResult(history, float(np.mean(predicted == y_test)) if len(y_test) else float("nan"),
                              predicted, y_test, counts, self._trained(model), time.monotonic() - started,
                              stopped, list(self.warnings))

    def _trained(self, model: SpikingChain) -> list[TrainedProjection]:
        out = []
        for layer, spec in zip(model.layers, self.specs):
            pre, post = np.nonzero(spec.mask)
            W = model.weights(layer).detach().cpu().numpy().astype(np.float64)
            delays = model.integer_delays(layer)
            out.append(TrainedProjection(spec.projection_node.id, spec.projection_node.label, pre.astype(np.int64),
                                         post.astype(np.int64), W[pre, post], delays[pre, post] * self.plan.dt))
        return out


# ---------------------------------------------------------------------------------------------
# back into the project
# ---------------------------------------------------------------------------------------------


def weight_file_name(project_stem: str, node_id: str) -> str:
    return f"{project_stem}_{node_id}_trained.npz"


def write_trained_weights(result: TrainingResult, folder, project_stem: str) -> list[tuple[str, str, object]]:
    """Write one connection file per trained projection into ``folder`` (atomically) and return the
    parameter edits ``(node_id, name, value)`` that make the projections read them."""
    from engine.learned import write_connection_file

    folder = Path(folder)
    edits = []
    for tp in result.projections:
        name = weight_file_name(project_stem, tp.node_id)
        write_connection_file(folder / name, tp.pre, tp.post, tp.weight, tp.delay_ms)
        edits += [(tp.node_id, "connectivity", "from_file"), (tp.node_id, "file", name)]
    return edits


def check_save_path(out_path) -> Path:
    """The path a trained project may be saved at (a .swproj in an existing folder), checked before
    training so that a typo does not cost a training run."""
    from engine.errors import ParameterError

    out_path = Path(out_path)
    if out_path.suffix != ".swproj":
        raise ParameterError("save", f"{str(out_path)!r}: give the trained project a .swproj name")
    if not out_path.parent.is_dir():
        raise ParameterError("save", f"folder {str(out_path.parent)!r} does not exist; create it first")
    return out_path


def save_trained_project(project, result: TrainingResult, out_path) -> Path:
    """A copy of ``project`` whose trained projections read their connection files, saved at ``out_path``."""
    from engine.project import Project

    out_path = check_save_path(out_path)
    copy = Project.loads(project.dumps(), path=project.path)
    source_folder = (project.path.parent if project.path else Path.cwd()).resolve()
    if out_path.parent.resolve() != source_folder:
        # relative paths of the copy (data files) must still resolve from its new folder
        copy.absolutize_paths(source_folder)
    for node_id, name, value in write_trained_weights(result, out_path.parent, out_path.stem):
        copy.graph.nodes[node_id].set(name, value)
    copy.save(out_path)
    return out_path
