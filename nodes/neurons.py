"""Neuron populations."""

from __future__ import annotations

import math

from engine.errors import Problem
from nodes.base import Category, In, NodeType, Out, PortKind, register
from nodes.params import Choice, Float, FloatList, Int, IntList, Seed


class Population(NodeType):
    """Base of neuron populations: size, spatial layout, initial state and the common ports."""

    category = Category.NEURON
    ports = (
        In("input", PortKind.SYNAPTIC, "synaptic input from projections and injected currents",
           multiple=True, accepts=(PortKind.CURRENT,)),
        Out("spikes", PortKind.SPIKES, "spike trains of every neuron"),
        Out("state", PortKind.STATE, "state variables, for state monitors"),
    )
    summary = ("n",)
    capabilities = frozenset({"spiking"})
    #: names of per-neuron state variables a state monitor may record
    state_variables: tuple[str, ...] = ("V",)

    n = Int(100, low=1, high=100_000_000, unit="1", doc="number of neurons")
    layout = Choice("none", ("none", "grid", "random"),
                    doc="spatial layout used by distance-dependent connectivity and the 3D view")
    grid = IntList((10, 10, 1), low=1, length=3, visible_if={"layout": ("grid",)},
                   doc="grid shape (x, y, z); its product must equal n")
    spacing = Float(1.0, unit="um", low=0.0, low_open=True, visible_if={"layout": ("grid",)},
                    doc="distance between neighbouring grid points")
    extent = FloatList((100.0, 100.0, 100.0), low=0.0, length=3, unit="um",
                       visible_if={"layout": ("random",)},
                       doc="box (x, y, z) in which random positions are drawn uniformly")
    seed = Seed()

    def size(self) -> int:
        return self.n

    def check(self):
        if self.layout == "grid" and math.prod(self.grid) != self.n:
            gx, gy, gz = self.grid
            yield Problem(f"grid {gx}x{gy}x{gz} holds {gx * gy * gz} neurons but n = {self.n}",
                          node=self.label, field="grid",
                          hint=f"set n to {gx * gy * gz} or change the grid shape")


class IntegrateAndFire(Population):
    """Shared parameters of the leaky integrate-and-fire family."""

    tau_m = Float(10.0, unit="ms", low=0.01, high=1e5, doc="membrane time constant")
    E_L = Float(-70.0, unit="mV", low=-200, high=100, doc="resting (leak reversal) potential")
    V_th = Float(-50.0, unit="mV", low=-200, high=100, doc="firing threshold")
    V_reset = Float(-70.0, unit="mV", low=-200, high=100, doc="potential after a spike")
    t_ref = Float(2.0, unit="ms", low=0.0, high=1e4, doc="refractory period (V clamped at V_reset)")
    R = Float(0.1, unit="GOhm", low=0.0, low_open=True, high=1e3,
              doc="membrane resistance (R·pA = mV)")
    I_e = Float(0.0, unit="pA", low=-1e6, high=1e6, doc="constant injected current")
    V_init = Choice("rest", ("rest", "uniform"),
                    doc="initial V: E_L, or uniform between V_init_low and V_init_high")
    V_init_low = Float(-70.0, unit="mV", low=-200, high=100, visible_if={"V_init": ("uniform",)},
                       doc="lower bound of the uniform initial potential")
    V_init_high = Float(-50.0, unit="mV", low=-200, high=100, visible_if={"V_init": ("uniform",)},
                        doc="upper bound of the uniform initial potential")
    summary = ("n", "tau_m", "V_th")
    capabilities = frozenset({"spiking", "threshold"})

    def check(self):
        yield from super().check()
        if self.V_reset >= self.V_th:
            yield Problem(f"V_reset ({self.V_reset:g} mV) must lie below V_th ({self.V_th:g} mV), "
                          "otherwise the neuron fires in every step after its refractory period",
                          node=self.label, field="V_reset", hint="lower V_reset or raise V_th")
        if self.V_init == "uniform" and self.V_init_low > self.V_init_high:
            yield Problem("V_init_low is above V_init_high", node=self.label, field="V_init_low",
                          hint="swap the two bounds")


class CurrentSynapses:
    """Mixin: excitatory and inhibitory current channels, exponential or delta."""

    synapse = Choice("exponential", ("exponential", "delta"),
                     doc="exponential current synapses, or delta synapses that jump V by w mV")
    tau_syn_exc = Float(5.0, unit="ms", low=0.01, high=1e4, visible_if={"synapse": ("exponential",)},
                        doc="decay time constant of excitatory synaptic current")
    tau_syn_inh = Float(5.0, unit="ms", low=0.01, high=1e4, visible_if={"synapse": ("exponential",)},
                        doc="decay time constant of inhibitory synaptic current")


@register
class LIF(CurrentSynapses, IntegrateAndFire):
    """Leaky integrate-and-fire neuron with current-based synapses (exact integration: Rotter & Diesmann 1999).

    tau_m dV/dt = -(V - E_L) + R (I_exc + I_inh + I_e)
    tau_s dI/dt = -I, and I += w on each spike arrival        (exponential synapses)
    V += w on each arrival                                     (delta synapses)
    if V >= V_th: spike, V <- V_reset, V clamped for t_ref

    Integrated exactly on the time grid: V_{k+1} = E_L + (V_k - E_L) P22 + P21 I_k + R I_e (1 - P22)
    with P22 = exp(-dt/tau_m), P11 = exp(-dt/tau_s), P21 = R tau_s/(tau_s - tau_m) (P11 - P22).
    """

    type_id = "neuron.lif"
    title = "LIF"
    state_variables = ("V", "I_exc", "I_inh")
    capabilities = frozenset({"spiking", "threshold", "current"})



@register
class AdaptiveLIF(CurrentSynapses, IntegrateAndFire):
    """Adaptive LIF: threshold adaptation and a spike-triggered adaptation current
    (Bellec et al. 2018; Brette & Gerstner 2005).

    theta = V_th + vartheta;  spike if V >= theta;  on spike vartheta += delta_theta
    vartheta_{k+1} = vartheta_k exp(-dt/tau_theta)
    tau_m dV/dt = -(V - E_L) + R (I_syn + I_e - w)
    tau_w dw/dt = a_w (V - E_L) - w;  on spike w += b_w
    With a_w != 0 the (V, w) subthreshold system is propagated with its 2x2 matrix exponential.
    """

    type_id = "neuron.alif"
    title = "Adaptive LIF"
    state_variables = ("V", "I_exc", "I_inh", "theta", "w")
    capabilities = frozenset({"spiking", "threshold", "current", "adaptive_threshold"})
    summary = ("n", "tau_m", "delta_theta")

    delta_theta = Float(2.0, unit="mV", low=0.0, high=1e3, doc="threshold increment per spike")
    tau_theta = Float(100.0, unit="ms", low=0.01, high=1e9, doc="threshold adaptation time constant")
    a_w = Float(0.0, unit="pA/mV", low=-1e4, high=1e4, doc="subthreshold adaptation coupling")
    b_w = Float(0.0, unit="pA", low=0.0, high=1e6, doc="adaptation current increment per spike")
    tau_w = Float(100.0, unit="ms", low=0.01, high=1e9, doc="adaptation current time constant")


@register
class ConductanceLIF(IntegrateAndFire):
    """Conductance-based LIF neuron (Vogels & Abbott 2005).

    tau_m dV/dt = (E_L - V) + g_exc (E_exc - V) + g_inh (E_inh - V) + R I_e
    dg/dt = -g / tau_g;  g += w on spike arrival   (g in units of the leak conductance)
    Exponential Euler with conductances frozen over a step:
    g_tot = 1 + g_exc + g_inh,  V_inf = (E_L + g_exc E_exc + g_inh E_inh + R I_e) / g_tot
    V_{k+1} = V_inf + (V_k - V_inf) exp(-dt g_tot / tau_m)
    """

    type_id = "neuron.cobalif"
    title = "Conductance LIF"
    state_variables = ("V", "g_exc", "g_inh")
    capabilities = frozenset({"spiking", "threshold", "conductance"})

    E_exc = Float(0.0, unit="mV", low=-200, high=200, doc="excitatory reversal potential")
    E_inh = Float(-80.0, unit="mV", low=-200, high=200, doc="inhibitory reversal potential")
    tau_exc = Float(5.0, unit="ms", low=0.01, high=1e4, doc="excitatory conductance decay")
    tau_inh = Float(10.0, unit="ms", low=0.01, high=1e4, doc="inhibitory conductance decay")


IZHIKEVICH_PRESETS = {
    "RS": (0.02, 0.20, -65.0, 8.0),
    "IB": (0.02, 0.20, -55.0, 4.0),
    "CH": (0.02, 0.20, -50.0, 2.0),
    "FS": (0.10, 0.20, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
    "TC": (0.02, 0.25, -65.0, 0.05),
    "RZ": (0.10, 0.26, -65.0, 2.0),
}

#: the 2003 network's heterogeneous populations (MODELS.md §9.1): each of a, b, c, d is
#: k0 + k1 r + k2 r² of one uniform r ~ U[0, 1) per neuron; r = 0 gives RS (excitatory) and
#: FS-like (inhibitory) cells, r -> 1 chattering and low-threshold spiking ones
IZHIKEVICH_RANDOM_PRESETS = {
    "exc_2003": ((0.02, 0.0, 0.0), (0.2, 0.0, 0.0), (-65.0, 0.0, 15.0), (8.0, 0.0, -6.0)),
    "inh_2003": ((0.02, 0.08, 0.0), (0.25, -0.05, 0.0), (-65.0, 0.0, 0.0), (2.0, 0.0, 0.0)),
}


@register
class Izhikevich(Population):
    """Izhikevich (2003) neuron with the RS/IB/CH/FS/LTS/TC/RZ presets (Izhikevich 2003, IEEE TNN 14:1569).

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    if v >= 30 mV: v <- c, u <- u + d
    Scheme 'split_2003' is the paper's 1-ms code (two half steps of v, then u); 'euler' is forward
    Euler on both variables for dt <= 0.1 ms. Synaptic input adds to I for one step (delta).
    Presets exc_2003 / inh_2003 are the 2003 network's r-dependent cells, one r ~ U[0, 1) per neuron:
    exc a = 0.02, b = 0.2, c = -65 + 15 r², d = 8 - 6 r²; inh a = 0.02 + 0.08 r, b = 0.25 - 0.05 r,
    c = -65, d = 2.
    Precision: the 2003 split scheme is chaotic under rounding; float32 changes 12 of the 42 spike
    counts of the MODELS.md §1.4 table (e.g. RS 21 vs 20), float64 reproduces all of them. Run
    Izhikevich networks in float64 (the project's dtype setting; the bundled Izhikevich examples do,
    and validation warns when a split_2003 population runs in float32).
    """

    type_id = "neuron.izhikevich"
    title = "Izhikevich"
    state_variables = ("V", "u")
    capabilities = frozenset({"spiking", "current"})
    summary = ("n", "preset")

    preset = Choice("RS", (*IZHIKEVICH_PRESETS, *IZHIKEVICH_RANDOM_PRESETS, "custom"),
                    doc="firing pattern; exc_2003 / inh_2003 draw r-dependent a, b, c, d per neuron "
                        "(Izhikevich 2003 network); 'custom' uses a, b, c, d below")
    a = Float(0.02, unit="1/ms", low=0.0, high=10.0,
              visible_if={"preset": ("custom",)}, doc="recovery time scale")
    b = Float(0.2, unit="1", low=-10.0, high=10.0, visible_if={"preset": ("custom",)},
              doc="recovery sensitivity to v")
    c = Float(-65.0, unit="mV", low=-200.0, high=100.0, visible_if={"preset": ("custom",)},
              doc="reset potential")
    d = Float(8.0, unit="1", low=-100.0, high=100.0, visible_if={"preset": ("custom",)},
              doc="recovery increment per spike")
    I_e = Float(0.0, unit="1", low=-1e4, high=1e4,
                doc="constant input in model units (added to dv/dt in mV/ms)")
    scheme = Choice("split_2003", ("split_2003", "euler"),
                    doc="integration scheme: the 2003 split step (dt = 1 ms) or forward Euler")

    def is_heterogeneous(self) -> bool:
        """Whether the preset draws its parameters per neuron (exc_2003 / inh_2003)."""
        return self.preset in IZHIKEVICH_RANDOM_PRESETS

    def abcd(self, r=None):
        """(a, b, c, d): scalars, or per-neuron arrays of the r-dependent presets.

        Parameters
        ----------
        r : numpy.ndarray, optional
            One uniform draw in [0, 1) per neuron; required by the r-dependent presets.
        """
        if self.is_heterogeneous():
            if r is None:
                raise ValueError(f"preset {self.preset!r} needs one r per neuron")
            return tuple(k0 + k1 * r + k2 * r * r for k0, k1, k2 in IZHIKEVICH_RANDOM_PRESETS[self.preset])
        if self.preset == "custom":
            return (self.a, self.b, self.c, self.d)
        return IZHIKEVICH_PRESETS[self.preset]
