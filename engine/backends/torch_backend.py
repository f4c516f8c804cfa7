"""Torch backend: the numba backend's network, step order and arithmetic as vectorised torch ops,
on the CPU or a CUDA device.

What it runs: every neuron model (LIF / ALIF exact propagators, conductance LIF exponential Euler,
Izhikevich ``split2003`` and ``euler``), receptor channels, projections with delays, Poisson /
spike-train / current sources, spike / state / rate / weight monitors, readouts, chunked runs,
save/restore of the state, every plasticity rule, reward signal, NALSM astrocyte and threshold rule,
and training phases. What it does not run: short-term plasticity and the tripartite astrocyte; a plan
with either is refused with a :class:`SimulationError` naming it.

Batches (MODELS.md §0.5): with ``batch=B`` the backend holds B copies of the network (a batch axis
after the variable axis of every state array, ``ring[L, B, S]``) and :meth:`TorchBackend.run_samples`
presents B samples at once, copy ``b`` reading the inputs of its own steps; plastic copies learn
their own weights ``W[b, syn]``. Each copy equals numba's run of its sample
(tests/engine/test_torch_batch.py).

Plasticity: at batch 1 on the CPU the numba rule kernels run on the host arrays the tensors view
(bit-identical to numba); on a GPU and in a batch, the torch rule kernels of
:mod:`engine.backends.torch_rules` (weights within 1e-12 of numba's in float64). ``rules="torch"``
runs the latter on the CPU too, and ``host_loops = False`` the torch-op propagation a GPU runs: the
GPU's code path is tested on the CPU that way.

Layout and coefficients
-----------------------
The packed layout (groups of the LIF family / conductance LIF / Izhikevich as structures of arrays,
a ring buffer ``ring[L, S]`` with one column per (population, receptor, neuron), the shared CSR of
all projections) and every precomputed coefficient are built by the numba backend's own build code
(:class:`engine.backends.numba_backend.NumbaBackend` without compiling or running a kernel), then
handed to torch (shared memory on the CPU, one copy on a GPU). Both backends therefore start from the
same numbers and read state variables at the same places.

Step order (MODELS.md §0.2) and exactness
----------------------------------------
Per step ``k``: threshold/reset and source spikes, monitors, spike propagation into the ring,
external currents, neuron update consuming ring row ``k mod L``, plasticity. The neuron update repeats the
numba kernels' operations in their order and precision (the Izhikevich and conductance updates
run in float64 as numba promotes them, also for float32 state), and the spikes of a step are routed
over the synapses of the spiking neurons in the numba kernel's order (projection, spike, CSR
position): on the CPU by a numba loop over the arrays the tensors view, on a GPU by one
``index_add_``. Float64 runs of deterministic networks are therefore bit-identical to the numba
backend on the CPU (tests/engine/test_backends_shared.py); on CUDA the additions are atomic and
their order varies (last-bit differences).

Random streams: Poisson sources and current sources run numba's own kernels on the host
(:func:`engine.kernels.network.poisson_step`, :func:`engine.kernels.network.current_step`): the same
per-source xoshiro256** streams, geometric skips and float64 arithmetic, so stochastic networks are
also spike-for-spike identical to numba on the CPU, and their state files hold the same stream
states. On a GPU this costs one small host-to-device copy per step (the spikes of the sources, the
external currents); a device-side generator is future work. In a batch each copy draws its own
streams, seeded per sample (the seed, the source, the sample's first input step), so a sample gets
the same spikes in any batch (MODELS.md §0.5).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from engine.backends.base import Backend, ChunkResult, cuda_missing_reason
from engine.errors import SimulationError
from engine.kernels import network as netk
from engine.kernels import neurons as nk
from engine.kernels import plasticity as pk
from engine.plan import SimulationPlan
from engine.readouts import ANALYSIS_TYPES

_GROUP_VARS = (nk.LIF_VAR_NAMES, nk.COBA_VAR_NAMES, nk.IZH_VAR_NAMES)
_GROUP_LIF, _GROUP_COBA, _GROUP_IZH = 0, 1, 2
_PROBE_STATE = 0
#: numba's finiteness bound (``abs(x) <= 3e38``: also flags values a float32 cannot hold)
_BIG32 = float(np.float32(3.0e38))

#: Node types this backend simulates (see :func:`engine.backends.backend_supported_node_types`).
TORCH_NODE_TYPES = frozenset({
    "neuron.lif", "neuron.alif", "neuron.cobalif", "neuron.izhikevich",
    "synapse.projection",
    "input.current", "input.poisson", "input.spike_train", "input.teacher", "input.dataset", "input.event_stream",
    "monitor.spikes", "monitor.state", "monitor.rate", "monitor.weights",
    # spike recordings evaluated by the runner after the run (engine/readouts.py): backend-neutral
    *ANALYSIS_TYPES,
    # plasticity: the numba rule kernels on the host arrays the tensors view (CPU; refused on a GPU)
    "plasticity.stdp", "plasticity.triplet", "plasticity.symmetric", "plasticity.rstdp", "plasticity.scaling",
    "plasticity.intrinsic", "plasticity.oja", "plasticity.bcm", "modulator.reward", "modulator.nalsm_astrocyte",
    # read by `main.py train` (engine/gradient.py) and the training protocol (engine/training.py)
    "training.surrogate_gradient", "training.phase",
})


def refuse_unsupported(plan: SimulationPlan, device: str = "cpu", batch: int = 1) -> None:
    """Raise a :class:`SimulationError` naming everything in ``plan`` the torch backend cannot run
    on ``device`` with ``batch`` copies: short-term plasticity (and the tripartite astrocytes acting
    through it) anywhere; in a batch, reward signals (timed on the whole run). What the torch rule
    kernels do not run on a GPU or in a batch, :class:`engine.backends.torch_rules.BatchedRules`
    refuses by name."""
    problems = []
    for proj in plan.projections:
        if proj.stp is not None:
            problems.append(f"short-term plasticity of projection {proj.name!r}")
    for tri in getattr(plan, "tripartites", []):
        problems.append(f"tripartite astrocyte {tri.name!r}")
    if batch > 1:
        for mod in plan.modulators:  # timed rewards are steps of the one run, not of each copy's sample
            problems.append(f"the reward signal {mod.name!r} (its rewards are timed on the whole run)")
    if problems:
        where = " and ".join(w for w, on in (("on a GPU", str(device) != "cpu"), (f"in a batch of {batch}", batch > 1))
                             if on)
        raise SimulationError(f"the torch backend does not simulate {where + ' ' if where else ''}"
                              "these yet: " + "; ".join(problems)
                              + (". Run this network with batch 1 on the CPU (--device cpu) or with the numba backend."
                                 if where else ". Run this network with the numba backend."))


def resolve_device(device: str | None) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a torch device; a missing GPU is a clear error."""
    name = str(device or "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SimulationError(f"unknown torch device {name!r}; use 'cpu' or 'cuda'") from None
    if dev.type == "cuda":
        why = cuda_missing_reason()
        if why is not None:
            raise SimulationError(f"CUDA is not available here (torch {torch.__version__}, {why}); "
                                  "run on the CPU instead: device 'cpu' (CLI: --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SimulationError(f"no CUDA device {dev.index}: {torch.cuda.device_count()} present")
    elif dev.type != "cpu":
        raise SimulationError(f"unsupported torch device {name!r}; use 'cpu' or 'cuda'")
    return dev


def batch_memory(plan: SimulationPlan, dtype, plastic: bool) -> tuple[int, int]:
    """Estimated device bytes ``(per copy, shared)`` of a batched run of ``plan``: per copy the
    neuron state (~6 values per neuron), the ring (max delay x receptor columns), the spikes routed in a
    busy step (a tenth of the synapses, 24 bytes each) and, when plastic, the copy's weights and
    traces; shared the CSR (indptr, target, delay, weight: 21 bytes per synapse)."""
    item = np.dtype(dtype).itemsize
    n_neurons = sum(p.size for p in plan.populations)
    columns = sum(p.size * max(1, len(p.receptors)) for p in plan.populations)
    n_syn = sum(p.n_synapses for p in plan.projections)
    max_delay = max((int(np.max(p.delays)) for p in plan.projections if p.n_synapses), default=1)
    per_copy = item * (6 * n_neurons + (max_delay + 1) * columns) + 24 * n_syn // 10
    if plastic:
        per_copy += item * (n_syn + 4 * n_neurons * max_delay)
    return int(per_copy), int(21 * n_syn)


def out_of_memory_message(batch: int, device: str, free: int, total: int, per_copy: int, shared: int) -> str:
    """What a GPU out-of-memory tells the user: the batch that ran out and the batch that would fit."""
    gib = 2.0 ** 30
    fits = max(0, int((free - shared) // max(per_copy, 1)))
    advice = (f"batch {fits} would fit; set the phase's batch to {fits} or less" if fits >= 1
              else "not even batch 1 fits: run on the CPU (--device cpu) or free GPU memory")
    return (f"batch {batch} does not fit in the memory of {device} ({free / gib:.1f} GiB free of {total / gib:.1f} "
            f"GiB; about {per_copy / 2**20:.1f} MiB per copy and {shared / 2**20:.1f} MiB shared): {advice}")


@njit(cache=True, nogil=True)
def _host_plasticity(k, ent_off, ent_cnt, spk, net, plast, rules, l_state, l_prm, c_state, c_prm):
    """:func:`engine.kernels.plasticity.plasticity_step` on the numba backend's packed tables."""
    (_ring, _eo, _ec, _spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off, _base, _pd, _pw) = net
    (pl_proj, pp_syn0, pp_nsyn, pp_npre, pp_npost, pp_post_ent, pp_Lh, pp_hn0, pp_h0, pp_pm0, pp_sg0, h_n, h_j, h_cur,
     h_end, pm_ptr, pm_syn, pm_pre, w_sign, _proj_stp, _stp_proj, stp_prm, _stp_off, _stp_u, _stp_x, _stp_last, _stp_r,
     md_val, md_P, md_tonic, md_lo, md_hi, md_pos, ev_step, ev_amp, ip_group, ip_start, ip_ent, ip_prm, as_val, as_w,
     as_b, as_rate, as_decay, as_ent, as_liq_lo, as_liq_hi, as_ref_hi, stp_astro, tri_state, tri_prm, tri_armed,
     tri_acc, tri_every, tri_dt_s, tri_U0, tri_alpha, tri_nsyn, tri_scratch, pp_hpn0, pp_hp0) = plast
    (r_kind, r_proj, r_prm, r_nearest, r_excl, r_mod, r_x0, r_y0, r_hx0, r_s0, r_interval, r_ev_lo, r_ev_hi, r_ev_pos,
     ev_norm, xtr, ytr, xt, yt, xhist, sst, r_astro, r_astro_scale, r_dend, r_hy0, yhist) = rules
    pk.plasticity_step(k, ent_off, ent_cnt, spk, indptr, post, weight, delay, proj_pre_ent, proj_row_off,
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


@njit(cache=True, nogil=True)
def _propagate_host(kk, flat, counts, sizes, row_off, indptr, delay, col, weight, batch_weight, ring, L, B, S):
    """The CPU's step (3): ``ring[(kk + d - 1) mod L, b, column] += w`` for every synapse of every
    spike, projection by projection, spike by spike, along the CSR row: numba's order within each
    batch element. ``flat``: the projections' spikes (``b * size + local``) one after another,
    ``counts[p]`` of them for projection ``p``; ``batch_weight``: ``W[b, syn]``, or empty when every
    copy reads ``weight``."""
    per_copy = batch_weight.shape[0] > 0
    n_syn = weight.size
    i = 0
    for p in range(counts.size):
        size = sizes[p]
        for _ in range(counts[p]):
            s = flat[i]
            i += 1
            b = s // size
            row = s - b * size + row_off[p]
            for syn in range(indptr[row], indptr[row + 1]):
                r = kk + delay[syn] - 1
                if r >= L:
                    r -= L
                w = batch_weight[b * n_syn + syn] if per_copy else weight[syn]
                ring[(r * B + b) * S + col[syn]] += w


@njit(cache=True, nogil=True)
def _poisson_copies(ks, pois_ent, pois_lo, pois_hi, pois_p, pois_homog, rngs, pois_start, pois_stop, ent_off,
                    ent_cnt, spk, sizes, flat, counts):
    """:func:`engine.kernels.network.poisson_step` for every copy ``b`` at its step ``ks[b]`` with its
    own streams ``rngs[b]``; the spikes of source ``s`` go to ``flat`` as ``b * size + local``, copy
    after copy, ``counts[s]`` of them (sources one after another)."""
    o = 0
    for s in range(pois_ent.size):
        counts[s] = 0
    for b in range(ks.size):
        netk.poisson_step(ks[b], pois_ent, pois_lo, pois_hi, pois_p, pois_homog, rngs[b], pois_start, pois_stop,
                          ent_off, ent_cnt[b], spk[b])
    for s in range(pois_ent.size):
        e = pois_ent[s]
        off = ent_off[e]
        for b in range(ks.size):
            for q in range(ent_cnt[b, e]):
                flat[o] = b * sizes[s] + spk[b, off + q]
                o += 1
                counts[s] += 1
    return o


@njit(cache=True, nogil=True)
def _exp_inplace(x):
    for i in range(x.size):
        x[i] = math.exp(x[i])


@dataclass
class _Group:
    """One model family's packed arrays (torch), mirroring the numba backend's tuples."""

    state: torch.Tensor
    chan: torch.Tensor
    prm: torch.Tensor
    iext: torch.Tensor
    has_iext: bool
    starts: list
    stops: list
    ents: list
    base: int
    ref: torch.Tensor | None = None      # LIF family, conductance LIF
    nref: torch.Tensor | None = None
    P11: torch.Tensor | None = None
    A: torch.Tensor | None = None        # P21 (LIF), EREV (COBA), CIN (Izhikevich)
    AWI: torch.Tensor | None = None      # LIF family, coupled adaptation
    adaptive: bool = False
    coupled: bool = False
    euler: torch.Tensor | None = None    # Izhikevich: scheme is Euler
    stops_t: torch.Tensor | None = None  # population ends (group indices), to split spike lists
    n: int = 0
    ring_rows: list | None = None        # per ring row: this group's (C, n) view of it
    all_euler: bool = False
    any_euler: bool = False
    S: list | None = None                # row views of state (indexing a tensor row costs a dispatch)
    P: list | None = None                # row views of prm


class TorchBackend(Backend):
    """Backend on torch tensors (CPU or CUDA).

    Parameters
    ----------
    plan : SimulationPlan
    dtype : {"float32", "float64"}, optional
    device : {"cpu", "cuda", "cuda:N"}, optional
        Default ``plan.metadata["device"]`` when the compiler recorded one, else ``"cpu"``.
    batch : int, optional
        B copies of the network run at once (MODELS.md §0.5), each with its own state and, when the
        plan is plastic, its own weights ``W[b, syn]`` (:meth:`run_samples`). Default 1: one network,
        :meth:`run_steps` as every backend.
    rules : {"auto", "torch"}, optional
        Plasticity kernels: ``"auto"`` runs the numba rule kernels on the host arrays at batch 1 on
        the CPU (bit-identical to numba) and the torch rule kernels
        (:class:`engine.backends.torch_rules.BatchedRules`) on a GPU or in a batch; ``"torch"`` the
        torch rule kernels everywhere (what a GPU runs, on the CPU).
    threads : int, optional
        torch intra-op threads on the CPU while this backend runs a chunk (set per chunk, restored
        after it). Default 1: the per-step tensors of networks below ~10^6 neurons are too small to
        gain from threads, and on a busy two-core machine waking a second thread made small ops
        100-600x slower (measured: ``repeat_interleave`` of 100 elements 5.9 ms with 2 threads,
        17 µs with 1).
    """

    name = "torch"
    supported_node_types = TORCH_NODE_TYPES
    #: a plan with something outside ``supported_node_types`` is refused, not run without it
    #: (validation reports such nodes as errors)
    refuses_unsupported = True

    def __init__(self, plan: SimulationPlan, dtype: str | None = None, device: str | None = None,
                 threads: int | None = None, batch: int | None = None, rules: str = "auto"):
        super().__init__(plan, dtype)
        if self.dtype not in (np.float32, np.float64):
            raise SimulationError(f"dtype must be float32 or float64, not {self.dtype}")
        self.device = resolve_device(device or plan.metadata.get("device"))
        self.B = int(batch) if batch else 1
        if self.B < 1:
            raise SimulationError(f"batch must be >= 1, got {batch!r}")
        if rules not in ("auto", "torch"):
            raise SimulationError(f"rules must be 'auto' or 'torch', not {rules!r}")
        self.rule_kernels = rules
        refuse_unsupported(plan, self.device.type, self.B)
        self.tdtype = torch.float64 if self.dtype == np.float64 else torch.float32
        self.threads = int(threads) if threads else 1
        if self.threads < 1:
            raise SimulationError("threads must be >= 1")
        self.dt = float(plan.dt)
        self._k = 0
        #: on the CPU, spike propagation runs as a numba loop over the arrays the tensors view (same
        #: sums, same order); False runs the device's torch ops (a GPU's path, testable on the CPU)
        self.host_loops = self.device.type == "cpu"
        # float64 view of a tensor: numba evaluates parts of the Izhikevich and conductance updates in
        # float64 even for float32 state (its literals and the step are float64)
        self._up = (lambda t: t) if self.tdtype == torch.float64 else (lambda t: t.double())
        try:
            self._build()
        except torch.cuda.OutOfMemoryError:
            raise self._out_of_memory() from None

    # ------------------------------------------------------------------------------------------
    # build: numba's packing, handed to torch
    # ------------------------------------------------------------------------------------------
    def _t(self, array, dtype=None) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array))
        return t.to(device=self.device, dtype=dtype or t.dtype)

    def _batched(self, array: np.ndarray, axis: int = 1) -> torch.Tensor:
        """``array`` with a batch axis of size B inserted at ``axis``: a view of the host array at
        batch 1 on the CPU (the host kernels write into it), B copies otherwise."""
        t = self._t(array).unsqueeze(axis)
        return t if self.B == 1 else t.repeat_interleave(self.B, dim=axis).contiguous()

    def _build(self) -> None:
        from engine.backends.numba_backend import NumbaBackend

        # build only (no kernel is compiled or run); uniform=False: no fast-path flags needed
        packed = NumbaBackend(self.plan, dtype=str(self.dtype), parallel=False, uniform=False, lazy_inputs=False)
        self.slots = packed.slots
        self.entity_names = packed.entity_names
        self.entity_sizes = packed.entity_sizes
        self.ent_off = packed.ent_off
        self.source_entity = packed.source_entity
        self.L = packed.L
        self.n_slots = packed.n_slots
        B = self.B
        # ring[L, B, S]: one row of columns per batch element
        self.ring = self._batched(packed.ring, axis=1)
        self._ring_flat = self.ring.view(-1)
        lif, coba, izh = packed.lif, packed.coba, packed.izh
        ints = lambda a: [int(x) for x in a]
        st, ch, rf = self._batched, (lambda a: self._batched(a, axis=1)), (lambda a: self._batched(a, axis=0))
        # the hosts the current kernel writes into: the group tensors themselves at batch 1 on the CPU
        self._iext_host = [packed.lif[8], packed.coba[7], packed.izh[6]] if B == 1 else \
            [np.zeros((B, a.size), a.dtype) for a in (packed.lif[8], packed.coba[7], packed.izh[6])]
        iext = [self._t(h if B > 1 else h[None, :]) for h in self._iext_host]
        self.groups = [
            _Group(state=st(lif[0]), chan=ch(lif[1]), prm=self._t(lif[3]), iext=iext[0],
                   has_iext=bool(lif[9]), starts=ints(lif[10]), stops=ints(lif[11]), ents=ints(lif[12]),
                   base=int(lif[13]), ref=rf(lif[2]), nref=self._t(lif[4]), P11=self._t(lif[5])[:, None, :],
                   A=self._t(lif[6])[:, None, :], AWI=self._t(lif[7])[:, None, :], adaptive=bool(lif[14]),
                   coupled=bool(lif[15])),
            _Group(state=st(coba[0]), chan=ch(coba[1]), prm=self._t(coba[3]), iext=iext[1],
                   has_iext=bool(coba[8]), starts=ints(coba[9]), stops=ints(coba[10]), ents=ints(coba[11]),
                   base=int(coba[12]), ref=rf(coba[2]), nref=self._t(coba[4]), P11=self._t(coba[5])[:, None, :],
                   A=self._t(coba[6])[:, None, :], adaptive=bool(coba[13])),
            _Group(state=st(izh[0]), chan=ch(izh[1]), prm=self._t(izh[2]), iext=iext[2],
                   has_iext=bool(izh[7]), starts=ints(izh[8]), stops=ints(izh[9]), ents=ints(izh[10]),
                   base=int(izh[11]), P11=self._t(izh[4])[:, None, :], A=self._t(izh[5])[:, None, :],
                   euler=self._t(izh[3] == nk.IZH_EULER)),
        ]
        for grp in self.groups:
            grp.stops_t = torch.tensor(grp.stops, dtype=torch.int64, device=self.device)
            grp.n = int(grp.prm.shape[1])
            grp.S = list(grp.state.unbind(0))
            grp.P = list(grp.prm.unbind(0))
            C = grp.chan.shape[0]
            # (C, B, n) view of ring row kk
            grp.ring_rows = [self.ring[kk, :, grp.base:grp.base + C * grp.n].view(B, C, grp.n).transpose(0, 1)
                             for kk in range(self.L)]
        izh_group = self.groups[_GROUP_IZH]
        izh_group.all_euler = bool(izh[3].size) and bool(np.all(izh[3] == nk.IZH_EULER))
        izh_group.any_euler = bool(np.any(izh[3] == nk.IZH_EULER))
        self._build_projections(packed)
        self._build_sources(packed)
        self._build_copy_streams()
        self._build_monitors(packed)
        self._build_plasticity(packed)
        #: the state every batch of samples starts from (:meth:`run_samples`)
        self._initial = self.state_arrays()

    def _build_projections(self, packed) -> None:
        """Per synapse: its ring offset ``(delay - 1)·S + column`` and weight; per projection: rows."""
        indptr, post, weight, delay, pre_ent, row_off, base = packed.net[4:11]
        S = self.n_slots
        col = np.zeros(post.size, np.int64)
        for p, proj in enumerate(self.plan.projections):
            s0, s1 = int(indptr[row_off[p]]), int(indptr[row_off[p] + proj.n_pre])
            col[s0:s1] = base[p] + post[s0:s1]
        ring_off = (delay.astype(np.int64) - 1) * S + col
        self._indptr = self._t(indptr, torch.int64)
        self._ring_off = self._t(ring_off)
        self._ring_col = self._t(col)
        self._weight = self._t(weight)
        self._n_syn = int(weight.size)
        #: per-sample weights ``W[b, syn]`` of a plastic batch (None: every copy reads ``_weight``)
        self._batch_weight: torch.Tensor | None = None
        self._proj_pre_ent = [int(e) for e in pre_ent]
        # the host loop's tables (numpy views; on the CPU the tensors above view the same memory)
        self._host_indptr, self._host_delay = indptr.astype(np.int64), delay.astype(np.int64)
        self._host_col, self._host_row_off = col, np.asarray(row_off, np.int64)
        self._host_weight = self._weight.numpy() if self.device.type == "cpu" else None
        self._no_batch_weight = np.zeros(0, weight.dtype)
        self._prop_counts = np.zeros(len(pre_ent), np.int64)
        self._prop_sizes = np.array([int(self.entity_sizes[int(e)]) for e in pre_ent], np.int64)
        self._proj_row_off = [int(r) for r in row_off]
        self._proj_syn = [(int(indptr[row_off[p]]), int(indptr[row_off[p]]) + proj.n_synapses)
                          for p, proj in enumerate(self.plan.projections)]

    def _build_plasticity(self, packed) -> None:
        """Plasticity on the CPU runs the numba backend's rule kernels on the host, on the very
        arrays the torch tensors view (weights, neuron state): the same numbers as numba, every
        rule, reward signal, NALSM astrocyte and threshold rule included."""
        self._packed = packed
        self._plastic = bool(packed.plastic_projections or packed.plast.md_val.size or packed.plast.as_val.size
                             or packed.plast.ip_group.size)
        self._rules = None
        if not self._plastic:
            return
        if self.device.type != "cpu" or self.B > 1 or self.rule_kernels == "torch":
            from engine.backends.torch_rules import BatchedRules

            # threshold rules change neuron state this backend owns: applied below, at batch 1 (in a
            # batch each copy's learned threshold would have to carry into the next sample)
            self._rules = BatchedRules(packed, self.B, self.device, self.tdtype, threshold_rules=self.B == 1)
            self._theta, self._p_theta = {}, {}
            for name, e, *_ in self._rules.threshold_rules:
                slot = self.slots[name]
                grp = self.groups[slot.group]
                row, decay = ((nk.LIF_THETA, nk.LIF_PTHETA) if slot.group == _GROUP_LIF
                              else (nk.COBA_THETA, nk.COBA_PTHETA))
                self._theta[e] = grp.state[row, :, slot.start:slot.stop]
                self._p_theta[e] = grp.prm[decay, slot.start:slot.stop]
            # per-copy weights; at batch 1 the shared weights themselves (what the ring reads)
            self._batch_weight = (self._weight.view(1, -1) if self.B == 1
                                  else self._weight.unsqueeze(0).repeat(self.B, 1))
            return
        host_weight = packed.net[6]
        if not np.shares_memory(self._weight.numpy(), host_weight):
            raise SimulationError("internal: the torch weights must view the host weights for plasticity on the CPU")
        self._host_spikes = [np.zeros(0, np.int64)] * len(self.entity_names)

    def _plasticity(self, k: int, spikes: dict) -> None:
        """Step (6)-(7): hand the step's spikes to the host kernel in numba's layout, then run it."""
        packed = self._packed
        ent_cnt, spk, ent_off = self._ent_cnt, self._spk, self.ent_off
        ent_cnt[:] = 0
        for e, s in spikes.items():
            n = int(s.numel())
            if n:
                off = int(ent_off[e])
                spk[off:off + n] = s.numpy()
                ent_cnt[e] = n
        _host_plasticity(np.int64(k), ent_off, ent_cnt, spk, tuple(packed.net), tuple(packed.plast),
                         tuple(packed.rules), packed.lif[0], packed.lif[3], packed.coba[0], packed.coba[3])

    def _build_sources(self, packed) -> None:
        """Poisson sources and current sources keep numba's tables and run numba's own kernels on the
        host (the same xoshiro256** streams, geometric skips and float64 arithmetic: identical spikes
        and currents on every device); spike trains are sliced per step from their sorted arrays."""
        self._pois = packed.pois
        self._cur = packed.cur
        self._ent_cnt = packed.ent_cnt
        self._spk = packed.spk
        ents, lo, hi, _pos, steps, idx = packed.trains
        self._trains = [dict(ent=int(ents[s]), steps=steps[lo[s]:hi[s]], idx=self._t(idx[lo[s]:hi[s]], torch.int64),
                             size=int(self.entity_sizes[int(ents[s])])) for s in range(len(ents))]

    def _build_copy_streams(self) -> None:
        """In a batch, every copy draws its own streams for the Poisson and noise-current sources
        (MODELS.md §0.5), seeded per sample by :meth:`_seed_copy_streams`."""
        from engine.plan import CurrentSourcePlan, PoissonSourcePlan, source_stream_seed

        plan, B = self.plan, self.B
        pois = [s for s in plan.sources if isinstance(s, PoissonSourcePlan)]
        cur = [s for s in plan.sources if isinstance(s, CurrentSourcePlan)]
        self._stream_roots = ([source_stream_seed(plan, s) for s in pois], [source_stream_seed(plan, s) for s in cur])
        if B == 1:
            return
        sizes = np.array([int(s.size) for s in pois], np.int64)
        self._copy_streams = dict(
            poisson=np.zeros((B, len(pois), 4), np.uint64), current=np.zeros((B, len(cur), 4), np.uint64),
            ent_cnt=np.zeros((B, self._ent_cnt.size), self._ent_cnt.dtype), spk=np.zeros((B, self._spk.size),
                                                                                         self._spk.dtype),
            sizes=sizes, flat=np.zeros(int(B * sizes.sum()), np.int64), counts=np.zeros(len(pois), np.int64))

    def _seed_copy_streams(self, starts) -> None:
        """Copy ``b``'s streams, keyed by the project's seed, the source and the sample (its first
        input step ``starts[b]``): a sample draws the same spikes in any batch, at any position."""
        from engine.kernels.rng import seed_state

        for key, roots in zip(("poisson", "current"), self._stream_roots):
            target = self._copy_streams[key]
            for b, start in enumerate(starts):
                for s, root in enumerate(roots):
                    seq = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (int(start),))
                    target[b, s] = seed_state(seq)

    def _build_monitors(self, packed) -> None:
        self.spike_monitors = packed.spike_monitors
        self.rate_monitors = packed.rate_monitors
        rec_ent, _flag, rate_ent = packed.mon_static[:3]
        self._rec_ents = [int(e) for e in np.flatnonzero(rec_ent)]
        self._rate_ents = [int(e) for e in rate_ent]
        # state monitors: one probe per (monitor, variable): a row of a group array and neuron indices
        self._probes = []
        self.state_monitors = []
        for mon, entries in packed.state_monitors:
            pop = self.plan.population(mon.target)
            slot = self.slots[pop.name]
            idx = np.arange(pop.size) if mon.indices is None else mon.indices
            probes = []
            for var, _first, _n in entries:
                g, kind, row = packed._var_address(pop, var)
                probes.append((var, g, kind, row, self._t(idx + slot.start, torch.int64)))
            self.state_monitors.append((mon, probes))

    # ------------------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self._k

    def warmup(self) -> None:
        """Compile the host-side source kernels (on empty tables: no draw, no state change) and touch
        the device once, so that neither lands in the first chunk."""
        def empty(a):
            return a[:0]

        if self._pois[0].size:
            netk.poisson_step(0, *[empty(a) for a in self._pois], self.ent_off, self._ent_cnt, self._spk)
        if self._cur[0].size:
            netk.current_step(0, self.dt, *[empty(a) for a in self._cur], *self._iext_rows(0))
        if self.device.type == "cuda":
            torch.zeros(1, device=self.device).sum().item()

    def run_steps(self, n: int) -> ChunkResult:
        if self.B > 1:
            raise SimulationError(f"this torch backend runs a batch of {self.B} samples: use run_samples(starts, "
                                  "n_steps), or build it with batch 1")
        return self._run(np.array([self._k], np.int64), n)[0]

    def run_samples(self, starts, n_steps: int) -> list[ChunkResult]:
        """Present B samples at once: every copy starts from the state the backend was built with,
        reset as :meth:`reset_sample_state` does (weights: those last set by
        :meth:`set_projection_weights`, learned per copy when the plan is plastic; at batch 1 on the
        CPU the host rule kernels learn in place, so the weights carry from call to call), and copy
        ``b`` reads the inputs of steps ``starts[b] .. starts[b] + n_steps - 1``.

        Returns one :class:`ChunkResult` per copy, on the steps of its inputs (state monitors sample
        each copy on the grid of its own input steps).
        """
        starts = np.asarray(starts, np.int64).reshape(-1)
        if starts.size != self.B:
            raise SimulationError(f"run_samples needs one start step per batch element: {self.B}, got {starts.size}")
        self.reset_sample_state(self._initial)
        if self.B > 1:
            self._seed_copy_streams(starts)
        if self._batch_weight is not None and self._batch_weight.data_ptr() != self._weight.data_ptr():
            self._batch_weight.copy_(self._weight.expand_as(self._batch_weight))
        try:
            return self._run(starts, n_steps)
        except torch.cuda.OutOfMemoryError:
            raise self._out_of_memory() from None

    def _out_of_memory(self) -> SimulationError:
        """A GPU out-of-memory as an error naming the batch size that would fit."""
        free, total = torch.cuda.mem_get_info(self.device) if self.device.type == "cuda" else (0, 0)
        per_copy, shared = batch_memory(self.plan, self.dtype, plastic=any(p.rules for p in self.plan.projections))
        torch.cuda.empty_cache()
        return SimulationError(out_of_memory_message(self.B, str(self.device), free, total, per_copy, shared))

    def _run(self, src0: np.ndarray, n: int) -> list[ChunkResult]:
        n = int(n)
        if n < 0:
            raise SimulationError("cannot run a negative number of steps")
        rate_buf = np.zeros((n, len(self._rate_ents), self.B), np.int32)
        rec = {e: ([], []) for e in self._rec_ents}
        samples = {mon.name: {var: [] for var, *_ in probes} for mon, probes in self.state_monitors}
        sample_steps = {mon.name: [] for mon, _ in self.state_monitors}
        threads_before = torch.get_num_threads()
        if self.device.type == "cpu" and threads_before != self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._run_steps(src0, n, rate_buf, rec, samples, sample_steps)
        finally:
            if torch.get_num_threads() != threads_before:
                torch.set_num_threads(threads_before)
        return self._chunk_results(src0, n, rate_buf, rec, samples, sample_steps)

    def _run_steps(self, src0, n, rate_buf, rec, samples, sample_steps) -> None:
        """Steps ``self._k ..`` of the clock (ring rows, rule traces); copy ``b`` reads its inputs at
        ``src0[b] + t`` (at batch 1, ``src0[0]`` is the clock)."""
        k0 = self._k
        sizes = {e: int(self.entity_sizes[e]) for e in set(self._rate_ents)}
        with torch.no_grad():
            for t in range(n):
                k = k0 + t
                ks = src0 + t
                spikes = self._detect(ks)
                for e in self._rec_ents:
                    s = spikes.get(e)
                    if s is not None and s.numel():
                        rec[e][0].append(torch.full_like(s, t))
                        rec[e][1].append(s)
                for m, e in enumerate(self._rate_ents):
                    s = spikes.get(e)
                    if s is None or not s.numel():
                        continue
                    if self.B == 1:
                        rate_buf[t, m, 0] = s.numel()
                    else:
                        rate_buf[t, m] = torch.bincount(s // sizes[e], minlength=self.B).cpu().numpy()
                for mon, probes in self.state_monitors:
                    due = ks % mon.every == 0  # each copy samples on the grid of its own input steps
                    if due.any():
                        sample_steps[mon.name].append((t, due))
                        for var, g, kind, row, idx in probes:
                            grp = self.groups[g]
                            src = grp.state if kind == _PROBE_STATE else grp.chan
                            samples[mon.name][var].append(src[row].index_select(-1, idx))
                self._propagate(k % self.L, spikes)
                self._currents_step(ks)
                self._k = k + 1
                self._update(k % self.L)
                if self._rules is not None:
                    self._rules.step(k, spikes, self._batch_weight)
                    if self._theta:
                        self._rules.threshold_step(spikes, self._theta, self._p_theta)
                elif self._plastic:
                    self._plasticity(k, spikes)

    def _chunk_results(self, src0, n, rate_buf, rec, samples, sample_steps) -> list[ChunkResult]:
        """One chunk per batch element, on its own input steps."""
        results = [ChunkResult(int(k), int(k) + n, self.dt) for k in src0]
        for mon, e in self.spike_monitors:
            steps_l, idx_l = rec[e]
            if steps_l:
                steps = torch.cat(steps_l).cpu().numpy().astype(np.int64)
                flat = torch.cat(idx_l).cpu().numpy()
            else:
                steps, flat = np.zeros(0, np.int64), np.zeros(0, np.int64)
            size = int(self.entity_sizes[e])
            if self.B > 1:  # recorded step by step, copy by copy: regroup copy by copy, steps in order
                owner = flat // size
                order = np.argsort(owner, kind="stable")
                bounds = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=self.B))])
                steps, flat = steps[order], flat[order]
            else:
                bounds = np.array([0, flat.size])
            for b, result in enumerate(results):
                mine = slice(int(bounds[b]), int(bounds[b + 1]))
                local = (flat[mine] % size).astype(np.int32)
                at = (steps[mine] + src0[b]).astype(np.int32)
                if mon.indices is not None:
                    keep = np.isin(local, mon.indices)
                    at, local = at[keep], local[keep]
                result.spikes[mon.name] = (at, local)
        for mon, m in self.rate_monitors:
            for b, result in enumerate(results):
                result.rates[mon.name] = rate_buf[:, m, b].copy()
        for mon, probes in self.state_monitors:
            taken = sample_steps[mon.name]
            steps = np.array([t for t, _ in taken], np.int64)
            due = np.array([d for _, d in taken], bool).reshape(len(taken), self.B)
            stacked = {var: torch.stack(samples[mon.name][var]).cpu().numpy() if taken else None
                       for var, *_ in probes}
            for b, result in enumerate(results):
                out = {}
                for var, _g, _kind, _row, idx in probes:
                    values = (stacked[var][due[:, b], b] if taken else np.zeros((0, int(idx.numel())), self.dtype))
                    out[var] = (steps[due[:, b]] + src0[b], values)
                result.states[mon.name] = out
        return results

    # -- (1)-(2) threshold, reset, sources ------------------------------------------------------
    # Spikes of entity e travel as flat indices ``b * size_e + local`` (ascending: batch element, then
    # neuron); at batch 1 that is the local index itself.
    def _split(self, grp: _Group, flat: torch.Tensor, spikes: dict) -> None:
        """Hand the group's spiking neurons (ascending flat indices ``b * n + i`` over the group) to
        their populations as flat indices over each population."""
        if len(grp.starts) == 1:
            start = grp.starts[0]
            if not start or self.B == 1:
                spikes[grp.ents[0]] = flat - start if start else flat
                return
        if self.B == 1:
            bounds = torch.searchsorted(flat, grp.stops_t).tolist()
            lo = 0
            for p, hi in enumerate(bounds):
                spikes[grp.ents[p]] = flat[lo:hi] - grp.starts[p]
                lo = hi
            return
        b, i = flat // grp.n, flat % grp.n
        for start, stop, e in zip(grp.starts, grp.stops, grp.ents):
            mine = (i >= start) & (i < stop)
            spikes[e] = b[mine] * (stop - start) + (i[mine] - start)

    def _detect(self, ks) -> dict:
        """Threshold and reset of every group, then the sources' spikes; batch element ``b`` reads
        the inputs of step ``ks[b]``."""
        spikes: dict[int, torch.Tensor] = {}
        for g, grp in enumerate(self.groups):
            if grp.n == 0:
                continue
            prm, S, P = grp.prm, grp.S, grp.P
            flat_state = grp.state.view(grp.state.shape[0], -1)
            if g == _GROUP_IZH:
                flat = torch.nonzero((S[nk.IZH_V] >= P[nk.IZH_VPEAK]).view(-1)).view(-1)
                if flat.numel():
                    i = flat % grp.n if self.B > 1 else flat
                    flat_state[nk.IZH_V, flat] = prm[nk.IZH_C, i]
                    flat_state[nk.IZH_U, flat] += prm[nk.IZH_D, i]
            else:
                V = nk.LIF_V if g == _GROUP_LIF else nk.COBA_V
                vth = nk.LIF_VTH if g == _GROUP_LIF else nk.COBA_VTH
                th = P[vth] + S[nk.LIF_THETA if g == _GROUP_LIF else nk.COBA_THETA] if grp.adaptive else P[vth]
                flat = torch.nonzero(((S[V] >= th) & (grp.ref == 0)).view(-1)).view(-1)
                if flat.numel():
                    i = flat % grp.n if self.B > 1 else flat
                    flat_state[V, flat] = prm[nk.LIF_VRESET if g == _GROUP_LIF else nk.COBA_VRESET, i]
                    grp.ref.view(-1)[flat] = grp.nref[i]
                    if grp.adaptive:
                        if g == _GROUP_LIF:
                            flat_state[nk.LIF_THETA, flat] += prm[nk.LIF_DTHETA, i]
                            flat_state[nk.LIF_W, flat] += prm[nk.LIF_BW, i]
                        else:
                            flat_state[nk.COBA_THETA, flat] += prm[nk.COBA_DTHETA, i]
            self._split(grp, flat, spikes)
        if self._pois[0].size and self.B == 1:
            netk.poisson_step(int(ks[0]), *self._pois, self.ent_off, self._ent_cnt, self._spk)
            for e in self._pois[0]:
                off, cnt = int(self.ent_off[e]), int(self._ent_cnt[e])
                spikes[int(e)] = torch.from_numpy(self._spk[off:off + cnt].astype(np.int64)).to(self.device)
        elif self._pois[0].size:
            copies = self._copy_streams
            n = _poisson_copies(np.asarray(ks, np.int64), *self._pois[:5], copies["poisson"], *self._pois[6:8],
                                self.ent_off, copies["ent_cnt"], copies["spk"], copies["sizes"], copies["flat"],
                                copies["counts"])
            flat = torch.from_numpy(copies["flat"][:n].copy()).to(self.device)
            lo = 0
            for e, cnt in zip(self._pois[0], copies["counts"]):
                spikes[int(e)] = flat[lo:lo + int(cnt)]
                lo += int(cnt)
        for src in self._trains:
            spikes[src["ent"]] = self._train_spikes(src, ks)
        return spikes

    def _train_spikes(self, src: dict, ks) -> torch.Tensor:
        """A spike train's spikes at step ``ks[b]`` for every batch element ``b``, as flat indices."""
        steps = src["steps"]
        if self.B == 1:
            lo, hi = np.searchsorted(steps, (ks[0], ks[0] + 1))
            return src["idx"][int(lo):int(hi)]
        if "ptr" not in src:  # where each step's spikes begin
            last = int(steps[-1]) + 1 if steps.size else 0
            src["ptr"] = np.searchsorted(steps, np.arange(last + 1))
        ptr = src["ptr"]
        inside = np.minimum(ks, ptr.size - 1)
        lo = ptr[inside]
        counts = ptr[np.minimum(ks + 1, ptr.size - 1)] - lo
        total = int(counts.sum())
        if total == 0:
            return src["idx"][:0]
        first = np.cumsum(counts) - counts
        where = np.repeat(lo - first, counts) + np.arange(total)
        batch = np.repeat(np.arange(self.B, dtype=np.int64) * src["size"], counts)
        where_t = torch.from_numpy(where).to(self.device)
        return src["idx"][where_t] + torch.from_numpy(batch).to(self.device)

    # -- (3) propagation ------------------------------------------------------------------------
    def _propagate(self, kk: int, spikes: dict) -> None:
        """``ring[(k + d - 1) mod L, b, column] += w`` for every synapse of every spike, in numba's
        order within each batch element."""
        if self.host_loops:
            self._propagate_on_host(kk, spikes)
            return
        rows, batch = [], []
        for p, e in enumerate(self._proj_pre_ent):
            s = spikes.get(e)
            if s is not None and s.numel():
                if self.B == 1:
                    rows.append(s + self._proj_row_off[p])
                else:
                    size = int(self.entity_sizes[e])
                    rows.append(s % size + self._proj_row_off[p])
                    batch.append(s // size)
        if not rows:
            return
        rows = rows[0] if len(rows) == 1 else torch.cat(rows)
        starts = self._indptr[rows]
        counts = self._indptr[rows + 1] - starts
        total = int(counts.sum())
        if total == 0:
            return
        # synapse ids row after row: start of its row + position inside it
        first = torch.cumsum(counts, 0) - counts
        syn = torch.repeat_interleave(starts - first, counts, output_size=total)
        syn += torch.arange(total, device=self.device)
        size = self._ring_flat.numel()
        if self.B == 1:
            target = self._ring_off[syn] + kk * self.n_slots
            target = torch.where(target >= size, target - size, target)
            self._ring_flat.index_add_(0, target, self._weight[syn])
            return
        b = torch.repeat_interleave(batch[0] if len(batch) == 1 else torch.cat(batch), counts, output_size=total)
        # ring_off = (d - 1)·S + column: the row advances by kk, the batch element adds b·S inside it
        row_span = self.B * self.n_slots
        delay_row, column = self._ring_off[syn].div(self.n_slots, rounding_mode="floor"), self._ring_col[syn]
        delay_row += kk
        delay_row = torch.where(delay_row >= self.L, delay_row - self.L, delay_row)
        target = delay_row * row_span + b * self.n_slots + column
        w = self._weight[syn] if self._batch_weight is None else self._batch_weight.view(-1)[b * self._n_syn + syn]
        self._ring_flat.index_add_(0, target, w)

    def _propagate_on_host(self, kk: int, spikes: dict) -> None:
        """:meth:`_propagate` by a numba loop over the host arrays the tensors view (the same sums in
        the same order as the torch ops, at a fraction of their dispatch cost)."""
        parts, counts = [], self._prop_counts
        counts[:] = 0
        for p, e in enumerate(self._proj_pre_ent):
            s = spikes.get(e)
            if s is not None and s.numel():
                parts.append(s.numpy())
                counts[p] = parts[-1].size
        if not parts:
            return
        flat = parts[0] if len(parts) == 1 else np.concatenate(parts)
        _propagate_host(np.int64(kk), flat.astype(np.int64, copy=False), counts, self._prop_sizes,
                        self._host_row_off, self._host_indptr, self._host_delay, self._host_col, self._host_weight,
                        self._host_batch_weight(), self._ring_flat.numpy(), np.int64(self.L), np.int64(self.B),
                        np.int64(self.n_slots))

    def _host_batch_weight(self) -> np.ndarray:
        if self._batch_weight is None or self.B == 1:
            return self._no_batch_weight
        return self._batch_weight.view(-1).numpy()

    # -- external currents of step k ------------------------------------------------------------
    def _iext_rows(self, b: int) -> list:
        """The host arrays of batch element ``b`` the current kernel adds into (one per group)."""
        return self._iext_host if self.B == 1 else [h[b] for h in self._iext_host]

    def _currents_step(self, ks) -> None:
        """``i_ext`` from every current source, batch element ``b`` at step ``ks[b]`` (numba's kernel,
        on the host)."""
        if not self._cur[0].size:
            return
        for grp, host in zip(self.groups, self._iext_host):
            if grp.has_iext:
                host[...] = 0.0
        for b, kb in enumerate(ks):
            streams = self._cur[11] if self.B == 1 else self._copy_streams["current"][b]
            netk.current_step(int(kb), self.dt, *self._cur[:11], streams, *self._iext_rows(b))
        if self.device.type != "cpu":
            for grp, host in zip(self.groups, self._iext_host):
                if grp.has_iext:
                    grp.iext.copy_(torch.from_numpy(host).view(grp.iext.shape), non_blocking=False)

    # -- (4)-(5) neuron updates -----------------------------------------------------------------
    def _consume(self, grp: _Group, kk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel variables with the ring row's arrivals added (``x_c``); the ring cells are zeroed
        and the channels decayed to the next grid point. Returns ``(x, arrivals-free channels)``."""
        if grp.chan.shape[0] == 0:
            return grp.chan, grp.chan
        arrivals = grp.ring_rows[kk]
        x = grp.chan + arrivals
        arrivals.zero_()
        torch.mul(x, grp.P11, out=grp.chan)
        return x, grp.chan

    @staticmethod
    def _weighted_sum(A: torch.Tensor, x: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
        """``Σ_c A_c·x_c`` accumulated channel after channel (numba's order); zeros without channels."""
        if x.shape[0] == 0:
            return torch.zeros_like(like)
        acc = A[0] * x[0]
        for c in range(1, x.shape[0]):
            acc += A[c] * x[c]
        return acc

    def _update(self, kk: int) -> None:
        checks = []
        for g, grp in enumerate(self.groups):
            if grp.n == 0:
                continue
            x, _ = self._consume(grp, kk)
            if g == _GROUP_LIF:
                checks.append((g, self._lif_update(grp, x)))
            elif g == _GROUP_COBA:
                checks.append((g, self._coba_update(grp, x)))
            else:
                checks.append((g, self._izh_update(grp, x)))
        # one host sync per step: the largest magnitude of every updated variable (NaN propagates)
        peaks = [v.abs().max() for _, values in checks for _, v in values]
        if not peaks:
            return
        peak = peaks[0] if len(peaks) == 1 else torch.stack(peaks).max()
        if not float(peak) <= _BIG32:
            for g, values in checks:
                self._raise_instability(g, values)

    def _lif_update(self, grp: _Group, x) -> list:
        st, prm, n = grp.S, grp.P, grp.n
        syn = self._weighted_sum(grp.A, x, n, st[0])
        V = st[nk.LIF_V]
        el = prm[nk.LIF_EL]
        r = grp.ref
        refractory = r != 0
        if not grp.adaptive:
            free = prm[nk.LIF_P22] * (V - el) + prm[nk.LIF_DRIVE] + syn
            if grp.has_iext:
                free += prm[nk.LIF_EXT] * grp.iext
            free += el
            V.copy_(torch.where(refractory, prm[nk.LIF_VRESET], free))
            r.sub_(refractory.to(r.dtype))
            return [("V", V)]
        W, TH = st[nk.LIF_W], st[nk.LIF_THETA]
        free = prm[nk.LIF_P22] * (V - el) + prm[nk.LIF_DRIVE] + syn + prm[nk.LIF_AVW] * W
        if grp.coupled:
            syn_w = self._weighted_sum(grp.AWI, x, n, st[0])
            w_free = prm[nk.LIF_AWV] * (V - el) + prm[nk.LIF_AWW] * W + prm[nk.LIF_AW1] + syn_w
        else:
            w_free = prm[nk.LIF_AWW] * W
        if grp.has_iext:
            free += prm[nk.LIF_EXT] * grp.iext
            w_free += prm[nk.LIF_AWEXT] * grp.iext
        free += el
        vn = torch.where(refractory, prm[nk.LIF_VRESET], free)
        wn = torch.where(refractory, W * prm[nk.LIF_WREF_MUL] + prm[nk.LIF_WREF_ADD], w_free)
        r.sub_(refractory.to(r.dtype))
        V.copy_(vn)
        W.copy_(wn)
        TH.mul_(prm[nk.LIF_PTHETA])
        return [("V", V), ("w", W)]

    def _coba_update(self, grp: _Group, x) -> list:
        st, prm, n = grp.S, grp.P, grp.n
        if x.shape[0]:
            g_sum = x[0].clone()
            for c in range(1, x.shape[0]):
                g_sum += x[c]
        else:
            g_sum = torch.zeros_like(st[0])
        g_e = self._weighted_sum(grp.A, x, n, st[0])
        current = prm[nk.COBA_IE] + grp.iext if grp.has_iext else prm[nk.COBA_IE]
        # numba promotes to float64 from ``1.0 + g_sum`` on (exact for float64 state)
        up = self._up
        g_tot = 1.0 + up(g_sum)
        v_inf = up(prm[nk.COBA_EL] + prm[nk.COBA_R] * current + g_e) / g_tot
        V = st[nk.COBA_V]
        free = v_inf + (up(V) - v_inf) * self._exp(-up(prm[nk.COBA_DT_TAU]) * g_tot)
        refractory = grp.ref != 0
        V.copy_(torch.where(refractory, prm[nk.COBA_VRESET], free.to(V.dtype)))
        grp.ref.sub_(refractory.to(grp.ref.dtype))
        if grp.adaptive:
            st[nk.COBA_THETA].mul_(prm[nk.COBA_PTHETA])
        return [("V", V)]

    def _izh_update(self, grp: _Group, x) -> list:
        st, prm, n = grp.S, grp.P, grp.n
        syn = self._weighted_sum(grp.A, x, n, st[0])
        current = prm[nk.IZH_IE] + grp.iext if grp.has_iext else prm[nk.IZH_IE].clone()
        up = self._up
        current = up(current + syn)
        # numba computes in float64 (the literals are float64), storing back in the state's dtype
        v, u = up(st[nk.IZH_V]), up(st[nk.IZH_U])
        a, b = up(prm[nk.IZH_A]), up(prm[nk.IZH_B])
        dt, half = self.dt, 0.5 * self.dt
        if not grp.all_euler:
            # split2003: two half steps in v (u frozen), then u from the new v
            vs = v + half * ((0.04 * v + 5.0) * v + 140.0 - u + current)
            vs = vs + half * ((0.04 * vs + 5.0) * vs + 140.0 - u + current)
            us = u + dt * a * (b * vs - u)
        if grp.any_euler:
            # euler: both from the old state
            dv = (0.04 * v + 5.0) * v + 140.0 - u + current
            du = a * (b * v - u)
            ve = v + dt * dv
            ue = u + dt * du
        if grp.all_euler:
            vs, us = ve, ue
        elif grp.any_euler:
            vs, us = torch.where(grp.euler, ve, vs), torch.where(grp.euler, ue, us)
        st[nk.IZH_V].copy_(vs)
        st[nk.IZH_U].copy_(us)
        return [("v", st[nk.IZH_V]), ("u", st[nk.IZH_U])]

    def _exp(self, x: torch.Tensor) -> torch.Tensor:
        """``exp`` as numba's kernels evaluate it: on the CPU through a numba loop over ``math.exp``
        (torch's vectorised exp differs from it in the last bit for ~2 % of the arguments), on a GPU
        torch's own."""
        if x.device.type != "cpu":
            return torch.exp(x)
        x = x.contiguous()
        _exp_inplace(x.numpy().reshape(-1))
        return x

    def _raise_instability(self, g: int, values) -> None:
        k = self._k
        for var, v in values:
            bad = torch.nonzero(~(v.abs() <= _BIG32).view(-1)).view(-1)
            if bad.numel():
                from engine.backends.numba_backend import NumbaBackend

                raise NumbaBackend._instability(self, g, int(bad[0]) % self.groups[g].n, var, k)

    # ------------------------------------------------------------------------------------------
    # state access (at batch 1 a population's variable has shape (n,), in a batch (B, n))
    # ------------------------------------------------------------------------------------------
    def _slot(self, population: str):
        if population not in self.slots:
            raise SimulationError(f"no population named {population!r}")
        return self.slots[population]

    def _unbatch(self, t: torch.Tensor) -> torch.Tensor:
        return t[0] if self.B == 1 else t

    def _view(self, population: str, variable: str) -> torch.Tensor:
        from engine.backends.numba_backend import NumbaBackend

        slot = self._slot(population)
        g, kind, row = NumbaBackend._var_address(self, slot.pop, variable)
        grp = self.groups[g]
        return self._unbatch((grp.state if kind == _PROBE_STATE else grp.chan)[row, :, slot.start:slot.stop])

    def get_state(self, population: str, variable: str) -> np.ndarray:
        if variable == "refractory":
            slot = self._slot(population)
            if slot.group == _GROUP_IZH:
                return np.zeros(slot.pop.size if self.B == 1 else (self.B, slot.pop.size), np.int32)
            return self._unbatch(self.groups[slot.group].ref[:, slot.start:slot.stop]).cpu().numpy().copy()
        return self._view(population, variable).cpu().numpy().copy()

    def set_state(self, population: str, variable: str, values) -> None:
        view = self._view(population, variable)
        arr = np.broadcast_to(np.asarray(values, self.dtype), tuple(view.shape))
        view.copy_(torch.from_numpy(np.array(arr, copy=True)).to(view.device))
        if self.B > 1:  # the state a batch starts from
            self._initial = self.state_arrays()

    def projection_weights(self, name: str) -> np.ndarray:
        """Weights of projection ``name`` in its CSR order (a copy); in a batch, the weights every
        copy starts from."""
        s0, s1 = self._synapses_of(name)
        return self._weight[s0:s1].cpu().numpy().copy()

    def batch_projection_weights(self, name: str) -> np.ndarray:
        """``(B, n_synapses)``: each copy's weights of projection ``name`` after its last sample (the
        start weights for every copy when the plan is not plastic)."""
        s0, s1 = self._synapses_of(name)
        w = self._weight.expand(self.B, -1) if self._batch_weight is None else self._batch_weight
        return w[:, s0:s1].cpu().numpy().copy()

    def set_projection_weights(self, name: str, weights) -> None:
        """Overwrite the weights of projection ``name`` (CSR order); in a batch, those every copy
        starts its next sample from."""
        s0, s1 = self._synapses_of(name)
        weights = np.asarray(weights)
        if weights.shape != (s1 - s0,):
            raise SimulationError(f"projection {name!r} has {s1 - s0} synapses; got weights of shape {weights.shape}")
        self._weight[s0:s1].copy_(torch.from_numpy(weights.astype(self.dtype)).to(self.device))

    def _synapses_of(self, name: str) -> tuple[int, int]:
        for p, proj in enumerate(self.plan.projections):
            if proj.name == name:
                return self._proj_syn[p]
        raise SimulationError(f"no projection named {name!r}")

    def _dynamic_core(self) -> dict:
        """Name -> live tensor of the neurons' and the ring's state (names as the numba backend's;
        a batch axis after the variable axis)."""
        lif, coba, izh = self.groups
        return {"lif_state": lif.state, "lif_chan": lif.chan, "lif_ref": lif.ref,
                "coba_state": coba.state, "coba_chan": coba.chan, "coba_ref": coba.ref,
                "izh_state": izh.state, "izh_chan": izh.chan, "ring": self.ring}

    def _dynamic(self) -> dict:
        """Name -> live tensor of every piece of dynamic state."""
        extra = {} if self._rules is None else {f"rules_{k}": v for k, v in self._rules.state_tensors().items()}
        if self._batch_weight is not None:
            extra["batch_weight"] = self._batch_weight
        return {**self._dynamic_core(),
                "poisson_rng": torch.from_numpy(self._pois[5]), "current_rng": torch.from_numpy(self._cur[11]),
                **(self._plastic_state() if self._rules is None else {}), **extra}

    def _plastic_state(self) -> dict:
        """The numba backend's plastic state arrays (host memory, shared with the kernels)."""
        if not getattr(self, "_plastic", False):
            return {}
        live = self._packed._dynamic()
        return {key: torch.from_numpy(np.ascontiguousarray(live[key])) for key in live
                if key not in ("lif_state", "lif_chan", "lif_ref", "coba_state", "coba_chan", "coba_ref", "izh_state",
                               "izh_chan", "ring", "poisson_rng", "current_rng", "train_pos")}


    # ------------------------------------------------------------------------------------------
    # sample-by-sample presentation (engine.training): batch 1 one after another; batches by run_samples
    # ------------------------------------------------------------------------------------------
    supports_training_phases = True

    def reset_sample_state(self, initial: dict) -> None:
        """Put the per-sample state back to ``initial`` (a :meth:`state_arrays` taken after build),
        keeping what the numba backend keeps: weights, random streams, STDP traces, the adaptive
        threshold theta (row 1 of the LIF-family and conductance-LIF state)."""
        from engine.backends.numba_backend import NumbaBackend

        core = self._dynamic_core()
        for key, live in core.items():
            saved = torch.from_numpy(np.ascontiguousarray(initial[key])).to(device=live.device, dtype=live.dtype)
            if key in ("lif_state", "coba_state") and live.shape[0] > 1:
                theta = live[1].clone()
                live.copy_(saved)
                live[1] = theta
            else:
                live.copy_(saved)
        if self._rules is not None:
            self._rules.reset()
        elif self._plastic:
            live = self._packed._dynamic()
            for key in NumbaBackend.SAMPLE_STATE:
                if key not in core:
                    np.copyto(live[key], initial[key])

    def set_learning_rate_scale(self, scale, amplitudes: bool = True) -> None:
        """Scale every rule's learning rates by ``scale`` relative to their built values; in a
        batch (B > 1), ``scale`` may hold one value per copy (:meth:`BatchedRules.set_learning_rate_scale`)."""
        if self._rules is not None:
            self._rules.set_learning_rate_scale(scale, amplitudes)
        elif self._plastic:
            self._packed.set_learning_rate_scale(scale, amplitudes)

    def _fingerprint(self) -> str:
        return json.dumps({
            "backend": "torch", "dt": self.dt, "dtype": str(self.dtype),
            "entities": self.entity_names, "sizes": [int(x) for x in self.entity_sizes],
            "ring": list(self.ring.shape), "n_synapses": int(self._weight.numel()),
        }, sort_keys=True)

    def state_arrays(self) -> dict:
        arrays = {k: v.cpu().numpy().copy() for k, v in self._dynamic().items()}
        arrays["step"] = np.array(self._k, np.int64)
        arrays["fingerprint"] = np.array(self._fingerprint())
        return arrays

    def load_state_arrays(self, arrays: dict) -> None:
        fp = str(arrays.get("fingerprint", ""))
        if fp != self._fingerprint():
            try:
                saved = json.loads(fp)
            except ValueError:
                saved = {}
            if saved.get("backend") != "torch":
                raise SimulationError("the saved state was written by another backend (numba); "
                                      "restore it with that backend")
            raise SimulationError("the saved state belongs to a different network, time step or dtype")
        for key, target in self._dynamic().items():
            src = np.asarray(arrays[key])
            if tuple(src.shape) != tuple(target.shape):
                raise SimulationError(f"saved state {key!r} has shape {src.shape}, expected {tuple(target.shape)}")
            target.copy_(torch.from_numpy(np.ascontiguousarray(src)).to(device=target.device, dtype=target.dtype))
        self._k = int(arrays["step"])
