"""Slow, independent pure-Python reference of the plasticity rules (the way NEST tests its synapses).

Formulated differently from the engine on purpose: every synapse keeps its *own* presynaptic trace,
incremented when a spike *arrives* at that synapse (emission step + delay - 1), and every step loops
over all synapses. The engine instead keeps one trace per presynaptic neuron with a history ring and
touches only the synapses of neurons that spiked. Both must give the same weights (MODELS.md §0.4,
§3.3, §4).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np


def reference_weights(kind, params, syn_pre, syn_post, syn_delay, w0, pre_spikes, post_spikes, n_steps, dt,
                      pairing="all_to_all", same_step="pre_then_post", dopamine=None, dendritic=False):
    """Final weights of one projection under one rule, given the spikes of both sides.

    Parameters
    ----------
    kind : {"stdp_add", "stdp_mult", "triplet", "symmetric", "rstdp"}
    params : dict
        Rule parameters with the names of :data:`engine.plan.RULE_PARAMS`.
    syn_pre, syn_post, syn_delay, w0 : sequences
        One entry per synapse (delays in steps).
    pre_spikes, post_spikes : sequence of (step, index)
    dopamine : ndarray, optional
        ``d`` at every step (R-STDP), as used by that step's weight integration.
    dendritic : bool
        NEST's delay semantics: the synapse sees a presynaptic spike at emission and a
        postsynaptic one ``d - 1`` steps late. Every synapse then keeps its own postsynaptic traces.
    """
    n_syn = len(syn_pre)
    sign = np.where(np.asarray(w0) < 0, -1.0, 1.0)
    w = np.abs(np.asarray(w0, dtype=np.float64))
    lo, hi = max(params.get("w_min", 0.0), 0.0), params.get("w_max", 1.0)
    arrivals = defaultdict(list)   # presynaptic spikes reaching each synapse
    for e, j in pre_spikes:
        for s in range(n_syn):
            if syn_pre[s] == j:
                arrivals[e + (0 if dendritic else syn_delay[s] - 1)].append(s)
    post_arrivals = defaultdict(list)   # postsynaptic spikes reaching each synapse
    for k, i in post_spikes:
        for s in range(n_syn):
            if syn_post[s] == i:
                post_arrivals[k + (syn_delay[s] - 1 if dendritic else 0)].append(s)
    xs = np.zeros(n_syn)        # pre trace at each synapse (r1)
    xs2 = np.zeros(n_syn)       # triplet r2
    y = np.zeros(n_syn)         # post trace at each synapse (o1)
    y2 = np.zeros(n_syn)        # triplet o2
    c = np.zeros(n_syn)         # eligibility
    g = params.get
    if kind == "triplet":
        tx1, tx2, ty1, ty2 = g("tau_plus"), g("tau_x"), g("tau_minus"), g("tau_y")
    elif kind == "symmetric":
        tx1 = ty1 = g("tau")
        tx2 = ty2 = 1.0
    else:
        tx1, ty1 = g("tau_plus"), g("tau_minus")
        tx2 = ty2 = 1.0

    def clip(v):
        return min(max(v, lo), hi)

    def pre_rule(s, yv, y2v, r2):
        if kind == "stdp_add":
            w[s] = clip(w[s] - g("A_minus") * yv)
        elif kind == "stdp_mult":
            u = (w[s] - lo) / (hi - lo)
            u = max(0.0, u - g("A_minus") * u ** g("mu_minus") * yv)
            w[s] = lo + u * (hi - lo)
        elif kind == "triplet":
            w[s] = clip(w[s] - yv * (g("A2_minus") + g("A3_minus") * r2))
        elif kind == "symmetric":
            w[s] = clip(w[s] + g("eta_pre") * g("a") * yv)
        else:
            c[s] -= g("A_minus") * yv

    def post_rule(s, xv, o2):
        if kind == "stdp_add":
            w[s] = clip(w[s] + g("A_plus") * xv)
        elif kind == "stdp_mult":
            u = (w[s] - lo) / (hi - lo)
            u = min(1.0, u + g("A_plus") * (1 - u) ** g("mu_plus") * xv)
            w[s] = lo + u * (hi - lo)
        elif kind == "triplet":
            w[s] = clip(w[s] + xv * (g("A2_plus") + g("A3_plus") * o2))
        elif kind == "symmetric":
            w[s] = clip(w[s] + g("eta_post") * g("a") * xv)
        else:
            c[s] += g("A_plus") * xv

    def bump(arr, idx):
        arr[idx] = 1.0 if pairing == "nearest" else arr[idx] + 1.0

    for k in range(n_steps):
        arr_k = arrivals.get(k, [])
        post_k = post_arrivals.get(k, [])
        if same_step == "exclusive":
            for s in arr_k:
                pre_rule(s, y[s], y2[s], xs2[s])
            for s in post_k:
                post_rule(s, xs[s], y2[s])
            for s in arr_k:
                bump(xs, s)
                bump(xs2, s)
        else:
            for s in arr_k:
                pre_rule(s, y[s], y2[s], xs2[s])
                bump(xs, s)
                bump(xs2, s)
            for s in post_k:
                post_rule(s, xs[s], y2[s])
        for s in post_k:
            bump(y, s)
            bump(y2, s)
        if kind == "rstdp":
            d = dopamine[k]
            for s in range(n_syn):
                w[s] = clip(w[s] + c[s] * d * dt)
            c *= math.exp(-dt / g("tau_c"))
        xs *= math.exp(-dt / tx1)
        xs2 *= math.exp(-dt / tx2)
        y *= math.exp(-dt / ty1)
        y2 *= math.exp(-dt / ty2)
    return w * sign
