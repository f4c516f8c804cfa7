"""Monitors: what a run records and what the live plots show."""

from __future__ import annotations

from engine.errors import Problem
from nodes.base import Category, In, NodeType, PortKind, register
from nodes.params import Bool, Choice, Float, Int, IntList, Seed

LIVE = Bool(True, doc="stream to the live plots during the run (off: plot after the run)")


class Monitor(NodeType):
    category = Category.MONITOR
    live = LIVE


@register
class SpikeMonitor(Monitor):
    """Records spikes (time step, neuron index) of all or a subset of a population's neurons.

    Stored as two int32 arrays; no per-spike Python objects.
    """

    type_id = "monitor.spikes"
    title = "Spike monitor"
    ports = (In("source", PortKind.SPIKES, "the spikes to record", required=True),)
    summary = ("subset",)
    subset = Choice("all", ("all", "first", "random", "indices"), doc="which neurons to record")
    count = Int(100, low=1, high=100_000_000, visible_if={"subset": ("first", "random")},
                doc="how many neurons to record")
    indices = IntList((), low=0, visible_if={"subset": ("indices",)}, doc="neuron indices to record")
    seed = Seed()


@register
class StateMonitor(Monitor):
    """Records a state variable (V, I_exc, g_exc, theta, w, u ...) of chosen neurons every n steps,
    or of an astrocyte (index 0): the NALSM astrocyte's A, the tripartite astrocyte's Ca, IP3 (µM),
    h and release probability U_0."""

    type_id = "monitor.state"
    title = "State monitor"
    ports = (In("population", PortKind.STATE, "the population (or astrocyte) to record", required=True),)
    summary = ("variable", "every")

    variable = Choice("V", ("V", "I_exc", "I_inh", "g_exc", "g_inh", "theta", "w", "u",
                            "A", "Ca", "IP3", "h", "U_0"),
                      doc="state variable to record (A, Ca, IP3, h, U_0: astrocytes)")
    indices = IntList((0,), low=0, max_length=10_000, doc="neuron indices to record")
    every = Int(1, low=1, high=1_000_000, unit="steps", doc="record every n-th step")

    def check_in_graph(self, graph):
        for pop, _ in graph.upstream(self.id, "population"):
            if self.variable not in pop.state_variables:
                yield Problem(f"{pop.label!r} ({pop.title}) has no state variable {self.variable!r}",
                              node=self.label, field="variable",
                              hint=f"choose one of {', '.join(pop.state_variables)}")
            size = pop.size() or 1  # an astrocyte is one
            bad = [i for i in self.indices if i >= size]
            if bad:
                yield Problem(f"index {bad[0]} is out of range for {pop.label!r} (n = {size})",
                              node=self.label, field="indices",
                              hint=f"use indices below {size}")


@register
class RateMonitor(Monitor):
    """Population rate: spikes per bin divided by n and the bin width (Hz), optionally smoothed."""

    type_id = "monitor.rate"
    title = "Rate monitor"
    ports = (In("source", PortKind.SPIKES, "the spikes to count", required=True),)
    summary = ("bin",)

    bin = Float(1.0, unit="ms", low=0.01, high=1e6, doc="bin width")
    smoothing = Float(0.0, unit="ms", low=0.0, high=1e6, doc="Gaussian smoothing width; 0 = none")


@register
class WeightMonitor(Monitor):
    """Records a projection's weights every `interval` ms: histogram, matrix, or both."""

    type_id = "monitor.weights"
    title = "Weight monitor"
    ports = (In("projection", PortKind.WEIGHTS, "the projection to record", required=True),)
    summary = ("interval",)

    interval = Float(100.0, unit="ms", low=0.1, high=1e9, doc="time between snapshots")
    view = Choice("histogram", ("histogram", "matrix", "both"), doc="what to record and plot")
    bins = Int(50, low=2, high=10_000, doc="histogram bins")
    max_synapses = Int(100_000, low=1, high=100_000_000,
                       doc="matrix snapshots keep at most this many synapses (a seeded subset)")


@register
class BranchingMonitor(Monitor):
    """Branching factor of a recurrent population (NALSM definition: Ivanov & Michmizos 2021).

    For every spike of neuron n at t (away from the edges): bf_t = post / max(pre, 1), where pre
    counts spikes of n's presynaptic partners in [t - window, t) and post counts spikes of its
    postsynaptic partners in [t + 1, t + 1 + window). BF = nanmean over neurons of mean_t bf_t.

    Partners are the synapses of the population's projections onto itself. Computed after the run
    for every data-set sample presented (its presentation window is the sample), or for the whole
    run when there is no data-set encoder; the reported value is the mean over samples, and the
    per-sample values are plotted at each sample's end.
    """

    type_id = "monitor.branching"
    title = "Branching monitor"
    ports = (In("population", PortKind.SPIKES, "the recurrent population", required=True),)
    summary = ("window",)

    window = Int(4, low=1, high=10_000, unit="steps", doc="counting window")
    buffer = Float(25.0, unit="ms", low=0.0, high=1e6, doc="ignored time at each end of a sample")


@register
class KernelQuality(NodeType):
    """Kernel quality of a liquid: separation minus generalisation rank (MODELS.md §6.4).

    After the run, the spike counts of the populations' neurons (side by side, as a readout's
    features) over each complete data-set sample form a matrix ``counts[sample, neuron]``. ``rank(C)`` draws ``per_class`` samples of every class (without
    replacement where the class has enough) and takes the matrix rank of ``counts[drawn].T``
    (``neurons x classes * per_class``); the mean over ``draws`` draws is reported:

    * SP (separation): the rank of the responses to the data set as it is;
    * AP (generalisation): the rank of the responses to the same samples, in the same order, with
      Gaussian noise of std ``pixel_noise`` added to every pixel on the [0, 1] scale and clipped to
      [0, 1] (the data-set encoder's ``pixel_noise``): a second run of the whole project (every
      training phase included) that the runner makes after the first;
    * SP - AP: higher is better (a liquid that separates classes but not noise).

    Both ranks use the same draws (one seed), so the difference is paired. In a training protocol
    the samples are those of the analysed phases. ``pixel_noise = 0`` reports SP alone (no second run).
    """

    type_id = "monitor.kernel_quality"
    title = "Kernel quality"
    ports = (In("population", PortKind.SPIKES, "the liquid's populations whose responses are ranked (their "
                "neurons side by side)", multiple=True, required=True),
             In("labels", PortKind.LABELS, "labels of the data-set encoder's samples", required=True))
    category = Category.MONITOR
    summary = ("per_class", "pixel_noise")

    per_class = Int(100, low=1, high=1_000_000, doc="samples drawn from every class for one rank (the paper: 100)")
    draws = Int(100, low=1, high=100_000, doc="random draws the rank is averaged over (the paper: 1000)")
    pixel_noise = Float(0.4902, unit="1", low=0.0, high=10.0,
                        doc="std of the pixel noise of the AP run on the [0, 1] scale (the paper: 125/255); 0: SP only")
    seed = Seed(doc="seed of the random draws; 0 derives it from the project seed")
