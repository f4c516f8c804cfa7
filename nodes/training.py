"""Training declared in the graph: surrogate-gradient (BPTT) training of a feed-forward LIF chain."""

from __future__ import annotations

from engine.errors import Problem
from nodes.base import Category, In, NodeType, PortKind, register
from nodes.params import Bool, Choice, Float, Int, Seed


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
    category = Category.READOUT
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
