"""Torch plasticity kernels for batched runs: the numba rule kernels as vectorised torch ops.

:class:`BatchedRules` applies, once per step, what :func:`engine.kernels.plasticity.plasticity_step`
does (step (6)-(7) of MODELS.md §0.2) to ``B`` samples at once (batched runs, MODELS.md §0.5): each
sample has its own plastic weights ``W[b, syn]``, traces, history rings and astrocyte state, and the
samples never see each other. It runs on the CPU and on CUDA; there is no Python loop over neurons
or synapses: per step only the synapses whose presynaptic spike arrives or whose postsynaptic
neuron spiked are gathered (``repeat_interleave`` over their CSR / post-major rows), updated with
the same per-event maths as the numba ``*_pre`` / ``*_post`` functions and scattered back.

Supported: every rule the numba kernels run on spike timing or rates, with their options:

* pair STDP, additive and multiplicative (``plasticity.stdp``), triplet STDP, symmetric STDP and
  reward-modulated STDP (``plasticity.rstdp`` with ``modulator.reward``: one dopamine level and
  one eligibility per synapse per sample): all-to-all and nearest-spike pairing,
  ``pre_then_post`` and ``exclusive`` same-step pairing (MODELS.md §0.4), axonal delays of any
  number of steps and dendritic delays (§3.3);
* the NALSM astrocyte (``modulator.nalsm_astrocyte``) setting a rule's depression amplitude, one
  astrocyte state per sample (§5.1, §7.4; inhibitory synapses swap the amplitudes as in numba);
* synaptic scaling (normalisation and activity scaling), Oja and BCM.

Intrinsic threshold rules (Hao form) act on neuron state, which belongs to the backend: they are
refused unless the caller asks for them (``threshold_rules=True``) and applies them with
:meth:`BatchedRules.threshold_step`. Refused with a :class:`SimulationError` naming them:
short-term plasticity and tripartite astrocytes.

Exactness
---------
The numba kernels keep some traces *lazy* (stored with the step of their last spike, decayed by
``exp(age log_decay)`` when read); here every trace is a dense ``(B, n)`` tensor multiplied by its
per-step decay factor at the end of each step. The two agree up to rounding: in float64 the
largest relative weight difference measured on the tests' runs was 4e-14 (absolute 1e-14; the
tests assert 1e-12 relative). Everything else (event order, the trace values each event reads,
clipping, signs) is numba's, and so is the precision: float64 traces and arithmetic, float32
weights rounded after each update. On the CPU a sample's row may differ from the
same sample run alone in the last bit (torch's vectorised and scalar ``pow`` paths).

Timing rules of one kind and set of options on different projections are one *group*: their
traces laid end to end, one gather, update and scatter per step for all of them (the NALSM
liquid's eight astrocyte-gated projections are one group). The k-th rule of every projection runs
before any (k+1)-th, so each projection sees its rules in numba's order.

Per step and group, the order is numba's ``_timing_rule``: (S1) history of the presynaptic
traces before the increment (exclusive pairing, triplet ``r2``), (S2) presynaptic arrivals read
the postsynaptic traces, (S3)/(S4) presynaptic increments and postsynaptic events in the order the
same-step pairing asks, (S5) postsynaptic increments, (S6) decay; R-STDP then integrates its
eligibility with the dopamine. Rate rules and scaling act in rule order; last the astrocytes
integrate the step's spike counts and dopamine relaxes to its tonic level (reward jumps come first).

:meth:`BatchedRules.reset` starts new samples: traces, histories, eligibilities, dopamine and
astrocytes back to their initial values (numba's sample-by-sample presentation keeps the STDP
traces across samples; here each batch row is a fresh sample). The weights are the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.errors import SimulationError
from engine.kernels import plasticity as pk

_TIMING = (pk.K_STDP_ADD, pk.K_STDP_MULT, pk.K_TRIPLET, pk.K_SYMMETRIC, pk.K_RSTDP)
_RATE = (pk.K_OJA, pk.K_BCM, pk.K_SCALE_ACTIVITY)


def _expand(starts: torch.Tensor, counts: torch.Tensor):
    """Rows ``[starts[q], starts[q] + counts[q])`` laid end to end: ``(owner row q, position)`` of
    every element, or None when all rows are empty (one host sync for the total)."""
    total = int(counts.sum()) if counts.numel() else 0
    if total == 0:
        return None
    first = torch.cumsum(counts, 0) - counts
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    pos = torch.arange(total, device=counts.device) - first[owner] + starts[owner]
    return owner, pos


def _delay_runs(row_of: np.ndarray, delay: np.ndarray, n_rows: int, Lh: int, name: str) -> np.ndarray:
    """``(n_rows, Lh + 1)``: position of the first entry of delay ``d`` (column ``d - 1``) in each row
    of a row-sorted, delay-sorted-within-rows list; column ``Lh`` is the row's end."""
    key = row_of * (Lh + 2) + delay
    if np.any(np.diff(key) < 0):
        raise SimulationError(f"projection {name!r}: synapses are not sorted by delay within rows")
    want = np.arange(n_rows)[:, None] * (Lh + 2) + np.arange(1, Lh + 2)[None, :]
    return np.searchsorted(key, want.ravel()).reshape(n_rows, Lh + 1)


@dataclass
class _Rule:
    """A rate rule or synaptic scaling (one pass per rule) and its traces."""

    r: int
    kind: int
    p: int
    pre_ent: int
    post_ent: int
    n_post: int
    syn: slice          # the projection's synapses in the shared CSR
    post: torch.Tensor  # (n_syn,) target of each synapse
    pre: torch.Tensor   # (n_syn,) source of each synapse
    pm_local: torch.Tensor  # the projection's synapses post-major (local indices): numba's summation order
    interval: int
    events: frozenset   # scaling_normalize: the steps it acts at (empty: every ``interval``)
    x: list             # presynaptic rate traces (B, n_pre): Oja, BCM
    y: list             # postsynaptic (B, n_post): rate; BCM's theta second


@dataclass
class _TimingGroup:
    """Spike-timing rules of one kind and set of options on different projections, run as one.

    Their traces are laid end to end: rule ``q`` of the group owns presynaptic trace slots
    ``x0[q] .. x0[q] + n_pre`` and postsynaptic ones ``y0[q] ..``; every synapse of its projection
    knows its slots (``syn_x``, ``syn_y``) and its rule (``syn_rule``)."""

    rules: list                 # r of each member, in rule order
    kind: int
    nearest: bool
    exclusive: bool
    dendritic: bool
    Lh: int                     # history ring length (0: every delay one step, no ring)
    pre_slots: dict             # entity -> (offsets of the x slots of the rules it feeds)
    post_slots: dict            # entity -> offsets of the y slots
    x_row: torch.Tensor         # (X,) CSR row of every x slot
    y_row: torch.Tensor         # (Y,) post-major row of every y slot
    syn_x: torch.Tensor         # (n_syn_total,) x slot of each synapse's source (group synapses only)
    syn_y: torch.Tensor
    syn_rule: torch.Tensor      # (n_syn_total,) member index q
    prm: torch.Tensor           # (R, R_PARAMS) the members' parameters (float64)
    shared: list                # per column: the value every member has (a float), or None
    astro: torch.Tensor         # (R,) astrocyte of each member (0 when none)
    gated: torch.Tensor         # (R,) bool: member gated by an astrocyte
    any_gated: bool
    all_gated: bool
    astro_scale: torch.Tensor   # (R,) A_minus / A(0) of the gated members
    x_decay: list               # (X,) per-step decay of each presynaptic trace
    y_decay: list
    x: list                     # (B, X) presynaptic traces: 1, or 2 (triplet)
    y: list                     # (B, Y)
    ring: torch.Tensor | None = None     # (Lh, B, X) bool: presynaptic spikes (axonal delays)
    dptr: torch.Tensor | None = None     # (X, Lh + 1): delay runs of each slot's CSR row
    xhist: list = field(default_factory=list)   # (Lh, B, X) presynaptic trace histories
    post_ring: torch.Tensor | None = None  # (Lh, B, Y) bool: postsynaptic spikes (dendritic delays)
    pdptr: torch.Tensor | None = None    # (Y, Lh + 1): delay runs of each slot's post-major row
    yhist: list = field(default_factory=list)   # (Lh, B, Y) postsynaptic trace histories
    elig: torch.Tensor | None = None     # (B, E) R-STDP eligibility of the members' synapses
    syn_e: torch.Tensor | None = None    # (n_syn_total,) eligibility column of each synapse
    e_syn: torch.Tensor | None = None    # (E,) synapse of each eligibility column
    e_rule: torch.Tensor | None = None   # (E,) its member
    e_mod: torch.Tensor | None = None    # (E,) its reward signal


class BatchedRules:
    """Plasticity of ``batch`` independent samples as torch tensor operations.

    Parameters
    ----------
    packed : engine.backends.numba_backend.NumbaBackend
        The numba backend built for the plan (build only): its packed CSR, post-major index, rule
        and astrocyte tables are read here.
    batch : int
        Number of samples ``B``.
    device : torch.device
    dtype : torch.dtype
        Dtype of the weights (float32 or float64). Traces and the rule arithmetic are float64, as
        in the numba kernels.

    Raises
    ------
    SimulationError
        Naming every rule, signal, projection or population of the plan these kernels do not run.

    Notes
    -----
    A group's key: rule kind, pairing, same-step order, dendritic or not, with or without a history
    ring (a projection whose delays are all one step has none). The ring of a group is as long as
    its longest delay.
    """

    def __init__(self, packed, batch: int, device: torch.device, dtype: torch.dtype,
                 threshold_rules: bool = False):
        self.batch = int(batch)
        if self.batch < 1:
            raise SimulationError(f"batch must be >= 1, got {batch}")
        self.device = torch.device(device)
        self.weight_dtype = dtype
        #: traces, eligibilities, dopamine, astrocytes and the rule arithmetic: float64, as numba's
        #: kernels (a float32 weight is promoted, updated and rounded back)
        self.dtype = torch.float64
        self._zero = torch.zeros((), dtype=self.dtype, device=self.device)
        self.entity_sizes = [int(x) for x in packed.entity_sizes]
        self._refuse_unsupported(packed, threshold_rules)
        rules, plast, net = packed.rules, packed.plast, packed.net
        #: intrinsic (Hao) threshold rules, applied by the caller with :meth:`threshold_step`:
        #: (population name, entity, theta_plus, offset)
        self.threshold_rules = [(pop.name, int(packed.slots[pop.name].entity), float(pop.threshold_rule["theta_plus"]),
                                 float(pop.threshold_rule["offset"]))
                                for pop in packed.plan.populations if pop.threshold_rule is not None]
        self._prm = np.array(rules.r_prm, np.float64, copy=True)
        self._astro_scale = np.array(rules.r_astro_scale, np.float64, copy=True)
        #: (B,) per-copy learning-rate scales on top of the built rates, or None (see set_learning_rate_scale)
        self._copy_rate: torch.Tensor | None = None
        base_prm, base_astro = getattr(packed, "_base_rates", (self._prm.copy(), self._astro_scale.copy()))
        self._base_prm, self._base_astro = np.array(base_prm, np.float64), np.array(base_astro, np.float64)
        self._r_kind = [int(x) for x in rules.r_kind]
        self.plastic_projections = sorted(int(p) for p in plast.pl_proj)
        # the shared CSR and post-major index, and the sign of every synapse (Dale)
        n_syn = int(np.asarray(net[6]).size)
        self._n_syn = n_syn
        self._indptr = self._long(net[4])
        self._delay = self._long(net[7])
        self._pm_ptr = self._long(plast.pm_ptr)
        self._pm_syn = self._long(plast.pm_syn)
        sign = np.ones(n_syn)
        for p in self.plastic_projections:
            s0, n, g0 = int(plast.pp_syn0[p]), int(plast.pp_nsyn[p]), int(plast.pp_sg0[p])
            sign[s0:s0 + n] = plast.w_sign[g0:g0 + n]
        self._sign = torch.from_numpy(sign).to(self.device)
        self._negative = self._sign < 0
        # rule order: the k-th rule of every projection is in layer k
        layer, seen = [], {}
        for r in range(len(self._r_kind)):
            p = int(rules.r_proj[r])
            layer.append(seen.get(p, 0))
            seen[p] = layer[-1] + 1
        self._rules: dict[int, _Rule] = {}
        self._groups: list[_TimingGroup] = []
        #: what a step runs, in order: ("group", index into _groups) or ("rule", r)
        self._schedule: list[tuple[str, int]] = []
        ev_norm = np.asarray(rules.ev_norm, np.int64)
        for L in range(max(layer, default=-1) + 1):
            groups: dict[tuple, list] = {}  # key -> members (insertion order: first member's rule order)
            for r in (r for r in range(len(layer)) if layer[r] == L):
                kind = self._r_kind[r]
                if kind in _TIMING:
                    has_ring = int(plast.pp_Lh[int(rules.r_proj[r])]) > 1
                    key = (kind, bool(rules.r_nearest[r]), bool(rules.r_excl[r]), bool(rules.r_dend[r]), has_ring)
                    groups.setdefault(key, []).append(r)
                else:
                    self._rules[r] = self._build_rule(packed, r, ev_norm)
                    self._schedule.append(("rule", r))
            for key, members in groups.items():  # a layer's units touch disjoint synapses: any order
                self._groups.append(self._build_group(packed, key, members))
                self._schedule.append(("group", len(self._groups) - 1))
        # reward signals (dopamine), one level per sample: (B, M); the jumps of each step
        n_mod = len(packed.plan.modulators)
        self._da_tonic = [float(x) for x in plast.md_tonic]
        self._da_P = [float(x) for x in plast.md_P]
        self._da_init = torch.tensor(self._da_tonic, dtype=self.dtype, device=self.device).expand(self.batch, n_mod)
        self.dopamine = self._da_init.clone()
        self._reward_jumps: dict[int, list] = {}
        for m in range(n_mod):
            for pos in range(int(plast.md_lo[m]), int(plast.md_hi[m])):
                self._reward_jumps.setdefault(int(plast.ev_step[pos]), []).append((m, float(plast.ev_amp[pos])))
        # NALSM astrocytes: per-sample state (B, A); the entities each one counts
        n_astro = int(np.asarray(plast.as_val).size)
        self._astro_init = [torch.tensor(np.asarray(a, np.float64), dtype=self.dtype, device=self.device)
                            .expand(self.batch, n_astro).clone() for a in (plast.as_val, plast.as_w, plast.as_b)]
        self.astro_A, self.astro_w, self.astro_b = (t.clone() for t in self._astro_init)
        self._astro_rate = [float(x) for x in plast.as_rate]
        self._astro_decay = [float(x) for x in plast.as_decay]
        as_ent = [int(x) for x in plast.as_ent]
        self._astro_counts = [(as_ent[int(plast.as_liq_lo[a]):int(plast.as_liq_hi[a])],
                               as_ent[int(plast.as_liq_hi[a]):int(plast.as_ref_hi[a])]) for a in range(n_astro)]

    # ------------------------------------------------------------------------------------------
    # build
    # ------------------------------------------------------------------------------------------
    def _long(self, array) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, np.int64)).to(self.device)

    def _zeros(self, *shape: int, dtype=None) -> torch.Tensor:
        return torch.zeros((self.batch, *shape) if len(shape) == 1 else shape, dtype=dtype or self.dtype,
                           device=self.device)

    @staticmethod
    def _refuse_unsupported(packed, threshold_rules: bool) -> None:
        """Raise naming everything these kernels do not run (as ``refuse_unsupported`` in the torch backend)."""
        plan = packed.plan
        problems = []
        for proj_name, rule, kind, *_rest in packed.rule_slices:
            if kind not in _TIMING + _RATE + (pk.K_SCALE_NORMALIZE,):
                problems.append(f"plasticity rule {rule.name or rule.kind!r} ({rule.kind}) on projection {proj_name!r}")
        for pop in plan.populations:
            if pop.threshold_rule is not None and not threshold_rules:
                problems.append(f"threshold rule (intrinsic plasticity) of population {pop.name!r}")
        for proj in plan.projections:
            if proj.stp is not None:
                problems.append(f"short-term plasticity of projection {proj.name!r}")
        for tri in getattr(plan, "tripartites", []):
            problems.append(f"tripartite astrocyte {tri.name!r}")
        if problems:
            raise SimulationError("the torch plasticity kernels do not run these yet: " + "; ".join(problems)
                                  + ". Run this network with the numba backend.")

    @staticmethod
    def _projection_rows(packed, p):
        """(n_pre, n_post, first synapse, synapse count, CSR rows, source of each synapse, delays,
        post-major row pointers (absolute), first post-major row)."""
        plast, net = packed.plast, packed.net
        n_pre, n_post = int(plast.pp_npre[p]), int(plast.pp_npost[p])
        syn0, n_syn = int(plast.pp_syn0[p]), int(plast.pp_nsyn[p])
        r0 = int(net[9][p])
        rows = np.asarray(net[4][r0:r0 + n_pre + 1], np.int64)
        pre_of = np.repeat(np.arange(n_pre, dtype=np.int64), np.diff(rows))
        pm0 = int(plast.pp_pm0[p])
        return (n_pre, n_post, syn0, n_syn, r0, pre_of, np.asarray(net[7][syn0:syn0 + n_syn], np.int64),
                np.asarray(plast.pm_ptr[pm0:pm0 + n_post + 1], np.int64), pm0)

    def _build_rule(self, packed, r, ev_norm) -> _Rule:
        rules = packed.rules
        p = int(rules.r_proj[r])
        kind = self._r_kind[r]
        n_pre, n_post, syn0, n_syn, _r0, pre_of, _d, pm_ptr, _pm0 = self._projection_rows(packed, p)
        n_x, n_y = packed._TRACES[kind]
        lo, hi = int(rules.r_ev_lo[r]), int(rules.r_ev_hi[r])
        post = np.asarray(packed.net[5][syn0:syn0 + n_syn], np.int64)
        return _Rule(r=r, kind=kind, p=p, pre_ent=int(packed.net[8][p]), post_ent=int(packed.plast.pp_post_ent[p]),
                     n_post=n_post, syn=slice(syn0, syn0 + n_syn), post=self._long(post), pre=self._long(pre_of),
                     pm_local=self._long(np.asarray(packed.plast.pm_syn[pm_ptr[0]:pm_ptr[-1]], np.int64) - syn0),
                     interval=int(rules.r_interval[r]), events=frozenset(int(s) for s in ev_norm[lo:hi]),
                     x=[self._zeros(n_pre) for _ in range(n_x)], y=[self._zeros(n_post) for _ in range(n_y)])

    def _build_group(self, packed, key, members) -> _TimingGroup:
        kind, nearest, exclusive, dendritic, ring = key
        rules, plast, net = packed.rules, packed.plast, packed.net
        n_syn_total = self._n_syn
        syn_x = np.full(n_syn_total, -1, np.int64)
        syn_y = np.full(n_syn_total, -1, np.int64)
        syn_rule = np.full(n_syn_total, -1, np.int64)
        pre_slots, post_slots = {}, {}
        x_row, y_row, x_decay, y_decay = [], [], [], []
        Lh = max(int(plast.pp_Lh[int(rules.r_proj[r])]) for r in members) if ring else 0
        dptr, pdptr, e_syn, e_rule, e_mod = [], [], [], [], []
        X = Y = 0
        two = kind == pk.K_TRIPLET
        for q, r in enumerate(members):
            p = int(rules.r_proj[r])
            name = packed.plan.projections[p].name
            n_pre, n_post, syn0, n_syn, r0, pre_of, d, pm_ptr, pm0 = self._projection_rows(packed, p)
            sl = slice(syn0, syn0 + n_syn)
            syn_x[sl] = X + pre_of
            syn_y[sl] = Y + np.asarray(net[5][sl], np.int64)
            syn_rule[sl] = q
            pre_slots.setdefault(int(net[8][p]), []).append(X)
            post_slots.setdefault(int(plast.pp_post_ent[p]), []).append(Y)
            x_row.append(r0 + np.arange(n_pre))
            y_row.append(pm0 + np.arange(n_post))
            prm = self._prm[r]
            decays = (prm[6], prm[7], prm[8], prm[9]) if two else (prm[4], 1.0, prm[5], 1.0)
            x_decay.append(np.broadcast_to(np.asarray(decays[:2])[:, None], (2, n_pre)))
            y_decay.append(np.broadcast_to(np.asarray(decays[2:])[:, None], (2, n_post)))
            if Lh:
                if dendritic:
                    pm_local = np.asarray(plast.pm_syn[pm_ptr[0]:pm_ptr[-1]], np.int64) - syn0
                    pdptr.append(_delay_runs(np.repeat(np.arange(n_post), np.diff(pm_ptr)), d[pm_local], n_post, Lh,
                                             name) + pm_ptr[0])
                else:
                    dptr.append(_delay_runs(pre_of, d, n_pre, Lh, name) + syn0)
            if kind == pk.K_RSTDP:
                e_syn.append(np.arange(syn0, syn0 + n_syn))
                e_rule.append(np.full(n_syn, q))
                e_mod.append(np.full(n_syn, int(rules.r_mod[r])))
            X += n_pre
            Y += n_post
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
        n_tr = 2 if two else 1
        x_decay, y_decay = np.concatenate(x_decay, axis=1), np.concatenate(y_decay, axis=1)
        f64 = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float64)).to(self.device)  # noqa: E731
        astro = np.array([int(rules.r_astro[r]) for r in members])
        group = _TimingGroup(
            rules=list(members), kind=kind, nearest=nearest, exclusive=exclusive, dendritic=dendritic and Lh > 0,
            Lh=Lh, pre_slots={e: self._long(v) for e, v in pre_slots.items()},
            post_slots={e: self._long(v) for e, v in post_slots.items()}, x_row=self._long(cat(x_row)),
            y_row=self._long(cat(y_row)), syn_x=self._long(syn_x), syn_y=self._long(syn_y),
            syn_rule=self._long(syn_rule), prm=f64(self._prm[members]), shared=[],
            astro=self._long(np.maximum(astro, 0)), gated=torch.from_numpy(astro >= 0).to(self.device),
            any_gated=bool(np.any(astro >= 0)), all_gated=bool(np.all(astro >= 0)), astro_scale=f64(self._astro_scale[members]), x_decay=[f64(x_decay[t]) for t in range(n_tr)],
            y_decay=[f64(y_decay[t]) for t in range(n_tr)], x=[self._zeros(X) for _ in range(n_tr)],
            y=[self._zeros(Y) for _ in range(n_tr)])
        self._share_columns(group)
        if Lh:
            if group.dendritic:
                group.post_ring = self._zeros(Lh, self.batch, Y, dtype=torch.bool)
                group.pdptr = self._long(np.concatenate(pdptr))
                group.yhist = [self._zeros(Lh, self.batch, Y) for _ in range(n_tr)]
            else:
                group.ring = self._zeros(Lh, self.batch, X, dtype=torch.bool)
                group.dptr = self._long(np.concatenate(dptr))
                group.xhist = [self._zeros(Lh, self.batch, X) for _ in range(n_tr)]
        if kind == pk.K_RSTDP:
            e = cat(e_syn)
            syn_e = np.full(n_syn_total, -1, np.int64)
            syn_e[e] = np.arange(e.size)
            group.elig = self._zeros(e.size)
            group.syn_e, group.e_syn = self._long(syn_e), self._long(e)
            group.e_rule, group.e_mod = self._long(cat(e_rule)), self._long(cat(e_mod))
        return group

    def _share_columns(self, group: _TimingGroup) -> None:
        """Columns all members agree on are read as plain floats (no per-event gather)."""
        prm = self._prm[group.rules]
        group.shared = [float(prm[0, c]) if np.all(prm[:, c] == prm[0, c]) else None for c in range(prm.shape[1])]

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------
    def _groups_state(self):
        """(name, tensor) of every piece of group and rule state."""
        for g, group in enumerate(self._groups):
            for label, tensors in (("pre_trace", group.x), ("post_trace", group.y),
                                   ("pre_trace_history", group.xhist), ("post_trace_history", group.yhist)):
                for q, t in enumerate(tensors):
                    yield f"group{g}.{label}{q}", t
            for label, t in (("spike_history", group.ring), ("post_spike_history", group.post_ring),
                             ("eligibility", group.elig)):
                if t is not None:
                    yield f"group{g}.{label}", t
        for r, rule in self._rules.items():
            for label, tensors in (("pre_trace", rule.x), ("post_trace", rule.y)):
                for q, t in enumerate(tensors):
                    yield f"rule{r}.{label}{q}", t

    def reset(self) -> None:
        """Traces, histories, eligibilities, dopamine and astrocyte states back to their initial
        values (new samples)."""
        for _, t in self._groups_state():
            t.zero_()
        self.dopamine.copy_(self._da_init)
        for live, init in zip((self.astro_A, self.astro_w, self.astro_b), self._astro_init):
            live.copy_(init)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Name -> live tensor of every piece of state (for save/restore: copy into them)."""
        out = dict(self._groups_state())
        if self.dopamine.shape[1]:
            out["dopamine"] = self.dopamine
        if self.astro_A.shape[1]:
            out.update({"astrocyte_A": self.astro_A, "astrocyte_w": self.astro_w, "astrocyte_b": self.astro_b})
        return out

    def set_learning_rate_scale(self, scale, amplitudes: bool = True) -> None:
        """As :meth:`NumbaBackend.set_learning_rate_scale`: every rule's learning rates (and the
        astrocyte-driven depression) at ``scale`` times their built values.

        ``scale`` may also hold one value per copy (``(B,)``): the copies of a batch present
        samples at different points of a learning-rate schedule. Each event then uses its copy's
        ``base * scale[b]``, the product numba forms once for the same scale.
        """
        if np.ndim(scale):
            rates = np.asarray(scale, np.float64)
            if rates.shape != (self.batch,) or not amplitudes:
                raise SimulationError(f"per-copy learning-rate scales need one value per copy ({self.batch}) "
                                      f"and amplitudes=True; got shape {rates.shape}")
            self._copy_rate = torch.from_numpy(rates).to(self.device, self.dtype)
            scale = 1.0
        else:
            self._copy_rate = None
        if amplitudes:
            for r, kind in enumerate(self._r_kind):
                cols = list(pk.LEARNING_RATE_COLUMNS[kind])
                self._prm[r, cols] = self._base_prm[r, cols] * scale
        self._astro_scale[:] = self._base_astro * scale
        for group in self._groups:
            group.prm.copy_(torch.from_numpy(self._prm[group.rules]))
            group.astro_scale.copy_(torch.from_numpy(self._astro_scale[group.rules]))
            self._share_columns(group)

    # ------------------------------------------------------------------------------------------
    # the per-step pass
    # ------------------------------------------------------------------------------------------
    def step(self, k: int, spikes: dict[int, torch.Tensor], weight: torch.Tensor) -> None:
        """Plasticity of step ``k`` (after the neuron update of step ``k``), in place on ``weight``.

        Parameters
        ----------
        k : int
            Step counter.
        spikes : dict
            Entity -> int64 tensor of flat indices ``b * entity_size + i`` (ascending) of the
            step's spikes; a missing entity has none.
        weight : torch.Tensor
            ``(B, n_syn)``: every synapse of the packed CSR; signed weights.
        """
        k = int(k)
        for m, amp in self._reward_jumps.get(k, ()):
            self.dopamine[:, m] += amp
        split = {}
        for e, flat in spikes.items():
            if flat is not None and flat.numel():
                flat = flat.to(self.device, torch.int64)
                split[e] = (torch.div(flat, self.entity_sizes[e], rounding_mode="floor"), flat % self.entity_sizes[e])
        for what, index in self._schedule:
            if what == "group":
                group = self._groups[index]
                if group.dendritic:
                    self._timing_group_dendritic(k, group, weight, split)
                else:
                    self._timing_group(k, group, weight, split)
                if group.kind == pk.K_RSTDP:
                    self._reward_integration(group, weight)
            else:
                rule = self._rules[index]
                if rule.kind == pk.K_SCALE_NORMALIZE:
                    due = (k in rule.events) if rule.events else (k + 1) % rule.interval == 0
                    if due:
                        self._normalize(rule, weight)
                else:
                    self._rate_rule(k, rule, weight, split.get(rule.pre_ent), split.get(rule.post_ent))
        self._astrocytes(split)
        for m, (tonic, P) in enumerate(zip(self._da_tonic, self._da_P)):
            d = self.dopamine[:, m]
            d.copy_(tonic + (d - tonic) * P)

    # -- the synapses touched in a step --------------------------------------------------------
    @staticmethod
    def _slots(offsets: dict, split: dict):
        """``(b, slot)`` of the step's spikes in a group's trace slots: every spike of an entity
        feeds the slot of each member rule it is the source (target) of."""
        bs, slots = [], []
        for e, off in offsets.items():
            spk = split.get(e)
            if spk is None:
                continue
            b, i = spk
            bs.append(b.repeat(off.numel()))
            slots.append((off[:, None] + i[None, :]).reshape(-1))
        if not bs:
            return None
        return (bs[0], slots[0]) if len(bs) == 1 else (torch.cat(bs), torch.cat(slots))

    @staticmethod
    def _row_entries(ptr: torch.Tensor, rows: torch.Tensor):
        """Every entry of the listed rows of a CSR-like index: ``(owner, entry)``."""
        return _expand(ptr[rows], ptr[rows + 1] - ptr[rows])

    @staticmethod
    def _ring_runs(k: int, ring: torch.Tensor, spikes, dptr: torch.Tensor):
        """Record step ``k``'s spikes ``(b, slot)`` in ``ring`` (Lh, B, n), then the entries that
        reach their synapses in step ``k``: for a spike of step ``e`` the run of delay
        ``k - e + 1`` of its row. Returns ``(b, slot, entry, ring slot of e)`` or None."""
        Lh = ring.shape[0]
        ring[k % Lh].zero_()
        if spikes is not None:
            ring[k % Lh][spikes] = True
        sl, b, row = torch.nonzero(ring, as_tuple=True)
        if sl.numel() == 0:
            return None
        dd = torch.remainder(k - sl, Lh) + 1
        start = dptr[row, dd - 1]
        ex = _expand(start, dptr[row, dd] - start)
        if ex is None:
            return None
        owner, entry = ex
        return b[owner], row[owner], entry, sl[owner]

    def _history_value(self, k: int, Lh: int, hist: torch.Tensor, b, slot, s) -> torch.Tensor:
        """``hist`` at step ``k - d + 1`` (the delay of synapse ``s``), 0 before step 0."""
        em = k - self._delay[s] + 1
        return torch.where(em >= 0, hist[torch.remainder(em, Lh), b, slot], self._zero)

    # -- per-event maths -----------------------------------------------------------------------
    @staticmethod
    def _column(group: _TimingGroup, c: int, q):
        """Parameter column ``c`` of the events' rules ``q``: a float when the members share it."""
        v = group.shared[c]
        return v if v is not None else group.prm[q, c]

    def _amplitude3(self, group: _TimingGroup, b, q, rate):
        """Column 3 of each event's rule parameters (pair STDP's depression amplitude): set per
        sample by the rule's astrocyte (``A(t) A_minus / A(0)``) where it has one. ``rate``: the
        events' per-copy learning-rate scales, or None."""
        a3 = self._column(group, 3, q)
        if rate is not None:
            a3 = a3 * rate
        if not group.any_gated:
            return a3
        astro_scale = group.astro_scale[q] if rate is None else group.astro_scale[q] * rate
        gated = self.astro_A[b, group.astro[q]] * astro_scale
        if group.all_gated:
            return gated
        return torch.where(group.gated[q], gated, a3)

    def _clip(self, m, lo, hi):
        """numba's ``clip`` (bounds: floats, or per-event tensors)."""
        if isinstance(lo, float) and isinstance(hi, float):
            return torch.clamp(m, lo, hi)
        as_t = lambda v: torch.as_tensor(v, dtype=self.dtype, device=self.device)  # noqa: E731
        return torch.clamp(m, as_t(lo), as_t(hi))

    def _unit(self, m, lo, span):
        """``(m - lo) / span`` in [0, 1], 0 where the bounds coincide (numba's ``unit_weight``)."""
        if isinstance(span, float):
            return ((m - lo) / span).clamp(0.0, 1.0) if span > 0 else torch.zeros_like(m)
        return torch.where(span > 0, (m - lo) / torch.where(span > 0, span, torch.ones_like(span)),
                           torch.zeros_like(m)).clamp(0.0, 1.0)

    def _pre_update(self, group, m, col, y0, r2, a3, swap):
        """New magnitudes at presynaptic events (numba's ``_pre_update``; R-STDP elsewhere)."""
        lo, hi = col(pk.C_LO), col(pk.C_HI)
        kind = group.kind
        if kind == pk.K_STDP_ADD:
            A = a3 if swap is None else torch.where(swap, col(2), a3)
            return self._clip(m - A * y0, lo, hi)
        if kind == pk.K_STDP_MULT:
            span = hi - lo
            u = self._unit(m, lo, span)
            u = torch.clamp_min(u - a3 * torch.pow(u, col(7)) * y0, 0.0)
            return lo + u * span
        if kind == pk.K_TRIPLET:
            return self._clip(m - y0 * (col(4) + col(5) * r2), lo, hi)
        return self._clip(m + col(2) * y0, lo, hi)  # symmetric

    def _post_update(self, group, m, col, x0, o2, a3, swap):
        """New magnitudes at postsynaptic events (numba's ``_post_update``; R-STDP elsewhere)."""
        lo, hi = col(pk.C_LO), col(pk.C_HI)
        kind = group.kind
        if kind == pk.K_STDP_ADD:
            A = col(2) if swap is None else torch.where(swap, a3, col(2))
            return self._clip(m + A * x0, lo, hi)
        if kind == pk.K_STDP_MULT:
            span = hi - lo
            u = self._unit(m, lo, span)
            u = torch.clamp_max(u + col(2) * torch.pow(1.0 - u, col(6)) * x0, 1.0)
            return lo + u * span
        if kind == pk.K_TRIPLET:
            return self._clip(m + x0 * (col(2) + a3 * o2), lo, hi)
        return self._clip(m + a3 * x0, lo, hi)  # symmetric: column 3 is eta_post a

    def _event(self, group: _TimingGroup, weight, b, s, pre: bool, trace, other) -> None:
        """Presynaptic (``pre``) or postsynaptic events on the (unique) synapses ``(b, s)``, reading
        the trace value ``trace`` of the other side (and the triplet's ``r2`` / ``o2``). Rules act
        on magnitudes (Dale's law); an astrocyte-gated inhibitory synapse swaps the additive
        amplitudes; R-STDP moves its eligibility instead of the weight."""
        q = group.syn_rule[s]
        rate = None if self._copy_rate is None else self._copy_rate[b]
        learning_rates = pk.LEARNING_RATE_COLUMNS[group.kind]

        def col(c):
            v = self._column(group, c, q)
            return v * rate if rate is not None and c in learning_rates else v

        a3 = self._amplitude3(group, b, q, rate)
        if group.kind == pk.K_RSTDP:
            e = group.syn_e[s]
            if pre:
                group.elig[b, e] -= a3 * trace
            else:
                group.elig[b, e] += col(2) * trace
            return
        sg = self._sign[s]
        m = weight[b, s].to(self.dtype) * sg
        swap = (group.gated[q] & self._negative[s]) if group.any_gated and group.kind == pk.K_STDP_ADD else None
        m = (self._pre_update if pre else self._post_update)(group, m, col, trace, other, a3, swap)
        weight[b, s] = (m * sg).to(weight.dtype)

    @staticmethod
    def _bump(traces: list, spikes, nearest: bool) -> None:
        """Spikes ``(b, slot)``: each trace becomes 1 (nearest-spike pairing) or gains 1 (all-to-all)."""
        if spikes is None:
            return
        for tr in traces:
            if nearest:
                tr[spikes] = 1.0
            else:
                tr[spikes] += 1.0

    @staticmethod
    def _decay(group: _TimingGroup) -> None:
        for tr, f in zip(group.x, group.x_decay):
            tr.mul_(f)
        for tr, f in zip(group.y, group.y_decay):
            tr.mul_(f)

    # -- timing rules --------------------------------------------------------------------------
    def _timing_group(self, k, group: _TimingGroup, weight, split) -> None:
        """Axonal delays (numba's ``_timing_rule``): presynaptic events at their arrival."""
        Lh = group.Lh
        two = group.kind == pk.K_TRIPLET
        pre = self._slots(group.pre_slots, split)
        post = self._slots(group.post_slots, split)
        x0, y0 = group.x[0], group.y[0]
        slot = k % Lh if Lh else 0
        # (S1) history of the traces before this step's increment
        if Lh:
            if group.exclusive:
                group.xhist[0][slot].copy_(x0)
            if two:
                group.xhist[1][slot].copy_(group.x[1])
        # (S2) presynaptic arrivals read the postsynaptic traces before their increment
        if Lh:
            arrivals = self._ring_runs(k, group.ring, pre, group.dptr)
        elif pre is not None:
            ex = self._row_entries(self._indptr, group.x_row[pre[1]])
            arrivals = None if ex is None else (pre[0][ex[0]], pre[1][ex[0]], ex[1], None)
        else:
            arrivals = None
        if arrivals is not None:
            b, xs, s, sl = arrivals
            r2 = None
            if two:
                r2 = group.xhist[1][sl, b, xs] if Lh else group.x[1][b, xs]
            self._event(group, weight, b, s, True, y0[b, group.syn_y[s]], r2)
        # (S3)/(S4) presynaptic increments and postsynaptic events
        post_first = group.exclusive and not Lh
        for phase in range(2):
            if (phase == 0) != post_first:
                self._bump(group.x, pre, group.nearest)
                if Lh and not group.exclusive:
                    group.xhist[0][slot].copy_(x0)
            elif post is not None:
                ex = self._row_entries(self._pm_ptr, group.y_row[post[1]])
                if ex is None:
                    continue
                owner, t = ex
                b, ys, s = post[0][owner], post[1][owner], self._pm_syn[t]
                xs = group.syn_x[s]
                x = self._history_value(k, Lh, group.xhist[0], b, xs, s) if Lh else x0[b, xs]
                self._event(group, weight, b, s, False, x, group.y[1][b, ys] if two else None)
        # (S5) postsynaptic increments, (S6) decay of every trace to the next step
        self._bump(group.y, post, group.nearest)
        self._decay(group)

    def _timing_group_dendritic(self, k, group: _TimingGroup, weight, split) -> None:
        """Dendritic delays (numba's ``_timing_rule_dendritic``, NEST's convention): a presynaptic
        spike acts at emission and reads the postsynaptic trace of ``k - d + 1``; a postsynaptic
        spike reaches a synapse of delay ``d`` ``d - 1`` steps late and reads the presynaptic trace then."""
        Lh = group.Lh
        two = group.kind == pk.K_TRIPLET
        pre = self._slots(group.pre_slots, split)
        post = self._slots(group.post_slots, split)
        # history of the postsynaptic traces before this step's increments
        for hist, tr in zip(group.yhist, group.y):
            hist[k % Lh].copy_(tr)
        if pre is not None:
            ex = self._row_entries(self._indptr, group.x_row[pre[1]])
            if ex is not None:
                owner, s = ex
                b, xs = pre[0][owner], pre[1][owner]
                y = self._history_value(k, Lh, group.yhist[0], b, group.syn_y[s], s)
                self._event(group, weight, b, s, True, y, group.x[1][b, xs] if two else None)
        delayed = self._ring_runs(k, group.post_ring, post, group.pdptr)
        for phase in range(2):
            if (phase == 0) != group.exclusive:
                self._bump(group.x, pre, group.nearest)
            elif delayed is not None:
                b, ys, t, sl = delayed
                s = self._pm_syn[t]
                self._event(group, weight, b, s, False, group.x[0][b, group.syn_x[s]],
                            group.yhist[1][sl, b, ys] if two else None)
        self._bump(group.y, post, group.nearest)
        self._decay(group)

    def _reward_integration(self, group: _TimingGroup, weight) -> None:
        """R-STDP: ``w += c d dt`` on every synapse with eligibility while its sample's dopamine
        is not zero, then the eligibility decays."""
        q = group.e_rule
        d = self.dopamine[:, group.e_mod]
        c = group.elig
        s = group.e_syn
        w = weight[:, s]
        sg = self._sign[s]
        new = self._clip(w.to(self.dtype) * sg + c * (d * self._column(group, 7, q)), self._column(group, pk.C_LO, q),
                         self._column(group, pk.C_HI, q)) * sg
        weight[:, s] = torch.where((c != 0.0) & (d != 0.0), new.to(w.dtype), w)
        c.mul_(self._column(group, 6, q))

    # -- rate rules, scaling -------------------------------------------------------------------
    def _rate_rule(self, k, rule: _Rule, weight, pre, post) -> None:
        """Oja / BCM on rate traces (Hz) and activity scaling, updated every ``interval`` steps."""
        prm = self._prm[rule.r]
        lo, hi = float(prm[pk.C_LO]), float(prm[pk.C_HI])
        kind = rule.kind
        inc, decay = (float(prm[5]), float(prm[4])) if kind == pk.K_SCALE_ACTIVITY else (float(prm[4]), float(prm[3]))
        y = rule.y[0]
        if kind != pk.K_SCALE_ACTIVITY and pre is not None:
            rule.x[0][pre] += inc
        if post is not None:
            y[post] += inc
        if kind == pk.K_BCM:
            theta = rule.y[1]
            target = y * y / float(prm[6])
            theta.copy_(target + (theta - target) * float(prm[7]))
        if (k + 1) % rule.interval == 0:
            s = rule.syn
            sign = self._sign[s]
            m = weight[:, s].to(self.dtype) * sign
            yi = y[:, rule.post]
            eta = float(prm[2]) if self._copy_rate is None else (float(prm[2]) * self._copy_rate)[:, None]
            if kind == pk.K_OJA:
                m = m + eta * yi * (rule.x[0][:, rule.pre] - yi * m) * float(prm[5])
            elif kind == pk.K_BCM:
                m = m + eta * rule.x[0][:, rule.pre] * yi * (yi - rule.y[1][:, rule.post]) * float(prm[5])
            else:
                m = m + eta * m * (float(prm[3]) - yi)
            weight[:, s] = (torch.clamp(m, lo, hi) * sign).to(weight.dtype)
        if kind != pk.K_SCALE_ACTIVITY:
            rule.x[0].mul_(decay)
        y.mul_(decay)

    def _normalize(self, rule: _Rule, weight) -> None:
        """Every target's incoming magnitudes rescaled to sum ``target_sum`` (rows summing to 0 kept).
        The sums run in numba's post-major order."""
        prm = self._prm[rule.r]
        lo, hi = float(prm[pk.C_LO]), float(prm[pk.C_HI])
        s = rule.syn
        sign = self._sign[s]
        m = weight[:, s].to(self.dtype) * sign
        local = rule.pm_local
        total = torch.zeros((self.batch, rule.n_post), dtype=m.dtype, device=self.device)
        total.index_add_(1, rule.post[local], m[:, local])
        ok = total > 0.0
        f = torch.where(ok, float(prm[2]) / torch.where(ok, total, torch.ones_like(total)), torch.ones_like(total))
        scaled = torch.clamp(m * f[:, rule.post], lo, hi)
        weight[:, s] = (torch.where(ok[:, rule.post], scaled, m) * sign).to(weight.dtype)

    # -- intrinsic plasticity --------------------------------------------------------------------
    def threshold_step(self, spikes: dict[int, torch.Tensor], theta: dict[int, torch.Tensor],
                       p_theta: dict[int, torch.Tensor]) -> None:
        """Intrinsic plasticity (Hao form, MODELS.md §4.7) of step ``k``'s spikes, in place on the
        neuron state (built with ``threshold_rules=True``; call it after :meth:`step`).

        Parameters
        ----------
        spikes : dict
            As for :meth:`step`.
        theta : dict
            Entity -> ``(B, n)`` live view of the population's threshold offset ``theta`` after the
            neuron update of step ``k`` (which already decayed it).
        p_theta : dict
            Entity -> ``(n,)`` per-step decay factor of ``theta`` (numba's ``PTHETA`` row).

        Notes
        -----
        As numba: the increment is read against ``theta`` at the spike (``theta / p_theta``) and
        decayed too, ``theta += theta_plus (offset - 10) / |theta_spike - 10| p_theta``.
        """
        for _name, e, theta_plus, offset in self.threshold_rules:
            flat = spikes.get(e)
            if flat is None or flat.numel() == 0:
                continue
            flat = flat.to(self.device, torch.int64)
            size = self.entity_sizes[e]
            b, i = torch.div(flat, size, rounding_mode="floor"), flat % size
            th, decay = theta[e], p_theta[e][i].to(theta[e].dtype)
            at_spike = th[b, i] / decay
            th[b, i] += theta_plus * (offset - 10.0) / torch.abs(at_spike - 10.0) * decay

    # -- astrocytes ----------------------------------------------------------------------------
    def _astrocytes(self, split) -> None:
        """(7) every astrocyte integrates its sample's liquid-minus-reference spike count, then decays."""
        B = self.batch
        for a, (liquid, reference) in enumerate(self._astro_counts):
            diff = torch.zeros(B, dtype=torch.int64, device=self.device)
            for ents, sgn in ((liquid, 1), (reference, -1)):
                for e in ents:
                    if e in split:
                        diff += sgn * torch.bincount(split[e][0], minlength=B)
            A, w, bias = self.astro_A[:, a], self.astro_w[:, a], self.astro_b[:, a]
            A += (w * diff.to(self.dtype) + bias - A) * self._astro_rate[a]
            A *= self._astro_decay[a]
            w *= self._astro_decay[a]
            bias *= self._astro_decay[a]
