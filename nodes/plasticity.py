"""Plasticity rules (MODELS.md §4). A rule node plugs into a projection's ``rule`` port."""

from __future__ import annotations

from engine.errors import Problem
from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import Choice, Float

SAME_STEP = Choice("pre_then_post", ("pre_then_post", "exclusive"),
                   doc="same-step pairs: pre events first (dw(0) = +A+) or read traces before "
                       "any increment (dw(0) = 0)")
PAIRING = Choice("all_to_all", ("all_to_all", "nearest"),
                 doc="traces add up over spikes (all-to-all) or reset at each spike (nearest)")


class PlasticityRule(NodeType):
    """Base of rules: the output wire goes to one or more projections' rule ports."""

    category = Category.PLASTICITY
    ports = (Out("rule", PortKind.RULE, "attach to a projection's rule port"),)
    #: capabilities every postsynaptic population of an attached projection must have
    requires_post: frozenset[str] = frozenset({"spiking"})
    #: why the requirement exists, shown in the problem's message
    requires_why = "the rule reacts to postsynaptic spikes"

    def check(self):
        for bound_low, bound_high in (("w_min", "w_max"),):
            if bound_low in self.params and bound_high in self.params:
                if self.get(bound_low) > self.get(bound_high):
                    yield Problem(f"{bound_low} ({self.get(bound_low):g}) is above {bound_high} "
                                  f"({self.get(bound_high):g})", node=self.label, field=bound_low,
                                  hint="swap the bounds")

    def check_in_graph(self, graph):
        projections = graph.downstream(self.id, "rule")
        if not projections:
            yield Problem("the rule is not attached to any projection", node=self.label,
                          field="rule", severity="warning",
                          hint="connect 'rule' to a projection's 'rule' port")
        for projection, _ in projections:
            for post, _ in graph.downstream(projection.id, "post"):
                missing = self.requires_post - post.capabilities
                if missing:
                    yield Problem(f"{self.title} cannot act on projection {projection.label!r}: "
                                  f"its target {post.label!r} ({post.title}) lacks "
                                  f"{', '.join(sorted(missing))}; {self.requires_why}",
                                  node=self.label, field="rule",
                                  hint="attach the rule to a projection onto a supported population")


@register
class PairSTDP(PlasticityRule):
    """Pair-based STDP, additive (Song et al. 2000) or weight-dependent (NEST stdp_synapse).

    dw(dt) = +A_plus exp(-dt/tau_plus) for dt = t_post - t_pre > 0
    dw(dt) = -A_minus exp(dt/tau_minus) for dt < 0
    additive:        pre arrival w <- clip(w - A_minus y), post spike w <- clip(w + A_plus x)
    multiplicative:  with u = (w - w_min) / (w_max - w_min):
                     post spike u <- min(1, u + A_plus (1 - u)^mu_plus x)
                     pre arrival u <- max(0, u - A_minus u^mu_minus y)
    Traces x (pre, +1 per spike, tau_plus) and y (post, +1 per spike, tau_minus); nearest pairing
    sets them to 1 instead of adding.
    """

    type_id = "plasticity.stdp"
    title = "Pair STDP"
    summary = ("form", "A_plus")

    form = Choice("additive", ("additive", "multiplicative"), doc="weight dependence of the update")
    pairing = PAIRING
    same_step = SAME_STEP
    A_plus = Float(0.01, unit="w", low=0.0, high=1e6,
                   doc="potentiation amplitude (multiplicative: fraction of w_max - w_min)")
    A_minus = Float(0.0105, unit="w", low=0.0, high=1e6,
                    doc="depression amplitude (multiplicative: fraction of w_max - w_min)")
    tau_plus = Float(20.0, unit="ms", low=0.01, high=1e6, doc="potentiation window time constant")
    tau_minus = Float(20.0, unit="ms", low=0.01, high=1e6, doc="depression window time constant")
    mu_plus = Float(1.0, low=0.0, high=10.0, visible_if={"form": ("multiplicative",)},
                    doc="weight-dependence exponent of potentiation")
    mu_minus = Float(1.0, low=0.0, high=10.0, visible_if={"form": ("multiplicative",)},
                     doc="weight-dependence exponent of depression")
    w_min = Float(0.0, unit="w", low=-1e6, high=1e6, doc="lower weight bound")
    w_max = Float(1.0, unit="w", low=-1e6, high=1e6, doc="upper weight bound")
    delay_semantics = Choice("axonal", ("axonal", "dendritic"),
                             doc="where the delay sits: axonal (pre seen at arrival) or dendritic (NEST: "
                                 "post seen d - 1 steps late)")


@register
class TripletSTDP(PlasticityRule):
    """Triplet STDP (Pfister & Gerstner 2006), visual-cortex all-to-all parameters by default.

    pre spike:  w <- w - o1 (A2_minus + A3_minus r2(t-eps));  r1 += 1, r2 += 1
    post spike: w <- w + r1 (A2_plus + A3_plus o2(t-eps));    o1 += 1, o2 += 1
    r1: tau_plus, r2: tau_x, o1: tau_minus, o2: tau_y.
    """

    type_id = "plasticity.triplet"
    title = "Triplet STDP"
    summary = ("A3_plus",)

    pairing = PAIRING
    tau_plus = Float(16.8, unit="ms", low=0.01, high=1e6, doc="pre pair trace r1 time constant")
    tau_minus = Float(33.7, unit="ms", low=0.01, high=1e6, doc="post pair trace o1 time constant")
    tau_x = Float(101.0, unit="ms", low=0.01, high=1e6, doc="pre triplet trace r2 time constant")
    tau_y = Float(125.0, unit="ms", low=0.01, high=1e6, doc="post triplet trace o2 time constant")
    A2_plus = Float(5e-10, unit="w", low=0.0, high=1e6, doc="pair potentiation amplitude")
    A3_plus = Float(6.2e-3, unit="w", low=0.0, high=1e6, doc="triplet potentiation amplitude")
    A2_minus = Float(7e-3, unit="w", low=0.0, high=1e6, doc="pair depression amplitude")
    A3_minus = Float(2.3e-4, unit="w", low=0.0, high=1e6, doc="triplet depression amplitude")
    w_min = Float(0.0, unit="w", low=-1e6, high=1e6, doc="lower weight bound")
    w_max = Float(1.0, unit="w", low=-1e6, high=1e6, doc="upper weight bound")


@register
class SymmetricSTDP(PlasticityRule):
    """Symmetric STDP (Hao et al. 2020): both spike orders potentiate.

    dw(dt) = eta a exp(-|dt| / tau);  pre arrival w <- min(w_max, w + eta_pre y); x += a
    post spike w <- min(w_max, w + eta_post x); y += a. Depression comes from weight normalisation.
    """

    type_id = "plasticity.symmetric"
    title = "Symmetric STDP"
    summary = ("eta_post",)

    eta_pre = Float(0.005, low=0.0, high=1e3, doc="learning rate of pre-triggered updates")
    eta_post = Float(0.005, low=0.0, high=1e3, doc="learning rate of post-triggered updates")
    a = Float(0.1, low=0.0, high=1e3, doc="trace increment per spike")
    tau = Float(20.0, unit="ms", low=0.01, high=1e6, doc="trace time constant")
    w_max = Float(1.0, unit="w", low=0.0, high=1e6, doc="upper weight bound (lower bound 0)")


@register
class RewardSTDP(PlasticityRule):
    """Reward-modulated STDP with an eligibility trace (Izhikevich 2007).

    dc/dt = -c / tau_c + STDP(dt) delta(t - t_pre/post)    (STDP increments go to c)
    dw/dt = c d, where d is the dopamine signal on the modulation input (a Reward node)
    Pair terms as in pair STDP (traces +1 per spike): post spike c += A_plus x, pre arrival
    c -= A_minus y; w is integrated every step (w += c d dt) and bounded to [w_min, w_max].
    """

    type_id = "plasticity.rstdp"
    title = "Reward STDP"
    ports = (
        Out("rule", PortKind.RULE, "attach to a projection's rule port"),
        In("modulation", PortKind.MODULATION, "dopamine / reward signal d(t)", required=True),
    )
    summary = ("tau_c",)

    A_plus = Float(0.1, low=0.0, high=1e3, doc="eligibility increment of a causal pair")
    A_minus = Float(0.15, low=0.0, high=1e3, doc="eligibility decrement of an anti-causal pair")
    tau_plus = Float(20.0, unit="ms", low=0.01, high=1e6, doc="pre trace time constant")
    tau_minus = Float(20.0, unit="ms", low=0.01, high=1e6, doc="post trace time constant")
    tau_c = Float(1000.0, unit="ms", low=0.01, high=1e7, doc="eligibility trace time constant")
    w_min = Float(0.0, unit="w", low=-1e6, high=1e6, doc="lower weight bound")
    w_max = Float(4.0, unit="w", low=-1e6, high=1e6, doc="upper weight bound")


@register
class SynapticScaling(PlasticityRule):
    """Homeostatic synaptic scaling (MODELS.md §4.6).

    normalize: w_ij <- w_ij T / sum_j w_ij for every target i, every `interval` ms, or at the
               start of every data-set sample when interval = 0 (Diehl & Cook 2015)
    activity:  dw_ij/dt = beta w_ij (a_target - a_i), a_i a spike-rate trace with tau_a (Hz),
               applied every `interval` ms (van Rossum, Bi & Turrigiano 2000)
    """

    type_id = "plasticity.scaling"
    title = "Synaptic scaling"
    summary = ("mode",)

    mode = Choice("normalize", ("normalize", "activity"), doc="hard normalisation or rate homeostasis")
    target_sum = Float(78.0, unit="w", low=0.0, low_open=True, high=1e9,
                       visible_if={"mode": ("normalize",)}, doc="sum of each target's incoming weights")
    a_target = Float(20.0, unit="Hz", low=0.0, high=1e4, visible_if={"mode": ("activity",)},
                     doc="target firing rate")
    tau_a = Float(1000.0, unit="ms", low=1.0, high=1e7, visible_if={"mode": ("activity",)},
                  doc="rate estimate time constant")
    beta = Float(1e-6, unit="1/(ms Hz)", low=0.0, high=1.0, visible_if={"mode": ("activity",)},
                 doc="scaling rate")
    interval = Float(1.0, unit="ms", low=0.0, high=1e7,
                     doc="how often scaling is applied (normalize with 0: at every sample start)")


@register
class AdaptiveThreshold(PlasticityRule):
    """Intrinsic plasticity: an adaptive threshold on the projection's target neurons (§4.7).

    diehl_cook: V_th,eff = V_th + theta; theta += theta_plus per spike; dtheta/dt = -theta/tau_theta
    hao:        theta += theta_plus (offset - 10) / |theta - 10| per spike; same decay
    """

    type_id = "plasticity.intrinsic"
    title = "Adaptive threshold"
    requires_post = frozenset({"spiking", "threshold"})
    requires_why = "the rule moves the firing threshold, which Izhikevich neurons do not have"
    summary = ("form", "theta_plus")

    form = Choice("diehl_cook", ("diehl_cook", "hao"), doc="threshold update form")
    theta_init = Float(20.0, unit="mV", low=0.0, high=1e3, doc="initial theta")
    offset = Float(20.0, unit="mV", low=0.0, high=1e3, doc="subtracted from theta: V_th,eff = V_th + theta - offset")
    theta_plus = Float(0.05, unit="mV", low=0.0, high=1e3, doc="threshold increment per spike")
    tau_theta = Float(1e7, unit="ms", low=1.0, high=1e12, doc="threshold decay time constant")


@register
class Oja(PlasticityRule):
    """Oja's rule on spike-rate estimates (Oja 1982): dw/dt = eta y (x - y w).

    x, y: presynaptic / postsynaptic rate traces in Hz (+1000/tau_rate per spike, decay tau_rate);
    the update is applied every `interval` ms with dt in seconds; weights stay >= 0 (Dale).
    """

    type_id = "plasticity.oja"
    title = "Oja"
    summary = ("eta",)

    eta = Float(0.005, low=0.0, high=10.0, doc="learning rate (per second, rates in Hz)")
    tau_rate = Float(100.0, unit="ms", low=1.0, high=1e6, doc="rate-estimate trace time constant")
    interval = Float(1.0, unit="ms", low=0.01, high=1e7, doc="how often the weights are updated")
    w_max = Float(1e6, unit="w", low=0.0, high=1e6, doc="upper weight bound (lower bound 0)")


@register
class BCM(PlasticityRule):
    """BCM rule (Bienenstock, Cooper & Munro 1982): dw/dt = eta x y (y - theta_M).

    tau_theta dtheta_M/dt = y^2 / y0 - theta_M; x, y rate traces in Hz as for Oja.
    """

    type_id = "plasticity.bcm"
    title = "BCM"
    summary = ("eta", "y0")

    eta = Float(1e-4, low=0.0, high=10.0, doc="learning rate (per second, rates in Hz)")
    y0 = Float(10.0, unit="Hz", low=0.0, low_open=True, high=1e4, doc="target rate scale")
    tau_theta = Float(1000.0, unit="ms", low=1.0, high=1e7, doc="sliding-threshold time constant")
    tau_rate = Float(100.0, unit="ms", low=1.0, high=1e6, doc="rate-estimate trace time constant")
    interval = Float(1.0, unit="ms", low=0.01, high=1e7, doc="how often the weights are updated")
    w_max = Float(1e6, unit="w", low=0.0, high=1e6, doc="upper weight bound (lower bound 0)")
