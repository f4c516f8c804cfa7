"""Readouts trained on spike-count features."""

from __future__ import annotations

from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import Bool, Choice, Float, Int, Seed


class Readout(NodeType):
    category = Category.READOUT
    ports = (
        In("features", PortKind.SPIKES, "populations whose spike counts are the features",
           multiple=True, required=True),
        In("labels", PortKind.LABELS, "labels of the samples", required=True),
        Out("prediction", PortKind.LABELS, "predicted label per sample"),
    )
    summary = ("window",)

    window = Float(0.0, unit="ms", low=0.0, high=1e7,
                   doc="counting window per sample; 0 = the encoder's presentation time")
    test_fraction = Float(0.25, low=0.0, high=1.0, low_open=True, high_open=True,
                          doc="fraction of samples held out to report accuracy (the last ones presented)")
    validation_fraction = Float(0.2, low=0.0, high=0.9,
                                doc="fraction of samples (before the test ones) used to select the "
                                    "epoch (softmax) or lambda (ridge)")


@register
class SoftmaxReadout(Readout):
    """Linear softmax readout on L1-normalised spike counts (NALSM recipe: Ivanov & Michmizos 2021).

    x = c / ||c||_1, x <- x / max(x over the batch);  y = softmax(x W + b)
    loss = cross-entropy(y, t) + l2/2 ||W||^2, optimised with Adadelta (or SGD / Adam).
    t = softmax(+1 true class, -1 others); W, b start at 0; mini-batches in presentation order.
    The reported test accuracy is taken at the epoch with the highest validation accuracy. The
    seed is not used (zero initial weights and a fixed batch order make training deterministic).
    """

    type_id = "readout.softmax"
    title = "Softmax readout"
    summary = ("optimizer", "epochs")

    optimizer = Choice("adadelta", ("adadelta", "sgd", "adam"), doc="optimiser")
    learning_rate = Float(0.1, low=0.0, low_open=True, high=100.0, doc="learning rate")
    epochs = Int(200, low=1, high=100_000, doc="passes over the training features")
    batch = Int(250, low=1, high=1_000_000, doc="mini-batch size")
    l2 = Float(5e-10, low=0.0, high=10.0, doc="L2 weight penalty")
    seed = Seed()


@register
class RidgeReadout(Readout):
    """Ridge regression on one-hot targets: W = (X^T X + lambda I)^-1 X^T Y.

    Features are spike counts, or exponentially filtered spike trains sampled at the end of each
    presentation (Maass et al. 2002) with tau_filter.
    """

    type_id = "readout.ridge"
    title = "Ridge readout"
    summary = ("ridge_lambda",)

    ridge_lambda = Float(1.0, low=0.0, high=1e9, doc="ridge penalty lambda")
    select_lambda = Bool(True, doc="choose lambda on the validation samples among ridge_lambda x 10^-3..10^3")
    features = Choice("counts", ("counts", "filtered"), doc="spike counts or filtered states")
    tau_filter = Float(30.0, unit="ms", low=0.01, high=1e6, visible_if={"features": ("filtered",)},
                       doc="filter time constant of the liquid state")


@register
class VoteClassifier(Readout):
    """Spike-count vote (Diehl & Cook 2015): each neuron is assigned the class that drove it most
    on the training samples; the prediction is the class whose neurons have the highest mean count.

    A neuron that never fired in training, or whose highest mean count is shared by two classes,
    is left unassigned (assignment = by_index instead gives neuron i class i and scores every
    sample as a test sample). When several classes share the highest mean count of a test sample (e.g.
    none of the assigned neurons fired) the sample is a tie: it is counted as wrong and reported
    (the ties column of the confusion matrix), never resolved to the first class.
    """

    type_id = "readout.vote"
    title = "Vote classifier"

    assignment = Choice("learned", ("learned", "by_index"),
                        doc="learned from the training samples, or by_index: neuron i is class i (a "
                            "network trained for it, e.g. by surrogate gradients); by_index trains "
                            "nothing and scores every sample")

    validation_fraction = Float(0.0, low=0.0, high=0.9,
                                doc="fraction of samples (before the test ones) only scored, not trained on")
