"""Modulators: astrocytes and reward / dopamine sources."""

from __future__ import annotations

from engine.errors import Problem
from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import MAX_TIME_MS, Bool, Choice, Float, FloatList, Seed


@register
class NALSMAstrocyte(NodeType):
    """NALSM astrocyte: a global plasticity controller (Ivanov & Michmizos 2021).

    A <- A + (w_astro (sum S_liquid - sum S_input) + b_astro - A) / tau_astro     every step
    A is the depression rate of excitatory STDP (and potentiation rate of inhibitory synapses) of
    the rules it modulates; A is not clipped and may become negative. With decay < 1, A, w_astro
    and b_astro are multiplied by `decay` every step (NALSM phase 2 uses 0.99).
    With compare_baselines, a run with training phases also runs the paper's baselines on the same
    liquid and readout: LSM (no plasticity, every weight magnitude set to lsm_weight, only the
    analysed phases) and LSM + STDP (the rules without the astrocyte: a fixed depression rate).
    """

    type_id = "modulator.nalsm_astrocyte"
    title = "NALSM astrocyte"
    category = Category.MODULATOR
    ports = (
        In("liquid", PortKind.SPIKES, "spikes of the liquid populations", multiple=True,
           required=True),
        In("reference", PortKind.SPIKES, "spikes of the input populations", multiple=True),
        Out("modulation", PortKind.MODULATION, "astrocyte state A"),
        Out("state", PortKind.STATE, "state A over time, for a state monitor"),
    )
    summary = ("w_astro",)
    #: what a state monitor can record (index 0: the single astrocyte)
    state_variables = ("A",)

    tau_astro = Float(100.0, unit="ms", low=0.01, high=1e7, doc="relaxation time constant")
    w_astro = Float(0.015, low=-10.0, high=10.0, doc="weight of the activity difference")
    b_astro = Float(0.15, low=-10.0, high=10.0, doc="bias (resting value of A)")
    A_init = Float(0.15, low=-10.0, high=10.0, doc="initial state A")
    decay = Float(1.0, low=0.0, high=1.0, doc="per-step multiplier of A, w_astro and b_astro")
    compare_baselines = Bool(False, doc="after a run with training phases, run the same liquid as an LSM "
                                        "(no plasticity, every |w| = lsm_weight) and as LSM + STDP (no "
                                        "astrocyte) and report the three side by side")
    lsm_weight = Float(1.0, unit="w", low=0.0, low_open=True, high=1e6,
                       visible_if={"compare_baselines": (True,)},
                       doc="weight magnitude of every projection of the LSM baseline")


TRIPARTITE_PRESETS = ("ex2_synapse_driven", "ex3_gliotransmission", "ex6_network")


@register
class TripartiteAstrocyte(NodeType):
    """G-ChI astrocyte with gliotransmission acting on a projection (De Pittà et al. 2011; Stimberg et al. 2019).

    dGamma_A/dt = O_N Y_S (1 - Gamma_A) - Omega_N (1 + zeta C/(C + K_KC)) Gamma_A
    dI/dt = J_beta + J_delta - J_3K - J_5P + J_ex;  dC/dt = J_r + J_l - J_p;  dh/dt = (h_inf - h)/tau_h
    a release event when C crosses C_theta upwards: G_A += rho_e G_T U_A x_A; x_A -= U_A x_A
    The released gliotransmitter activates presynaptic receptors Gamma_S of the projection, which
    sets its resting release probability U_0 = (1 - Gamma_S) U_0* + alpha Gamma_S (Tsodyks-Markram).
    Integrated with RK4 at dt_astro, decoupled from the neuron clock. Parameter values per preset.
    """

    type_id = "modulator.tripartite_astrocyte"
    title = "Tripartite astrocyte"
    category = Category.MODULATOR
    ports = (Out("modulation", PortKind.MODULATION, "attach to a projection's modulation port"),
             Out("state", PortKind.STATE, "Ca, IP3, h and release probability U_0 over time, for a state monitor"))
    summary = ("preset", "alpha")
    #: what a state monitor can record: calcium and IP3 (µM), IP3R de-inactivation h, and the
    #: release probability U_0 = (1 - Gamma_S) U_0* + alpha Gamma_S it sets on its synapses
    state_variables = ("Ca", "IP3", "h", "U_0")

    preset = Choice("ex3_gliotransmission", TRIPARTITE_PRESETS,
                    doc="parameter set of the Stimberg et al. 2019 examples")
    alpha = Choice("release_decreasing", ("release_decreasing", "release_increasing"),
                   doc="effect of gliotransmission on release probability (alpha = 0 or 1)")
    U_0 = Float(0.6, low=0.0, high=1.0, doc="resting release probability without gliotransmitter")
    I_bias = Float(0.0, unit="uM", low=0.0, high=100.0, doc="IP3 level the exogenous pull aims at")
    C_theta = Float(0.5, unit="uM", low=0.0, high=100.0, doc="calcium threshold of a release event")
    dt_astro = Float(1.0, unit="ms", low=0.01, high=1000.0, doc="astrocyte integration step (RK4)")
    coverage = Float(1.0, low=0.0, high=1.0, doc="fraction of the projection's synapses covered")
    seed = Seed()

    def check(self):
        if self.coverage < 1.0:
            yield Problem(f"coverage {self.coverage:g} is not simulated yet: the astrocyte covers every synapse "
                          "of its projections", node=self.label, field="coverage", severity="warning",
                          hint="set coverage = 1, or split the projection")

    def check_in_graph(self, graph):
        if not graph.downstream(self.id, "modulation"):
            yield Problem("the astrocyte covers no synapses", node=self.label, field="modulation",
                          severity="warning", hint="connect it to a projection's modulation port")


@register
class RewardSource(NodeType):
    """Reward / dopamine signal d(t) for three-factor rules (Izhikevich 2007).

    dd/dt = -d / tau_d + tonic / tau_d + sum_r amplitude delta(t - t_r)
    Rewards at given times, or at Poisson times with mean rate `rate` when mode = random.
    """

    type_id = "modulator.reward"
    title = "Reward / dopamine"
    category = Category.MODULATOR
    ports = (Out("modulation", PortKind.MODULATION, "dopamine concentration d(t)"),)
    summary = ("amplitude", "tau_d")

    mode = Choice("times", ("times", "random"), doc="rewards at listed times or at random times")
    times = FloatList((), low=0.0, high=MAX_TIME_MS, unit="ms", visible_if={"mode": ("times",)},
                      doc="reward times")
    rate = Float(0.5, unit="Hz", low=0.0, high=1000.0, visible_if={"mode": ("random",)},
                 doc="mean rate of random rewards")
    amplitude = Float(0.5, unit="uM", low=-100.0, high=100.0, doc="dopamine jump per reward")
    tau_d = Float(200.0, unit="ms", low=0.01, high=1e7, doc="dopamine decay time constant")
    tonic = Float(0.0, unit="uM", low=0.0, high=100.0, doc="tonic dopamine level")
    seed = Seed()

    def check_in_graph(self, graph):
        if not graph.downstream(self.id, "modulation"):
            yield Problem("the reward signal drives nothing", node=self.label, field="modulation",
                          severity="warning",
                          hint="connect it to a Reward STDP rule's modulation input")
