"""Numba plasticity kernels: pure per-event rule maths and the fused per-step plasticity pass.

The rule maths (what one presynaptic arrival or one postsynaptic spike does to one synapse) are
small pure functions (``*_pre`` / ``*_post``) that take and return plain floats, so a torch backend
can mirror them with tensors. :func:`plasticity_step` applies them to the synapses whose neurons
spiked in step ``k`` (step 6 of MODELS.md §0.2), then increments and decays the traces:

* presynaptic events at their **arrival** step ``a = e + d - 1`` (axonal delays, §3.3): a ring of
  the last ``Lh`` steps' presynaptic spikes, each with a cursor into its delay-sorted CSR row,
  yields exactly the synapses arriving in step ``k``;
* postsynaptic events through a post-major index (synapses grouped by target), reading the
  presynaptic trace the synapse sees: the neuron's trace at ``k - d + 1`` from a trace history ring
  (exact, because presynaptic traces do not depend on the postsynaptic side);
* traces are per neuron (``+1`` per spike, or reset to 1 for nearest-spike pairing) and decay
  exactly by ``exp(-dt/tau)`` per step; cost per step is O(neurons + touched synapses).

Weights are rule-bounded *magnitudes*: a synapse keeps the sign it was created with (Dale's law),
``|w|`` is clipped to ``[max(w_min, 0), w_max]`` after every update.

Table layout (built by :class:`engine.backends.numba_backend.NumbaBackend`): projection arrays
``pp_*`` are indexed by the projection's position in the shared CSR, rule arrays ``r_*`` by rule
(in application order), see the ``R_*`` / ``K_*`` constants below.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from engine.kernels import LEAF_OPTS, specialise
from engine.kernels import astrocytes as ak
from engine.kernels import neurons as nk

# rule kinds (kernel codes)
K_STDP_ADD, K_STDP_MULT, K_TRIPLET, K_SYMMETRIC, K_RSTDP, K_OJA, K_BCM, K_SCALE_ACTIVITY, K_SCALE_NORMALIZE = range(9)
#: number of per-rule parameter columns of ``r_prm``
R_PARAMS = 16
# common columns: magnitude bounds; log decay factors (-dt/tau) of the pre traces 0, 1 and the
# post traces 0, 1 (precomputed: a logarithm per step costs more than the rest of an idle step)
C_LO, C_HI = 0, 1
C_LOG_X0, C_LOG_X1, C_LOG_Y0, C_LOG_Y1 = 12, 13, 14, 15

#: ``r_prm`` columns that hold a rule's learning rates (scaled by training phases' schedules)
LEARNING_RATE_COLUMNS = {K_STDP_ADD: (2, 3), K_STDP_MULT: (2, 3), K_TRIPLET: (2, 3, 4, 5), K_SYMMETRIC: (2, 3),
                         K_RSTDP: (2, 3), K_OJA: (2,), K_BCM: (2,), K_SCALE_ACTIVITY: (2,), K_SCALE_NORMALIZE: ()}

_INLINE = dict(cache=True, nogil=True, inline="always")


class PlasticityTables(NamedTuple):
    """Projection-level plasticity tables, short-term plasticity and dopamine signals, in the order
    :func:`engine.kernels.network.run_chunk` unpacks them (a named tuple costs nothing there)."""

    pl_proj: np.ndarray      # indices of plastic projections
    pp_syn0: np.ndarray      # per projection: first synapse in the shared CSR
    pp_nsyn: np.ndarray
    pp_npre: np.ndarray
    pp_npost: np.ndarray
    pp_post_ent: np.ndarray  # entity of the target population
    pp_Lh: np.ndarray        # history length (max delay) or 0 when every delay is one step
    pp_hn0: np.ndarray       # offsets into h_n
    pp_h0: np.ndarray        # offsets into h_j / h_cur / h_end
    pp_pm0: np.ndarray       # offsets into pm_ptr
    pp_sg0: np.ndarray       # offsets into w_sign
    h_n: np.ndarray          # spikes remembered per history slot
    h_j: np.ndarray          # their neuron indices
    h_cur: np.ndarray        # next synapse of their row not yet arrived
    h_end: np.ndarray        # end of the run arriving in the current step
    pm_ptr: np.ndarray       # post-major index: row pointers (absolute)
    pm_syn: np.ndarray       # synapse of each post-major entry
    pm_pre: np.ndarray       # its presynaptic neuron
    w_sign: np.ndarray       # +1 / -1 per plastic synapse (Dale), int8
    proj_stp: np.ndarray     # per projection: STP table row or -1
    stp_proj: np.ndarray
    stp_prm: np.ndarray      # (U, tau_facil, tau_rec)
    stp_off: np.ndarray
    stp_u: np.ndarray
    stp_x: np.ndarray
    stp_last: np.ndarray
    stp_r: np.ndarray
    md_val: np.ndarray       # dopamine level per reward signal
    md_P: np.ndarray
    md_tonic: np.ndarray
    md_lo: np.ndarray
    md_hi: np.ndarray
    md_pos: np.ndarray
    ev_step: np.ndarray      # reward steps
    ev_amp: np.ndarray
    ip_group: np.ndarray     # intrinsic (Hao) threshold rules: group, first neuron, entity, params
    ip_start: np.ndarray
    ip_ent: np.ndarray
    ip_prm: np.ndarray
    as_val: np.ndarray       # NALSM astrocytes: state A, weight w, bias b, dt/tau, decay
    as_w: np.ndarray
    as_b: np.ndarray
    as_rate: np.ndarray
    as_decay: np.ndarray
    as_ent: np.ndarray       # entities counted: liquid ones in [liq_lo, liq_hi), reference ones after
    as_liq_lo: np.ndarray
    as_liq_hi: np.ndarray
    as_ref_hi: np.ndarray
    stp_astro: np.ndarray    # per STP projection: tripartite astrocyte covering it, or -1
    tri_state: np.ndarray    # tripartite astrocytes (engine.kernels.astrocytes): state (T, 8)
    tri_prm: np.ndarray      # (T, parameters)
    tri_armed: np.ndarray
    tri_acc: np.ndarray      # released fraction x synapses since the last astrocyte step
    tri_every: np.ndarray    # neuron steps per astrocyte step
    tri_dt_s: np.ndarray
    tri_U0: np.ndarray       # U_0* of the covered synapses
    tri_alpha: np.ndarray
    tri_nsyn: np.ndarray
    tri_scratch: np.ndarray  # (5, 8) RK4 work array
    pp_hpn0: np.ndarray      # dendritic delays: offsets of the postsynaptic spike ring in h_n
    pp_hp0: np.ndarray       # ... and in h_j / h_cur / h_end (post-major cursors)


class RuleTables(NamedTuple):
    """One row per rule (application order) and the trace storage."""

    r_kind: np.ndarray
    r_proj: np.ndarray
    r_prm: np.ndarray        # (R, R_PARAMS)
    r_nearest: np.ndarray
    r_excl: np.ndarray
    r_mod: np.ndarray        # reward signal or -1
    r_x0: np.ndarray         # offsets into xtr / xt
    r_y0: np.ndarray         # offsets into ytr / yt
    r_hx0: np.ndarray        # offsets into xhist
    r_s0: np.ndarray         # offsets into sst
    r_interval: np.ndarray   # steps between dense updates
    r_ev_lo: np.ndarray
    r_ev_hi: np.ndarray
    r_ev_pos: np.ndarray
    ev_norm: np.ndarray      # normalisation steps
    xtr: np.ndarray          # presynaptic trace values
    ytr: np.ndarray          # postsynaptic trace values
    xt: np.ndarray           # step of the last update of a lazy presynaptic trace
    yt: np.ndarray
    xhist: np.ndarray        # presynaptic trace history rings
    sst: np.ndarray          # per-synapse state (eligibility)
    r_astro: np.ndarray      # astrocyte setting the rule's depression amplitude, or -1
    r_astro_scale: np.ndarray  # A_minus / A(0)
    r_dend: np.ndarray       # dendritic delay semantics (NEST): the delay sits on the postsynaptic side
    r_hy0: np.ndarray        # offsets into yhist
    yhist: np.ndarray        # postsynaptic trace history rings (dendritic)


# =============================================================================================
# pure rule maths (one synapse, one event)
# =============================================================================================


@njit(**_INLINE)
def clip(m, lo, hi):
    """Bound a weight magnitude to ``[lo, hi]``."""
    return lo if m < lo else (hi if m > hi else m)


@njit(**_INLINE)
def stdp_additive_pre(m, y, A_minus, lo, hi):
    """Song et al.: depression at a presynaptic arrival, ``m <- clip(m - A_minus y)``."""
    return clip(m - A_minus * y, lo, hi)


@njit(**_INLINE)
def stdp_additive_post(m, x, A_plus, lo, hi):
    """Potentiation at a postsynaptic spike, ``m <- clip(m + A_plus x)``."""
    return clip(m + A_plus * x, lo, hi)


@njit(**_INLINE)
def unit_weight(m, lo, hi):
    """``(m - lo) / (hi - lo)`` in [0, 1] (0 when the bounds coincide). A float32 weight clipped to
    a bound can be stored a rounding step outside it; outside [0, 1] the fractional powers of the
    multiplicative rules would be NaN."""
    span = hi - lo
    if span <= 0:
        return 0.0
    u = (m - lo) / span
    return 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)


@njit(**_INLINE)
def stdp_multiplicative_pre(m, y, A_minus, mu_minus, lo, hi):
    """NEST ``stdp_synapse``: ``u <- max(0, u - A_minus u^mu_minus y)`` with ``u = (m - lo)/(hi - lo)``."""
    span = hi - lo
    u = unit_weight(m, lo, hi)
    u = u - A_minus * (u ** mu_minus) * y
    if u < 0.0:
        u = 0.0
    return lo + u * span


@njit(**_INLINE)
def stdp_multiplicative_post(m, x, A_plus, mu_plus, lo, hi):
    """``u <- min(1, u + A_plus (1 - u)^mu_plus x)``."""
    span = hi - lo
    u = unit_weight(m, lo, hi)
    u = u + A_plus * ((1.0 - u) ** mu_plus) * x
    if u > 1.0:
        u = 1.0
    return lo + u * span


@njit(**_INLINE)
def triplet_pre(m, o1, r2, A2_minus, A3_minus, lo, hi):
    """Pfister & Gerstner: ``m <- m - o1 (A2- + A3- r2(t - eps))``."""
    return clip(m - o1 * (A2_minus + A3_minus * r2), lo, hi)


@njit(**_INLINE)
def triplet_post(m, r1, o2, A2_plus, A3_plus, lo, hi):
    """``m <- m + r1 (A2+ + A3+ o2(t - eps))``."""
    return clip(m + r1 * (A2_plus + A3_plus * o2), lo, hi)


@njit(**_INLINE)
def oja_dw(x, y, w, eta):
    """Oja's rule ``dw = eta y (x - y w)`` (per unit time, rates in Hz)."""
    return eta * y * (x - y * w)


@njit(**_INLINE)
def bcm_dw(x, y, theta, eta):
    """BCM ``dw = eta x y (y - theta_M)``."""
    return eta * x * y * (y - theta)


@njit(**_INLINE)
def hao_threshold_increment(theta, theta_plus, offset):
    """Hao et al. intrinsic plasticity: ``theta_plus (offset - 10) / |theta - 10|``."""
    return theta_plus * (offset - 10.0) / abs(theta - 10.0)


@njit(**_INLINE)
def tm_release(u, x, dt_since, U, tau_facil, tau_rec):
    """Tsodyks-Markram at a spike ``dt_since`` ms after the previous one: returns ``(u, x, r)``.

    Exact decay since the last spike (``dt_since < 0``: first spike, state as initialised), then
    ``u += U (1 - u)``, ``r = u x``, ``x -= r``.
    """
    if dt_since >= 0.0:
        u = u * math.exp(-dt_since / tau_facil) if tau_facil > 0.0 else 0.0
        x = 1.0 - (1.0 - x) * math.exp(-dt_since / tau_rec)
    u = u + U * (1.0 - u)
    r = u * x
    return u, x - r, r


# =============================================================================================
# the per-step pass
# =============================================================================================


@njit(**_INLINE)
def lazy_trace(tr, tt, idx, k, log_decay):
    """Value at step ``k`` of a trace stored as (value after its last update, step of that update):
    ``tr[idx] exp((k - tt[idx]) log_decay)`` with ``log_decay = -dt / tau``."""
    v = tr[idx]
    n = k - tt[idx]
    if n == 0 or v == 0.0:
        return v
    return v * math.exp(n * log_decay)


@njit(**_INLINE)
def lazy_bump(tr, tt, idx, k, log_decay, nearest):
    """A spike in step ``k``: the trace becomes 1 (nearest) or its value plus 1 (all-to-all)."""
    tr[idx] = 1.0 if nearest else lazy_trace(tr, tt, idx, k, log_decay) + 1.0
    tt[idx] = k


@njit(**LEAF_OPTS)
def stp_release(k, dt, ent_off, ent_cnt, spk, proj_pre_ent, stp_proj, stp_prm, stp_off, stp_u, stp_x, stp_last,
                stp_r, indptr, proj_row_off, stp_astro, tri_acc):
    """Released fraction ``r`` of every presynaptic neuron that spikes in step ``k`` (before
    propagation), for every projection with short-term plasticity ``q`` (``stp_proj[q]``). A
    tripartite astrocyte covering the projection (``stp_astro[q] >= 0``) collects ``r`` times the
    neuron's number of synapses (the glutamate its synapses release)."""
    for q in range(stp_proj.size):
        a = stp_astro[q]
        row0 = proj_row_off[stp_proj[q]]
        e = proj_pre_ent[stp_proj[q]]
        off = ent_off[e]
        o = stp_off[q]
        U, tf, tr = stp_prm[q, 0], stp_prm[q, 1], stp_prm[q, 2]
        for c in range(ent_cnt[e]):
            j = o + spk[off + c]
            since = (k - stp_last[j]) * dt if stp_last[j] >= 0 else -1.0
            u, x, r = tm_release(stp_u[j], stp_x[j], since, U, tf, tr)
            stp_u[j] = u
            stp_x[j] = x
            stp_r[j] = r
            stp_last[j] = k
            if a >= 0:
                jl = spk[off + c]
                tri_acc[a] += r * (indptr[row0 + jl + 1] - indptr[row0 + jl])


@njit(**LEAF_OPTS)
def _record_history(k, Lh, row0, cnt, off, spk, indptr, delay, h_n, h_j, h_cur, h_end, hn0, h0, n_pre):
    """Put step ``k``'s presynaptic spikes into the history ring and mark, for every remembered
    spike, the run of its row whose synapses arrive in step ``k`` (``[h_cur, h_end)``)."""
    slot = k % Lh
    h_n[hn0 + slot] = cnt
    base = h0 + slot * n_pre
    for q in range(cnt):
        j = spk[off + q]
        h_j[base + q] = j
        h_cur[base + q] = indptr[row0 + j]
    for dd in range(1, Lh + 1):
        e = k - dd + 1
        if e < 0:
            break
        se = e % Lh
        b = h0 + se * n_pre
        for q in range(h_n[hn0 + se]):
            s = h_cur[b + q]
            end = indptr[row0 + h_j[b + q] + 1]
            while s < end and delay[s] == dd:
                s += 1
            h_end[b + q] = s


@njit(**LEAF_OPTS)
def _advance_history(k, Lh, h_n, h_cur, h_end, hn0, h0, n_pre):
    """After every rule of the projection has seen step ``k``'s arrivals: move the cursors on."""
    for dd in range(1, Lh + 1):
        e = k - dd + 1
        if e < 0:
            break
        b = h0 + (e % Lh) * n_pre
        for q in range(h_n[hn0 + e % Lh]):
            h_cur[b + q] = h_end[b + q]


@njit(**_INLINE)
def _pre_update(kind, prm, sst, si, m, y0, y1, r2, swap):
    """One presynaptic arrival on one synapse: new magnitude (eligibility for R-STDP in ``sst``).
    ``swap``: an astrocyte-modulated inhibitory synapse, whose two amplitudes trade places."""
    lo, hi = prm[C_LO], prm[C_HI]
    if kind == K_STDP_ADD:
        return stdp_additive_pre(m, y0, prm[2] if swap else prm[3], lo, hi)
    if kind == K_STDP_MULT:
        return stdp_multiplicative_pre(m, y0, prm[3], prm[7], lo, hi)
    if kind == K_TRIPLET:
        return triplet_pre(m, y0, r2, prm[4], prm[5], lo, hi)
    if kind == K_SYMMETRIC:
        return clip(m + prm[2] * y0, lo, hi)
    # R-STDP: the pair term goes to the eligibility trace
    sst[si] -= prm[3] * y0
    return m


@njit(**_INLINE)
def _post_update(kind, prm, sst, si, m, x0, o2, swap):
    lo, hi = prm[C_LO], prm[C_HI]
    if kind == K_STDP_ADD:
        return stdp_additive_post(m, x0, prm[3] if swap else prm[2], lo, hi)
    if kind == K_STDP_MULT:
        return stdp_multiplicative_post(m, x0, prm[2], prm[6], lo, hi)
    if kind == K_TRIPLET:
        return triplet_post(m, x0, o2, prm[2], prm[3], lo, hi)
    if kind == K_SYMMETRIC:
        return clip(m + prm[3] * x0, lo, hi)
    sst[si] += prm[2] * x0
    return m


@njit(**_INLINE)
def _trace_decays(kind, prm):
    """(pre trace 0, pre trace 1, post trace 0, post trace 1) decay factors per step."""
    if kind == K_TRIPLET:
        return prm[6], prm[7], prm[8], prm[9]
    return prm[4], 1.0, prm[5], 1.0


@njit(**LEAF_OPTS)
def _timing_rule(k, r, kind, prm, nearest, exclusive, p, ent_off, ent_cnt, spk, indptr, post, weight, delay,
                 proj_pre_ent, proj_row_off, pp_syn0, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0, pp_pm0,
                 pp_sg0, h_n, h_j, h_cur, h_end, pm_ptr, pm_syn, pm_pre, w_sign, xtr, ytr, xt, yt, xhist, sst, r_x0,
                 r_y0, r_hx0, r_s0, swap_inh):
    """Spike-timing rules (pair, triplet, symmetric, reward) on projection ``p`` for step ``k``.

    Postsynaptic traces, and presynaptic ones when no history ring is needed (every delay one
    step), are *lazy*: stored with the step of their last spike and decayed when read, so a step
    costs nothing for neurons that did not spike. With longer delays the presynaptic traces are
    decayed every step, because the history ring stores them per step anyway.
    """
    e = proj_pre_ent[p]
    off = ent_off[e]
    cnt = ent_cnt[e]
    pe = pp_post_ent[p]
    poff = ent_off[pe]
    pcnt = ent_cnt[pe]
    n_pre = pp_npre[p]
    n_post = pp_npost[p]
    row0 = proj_row_off[p]
    syn0 = pp_syn0[p]
    sg0 = pp_sg0[p]
    Lh = pp_Lh[p]
    two = kind == K_TRIPLET
    x0 = r_x0[r]
    x1 = x0 + n_pre
    y0 = r_y0[r]
    y1 = y0 + n_post
    hx0 = r_hx0[r]
    hx1 = hx0 + Lh * n_pre
    s0 = r_s0[r]
    hn0 = pp_hn0[p]
    h0 = pp_h0[p]
    slot = k % Lh if Lh > 1 else 0
    lazy_x = Lh <= 1
    px0, px1, py0, py1 = _trace_decays(kind, prm)
    lx0, lx1, ly0, ly1 = prm[C_LOG_X0], prm[C_LOG_X1], prm[C_LOG_Y0], prm[C_LOG_Y1]
    # (S1) history of trace values read "before this step's increment": r2 for the triplet pre
    # term always, the pair trace in exclusive mode
    if Lh > 1:
        if exclusive:
            for j in range(n_pre):
                xhist[np.uint64(hx0 + slot * n_pre + j)] = xtr[np.uint64(x0 + j)]
        if two:
            for j in range(n_pre):
                xhist[np.uint64(hx1 + slot * n_pre + j)] = xtr[np.uint64(x1 + j)]
    # (S2) presynaptic arrivals read the postsynaptic traces before their increment
    if Lh > 1:
        for dd in range(1, Lh + 1):
            em = k - dd + 1
            if em < 0:
                break
            se = em % Lh
            b = h0 + se * n_pre
            for q in range(h_n[hn0 + se]):
                j = h_j[b + q]
                r2 = xhist[hx1 + se * n_pre + j] if two else 0.0
                for s in range(h_cur[b + q], h_end[b + q]):
                    i = post[s]
                    sg = w_sign[sg0 + s - syn0]
                    m = _pre_update(kind, prm, sst, s0 + s - syn0, weight[s] * sg, lazy_trace(ytr, yt, y0 + i, k, ly0),
                                    lazy_trace(ytr, yt, y1 + i, k, ly1) if two else 0.0, r2, swap_inh and sg < 0)
                    weight[s] = m * sg
    else:
        for q in range(cnt):
            j = spk[off + q]
            r2 = lazy_trace(xtr, xt, x1 + j, k, lx1) if two else 0.0
            for s in range(indptr[row0 + j], indptr[row0 + j + 1]):
                i = post[s]
                sg = w_sign[sg0 + s - syn0]
                m = _pre_update(kind, prm, sst, s0 + s - syn0, weight[s] * sg, lazy_trace(ytr, yt, y0 + i, k, ly0),
                                lazy_trace(ytr, yt, y1 + i, k, ly1) if two else 0.0, r2, swap_inh and sg < 0)
                weight[s] = m * sg
    # (S3)/(S4): presynaptic increments before the postsynaptic events (pre_then_post) or after
    # them (exclusive); with a history ring the events read the stored value of the right kind
    post_first = exclusive and Lh <= 1
    for phase in range(2):
        do_increment = (phase == 0) != post_first
        if do_increment:
            for q in range(cnt):
                j = spk[off + q]
                if lazy_x:
                    lazy_bump(xtr, xt, x0 + j, k, lx0, nearest)
                    if two:
                        lazy_bump(xtr, xt, x1 + j, k, lx1, nearest)
                elif nearest:
                    xtr[x0 + j] = 1.0
                    if two:
                        xtr[x1 + j] = 1.0
                else:
                    xtr[x0 + j] += 1.0
                    if two:
                        xtr[x1 + j] += 1.0
            if Lh > 1 and not exclusive:
                for j in range(n_pre):
                    xhist[np.uint64(hx0 + slot * n_pre + j)] = xtr[np.uint64(x0 + j)]
        else:
            for q in range(pcnt):
                i = spk[poff + q]
                o2 = lazy_trace(ytr, yt, y1 + i, k, ly1) if two else 0.0
                for t in range(pm_ptr[pp_pm0[p] + i], pm_ptr[pp_pm0[p] + i + 1]):
                    s = pm_syn[t]
                    j = pm_pre[t]
                    if Lh > 1:
                        em = k - np.int64(delay[s]) + 1
                        x = xhist[hx0 + (em % Lh) * n_pre + j] if em >= 0 else 0.0
                    else:
                        x = lazy_trace(xtr, xt, x0 + j, k, lx0)
                    sg = w_sign[sg0 + s - syn0]
                    m = _post_update(kind, prm, sst, s0 + s - syn0, weight[s] * sg, x, o2, swap_inh and sg < 0)
                    weight[s] = m * sg
    # (S5) postsynaptic increments, (S6) exact decay of the dense presynaptic traces
    for q in range(pcnt):
        i = spk[poff + q]
        lazy_bump(ytr, yt, y0 + i, k, ly0, nearest)
        if two:
            lazy_bump(ytr, yt, y1 + i, k, ly1, nearest)
    if not lazy_x:
        # unsigned indices: numba then drops its negative-index check and LLVM vectorises the loop
        for j in range(n_pre):
            xtr[np.uint64(x0 + j)] *= px0
        if two:
            for j in range(n_pre):
                xtr[np.uint64(x1 + j)] *= px1


@njit(**LEAF_OPTS)
def _record_post_history(k, Lh, pm0, cnt, off, spk, pm_ptr, pm_syn, delay, h_n, h_j, h_cur, h_end, hn0, h0, n_post):
    """Dendritic delays: the postsynaptic spikes of step ``k`` reach their synapses ``d - 1`` steps
    later; as :func:`_record_history`, over the post-major index (rows sorted by delay)."""
    slot = k % Lh
    h_n[hn0 + slot] = cnt
    base = h0 + slot * n_post
    for q in range(cnt):
        i = spk[off + q]
        h_j[base + q] = i
        h_cur[base + q] = pm_ptr[pm0 + i]
    for dd in range(1, Lh + 1):
        e = k - dd + 1
        if e < 0:
            break
        b = h0 + (e % Lh) * n_post
        for q in range(h_n[hn0 + e % Lh]):
            t = h_cur[b + q]
            end = pm_ptr[pm0 + h_j[b + q] + 1]
            while t < end and delay[pm_syn[t]] == dd:
                t += 1
            h_end[b + q] = t


@njit(**_INLINE)
def _has_dendritic_rule(p, r_proj, r_dend, r_kind):
    """Whether a timing rule with dendritic delays acts on projection ``p``."""
    for r in range(r_kind.size):
        if r_proj[r] == p and r_dend[r] and r_kind[r] <= K_RSTDP:
            return True
    return False


@njit(**LEAF_OPTS)
def _timing_rule_dendritic(k, r, kind, prm, nearest, exclusive, p, ent_off, ent_cnt, spk, indptr, post, weight,
                           delay, proj_pre_ent, proj_row_off, pp_syn0, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_pm0,
                           pp_sg0, pp_hpn0, pp_hp0, h_n, h_j, h_cur, h_end, pm_ptr, pm_syn, pm_pre, w_sign, xtr,
                           ytr, xt, yhist, sst, r_x0, r_y0, r_hy0, r_s0, swap_inh):
    """Spike-timing rules with the delay on the dendrite (NEST's convention, MODELS.md §3.3): a
    presynaptic spike emitted at ``e`` is seen by its synapses at ``e``; a postsynaptic spike at
    ``k_post`` reaches a synapse of delay ``d`` at ``k_post + d - 1``, so ``dt = k_post + d - 1 - e``.
    The mirror of the axonal case: postsynaptic traces are dense with a history ring, presynaptic
    ones lazy, and delayed postsynaptic events come from a ring of postsynaptic spikes."""
    e = proj_pre_ent[p]
    off = ent_off[e]
    cnt = ent_cnt[e]
    pe = pp_post_ent[p]
    poff = ent_off[pe]
    pcnt = ent_cnt[pe]
    n_pre = pp_npre[p]
    n_post = pp_npost[p]
    row0 = proj_row_off[p]
    syn0 = pp_syn0[p]
    sg0 = pp_sg0[p]
    Lh = pp_Lh[p]
    pm0 = pp_pm0[p]
    hn0 = pp_hpn0[p]
    h0 = pp_hp0[p]
    two = kind == K_TRIPLET
    x0 = r_x0[r]
    x1 = x0 + n_pre
    y0 = r_y0[r]
    y1 = y0 + n_post
    hy0 = r_hy0[r]
    hy1 = hy0 + Lh * n_post
    s0 = r_s0[r]
    slot = k % Lh
    px0, px1, py0, py1 = _trace_decays(kind, prm)
    lx0, lx1 = prm[C_LOG_X0], prm[C_LOG_X1]
    # history of the postsynaptic traces before this step's increments (what synapses see later)
    for i in range(n_post):
        yhist[np.uint64(hy0 + slot * n_post + i)] = ytr[np.uint64(y0 + i)]
    if two:
        for i in range(n_post):
            yhist[np.uint64(hy1 + slot * n_post + i)] = ytr[np.uint64(y1 + i)]
    # presynaptic events at emission read the postsynaptic trace as it reached the synapse
    for q in range(cnt):
        j = spk[off + q]
        r2 = lazy_trace(xtr, xt, x1 + j, k, lx1) if two else 0.0
        for s in range(indptr[row0 + j], indptr[row0 + j + 1]):
            i = post[s]
            em = k - np.int64(delay[s]) + 1
            ys = em % Lh
            y = yhist[hy0 + ys * n_post + i] if em >= 0 else 0.0
            o1b = (yhist[hy1 + ys * n_post + i] if em >= 0 else 0.0) if two else 0.0
            sg = w_sign[sg0 + s - syn0]
            m = _pre_update(kind, prm, sst, s0 + s - syn0, weight[s] * sg, y, o1b, r2, swap_inh and sg < 0)
            weight[s] = m * sg
    for phase in range(2):
        if (phase == 0) != exclusive:
            for q in range(cnt):
                j = spk[off + q]
                lazy_bump(xtr, xt, x0 + j, k, lx0, nearest)
                if two:
                    lazy_bump(xtr, xt, x1 + j, k, lx1, nearest)
        else:
            # postsynaptic spikes arriving at their synapses now
            for dd in range(1, Lh + 1):
                em = k - dd + 1
                if em < 0:
                    break
                se = em % Lh
                b = h0 + se * n_post
                for q in range(h_n[hn0 + se]):
                    i = h_j[b + q]
                    o2 = yhist[hy1 + se * n_post + i] if two else 0.0
                    for t in range(h_cur[b + q], h_end[b + q]):
                        s = pm_syn[t]
                        x = lazy_trace(xtr, xt, x0 + pm_pre[t], k, lx0)
                        sg = w_sign[sg0 + s - syn0]
                        m = _post_update(kind, prm, sst, s0 + s - syn0, weight[s] * sg, x, o2, swap_inh and sg < 0)
                        weight[s] = m * sg
    for q in range(pcnt):
        i = spk[poff + q]
        if nearest:
            ytr[y0 + i] = 1.0
            if two:
                ytr[y1 + i] = 1.0
        else:
            ytr[y0 + i] += 1.0
            if two:
                ytr[y1 + i] += 1.0
    for i in range(n_post):
        ytr[np.uint64(y0 + i)] *= py0
    if two:
        for i in range(n_post):
            ytr[np.uint64(y1 + i)] *= py1


@njit(**LEAF_OPTS)
def _reward_integration(r, prm, p, d, weight, pp_syn0, pp_nsyn, pp_sg0, w_sign, sst, r_s0):
    """R-STDP: ``w += c d dt`` for every synapse while dopamine is present, then ``c`` decays."""
    syn0 = pp_syn0[p]
    n = pp_nsyn[p]
    s0 = r_s0[r]
    sg0 = pp_sg0[p]
    lo, hi = prm[C_LO], prm[C_HI]
    pc = prm[6]
    if d != 0.0:
        f = d * prm[7]
        for t in range(n):
            c = sst[s0 + t]
            if c != 0.0:
                sg = w_sign[sg0 + t]
                weight[syn0 + t] = clip(weight[syn0 + t] * sg + c * f, lo, hi) * sg
    for t in range(n):
        sst[np.uint64(s0 + t)] *= pc


@njit(**LEAF_OPTS)
def _rate_rule(k, r, kind, prm, p, ent_off, ent_cnt, spk, indptr, post, weight, proj_pre_ent, proj_row_off, pp_syn0,
               pp_npre, pp_npost, pp_post_ent, pp_sg0, w_sign, xtr, ytr, r_x0, r_y0, r_interval):
    """Oja / BCM on rate traces (Hz), and activity-dependent scaling, every ``interval`` steps."""
    n_pre = pp_npre[p]
    n_post = pp_npost[p]
    x0 = r_x0[r]
    y0 = r_y0[r]
    pe = pp_post_ent[p]
    lo, hi = prm[C_LO], prm[C_HI]
    if kind == K_SCALE_ACTIVITY:
        inc, decay = prm[5], prm[4]
    else:
        inc, decay = prm[4], prm[3]
    # rate traces: +1000/tau per spike (so that the trace estimates Hz), exact decay
    if kind != K_SCALE_ACTIVITY:
        e = proj_pre_ent[p]
        for q in range(ent_cnt[e]):
            xtr[x0 + spk[ent_off[e] + q]] += inc
    for q in range(ent_cnt[pe]):
        ytr[y0 + spk[ent_off[pe] + q]] += inc
    if kind == K_BCM:
        # sliding threshold: tau_theta dtheta/dt = y^2 / y0 - theta, exact for y held over the step
        for i in range(n_post):
            y = ytr[y0 + i]
            th = ytr[y0 + n_post + i]
            ytr[y0 + n_post + i] = y * y / prm[6] + (th - y * y / prm[6]) * prm[7]
    if (k + 1) % r_interval[r] == 0:
        row0 = proj_row_off[p]
        syn0 = pp_syn0[p]
        sg0 = pp_sg0[p]
        for j in range(n_pre):
            for s in range(indptr[row0 + j], indptr[row0 + j + 1]):
                i = post[s]
                sg = w_sign[sg0 + s - syn0]
                m = weight[s] * sg
                if kind == K_OJA:
                    m = m + oja_dw(xtr[x0 + j], ytr[y0 + i], m, prm[2]) * prm[5]
                elif kind == K_BCM:
                    m = m + bcm_dw(xtr[x0 + j], ytr[y0 + i], ytr[y0 + n_post + i], prm[2]) * prm[5]
                else:
                    m = m + prm[2] * m * (prm[3] - ytr[y0 + i])
                weight[s] = clip(m, lo, hi) * sg
    if kind != K_SCALE_ACTIVITY:
        for j in range(n_pre):
            xtr[np.uint64(x0 + j)] *= decay
    for i in range(n_post):
        ytr[np.uint64(y0 + i)] *= decay


@njit(**LEAF_OPTS)
def _normalize_rows(r, prm, p, weight, pp_npost, pp_pm0, pp_syn0, pp_sg0, pm_ptr, pm_syn, w_sign):
    """Hard normalisation: every target's incoming magnitudes rescaled to sum ``target_sum``."""
    lo, hi = prm[C_LO], prm[C_HI]
    T = prm[2]
    syn0 = pp_syn0[p]
    sg0 = pp_sg0[p]
    pm0 = pp_pm0[p]
    for i in range(pp_npost[p]):
        total = 0.0
        for t in range(pm_ptr[pm0 + i], pm_ptr[pm0 + i + 1]):
            s = pm_syn[t]
            total += weight[s] * w_sign[sg0 + s - syn0]
        if total > 0.0:
            f = T / total
            for t in range(pm_ptr[pm0 + i], pm_ptr[pm0 + i + 1]):
                s = pm_syn[t]
                sg = w_sign[sg0 + s - syn0]
                weight[s] = clip(weight[s] * sg * f, lo, hi) * sg


@njit(**LEAF_OPTS)
def _rewards(k, md_val, md_lo, md_hi, md_pos, ev_step, ev_amp):
    for m in range(md_val.size):
        pos = md_pos[m]
        while pos < md_hi[m] and ev_step[pos] < k:  # after a restore at a later step
            pos += 1
        while pos < md_hi[m] and ev_step[pos] == k:
            md_val[m] += ev_amp[pos]
            pos += 1
        md_pos[m] = pos


class PlasticityFeatures(NamedTuple):
    """The code paths of :func:`plasticity_step` a network needs (see :func:`plasticity_kernel`)."""

    history: bool = True      # presynaptic spike history rings (a timing rule with delays > 1 step)
    timing: bool = True       # timing rules (STDP, triplet, symmetric, R-STDP), axonal delays
    dendritic: bool = True    # timing rules with dendritic delays
    rstdp: bool = True        # eligibility traces integrated with dopamine
    normalize: bool = True    # synaptic scaling by normalisation
    rate: bool = True         # Oja, BCM, activity scaling
    rewards: bool = True      # reward (dopamine) signals
    intrinsic: bool = True    # adaptive thresholds (Hao)
    astrocytes: bool = True   # NALSM astrocytes
    tripartite: bool = True   # tripartite astrocytes

    @property
    def any(self) -> bool:
        return any(self)

    @property
    def mask(self) -> int:
        return sum(1 << i for i, on in enumerate(self) if on)


def plasticity_features(plast: PlasticityTables, rules: RuleTables) -> PlasticityFeatures:
    """What :func:`plasticity_step` has to do for these tables."""
    kind = np.asarray(rules.r_kind)
    timing = kind <= K_RSTDP
    lh = np.asarray(plast.pp_Lh)
    dend = timing & np.asarray(rules.r_dend, np.bool_) & (lh[np.asarray(rules.r_proj, np.int64)] > 1)
    return PlasticityFeatures(
        history=bool(np.any(lh[np.asarray(plast.pl_proj, np.int64)] > 1)),
        timing=bool(np.any(timing & ~dend)), dendritic=bool(np.any(dend)), rstdp=bool(np.any(kind == K_RSTDP)),
        normalize=bool(np.any(kind == K_SCALE_NORMALIZE)), rate=bool(np.any((kind > K_RSTDP) & (kind != K_SCALE_NORMALIZE))),
        rewards=bool(plast.md_val.size), intrinsic=bool(plast.ip_group.size), astrocytes=bool(plast.as_val.size),
        tripartite=bool(plast.tri_state.shape[0]))


# Code-path flags of plasticity_step: True here (the general kernel); a variant made by
# plasticity_kernel() sees its own values as compile-time constants and is compiled without the
# kernels behind a False flag.
_P_HISTORY = _P_TIMING = _P_DENDRITIC = _P_RSTDP = _P_NORMALIZE = _P_RATE = True
_P_REWARDS = _P_INTRINSIC = _P_ASTROCYTES = _P_TRIPARTITE = True


def plasticity_kernel(features: PlasticityFeatures):
    """The :func:`plasticity_step` variant compiled for ``features`` only (cached on disk apart)."""
    constants = {"_P_" + name.upper(): bool(on) for name, on in zip(features._fields, features)}
    return specialise(_plasticity_step, f"plasticity_step_{features.mask:03x}", constants, LEAF_OPTS)


def _plasticity_step(k, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
                    pl_proj, pp_syn0, pp_nsyn, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0, pp_pm0, pp_sg0,
                    h_n, h_j, h_cur, h_end, pm_ptr, pm_syn, pm_pre, w_sign,
                    r_kind, r_proj, r_prm, r_nearest, r_excl, r_mod, r_x0, r_y0, r_hx0, r_s0, r_interval, r_ev_lo,
                    r_ev_hi, r_ev_pos, ev_norm, xtr, ytr, xt, yt, xhist, sst, r_astro, r_astro_scale, r_dend, r_hy0,
                    yhist,
                    md_val, md_P, md_tonic, md_lo, md_hi, md_pos, ev_step, ev_amp,
                    ip_group, ip_start, ip_ent, ip_prm, l_state, l_prm, c_state, c_prm,
                    as_val, as_w, as_b, as_rate, as_decay, as_ent, as_liq_lo, as_liq_hi, as_ref_hi,
                    stp_astro, stp_prm, tri_state, tri_prm, tri_armed, tri_acc, tri_every, tri_dt_s, tri_U0, tri_alpha,
                    tri_nsyn, tri_scratch, pp_hpn0, pp_hp0):
    """Step (6)-(7) of §0.2 for every plastic projection, intrinsic rule and dopamine signal.

    Template of the plasticity kernels: see :func:`plasticity_kernel`. A False ``_P_*`` flag
    removes a code path the tables do not use; each variant does what the general kernel does.
    """
    if _P_REWARDS:
        _rewards(k, md_val, md_lo, md_hi, md_pos, ev_step, ev_amp)
    if _P_HISTORY:
        for a in range(pl_proj.size):
            p = pl_proj[a]
            if pp_Lh[p] > 1:
                e = proj_pre_ent[p]
                _record_history(k, pp_Lh[p], proj_row_off[p], ent_cnt[e], ent_off[e], spk, indptr, delay, h_n, h_j,
                                h_cur, h_end, pp_hn0[p], pp_h0[p], pp_npre[p])
    if _P_DENDRITIC:  # once per projection: every dendritic rule on it sees the same delayed post events
        for a in range(pl_proj.size):
            p = pl_proj[a]
            if pp_Lh[p] > 1 and _has_dendritic_rule(p, r_proj, r_dend, r_kind):
                pe = pp_post_ent[p]
                _record_post_history(k, pp_Lh[p], pp_pm0[p], ent_cnt[pe], ent_off[pe], spk, pm_ptr, pm_syn, delay,
                                     h_n, h_j, h_cur, h_end, pp_hpn0[p], pp_hp0[p], pp_npost[p])
    for r in range(r_kind.size):
        kind = r_kind[r]
        p = r_proj[r]
        prm = r_prm[r]
        if kind <= K_RSTDP:
            a = r_astro[r]
            if a >= 0:
                r_prm[r, 3] = as_val[a] * r_astro_scale[r]
            if _P_DENDRITIC and r_dend[r] and pp_Lh[p] > 1:
                _timing_rule_dendritic(k, r, kind, prm, r_nearest[r], r_excl[r], p, ent_off, ent_cnt, spk, indptr,
                                       post, weight, delay, proj_pre_ent, proj_row_off, pp_syn0, pp_npre, pp_npost,
                                       pp_post_ent, pp_Lh, pp_pm0, pp_sg0, pp_hpn0, pp_hp0, h_n, h_j, h_cur, h_end,
                                       pm_ptr, pm_syn, pm_pre, w_sign, xtr, ytr, xt, yhist, sst, r_x0, r_y0, r_hy0,
                                       r_s0, r_astro[r] >= 0)
            elif _P_TIMING:
                _timing_rule(k, r, kind, prm, r_nearest[r], r_excl[r], p, ent_off, ent_cnt, spk, indptr, post, weight,
                             delay, proj_pre_ent, proj_row_off, pp_syn0, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0,
                             pp_h0, pp_pm0, pp_sg0, h_n, h_j, h_cur, h_end, pm_ptr, pm_syn, pm_pre, w_sign, xtr, ytr,
                             xt, yt, xhist, sst, r_x0, r_y0, r_hx0, r_s0, r_astro[r] >= 0)
            if _P_RSTDP and kind == K_RSTDP:
                _reward_integration(r, prm, p, md_val[r_mod[r]], weight, pp_syn0, pp_nsyn, pp_sg0, w_sign, sst, r_s0)
        elif kind == K_SCALE_NORMALIZE:
            if _P_NORMALIZE:
                due = False
                if r_ev_hi[r] > r_ev_lo[r]:
                    pos = r_ev_pos[r]
                    while pos < r_ev_hi[r] and ev_norm[pos] < k:
                        pos += 1
                    if pos < r_ev_hi[r] and ev_norm[pos] == k:
                        due = True
                        pos += 1
                    r_ev_pos[r] = pos
                else:
                    due = (k + 1) % r_interval[r] == 0
                if due:
                    _normalize_rows(r, prm, p, weight, pp_npost, pp_pm0, pp_syn0, pp_sg0, pm_ptr, pm_syn, w_sign)
        elif _P_RATE:
            _rate_rule(k, r, kind, prm, p, ent_off, ent_cnt, spk, indptr, post, weight, proj_pre_ent, proj_row_off,
                       pp_syn0, pp_npre, pp_npost, pp_post_ent, pp_sg0, w_sign, xtr, ytr, r_x0, r_y0, r_interval)
    if _P_HISTORY:
        for a in range(pl_proj.size):
            p = pl_proj[a]
            if pp_Lh[p] > 1:
                _advance_history(k, pp_Lh[p], h_n, h_cur, h_end, pp_hn0[p], pp_h0[p], pp_npre[p])
    if _P_DENDRITIC:
        for a in range(pl_proj.size):
            p = pl_proj[a]
            if pp_Lh[p] > 1 and _has_dendritic_rule(p, r_proj, r_dend, r_kind):
                _advance_history(k, pp_Lh[p], h_n, h_cur, h_end, pp_hpn0[p], pp_hp0[p], pp_npost[p])
    # intrinsic plasticity (Hao form): the update of step k already decayed theta, so the
    # increment is decayed too and read against theta at the spike
    if _P_INTRINSIC:
        for q in range(ip_group.size):
            e = ip_ent[q]
            o = ent_off[e]
            for c in range(ent_cnt[e]):
                i = ip_start[q] + spk[o + c]
                if ip_group[q] == 0:
                    decay = l_prm[nk.LIF_PTHETA, i]
                    th = l_state[nk.LIF_THETA, i] / decay
                    l_state[nk.LIF_THETA, i] += hao_threshold_increment(th, ip_prm[q, 0], ip_prm[q, 1]) * decay
                else:
                    decay = c_prm[nk.COBA_PTHETA, i]
                    th = c_state[nk.COBA_THETA, i] / decay
                    c_state[nk.COBA_THETA, i] += hao_threshold_increment(th, ip_prm[q, 0], ip_prm[q, 1]) * decay
    # (7) astrocytes integrate the liquid-minus-input spike count, then decay (NALSM phase 2)
    if _P_ASTROCYTES:
        for a in range(as_val.size):
            diff = 0
            for q in range(as_liq_lo[a], as_liq_hi[a]):
                diff += ent_cnt[as_ent[q]]
            for q in range(as_liq_hi[a], as_ref_hi[a]):
                diff -= ent_cnt[as_ent[q]]
            as_val[a] += (as_w[a] * diff + as_b[a] - as_val[a]) * as_rate[a]
            as_val[a] *= as_decay[a]
            as_w[a] *= as_decay[a]
            as_b[a] *= as_decay[a]
    if _P_TRIPARTITE and tri_state.shape[0] > 0:
        ak.tripartite_step(k, tri_state, tri_prm, tri_armed, tri_acc, tri_every, tri_dt_s, tri_U0, tri_alpha, tri_nsyn,
                           stp_astro, stp_prm, tri_scratch)
    # (7) dopamine relaxes to its tonic level
    if _P_REWARDS:
        for m in range(md_val.size):
            md_val[m] = md_tonic[m] + (md_val[m] - md_tonic[m]) * md_P[m]


#: the general plasticity kernel (every code path)
plasticity_step = plasticity_kernel(PlasticityFeatures())
