"""Flat, backend-neutral simulation plan.

A :class:`SimulationPlan` is what every backend consumes: plain dataclasses holding numpy arrays,
no graph objects, no Qt, no numba. The compiler (:mod:`engine.compiler`) produces it from a model
graph; tests and benchmarks build it directly.

Conventions (MODELS.md §0)
--------------------------
* Units: ms, mV, pA, GΩ (so ``R·I`` is in mV), conductances in units of the leak conductance.
* Time grid ``t_k = k·dt``; threshold-first step order (§0.2).
* Delays are integers in steps, ``d >= 1``; ``d = 1`` delivers a spike in the step it was emitted
  (it changes the target state at ``t_{k+1}``).
* Connectivity is stored pre-major (CSR by presynaptic neuron) with the synapses of each row sorted
  by delay, which is what event-driven spike propagation through a ring buffer needs.

Memory budget
-------------
A static synapse costs ``4 (int32 post index) + 4 (float32 weight) + 1 or 2 (uint8/uint16 delay)``
= 9-10 bytes, plus 8 bytes per presynaptic neuron for ``indptr``; 100 M synapses fit in ~1 GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import ParameterError, SimulationError

# ---------------------------------------------------------------------------------------------
# model catalogue: parameter defaults and state variables of the engine's neuron models
# ---------------------------------------------------------------------------------------------

#: Default parameters per neuron model (MODELS.md §1). Units in the comments of each entry.
MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    # §1.1 current-based LIF: tau_m (ms), E_L/V_reset/V_th (mV), t_ref (ms), R (GΩ), I_e (pA)
    "lif": dict(tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0, R=0.1, I_e=0.0),
    # §1.3 adaptive LIF: threshold adaptation (delta_theta mV, tau_theta ms) and adaptation current
    # tau_w dw/dt = a_w (V - E_L) - w, w += b_w on spike (a_w in pA/mV = nS, b_w in pA)
    "alif": dict(
        tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0, R=0.1, I_e=0.0,
        delta_theta=0.0, tau_theta=100.0, a_w=0.0, b_w=0.0, tau_w=100.0,
    ),
    # §1.2 conductance LIF (+ optional threshold adaptation as used by Diehl & Cook)
    "cobalif": dict(
        tau_m=10.0, E_L=-70.0, V_reset=-70.0, V_th=-50.0, t_ref=2.0, R=0.1, I_e=0.0,
        delta_theta=0.0, tau_theta=100.0,
    ),
    # §1.4 Izhikevich: dimensionless a, b, c (mV), d; v_peak (mV); I_e in model units (mV/ms)
    "izhikevich": dict(a=0.02, b=0.2, c=-65.0, d=8.0, v_peak=30.0, I_e=0.0),
}

#: Continuous state variables per model (receptor channel variables come on top: ``I_<name>``
#: for current channels, ``g_<name>`` for conductance channels).
MODEL_STATE: dict[str, tuple[str, ...]] = {
    "lif": ("V",),
    "alif": ("V", "theta", "w"),
    "cobalif": ("V", "theta"),
    "izhikevich": ("v", "u"),
}

#: Integration schemes per model; the first entry is the default.
MODEL_SCHEMES: dict[str, tuple[str, ...]] = {
    "lif": ("exact",),
    "alif": ("exact",),
    "cobalif": ("exponential_euler",),
    "izhikevich": ("split2003", "euler"),
}

#: Receptor channel kinds accepted per model.
MODEL_RECEPTOR_KINDS: dict[str, tuple[str, ...]] = {
    "lif": ("exponential", "delta"),
    "alif": ("exponential", "delta"),
    "cobalif": ("conductance",),
    "izhikevich": ("delta", "exponential"),
}

ArrayOrScalar = "float | np.ndarray"


def _as_param(value, n: int, name: str, pop: str) -> np.ndarray:
    """Broadcast a scalar or length-``n`` array to a float64 array of length ``n``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ParameterError(name, f"expected a scalar or an array of length {n}, got shape {arr.shape}", node=pop)
    return arr


# ---------------------------------------------------------------------------------------------
# populations
# ---------------------------------------------------------------------------------------------


@dataclass
class ReceptorPlan:
    """One receptor channel of a population (MODELS.md §2.1-§2.2).

    Parameters
    ----------
    name : str
        Channel name (``"exc"``, ``"inh"``, ``"ampa"`` ...); state variable ``I_<name>`` or ``g_<name>``.
    kind : {"exponential", "delta", "conductance"}
        ``exponential``: ``tau dI/dt = -I``, ``I += w`` on arrival (pA; for Izhikevich model units).
        ``delta``: LIF: arrival of ``w`` adds ``w`` mV to ``V_{k+1}`` undecayed; Izhikevich: a current
        pulse of one step carrying the same ``w`` mV kick (``I += w/dt`` during the step, which is
        exactly the 2003 ``net.m`` update at dt = 1 ms).
        ``conductance``: ``tau dg/dt = -g``, ``g += w`` (units of g_L), current ``g (E_rev - V)``.
    tau : float or ndarray
        Decay time constant (ms), unused for ``delta``.
    E_rev : float or ndarray
        Reversal potential (mV), conductance channels only.
    """

    name: str
    kind: str = "exponential"
    tau: Any = 5.0
    E_rev: Any = 0.0


@dataclass
class PopulationPlan:
    """A homogeneous group of neurons of one model.

    Parameters
    ----------
    name : str
        Unique name in the plan (spike monitors and projections refer to it).
    model : {"lif", "alif", "cobalif", "izhikevich"}
    size : int
    params : dict
        Model parameters, each a scalar or a per-neuron array of length ``size``; missing ones take
        :data:`MODEL_DEFAULTS`.
    initial_state : dict
        Structure-of-arrays initial values (``V``, ``theta``, ``w``, ``v``, ``u``, ``I_<rec>``,
        ``g_<rec>``, ``refractory`` in steps); scalars are broadcast, missing ones take the model's
        resting values (``V = E_L``; Izhikevich ``v = -65``, ``u = b·v``).
    receptors : list of ReceptorPlan
        Receptor channels; projections name one by index or name. Defaults to one exponential
        (``exc``, 5 ms) and one inhibitory (``inh``, 10 ms) channel for the current-based models,
        two conductance channels (``exc`` 0 mV/5 ms, ``inh`` -80 mV/10 ms) for ``cobalif`` and two
        delta channels for Izhikevich.
    scheme : str, optional
        Integration scheme (:data:`MODEL_SCHEMES`), e.g. ``"split2003"`` or ``"euler"`` for Izhikevich.
    threshold_rule : dict, optional
        Intrinsic plasticity of the threshold ``theta`` (MODELS.md §4.7, Hao form) for ``alif`` /
        ``cobalif``: ``{"theta_plus": mV, "offset": mV}``; per spike
        ``theta += theta_plus (offset - 10) / |theta - 10|``. (The Diehl & Cook form is the model's
        own ``delta_theta``.)
    """

    name: str
    model: str
    size: int
    params: dict = field(default_factory=dict)
    initial_state: dict = field(default_factory=dict)
    receptors: list = field(default_factory=list)
    scheme: str | None = None
    threshold_rule: dict | None = None

    def __post_init__(self):
        if self.model not in MODEL_DEFAULTS:
            raise ParameterError("model", f"unknown neuron model {self.model!r}; one of {sorted(MODEL_DEFAULTS)}", node=self.name)
        self.size = int(self.size)
        if self.size < 0:
            raise ParameterError("size", "population size must be >= 0", node=self.name)
        if not self.receptors:
            self.receptors = default_receptors(self.model)
        if self.scheme is None:
            self.scheme = MODEL_SCHEMES[self.model][0]
        if self.scheme not in MODEL_SCHEMES[self.model]:
            raise ParameterError("scheme", f"model {self.model!r} supports schemes {MODEL_SCHEMES[self.model]}", node=self.name)

    # -- helpers used by backends -------------------------------------------------------------
    def param(self, key: str) -> np.ndarray:
        """Per-neuron float64 array of parameter ``key`` (default filled in)."""
        defaults = MODEL_DEFAULTS[self.model]
        if key not in defaults:
            raise ParameterError(key, f"model {self.model!r} has no parameter {key!r}", node=self.name)
        return _as_param(self.params.get(key, defaults[key]), self.size, key, self.name)

    def receptor_index(self, receptor: int | str) -> int:
        """Index of a receptor channel given its index or name."""
        if isinstance(receptor, (int, np.integer)):
            if not 0 <= int(receptor) < len(self.receptors):
                raise ParameterError("receptor", f"receptor index {receptor} out of range (0..{len(self.receptors) - 1})", node=self.name)
            return int(receptor)
        for i, rec in enumerate(self.receptors):
            if rec.name == receptor:
                return i
        raise ParameterError("receptor", f"no receptor {receptor!r}; has {[r.name for r in self.receptors]}", node=self.name)

    def state_names(self) -> tuple[str, ...]:
        """All state variable names, including the per-receptor channel variables."""
        prefix = "g_" if self.model == "cobalif" else "I_"
        return MODEL_STATE[self.model] + tuple(prefix + r.name for r in self.receptors)

    def initial(self, var: str) -> np.ndarray:
        """Per-neuron float64 initial value of ``var`` (default filled in)."""
        if var in self.initial_state:
            return _as_param(self.initial_state[var], self.size, var, self.name)
        if var == "V":
            return self.param("E_L").copy()
        if var == "v":
            return np.full(self.size, -65.0)
        if var == "u":
            v = self.initial("v")
            return self.param("b") * v
        return np.zeros(self.size)

    def validate(self) -> None:
        for key in self.params:
            if key not in MODEL_DEFAULTS[self.model]:
                raise ParameterError(key, f"model {self.model!r} has no parameter {key!r}; known: {sorted(MODEL_DEFAULTS[self.model])}", node=self.name)
        for key in self.initial_state:
            if key not in self.state_names() and key != "refractory":
                raise ParameterError(key, f"unknown state variable {key!r}; known: {self.state_names()}", node=self.name)
        kinds = MODEL_RECEPTOR_KINDS[self.model]
        for rec in self.receptors:
            if rec.kind not in kinds:
                raise ParameterError("receptors", f"receptor {rec.name!r} of kind {rec.kind!r} is not valid for model {self.model!r} (use {kinds})", node=self.name)
            if rec.kind != "delta" and np.any(_as_param(rec.tau, self.size, "tau", self.name) <= 0):
                raise ParameterError("tau", f"receptor {rec.name!r}: time constant must be > 0 ms", node=self.name)
        for key in ("tau_m", "tau_theta", "tau_w"):
            if key in MODEL_DEFAULTS[self.model] and np.any(self.param(key) <= 0):
                raise ParameterError(key, "time constant must be > 0 ms", node=self.name)
        if "t_ref" in MODEL_DEFAULTS[self.model] and np.any(self.param("t_ref") < 0):
            raise ParameterError("t_ref", "refractory period must be >= 0 ms", node=self.name)


def default_receptors(model: str) -> list[ReceptorPlan]:
    """The default receptor channels of a model (an excitatory and an inhibitory one)."""
    if model == "cobalif":
        return [ReceptorPlan("exc", "conductance", 5.0, 0.0), ReceptorPlan("inh", "conductance", 10.0, -80.0)]
    if model == "izhikevich":
        return [ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")]
    return [ReceptorPlan("exc", "exponential", 5.0), ReceptorPlan("inh", "exponential", 10.0)]


# ---------------------------------------------------------------------------------------------
# projections
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# plasticity (MODELS.md §2.3, §3.3, §4)
# ---------------------------------------------------------------------------------------------

#: Rule kinds in the order they act on a projection within one step: spike-timing rules first
#: (their updates are the step's events), then rate-based Hebbian rules, then homeostatic scaling
#: (last, so that a normalised row sum holds after the step).
RULE_ORDER = ("stdp", "triplet", "symmetric", "rstdp", "oja", "bcm", "scaling_activity", "scaling_normalize")

#: Parameters (with defaults) of every rule kind; values are plain floats, choices are strings.
RULE_PARAMS: dict[str, dict[str, Any]] = {
    # §4.1/§4.2 pair STDP; traces +1 per spike; multiplicative uses u = (w - w_min)/(w_max - w_min)
    "stdp": dict(form="additive", A_plus=0.01, A_minus=0.0105, tau_plus=20.0, tau_minus=20.0, mu_plus=1.0,
                 mu_minus=1.0, w_min=0.0, w_max=1.0),
    # §4.3 triplet STDP, visual-cortex all-to-all set
    "triplet": dict(A2_plus=5e-10, A3_plus=6.2e-3, A2_minus=7e-3, A3_minus=2.3e-4, tau_plus=16.8, tau_minus=33.7,
                    tau_x=101.0, tau_y=125.0, w_min=0.0, w_max=1.0),
    # §4.5 symmetric STDP; traces +a per spike
    "symmetric": dict(eta_pre=0.005, eta_post=0.005, a=0.1, tau=20.0, w_min=0.0, w_max=1.0),
    # §4.4 reward-modulated STDP: STDP increments go to the eligibility c, dw/dt = c d
    "rstdp": dict(A_plus=0.1, A_minus=0.15, tau_plus=20.0, tau_minus=20.0, tau_c=1000.0, w_min=0.0, w_max=4.0),
    # §4.8 on spike-count rate traces (Hz); dw per second of model time, applied every interval
    "oja": dict(eta=0.005, tau_rate=100.0, interval=1.0, w_min=0.0, w_max=1e6),
    "bcm": dict(eta=1e-4, y0=10.0, tau_theta=1000.0, tau_rate=100.0, interval=1.0, w_min=0.0, w_max=1e6),
    # §4.6 (b) activity-dependent multiplicative scaling, rate trace in Hz
    "scaling_activity": dict(a_target=20.0, tau_a=1000.0, beta=1e-6, interval=1.0, w_min=0.0, w_max=1e12),
    # §4.6 (a) hard normalisation of every target's incoming weights to target_sum
    "scaling_normalize": dict(target_sum=78.0, interval=1.0, w_min=0.0, w_max=1e12),
}


@dataclass
class RulePlan:
    """A plasticity rule acting on the synapses of one projection.

    Parameters
    ----------
    kind : str
        One of :data:`RULE_ORDER`.
    name : str
        The rule node it came from (for messages and state files).
    params : dict
        Overrides of :data:`RULE_PARAMS` ``[kind]``.
    pairing : {"all_to_all", "nearest"}
        Traces add up over spikes, or are reset to their increment at each spike (§0.4).
    same_step : {"pre_then_post", "exclusive"}
        Same-step pre/post pairs: pre events first (dw(0) = +A+), or both read traces from before
        the step's increments (dw(0) = 0).
    modulator : str, optional
        Name of the :class:`RewardPlan` whose dopamine ``d(t)`` gates the rule (``rstdp``).
    dendritic : bool
        Delay semantics of spike-timing rules: False (axonal, default) pairs at the presynaptic
        spike's arrival; True (NEST's dendritic delay) sees the presynaptic spike at emission and
        the postsynaptic spike ``d - 1`` steps late, ``dt = k_post + d - 1 - e`` (§3.3).
    astrocyte : str, optional
        Name of the :class:`AstrocytePlan` that sets the rule's depression amplitude (pair STDP):
        ``A_minus(t) = A_minus A(t) / A(0)``; for inhibitory synapses the astrocyte sets the
        potentiation of the inhibition instead (the two amplitudes swap, MODELS.md §7.4).
    event_steps : ndarray of int, optional
        ``scaling_normalize``: steps at which rows are normalised (e.g. the first step of every
        data-set sample); when None, every ``interval`` ms.

    Timing (§3.3, axonal delays): a presynaptic spike emitted at step ``e`` through a synapse of
    delay ``d`` reaches the synapse at ``a = e + d - 1``; depression is applied at ``a`` and a
    postsynaptic spike at ``k`` reads the presynaptic trace of the arrivals, i.e. the neuron's
    trace at ``k - d + 1``.
    """

    kind: str
    name: str = ""
    params: dict = field(default_factory=dict)
    pairing: str = "all_to_all"
    same_step: str = "pre_then_post"
    modulator: str | None = None
    event_steps: Any = None
    astrocyte: str | None = None
    dendritic: bool = False

    def __post_init__(self):
        if self.kind not in RULE_PARAMS:
            raise ParameterError("kind", f"unknown plasticity rule {self.kind!r}; one of {list(RULE_ORDER)}",
                                 node=self.name or None)
        unknown = set(self.params) - set(RULE_PARAMS[self.kind])
        if unknown:
            raise ParameterError(sorted(unknown)[0], f"rule {self.kind!r} has no parameter {sorted(unknown)[0]!r}; "
                                 f"known: {sorted(RULE_PARAMS[self.kind])}", node=self.name or None)
        if self.pairing not in ("all_to_all", "nearest"):
            raise ParameterError("pairing", f"pairing must be 'all_to_all' or 'nearest', got {self.pairing!r}",
                                 node=self.name or None)
        if self.same_step not in ("pre_then_post", "exclusive"):
            raise ParameterError("same_step", "same_step must be 'pre_then_post' or 'exclusive', "
                                 f"got {self.same_step!r}", node=self.name or None)
        if self.get("w_min") > self.get("w_max"):
            raise ParameterError("w_min", f"w_min ({self.get('w_min'):g}) is above w_max ({self.get('w_max'):g})",
                                 node=self.name or None)

    def get(self, key: str):
        return self.params.get(key, RULE_PARAMS[self.kind][key])


@dataclass
class STPPlan:
    """Tsodyks-Markram short-term plasticity of a projection (MODELS.md §2.3).

    Per presynaptic neuron (all its synapses see the same spike train): utilisation ``u`` decays to
    0 with ``tau_facil``, resources ``x`` recover to 1 with ``tau_rec``. At a spike, after the
    exact decay since the last one: ``u += U (1 - u)``, ``r = u x``, ``x -= r``; the synapse
    delivers ``w r``. ``tau_facil = 0`` means no facilitation (``r = U x``).
    """

    U: float = 0.5
    tau_facil: float = 0.0
    tau_rec: float = 800.0

    def __post_init__(self):
        if not 0.0 < self.U <= 1.0:
            raise ParameterError("U", f"release probability U must be in (0, 1], got {self.U!r}")
        if self.tau_facil < 0 or self.tau_rec <= 0:
            raise ParameterError("tau_rec", "STP time constants must be > 0 ms (tau_facil >= 0)")


@dataclass
class AstrocytePlan:
    """NALSM astrocyte (MODELS.md §5.1): one scalar state ``A`` per network.

    Every step, after plasticity: ``A += (w (sum S_liquid - sum S_reference) + b - A) dt / tau``;
    then ``A``, ``w`` and ``b`` are multiplied by ``decay``. ``liquid`` and ``reference`` name
    populations or spike sources.
    """

    name: str
    liquid: list = field(default_factory=list)
    reference: list = field(default_factory=list)
    tau: float = 100.0
    w: float = 0.015
    b: float = 0.15
    A_init: float = 0.15
    decay: float = 1.0


@dataclass
class TripartitePlan:
    """A G-ChI astrocyte with gliotransmission covering the synapses of ``projections`` (MODELS.md §5.2).

    ``params`` is the parameter vector of :mod:`engine.kernels.astrocytes` (µM, 1/s); the covered
    projections need short-term plasticity, whose resting release probability becomes
    ``U_0 = (1 - Gamma_S) U0_star + alpha Gamma_S``. The astrocyte takes one RK4 step of
    ``dt_astro`` ms (a whole number of neuron steps) with the glutamate its synapses released.
    """

    name: str
    projections: list = field(default_factory=list)
    params: Any = None
    U0_star: float = 0.6
    alpha: float = 0.0
    dt_astro: float = 1.0
    I0: float = 0.0


#: state variables a state monitor can record on an astrocyte (one astrocyte: index 0), with units;
#: tripartite ``U_0`` is the release probability it sets on its synapses, (1 - Gamma_S) U_0* + alpha Gamma_S
NALSM_ASTROCYTE_VARIABLES = {"A": "1"}
TRIPARTITE_VARIABLES = {"Ca": "uM", "IP3": "uM", "h": "1", "U_0": "1"}


def astrocyte_variables(plan, name: str) -> dict | None:
    """The recordable variables {name: unit} of astrocyte ``name`` of ``plan``; None when it is no astrocyte."""
    if any(a.name == name for a in plan.astrocytes):
        return NALSM_ASTROCYTE_VARIABLES
    if any(t.name == name for t in plan.tripartites):
        return TRIPARTITE_VARIABLES
    return None


@dataclass
class RewardPlan:
    """A dopamine signal ``d(t)`` (Izhikevich 2007): ``dd/dt = (tonic - d)/tau_d + sum_r A delta(t - t_r)``.

    ``steps`` are the reward steps (sorted), ``amplitudes`` their jumps (µM).
    """

    name: str
    tau_d: float = 200.0
    tonic: float = 0.0
    steps: Any = field(default_factory=lambda: np.zeros(0, np.int64))
    amplitudes: Any = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        steps = np.asarray(self.steps, np.int64).ravel()
        amps = np.broadcast_to(np.asarray(self.amplitudes, np.float64), steps.shape)
        order = np.argsort(steps, kind="stable")
        self.steps, self.amplitudes = steps[order], np.ascontiguousarray(amps[order])



def delay_dtype(max_delay: int) -> np.dtype:
    """Smallest unsigned integer type holding delays up to ``max_delay`` steps."""
    if max_delay <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if max_delay <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    raise SimulationError(f"delay of {max_delay} steps is too long (at most 65535 steps)")


@dataclass
class ProjectionPlan:
    """Synapses from one spike emitter (population or spike source) to one receptor of a population.

    Stored as CSR by presynaptic neuron: the outgoing synapses of neuron ``j`` are
    ``indptr[j]:indptr[j+1]``, sorted by delay inside each row (ring-buffer propagation touches one
    slot run after the other).

    Parameters
    ----------
    name : str
    pre : str
        Name of the presynaptic population or spike source.
    post : str
        Name of the postsynaptic population.
    receptor : int or str
        Receptor channel of ``post``.
    indptr : ndarray of int64, shape (n_pre + 1,)
    indices : ndarray of int32, shape (n_syn,)
        Postsynaptic neuron index of each synapse.
    weights : ndarray of float32 or float64, shape (n_syn,)
        In the receptor's units (pA for current channels, mV for delta, g_L for conductance).
    delays : ndarray of uint8 / uint16 / int16, shape (n_syn,)
        In steps, >= 1.
    synapse_state : dict of ndarray
        Per-synapse state arrays for plasticity (traces, STP ``u``/``x`` ...), same order as ``indices``.
    plastic : bool
        Set when ``rules`` is not empty: the weights change during the run.
    rules : list of RulePlan
        Plasticity rules acting on these synapses, applied in this order every step.
    stp : STPPlan, optional
        Tsodyks-Markram short-term plasticity of the released fraction (MODELS.md §2.3).
    """

    name: str
    pre: str
    post: str
    receptor: Any
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    delays: np.ndarray
    synapse_state: dict = field(default_factory=dict)
    plastic: bool = False
    rules: list = field(default_factory=list)
    stp: Any = None
    _post_major: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        w = np.asarray(self.weights)
        self.weights = np.ascontiguousarray(w, dtype=w.dtype if w.dtype in (np.float32, np.float64) else np.float64)
        d = np.asarray(self.delays)
        if d.dtype not in (np.uint8, np.uint16, np.int16):
            dmax = int(d.max()) if d.size else 1
            if d.size and int(d.min()) < 1:
                raise ParameterError("delay", f"projection {self.name!r}: delays must be >= 1 step", node=self.name)
            d = d.astype(delay_dtype(dmax))
        self.delays = np.ascontiguousarray(d)
        self.rules = sorted(self.rules, key=lambda r: RULE_ORDER.index(r.kind))
        self.plastic = bool(self.rules) or self.plastic

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_coo(cls, name: str, pre: str, post: str, n_pre: int, pre_idx, post_idx, weights, delays=1,
                 receptor: int | str = 0, weight_dtype=np.float32, **kw) -> "ProjectionPlan":
        """Build from synapse lists ``(pre_idx[s], post_idx[s], weights[s], delays[s])``.

        Synapses are sorted by (pre, delay, post), stably, so the result does not depend on the input
        order of equal keys beyond that.
        """
        pre_idx = np.asarray(pre_idx, dtype=np.int64)
        post_idx = np.asarray(post_idx, dtype=np.int32)
        n = pre_idx.size
        weights = np.broadcast_to(np.asarray(weights, dtype=weight_dtype), (n,))
        delays = np.broadcast_to(np.asarray(delays), (n,))
        if n and (int(delays.min()) < 1):
            raise ParameterError("delay", f"projection {name!r}: delays must be >= 1 step", node=name)
        dmax = int(delays.max()) if n else 1
        order = np.lexsort((post_idx, delays, pre_idx))
        counts = np.bincount(pre_idx, minlength=n_pre) if n else np.zeros(n_pre, np.int64)
        indptr = np.zeros(n_pre + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(name, pre, post, receptor, indptr, post_idx[order], np.ascontiguousarray(weights[order]),
                   delays[order].astype(delay_dtype(dmax)), **kw)

    # -- properties ---------------------------------------------------------------------------
    @property
    def n_pre(self) -> int:
        return self.indptr.size - 1

    @property
    def n_synapses(self) -> int:
        return int(self.indices.size)

    @property
    def max_delay(self) -> int:
        return int(self.delays.max()) if self.delays.size else 1

    def nbytes(self) -> int:
        """Bytes held by the static connectivity (indptr + indices + weights + delays)."""
        return self.indptr.nbytes + self.indices.nbytes + self.weights.nbytes + self.delays.nbytes

    def bytes_per_synapse(self) -> float:
        """Bytes per synapse of the per-synapse arrays (excluding indptr)."""
        if not self.n_synapses:
            return 0.0
        return (self.indices.nbytes + self.weights.nbytes + self.delays.nbytes) / self.n_synapses

    def pre_indices(self) -> np.ndarray:
        """Presynaptic index of every synapse (expanded from ``indptr``; allocates int32 per synapse)."""
        return np.repeat(np.arange(self.n_pre, dtype=np.int32), np.diff(self.indptr))

    def post_major(self) -> np.ndarray:
        """Permutation sorting the synapses by postsynaptic neuron (stable), computed on first use.

        ``indices[perm]`` is non-decreasing; used by post-triggered plasticity updates (§0.5).
        """
        if self._post_major is None:
            self._post_major = np.argsort(self.indices, kind="stable").astype(np.int64)
        return self._post_major

    def validate(self, n_pre: int, n_post: int, n_receptors_ok=True) -> None:
        where = f"projection {self.name!r}"
        if self.indptr.size != n_pre + 1:
            raise SimulationError(f"{where}: indptr has {self.indptr.size} entries, expected {n_pre + 1} (pre size + 1)")
        if self.indptr[0] != 0 or np.any(np.diff(self.indptr) < 0) or self.indptr[-1] != self.indices.size:
            raise SimulationError(f"{where}: indptr is not a valid CSR row pointer")
        if not (self.indices.size == self.weights.size == self.delays.size):
            raise SimulationError(f"{where}: indices, weights and delays differ in length")
        if self.indices.size:
            if int(self.indices.min()) < 0 or int(self.indices.max()) >= n_post:
                raise SimulationError(f"{where}: postsynaptic index out of range 0..{n_post - 1}")
            if int(self.delays.min()) < 1:
                raise ParameterError("delay", "delays must be >= 1 step", node=self.name)
            if not np.all(np.isfinite(self.weights)):
                raise ParameterError("weight", "weights must be finite", node=self.name)
        for key, arr in self.synapse_state.items():
            if np.asarray(arr).shape[-1] != self.indices.size:
                raise SimulationError(f"{where}: synapse state {key!r} has the wrong length")


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------


@dataclass
class SourcePlan:
    """Base class of inputs. Spike sources (Poisson, spike trains) are presynaptic emitters that
    projections can start from; current sources inject into a population."""

    name: str

    @property
    def emits_spikes(self) -> bool:
        return False


@dataclass
class PoissonSourcePlan(SourcePlan):
    """Bernoulli-per-step approximation of Poisson spike trains (MODELS.md §2.4).

    A neuron with rate ``r`` (Hz) spikes in step ``k`` with probability ``p = r·dt/1000`` (dt in ms;
    ``p <= 0.1`` keeps Poisson fidelity). Each source has its own seeded random stream.

    Parameters
    ----------
    size : int
    rates : float or ndarray
        Hz, per neuron or scalar.
    seed : int, optional
        Stream seed; by default derived from the plan seed and the source name.
    start_step, stop_step : int
        Active for ``start_step <= k < stop_step``; ``stop_step = 0`` keeps the source on.
    """

    size: int = 1
    rates: Any = 10.0
    seed: int | None = None
    start_step: int = 0
    stop_step: int = 0

    @property
    def emits_spikes(self) -> bool:
        return True


@dataclass
class SpikeTrainSourcePlan(SourcePlan):
    """Explicit spikes ``(steps[i], indices[i])``: spike generators, dataset/event encodings.

    ``kind`` is informative (``"spike_train"``, ``"dataset"``, ``"events"``). Steps may repeat; the
    arrays are sorted by step (stably) at construction.
    """

    size: int = 1
    steps: Any = field(default_factory=lambda: np.zeros(0, np.int64))
    indices: Any = field(default_factory=lambda: np.zeros(0, np.int32))
    kind: str = "spike_train"
    #: spikes produced on demand (:class:`engine.encoders.Encoding`) instead of ``steps`` / ``indices``
    encoder: Any = None

    def __post_init__(self):
        if self.encoder is not None:
            # ``steps`` / ``indices`` then read the encoder (see __getattr__): all spikes at once,
            # only for consumers that ask for them; the numba backend asks per chunk (spikes_between)
            del self.steps, self.indices
            return
        steps = np.asarray(self.steps, dtype=np.int64).ravel()
        indices = np.asarray(self.indices, dtype=np.int32).ravel()
        if steps.shape != indices.shape:
            raise ParameterError("indices", "steps and indices differ in length", node=self.name)
        order = np.argsort(steps, kind="stable")
        self.steps, self.indices = steps[order], indices[order]

    @classmethod
    def from_times(cls, name: str, size: int, times_ms, indices, dt: float, kind: str = "spike_train"):
        """Spikes at times (ms) rounded to the grid ``k = round(t/dt)``."""
        steps = np.rint(np.asarray(times_ms, dtype=np.float64) / dt).astype(np.int64)
        return cls(name, size=size, steps=steps, indices=indices, kind=kind)

    def __getattr__(self, name):
        # reached only for attributes that are not set: the spikes of an encoder-backed source
        encoder = self.__dict__.get("encoder")
        if encoder is not None and name in ("steps", "indices"):
            return getattr(encoder, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def on_demand(self) -> bool:
        """Spikes are encoded when a run reaches them (see :meth:`spikes_between`)."""
        return self.encoder is not None

    def spikes_between(self, k_lo: int, k_hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps, indices) of the spikes with ``k_lo <= step < k_hi``, sorted by step."""
        if self.encoder is not None:
            return self.encoder.spikes(k_lo, k_hi)
        lo, hi = np.searchsorted(self.steps, (k_lo, k_hi))
        return self.steps[lo:hi], self.indices[lo:hi]

    @property
    def emits_spikes(self) -> bool:
        return True


#: Waveforms of :class:`CurrentSourcePlan`.
CURRENT_WAVEFORMS = ("dc", "step", "sine", "noise")


@dataclass
class CurrentSourcePlan(SourcePlan):
    """An injected current, held constant over each step (evaluated at ``t_k``).

    Waveforms
    ---------
    ``dc``     ``I(t) = amplitude``
    ``step``   piecewise constant: ``I = amplitudes[i]`` from ``times[i]`` (ms) on, 0 before ``times[0]``
    ``sine``   ``I(t) = offset + amplitude·sin(2π·frequency·t/1000 + phase)`` (frequency in Hz)
    ``noise``  ``I_k = offset + amplitude·N(0, 1)``, drawn per neuron and step (Izhikevich 2003
               thalamic input), seeded stream

    Units as the target model's current (pA; Izhikevich model units). For LIF models the current
    enters the exact propagator like ``I_e`` (``V += R·I·(1 - P22)``).

    Parameters
    ----------
    target : str
        Population name.
    indices : ndarray of int, optional
        Target neurons; all when None.
    """

    target: str = ""
    waveform: str = "dc"
    amplitude: Any = 0.0
    offset: float = 0.0
    frequency: float = 0.0
    phase: float = 0.0
    times: Any = field(default_factory=lambda: np.zeros(0))
    amplitudes: Any = field(default_factory=lambda: np.zeros(0))
    indices: Any = None
    seed: int | None = None

    def __post_init__(self):
        if self.waveform not in CURRENT_WAVEFORMS:
            raise ParameterError("waveform", f"unknown waveform {self.waveform!r}; one of {CURRENT_WAVEFORMS}", node=self.name)


# ---------------------------------------------------------------------------------------------
# monitors and the plan
# ---------------------------------------------------------------------------------------------

MONITOR_KINDS = ("spikes", "state", "rate", "weights")


@dataclass
class MonitorPlan:
    """What to record.

    ``spikes``: ``(step, index)`` of every spike of ``target`` (a population or spike source), or of
    ``indices`` only. ``state``: ``variables`` of ``indices`` (all neurons when None) every ``every``
    steps, sampled after the threshold/reset of the step (the value at ``t_k`` seen by the
    propagation, as Brian2's ``when='start'``). ``rate``: population spike count per step
    (``rate = count / (size·dt)``). ``weights``: the weights of projection ``target`` (synapses
    ``indices`` of its CSR order, all when None) at every step that is a multiple of ``every``,
    before the step is simulated; ``every = 0`` records only at the end of each run.
    """

    name: str
    target: str
    kind: str = "spikes"
    indices: Any = None
    variables: tuple = ()
    every: int = 1

    def __post_init__(self):
        if self.kind not in MONITOR_KINDS:
            raise ParameterError("kind", f"unknown monitor kind {self.kind!r}; one of {MONITOR_KINDS}", node=self.name)
        if isinstance(self.variables, str):
            self.variables = (self.variables,)
        self.variables = tuple(self.variables)
        self.every = int(self.every)
        if self.every < (0 if self.kind == "weights" else 1):
            raise ParameterError("every", "sampling interval must be >= 1 step", node=self.name)
        if self.indices is not None:
            self.indices = np.asarray(self.indices, dtype=np.int64).ravel()


@dataclass
class SimulationPlan:
    """Everything a backend needs to simulate.

    Parameters
    ----------
    dt : float
        Time step (ms).
    n_steps : int
        Default number of steps of a run (``Simulation.run()`` without a duration).
    dtype : {"float32", "float64"}
        State and weight precision of the simulation; float64 for golden-value tests.
    seed : int
        Root seed; every random stream derives from it unless it has its own seed.
    """

    dt: float = 0.1
    n_steps: int = 0
    dtype: str = "float32"
    seed: int = 0
    populations: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    projections: list = field(default_factory=list)
    monitors: list = field(default_factory=list)
    modulators: list = field(default_factory=list)
    astrocytes: list = field(default_factory=list)
    tripartites: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    # -- lookups ------------------------------------------------------------------------------
    def population(self, name: str) -> PopulationPlan:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise SimulationError(f"no population named {name!r}")

    def emitter_size(self, name: str) -> int:
        """Size of a population or spike source by name."""
        for item in list(self.populations) + [s for s in self.sources if s.emits_spikes]:
            if item.name == name:
                return int(item.size)
        raise SimulationError(f"no population or spike source named {name!r}")

    @property
    def max_delay(self) -> int:
        """Largest synaptic delay in steps (1 when there are no projections)."""
        return max([p.max_delay for p in self.projections] + [1])

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def steps_for(self, duration_ms: float) -> int:
        """Number of steps covering ``duration_ms`` (rounded to the nearest step)."""
        return int(round(float(duration_ms) / self.dt))

    def validate(self) -> None:
        """Check names, sizes, CSR structure and parameters; raise a SynweaveError subclass."""
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ParameterError("dt", "time step must be a positive number of ms")
        if self.dtype not in ("float32", "float64"):
            raise ParameterError("dtype", "dtype must be 'float32' or 'float64'")
        names = [p.name for p in self.populations] + [s.name for s in self.sources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SimulationError(f"duplicate population/source names: {sorted(dup)}")
        for pop in self.populations:
            pop.validate()
        pops = {p.name: p for p in self.populations}
        for src in self.sources:
            if isinstance(src, CurrentSourcePlan):
                if src.target not in pops:
                    raise SimulationError(f"current source {src.name!r}: no target population {src.target!r}")
                if src.indices is not None:
                    idx = np.asarray(src.indices)
                    if idx.size and (idx.min() < 0 or idx.max() >= pops[src.target].size):
                        raise SimulationError(f"current source {src.name!r}: target index out of range")
            elif isinstance(src, PoissonSourcePlan):
                rates = _as_param(src.rates, src.size, "rates", src.name)
                if np.any(rates < 0) or np.any(~np.isfinite(rates)):
                    raise ParameterError("rates", "rates must be finite and >= 0 Hz", node=src.name)
                if np.any(rates * self.dt / 1000.0 > 1.0):
                    raise ParameterError("rates", f"rate x dt exceeds one spike per step (dt = {self.dt} ms)", node=src.name)
            elif isinstance(src, SpikeTrainSourcePlan) and src.on_demand:
                if src.encoder.n_channels > src.size:
                    raise SimulationError(f"spike source {src.name!r}: {src.encoder.n_channels} channels encoded "
                                          f"for {src.size} neurons")
            elif isinstance(src, SpikeTrainSourcePlan):
                if src.indices.size and (src.indices.min() < 0 or src.indices.max() >= src.size):
                    raise SimulationError(f"spike source {src.name!r}: neuron index out of range 0..{src.size - 1}")
                if src.steps.size and src.steps.min() < 0:
                    raise SimulationError(f"spike source {src.name!r}: negative spike step")
        reward_names = {m.name for m in self.modulators}
        astro_names = {a.name for a in self.astrocytes}
        for astro in self.astrocytes:
            for name in list(astro.liquid) + list(astro.reference):
                self.emitter_size(name)
            if astro.A_init == 0:
                raise ParameterError("A_init", "an astrocyte that scales A_minus by A(t)/A(0) needs A(0) != 0",
                                     node=astro.name)
        projections = {p.name: p for p in self.projections}
        for tri in self.tripartites:
            for name in tri.projections:
                if name not in projections or projections[name].stp is None:
                    raise SimulationError(f"tripartite astrocyte {tri.name!r}: projection {name!r} does not exist or "
                                          "has no short-term plasticity, whose release the astrocyte modulates")
        for proj in self.projections:
            for rule in proj.rules:
                if rule.astrocyte is not None and rule.astrocyte not in astro_names:
                    raise SimulationError(f"rule {rule.name or rule.kind!r}: no astrocyte named {rule.astrocyte!r}")
                if rule.kind == "rstdp" and rule.modulator not in reward_names:
                    raise SimulationError(f"rule {rule.name or rule.kind!r} on projection {proj.name!r} needs a "
                                          f"dopamine signal; no reward source named {rule.modulator!r}")
        pnames = [p.name for p in self.projections]
        if len(set(pnames)) != len(pnames):
            raise SimulationError("duplicate projection names")
        for proj in self.projections:
            if proj.post not in pops:
                raise SimulationError(f"projection {proj.name!r}: no postsynaptic population {proj.post!r}")
            n_pre = self.emitter_size(proj.pre)
            post = pops[proj.post]
            post.receptor_index(proj.receptor)
            proj.validate(n_pre, post.size)
        mnames = [m.name for m in self.monitors]
        if len(set(mnames)) != len(mnames):
            raise SimulationError("duplicate monitor names")
        projections = {p.name: p for p in self.projections}
        for mon in self.monitors:
            if mon.kind == "weights":
                proj = projections.get(mon.target)
                if proj is None:
                    raise SimulationError(f"weight monitor {mon.name!r}: no projection named {mon.target!r}")
                if mon.indices is not None and mon.indices.size and (
                        mon.indices.min() < 0 or mon.indices.max() >= proj.n_synapses):
                    raise SimulationError(f"weight monitor {mon.name!r}: synapse index out of range")
                continue
            astro_vars = astrocyte_variables(self, mon.target) if mon.kind == "state" else None
            if astro_vars is not None:
                if mon.indices is not None and mon.indices.size and (mon.indices.min() != 0 or mon.indices.max() != 0):
                    raise SimulationError(f"monitor {mon.name!r}: an astrocyte has one state, index 0")
                for var in mon.variables:
                    if var not in astro_vars:
                        raise ParameterError("variables", f"astrocyte {mon.target!r} has no state variable {var!r}; "
                                                          f"known: {', '.join(astro_vars)}", node=mon.name)
                continue
            size = self.emitter_size(mon.target)
            if mon.indices is not None and mon.indices.size and (mon.indices.min() < 0 or mon.indices.max() >= size):
                raise SimulationError(f"monitor {mon.name!r}: index out of range 0..{size - 1}")
            if mon.kind == "state":
                pop = pops.get(mon.target)
                if pop is None:
                    raise SimulationError(f"monitor {mon.name!r}: state monitors need a population target")
                for var in mon.variables:
                    if canonical_var(pop, var) is None:
                        raise ParameterError("variables", f"population {pop.name!r} has no state variable {var!r}; known: {pop.state_names()}", node=mon.name)

    def memory_estimate(self) -> int:
        """Rough bytes needed by the static connectivity and the neuron state."""
        item = 4 if self.dtype == "float32" else 8
        syn = sum(p.nbytes() for p in self.projections)
        neurons = sum(p.size * (len(p.state_names()) + 12) * item for p in self.populations)
        ring = self.max_delay * sum(p.size * len(p.receptors) for p in self.populations) * item
        return int(syn + neurons + ring)


def canonical_var(pop: PopulationPlan, var: str) -> str | None:
    """Map a user spelling of a state variable to the population's name (``V``/``v`` alias)."""
    names = pop.state_names()
    if var in names:
        return var
    if pop.model == "izhikevich" and var == "V":
        return "v"
    if pop.model != "izhikevich" and var == "v":
        return "V"
    return None


def source_stream_seed(plan, source) -> np.random.SeedSequence:
    """Seed sequence of a random source's stream (Poisson spikes, noise current) in ``plan``."""
    kind = "poisson" if isinstance(source, PoissonSourcePlan) else "current"
    return stream_seed(plan.seed, f"{kind}:{source.name}", source.seed)


def stream_seed(root_seed: int, name: str, explicit: int | None = None) -> np.random.SeedSequence:
    """Seed sequence of the random stream ``name``: independent per name, reproducible per seed.

    Keyed by a stable hash of the name, so adding a source does not change the streams of others.
    """
    import zlib

    if explicit is not None:
        return np.random.SeedSequence(int(explicit))
    return np.random.SeedSequence(int(root_seed), spawn_key=(zlib.crc32(name.encode("utf-8")),))
