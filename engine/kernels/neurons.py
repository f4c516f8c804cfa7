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

from engine.kernels import LEAF_OPTS

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
#: Group size from which the update loop runs in parallel blocks by default. Waking the worker
#: threads costs 100-200 µs per step on our 2-core VMs, while the vectorised serial update needs
#: 1.5-3.5 ns per neuron: measured, parallel blocks lose up to 256k neurons (CUBA: 9.7 vs 8.7 s per
#: simulated second), so only very large groups go parallel unless asked (``parallel=True``).
PARALLEL_MIN_NEURONS = 1_000_000


# =============================================================================================
# threshold and reset (serial: appends to the spike buffer in neuron order -> deterministic)
# =============================================================================================


@njit(**LEAF_OPTS)
def lif_detect(state, ref, prm, nref, pop_start, pop_stop, pop_ent, adaptive, ent_off, ent_cnt, spk, pend, pend_cnt):
    """Steps (1)-(2) for the LIF family.

    Spike if ``ref == 0`` and ``V >= V_th + theta``; then ``V <- V_reset``, ``ref <- n_ref``,
    ``theta += delta_theta``, ``w += b_w``.

    ``pend_cnt[p] >= 0`` means the previous update already found population ``p``'s candidates
    (``pend[pop_start[p]:][:pend_cnt[p]]``, ascending, with the same test on the same values), so the
    scan is skipped; -1 forces the scan (first step of a chunk, paths that do not pre-detect).
    """
    for p in range(pop_start.size):
        e = pop_ent[p]
        lo = pop_start[p]
        o = ent_off[e]
        if pend_cnt[p] >= 0:
            cnt = pend_cnt[p]
            for q in range(cnt):
                spk[o + q] = pend[lo + q]
            pend_cnt[p] = -1
        else:
            cnt = _lif_scan(state, ref, prm, lo, pop_stop[p], adaptive, spk, o)
        # no slices here: every view costs atomic reference counting, a fixed cost per step
        for q in range(cnt):
            i = np.uint64(lo + spk[o + q])
            state[LIF_V, i] = prm[LIF_VRESET, i]
            ref[i] = nref[i]
            if adaptive:
                state[LIF_THETA, i] += prm[LIF_DTHETA, i]
                state[LIF_W, i] += prm[LIF_BW, i]
        ent_cnt[e] = cnt


@njit(**LEAF_OPTS)
def _lif_scan(state, ref, prm, lo, hi, adaptive, spk, o):
    """Threshold test over neurons ``lo..hi-1``; crossings (local indices, ascending) go to ``spk[o:]``."""
    out = spk[o:o + hi - lo]
    # zero-based views: numba drops negative-index handling, the scan runs at memory speed
    V = state[LIF_V, lo:hi]
    TH = state[LIF_THETA, lo:hi]
    rf = ref[lo:hi]
    VTH = prm[LIF_VTH, lo:hi]
    cnt = 0
    for j in range(hi - lo):
        th = VTH[j]
        if adaptive:
            th += TH[j]
        if V[j] >= th and rf[j] == 0:
            out[cnt] = j
            cnt += 1
    return cnt


@njit(**LEAF_OPTS)
def coba_detect(state, ref, prm, nref, pop_start, pop_stop, pop_ent, adaptive, ent_off, ent_cnt, spk):
    """Steps (1)-(2) for conductance LIF (same rule as :func:`lif_detect`, no ``w``)."""
    for p in range(pop_start.size):
        e = pop_ent[p]
        lo = pop_start[p]
        hi = pop_stop[p]
        out = spk[ent_off[e]:ent_off[e] + hi - lo]
        V = state[COBA_V, lo:hi]
        TH = state[COBA_THETA, lo:hi]
        rf = ref[lo:hi]
        VTH = prm[COBA_VTH, lo:hi]
        cnt = 0
        for j in range(hi - lo):
            th = VTH[j]
            if adaptive:
                th += TH[j]
            if V[j] >= th and rf[j] == 0:
                out[cnt] = j
                cnt += 1
        for q in range(cnt):
            j = out[q]
            i = lo + j
            V[j] = prm[COBA_VRESET, i]
            rf[j] = nref[i]
            if adaptive:
                TH[j] += prm[COBA_DTHETA, i]
        ent_cnt[e] = cnt


@njit(**LEAF_OPTS)
def izh_detect(state, prm, pop_start, pop_stop, pop_ent, ent_off, ent_cnt, spk):
    """Steps (1)-(2) for Izhikevich: spike if ``v >= v_peak``; ``v <- c``, ``u <- u + d``."""
    for p in range(pop_start.size):
        e = pop_ent[p]
        lo = pop_start[p]
        hi = pop_stop[p]
        out = spk[ent_off[e]:ent_off[e] + hi - lo]
        v = state[IZH_V, lo:hi]
        u = state[IZH_U, lo:hi]
        VP = prm[IZH_VPEAK, lo:hi]
        cnt = 0
        for j in range(hi - lo):
            if v[j] >= VP[j]:
                out[cnt] = j
                cnt += 1
        for q in range(cnt):
            j = out[q]
            v[j] = prm[IZH_C, lo + j]
            u[j] += prm[IZH_D, lo + j]
        ent_cnt[e] = cnt


# =============================================================================================
# propagation over [lo, hi): consume ring slot, integrate one step
#
# Written as passes over contiguous slices indexed from 0 (numba then knows indices are
# non-negative and drops its negative-index wraparound; with the refractory clamp as a select
# instead of a branch LLVM vectorises the loops: ~1 ns per neuron and step instead of ~10).
# =============================================================================================

_BIG32 = np.float32(3.0e38)


@njit(**_OPTS)
def _channel_pass(lo, hi, chan, ring_row, base, A, acc, P11):
    """Consume the ring slot into every channel and accumulate its effect on the neurons.

    For each channel ``c``: ``x = chan_c + arrivals`` (arrivals zeroed in the ring),
    ``acc = Σ_c A_c·x``, then ``chan_c = P11_c·x`` (the decay to the next grid point).
    """
    n = chan.shape[1]
    C = chan.shape[0]
    m = hi - lo
    if C == 0:
        acc[:] = 0.0
    for c in range(C):
        x_c = chan[c, lo:hi]
        arrivals = ring_row[base + c * n + lo:base + c * n + hi]
        a_c = A[c, lo:hi]
        p_c = P11[c, lo:hi]
        if c == 0:
            for j in range(m):
                x = x_c[j] + arrivals[j]
                arrivals[j] = 0.0
                acc[j] = a_c[j] * x
                x_c[j] = x * p_c[j]
        else:
            for j in range(m):
                x = x_c[j] + arrivals[j]
                arrivals[j] = 0.0
                acc[j] += a_c[j] * x
                x_c[j] = x * p_c[j]


@njit(**_OPTS)
def _conductance_pass(lo, hi, chan, ring_row, base, EREV, g_sum, g_e, P11):
    """COBA variant: ``g_sum = Σ_c g_c`` and ``g_e = Σ_c g_c·E_c`` (arrivals included), then decay."""
    n = chan.shape[1]
    C = chan.shape[0]
    m = hi - lo
    if C == 0:
        g_sum[:] = 0.0
        g_e[:] = 0.0
    for c in range(C):
        x_c = chan[c, lo:hi]
        arrivals = ring_row[base + c * n + lo:base + c * n + hi]
        e_c = EREV[c, lo:hi]
        p_c = P11[c, lo:hi]
        if c == 0:
            for j in range(m):
                x = x_c[j] + arrivals[j]
                arrivals[j] = 0.0
                g_sum[j] = x
                g_e[j] = x * e_c[j]
                x_c[j] = x * p_c[j]
        else:
            for j in range(m):
                x = x_c[j] + arrivals[j]
                arrivals[j] = 0.0
                g_sum[j] += x
                g_e[j] += x * e_c[j]
                x_c[j] = x * p_c[j]


@njit(**_OPTS)
def _channel_pass2(lo, hi, chan, ring_row, base, A, acc, B, acc_b, P11):
    """As :func:`_channel_pass` with a second accumulator ``acc = Σ A_c x_c`` and ``acc_b = Σ B_c x_c``."""
    n = chan.shape[1]
    C = chan.shape[0]
    m = hi - lo
    if C == 0:
        acc[:] = 0.0
        acc_b[:] = 0.0
    for c in range(C):
        x_c = chan[c, lo:hi]
        arrivals = ring_row[base + c * n + lo:base + c * n + hi]
        a_c = A[c, lo:hi]
        b_c = B[c, lo:hi]
        p_c = P11[c, lo:hi]
        if c == 0:
            for j in range(m):
                x = x_c[j] + arrivals[j]
                arrivals[j] = 0.0
                acc[j] = a_c[j] * x
                acc_b[j] = b_c[j] * x
                x_c[j] = x * p_c[j]
        else:
            for j in range(m):
                x = x_c[j] + arrivals[j]
                arrivals[j] = 0.0
                acc[j] += a_c[j] * x
                acc_b[j] += b_c[j] * x
                x_c[j] = x * p_c[j]


@njit(**_OPTS)
def _first_nonfinite(values, lo):
    for j in range(values.size):
        if not math.isfinite(values[j]):
            return lo + j
    return -1


@njit(**LEAF_OPTS)
def lif_update(lo, hi, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring_row, base,
               adaptive, coupled, scratch, pop_start, pop_stop, pop_uniform, pend, pend_cnt):
    """Steps (4)-(5) for the LIF family on neurons ``lo..hi-1``, population segment by segment.

    Segments of populations whose parameters are all equal (``pop_uniform``) and that have one or
    two channels and no adaptation take :func:`_lif_uniform`: the same arithmetic in the same order
    (bit-identical results) with the parameters held in registers, which halves the memory traffic
    per neuron. Such a segment that covers its whole population also pre-detects the next step's
    threshold crossings (``pend``, ``pend_cnt``: see :func:`lif_detect`). Everything else takes
    :func:`_lif_general`.
    """
    bad = -1
    C = chan.shape[0]
    for p in range(pop_start.size):
        a = max(lo, pop_start[p])
        b = min(hi, pop_stop[p])
        if a >= b:
            continue
        if pop_uniform[p] and not adaptive and (C == 1 or C == 2):
            whole = a == pop_start[p] and b == pop_stop[p]
            r, npend = _lif_uniform(a, b, state, chan, ref, prm, P11, P21, iext, has_iext, ring_row, base,
                                    pend, whole)
            if whole:
                pend_cnt[p] = npend
        else:
            r = _lif_general(a, b, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring_row, base,
                             adaptive, coupled, scratch)
        if r >= 0 and bad < 0:
            bad = r
    return bad


#: Neurons per block of the fused update: a block whose vectorised pass counts threshold crossings
#: is scanned again (scalar) to list them; few blocks have one (CUBA 64k: ~36 spikes per step).
UPDATE_BLOCK = 256


@njit(**LEAF_OPTS)
def _lif_uniform(lo, hi, state, chan, ref, prm, P11, P21, iext, has_iext, ring_row, base, pend, detect):
    """Fused single pass for a homogeneous, non-adaptive LIF segment with 1 or 2 channels.

    Returns ``(bad, npend)``. With ``detect`` the crossings of the next step's threshold test
    (``V >= V_th`` and ``ref == 0`` after this update) are listed in ``pend[lo:lo + npend]``
    (segment-local, ascending); else ``npend = -1``.
    """
    n = chan.shape[1]
    C = chan.shape[0]
    el = prm[LIF_EL, lo]
    vr = prm[LIF_VRESET, lo]
    vth = prm[LIF_VTH, lo]
    p22 = prm[LIF_P22, lo]
    dr = prm[LIF_DRIVE, lo]
    ext = prm[LIF_EXT, lo]
    p11_0 = P11[0, lo]
    p21_0 = P21[0, lo]
    p11_1 = P11[C - 1, lo]
    p21_1 = P21[C - 1, lo]
    o0 = np.uint64(base)  # unsigned: uint64 + uint64 stays an integer index in numba
    o1 = np.uint64(base + (C - 1) * n)
    nbad = 0
    npend = 0
    for b0 in range(lo, hi, UPDATE_BLOCK):
        b1 = min(b0 + UPDATE_BLOCK, hi)
        if C == 2:
            hits, bad = _lif_uniform_block2(b0, b1, state, ref, chan, ring_row, o0, o1, iext, has_iext, el, vr, vth,
                                            p22, dr, ext, p11_0, p21_0, p11_1, p21_1)
        else:
            hits, bad = _lif_uniform_block1(b0, b1, state, ref, chan, ring_row, o0, iext, has_iext, el, vr, vth,
                                            p22, dr, ext, p11_0, p21_0)
        nbad += bad
        if detect and hits > 0:
            for j in range(b0, b1):
                u = np.uint64(j)
                if state[LIF_V, u] >= vth and ref[u] == 0:
                    pend[lo + npend] = j - lo
                    npend += 1
    if not detect:
        npend = -1
    if nbad > 0:
        return 8 * _first_nonfinite(state[LIF_V, lo:hi], lo) + LIF_V, npend
    return -1, npend


# The block kernels index with unsigned integers (no negative-index wraparound, no per-block slice
# objects) and count in int32 (np.int32 on every step: numba would widen to int64, which halves the
# vector width): the loops vectorise to 8 float32 lanes with AVX2/AVX-512.
_I1 = np.int32(1)
_I0 = np.int32(0)


@njit(cache=True, nogil=True, inline="always")
def _lif_uniform_block2(b0, b1, state, ref, chan, ring_row, o0, o1, iext, has_iext, el, vr, vth, p22, dr, ext, p11_0,
                        p21_0, p11_1, p21_1):
    hits = _I0
    bad = _I0
    for jj in range(b0, b1):
        j = np.uint64(jj)
        x0 = chan[0, j] + ring_row[o0 + j]
        ring_row[o0 + j] = 0.0
        x1 = chan[1, j] + ring_row[o1 + j]
        ring_row[o1 + j] = 0.0
        syn = p21_0 * x0
        syn += p21_1 * x1
        free = p22 * (state[LIF_V, j] - el) + dr + syn
        if has_iext:
            free += ext * iext[j]
        free += el
        chan[0, j] = x0 * p11_0
        chan[1, j] = x1 * p11_1
        r = ref[j]
        vn = free if r == _I0 else vr
        rn = np.int32(r - _I1) if r > _I0 else _I0
        ref[j] = rn
        state[LIF_V, j] = vn
        hits = np.int32(hits + (_I1 if (vn >= vth) & (rn == _I0) else _I0))
        bad = np.int32(bad + (_I0 if abs(vn) <= _BIG32 else _I1))
    return hits, bad


@njit(cache=True, nogil=True, inline="always")
def _lif_uniform_block1(b0, b1, state, ref, chan, ring_row, o0, iext, has_iext, el, vr, vth, p22, dr, ext, p11_0,
                        p21_0):
    hits = _I0
    bad = _I0
    for jj in range(b0, b1):
        j = np.uint64(jj)
        x0 = chan[0, j] + ring_row[o0 + j]
        ring_row[o0 + j] = 0.0
        syn = p21_0 * x0
        free = p22 * (state[LIF_V, j] - el) + dr + syn
        if has_iext:
            free += ext * iext[j]
        free += el
        chan[0, j] = x0 * p11_0
        r = ref[j]
        vn = free if r == _I0 else vr
        rn = np.int32(r - _I1) if r > _I0 else _I0
        ref[j] = rn
        state[LIF_V, j] = vn
        hits = np.int32(hits + (_I1 if (vn >= vth) & (rn == _I0) else _I0))
        bad = np.int32(bad + (_I0 if abs(vn) <= _BIG32 else _I1))
    return hits, bad


@njit(**LEAF_OPTS)
def _lif_general(lo, hi, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring_row, base,
                 adaptive, coupled, scratch):
    """Multi-pass LIF update of neurons ``lo..hi-1`` with per-neuron parameters.

    Arrivals of the ring slot are added to the channel currents first (``I_k`` includes them), then::

        refractory:  V_{k+1} = V_reset, ref -= 1, w_{k+1} = wref_mul·w_k + wref_add
        otherwise:   V_{k+1} = E_L + P22 (V_k - E_L) + drive + ext·i_ext + avw·w_k + Σ P21_c I_c,k
                     w_{k+1} = awv (V_k - E_L) + aww w_k + aw1 + awext·i_ext + Σ awi_c I_c,k
        theta_{k+1} = P_theta·theta_k ;  I_c,k+1 = P11_c·I_c,k

    ``scratch`` is a (2, n) work array. Returns -1 or ``8·i + var`` of the first non-finite value.
    """
    m = hi - lo
    syn = scratch[0, lo:hi]
    syn_w = scratch[1, lo:hi]
    if coupled:
        _channel_pass2(lo, hi, chan, ring_row, base, P21, syn, AWI, syn_w, P11)
    else:
        _channel_pass(lo, hi, chan, ring_row, base, P21, syn, P11)
    V = state[LIF_V, lo:hi]
    rf = ref[lo:hi]
    EL = prm[LIF_EL, lo:hi]
    VR = prm[LIF_VRESET, lo:hi]
    P22 = prm[LIF_P22, lo:hi]
    DR = prm[LIF_DRIVE, lo:hi]
    EXT = prm[LIF_EXT, lo:hi]
    ie = iext[lo:hi]
    nbad = 0
    if not adaptive:
        for j in range(m):
            el = EL[j]
            free = P22[j] * (V[j] - el) + DR[j] + syn[j]
            if has_iext:
                free += EXT[j] * ie[j]
            free += el
            r = rf[j]
            vn = free if r == 0 else VR[j]
            rf[j] = r - 1 if r > 0 else 0
            V[j] = vn
            nbad += 0 if abs(vn) <= _BIG32 else 1
        if nbad > 0:
            bad = _first_nonfinite(V, lo)
            return 8 * bad + LIF_V
        return -1
    W = state[LIF_W, lo:hi]
    TH = state[LIF_THETA, lo:hi]
    AVW = prm[LIF_AVW, lo:hi]
    AWV = prm[LIF_AWV, lo:hi]
    AWW = prm[LIF_AWW, lo:hi]
    AW1 = prm[LIF_AW1, lo:hi]
    AWEXT = prm[LIF_AWEXT, lo:hi]
    WM = prm[LIF_WREF_MUL, lo:hi]
    WA = prm[LIF_WREF_ADD, lo:hi]
    PT = prm[LIF_PTHETA, lo:hi]
    for j in range(m):
        el = EL[j]
        v = V[j]
        w = W[j]
        free = P22[j] * (v - el) + DR[j] + syn[j] + AVW[j] * w
        if coupled:
            w_free = AWV[j] * (v - el) + AWW[j] * w + AW1[j] + syn_w[j]
        else:
            w_free = AWW[j] * w
        if has_iext:
            free += EXT[j] * ie[j]
            w_free += AWEXT[j] * ie[j]
        free += el
        r = rf[j]
        vn = free if r == 0 else VR[j]
        wn = w_free if r == 0 else w * WM[j] + WA[j]
        rf[j] = r - 1 if r > 0 else 0
        V[j] = vn
        W[j] = wn
        TH[j] *= PT[j]
        nbad += 0 if (abs(vn) <= _BIG32 and abs(wn) <= _BIG32) else 1
    if nbad > 0:
        bad = _first_nonfinite(V, lo)
        if bad >= 0:
            return 8 * bad + LIF_V
        return 8 * _first_nonfinite(W, lo) + LIF_W
    return -1


@njit(**LEAF_OPTS)
def coba_update(lo, hi, state, chan, ref, prm, P11, EREV, iext, has_iext, ring_row, base, adaptive, scratch):
    """Steps (4)-(5) for conductance LIF (exponential Euler, conductances frozen over the step)::

        g_tot = 1 + Σ g_s ;  V_inf = (E_L + Σ g_s E_s + R (I_e + i_ext)) / g_tot
        V_{k+1} = V_inf + (V_k - V_inf)·exp(-dt·g_tot/tau_m)        (V_reset while refractory)
        g_s,k+1 = g_s,k·exp(-dt/tau_s)                                (arrivals of step k added first)
    """
    m = hi - lo
    g_sum = scratch[0, lo:hi]
    g_e = scratch[1, lo:hi]
    _conductance_pass(lo, hi, chan, ring_row, base, EREV, g_sum, g_e, P11)
    V = state[COBA_V, lo:hi]
    TH = state[COBA_THETA, lo:hi]
    rf = ref[lo:hi]
    EL = prm[COBA_EL, lo:hi]
    VR = prm[COBA_VRESET, lo:hi]
    R = prm[COBA_R, lo:hi]
    IE = prm[COBA_IE, lo:hi]
    DTT = prm[COBA_DT_TAU, lo:hi]
    PT = prm[COBA_PTHETA, lo:hi]
    ie = iext[lo:hi]
    nbad = 0
    for j in range(m):
        current = IE[j]
        if has_iext:
            current += ie[j]
        g_tot = 1.0 + g_sum[j]
        v_inf = (EL[j] + R[j] * current + g_e[j]) / g_tot
        free = v_inf + (V[j] - v_inf) * math.exp(-DTT[j] * g_tot)
        r = rf[j]
        vn = free if r == 0 else VR[j]
        rf[j] = r - 1 if r > 0 else 0
        V[j] = vn
        if adaptive:
            TH[j] *= PT[j]
        nbad += 0 if abs(vn) <= _BIG32 else 1
    if nbad > 0:
        return 8 * _first_nonfinite(V, lo) + COBA_V
    return -1


@njit(**LEAF_OPTS)
def izh_update(lo, hi, state, chan, prm, scheme, P11, CIN, iext, has_iext, ring_row, base, dt, scratch):
    """Steps (4)-(5) for Izhikevich (§1.4).

    ``I = I_e + i_ext + Σ_c cin_c·I_c`` (``cin = 1/dt`` for delta channels: a one-step pulse giving
    a ``w`` mV kick, exactly ``net.m`` at dt = 1 ms; 1 for exponential currents), then

    * ``split2003``: ``v += dt/2·f(v,u,I)`` twice (u frozen), ``u += dt·a(b v - u)`` with the new v
    * ``euler``:     ``v += dt·f(v,u,I)``, ``u += dt·a(b v - u)`` both from the old state

    with ``f = (0.04 v + 5) v + 140 - u + I``. The 1-ms split scheme is so sensitive to rounding that
    the operation order matters for spike counts over 1 s: this Horner form is the one that reproduces
    every entry of the MODELS.md §1.4 [ref-run] table (the expanded ``0.04 v² + 5 v`` misses 15 of 21).
    """
    m = hi - lo
    syn = scratch[0, lo:hi]
    _channel_pass(lo, hi, chan, ring_row, base, CIN, syn, P11)
    v = state[IZH_V, lo:hi]
    u = state[IZH_U, lo:hi]
    A = prm[IZH_A, lo:hi]
    B = prm[IZH_B, lo:hi]
    IE = prm[IZH_IE, lo:hi]
    sch = scheme[lo:hi]
    ie = iext[lo:hi]
    half = 0.5 * dt
    nbad = 0
    for j in range(m):
        current = IE[j]
        if has_iext:
            current += ie[j]
        current += syn[j]
        vi = v[j]
        ui = u[j]
        a = A[j]
        b = B[j]
        if sch[j] == IZH_SPLIT2003:
            vi = vi + half * ((0.04 * vi + 5.0) * vi + 140.0 - ui + current)
            vi = vi + half * ((0.04 * vi + 5.0) * vi + 140.0 - ui + current)
            ui = ui + dt * a * (b * vi - ui)
        else:
            dv = (0.04 * vi + 5.0) * vi + 140.0 - ui + current
            du = a * (b * vi - ui)
            vi = vi + dt * dv
            ui = ui + dt * du
        v[j] = vi
        u[j] = ui
        nbad += 0 if (abs(vi) <= _BIG32 and abs(ui) <= _BIG32) else 1
    if nbad > 0:
        bad = _first_nonfinite(v, lo)
        if bad >= 0:
            return 8 * bad + IZH_V
        return 8 * _first_nonfinite(u, lo) + IZH_U
    return -1


# =============================================================================================
# parallel drivers: split [0, n) into blocks; neurons are independent within a step
# =============================================================================================


@njit(cache=True, nogil=True, parallel=True)
def lif_update_parallel(nblocks, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring_row, base,
                        adaptive, coupled, scratch, pop_start, pop_stop, pop_uniform, pend, pend_cnt):
    n = state.shape[1]
    bads = np.empty(nblocks, np.int64)
    for b in prange(nblocks):
        bads[b] = lif_update(b * n // nblocks, (b + 1) * n // nblocks, state, chan, ref, prm, P11, P21, AWI,
                             iext, has_iext, ring_row, base, adaptive, coupled, scratch, pop_start, pop_stop,
                             pop_uniform, pend, pend_cnt)
    return _first_bad(bads)


@njit(cache=True, nogil=True, parallel=True)
def coba_update_parallel(nblocks, state, chan, ref, prm, P11, EREV, iext, has_iext, ring_row, base, adaptive, scratch):
    n = state.shape[1]
    bads = np.empty(nblocks, np.int64)
    for b in prange(nblocks):
        bads[b] = coba_update(b * n // nblocks, (b + 1) * n // nblocks, state, chan, ref, prm, P11, EREV,
                              iext, has_iext, ring_row, base, adaptive, scratch)
    return _first_bad(bads)


@njit(cache=True, nogil=True, parallel=True)
def izh_update_parallel(nblocks, state, chan, prm, scheme, P11, CIN, iext, has_iext, ring_row, base, dt, scratch):
    n = state.shape[1]
    bads = np.empty(nblocks, np.int64)
    for b in prange(nblocks):
        bads[b] = izh_update(b * n // nblocks, (b + 1) * n // nblocks, state, chan, prm, scheme, P11, CIN,
                             iext, has_iext, ring_row, base, dt, scratch)
    return _first_bad(bads)


@njit(**_OPTS)
def _first_bad(bads):
    for b in range(bads.size):  # blocks are in neuron order: the first flagged block has the first bad neuron
        if bads[b] >= 0:
            return bads[b]
    return -1
