"""Where a step of a plastic network spends its time, and what the plasticity pass costs.

Runs the serial path of :func:`engine.kernels.network.run_chunk` with the same kernels in the same
order, reading the CPU cycle counter between the phases (threshold detection, Poisson source,
propagation, neuron update, :func:`engine.kernels.plasticity.plasticity_step`), for

* ``song``: the Song et al. network of ``bench_song.py`` (one conductance LIF, 1000 Poisson inputs,
  one plastic projection);
* ``cuba N``: the CUBA network of ``bench_cuba.py`` with pair STDP on the excitatory recurrent
  projection (``bench_song.py``'s ``learning`` variant), or ``cuba-static N`` without it.

Cycles are converted to seconds with the measured wall time of the loop. Then it times the trace
decay of the plasticity pass (``xtr[x0 + j] *= decay`` over every presynaptic and postsynaptic
trace, every step) in isolation: indexed with a signed offset as the kernel does, and with an
unsigned index, which lets LLVM vectorise the loop (same products, same results).

Usage::

    python benchmarks/profile_plasticity_phases.py song [duration_ms]
    python benchmarks/profile_plasticity_phases.py cuba 64000 [duration_ms]
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from benchmarks.bench_song import cuba_variant_plan, song_plan  # noqa: E402
from benchmarks.profile_cuba_phases import _cycles  # noqa: E402
from engine.kernels import LEAF_OPTS  # noqa: E402
from engine.kernels import network as netk  # noqa: E402
from engine.kernels import neurons as nk  # noqa: E402
from engine.kernels import plasticity as pk  # noqa: E402
from engine.runner import Simulation  # noqa: E402

PHASES = ("threshold detection", "Poisson source", "propagation", "neuron update", "plasticity_step")


@njit(nogil=True, inline="always")
def _plasticity(k, net, plast, rules, lif_state, lif_prm, coba_state, coba_prm):
    (ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, proj_base, proj_delay,
     proj_wuni) = net
    (pl_proj, pp_syn0, pp_nsyn, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0, pp_pm0, pp_sg0, h_n, h_j, h_cur,
     h_end, pm_ptr, pm_syn, pm_pre, w_sign, proj_stp, stp_proj, stp_prm, stp_off, stp_u, stp_x, stp_last, stp_r,
     md_val, md_P, md_tonic, md_lo, md_hi, md_pos, ev_step, ev_amp, ip_group, ip_start, ip_ent, ip_prm) = plast
    (r_kind, r_proj, r_prm, r_nearest, r_excl, r_mod, r_x0, r_y0, r_hx0, r_s0, r_interval, r_ev_lo, r_ev_hi, r_ev_pos,
     ev_norm, xtr, ytr, xhist, sst) = rules
    pk.plasticity_step(k, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
                       pl_proj, pp_syn0, pp_nsyn, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0,
                       pp_pm0, pp_sg0, h_n, h_j, h_cur, h_end, pm_ptr, pm_syn, pm_pre, w_sign,
                       r_kind, r_proj, r_prm, r_nearest, r_excl, r_mod, r_x0, r_y0, r_hx0, r_s0, r_interval,
                       r_ev_lo, r_ev_hi, r_ev_pos, ev_norm, xtr, ytr, xhist, sst,
                       md_val, md_P, md_tonic, md_lo, md_hi, md_pos, ev_step, ev_amp,
                       ip_group, ip_start, ip_ent, ip_prm, lif_state, lif_prm, coba_state, coba_prm)


@njit(nogil=True)
def _loop_song(n_steps, coba, net, pois, plast, rules, lif_state, lif_prm, T, counts):
    (ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, proj_base, proj_delay,
     proj_wuni) = net
    proj_stp, stp_off, stp_r = plast[19], plast[22], plast[26]
    has_plasticity = plast[0].size > 0
    (c_state, c_chan, c_ref, c_prm, c_nref, c_P11, c_EREV, c_iext, c_has_iext, c_start, c_stop, c_ent, c_base,
     c_adaptive, c_nblocks, c_scratch) = coba
    po_ent, po_lo, po_hi, po_p, po_homog, po_rng, po_start, po_stop = pois
    L = ring.shape[0]
    n = c_state.shape[1]
    out_ent = c_ent[0]
    in_ent = po_ent[0]
    for k in range(n_steps):
        kk = k % L
        t0 = _cycles()
        nk.coba_detect(c_state, c_ref, c_prm, c_nref, c_start, c_stop, c_ent, c_adaptive, ent_off, ent_cnt, spk)
        t1 = _cycles()
        netk.poisson_step(k, po_ent, po_lo, po_hi, po_p, po_homog, po_rng, po_start, po_stop, ent_off, ent_cnt, spk)
        t2 = _cycles()
        if ent_cnt[in_ent] > 0:
            netk.propagate(kk, ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
                           proj_base, proj_delay, proj_wuni, proj_stp, stp_off, stp_r)
        t3 = _cycles()
        nk.coba_update(0, n, c_state, c_chan, c_ref, c_prm, c_P11, c_EREV, c_iext, c_has_iext, ring[kk], c_base,
                       c_adaptive, c_scratch)
        t4 = _cycles()
        if has_plasticity:
            _plasticity(k, net, plast, rules, lif_state, lif_prm, c_state, c_prm)
        t5 = _cycles()
        T[0] += t1 - t0
        T[1] += t2 - t1
        T[2] += t3 - t2
        T[3] += t4 - t3
        T[4] += t5 - t4
        counts[0] += ent_cnt[in_ent]  # presynaptic arrivals (one synapse each, delay 1)
        counts[1] += ent_cnt[out_ent]  # postsynaptic spikes (each visits every incoming synapse)


@njit(nogil=True)
def _loop_lif(n_steps, lif, net, plast, rules, coba_state, coba_prm, T, counts):
    """The CUBA step (one LIF population, no sources, spikes not recorded)."""
    (ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, proj_base, proj_delay,
     proj_wuni) = net
    proj_stp, stp_off, stp_r = plast[19], plast[22], plast[26]
    has_plasticity = plast[0].size > 0
    (state, chan, ref, prm, nref, P11, P21, AWI, iext, has_iext, start, stop, ent, lbase, adaptive, coupled,
     nblocks, scratch, uniform, pend, pend_cnt) = lif
    L = ring.shape[0]
    n = state.shape[1]
    pend_cnt[:] = -1
    for k in range(n_steps):
        kk = k % L
        t0 = _cycles()
        nk.lif_detect(state, ref, prm, nref, start, stop, ent, adaptive, ent_off, ent_cnt, spk, pend, pend_cnt)
        t1 = _cycles()
        netk.propagate(kk, ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
                       proj_base, proj_delay, proj_wuni, proj_stp, stp_off, stp_r)
        t2 = _cycles()
        nk.lif_update(0, n, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring[kk], lbase, adaptive, coupled,
                      scratch, start, stop, uniform, pend, pend_cnt)
        t3 = _cycles()
        if has_plasticity:
            _plasticity(k, net, plast, rules, state, prm, coba_state, coba_prm)
        t4 = _cycles()
        T[0] += t1 - t0
        T[2] += t2 - t1
        T[3] += t3 - t2
        T[4] += t4 - t3
        counts[1] += ent_cnt[ent[0]]


@njit(**LEAF_OPTS)
def _decay_signed(xtr, x0, n, factor):
    for j in range(n):
        xtr[x0 + j] *= factor  # as in plasticity._timing_rule


@njit(**LEAF_OPTS)
def _decay_unsigned(xtr, x0, n, factor):
    for j in range(n):
        xtr[np.uint64(x0 + j)] *= factor


@njit(nogil=True)
def _repeat_decay(unsigned, reps, xtr, x0, n, factor):
    for _ in range(reps):
        if unsigned:
            _decay_unsigned(xtr, x0, n, factor)
        else:
            _decay_signed(xtr, x0, n, factor)


def profile(network: str = "song", n: int = 64000, duration_ms: float | None = None) -> None:
    """Print the phase profile of ``network`` ("song", "cuba" or "cuba-static") and the trace-decay timing."""
    if network == "song":
        duration_ms = duration_ms or 20000.0
        plan = song_plan(duration_ms, 0.1, 2000, "float32")
        title = "Song network"
    else:
        duration_ms = duration_ms or 1000.0
        plan = cuba_variant_plan("static" if network == "cuba-static" else "learning", n, duration_ms, 0.1, 1,
                                 "float32")
        title = f"CUBA N={n}, {'static' if network == 'cuba-static' else 'pair STDP on Ce'}"
    be = Simulation(plan, parallel=False).backend
    steps = plan.n_steps
    T = np.zeros(len(PHASES), np.int64)
    counts = np.zeros(2, np.int64)
    if network == "song":
        loop = _loop_song
        args = (tuple(be.coba), tuple(be.net), tuple(be.pois), tuple(be.plast), tuple(be.rules), be.lif[0], be.lif[3])
    else:
        loop = _loop_lif
        args = (tuple(be.lif), tuple(be.net), tuple(be.plast), tuple(be.rules), be.coba[0], be.coba[3])
    loop(0, *args, T, counts)  # compile
    t0, c0 = time.perf_counter(), time.thread_time()
    loop(steps, *args, T, counts)
    wall = time.perf_counter() - t0
    cpu = time.thread_time() - c0  # excludes time the thread waited for a core (shared machine)
    hz = T.sum() / wall
    print(f"{title}: {wall:.3f} s for {duration_ms:g} ms ({wall / steps * 1e6:.2f} µs/step; CPU time "
          f"{cpu / steps * 1e6:.2f} µs/step), "
          f"{counts[1] / steps:.3f} postsynaptic spikes per step"
          + (f", {counts[0] / steps:.2f} presynaptic arrivals per step" if network == "song" else ""))
    for name, t in zip(PHASES, T):
        if t:
            print(f"  {name:<20} {t / hz:7.3f} s  {100 * t / T.sum():5.1f} %  {t / hz / steps * 1e9:9.1f} ns/step")
    n_traces = int(be.rules[15].size + be.rules[16].size)  # xtr + ytr
    if n_traces == 0:
        return
    xtr = np.ones(n_traces)
    reps = max(10, 200_000_000 // n_traces)
    for unsigned in (False, True):
        _repeat_decay(unsigned, 10, xtr, np.int64(0), np.int64(n_traces), 1.0)
    print(f"  decay of the {n_traces} float64 traces (pre + post) per step, in isolation (best of 5):")
    for unsigned, label in ((False, "signed offset index (as in _timing_rule)"), (True, "unsigned index (vectorised)")):
        best = min(_timed(_repeat_decay, unsigned, reps, xtr, np.int64(0), np.int64(n_traces), 1.0) for _ in range(5))
        print(f"    {label:<42} {best / reps * 1e9:9.1f} ns/step")


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


if __name__ == "__main__":
    argv = sys.argv[1:] or ["song"]
    if argv[0] == "song":
        profile("song", duration_ms=float(argv[1]) if len(argv) > 1 else None)
    else:
        profile(argv[0], int(argv[1]) if len(argv) > 1 else 64000, float(argv[2]) if len(argv) > 2 else None)
