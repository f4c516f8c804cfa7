"""Training declared in the graph: phases that present a data set sample by sample, and
surrogate-gradient (BPTT) training of a feed-forward LIF chain."""

from __future__ import annotations

from engine.errors import Problem
from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import Bool, Choice, Float, Int, Seed, Text

RESET_MODES = ("none", "state", "state_and_weights")


@register
class TrainingPhase(NodeType):
    """One phase of a training protocol: the data-set encoder's samples, presented one by one.

    Phases run in the order of their chain (previous -> next), each on a fresh build of the graph
    with this phase's settings; the plastic weights one phase ends with are the weights the next
    starts from. Between samples the network can be reset (neuron, synapse, short-term and
    astrocyte state and the rules' learning rates; with state_and_weights also the plastic
    weights, back to the ones the phase started with). STDP traces carry over, as in the NALSM
    reference (Ivanov & Michmizos 2021). The learning rates of every rule are scaled by
    learning_rate at the first sample and move linearly to learning_rate_end at the last one.
    Readouts and branching monitors are trained and evaluated on the samples of the phases marked
    analyse (the last phase when none is). Checkpoints (atomic .npz) are written every
    checkpoint_every samples and at the end of each phase, so that a stopped or crashed run
    resumes with identical results (main.py run --resume). With workers > 1, blocks of
    consecutive samples run in parallel threads, each block starting from the phase's initial
    state: what carries over between samples (STDP traces) restarts at each block, so a plastic
    phase's result depends slightly on the number of workers; a phase without plasticity gives
    the same spikes for any number. On the torch backend, batch B presents B samples at once (one
    network copy each, MODELS.md §0.5), every copy starting from the phase's initial state (STDP
    traces included) and learning at its own sample's point of the learning-rate schedule; Poisson and noise inputs draw one stream per copy, keyed by the seed and the
    sample. A phase without plasticity or random inputs gives the same spikes for any batch.
    """

    type_id = "training.phase"
    title = "Training phase"
    category = Category.TRAINING
    ports = (
        In("previous", PortKind.PHASE, "the phase that runs before this one"),
        Out("next", PortKind.PHASE, "the phase that runs after this one"),
    )
    summary = ("samples", "plasticity", "reset")

    samples = Int(0, low=0, high=100_000_000,
                  doc="samples presented in this phase; 0 = the data-set encoder's n_samples")
    presentation = Float(0.0, unit="ms", low=0.0, high=1e6,
                         doc="time each sample is shown in this phase; 0 = the encoder's presentation")
    plasticity = Bool(True, doc="plasticity rules (and the astrocytes that drive them) act in this phase")
    reset = Choice("state", RESET_MODES,
                   doc="what is reset before each sample: nothing, the network state, or the state "
                       "and the plastic weights")
    learning_rate = Float(1.0, low=0.0, high=1e6, doc="scale of every rule's learning rates at the first sample")
    learning_rate_end = Float(1.0, low=0.0, high=1e6,
                              doc="scale at the last sample (linear schedule from learning_rate)")
    overrides = Text("", max_length=2000,
                     doc="parameter values for this phase only: 'Node label.parameter = value', "
                         "separated by ';' (e.g. 'Astrocyte.decay = 0.99')")
    analyse = Bool(False, doc="train and score the readouts and branching monitors on this phase's samples")
    checkpoint_every = Int(0, low=0, high=100_000_000,
                           doc="samples between checkpoints; 0 = only at the end of the phase")
    workers = Int(1, low=1, high=256,
                  doc="threads presenting samples at once (blocks of consecutive samples; needs a reset "
                      "between samples and data-set input only)")
    batch = Int(1, low=1, high=65_536,
                doc="samples presented at once by the torch backend: B copies of the network, each with its "
                    "own state and (reset state_and_weights) its own plastic weights; needs a reset between "
                    "samples. The numba backend presents them one after another (see workers)")

    def check(self):
        if self.workers > 1 and self.reset == "none":
            yield Problem("samples can only be presented in parallel when the network is reset between them",
                          node=self.label, field="workers", hint="set reset to state (or state_and_weights), "
                                                                 "or workers to 1")
        if self.batch > 1 and self.reset == "none":
            yield Problem("a batch presents its samples side by side, so each must start from the reset network",
                          node=self.label, field="batch", hint="set reset to state (or state_and_weights), "
                                                               "or batch to 1")
        if self.batch > 1 and self.plasticity and self.reset == "state":
            yield Problem("with plasticity on and reset 'state', each sample learns from the weights the previous "
                          "one left, which samples side by side cannot", node=self.label, field="batch",
                          hint="reset state_and_weights (each sample learns from the phase's weights, NALSM "
                               "phase 2), or batch 1")
        if self.workers > 1 and self.checkpoint_every:
            yield Problem("a phase with several workers writes checkpoints only at its end", node=self.label,
                          field="checkpoint_every", severity="warning",
                          hint="set checkpoint_every to 0, or workers to 1")
        if self.plasticity is False and (self.learning_rate != 1.0 or self.learning_rate_end != 1.0):
            yield Problem("learning rates are set but plasticity is off in this phase", node=self.label,
                          field="learning_rate", severity="warning",
                          hint="turn plasticity on, or leave the learning rates at 1")

    def check_in_graph(self, graph):
        phases = [n for n in graph.nodes.values() if n.type_id == self.type_id]
        following = graph.downstream(self.id, "next")
        if len(following) > 1:
            names = ", ".join(repr(n.label) for n, _ in following)
            yield Problem(f"{len(following)} phases follow this one ({names}); phases run one after another",
                          node=self.label, field="next", hint="keep one wire from 'next'")
        roots = [n for n in phases if not graph.upstream(n.id, "previous")]
        if not roots:
            yield Problem("the phases form a loop, so none runs first", node=self.label, field="previous",
                          hint="remove the wire into the first phase's 'previous'")
        elif len(roots) > 1 and roots[0].id == self.id:
            names = ", ".join(repr(n.label) for n in roots)
            yield Problem(f"the phases form {len(roots)} separate chains (first phases: {names})",
                          node=self.label, field="previous",
                          hint="wire each phase's 'next' into the following phase's 'previous'")
        datasets = [n for n in graph.nodes.values() if n.type_id == "input.dataset"]
        if len(datasets) != 1 and (not roots or roots[0].id == self.id):
            found = "no Dataset encoder" if not datasets else f"{len(datasets)} Dataset encoders"
            yield Problem(f"training phases present the samples of one data set; the graph has {found}",
                          node=self.label, hint="use exactly one Dataset encoder node")
        try:
            parse_overrides(self.overrides, graph)
        except ValueError as exc:
            yield Problem(str(exc), node=self.label, field="overrides",
                          hint="write 'Node label.parameter = value; ...' with the labels shown on the canvas")


def parse_overrides(text: str, graph) -> list[tuple[NodeType, str, object]]:
    """``'Label.param = value; ...'`` -> ``[(node, param, value)]``, each value checked by the
    parameter's descriptor; values are JSON (numbers, true/false, "strings") or bare words for
    choices. Raises ValueError naming the faulty item."""
    import json

    out = []
    by_label: dict[str, list[NodeType]] = {}
    for node in graph.nodes.values():
        by_label.setdefault(node.label, []).append(node)
    for item in filter(None, (part.strip() for part in text.split(";"))):
        target, sep, raw = item.partition("=")
        name, dot, param = target.strip().rpartition(".")
        if not sep or not dot or not name or not param.strip():
            raise ValueError(f"cannot read {item!r}: expected 'Node label.parameter = value'")
        nodes = by_label.get(name) or ([graph.nodes[name]] if name in graph.nodes else [])
        if not nodes:
            raise ValueError(f"{item!r}: no node labelled {name!r}")
        if len(nodes) > 1:
            raise ValueError(f"{item!r}: {len(nodes)} nodes are labelled {name!r}; rename one")
        node, param = nodes[0], param.strip()
        if param not in node.params:
            raise ValueError(f"{item!r}: node {name!r} has no parameter {param!r}; it has "
                             f"{', '.join(node.params)}")
        raw = raw.strip()
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # a bare word, e.g. a choice
        try:
            node.params[param].coerce(value)
        except Exception as exc:  # ParameterError: its detail names the fix
            raise ValueError(f"{item!r}: {getattr(exc, 'detail', exc)}") from None
        out.append((node, param, value))
    return out


@register
class SurrogateGradientTraining(NodeType):
    """Trains a feed-forward chain of LIF populations end to end with surrogate gradients
    (BPTT; Neftci, Mostafa & Zenke 2019), from the data set to the output population.

    Chain: Dataset encoder -> Projection -> LIF (hidden) -> ... -> Projection -> LIF (output).
    The forward pass is the simulator's own step: exact LIF propagators, threshold-first,
    V <- V_reset and t_ref clamp after a spike, integer delays (d steps: a spike emitted at step
    k reaches the target's update of step k + d - 1). Each sample starts from rest.
    Surrogate (fast sigmoid): dS/dV = 1 / (1 + a |V - V_th| / (V_th - V_reset))^2, a = surrogate_slope.
    Loss: cross-entropy of softmax(c) with c the output spike counts in the presentation window
    (output neuron i is class i), or the squared error of c against target counts.
    Adam on weights in units of the weight that alone lifts a target from V_reset to V_th.
    Learnable delays (DCLS, Hammouamri et al. 2023): each synapse's delay is a Gaussian bump
    over 0..max_delay whose position is learned; positions are rounded to whole steps at the end.
    Trained weights (and delays) are written back as connection files (connectivity from_file).
    Run with `python main.py train FILE`, or Train in the designer; a run ignores this node.
    """

    type_id = "training.surrogate_gradient"
    title = "Surrogate-gradient training"
    category = Category.TRAINING
    ports = (
        In("output", PortKind.SPIKES, "output population: neuron i's spike count scores class i",
           required=True),
        In("labels", PortKind.LABELS, "labels of the data-set encoder that feeds the chain", required=True),
    )
    summary = ("epochs", "learning_rate")

    epochs = Int(20, low=1, high=100_000, doc="passes over the training samples")
    batch = Int(64, low=1, high=100_000, doc="samples per mini-batch")
    learning_rate = Float(0.01, low=0.0, low_open=True, high=10.0,
                          doc="Adam step size (weights in units of the weight that alone lifts a "
                              "target from V_reset to V_th)")
    surrogate_slope = Float(5.0, low=0.0, low_open=True, high=1000.0,
                            doc="steepness a of the fast-sigmoid surrogate (per V_th - V_reset)")
    loss = Choice("count_cross_entropy", ("count_cross_entropy", "count_mse"),
                  doc="cross-entropy of softmax(spike counts), or squared error against target counts")
    target_correct = Float(0.6, low=0.0, high=1.0, visible_if={"loss": ("count_mse",)},
                           doc="target count of the true class, as a fraction of the presentation steps")
    target_wrong = Float(0.05, low=0.0, high=1.0, visible_if={"loss": ("count_mse",)},
                         doc="target count of the other classes, as a fraction of the presentation steps")
    validation_fraction = Float(0.1, low=0.0, high=0.9,
                                doc="fraction of the encoder's train split held out to report "
                                    "validation accuracy per epoch (the encoder's test split is the test set)")
    learn_delays = Bool(False, doc="also learn every synapse's delay (DCLS)")
    max_delay = Float(10.0, unit="ms", low=0.0, high=1000.0, visible_if={"learn_delays": (True,)},
                      doc="longest learnable delay (the kernel has an odd number of steps: one step less when even)")
    delay_learning_rate = Float(0.1, unit="ms", low=0.0, low_open=True, high=1000.0,
                                visible_if={"learn_delays": (True,)},
                                doc="Adam step size of the delay positions")
    seed = Seed()

    def check_in_graph(self, graph):
        from engine.gradient import TrainingError, trainable_chain

        try:
            trainable_chain(graph, self)
        except TrainingError as exc:
            yield Problem(f"this network cannot be trained: {exc}", node=exc.node or self.label,
                          severity="warning", hint=exc.hint)
