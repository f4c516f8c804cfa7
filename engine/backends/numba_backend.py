"""Numba CPU backend: packs a :class:`SimulationPlan` into flat arrays and runs the fused step loop.

Layout built here (see :mod:`engine.kernels.network` for how the kernels read it):

* populations are packed per model family into three groups: LIF family (``lif``, ``alif``),
  conductance LIF (``cobalif``) and Izhikevich; each group is one structure of arrays;
* spike emitters (populations, then spike sources) get consecutive global id ranges (*entities*);
* the ring buffer has one column per (population, receptor channel, neuron), channel-major per group;
* all projections share one CSR: projection ``p`` occupies rows ``row_off[p] ..`` and a contiguous
  synapse range, so a projection's synapse arrays stay slices of the shared ones (and a plan with a
  single projection is used without copying when dtypes match).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from engine.backends.base import Backend, ChunkResult
from engine.errors import NumericalInstabilityError, SimulationError
from engine.kernels import GENERAL_KERNEL_ENV
from engine.kernels import neurons as nk
from engine.kernels import network as netk
from engine.kernels import plasticity as pk
from engine.kernels.propagators import decay, lif_coefficients
from engine.kernels.rng import seed_state
from engine.plan import (CURRENT_WAVEFORMS, CurrentSourcePlan, PoissonSourcePlan, SimulationPlan,
                         SpikeTrainSourcePlan, astrocyte_variables, canonical_var, delay_dtype, source_stream_seed)

_FAMILY = {"lif": netk.GROUP_LIF, "alif": netk.GROUP_LIF, "cobalif": netk.GROUP_COBA, "izhikevich": netk.GROUP_IZH}
_GROUP_VARS = {netk.GROUP_LIF: nk.LIF_VAR_NAMES, netk.GROUP_COBA: nk.COBA_VAR_NAMES, netk.GROUP_IZH: nk.IZH_VAR_NAMES}


class _PopSlot:
    """Where a population lives inside its group."""

    def __init__(self, pop, group, start, entity):
        self.pop = pop
        self.group = group
        self.start = start
        self.stop = start + pop.size
        self.entity = entity


def _i64(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.int64).reshape(-1))


def _share(projs, attr: str, dtype, keep=None) -> np.ndarray:
    """Concatenate the per-synapse array ``attr`` of all projections into one shared array.

    Each projection whose array already has the shared dtype then holds a view of its part of the
    shared array instead of its own copy (the values are identical; connectivity is read-only), so
    its copy is freed as soon as its part is copied: the peak is the plan plus one projection's
    array, not the plan twice. ``np.empty`` pages are only committed when written. Projections
    flagged in ``keep`` keep their own array (plastic weights change; the plan keeps the initial ones).
    """
    nsyn = sum(p.n_synapses for p in projs)
    shared = np.empty(nsyn, dtype)
    s = 0
    for q, p in enumerate(projs):
        n = p.n_synapses
        shared[s:s + n] = getattr(p, attr)
        if getattr(p, attr).dtype == shared.dtype and not (keep and keep[q]):
            setattr(p, attr, shared[s:s + n])
        s += n
    return shared


class NumbaBackend(Backend):
    """CPU backend built on :func:`engine.kernels.network.run_chunk`.

    Parameters
    ----------
    plan : SimulationPlan
    dtype : {"float32", "float64"}, optional
    parallel : bool, optional
        Run neuron updates of large groups (>= ``PARALLEL_MIN_NEURONS``) in parallel blocks; default
        automatic (on when numba has more than one thread).
    uniform : bool
        Use the fused fast path for populations with identical parameters (default); False forces
        the general per-neuron path (used by tests: both give bit-identical results).
    lazy_inputs : bool
        Encode data-set inputs chunk by chunk, as a run reaches them (default); False packs all
        their spikes at build time (the torch backend reads the packed tables once).
    """

    name = "numba"

    def __init__(self, plan: SimulationPlan, dtype: str | None = None, parallel: bool | None = None,
                 uniform: bool = True, lazy_inputs: bool = True):
        super().__init__(plan, dtype)
        self._uniform = uniform
        self._lazy_inputs = lazy_inputs
        if self.dtype not in (np.float32, np.float64):
            raise SimulationError(f"dtype must be float32 or float64, not {self.dtype}")
        self.dt = float(plan.dt)
        self._parallel = parallel
        self._k = 0
        self._build()

    # ------------------------------------------------------------------------------------------
    # build
    # ------------------------------------------------------------------------------------------
    def _nblocks(self, n: int) -> int:
        import numba

        threads = numba.get_num_threads()
        auto = threads > 1 and n >= nk.PARALLEL_MIN_NEURONS
        use = auto if self._parallel is None else (self._parallel and threads > 1 and n > 0)
        return 4 * threads if use else 0

    def _build(self) -> None:
        plan = self.plan
        dtype = self.dtype
        self.slots: dict[str, _PopSlot] = {}
        groups = {g: [p for p in plan.populations if _FAMILY[p.model] == g] for g in (0, 1, 2)}
        # entities: populations grouped by family, then spike sources
        entity_sizes, self.entity_names = [], []
        for g in (0, 1, 2):
            start = 0
            for pop in groups[g]:
                self.slots[pop.name] = _PopSlot(pop, g, start, len(entity_sizes))
                entity_sizes.append(pop.size)
                self.entity_names.append(pop.name)
                start += pop.size
        spike_sources = [s for s in plan.sources if s.emits_spikes]
        self.source_entity = {}
        for src in spike_sources:
            self.source_entity[src.name] = len(entity_sizes)
            entity_sizes.append(int(src.size))
            self.entity_names.append(src.name)
        self.entity_sizes = np.asarray(entity_sizes, np.int64)
        self.ent_off = np.zeros(len(entity_sizes) + 1, np.int64)
        np.cumsum(self.entity_sizes, out=self.ent_off[1:])
        self.ent_cnt = np.zeros(max(len(entity_sizes), 1), np.int64)
        self.spk = np.zeros(max(int(self.ent_off[-1]), 1), np.int32)

        n_group = {g: sum(p.size for p in groups[g]) for g in (0, 1, 2)}
        n_chan = {g: max([len(p.receptors) for p in groups[g]] + [0]) for g in (0, 1, 2)}
        self.group_base = {}
        base = 0
        for g in (0, 1, 2):
            self.group_base[g] = base
            base += n_chan[g] * n_group[g]
        self.n_slots = base
        self.L = int(plan.max_delay)
        self.ring = np.zeros((self.L, self.n_slots), dtype)

        self.lif = self._build_lif(groups[0], n_group[0], n_chan[0])
        self.coba = self._build_coba(groups[1], n_group[1], n_chan[1])
        self.izh = self._build_izh(groups[2], n_group[2], n_chan[2])
        self._build_projections()
        self._build_sources()
        self._build_plasticity()
        self._build_monitors()
        self.kernel_features = netk.chunk_features(self.lif, self.coba, self.izh, self.net, self.pois, self.trains,
                                                   self.cur, self.mon_static[3], self.plast, self.rules)
        general = os.environ.get(GENERAL_KERNEL_ENV, "") not in ("", "0")
        self._run_chunk = netk.chunk_kernel(netk.ChunkFeatures() if general else self.kernel_features)

    def _pop_ranges(self, pops):
        starts = _i64([self.slots[p.name].start for p in pops])
        stops = _i64([self.slots[p.name].stop for p in pops])
        ents = _i64([self.slots[p.name].entity for p in pops])
        return starts, stops, ents

    def _refractory_steps(self, pop) -> np.ndarray:
        return np.rint(pop.param("t_ref") / self.dt).astype(np.int32)

    def _initial_refractory(self, pop) -> np.ndarray:
        return np.broadcast_to(np.asarray(pop.initial_state.get("refractory", 0), np.int32), (pop.size,))

    def _has_iext(self, g: int) -> bool:
        return any(isinstance(s, CurrentSourcePlan) and _FAMILY[self.plan.population(s.target).model] == g
                   for s in self.plan.sources)

    def _build_lif(self, pops, n, C):
        dt, dtype = self.dt, self.dtype
        state = np.zeros((nk.LIF_STATE_ROWS, n))
        chan = np.zeros((C, n))
        prm = np.zeros((nk.LIF_PARAM_ROWS, n))
        prm[nk.LIF_AWW] = 1.0
        prm[nk.LIF_PTHETA] = 1.0
        prm[nk.LIF_WREF_MUL] = 1.0
        nref = np.zeros(n, np.int32)
        ref = np.zeros(n, np.int32)
        P11, P21, AWI = np.zeros((C, n)), np.zeros((C, n)), np.zeros((C, n))
        adaptive = coupled = False
        for pop in pops:
            sl = slice(self.slots[pop.name].start, self.slots[pop.name].stop)
            kinds = [r.kind for r in pop.receptors]
            taus = [np.broadcast_to(np.asarray(r.tau, np.float64), (pop.size,)) for r in pop.receptors]
            extra = {}
            if pop.model == "alif":
                adaptive = True
                extra = dict(a_w=pop.param("a_w"), tau_w=pop.param("tau_w"), V_reset=pop.param("V_reset"))
                coupled = coupled or bool(np.any(pop.param("a_w") != 0.0))
            co = lif_coefficients(dt, pop.param("tau_m"), pop.param("E_L"), pop.param("R"), pop.param("I_e"),
                                  kinds, taus, **extra)
            prm[nk.LIF_EL, sl] = pop.param("E_L")
            prm[nk.LIF_VRESET, sl] = pop.param("V_reset")
            prm[nk.LIF_VTH, sl] = pop.param("V_th")
            for row, key in ((nk.LIF_P22, "P22"), (nk.LIF_DRIVE, "drive"), (nk.LIF_EXT, "ext"), (nk.LIF_AVW, "avw"),
                             (nk.LIF_AWV, "awv"), (nk.LIF_AWW, "aww"), (nk.LIF_AW1, "aw1"), (nk.LIF_AWEXT, "awext"),
                             (nk.LIF_WREF_MUL, "wref_mul"), (nk.LIF_WREF_ADD, "wref_add")):
                prm[row, sl] = co[key]
            if pop.model == "alif":
                prm[nk.LIF_PTHETA, sl] = decay(dt, pop.param("tau_theta"))
                prm[nk.LIF_DTHETA, sl] = pop.param("delta_theta")
                prm[nk.LIF_BW, sl] = pop.param("b_w")
                state[nk.LIF_THETA, sl] = pop.initial("theta")
                state[nk.LIF_W, sl] = pop.initial("w")
            Cp = len(kinds)
            P11[:Cp, sl], P21[:Cp, sl], AWI[:Cp, sl] = co["P11"], co["P21"], co["awi"]
            state[nk.LIF_V, sl] = pop.initial("V")
            for c, rec in enumerate(pop.receptors):
                chan[c, sl] = pop.initial("I_" + rec.name)
            nref[sl] = self._refractory_steps(pop)
            ref[sl] = self._initial_refractory(pop)
        starts, stops, ents = self._pop_ranges(pops)
        c = np.ascontiguousarray
        return [c(state, dtype), c(chan, dtype), ref, c(prm, dtype), nref, c(P11, dtype), c(P21, dtype), c(AWI, dtype),
                np.zeros(n, dtype), self._has_iext(0), starts, stops, ents, np.int64(self.group_base[0]),
                adaptive, coupled, np.int64(self._nblocks(n)), np.zeros((2, n), dtype),
                self._uniform_flags(pops, [prm, P11, P21, AWI], nref), np.zeros(n, np.int32),
                np.full(len(pops), -1, np.int64)]

    def _uniform_flags(self, pops, arrays, nref) -> np.ndarray:
        """Per population: every parameter / propagator row constant over its neurons (and the
        ``uniform`` backend option not switched off)."""
        flags = np.zeros(len(pops), np.bool_)
        if not self._uniform:
            return flags
        for p, pop in enumerate(pops):
            sl = slice(self.slots[pop.name].start, self.slots[pop.name].stop)
            if pop.size == 0:
                continue
            ok = bool(np.all(nref[sl] == nref[sl.start]))
            for arr in arrays:
                block = arr[:, sl]
                ok = ok and bool(np.all(block == block[:, :1]))
            flags[p] = ok
        return flags

    def _build_coba(self, pops, n, C):
        dt, dtype = self.dt, self.dtype
        state = np.zeros((nk.COBA_STATE_ROWS, n))
        chan = np.zeros((C, n))
        prm = np.zeros((nk.COBA_PARAM_ROWS, n))
        prm[nk.COBA_PTHETA] = 1.0
        P11, EREV = np.zeros((C, n)), np.zeros((C, n))
        nref = np.zeros(n, np.int32)
        ref = np.zeros(n, np.int32)
        adaptive = False
        for pop in pops:
            sl = slice(self.slots[pop.name].start, self.slots[pop.name].stop)
            for row, key in ((nk.COBA_EL, "E_L"), (nk.COBA_VRESET, "V_reset"), (nk.COBA_VTH, "V_th"), (nk.COBA_R, "R"),
                             (nk.COBA_IE, "I_e"), (nk.COBA_DTHETA, "delta_theta")):
                prm[row, sl] = pop.param(key)
            prm[nk.COBA_DT_TAU, sl] = dt / pop.param("tau_m")
            prm[nk.COBA_PTHETA, sl] = decay(dt, pop.param("tau_theta"))
            theta0 = pop.initial("theta")
            adaptive = adaptive or bool(np.any(pop.param("delta_theta") != 0) or np.any(theta0 != 0)
                                        or pop.threshold_rule is not None)
            state[nk.COBA_V, sl] = pop.initial("V")
            state[nk.COBA_THETA, sl] = theta0
            for c, rec in enumerate(pop.receptors):
                P11[c, sl] = decay(dt, np.broadcast_to(np.asarray(rec.tau, np.float64), (pop.size,)))
                EREV[c, sl] = rec.E_rev
                chan[c, sl] = pop.initial("g_" + rec.name)
            nref[sl] = self._refractory_steps(pop)
            ref[sl] = self._initial_refractory(pop)
        starts, stops, ents = self._pop_ranges(pops)
        c = np.ascontiguousarray
        return [c(state, dtype), c(chan, dtype), ref, c(prm, dtype), nref, c(P11, dtype), c(EREV, dtype),
                np.zeros(n, dtype), self._has_iext(1), starts, stops, ents, np.int64(self.group_base[1]), adaptive,
                np.int64(self._nblocks(n)), np.zeros((2, n), dtype)]

    def _build_izh(self, pops, n, C):
        dt, dtype = self.dt, self.dtype
        state = np.zeros((nk.IZH_STATE_ROWS, n))
        chan = np.zeros((C, n))
        prm = np.zeros((nk.IZH_PARAM_ROWS, n))
        scheme = np.zeros(n, np.int8)
        P11, CIN = np.zeros((C, n)), np.zeros((C, n))
        for pop in pops:
            sl = slice(self.slots[pop.name].start, self.slots[pop.name].stop)
            for row, key in ((nk.IZH_A, "a"), (nk.IZH_B, "b"), (nk.IZH_C, "c"), (nk.IZH_D, "d"), (nk.IZH_VPEAK, "v_peak"),
                             (nk.IZH_IE, "I_e")):
                prm[row, sl] = pop.param(key)
            scheme[sl] = nk.IZH_EULER if pop.scheme == "euler" else nk.IZH_SPLIT2003
            state[nk.IZH_V, sl] = pop.initial("v")
            state[nk.IZH_U, sl] = pop.initial("u")
            for c, rec in enumerate(pop.receptors):
                if rec.kind == "delta":
                    P11[c, sl], CIN[c, sl] = 0.0, 1.0 / dt
                else:
                    P11[c, sl] = decay(dt, np.broadcast_to(np.asarray(rec.tau, np.float64), (pop.size,)))
                    CIN[c, sl] = 1.0
                chan[c, sl] = pop.initial("I_" + rec.name)
        starts, stops, ents = self._pop_ranges(pops)
        c = np.ascontiguousarray
        return [c(state, dtype), c(chan, dtype), c(prm, dtype), scheme, c(P11, dtype), c(CIN, dtype),
                np.zeros(n, dtype), self._has_iext(2), starts, stops, ents, np.int64(self.group_base[2]),
                np.int64(self._nblocks(n)), np.zeros((1, n), dtype)]

    def _entity_of(self, name: str) -> int:
        if name in self.slots:
            return self.slots[name].entity
        if name in self.source_entity:
            return self.source_entity[name]
        raise SimulationError(f"no population or spike source named {name!r}")

    def _build_projections(self) -> None:
        plan, dtype = self.plan, self.dtype
        projs = plan.projections
        d_type = delay_dtype(self.L)
        rows = sum(p.n_pre for p in projs)
        pre_ent, row_off, base = [], [], []
        if len(projs) == 1:
            p = projs[0]
            indptr = p.indptr
            post = p.indices
            weight = np.ascontiguousarray(p.weights, dtype=dtype)
            if p.plastic and np.shares_memory(weight, p.weights):
                weight = weight.copy()  # the plan keeps the initial weights
            delay = np.ascontiguousarray(p.delays, dtype=d_type)
        else:
            indptr = np.zeros(rows + 1, np.int64)
            r = s = 0
            for p in projs:
                indptr[r:r + p.n_pre + 1] = p.indptr + s
                r += p.n_pre
                s += p.n_synapses
            post = _share(projs, "indices", np.int32)
            weight = _share([p for p in projs], "weights", dtype, keep=[p.plastic for p in projs])
            delay = _share(projs, "delays", d_type)
        r = s0 = 0
        proj_delay, proj_wuni = [], []
        for p in projs:
            d = delay[s0:s0 + p.n_synapses]
            w = weight[s0:s0 + p.n_synapses]
            s0 += p.n_synapses
            # fast paths of the propagation kernel: one delay / one weight (bit pattern) per projection
            proj_delay.append(int(d[0]) if d.size and bool(np.all(d == d[0])) else 0)
            w_bits = w.view(np.uint32 if w.dtype.itemsize == 4 else np.uint64)
            proj_wuni.append(bool(w.size and np.all(w_bits == w_bits[0])) and not p.plastic)
            slot = self.slots[p.post]
            c = slot.pop.receptor_index(p.receptor)
            g = slot.group
            n_g = self._group_size(g)
            pre_ent.append(self._entity_of(p.pre))
            row_off.append(r)
            base.append(self.group_base[g] + c * n_g + slot.start)
            r += p.n_pre
        self.net = [self.ring, self.ent_off, self.ent_cnt, self.spk, np.ascontiguousarray(indptr, np.int64),
                    np.ascontiguousarray(post, np.int32), weight, delay, _i64(pre_ent), _i64(row_off), _i64(base),
                    _i64(proj_delay), np.asarray(proj_wuni, np.bool_)]

    # ------------------------------------------------------------------------------------------
    # plasticity tables (see engine.kernels.plasticity)
    # ------------------------------------------------------------------------------------------
    _RULE_KIND = {"triplet": pk.K_TRIPLET, "symmetric": pk.K_SYMMETRIC, "rstdp": pk.K_RSTDP, "oja": pk.K_OJA,
                  "bcm": pk.K_BCM, "scaling_activity": pk.K_SCALE_ACTIVITY, "scaling_normalize": pk.K_SCALE_NORMALIZE}
    #: (pre traces, post traces) per kernel kind
    _TRACES = {pk.K_STDP_ADD: (1, 1), pk.K_STDP_MULT: (1, 1), pk.K_TRIPLET: (2, 2), pk.K_SYMMETRIC: (1, 1),
               pk.K_RSTDP: (1, 1), pk.K_OJA: (1, 1), pk.K_BCM: (1, 2), pk.K_SCALE_ACTIVITY: (0, 1),
               pk.K_SCALE_NORMALIZE: (0, 0)}

    def _rule_row(self, rule, kind) -> np.ndarray:
        """The ``r_prm`` row of a rule (column layout documented per kind in the kernel module)."""
        dt = self.dt
        g = rule.get
        row = np.zeros(pk.R_PARAMS)
        row[pk.C_LO], row[pk.C_HI] = max(g("w_min"), 0.0), g("w_max")

        def d(tau):
            return math.exp(-dt / tau)

        if kind in (pk.K_STDP_ADD, pk.K_STDP_MULT):
            row[2:8] = g("A_plus"), g("A_minus"), d(g("tau_plus")), d(g("tau_minus")), g("mu_plus"), g("mu_minus")
        elif kind == pk.K_TRIPLET:
            row[2:10] = (g("A2_plus"), g("A3_plus"), g("A2_minus"), g("A3_minus"), d(g("tau_plus")), d(g("tau_x")),
                         d(g("tau_minus")), d(g("tau_y")))
        elif kind == pk.K_SYMMETRIC:
            row[2:6] = g("eta_pre") * g("a"), g("eta_post") * g("a"), d(g("tau")), d(g("tau"))
        elif kind == pk.K_RSTDP:
            row[2:8] = g("A_plus"), g("A_minus"), d(g("tau_plus")), d(g("tau_minus")), d(g("tau_c")), dt
        elif kind in (pk.K_OJA, pk.K_BCM):
            n = self._interval_steps(g("interval"))
            row[2:6] = g("eta"), d(g("tau_rate")), 1000.0 / g("tau_rate"), n * dt / 1000.0
            if kind == pk.K_BCM:
                row[6:8] = g("y0"), d(g("tau_theta"))
        elif kind == pk.K_SCALE_ACTIVITY:
            n = self._interval_steps(g("interval"))
            row[2:6] = g("beta") * n * dt, g("a_target"), d(g("tau_a")), 1000.0 / g("tau_a")
        else:
            row[2] = g("target_sum")
        if kind <= pk.K_RSTDP:
            decays = (row[6], row[7], row[8], row[9]) if kind == pk.K_TRIPLET else (row[4], 1.0, row[5], 1.0)
            row[pk.C_LOG_X0:pk.C_LOG_Y1 + 1] = np.log(decays)
        return row

    def _interval_steps(self, interval_ms: float) -> int:
        return max(1, int(round(interval_ms / self.dt)))

    def _build_plasticity(self) -> None:
        plan, net = self.plan, self.net
        projs = plan.projections
        indptr, post, weight, row_off = net[4], net[5], net[6], net[9]
        P = len(projs)
        pp = {k: np.zeros(P, np.int64) for k in ("syn0", "nsyn", "npre", "npost", "post_ent", "Lh", "hn0", "h0",
                                                   "pm0", "sg0")}
        pl_proj, pm_ptr, pm_syn, pm_pre, w_sign = [], [], [], [], []
        h_total = hn_total = pm_total = sg_total = 0
        rows = {k: [] for k in ("kind", "proj", "prm", "nearest", "excl", "mod", "x0", "y0", "hx0", "s0",
                                "interval", "ev_lo", "ev_hi", "astro", "astro_scale", "dend", "hy0")}
        hy_total = 0
        pp_hpn0, pp_hp0 = np.zeros(P, np.int64), np.zeros(P, np.int64)
        astro_index = {a.name: i for i, a in enumerate(plan.astrocytes)}
        astro_init = {a.name: a.A_init for a in plan.astrocytes}
        ev_norm = []
        x_total = y_total = hx_total = s_total = 0
        reward_index = {m.name: i for i, m in enumerate(plan.modulators)}
        self.rule_slices = []  # (projection name, rule, kind, x0, y0, s0) for state introspection
        for p, proj in enumerate(projs):
            if not proj.rules:
                continue
            pl_proj.append(p)
            syn0 = int(indptr[row_off[p]])
            n_pre, n_syn = proj.n_pre, proj.n_synapses
            n_post = self.slots[proj.post].pop.size
            timing = any(r.kind in ("stdp", "triplet", "symmetric", "rstdp") for r in proj.rules)
            Lh = proj.max_delay if timing and proj.max_delay > 1 else 0
            pp["syn0"][p], pp["nsyn"][p], pp["npre"][p], pp["npost"][p] = syn0, n_syn, n_pre, n_post
            pp["post_ent"][p] = self.slots[proj.post].entity
            pp["Lh"][p], pp["hn0"][p], pp["h0"][p] = Lh, hn_total, h_total
            hn_total += Lh
            h_total += Lh * n_pre
            if Lh and any(r.dendritic for r in proj.rules):
                pp_hpn0[p], pp_hp0[p] = hn_total, h_total  # ring of postsynaptic spikes
                hn_total += Lh
                h_total += Lh * n_post
            idx = post[syn0:syn0 + n_syn]
            # post-major, each target's synapses by delay (dendritic rules walk them delay by delay)
            perm = np.lexsort((np.asarray(self.net[7][syn0:syn0 + n_syn]), idx))
            pre_of = np.repeat(np.arange(n_pre, dtype=np.int32), np.diff(indptr[row_off[p]:row_off[p] + n_pre + 1]))
            counts = np.bincount(idx, minlength=n_post)
            ptr = np.zeros(n_post + 1, np.int64)
            np.cumsum(counts, out=ptr[1:])
            pp["pm0"][p] = sum(a.size for a in pm_ptr)
            pm_ptr.append(ptr + pm_total)
            pm_syn.append(perm.astype(np.int64) + syn0)
            pm_pre.append(pre_of[perm])
            pm_total += n_syn
            pp["sg0"][p] = sg_total
            w_sign.append(np.where(np.asarray(weight[syn0:syn0 + n_syn]) < 0, -1, 1).astype(np.int8))
            sg_total += n_syn
            for rule in proj.rules:
                kind = (pk.K_STDP_MULT if rule.get("form") == "multiplicative" else pk.K_STDP_ADD) \
                    if rule.kind == "stdp" else self._RULE_KIND[rule.kind]
                n_x, n_y = self._TRACES[kind]
                rows["kind"].append(kind)
                rows["proj"].append(p)
                rows["prm"].append(self._rule_row(rule, kind))
                rows["nearest"].append(rule.pairing == "nearest")
                rows["excl"].append(rule.same_step == "exclusive")
                rows["mod"].append(reward_index.get(rule.modulator, -1) if rule.modulator else -1)
                rows["astro"].append(astro_index[rule.astrocyte] if rule.astrocyte else -1)
                rows["astro_scale"].append(rule.get("A_minus") / astro_init[rule.astrocyte] if rule.astrocyte else 0.0)
                dend = bool(rule.dendritic and Lh and kind <= pk.K_RSTDP)
                rows["dend"].append(dend)
                rows["hy0"].append(hy_total)
                if dend:
                    hy_total += (2 if kind == pk.K_TRIPLET else 1) * Lh * n_post
                rows["x0"].append(x_total)
                rows["y0"].append(y_total)
                rows["hx0"].append(hx_total)
                rows["s0"].append(s_total)
                self.rule_slices.append((proj.name, rule, kind, x_total, y_total, s_total))
                x_total += n_x * n_pre
                y_total += n_y * n_post
                if Lh and kind <= pk.K_RSTDP and not dend:
                    hx_total += (2 if kind == pk.K_TRIPLET else 1) * Lh * n_pre
                if kind == pk.K_RSTDP:
                    s_total += n_syn
                interval = rule.get("interval") if "interval" in rule.params or kind >= pk.K_OJA else self.dt
                rows["interval"].append(self._interval_steps(interval))
                ev = np.zeros(0, np.int64) if rule.event_steps is None else np.unique(np.asarray(rule.event_steps, np.int64))
                rows["ev_lo"].append(sum(a.size for a in ev_norm))
                ev_norm.append(ev)
                rows["ev_hi"].append(rows["ev_lo"][-1] + ev.size)
        cat = lambda xs, t: np.ascontiguousarray(np.concatenate(xs) if xs else np.zeros(0), t)  # noqa: E731
        stp_list = [(p, proj) for p, proj in enumerate(projs) if proj.stp is not None]
        proj_stp = np.full(P, -1, np.int64)
        stp_off, o = [], 0
        for q, (p, proj) in enumerate(stp_list):
            proj_stp[p] = q
            stp_off.append(o)
            o += proj.n_pre
        mods = plan.modulators
        ev_lo, ev_hi, e = [], [], 0
        for m in mods:
            ev_lo.append(e)
            e += m.steps.size
            ev_hi.append(e)
        ip_pops = [pop for pop in plan.populations if pop.threshold_rule is not None]
        self.plast = pk.PlasticityTables(
            _i64(pl_proj), pp["syn0"], pp["nsyn"], pp["npre"], pp["npost"], pp["post_ent"], pp["Lh"], pp["hn0"],
            pp["h0"], pp["pm0"], pp["sg0"],
            np.zeros(hn_total, np.int64), np.zeros(h_total, np.int32), np.zeros(h_total, np.int64),
            np.zeros(h_total, np.int64),
            cat(pm_ptr, np.int64), cat(pm_syn, np.int64), cat(pm_pre, np.int32), cat(w_sign, np.int8),
            proj_stp, _i64([p for p, _ in stp_list]),
            np.array([[proj.stp.U, proj.stp.tau_facil, proj.stp.tau_rec] for _, proj in stp_list],
                     np.float64).reshape(-1, 3),
            _i64(stp_off), np.zeros(o), np.ones(o), np.full(o, -1, np.int64), np.zeros(o),
            np.array([m.tonic for m in mods], np.float64), np.array([math.exp(-self.dt / m.tau_d) for m in mods]),
            np.array([m.tonic for m in mods], np.float64), _i64(ev_lo), _i64(ev_hi), _i64(ev_lo),
            cat([m.steps for m in mods], np.int64), cat([m.amplitudes for m in mods], np.float64),
            np.asarray([self.slots[pop.name].group for pop in ip_pops], np.int8),
            _i64([self.slots[pop.name].start for pop in ip_pops]), _i64([self.slots[pop.name].entity for pop in ip_pops]),
            np.array([[pop.threshold_rule["theta_plus"], pop.threshold_rule["offset"]] for pop in ip_pops],
                     np.float64).reshape(-1, 2),
            *self._astrocyte_tables(),
            *self._tripartite_tables([p for p, _ in stp_list]),
            pp_hpn0, pp_hp0,
        )
        for pop in ip_pops:
            if self.slots[pop.name].group not in (netk.GROUP_LIF, netk.GROUP_COBA):
                raise SimulationError(f"population {pop.name!r}: an adaptive threshold needs a LIF-family model")
        R = len(rows["kind"])
        self.rules = pk.RuleTables(
            _i64(rows["kind"]), _i64(rows["proj"]), np.array(rows["prm"], np.float64).reshape(R, pk.R_PARAMS),
            np.asarray(rows["nearest"], np.bool_), np.asarray(rows["excl"], np.bool_), _i64(rows["mod"]),
            _i64(rows["x0"]), _i64(rows["y0"]), _i64(rows["hx0"]), _i64(rows["s0"]), _i64(rows["interval"]),
            _i64(rows["ev_lo"]), _i64(rows["ev_hi"]), _i64(rows["ev_lo"]), cat(ev_norm, np.int64),
            np.zeros(x_total), np.zeros(y_total), np.zeros(x_total, np.int64), np.zeros(y_total, np.int64),
            np.zeros(hx_total), np.zeros(s_total), _i64(rows["astro"]), np.asarray(rows["astro_scale"], np.float64),
            np.asarray(rows["dend"], np.bool_), _i64(rows["hy0"]), np.zeros(hy_total),
        )
        self.plastic_projections = {projs[p].name: p for p in pl_proj}
        #: the rules' learning rates as built: what training phases' schedules scale
        self._base_rates = (self.rules.r_prm.copy(), self.rules.r_astro_scale.copy())

    def _astrocyte_tables(self) -> tuple:
        """(A, w, b, dt/tau, decay, counted entities, liquid range, reference end) of the NALSM astrocytes."""
        astros = self.plan.astrocytes
        ents, liq_lo, liq_hi, ref_hi = [], [], [], []
        for a in astros:
            liq_lo.append(len(ents))
            ents += [self._entity_of(n) for n in a.liquid]
            liq_hi.append(len(ents))
            ents += [self._entity_of(n) for n in a.reference]
            ref_hi.append(len(ents))
        f = lambda attr: np.array([float(getattr(a, attr)) for a in astros], np.float64)  # noqa: E731
        return (f("A_init"), f("w"), f("b"), np.array([self.dt / a.tau for a in astros], np.float64), f("decay"),
                _i64(ents), _i64(liq_lo), _i64(liq_hi), _i64(ref_hi))

    def _tripartite_tables(self, stp_proj: list) -> tuple:
        """(stp_astro, state, params, armed, acc, every, dt_s, U0*, alpha, covered synapses, scratch)."""
        from engine.kernels import astrocytes as ak

        tris = self.plan.tripartites
        names = [p.name for p in self.plan.projections]
        stp_astro = np.full(len(stp_proj), -1, np.int64)
        nsyn = np.zeros(len(tris))
        for a, tri in enumerate(tris):
            for name in tri.projections:
                p = names.index(name)
                stp_astro[stp_proj.index(p)] = a
                nsyn[a] += self.plan.projections[p].n_synapses
        every = [max(1, int(round(t.dt_astro / self.dt))) for t in tris]
        state = np.array([ak.initial_state(t.I0) for t in tris], np.float64).reshape(-1, ak.TRI_STATE)
        params = np.array([t.params for t in tris], np.float64).reshape(len(tris), len(ak.TRI_PARAM_NAMES))
        return (stp_astro, state, params, np.array([s[ak.TRI_C] < p[ak.P_CTHETA] for s, p in zip(state, params)],
                                                   np.bool_),
                np.zeros(len(tris)), _i64(every), np.array([n * self.dt / 1000.0 for n in every], np.float64),
                np.array([t.U0_star for t in tris], np.float64), np.array([t.alpha for t in tris], np.float64), nsyn,
                np.zeros((5, ak.TRI_STATE)))

    def tripartite_states(self) -> dict:
        """State vector (engine.kernels.astrocytes.TRI_* order) of every tripartite astrocyte."""
        return {t.name: self.plast.tri_state[a].copy() for a, t in enumerate(self.plan.tripartites)}

    def astrocyte_states(self) -> dict:
        """Current state ``A`` of every NALSM astrocyte."""
        return {a.name: float(v) for a, v in zip(self.plan.astrocytes, self.plast.as_val)}

    def projection_weights(self, name: str) -> np.ndarray:
        """The current weights of projection ``name`` (a view into the simulation's array, CSR order)."""
        for p, proj in enumerate(self.plan.projections):
            if proj.name == name:
                s0 = int(self.net[4][self.net[9][p]])
                return self.net[6][s0:s0 + proj.n_synapses]
        raise SimulationError(f"no projection named {name!r}")

    def dopamine(self) -> dict:
        """Current dopamine level of every reward signal."""
        return {m.name: float(v) for m, v in zip(self.plan.modulators, self.plast.md_val)}

    def _group_size(self, g: int) -> int:
        return (self.lif, self.coba, self.izh)[g][0].shape[1]

    def _group_iext(self, g: int) -> np.ndarray:
        return {0: self.lif[8], 1: self.coba[7], 2: self.izh[6]}[g]

    def _build_sources(self) -> None:
        plan, dt = self.plan, self.dt
        pois = [s for s in plan.sources if isinstance(s, PoissonSourcePlan)]
        p_lo, p_hi, p_all, homog, rngs = [], [], [], [], []
        o = 0
        for src in pois:
            rates = np.broadcast_to(np.asarray(src.rates, np.float64), (int(src.size),))
            p = rates * dt / 1000.0
            p_lo.append(o)
            p_hi.append(o + p.size)
            o += p.size
            p_all.append(p)
            homog.append(bool(p.size == 0 or np.all(p == p[0])))
            rngs.append(seed_state(source_stream_seed(plan, src)))
        self.pois = [_i64([self.source_entity[s.name] for s in pois]), _i64(p_lo), _i64(p_hi),
                     np.concatenate(p_all) if p_all else np.zeros(0), np.asarray(homog, np.bool_),
                     np.array(rngs, np.uint64).reshape(-1, 4), _i64([s.start_step for s in pois]),
                     _i64([s.stop_step for s in pois])]
        self._train_sources = [s for s in plan.sources if isinstance(s, SpikeTrainSourcePlan)]
        # data-set encoders produce their spikes chunk by chunk (engine.encoders.Encoding)
        self._trains_per_chunk = self._lazy_inputs and any(s.on_demand for s in self._train_sources)
        self.trains = self._pack_trains(0, 0) if self._trains_per_chunk else self._pack_trains()
        cur = [s for s in plan.sources if isinstance(s, CurrentSourcePlan)]
        c_group, c_wave, c_lo, c_hi, c_idx, c_amp, c_par, c_tlo, c_thi, c_tk, c_tv, c_rng = ([] for _ in range(12))
        o = ot = 0
        for src in cur:
            slot = self.slots[src.target]
            idx = np.arange(slot.pop.size) if src.indices is None else np.asarray(src.indices, np.int64).ravel()
            wave = CURRENT_WAVEFORMS.index(src.waveform)
            amp = np.ones(idx.size) if wave == netk.WAVE_STEP else np.broadcast_to(np.asarray(src.amplitude, np.float64), idx.shape)
            c_group.append(slot.group)
            c_wave.append(wave)
            c_lo.append(o)
            c_hi.append(o + idx.size)
            o += idx.size
            c_idx.append(idx + slot.start)
            c_amp.append(amp)
            c_par.append([src.offset, 2.0 * math.pi * src.frequency / 1000.0, src.phase])
            tk = np.rint(np.asarray(src.times, np.float64) / dt).astype(np.int64)
            order = np.argsort(tk, kind="stable")
            c_tlo.append(ot)
            c_thi.append(ot + tk.size)
            ot += tk.size
            c_tk.append(tk[order])
            c_tv.append(np.asarray(src.amplitudes, np.float64).ravel()[order])
            c_rng.append(seed_state(source_stream_seed(plan, src)))
        cat = lambda xs, dt_: np.ascontiguousarray(np.concatenate(xs) if xs else np.zeros(0), dt_)  # noqa: E731
        self.cur = [np.asarray(c_group, np.int8), np.asarray(c_wave, np.int8), _i64(c_lo), _i64(c_hi), cat(c_idx, np.int64),
                    cat(c_amp, np.float64), np.asarray(c_par, np.float64).reshape(-1, 3), _i64(c_tlo), _i64(c_thi),
                    cat(c_tk, np.int64), cat(c_tv, np.float64), np.array(c_rng, np.uint64).reshape(-1, 4)]

    def _pack_trains(self, k_lo: int | None = None, k_hi: int | None = None) -> list:
        """The spike-train table: every spike of every source, or those of steps ``k_lo .. k_hi``."""
        t_lo, t_hi, t_steps, t_idx = [], [], [], []
        o = 0
        for src in self._train_sources:
            steps, idx = (src.steps, src.indices) if k_lo is None else src.spikes_between(k_lo, k_hi)
            # one spike per (step, neuron): duplicates collapse (MODELS.md §2.4 event frames)
            key = np.unique(steps * np.int64(max(src.size, 1)) + idx)
            steps, idx = key // max(src.size, 1), (key % max(src.size, 1)).astype(np.int32)
            t_lo.append(o)
            t_hi.append(o + steps.size)
            o += steps.size
            t_steps.append(steps)
            t_idx.append(idx)
        return [_i64([self.source_entity[s.name] for s in self._train_sources]), _i64(t_lo), _i64(t_hi), _i64(t_lo),
                _i64(np.concatenate(t_steps) if t_steps else []),
                np.ascontiguousarray(np.concatenate(t_idx) if t_idx else np.zeros(0), np.int32)]

    def _var_address(self, pop, var):
        """(group, probe kind, row) of a population state variable."""
        g = self.slots[pop.name].group
        name = canonical_var(pop, var)
        if name is None:
            raise SimulationError(f"population {pop.name!r} has no state variable {var!r}; known: {pop.state_names()}")
        if name in _GROUP_VARS[g]:
            return g, netk.PROBE_STATE, _GROUP_VARS[g].index(name)
        rec = name.split("_", 1)[1]
        return g, netk.PROBE_CHAN, pop.receptor_index(rec)

    def _astrocyte_probe(self, name: str, var: str) -> tuple[int, int, int]:
        """(probe group, astrocyte index, state row) of an astrocyte's recordable variable."""
        from engine.kernels import astrocytes as ak

        for a, astro in enumerate(self.plan.astrocytes):
            if astro.name == name:
                return netk.PROBE_NALSM, a, 0
        a = [t.name for t in self.plan.tripartites].index(name)
        row = {"Ca": ak.TRI_C, "IP3": ak.TRI_I, "h": ak.TRI_H, "U_0": netk.PROBE_TRI_RELEASE}[var]
        return netk.PROBE_TRIPARTITE, a, row

    def _build_monitors(self) -> None:
        plan = self.plan
        n_ent = len(self.entity_sizes)
        rec_ent = np.zeros(n_ent, np.bool_)
        rec_flag = np.zeros(max(int(self.ent_off[-1]), 1), np.uint8)
        self.spike_monitors, self.rate_monitors, self.state_monitors = [], [], []
        rate_ent = []
        pr_group, pr_kind, pr_row, pr_idx, pr_every = [], [], [], [], []
        for mon in plan.monitors:
            if mon.kind == "weights":  # read by the runner through projection_weights()
                continue
            if mon.kind == "state" and astrocyte_variables(plan, mon.target) is not None:
                entries = []
                for var in mon.variables:
                    group, a, row = self._astrocyte_probe(mon.target, var)
                    entries.append((var, len(pr_group), 1))
                    pr_group.append(group)
                    pr_kind.append(netk.PROBE_STATE)
                    pr_row.append(row)
                    pr_idx.append(a)
                    pr_every.append(mon.every)
                self.state_monitors.append((mon, entries))
                continue
            e = self._entity_of(mon.target)
            size = int(self.entity_sizes[e])
            if mon.kind == "spikes":
                rec_ent[e] = True
                off = int(self.ent_off[e])
                if mon.indices is None:
                    rec_flag[off:off + size] = 1
                else:
                    rec_flag[off + mon.indices] = 1
                self.spike_monitors.append((mon, e))
            elif mon.kind == "rate":
                self.rate_monitors.append((mon, len(rate_ent)))
                rate_ent.append(e)
            else:
                pop = plan.population(mon.target)
                idx = np.arange(pop.size) if mon.indices is None else mon.indices
                entries = []
                for var in mon.variables:
                    g, kind, row = self._var_address(pop, var)
                    first = len(pr_group)
                    for i in idx:
                        pr_group.append(g)
                        pr_kind.append(kind)
                        pr_row.append(row)
                        pr_idx.append(self.slots[pop.name].start + int(i))
                        pr_every.append(mon.every)
                    entries.append((var, first, idx.size))
                self.state_monitors.append((mon, entries))
        self.mon_static = [rec_ent, rec_flag, _i64(rate_ent), _i64(pr_group), np.asarray(pr_kind, np.int8),
                           _i64(pr_row), _i64(pr_idx), _i64(pr_every)]
        self.rec_k = np.zeros(4096, np.int32)
        self.rec_id = np.zeros(4096, np.int32)

    # ------------------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self._k

    def warmup(self) -> None:
        self._run(0)
        self._warm_parallel()

    def _warm_parallel(self) -> None:
        """Run each parallel kernel once on empty arrays: loads it and starts the thread pool now
        (about a second) instead of inside the first timed chunk."""
        empty_row = np.zeros(0, self.dtype)
        zero = np.int64(0)

        def cut(a):
            return a[:, :0] if a.ndim == 2 else a[:0]

        lif, coba, izh = self.lif, self.coba, self.izh
        if lif[16] > 0:
            nk.lif_update_parallel(np.int64(1), cut(lif[0]), cut(lif[1]), cut(lif[2]), cut(lif[3]), cut(lif[5]),
                                   cut(lif[6]), cut(lif[7]), cut(lif[8]), lif[9], empty_row, zero, lif[14], lif[15],
                                   cut(lif[17]), cut(lif[10]), cut(lif[11]), cut(lif[18]), cut(lif[19]),
                                   cut(lif[20]))
        if coba[14] > 0:
            nk.coba_update_parallel(np.int64(1), cut(coba[0]), cut(coba[1]), cut(coba[2]), cut(coba[3]), cut(coba[5]),
                                    cut(coba[6]), cut(coba[7]), coba[8], empty_row, zero, coba[13], cut(coba[15]))
        if izh[12] > 0:
            nk.izh_update_parallel(np.int64(1), cut(izh[0]), cut(izh[1]), cut(izh[2]), cut(izh[3]), cut(izh[4]),
                                   cut(izh[5]), cut(izh[6]), izh[7], empty_row, zero, self.dt, cut(izh[13]))

    def run_steps(self, n: int) -> ChunkResult:
        return self._run(int(n))

    def _run(self, n: int) -> ChunkResult:
        if n < 0:
            raise SimulationError("cannot run a negative number of steps")
        k0 = self._k
        if self._trains_per_chunk:
            self.trains = self._pack_trains(k0, k0 + n)
        rec_ent, rec_flag, rate_ent, pr_group, pr_kind, pr_row, pr_idx, pr_every = self.mon_static
        rate_buf = np.zeros((n, rate_ent.size), np.int32)
        # samples of each probe in [k0, k0 + n): multiples of its interval
        counts = -(-(k0 + n) // pr_every) - (-(-k0 // pr_every)) if pr_every.size else np.zeros(0, np.int64)
        pr_pos = np.zeros(pr_every.size, np.int64)
        if pr_every.size:
            np.cumsum(counts[:-1], out=pr_pos[1:])
        pr_start = pr_pos.copy()
        pr_out = np.zeros(int(counts.sum()) if pr_every.size else 0, self.dtype)
        mon = (rec_ent, rec_flag, rate_ent, rate_buf, pr_group, pr_kind, pr_row, pr_idx, pr_every, pr_pos, pr_out)
        k_next, bad_group, bad_code, self.rec_k, self.rec_id, rec_n = self._run_chunk(
            np.int64(k0), np.int64(n), self.dt, tuple(self.lif), tuple(self.coba), tuple(self.izh), tuple(self.net),
            tuple(self.pois), tuple(self.trains), tuple(self.cur), mon, self.rec_k, self.rec_id, np.int64(0),
            tuple(self.plast), tuple(self.rules))
        self._k = int(k_next)
        if bad_group >= 0:
            self._raise_instability(int(bad_group), int(bad_code), int(k_next))
        result = ChunkResult(k0, self._k, self.dt)
        rk, rid = self.rec_k[:rec_n], self.rec_id[:rec_n]
        for mon_plan, e in self.spike_monitors:
            off, size = int(self.ent_off[e]), int(self.entity_sizes[e])
            mask = (rid >= off) & (rid < off + size)
            local = rid[mask] - off
            steps = rk[mask]
            if mon_plan.indices is not None:
                keep = np.isin(local, mon_plan.indices)
                local, steps = local[keep], steps[keep]
            result.spikes[mon_plan.name] = (steps.copy(), local.astype(np.int32))
        for mon_plan, m in self.rate_monitors:
            result.rates[mon_plan.name] = rate_buf[:, m].copy()
        for mon_plan, entries in self.state_monitors:
            out = {}
            for var, first, n_idx in entries:
                n_samples = int(counts[first]) if n_idx else 0
                first_step = -(-k0 // mon_plan.every) * mon_plan.every
                steps = first_step + mon_plan.every * np.arange(n_samples, dtype=np.int64)
                lo = int(pr_start[first]) if n_idx else 0
                values = pr_out[lo:lo + n_samples * n_idx].reshape(n_idx, n_samples).T.copy()
                out[var] = (steps, values)
            result.states[mon_plan.name] = out
        return result

    def _raise_instability(self, group: int, code: int, k: int):
        neuron, var_code = divmod(code, 8)
        raise self._instability(group, neuron, _GROUP_VARS[group][var_code], k)

    def _instability(self, group: int, neuron: int, var: str, k: int) -> NumericalInstabilityError:
        """The error naming the population that owns ``neuron`` of ``group``."""
        for slot in self.slots.values():
            if slot.group == group and slot.start <= neuron < slot.stop:
                return NumericalInstabilityError(slot.pop.name, var, k, self.dt)
        return NumericalInstabilityError("?", var, k, self.dt)

    # ------------------------------------------------------------------------------------------
    # state access
    # ------------------------------------------------------------------------------------------
    def _view(self, population: str, variable: str) -> np.ndarray:
        if population not in self.slots:
            raise SimulationError(f"no population named {population!r}")
        slot = self.slots[population]
        g, kind, row = self._var_address(slot.pop, variable)
        arrays = (self.lif, self.coba, self.izh)[g]
        return arrays[0 if kind == netk.PROBE_STATE else 1][row, slot.start:slot.stop]

    def get_state(self, population: str, variable: str) -> np.ndarray:
        if variable == "refractory":
            slot = self.slots[population]
            if slot.group == netk.GROUP_IZH:
                return np.zeros(slot.pop.size, np.int32)
            return (self.lif, self.coba)[slot.group][2][slot.start:slot.stop].copy()
        return self._view(population, variable).copy()

    def set_state(self, population: str, variable: str, values) -> None:
        view = self._view(population, variable)
        view[:] = np.broadcast_to(np.asarray(values, view.dtype), view.shape)

    def _dynamic(self) -> dict:
        """Name -> live array of every piece of dynamic state."""
        return {
            "lif_state": self.lif[0], "lif_chan": self.lif[1], "lif_ref": self.lif[2],
            "coba_state": self.coba[0], "coba_chan": self.coba[1], "coba_ref": self.coba[2],
            "izh_state": self.izh[0], "izh_chan": self.izh[1],
            "ring": self.ring, "poisson_rng": self.pois[5], "current_rng": self.cur[11], "train_pos": self.trains[3],
            # plastic state: weights, traces, histories, eligibility, short-term plasticity, dopamine
            "weight": self.net[6] if self.plastic_projections else np.zeros(0),
            "history_n": self.plast.h_n, "history_j": self.plast.h_j, "history_cursor": self.plast.h_cur,
            "history_end": self.plast.h_end, "stp_u": self.plast.stp_u, "stp_x": self.plast.stp_x,
            "stp_last": self.plast.stp_last, "dopamine": self.plast.md_val, "reward_pos": self.plast.md_pos,
            "pre_traces": self.rules.xtr, "post_traces": self.rules.ytr, "pre_trace_steps": self.rules.xt,
            "post_trace_steps": self.rules.yt, "trace_history": self.rules.xhist, "eligibility": self.rules.sst,
            "normalize_pos": self.rules.r_ev_pos, "astrocyte_A": self.plast.as_val, "astrocyte_w": self.plast.as_w,
            "astrocyte_b": self.plast.as_b, "rule_params": self.rules.r_prm, "stp_params": self.plast.stp_prm,
            "tripartite_state": self.plast.tri_state, "tripartite_armed": self.plast.tri_armed,
            "tripartite_acc": self.plast.tri_acc, "post_trace_history": self.rules.yhist,
        }

    # ------------------------------------------------------------------------------------------
    # sample-by-sample presentation (engine.training)
    # ------------------------------------------------------------------------------------------
    #: state put back before each sample: neurons (the adaptive threshold theta excepted: it is the
    #: homeostatic memory of Diehl & Cook / Hao), inputs in flight, short-term plasticity,
    #: eligibility, astrocytes and the rules' (decaying) learning rates. Kept: weights, random
    #: streams, input positions, STDP traces and their histories (as in the NALSM reference).
    supports_training_phases = True
    SAMPLE_STATE = ("lif_chan", "lif_ref", "coba_chan", "coba_ref", "izh_state", "izh_chan", "ring", "stp_u",
                    "stp_x", "stp_last", "eligibility", "astrocyte_A", "astrocyte_w", "astrocyte_b",
                    "rule_params", "tripartite_state", "tripartite_armed", "tripartite_acc")

    def reset_sample_state(self, initial: dict) -> None:
        """Put the per-sample state back to ``initial`` (a :meth:`state_arrays` taken after build)."""
        live = self._dynamic()
        for key in self.SAMPLE_STATE:
            np.copyto(live[key], initial[key])
        lif, coba = self.lif[0], self.coba[0]
        for rows, source in ((lif, initial["lif_state"]), (coba, initial["coba_state"])):
            keep_theta = rows[1].copy() if rows.shape[0] > 1 else None  # row 1 is theta in both models
            np.copyto(rows, source)
            if keep_theta is not None:
                rows[1] = keep_theta

    def set_learning_rate_scale(self, scale: float, amplitudes: bool = True) -> None:
        """Scale every rule's learning rates by ``scale`` relative to their built values.

        ``amplitudes=False`` only rescales the astrocyte-driven depression (a static table), for a
        run resumed in the middle of a sample whose rule parameters come from the state file.
        """
        base_prm, base_astro = self._base_rates
        if amplitudes:
            for r, kind in enumerate(self.rules.r_kind):
                cols = list(pk.LEARNING_RATE_COLUMNS[int(kind)])
                self.rules.r_prm[r, cols] = base_prm[r, cols] * scale
        self.rules.r_astro_scale[:] = base_astro * scale

    def set_projection_weights(self, name: str, weights) -> None:
        """Overwrite the weights of a plastic projection (CSR order)."""
        target = self.projection_weights(name)
        weights = np.asarray(weights)
        if weights.shape != target.shape:
            raise SimulationError(f"projection {name!r} has {target.size} synapses; got {weights.size} weights")
        np.copyto(target, weights.astype(target.dtype, copy=False))

    def _fingerprint(self) -> str:
        return json.dumps({
            "dt": self.dt, "dtype": str(self.dtype), "entities": self.entity_names,
            "sizes": [int(x) for x in self.entity_sizes], "ring": list(self.ring.shape),
            "n_synapses": int(self.net[5].size),
        }, sort_keys=True)

    def state_arrays(self) -> dict:
        arrays = {k: v.copy() for k, v in self._dynamic().items()}
        arrays["step"] = np.array(self._k, np.int64)
        arrays["fingerprint"] = np.array(self._fingerprint())
        return arrays

    def load_state_arrays(self, arrays: dict) -> None:
        fp = str(arrays.get("fingerprint", ""))
        if fp != self._fingerprint():
            raise SimulationError("the saved state belongs to a different network, time step or dtype")
        live = self._dynamic()
        for key, target in live.items():
            src = np.asarray(arrays[key])
            if src.shape != target.shape:
                raise SimulationError(f"saved state {key!r} has shape {src.shape}, expected {target.shape}")
            np.copyto(target, src.astype(target.dtype, copy=False))
        self._k = int(arrays["step"])
        self.ent_cnt[:] = 0

    # ------------------------------------------------------------------------------------------
    # introspection
    # ------------------------------------------------------------------------------------------
    def connectivity_nbytes(self) -> int:
        """Bytes of the shared CSR (indptr, post, weight, delay) used by the kernel."""
        return sum(a.nbytes for a in self.net[4:8])
