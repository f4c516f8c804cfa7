"""Synaptic projections between a presynaptic spike source and a postsynaptic population."""

from __future__ import annotations

import math

from engine.errors import Problem
from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import Bool, Choice, Float, Int, Seed, Text

CONNECTIVITY = ("all_to_all", "one_to_one", "fixed_probability", "fixed_indegree", "distance",
                "small_world", "from_file")
DISTRIBUTIONS = ("constant", "uniform", "normal", "lognormal")


@register
class Projection(NodeType):
    """Synapses from a presynaptic spike source onto a postsynaptic population.

    Connectivity rules (pre j -> post i):
      all_to_all         every pair (no autapses unless allowed, when pre is post)
      one_to_one         j -> j for j < min(N_pre, N_post)
      fixed_probability  each pair independently with probability p
      fixed_indegree     every post neuron draws exactly `indegree` distinct pre neurons
      distance           P_ij = C exp(-(D_ij / lambda)^2) on the populations' spatial layouts
      small_world        Watts-Strogatz ring: k nearest neighbours, each edge rewired with beta
      from_file          .npz with int arrays pre, post (optional weight, delay) or .csv pre,post[,w,d]
    Weights w and delays d are drawn per synapse from constant / uniform / normal / lognormal.
    Short-term plasticity (Tsodyks & Markram 1997) scales each spike's weight by the released
    fraction r: per presynaptic neuron u decays to 0 (tau_facil), x recovers to 1 (tau_rec); at a
    spike u += U (1 - u), r = u x, x -= r (tau_facil = 0: r = U x, depression only).
    Delays are rounded to steps, d = max(1, round(delay / dt)); a delay of d steps first changes
    the target at t + d dt (ring buffer per target, as in NEST). The receptor selects the target's excitatory or
    inhibitory channel; drawn current weights act as +|w| (excitatory) or -|w| (inhibitory),
    weights read from a file keep their sign (mixed-sign inputs, learned templates).
    """

    type_id = "synapse.projection"
    title = "Projection"
    category = Category.SYNAPSE
    ports = (
        In("pre", PortKind.SPIKES, "presynaptic spikes", required=True),
        Out("post", PortKind.SYNAPTIC, "synaptic input into the target population"),
        In("rule", PortKind.RULE, "plasticity rules acting on these synapses", multiple=True),
        In("modulation", PortKind.MODULATION, "astrocytes acting on these synapses", multiple=True),
        Out("weights", PortKind.WEIGHTS, "the synaptic weights, for weight monitors"),
    )
    summary = ("connectivity", "weight", "delay")

    connectivity = Choice("fixed_probability", CONNECTIVITY, doc="how pre and post neurons are paired")
    p = Float(0.1, low=0.0, high=1.0, visible_if={"connectivity": ("fixed_probability",)},
              doc="connection probability of each pair")
    indegree = Int(10, low=1, high=1_000_000, visible_if={"connectivity": ("fixed_indegree",)},
                   doc="presynaptic partners drawn for every postsynaptic neuron")
    distance_C = Float(0.3, low=0.0, high=1.0, visible_if={"connectivity": ("distance",)},
                       doc="connection probability at zero distance")
    distance_lambda = Float(2.0, unit="um", low=0.0, low_open=True,
                            visible_if={"connectivity": ("distance",)},
                            doc="length scale of the Gaussian fall-off of connection probability")
    k = Int(4, low=1, high=100_000, visible_if={"connectivity": ("small_world",)},
            doc="neighbours on the ring lattice (even; k/2 on each side)")
    beta = Float(0.1, low=0.0, high=1.0, visible_if={"connectivity": ("small_world",)},
                 doc="probability of rewiring each lattice edge")
    file = Text("", is_path=True, file_filter="Connection lists (*.npz *.csv)",
                visible_if={"connectivity": ("from_file",)}, doc="connection list file")
    autapses = Bool(False, doc="allow j -> j when pre and post are the same population")

    weight_init = Choice("constant", DISTRIBUTIONS, doc="distribution of initial weights")
    # 300 pA: 10 default Poisson inputs (10 Hz) drive a default LIF to ~20 Hz, visibly
    weight = Float(300.0, unit="w", low=-1e6, high=1e6,
                   doc="weight, or mean of its distribution (pA current, mV delta, g_L conductance)")
    weight_low = Float(0.0, unit="w", low=-1e6, high=1e6, visible_if={"weight_init": ("uniform",)},
                       doc="lower bound of uniform weights")
    weight_high = Float(600.0, unit="w", low=-1e6, high=1e6, visible_if={"weight_init": ("uniform",)},
                        doc="upper bound of uniform weights")
    weight_std = Float(30.0, unit="w", low=0.0, high=1e6,
                       visible_if={"weight_init": ("normal", "lognormal")},
                       doc="standard deviation of normal / lognormal weights")
    delay_init = Choice("constant", DISTRIBUTIONS, doc="distribution of delays")
    delay = Float(1.0, unit="ms", low=0.0, high=10_000.0,
                  doc="delay, or mean of its distribution (rounded to steps, at least one)")
    delay_low = Float(0.1, unit="ms", low=0.0, high=10_000.0, visible_if={"delay_init": ("uniform",)},
                      doc="lower bound of uniform delays")
    delay_high = Float(5.0, unit="ms", low=0.0, high=10_000.0,
                       visible_if={"delay_init": ("uniform",)}, doc="upper bound of uniform delays")
    delay_std = Float(0.5, unit="ms", low=0.0, high=10_000.0,
                      visible_if={"delay_init": ("normal", "lognormal")},
                      doc="standard deviation of normal / lognormal delays")
    stp = Choice("none", ("none", "tsodyks_markram"), doc="short-term plasticity of release")
    stp_U = Float(0.5, low=0.0, low_open=True, high=1.0, visible_if={"stp": ("tsodyks_markram",)},
                  doc="utilisation increment U (release probability of a rested synapse)")
    stp_tau_facil = Float(0.0, unit="ms", low=0.0, high=1e6, visible_if={"stp": ("tsodyks_markram",)},
                          doc="facilitation time constant (0: no facilitation)")
    stp_tau_rec = Float(800.0, unit="ms", low=0.01, high=1e6, visible_if={"stp": ("tsodyks_markram",)},
                        doc="recovery time constant of the resources x")
    receptor = Choice("excitatory", ("excitatory", "inhibitory"), doc="target channel")
    receptor_type = Choice("current", ("current", "conductance"),
                           doc="current synapses (LIF, Izhikevich) or conductances (conductance LIF)")
    seed = Seed()

    def distribution_text(self, kind: str) -> str:
        """What is simulated for ``weight`` or ``delay``: a value or its distribution, with unit."""
        init = getattr(self, f"{kind}_init")
        mean = getattr(self, kind)
        unit = " " + self.params[kind].unit_text()
        match init:
            case "constant":
                text = f"{mean:g}"
            case "uniform":
                text = f"U({getattr(self, f'{kind}_low'):g}, {getattr(self, f'{kind}_high'):g})"
            case "normal":
                text = f"N({mean:g}, {getattr(self, f'{kind}_std'):g})"
            case _:
                text = f"logN({mean:g}, {getattr(self, f'{kind}_std'):g})"
        if kind == "weight" and self.receptor == "inhibitory" and self.receptor_type == "current":
            text = f"−|{text}|" if init != "constant" else f"−{abs(mean):g}"  # acts as -|w|
        if self.connectivity == "from_file":
            text = f"file, else {text}"  # a connection file's own column wins when it has one
        return text + unit

    def summary_text(self) -> str:
        return " · ".join((f"connectivity {self.connectivity}", f"weight {self.distribution_text('weight')}",
                           f"delay {self.distribution_text('delay')}"))

    def check(self):
        for kind in ("weight", "delay"):
            init = getattr(self, f"{kind}_init")
            if init == "uniform" and getattr(self, f"{kind}_low") > getattr(self, f"{kind}_high"):
                yield Problem(f"{kind}_low is above {kind}_high", node=self.label,
                              field=f"{kind}_low", hint="swap the two bounds")
            if init == "lognormal" and getattr(self, kind) <= 0:
                yield Problem(f"a lognormal {kind} needs a positive mean", node=self.label,
                              field=kind, hint=f"set {kind} > 0 or choose another distribution")
        if self.connectivity == "small_world" and self.k % 2:
            yield Problem(f"small-world k must be even, got {self.k}", node=self.label, field="k",
                          hint=f"use k = {self.k + 1}")
        if self.connectivity == "from_file" and not self.file:
            yield Problem("no connection file chosen", node=self.label, field="file",
                          hint="pick a .npz or .csv connection list")
        if self.receptor_type == "conductance" and self.weight_init == "constant" and self.weight < 0:
            yield Problem("conductance weights cannot be negative", node=self.label, field="weight",
                          hint="use a positive weight and receptor = inhibitory")

    def check_in_graph(self, graph):
        posts = graph.downstream(self.id, "post")
        pres = graph.upstream(self.id, "pre")
        if not posts:
            yield Problem("the projection has no target population", node=self.label, field="post",
                          hint="connect 'post' to a population's 'input'")
        for post, _ in posts:
            caps = post.capabilities
            if self.receptor_type == "conductance" and "conductance" not in caps:
                yield Problem(f"conductance synapses need a conductance-based target, "
                              f"but {post.label!r} is {post.title}", node=self.label,
                              field="receptor_type",
                              hint="set receptor_type = current or use a Conductance LIF target")
            if self.receptor_type == "current" and "current" not in caps:
                yield Problem(f"current synapses need a current-based target, but {post.label!r} "
                              f"is {post.title}", node=self.label, field="receptor_type",
                              hint="set receptor_type = conductance")
        for pre, _ in pres:
            for post, _ in posts:
                n_pre, n_post = pre.size(), post.size()
                if None in (n_pre, n_post):
                    continue
                if self.connectivity == "fixed_indegree" and self.indegree > n_pre:
                    yield Problem(f"indegree {self.indegree} exceeds the {n_pre} neurons of "
                                  f"{pre.label!r}", node=self.label, field="indegree",
                                  hint=f"use at most {n_pre}")
                if self.connectivity == "small_world" and self.k >= n_pre:
                    yield Problem(f"k = {self.k} needs more than {n_pre} neurons", node=self.label,
                                  field="k", hint=f"use k < {n_pre}")
                if self.connectivity == "distance":
                    for pop in (pre, post):
                        if getattr(pop, "layout", "none") == "none":
                            yield Problem(f"distance-dependent connectivity needs positions, but "
                                          f"{pop.label!r} has no spatial layout", node=self.label,
                                          field="connectivity",
                                          hint=f"give {pop.label!r} a grid or random layout")

    def expected_synapses(self, n_pre: int, n_post: int, same_population: bool = False) -> float:
        """Expected synapse count, for memory estimates before compiling."""
        pairs = n_pre * n_post - (n_pre if same_population and not self.autapses else 0)
        match self.connectivity:
            case "all_to_all":
                return float(pairs)
            case "one_to_one":
                return float(min(n_pre, n_post))
            case "fixed_probability":
                return self.p * pairs
            case "fixed_indegree":
                return float(self.indegree * n_post)
            case "small_world":
                return float(self.k * n_pre)
            case "distance":
                # Upper bound: a Gaussian kernel on a unit grid reaches ~ (sqrt(pi) lambda)^3 cells.
                return min(float(pairs), self.distance_C * n_post * (math.sqrt(math.pi)
                                                                      * self.distance_lambda) ** 3)
            case _:
                return 0.0
