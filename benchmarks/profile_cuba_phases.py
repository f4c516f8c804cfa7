"""Where a CUBA step spends its time: threshold detection, spike monitor, propagation, neuron update.

Runs the serial LIF path of :func:`engine.kernels.network.run_chunk` for the CUBA network (one LIF
population, no sources) with the same kernels in the same order, reading the CPU cycle counter
(``llvm.readcyclecounter``) between the phases. Cycles are converted to seconds with the measured
wall time of the loop.

Usage::

    python benchmarks/profile_cuba_phases.py 4000 64000 256000
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

from engine.kernels import network as netk  # noqa: E402
from engine.kernels import neurons as nk  # noqa: E402
from engine.networks import cuba_plan  # noqa: E402
from engine.runner import Simulation  # noqa: E402


@intrinsic
def _cycles(typingctx):
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(fn, [])

    return types.int64(), codegen


@njit(nogil=True)
def _loop(n_steps, lif, net, stp, rec_flag, rec_k, rec_id, T):
    (ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, pre_ent, row_off, base, proj_delay, proj_wuni) = net
    proj_stp, stp_off, stp_r = stp
    (state, chan, ref, prm, nref, P11, P21, AWI, iext, has_iext, start, stop, ent, lbase, adaptive, coupled,
     nblocks, scratch, uniform, pend, pend_cnt) = lif
    L = ring.shape[0]
    n = state.shape[1]
    rec_n = 0
    pend_cnt[:] = -1
    for k in range(n_steps):
        kk = k % L
        t0 = _cycles()
        nk.lif_detect(state, ref, prm, nref, start, stop, ent, adaptive, ent_off, ent_cnt, spk, pend, pend_cnt)
        t1 = _cycles()
        off = ent_off[0]
        for q in range(ent_cnt[0]):
            gid = off + spk[off + q]
            if rec_flag[gid]:
                rec_k[rec_n] = k
                rec_id[rec_n] = gid
                rec_n += 1
        t2 = _cycles()
        netk.propagate(kk, ring, ent_off, ent_cnt, spk, indptr, post, weight, delay, pre_ent, row_off, base,
                       proj_delay, proj_wuni, proj_stp, stp_off, stp_r)
        t3 = _cycles()
        nk.lif_update(0, n, state, chan, ref, prm, P11, P21, AWI, iext, has_iext, ring[kk], lbase, adaptive, coupled,
                      scratch, start, stop, uniform, pend, pend_cnt)
        t4 = _cycles()
        T[0] += t1 - t0
        T[1] += t2 - t1
        T[2] += t3 - t2
        T[3] += t4 - t3
    return rec_n


def profile(n: int, duration_ms: float = 1000.0, dtype: str = "float32") -> None:
    plan = cuba_plan(n, seed=1, dtype=dtype, duration_ms=duration_ms)
    be = Simulation(plan, parallel=False).backend
    steps = plan.n_steps
    rec_k = np.zeros(n * steps // 100 + 1024, np.int32)
    rec_id = np.zeros_like(rec_k)
    T = np.zeros(4, np.int64)
    stp = (be.plast[19], be.plast[22], be.plast[26])  # short-term plasticity tables (none in CUBA)
    _loop(0, tuple(be.lif), tuple(be.net), stp, be.mon_static[1], rec_k, rec_id, T)
    t0 = time.perf_counter()
    spikes = _loop(steps, tuple(be.lif), tuple(be.net), stp, be.mon_static[1], rec_k, rec_id, T)
    wall = time.perf_counter() - t0
    hz = T.sum() / wall
    events = int(np.diff(be.net[4])[rec_id[:spikes]].sum())
    print(f"CUBA N={n} {dtype}: {wall:.3f} s for {duration_ms:g} ms, {spikes} spikes ({spikes / n / duration_ms * 1e3:.2f} Hz)")
    for name, t in zip(("threshold detection", "spike monitor", "propagation", "neuron update"), T):
        print(f"  {name:<20} {t / hz:7.3f} s  {100 * t / T.sum():5.1f} %  {t / hz / (n * steps) * 1e9:6.3f} ns/neuron-step")
    print(f"  propagation per synaptic event: {T[2] / hz / max(events, 1) * 1e9:.2f} ns")


if __name__ == "__main__":
    for size in map(int, sys.argv[1:] or ["64000"]):
        profile(size)
