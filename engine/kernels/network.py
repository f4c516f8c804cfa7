"""Numba network kernels: spike sources, ring-buffer propagation, monitors and the fused step loop.

Everything a simulation step needs runs inside :func:`run_chunk`, so a chunk of thousands of steps
costs one Python call. Spike emitters (populations and spike sources) are *entities* with a global
id range ``ent_off[e] .. ent_off[e] + size``; the spikes of the current step live in
``spk[ent_off[e] : ent_off[e] + ent_cnt[e]]`` as local indices.

Ring buffer (MODELS.md §3.1): ``ring[L, S]`` with one column per (population, receptor, neuron)
input slot; a spike emitted in step ``k`` through a synapse of delay ``d`` is added to row
``(k + d - 1) mod L``; row ``k mod L`` is consumed (and zeroed) by the neuron update of step ``k``.
Propagation is serial and touches only the CSR rows of neurons that spiked, in emission order,
so float sums are accumulated in a fixed order and runs are bit-for-bit reproducible.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from engine.kernels import LEAF_OPTS, specialise
from engine.kernels import neurons as nk
from engine.kernels import plasticity as pk
from engine.kernels.astrocytes import TRI_GS, release_probability
from engine.kernels.rng import normal, uniform

_OPTS = dict(cache=True, nogil=True)

# current-source waveforms (order of engine.plan.CURRENT_WAVEFORMS)
WAVE_DC, WAVE_STEP, WAVE_SINE, WAVE_NOISE = 0, 1, 2, 3
# group codes (state probes, instability reports)
GROUP_LIF, GROUP_COBA, GROUP_IZH = 0, 1, 2
# probe kinds: a state row or a channel row of a group
PROBE_STATE, PROBE_CHAN = 0, 1
#: probe "groups" beyond the neuron groups: a NALSM astrocyte's A (index = astrocyte), a tripartite
#: astrocyte's state row (index = astrocyte, row = TRI_* or PROBE_TRI_RELEASE for its U_0)
PROBE_NALSM, PROBE_TRIPARTITE = 3, 4
PROBE_TRI_RELEASE = 8


@njit(**LEAF_OPTS)
def poisson_step(k, pois_ent, pois_lo, pois_hi, pois_p, pois_homog, pois_rng, pois_start, pois_stop, ent_off,
                 ent_cnt, spk):
    """Bernoulli spikes (p = rate·dt) for every Poisson source, one seeded stream per source.

    Homogeneous sources skip between spikes with geometric gaps (``n·p + 1`` draws per step instead
    of ``n``); heterogeneous ones draw one uniform per neuron. A source is active for
    ``start <= k < stop`` (``stop = 0``: no end); no numbers are drawn while it is off.
    """
    for s in range(pois_ent.size):
        e = pois_ent[s]
        off = ent_off[e]
        lo = pois_lo[s]
        n = pois_hi[s] - lo
        rng = pois_rng[s]
        cnt = 0
        if k < pois_start[s] or (pois_stop[s] > 0 and k >= pois_stop[s]):
            ent_cnt[e] = 0
            continue
        if pois_homog[s]:
            p = pois_p[lo] if n > 0 else 0.0
            if p >= 1.0:
                for j in range(n):
                    spk[off + cnt] = j
                    cnt += 1
            elif p > 0.0:
                log_q = math.log1p(-p)
                j = -1
                while True:
                    # gap ~ Geometric(p): number of failures before the next success
                    j += 1 + int(math.floor(math.log(1.0 - uniform(rng)) / log_q))
                    if j >= n:
                        break
                    spk[off + cnt] = j
                    cnt += 1
        else:
            for j in range(n):
                if uniform(rng) < pois_p[lo + j]:
                    spk[off + cnt] = j
                    cnt += 1
        ent_cnt[e] = cnt


@njit(**LEAF_OPTS)
def spike_train_step(k, st_ent, st_lo, st_hi, st_pos, st_steps, st_idx, ent_off, ent_cnt, spk):
    """Emit the precomputed spikes of step ``k`` (arrays sorted by step, duplicates removed)."""
    for s in range(st_ent.size):
        e = st_ent[s]
        off = ent_off[e]
        pos = st_pos[s]
        hi = st_hi[s]
        while pos < hi and st_steps[pos] < k:  # after a restore at a later step
            pos += 1
        cnt = 0
        while pos < hi and st_steps[pos] == k:
            spk[off + cnt] = st_idx[pos]
            cnt += 1
            pos += 1
        st_pos[s] = pos
        ent_cnt[e] = cnt


def _prefetch_name(i8p) -> str:
    # llvm.prefetch is overloaded on the pointer type: "p0" with opaque pointers (llvmlite >= 0.44),
    # "p0i8" with typed i8* pointers (older llvmlite)
    return "llvm.prefetch.p0" if str(i8p) == "ptr" else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to fetch the cache line of ``arr[idx]`` (read, keep in all levels); no effect on results."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _prefetch_name(i8p))
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: Rows ahead whose synapse data propagation prefetches (hides the cache misses of row starts: the
#: rows of the spiking neurons are scattered over the whole connectivity).
PREFETCH_ROWS = 4


@njit(cache=True, nogil=True, inline="always")
def _prefetch_row(indptr, r, post, weight, delay, per_weight, per_delay):
    for s in range(indptr[r], indptr[r + 1], 16):  # 16 int32 per 64-byte line
        _prefetch(post, s)
        if per_weight:
            _prefetch(weight, s)
    if per_delay:
        for s in range(indptr[r], indptr[r + 1], 64):
            _prefetch(delay, s)


@njit(**LEAF_OPTS)
def propagate(kk, ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, proj_base,
              proj_delay, proj_wuni, proj_stp, stp_off, stp_r):
    """Step (3): ``ring[(k + d - 1) mod L, target] += w`` for the outgoing synapses of every spike.

    Projections whose synapses all have the same delay (``proj_delay[p] > 0``) add into one ring row
    (no delay load and no modulo per synapse); those whose weights are all bitwise equal
    (``proj_wuni[p]``) do not load weights. Either way every target receives the same values in the
    same order as in the general loop, so results are bit-identical. Projections with short-term
    plasticity (``proj_stp[p] >= 0``) deliver ``w r_j`` with the released fraction ``r_j`` of the
    spiking neuron (``stp_r[stp_off[q] + j]``, set by :func:`engine.kernels.plasticity.stp_release`).
    """
    L = ring.shape[0]
    S = ring.shape[1]
    flat = ring.reshape(L * S)
    for p in range(proj_pre_ent.size):
        e = proj_pre_ent[p]
        cnt = ent_cnt[e]
        if cnt == 0:
            continue
        off = ent_off[e]
        row0 = proj_row_off[p]
        base = proj_base[p]
        d_uni = proj_delay[p]
        w_uni = proj_wuni[p]
        if proj_stp[p] >= 0:
            o_r = stp_off[proj_stp[p]]
            for q in range(cnt):
                j = spk[off + q]
                r = row0 + j
                rel = stp_r[o_r + j]
                for s in range(indptr[r], indptr[r + 1]):
                    slot = kk + np.int64(delay[s]) - 1
                    if slot >= L:
                        slot -= L
                    flat[np.uint64(slot * S + base + post[s])] += weight[s] * rel
            continue
        for q in range(min(PREFETCH_ROWS, cnt)):
            _prefetch_row(indptr, row0 + spk[off + q], post, weight, delay, not w_uni, d_uni == 0)
        if d_uni > 0:
            slot = kk + d_uni - 1
            if slot >= L:
                slot -= L
            o = slot * S + base
            if w_uni:
                w = weight[indptr[row0]]  # uniform: any synapse of the projection
                for q in range(cnt):
                    if q + PREFETCH_ROWS < cnt:
                        _prefetch_row(indptr, row0 + spk[off + q + PREFETCH_ROWS], post, weight, delay, False, False)
                    r = row0 + spk[off + q]
                    for s in range(indptr[r], indptr[r + 1]):
                        flat[np.uint64(o + post[s])] += w
            else:
                for q in range(cnt):
                    if q + PREFETCH_ROWS < cnt:
                        _prefetch_row(indptr, row0 + spk[off + q + PREFETCH_ROWS], post, weight, delay, True, False)
                    r = row0 + spk[off + q]
                    for s in range(indptr[r], indptr[r + 1]):
                        flat[np.uint64(o + post[s])] += weight[s]
        else:
            for q in range(cnt):
                if q + PREFETCH_ROWS < cnt:
                    _prefetch_row(indptr, row0 + spk[off + q + PREFETCH_ROWS], post, weight, delay, True, True)
                r = row0 + spk[off + q]
                for s in range(indptr[r], indptr[r + 1]):
                    slot = kk + np.int64(delay[s]) - 1
                    if slot >= L:
                        slot -= L
                    # unsigned index: no negative-index wraparound code in the hot loop
                    flat[np.uint64(slot * S + base + post[s])] += weight[s]


@njit(**LEAF_OPTS)
def current_step(k, dt, cs_group, cs_wave, cs_lo, cs_hi, cs_idx, cs_amp, cs_par, cs_tlo, cs_thi, cs_tk, cs_tval,
                 cs_rng, iext_lif, iext_coba, iext_izh):
    """Add every current source's value at ``t_k`` to its group's ``i_ext`` (zeroed by the caller).

    ``cs_par[s] = (offset, omega [rad/ms], phase)``; ``step`` levels ``cs_tval`` hold from step
    ``cs_tk`` on (0 before the first).
    """
    t = k * dt
    for s in range(cs_group.size):
        g = cs_group[s]
        if g == GROUP_LIF:
            iext = iext_lif
        elif g == GROUP_COBA:
            iext = iext_coba
        else:
            iext = iext_izh
        wave = cs_wave[s]
        offset = cs_par[s, 0]
        if wave == WAVE_DC:
            for j in range(cs_lo[s], cs_hi[s]):
                iext[cs_idx[j]] += offset + cs_amp[j]
        elif wave == WAVE_STEP:
            level = 0.0
            for q in range(cs_tlo[s], cs_thi[s]):
                if cs_tk[q] <= k:
                    level = cs_tval[q]
                else:
                    break
            for j in range(cs_lo[s], cs_hi[s]):
                iext[cs_idx[j]] += offset + cs_amp[j] * level
        elif wave == WAVE_SINE:
            x = math.sin(cs_par[s, 1] * t + cs_par[s, 2])
            for j in range(cs_lo[s], cs_hi[s]):
                iext[cs_idx[j]] += offset + cs_amp[j] * x
        else:
            rng = cs_rng[s]
            for j in range(cs_lo[s], cs_hi[s]):
                iext[cs_idx[j]] += offset + cs_amp[j] * normal(rng)


@njit(**_OPTS)
def _grow(arr, need):
    cap = arr.size
    while cap < need:
        cap = 2 * cap + 1024
    out = np.empty(cap, arr.dtype)
    # element by element: a slice assignment from an array pulls in numba's shape-mismatch error
    # formatting, seconds of a cold compile
    for i in range(arr.size):
        out[i] = arr[i]
    return out


@njit(**_OPTS)
def _probe_value(group, kind, row, idx, lif, coba, izh, as_val, tri_state, tri_U0, tri_alpha):
    if group == PROBE_NALSM:
        return as_val[idx]
    if group == PROBE_TRIPARTITE:
        if row == PROBE_TRI_RELEASE:
            return release_probability(tri_state[idx, TRI_GS], tri_U0[idx], tri_alpha[idx])
        return tri_state[idx, row]
    if group == GROUP_LIF:
        return lif[0][row, idx] if kind == PROBE_STATE else lif[1][row, idx]
    if group == GROUP_COBA:
        return coba[0][row, idx] if kind == PROBE_STATE else coba[1][row, idx]
    return izh[0][row, idx] if kind == PROBE_STATE else izh[1][row, idx]


class ChunkFeatures(NamedTuple):
    """The code paths of the step loop a network needs; each combination is its own compiled kernel.

    See :func:`chunk_kernel`. The defaults (all True) give the general kernel.
    """

    lif_serial: bool = True        # LIF-family group, serial update
    lif_parallel: bool = True      # ... parallel block update
    coba_serial: bool = True
    coba_parallel: bool = True
    izh_serial: bool = True
    izh_parallel: bool = True
    poisson: bool = True
    trains: bool = True
    current: bool = True
    probes: bool = True            # state monitors
    stp: bool = True               # short-term plasticity
    plasticity: pk.PlasticityFeatures = pk.PlasticityFeatures()

    @property
    def name(self) -> str:
        """Name of the compiled variant (it determines every flag)."""
        flags = sum(1 << i for i, on in enumerate(self[:-1]) if on)
        return f"run_chunk_{flags:03x}_{self.plasticity.mask:03x}"


def chunk_features(lif, coba, izh, net, pois, trains, cur, pr_group, plast, rules) -> ChunkFeatures:
    """What :func:`run_chunk` has to do for these tables (the arguments of the same names;
    ``pr_group`` is the probe table of ``mon``). Group sizes, source and monitor tables do not
    change after a backend is built, so neither does the answer."""
    groups = []
    for tables, n_blocks in ((lif, lif[16]), (coba, coba[14]), (izh, izh[12])):
        present = tables[0].shape[1] > 0
        groups += [bool(present and n_blocks <= 0), bool(present and n_blocks > 0)]
    plast_t = pk.PlasticityTables(*plast)
    return ChunkFeatures(*groups, poisson=bool(pois[0].size), trains=bool(trains[0].size), current=bool(cur[0].size),
                         probes=bool(pr_group.size), stp=bool(plast_t.stp_proj.size),
                         plasticity=pk.plasticity_features(plast_t, pk.RuleTables(*rules)))


def chunk_kernel(features: ChunkFeatures):
    """The :func:`run_chunk` variant compiled for ``features`` only.

    A CUBA network (LIF, no sources, spike and state monitors) then compiles the LIF, propagation
    and monitor code and none of the other neuron models, sources, short-term plasticity or
    plasticity kernels; each variant is cached on disk under its own name (:attr:`ChunkFeatures.name`).
    """
    return specialise(_run_chunk, features.name, chunk_constants(features), _OPTS)


def chunk_constants(features: ChunkFeatures) -> dict:
    """The globals of :func:`_run_chunk` that the variant for ``features`` freezes."""
    f = features
    return {"_LIF": f.lif_serial or f.lif_parallel, "_LIF_SERIAL": f.lif_serial, "_LIF_PARALLEL": f.lif_parallel,
            "_COBA": f.coba_serial or f.coba_parallel, "_COBA_SERIAL": f.coba_serial, "_COBA_PARALLEL": f.coba_parallel,
            "_IZH": f.izh_serial or f.izh_parallel, "_IZH_SERIAL": f.izh_serial, "_IZH_PARALLEL": f.izh_parallel,
            "_POISSON": f.poisson, "_TRAINS": f.trains, "_CURRENT": f.current, "_PROBES": f.probes, "_STP": f.stp,
            "_PLASTICITY": f.plasticity.any, "_plasticity_step": pk.plasticity_kernel(f.plasticity)}


def run_chunk(k0, n_steps, dt, lif, coba, izh, net, pois, trains, cur, mon, rec_k, rec_id, rec_n, plast, rules):
    """:func:`_run_chunk` through the kernel variant these tables need (backends pick it once,
    :func:`chunk_kernel`, instead of calling this)."""
    kernel = chunk_kernel(chunk_features(lif, coba, izh, net, pois, trains, cur, mon[4], plast, rules))
    return kernel(k0, n_steps, dt, lif, coba, izh, net, pois, trains, cur, mon, rec_k, rec_id, rec_n, plast, rules)


# Code-path flags of the step loop: True here (the general kernel); a variant made by chunk_kernel()
# sees its own values as compile-time constants (numba prunes the branches of a False flag before
# typing, so the kernels behind them are not compiled).
_LIF = _LIF_SERIAL = _LIF_PARALLEL = _COBA = _COBA_SERIAL = _COBA_PARALLEL = True
_IZH = _IZH_SERIAL = _IZH_PARALLEL = _POISSON = _TRAINS = _CURRENT = _PROBES = _STP = _PLASTICITY = True
_plasticity_step = pk.plasticity_step


def _run_chunk(k0, n_steps, dt, lif, coba, izh, net, pois, trains, cur, mon, rec_k, rec_id, rec_n, plast, rules):
    """Advance the network from step ``k0`` by ``n_steps`` steps in the canonical order (§0.2).

    Parameters
    ----------
    lif : tuple
        ``(state, chan, ref, prm, nref, P11, P21, AWI, iext, has_iext, pop_start, pop_stop, pop_ent,
        base, adaptive, coupled, nblocks, scratch, pop_uniform, pend, pend_cnt)``; ``nblocks > 0`` runs
        the update in parallel blocks; ``scratch`` is a (2, n) work array; ``pop_uniform[p]`` marks
        populations whose parameters are all equal (fused fast path, which also pre-detects the next
        step's spikes into ``pend`` / ``pend_cnt``, see :func:`engine.kernels.neurons.lif_detect`).
    coba : tuple
        ``(state, chan, ref, prm, nref, P11, EREV, iext, has_iext, pop_start, pop_stop, pop_ent, base,
        adaptive, nblocks, scratch)``
    izh : tuple
        ``(state, chan, prm, scheme, P11, CIN, iext, has_iext, pop_start, pop_stop, pop_ent, base, nblocks, scratch)``
    net : tuple
        ``(ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, proj_base,
        proj_delay, proj_wuni)``: ``proj_delay[p] > 0`` when every synapse of projection ``p`` has that
        delay, ``proj_wuni[p]`` when its weights are all bitwise equal (see :func:`propagate`)
    pois, trains, cur : tuple
        Source tables (see :func:`poisson_step`, :func:`spike_train_step`, :func:`current_step`).
    mon : tuple
        ``(rec_ent, rec_flag, rate_ent, rate_buf, pr_group, pr_kind, pr_row, pr_idx, pr_every, pr_pos, pr_out)``
    rec_k, rec_id, rec_n
        Growable spike record (step, global id) and its fill count.
    plast : tuple
        Plastic projections, short-term plasticity and dopamine signals (see
        :func:`engine.kernels.plasticity.plasticity_step`); ``pl_proj`` empty: no plasticity.
    rules : tuple
        The rule table ``(r_kind, r_proj, r_prm, ...)`` and trace storage.

    Returns
    -------
    tuple
        ``(k_next, bad_group, bad_code, rec_k, rec_id, rec_n)``: ``bad_group >= 0`` when a state became
        non-finite in step ``k_next - 1`` (the chunk stops there).

    Notes
    -----
    Template of the step-loop kernels (see :func:`chunk_kernel`): a False ``_*`` flag removes a
    code path the tables do not use; with the flags the tables call for, each variant does exactly
    what the general kernel does.
    """
    # Tuples are unpacked once: indexing a tuple of arrays inside the loop costs an atomic reference
    # count increment and decrement per array and call (about 1 us per step in total).
    (ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, proj_base, proj_delay,
     proj_wuni) = net
    (pl_proj, pp_syn0, pp_nsyn, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0, pp_pm0, pp_sg0, h_n, h_j, h_cur,
     h_end, pm_ptr, pm_syn, pm_pre, w_sign, proj_stp, stp_proj, stp_prm, stp_off, stp_u, stp_x, stp_last, stp_r,
     md_val, md_P, md_tonic, md_lo, md_hi, md_pos, ev_step, ev_amp, ip_group, ip_start, ip_ent, ip_prm, as_val, as_w,
     as_b, as_rate, as_decay, as_ent, as_liq_lo, as_liq_hi, as_ref_hi, stp_astro, tri_state, tri_prm, tri_armed,
     tri_acc, tri_every, tri_dt_s, tri_U0, tri_alpha, tri_nsyn, tri_scratch, pp_hpn0, pp_hp0) = plast
    (r_kind, r_proj, r_prm, r_nearest, r_excl, r_mod, r_x0, r_y0, r_hx0, r_s0, r_interval, r_ev_lo, r_ev_hi, r_ev_pos,
     ev_norm, xtr, ytr, xt, yt, xhist, sst, r_astro, r_astro_scale, r_dend, r_hy0, yhist) = rules
    has_plasticity = (pl_proj.size > 0 or ip_group.size > 0 or md_val.size > 0 or as_val.size > 0
                      or tri_state.shape[0] > 0)
    has_stp = stp_proj.size > 0
    rec_ent, rec_flag, rate_ent, rate_buf, pr_group, pr_kind, pr_row, pr_idx, pr_every, pr_pos, pr_out = mon
    (l_state, l_chan, l_ref, l_prm, l_nref, l_P11, l_P21, l_AWI, l_iext, l_has_iext, l_start, l_stop, l_ent, l_base,
     l_adaptive, l_coupled, l_nblocks, l_scratch, l_uniform, l_pend, l_pend_cnt) = lif
    (c_state, c_chan, c_ref, c_prm, c_nref, c_P11, c_EREV, c_iext, c_has_iext, c_start, c_stop, c_ent, c_base,
     c_adaptive, c_nblocks, c_scratch) = coba
    (i_state, i_chan, i_prm, i_scheme, i_P11, i_CIN, i_iext, i_has_iext, i_start, i_stop, i_ent, i_base, i_nblocks,
     i_scratch) = izh
    po_ent, po_lo, po_hi, po_p, po_homog, po_rng, po_start, po_stop = pois
    st_ent, st_lo, st_hi, st_pos, st_steps, st_idx = trains
    (cs_group, cs_wave, cs_lo, cs_hi, cs_idx, cs_amp, cs_par, cs_tlo, cs_thi, cs_tk, cs_tval, cs_rng) = cur
    L = ring.shape[0]
    n_lif = l_state.shape[1]
    n_coba = c_state.shape[1]
    n_izh = i_state.shape[1]
    has_current = cs_group.size > 0
    has_poisson = po_ent.size > 0
    has_trains = st_ent.size > 0
    # threshold crossings pre-detected by the last update are valid only inside a chunk (between
    # chunks the state may be set or restored from outside)
    l_pend_cnt[:] = -1
    for k in range(k0, k0 + n_steps):
        kk = k % L
        # (1)-(2) threshold and reset; sources emit
        if _LIF and n_lif > 0:
            nk.lif_detect(l_state, l_ref, l_prm, l_nref, l_start, l_stop, l_ent, l_adaptive, ent_off, ent_cnt, spk,
                          l_pend, l_pend_cnt)
        if _COBA and n_coba > 0:
            nk.coba_detect(c_state, c_ref, c_prm, c_nref, c_start, c_stop, c_ent, c_adaptive, ent_off, ent_cnt, spk)
        if _IZH and n_izh > 0:
            nk.izh_detect(i_state, i_prm, i_start, i_stop, i_ent, ent_off, ent_cnt, spk)
        if _POISSON and has_poisson:
            poisson_step(k, po_ent, po_lo, po_hi, po_p, po_homog, po_rng, po_start, po_stop, ent_off, ent_cnt, spk)
        if _TRAINS and has_trains:
            spike_train_step(k, st_ent, st_lo, st_hi, st_pos, st_steps, st_idx, ent_off, ent_cnt, spk)
        # monitors see the spikes S_k and the post-reset state at t_k
        for e in range(rec_ent.size):
            if rec_ent[e] and ent_cnt[e] > 0:
                off = ent_off[e]
                if rec_n + ent_cnt[e] > rec_k.size:
                    rec_k = _grow(rec_k, rec_n + ent_cnt[e])
                    rec_id = _grow(rec_id, rec_n + ent_cnt[e])
                for q in range(ent_cnt[e]):
                    gid = off + spk[off + q]
                    if rec_flag[gid]:
                        rec_k[rec_n] = k
                        rec_id[rec_n] = gid
                        rec_n += 1
        for m in range(rate_ent.size):
            rate_buf[k - k0, m] = ent_cnt[rate_ent[m]]
        if _PROBES:
            for p in range(pr_group.size):
                if k % pr_every[p] == 0:
                    pr_out[pr_pos[p]] = _probe_value(pr_group[p], pr_kind[p], pr_row[p], pr_idx[p], lif, coba, izh,
                                                     as_val, tri_state, tri_U0, tri_alpha)
                    pr_pos[p] += 1
        # (3) route S_k into the ring
        any_spike = False
        for p in range(proj_pre_ent.size):
            if ent_cnt[proj_pre_ent[p]] > 0:
                any_spike = True
                break
        if any_spike:
            if _STP and has_stp:
                pk.stp_release(k, dt, ent_off, ent_cnt, spk, proj_pre_ent, stp_proj, stp_prm, stp_off, stp_u, stp_x,
                               stp_last, stp_r, indptr, proj_row_off, stp_astro, tri_acc)
            propagate(kk, ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
                      proj_base, proj_delay, proj_wuni, proj_stp, stp_off, stp_r)
        # external currents of step k
        if _CURRENT and has_current:
            if l_has_iext:
                l_iext[:] = 0.0
            if c_has_iext:
                c_iext[:] = 0.0
            if i_has_iext:
                i_iext[:] = 0.0
            current_step(k, dt, cs_group, cs_wave, cs_lo, cs_hi, cs_idx, cs_amp, cs_par, cs_tlo, cs_thi, cs_tk, cs_tval,
                         cs_rng, l_iext, c_iext, i_iext)
        # (4)-(5) consume ring slot k and propagate every neuron to t_{k+1}
        ring_row = ring[kk]
        bad_group = -1
        bad_code = -1
        if _LIF and n_lif > 0:
            b = -1
            if _LIF_PARALLEL and l_nblocks > 0:
                b = nk.lif_update_parallel(l_nblocks, l_state, l_chan, l_ref, l_prm, l_P11, l_P21, l_AWI, l_iext,
                                           l_has_iext, ring_row, l_base, l_adaptive, l_coupled, l_scratch, l_start,
                                           l_stop, l_uniform, l_pend, l_pend_cnt)
            elif _LIF_SERIAL:
                b = nk.lif_update(0, n_lif, l_state, l_chan, l_ref, l_prm, l_P11, l_P21, l_AWI, l_iext, l_has_iext,
                                  ring_row, l_base, l_adaptive, l_coupled, l_scratch, l_start, l_stop, l_uniform,
                                  l_pend, l_pend_cnt)
            if b >= 0:
                bad_group, bad_code = GROUP_LIF, b
        if _COBA and n_coba > 0:
            b = -1
            if _COBA_PARALLEL and c_nblocks > 0:
                b = nk.coba_update_parallel(c_nblocks, c_state, c_chan, c_ref, c_prm, c_P11, c_EREV, c_iext,
                                            c_has_iext, ring_row, c_base, c_adaptive, c_scratch)
            elif _COBA_SERIAL:
                b = nk.coba_update(0, n_coba, c_state, c_chan, c_ref, c_prm, c_P11, c_EREV, c_iext, c_has_iext,
                                   ring_row, c_base, c_adaptive, c_scratch)
            if b >= 0 and bad_group < 0:
                bad_group, bad_code = GROUP_COBA, b
        if _IZH and n_izh > 0:
            b = -1
            if _IZH_PARALLEL and i_nblocks > 0:
                b = nk.izh_update_parallel(i_nblocks, i_state, i_chan, i_prm, i_scheme, i_P11, i_CIN, i_iext,
                                           i_has_iext, ring_row, i_base, dt, i_scratch)
            elif _IZH_SERIAL:
                b = nk.izh_update(0, n_izh, i_state, i_chan, i_prm, i_scheme, i_P11, i_CIN, i_iext, i_has_iext,
                                  ring_row, i_base, dt, i_scratch)
            if b >= 0 and bad_group < 0:
                bad_group, bad_code = GROUP_IZH, b
        if bad_group >= 0:
            return k + 1, bad_group, bad_code, rec_k, rec_id, rec_n
        # (6)-(7) plasticity of step k's events, slow modulators
        if _PLASTICITY and has_plasticity:
            _plasticity_step(k, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
                               pl_proj, pp_syn0, pp_nsyn, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0,
                               pp_pm0, pp_sg0, h_n, h_j, h_cur, h_end, pm_ptr, pm_syn, pm_pre, w_sign,
                               r_kind, r_proj, r_prm, r_nearest, r_excl, r_mod, r_x0, r_y0, r_hx0, r_s0, r_interval,
                               r_ev_lo, r_ev_hi, r_ev_pos, ev_norm, xtr, ytr, xt, yt, xhist, sst, r_astro,
                               r_astro_scale, r_dend, r_hy0, yhist,
                               md_val, md_P, md_tonic, md_lo, md_hi, md_pos, ev_step, ev_amp,
                               ip_group, ip_start, ip_ent, ip_prm, l_state, l_prm, c_state, c_prm,
                               as_val, as_w, as_b, as_rate, as_decay, as_ent, as_liq_lo, as_liq_hi, as_ref_hi,
                               stp_astro, stp_prm, tri_state, tri_prm, tri_armed, tri_acc, tri_every, tri_dt_s, tri_U0,
                               tri_alpha, tri_nsyn, tri_scratch, pp_hpn0, pp_hp0)
    return k0 + n_steps, -1, -1, rec_k, rec_id, rec_n
