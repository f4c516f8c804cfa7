"""The one table of how Synweave's synapses, plasticity rules and adaptive neurons become NEST models.

Both the NEST backend (:mod:`engine.backends.nest_backend`, which builds the network in PyNEST) and
the NEST script exporter (:mod:`engine.exporters.nest_script`, which writes a PyNEST script) ask this
module; it never imports NEST itself. A feature NEST cannot express faithfully raises
:class:`NotMapped` with the reason: the backend turns it into an error naming the node, the script
exporter into a "dropped" line of its report (static synapses / the plain model are used there).

Mapping (units: NEST uses ms, mV, pA, pF, nS; ``s`` below is the weight scale of the target, 1 for
current neurons and ``g_L = 1/R`` nS for the conductance LIF, whose weights are in units of g_L)
-------------------------------------------------------------------------------------------------------
==========================  ================================================================================
Synweave                    NEST
==========================  ================================================================================
static projection           ``static_synapse``
Tsodyks-Markram STP         ``tsodyks2_synapse``, ``U``, ``tau_fac = tau_facil``, ``tau_rec``, initial
(projection option ``stp``) ``u = U``, ``x = 1`` (NEST keeps u and x as they are at the next release, ours
                            keep u before its facilitation jump, so our ``u = 0`` start is NEST's ``u = U``).
                            Its update (Fuhrmann et al. 2002) is ours: ``u <- U + u (1 - U) e^{-h/tau_fac}``,
                            ``x <- 1 + (x - u x - 1) e^{-h/tau_rec}``, release ``u x``; ``tau_fac = 0`` means
                            ``u = U`` (no facilitation), as ours. The releases equal MODELS.md STP-1 exactly.
                            ``tsodyks_synapse`` is not used: it keeps released resources in an
                            "active" state that decays with the PSC time constant before recovering,
                            which our model (and MODELS.md §2.3) does not have.
pair STDP                   ``stdp_synapse`` (all-to-all) / ``stdp_nn_symm_synapse`` (nearest), ``Wmax =
                            s w_max``, ``alpha = A_minus / A_plus``; additive: ``lambda = A_plus / w_max``,
                            ``mu = 0``; multiplicative: ``lambda = A_plus`` and our exponents
triplet STDP                ``stdp_triplet_synapse`` (all-to-all only), ``Aplus = s A2_plus``, ``Aminus =
                            s A2_minus``, ``Aplus_triplet = s A3_plus``, ``Aminus_triplet = s A3_minus``,
                            ``tau_plus``, ``tau_plus_triplet = tau_x``, ``Wmax = s w_max``; the post traces'
                            ``tau_minus`` / ``tau_minus_triplet = tau_y`` are parameters of the target neuron
reward STDP + Reward node   ``stdp_dopamine_synapse`` with a ``volume_transmitter`` that receives one spike
                            per reward (see below)
adaptive LIF (``alif``)     ``aeif_psc_exp`` (exponential channels) / ``aeif_psc_delta`` (delta channels)
                            with ``Delta_T = 0`` (no exponential spike current: spikes at ``V_th``),
                            ``C_m = tau_m / R``, ``g_L = 1 / R``, ``a = a_w`` (pA/mV = nS), ``b = b_w``,
                            ``tau_w``. Refused with threshold adaptation (``delta_theta != 0``), which aeif
                            models do not have.
==========================  ================================================================================

Reward STDP (MODELS.md §4.4) against NEST's ``stdp_dopamine_synapse`` (Potjans et al. 2010)
-------------------------------------------------------------------------------------------
Ours: ``dc/dt = -c/tau_c + STDP``, ``dd/dt = (tonic - d)/tau_d + sum_r A_r delta(t - t_r)``,
``dw/dt = c d``. NEST: the same eligibility ``c`` (post spike ``c += A_plus K_plus``, pre spike
``c -= A_minus K_minus``, traces +1 per spike), a dopamine trace ``n`` that jumps by ``1/tau_n`` per
spike of its volume transmitter, and ``dw/dt = c (n - b)``, integrated exactly between events and
clipped to ``[Wmin, Wmax]``. With ``tau_n = tau_d`` and one spike per reward, ``n = d_rewards /
(A tau_d)`` when every reward has the same amplitude ``A``, so the mapping scales the eligibility
up by ``A tau_d`` and sets the baseline to ``b = -tonic / (A tau_d)``:
``A_plus_N = s A tau_d A_plus``, ``A_minus_N = s A tau_d A_minus``, ``Wmin/Wmax = s w_min/w_max``.
Then ``c_N (n - b) = s c d`` exactly. Refused: rewards of different amplitudes (one spike adds a
fixed ``1/tau_n``), negative or inhibitory-channel weights (NEST learns the signed weight, we learn
its magnitude).
Where the two still differ (stated, not refused): NEST integrates ``w`` exactly between events while
we add ``c d dt`` each step (a relative difference of order ``dt / tau_d``); NEST skips the
potentiation of a same-time pre/post pair (our default ``pre_then_post`` gives ``+A_plus``); NEST's
delays are dendritic (postsynaptic spikes reach the synapse ``d - 1`` steps later than in our axonal
convention, nothing changes for one-step delays); the reward spike reaches the volume transmitter
through a one-step relay.

All NEST STDP synapses (pair, triplet, dopamine) update the weight at a presynaptic spike and then
transmit the new weight; our step order (MODELS.md §0.2) routes the spike with the weight before
its own update. Weights agree; the transmitted PSPs are one update ahead on NEST, which in
input-driven populations lowers rates slightly (triplet STDP, whose potentiation grows with the
rate, then ends ~10 % weaker; measured in tests/engine/test_nest_mappings.py).

Tripartite astrocyte (MODELS.md §5.2) against NEST's ``astrocyte_lr_1994``: refused, see
:data:`TRIPARTITE_REFUSAL`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: why a G-ChI tripartite astrocyte is not mapped to NEST's astrocyte_lr_1994 (NEST 3.6 - 3.10)
TRIPARTITE_REFUSAL = (
    "the tripartite (G-ChI) astrocyte is not mapped to NEST's astrocyte_lr_1994: (1) its output differs - "
    "NEST's astrocyte sends a slow inward current (SIC, I = SIC_scale ln(Ca - SIC_th)) into postsynaptic "
    "neurons through sic_connection, while ours releases gliotransmitter when Ca crosses C_theta, which "
    "activates presynaptic receptors Gamma_S and changes the resting release probability U_0 of the "
    "projection's Tsodyks-Markram synapses; NEST cannot modulate a tsodyks2_synapse's U from an astrocyte; "
    "(2) its IP3 input differs - NEST's IP3 relaxes linearly to IP3_0 (tau_IP3) and jumps by delta_IP3 per "
    "presynaptic spike, ours is produced through glutamate-bound receptors Gamma_A (driven by cleft "
    "glutamate Y_S) and by Ca-dependent PLC-delta, and degraded by Ca-dependent IP3-3K and by IP3-5P; only "
    "the Ca / h (Li-Rinzel) part is common. Run it with the numba backend")


class NotMapped(Exception):
    """A feature NEST cannot express faithfully; ``str(exc)`` says what and why."""


@dataclass
class SynapseMapping:
    """How one projection's synapses are built in NEST.

    Attributes
    ----------
    base : str
        The NEST synapse model to copy (``CopyModel(base, name, params)``).
    params : dict
        Common parameters of the copied model (plain floats).
    post_params : dict
        Parameters of the postsynaptic neurons the model needs (``tau_minus``, ``tau_minus_triplet``).
    reward : str or None
        Name of the reward signal whose volume transmitter the model needs (``stdp_dopamine_synapse``).
    plastic : bool
        Whether NEST changes the weights (final weights are read back / written out).
    summary : str
        One line for export reports.
    notes : list of str
        Differences from our model that remain (stated in reports, not approximations that change a
        parameter).
    """

    base: str = "static_synapse"
    params: dict = field(default_factory=dict)
    post_params: dict = field(default_factory=dict)
    reward: str | None = None
    plastic: bool = False
    summary: str = "static synapses"
    notes: list = field(default_factory=list)


def _require_excitatory(proj, post_pop, what: str) -> None:
    """NEST's plastic synapses learn the signed weight and pick the channel by its sign."""
    if np.any(np.asarray(proj.weights) < 0) or post_pop.receptor_index(proj.receptor) != 0:
        raise NotMapped(f"NEST's {what} here covers excitatory synapses (channel 0, weights >= 0) only")


def reward_scale(reward) -> float:
    """``A tau_d``: the factor between our dopamine and NEST's trace ``n`` (one spike per reward).

    Raises :class:`NotMapped` when the rewards have different amplitudes or zero amplitude."""
    amps = np.unique(np.asarray(reward.amplitudes, np.float64))
    if amps.size > 1:
        raise NotMapped(f"rewards of different amplitudes ({', '.join(f'{a:g}' for a in amps[:4])}): NEST's "
                        "dopamine trace jumps by the same 1/tau_n at every volume-transmitter spike")
    amplitude = float(amps[0]) if amps.size else 1.0
    if amplitude == 0.0:
        raise NotMapped("a reward amplitude of 0 (NEST's dopamine spikes cannot carry it)")
    return amplitude * float(reward.tau_d)


def synapse_mapping(proj, post_pop, scale: float, rewards: dict) -> SynapseMapping:
    """The NEST synapse model of projection ``proj`` (a :class:`~engine.plan.ProjectionPlan`).

    Parameters
    ----------
    proj : ProjectionPlan
    post_pop : PopulationPlan
        Its target population.
    scale : float
        NEST weight per unit of our weight (``g_L`` nS for the conductance LIF, else 1).
    rewards : dict
        :class:`~engine.plan.RewardPlan` by name.

    Raises
    ------
    NotMapped
        With the reason, when NEST has no faithful counterpart.
    """
    rules = list(proj.rules)
    if proj.stp is not None and rules:
        raise NotMapped("short-term plasticity together with a plasticity rule (NEST has no synapse model "
                        "with both)")
    if len(rules) > 1:
        raise NotMapped("more than one plasticity rule on a projection")
    if proj.stp is not None:
        stp = proj.stp
        return SynapseMapping("tsodyks2_synapse", {"U": float(stp.U), "tau_fac": float(stp.tau_facil),
                                                   "tau_rec": float(stp.tau_rec), "u": float(stp.U), "x": 1.0},
                              summary=f"Tsodyks-Markram -> NEST tsodyks2_synapse (U {stp.U:g}, tau_fac "
                                      f"{stp.tau_facil:g} ms, tau_rec {stp.tau_rec:g} ms)")
    if not rules:
        return SynapseMapping()
    rule = rules[0]
    if rule.astrocyte:
        raise NotMapped("STDP gated by a NALSM astrocyte (NEST has no synapse whose depression an astrocyte "
                        "sets)")
    if rule.kind == "stdp":
        return _pair_stdp(rule, proj, post_pop, scale)
    if rule.kind == "triplet":
        return _triplet(rule, proj, post_pop, scale)
    if rule.kind == "rstdp":
        return _reward_stdp(rule, proj, post_pop, scale, rewards)
    raise NotMapped(f"the {rule.kind} rule has no NEST synapse model (mapped: pair, triplet and reward STDP)")


def _check_bounds(rule) -> None:
    if rule.get("w_min") != 0:
        raise NotMapped(f"w_min = {rule.get('w_min'):g}; NEST's STDP synapses bound weights below by 0 "
                        "(set w_min = 0 or use the numba backend)")


def _pair_stdp(rule, proj, post_pop, scale) -> SynapseMapping:
    _check_bounds(rule)
    a_plus, w_max = rule.get("A_plus"), rule.get("w_max")
    if a_plus <= 0:
        raise NotMapped("A_plus must be > 0 for NEST (it expresses depression as alpha = A_minus / A_plus)")
    _require_excitatory(proj, post_pop, "STDP")
    base = "stdp_synapse" if rule.pairing == "all_to_all" else "stdp_nn_symm_synapse"
    if rule.get("form") == "additive":
        lam, mu_plus, mu_minus = a_plus / w_max, 0.0, 0.0
    else:
        lam, mu_plus, mu_minus = a_plus, rule.get("mu_plus"), rule.get("mu_minus")
    alpha = rule.get("A_minus") / a_plus
    params = {"tau_plus": float(rule.get("tau_plus")), "lambda": float(lam), "alpha": float(alpha),
              "mu_plus": float(mu_plus), "mu_minus": float(mu_minus), "Wmax": float(w_max * scale)}
    notes = [] if rule.same_step == "pre_then_post" else ["same-step pairs follow NEST's convention, not "
                                                          "'exclusive'"]
    return SynapseMapping(base, params, {"tau_minus": float(rule.get("tau_minus"))}, plastic=True, notes=notes,
                          summary=f"pair STDP ({rule.get('form')}) -> NEST {base} (lambda {lam:g}, alpha "
                                  f"{alpha:g}, Wmax {w_max * scale:g})")


def _triplet(rule, proj, post_pop, scale) -> SynapseMapping:
    if rule.pairing != "all_to_all":
        raise NotMapped("nearest-spike triplet STDP (NEST's stdp_triplet_synapse has all-to-all traces only)")
    _check_bounds(rule)
    _require_excitatory(proj, post_pop, "triplet STDP")
    params = {"tau_plus": float(rule.get("tau_plus")), "tau_plus_triplet": float(rule.get("tau_x")),
              "Aplus": float(rule.get("A2_plus") * scale), "Aminus": float(rule.get("A2_minus") * scale),
              "Aplus_triplet": float(rule.get("A3_plus") * scale),
              "Aminus_triplet": float(rule.get("A3_minus") * scale), "Wmax": float(rule.get("w_max") * scale)}
    post = {"tau_minus": float(rule.get("tau_minus")), "tau_minus_triplet": float(rule.get("tau_y"))}
    notes = ["NEST's delays are dendritic: with delays over one step, postsynaptic spikes reach the rule "
             "d - 1 steps later than in our axonal convention"] if np.any(np.asarray(proj.delays) > 1) else []
    return SynapseMapping("stdp_triplet_synapse", params, post, plastic=True, notes=notes,
                          summary=f"triplet STDP -> NEST stdp_triplet_synapse (Wmax {rule.get('w_max') * scale:g})")


def _reward_stdp(rule, proj, post_pop, scale, rewards) -> SynapseMapping:
    if rule.modulator is None or rule.modulator not in rewards:
        raise NotMapped("reward STDP without a reward signal")
    reward = rewards[rule.modulator]
    k = reward_scale(reward)
    _require_excitatory(proj, post_pop, "reward STDP")
    params = {"A_plus": float(scale * k * rule.get("A_plus")), "A_minus": float(scale * k * rule.get("A_minus")),
              "tau_plus": float(rule.get("tau_plus")), "tau_c": float(rule.get("tau_c")),
              "tau_n": float(reward.tau_d), "b": float(-reward.tonic / k) if reward.tonic else 0.0,
              "Wmin": float(rule.get("w_min") * scale), "Wmax": float(rule.get("w_max") * scale)}
    notes = ["NEST integrates dw/dt = c (n - b) exactly between events (we add c d dt per step) and skips "
             "the potentiation of same-time pre/post pairs"]
    if np.any(np.asarray(proj.delays) > 1):
        notes.append("NEST's delays are dendritic: with delays over one step, postsynaptic spikes reach the "
                     "eligibility trace d - 1 steps later than in our axonal convention")
    return SynapseMapping("stdp_dopamine_synapse", params, {"tau_minus": float(rule.get("tau_minus"))},
                          reward=reward.name, plastic=True, notes=notes,
                          summary=f"reward STDP -> NEST stdp_dopamine_synapse with a volume transmitter "
                                  f"(eligibility scaled by A tau_d = {k:g}, b = {params['b']:g})")


def adaptive_lif_problem(get) -> str | None:
    """Why an adaptive LIF cannot be an aeif model (``get(name)`` returns our parameter), or None.

    aeif models have a fixed threshold, so threshold adaptation (``delta_theta != 0``) is refused."""
    delta_theta = np.asarray(get("delta_theta"), np.float64)
    if np.any(delta_theta != 0):
        return (f"threshold adaptation (delta_theta = {float(np.max(delta_theta)):g} mV) of the adaptive LIF: "
                "NEST's aeif models have a fixed threshold (set delta_theta = 0 to run the adaptation current "
                "alone as aeif)")
    return None


def adaptive_lif(get, delta: bool) -> tuple[str, dict]:
    """NEST model and parameters of an adaptive LIF's membrane and adaptation current.

    ``aeif_psc_exp`` / ``aeif_psc_delta`` with ``Delta_T = 0``: ``C_m dV/dt = -g_L (V - E_L) - w + I``,
    ``tau_w dw/dt = a (V - E_L) - w``, ``w += b`` per spike, which is ours with ``C_m = tau_m / R``,
    ``g_L = 1 / R``. NEST integrates it with an adaptive Runge-Kutta solver (ours: the exact 2x2
    propagator); both clamp V at V_reset during t_ref while w evolves. Check
    :func:`adaptive_lif_problem` first.
    """
    R = np.asarray(get("R"), np.float64)
    params = dict(C_m=np.asarray(get("tau_m"), np.float64) / R, g_L=1.0 / R, Delta_T=0.0, V_th=get("V_th"),
                  V_peak=get("V_th"), a=get("a_w"), b=get("b_w"), tau_w=get("tau_w"))
    return ("aeif_psc_delta" if delta else "aeif_psc_exp"), params
