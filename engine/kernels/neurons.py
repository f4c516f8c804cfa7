"""Numba neuron kernels: threshold/reset (steps 1-2 of §0.2) and propagation (steps 4-5).

Every model keeps its populations packed into one *group* (structure of arrays):

* ``state[row, i]``      continuous state (rows named by the ``*_ROW`` constants below)
* ``chan[c, i]``         receptor channel variable (current ``I`` or conductance ``g``)
* ``prm[row, i]``        per-neuron parameters / precomputed propagator coefficients
* ``ref[i]``             refractory counter in steps (LIF family)

Kernels are pure functions over these arrays (no Python objects), so the same code serves the serial
and the thread-parallel path (:func:`engine.kernels.network.run_chunk`) and can be mirrored by other
backends. The ``*_detect`` kernels emit spikes into a flat buffer; the ``*_update`` kernels work on a
neuron range ``[lo, hi)`` so that blocks can run in parallel (neurons are independent within a step,
hence the result does not depend on the number of threads).

Update kernels return ``-1`` when every updated value is finite, else ``8·i + code`` for the first
bad neuron ``i`` (``code`` indexes ``*_VAR_NAMES``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# --- LIF family (lif, alif): exact propagation -----------------------------------------------
LIF_V, LIF_THETA, LIF_W = 0, 1, 2
LIF_STATE_ROWS = 3
(LIF_EL, LIF_VRESET, LIF_VTH, LIF_P22, LIF_DRIVE, LIF_EXT, LIF_AVW, LIF_AWV, LIF_AWW, LIF_AW1,
 LIF_AWEXT, LIF_WREF_MUL, LIF_WREF_ADD, LIF_PTHETA, LIF_DTHETA, LIF_BW) = range(16)
LIF_PARAM_ROWS = 16
LIF_VAR_NAMES = ("V", "theta", "w")

# --- conductance LIF: exponential Euler ------------------------------------------------------
COBA_V, COBA_THETA = 0, 1
COBA_STATE_ROWS = 2
COBA_EL, COBA_VRESET, COBA_VTH, COBA_R, COBA_IE, COBA_DT_TAU, COBA_PTHETA, COBA_DTHETA = range(8)
COBA_PARAM_ROWS = 8
COBA_VAR_NAMES = ("V", "theta")

# --- Izhikevich ------------------------------------------------------------------------------
IZH_V, IZH_U = 0, 1
IZH_STATE_ROWS = 2
IZH_A, IZH_B, IZH_C, IZH_D, IZH_VPEAK, IZH_IE = range(6)
IZH_PARAM_ROWS = 6
IZH_SPLIT2003, IZH_EULER = 0, 1
IZH_VAR_NAMES = ("v", "u")

_OPTS = dict(cache=True, nogil=True)
#: Population size from which the update loop runs in parallel blocks (thread start-up costs a few
#: microseconds per step; below this a single core is faster).
PARALLEL_MIN_NEURONS = 20_000


# =============================================================================================
# threshold and reset (serial: appends to the spike buffer in neuron order -> deterministic)
# =============================================================================================


@njit(**_OPTS)
def lif_detect(state, ref, prm, nref, pop_start, pop_stop, pop_ent, adaptive, ent_off, ent_cnt, spk):
    """Steps (1)-(2) for the LIF family.

    Spike if ``ref == 0`` and ``V >= V_th + theta``; then ``V <- V_reset``, ``ref <- n_ref``,
    ``theta += delta_theta``, ``w += b_w``.
    """
    V = state[LIF_V]
    TH = state[LIF_THETA]
    W = state[LIF_W]
    for p in range(pop_start.size):
        e = pop_ent[p]
        off = ent_off[e]
        lo = pop_start[p]
        cnt = 0
        for i in range(lo, pop_stop[p]):
            if ref[i] == 0:
                th = prm[LIF_VTH, i]
                if adaptive:
                    th += TH[i]
                if V[i] >= th:
                    spk[off + cnt] = i - lo
                    cnt += 1
                    V[i] = prm[LIF_VRESET, i]
                    ref[i] = nref[i]
                    if adaptive:
                        TH[i] += prm[LIF_DTHETA, i]
                        W[i] += prm[LIF_BW, i]
        ent_cnt[e] = cnt


@njit(**_OPTS)
def coba_detect(state, ref, prm, nref, pop_start, pop_stop, pop_ent, adaptive, ent_off, ent_cnt, spk):
    """Steps (1)-(2) for conductance LIF (same rule as :func:`lif_detect`, no ``w``)."""
    V = state[COBA_V]
    TH = state[COBA_THETA]
    for p in range(pop_start.size):
        e = pop_ent[p]
        off = ent_off[e]
        lo = pop_start[p]
        cnt = 0
        for i in range(lo, pop_stop[p]):
            if ref[i] == 0:
                th = prm[COBA_VTH, i]
                if adaptive:
                    th += TH[i]
                if V[i] >= th:
                    spk[off + cnt] = i - lo
                    cnt += 1
                    V[i] = prm[COBA_VRESET, i]
                    ref[i] = nref[i]
                    if adaptive:
                        TH[i] += prm[COBA_DTHETA, i]
        ent_cnt[e] = cnt


@njit(**_OPTS)
def izh_detect(state, prm, pop_start, pop_stop, pop_ent, ent_off, ent_cnt, spk):
    """Steps (1)-(2) for Izhikevich: spike if ``v >= v_peak``; ``v <- c``, ``u <- u + d``."""
    v = state[IZH_V]
    u = state[IZH_U]
    for p in range(pop_start.size):
        e = pop_ent[p]
        off = ent_off[e]
        lo = pop_start[p]
        cnt = 0
        for i in range(lo, pop_stop[p]):
            if v[i] >= prm[IZH_VPEAK, i]:
                spk[off + cnt] = i - lo
                cnt += 1
                v[i] = prm[IZH_C, i]
                u[i] += prm[IZH_D, i]
        ent_cnt[e] = cnt


# =============================================================================================
# propagation over [lo, hi): consume ring slot, integrate one step
# =============================================================================================


@njit(**_OPTS)
def lif_update(lo, hi, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring_row, base,
               adaptive, coupled):
    """Steps (4)-(5) for the LIF family on neurons ``lo..hi-1``.

    Arrivals of the ring slot are added to the channel currents first (``I_k`` includes them), then::

        refractory:  V_{k+1} = V_reset, ref -= 1, w_{k+1} = wref_mul·w_k + wref_add
        otherwise:   V_{k+1} = E_L + P22 (V_k - E_L) + drive + ext·i_ext + avw·w_k + Σ P21_c I_c,k
                     w_{k+1} = awv (V_k - E_L) + aww w_k + aw1 + awext·i_ext + Σ awi_c I_c,k
        theta_{k+1} = P_theta·theta_k ;  I_c,k+1 = P11_c·I_c,k
    """
    V = state[LIF_V]
    TH = state[LIF_THETA]
    W = state[LIF_W]
    n = V.size
    C = chan.shape[0]
    bad = -1
    for i in range(lo, hi):
        for c in range(C):
            s = base + c * n + i
            chan[c, i] += ring_row[s]
            ring_row[s] = 0.0
        v = V[i]
        if ref[i] > 0:
            vn = prm[LIF_VRESET, i]
            ref[i] -= 1
            if adaptive:
                W[i] = W[i] * prm[LIF_WREF_MUL, i] + prm[LIF_WREF_ADD, i]
        else:
            el = prm[LIF_EL, i]
            vn = prm[LIF_P22, i] * (v - el) + prm[LIF_DRIVE, i]
            if has_iext:
                vn += prm[LIF_EXT, i] * iext[i]
            for c in range(C):
                vn += P21[c, i] * chan[c, i]
            if adaptive:
                w = W[i]
                vn += prm[LIF_AVW, i] * w
                if coupled:
                    wn = prm[LIF_AWV, i] * (v - el) + prm[LIF_AWW, i] * w + prm[LIF_AW1, i]
                    if has_iext:
                        wn += prm[LIF_AWEXT, i] * iext[i]
                    for c in range(C):
                        wn += AWI[c, i] * chan[c, i]
                    W[i] = wn
                else:
                    W[i] = prm[LIF_AWW, i] * w
            vn += el
        V[i] = vn
        if adaptive:
            TH[i] *= prm[LIF_PTHETA, i]
        for c in range(C):
            chan[c, i] *= P11[c, i]
        if bad < 0:
            if not math.isfinite(vn):
                bad = 8 * i + LIF_V
            elif adaptive and not math.isfinite(W[i]):
                bad = 8 * i + LIF_W
    return bad


@njit(**_OPTS)
def coba_update(lo, hi, state, chan, ref, prm, P11, EREV, iext, has_iext, ring_row, base, adaptive):
    """Steps (4)-(5) for conductance LIF (exponential Euler, conductances frozen over the step)::

        g_tot = 1 + Σ g_s ;  V_inf = (E_L + Σ g_s E_s + R (I_e + i_ext)) / g_tot
        V_{k+1} = V_inf + (V_k - V_inf)·exp(-dt·g_tot/tau_m)        (V_reset while refractory)
        g_s,k+1 = g_s,k·exp(-dt/tau_s)                                (arrivals of step k added first)
    """
    V = state[COBA_V]
    TH = state[COBA_THETA]
    n = V.size
    C = chan.shape[0]
    bad = -1
    for i in range(lo, hi):
        for c in range(C):
            s = base + c * n + i
            chan[c, i] += ring_row[s]
            ring_row[s] = 0.0
        if ref[i] > 0:
            vn = prm[COBA_VRESET, i]
            ref[i] -= 1
        else:
            current = prm[COBA_IE, i]
            if has_iext:
                current += iext[i]
            g_tot = 1.0
            num = prm[COBA_EL, i] + prm[COBA_R, i] * current
            for c in range(C):
                g = chan[c, i]
                g_tot += g
                num += g * EREV[c, i]
            v_inf = num / g_tot
            vn = v_inf + (V[i] - v_inf) * math.exp(-prm[COBA_DT_TAU, i] * g_tot)
        V[i] = vn
        if adaptive:
            TH[i] *= prm[COBA_PTHETA, i]
        for c in range(C):
            chan[c, i] *= P11[c, i]
        if bad < 0 and not math.isfinite(vn):
            bad = 8 * i + COBA_V
    return bad


@njit(**_OPTS)
def izh_update(lo, hi, state, chan, prm, scheme, P11, CIN, iext, has_iext, ring_row, base, dt):
    """Steps (4)-(5) for Izhikevich (§1.4).

    ``I = I_e + i_ext + Σ_c cin_c·I_c`` (``cin = 1/dt`` for delta channels: a one-step pulse giving
    a ``w`` mV kick, exactly ``net.m`` at dt = 1 ms; 1 for exponential currents), then

    * ``split2003``: ``v += dt/2·f(v,u,I)`` twice (u frozen), ``u += dt·a(b v - u)`` with the new v
    * ``euler``:     ``v += dt·f(v,u,I)``, ``u += dt·a(b v - u)`` both from the old state

    with ``f = (0.04 v + 5) v + 140 - u + I``. The 1-ms split scheme is so sensitive to rounding that
    the operation order matters for spike counts over 1 s: this Horner form is the one that reproduces
    every entry of the MODELS.md §1.4 [ref-run] table (the expanded ``0.04 v² + 5 v`` misses 15 of 21).
    """
    v = state[IZH_V]
    u = state[IZH_U]
    n = v.size
    C = chan.shape[0]
    half = 0.5 * dt
    bad = -1
    for i in range(lo, hi):
        current = prm[IZH_IE, i]
        if has_iext:
            current += iext[i]
        for c in range(C):
            s = base + c * n + i
            x = chan[c, i] + ring_row[s]
            ring_row[s] = 0.0
            current += CIN[c, i] * x
            chan[c, i] = x * P11[c, i]
        vi = v[i]
        ui = u[i]
        a = prm[IZH_A, i]
        b = prm[IZH_B, i]
        if scheme[i] == IZH_SPLIT2003:
            vi = vi + half * ((0.04 * vi + 5.0) * vi + 140.0 - ui + current)
            vi = vi + half * ((0.04 * vi + 5.0) * vi + 140.0 - ui + current)
            ui = ui + dt * a * (b * vi - ui)
        else:
            dv = (0.04 * vi + 5.0) * vi + 140.0 - ui + current
            du = a * (b * vi - ui)
            vi = vi + dt * dv
            ui = ui + dt * du
        v[i] = vi
        u[i] = ui
        if bad < 0:
            if not math.isfinite(vi):
                bad = 8 * i + IZH_V
            elif not math.isfinite(ui):
                bad = 8 * i + IZH_U
    return bad


# =============================================================================================
# parallel drivers: split [0, n) into blocks, one per chunk of work
# =============================================================================================


@njit(cache=True, nogil=True, parallel=True)
def lif_update_parallel(nblocks, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring_row, base,
                        adaptive, coupled):
    n = state.shape[1]
    bads = np.empty(nblocks, np.int64)
    for b in prange(nblocks):
        bads[b] = lif_update(b * n // nblocks, (b + 1) * n // nblocks, state, chan, ref, prm, P11, P21, AWI,
                             iext, has_iext, ring_row, base, adaptive, coupled)
    return _first_bad(bads)


@njit(cache=True, nogil=True, parallel=True)
def coba_update_parallel(nblocks, state, chan, ref, prm, P11, EREV, iext, has_iext, ring_row, base, adaptive):
    n = state.shape[1]
    bads = np.empty(nblocks, np.int64)
    for b in prange(nblocks):
        bads[b] = coba_update(b * n // nblocks, (b + 1) * n // nblocks, state, chan, ref, prm, P11, EREV,
                              iext, has_iext, ring_row, base, adaptive)
    return _first_bad(bads)


@njit(cache=True, nogil=True, parallel=True)
def izh_update_parallel(nblocks, state, chan, prm, scheme, P11, CIN, iext, has_iext, ring_row, base, dt):
    n = state.shape[1]
    bads = np.empty(nblocks, np.int64)
    for b in prange(nblocks):
        bads[b] = izh_update(b * n // nblocks, (b + 1) * n // nblocks, state, chan, prm, scheme, P11, CIN,
                             iext, has_iext, ring_row, base, dt)
    return _first_bad(bads)


@njit(**_OPTS)
def _first_bad(bads):
    for b in range(bads.size):  # blocks are in neuron order: the first flagged block has the first bad neuron
        if bads[b] >= 0:
            return bads[b]
    return -1
