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

Refused with a :class:`SimulationError` naming them: intrinsic threshold rules (they act on neuron
state, which belongs to the backend), short-term plasticity and tripartite astrocytes.

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

Per step and projection, the order is numba's ``_timing_rule``: (S1) history of the presynaptic
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

from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import SimulationError
from engine.kernels import plasticity as pk

_TIMING = (pk.K_STDP_ADD, pk.K_STDP_MULT, pk.K_TRIPLET, pk.K_SYMMETRIC, pk.K_RSTDP)
_RATE = (pk.K_OJA, pk.K_BCM, pk.K_SCALE_ACTIVITY)
_KIND_NAMES = {pk.K_STDP_ADD: "stdp", pk.K_STDP_MULT: "stdp", pk.K_TRIPLET: "triplet", pk.K_SYMMETRIC: "symmetric",
               pk.K_RSTDP: "rstdp", pk.K_OJA: "oja", pk.K_BCM: "bcm", pk.K_SCALE_ACTIVITY: "scaling_activity",
               pk.K_SCALE_NORMALIZE: "scaling_normalize"}


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


@dataclass
class _Projection:
    """Index tables of one plastic projection on the device, and its presynaptic spike ring."""

    p: int
    name: str
    pre_ent: int
    post_ent: int
    n_pre: int
    n_post: int
    syn0: int
    n_syn: int
    Lh: int                       # history length (max delay) or 0 when every delay is one step
    indptr: torch.Tensor          # (n_pre + 1,) absolute synapse ids
    post: torch.Tensor            # (n_syn,) target of each synapse (local index)
    pre: torch.Tensor             # (n_syn,) source of each synapse
    delay: torch.Tensor           # (n_syn,) int64
    sign: torch.Tensor            # (n_syn,) +1 / -1 (Dale), in the rules' dtype
    negative: torch.Tensor        # (n_syn,) bool: inhibitory synapse
    pm_ptr: torch.Tensor          # (n_post + 1,) into pm_syn / pm_pre
    pm_syn: torch.Tensor          # absolute synapse ids, post-major
    pm_pre: torch.Tensor
    dptr: torch.Tensor | None     # (n_pre, Lh + 1): start of the delay-d run of row j at column d - 1
    pdptr: torch.Tensor | None    # (n_post, Lh + 1): the same over the post-major rows (dendritic delays)
    axonal: bool                  # a timing rule pairs at presynaptic arrivals (or every delay is one step)
    dendritic: bool               # a timing rule has dendritic delays
    spike_ring: torch.Tensor | None  # (Lh, B, n_pre) bool: presynaptic spikes of the last Lh steps (axonal)
    post_ring: torch.Tensor | None   # (Lh, B, n_post) bool: postsynaptic spikes of the last Lh steps (dendritic)


@dataclass
class _Rule:
    """One rule (numba's application order) and its traces."""

    r: int
    kind: int
    proj: _Projection
    name: str
    nearest: bool
    exclusive: bool
    astro: int
    interval: int
    events: frozenset  # scaling_normalize: the steps it acts at (empty: every ``interval``)
    has_events: bool
    x: list            # presynaptic traces (B, n_pre): 1 (pair, symmetric, Oja, BCM) or 2 (triplet)
    y: list            # postsynaptic traces (B, n_post): 1, or 2 (triplet; BCM: rate and theta)
    xhist: list        # (Lh, B, n_pre) histories of the presynaptic traces (axonal timing rules, Lh > 1)
    dendritic: bool    # the delay sits on the dendrite (NEST's convention)
    yhist: list        # (Lh, B, n_post) histories of the postsynaptic traces (dendritic rules)
    mod: int           # reward signal (R-STDP) or -1
    elig: torch.Tensor | None  # (B, n_syn) eligibility of the projection's synapses (R-STDP)


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
    """

    def __init__(self, packed, batch: int, device: torch.device, dtype: torch.dtype):
        self.batch = int(batch)
        if self.batch < 1:
            raise SimulationError(f"batch must be >= 1, got {batch}")
        self.device = torch.device(device)
        self.weight_dtype = dtype
        #: traces, eligibilities, dopamine, astrocytes and the rule arithmetic: float64, as numba's
        #: kernels (a float32 weight is promoted, updated and rounded back)
        self.dtype = torch.float64
        self.entity_sizes = [int(x) for x in packed.entity_sizes]
        self._zero = torch.zeros((), dtype=self.dtype, device=self.device)
        self._refuse_unsupported(packed)
        rules, plast = packed.rules, packed.plast
        self._prm = np.array(rules.r_prm, np.float64, copy=True)
        self._astro_scale = np.array(rules.r_astro_scale, np.float64, copy=True)
        base_prm, base_astro = getattr(packed, "_base_rates", (self._prm.copy(), self._astro_scale.copy()))
        self._base_prm, self._base_astro = np.array(base_prm, np.float64), np.array(base_astro, np.float64)
        net = packed.net
        indptr, post, delay, row_off = net[4], net[5], net[7], net[9]
        self._projections: dict[int, _Projection] = {}
        for p in (int(q) for q in plast.pl_proj):
            self._projections[p] = self._build_projection(packed, p, indptr, post, delay, row_off)
        self.plastic_projections = sorted(self._projections)
        ev_norm = np.asarray(rules.ev_norm, np.int64)
        self._rules: list[_Rule] = []
        for r, kind in enumerate(int(x) for x in rules.r_kind):
            proj = self._projections[int(rules.r_proj[r])]
            n_x, n_y = packed._TRACES[kind]
            timing = kind in _TIMING
            dendritic = bool(rules.r_dend[r])
            n_hist = (2 if kind == pk.K_TRIPLET else 1) if (timing and proj.Lh > 1) else 0
            lo, hi = int(rules.r_ev_lo[r]), int(rules.r_ev_hi[r])
            self._rules.append(_Rule(
                r=r, kind=kind, proj=proj, name=packed.rule_slices[r][1].name or _KIND_NAMES[kind],
                nearest=bool(rules.r_nearest[r]), exclusive=bool(rules.r_excl[r]), astro=int(rules.r_astro[r]),
                interval=int(rules.r_interval[r]), events=frozenset(int(s) for s in ev_norm[lo:hi]), has_events=hi > lo,
                x=[self._zeros(proj.n_pre) for _ in range(n_x)], y=[self._zeros(proj.n_post) for _ in range(n_y)],
                xhist=self._rings(proj.Lh, proj.n_pre, 0 if dendritic else n_hist), dendritic=dendritic,
                yhist=self._rings(proj.Lh, proj.n_post, n_hist if dendritic else 0), mod=int(rules.r_mod[r]),
                elig=self._zeros(proj.n_syn) if kind == pk.K_RSTDP else None))
        # reward signals (dopamine), one level per sample: (B, M); the jumps of each step
        mods = packed.plan.modulators
        self._da_tonic = [float(x) for x in plast.md_tonic]
        self._da_P = [float(x) for x in plast.md_P]
        self.dopamine = self._zeros(len(mods))
        self._da_init = torch.tensor(self._da_tonic, dtype=self.dtype, device=self.device).expand(self.batch, len(mods))
        self.dopamine.copy_(self._da_init)
        self._reward_jumps: dict[int, list] = {}
        for m in range(len(mods)):
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
    def _zeros(self, n: int) -> torch.Tensor:
        """A ``(B, n)`` trace at rest."""
        return torch.zeros((self.batch, n), dtype=self.dtype, device=self.device)

    def _rings(self, Lh: int, n: int, count: int) -> list:
        """``count`` trace history rings ``(Lh, B, n)``."""
        return [torch.zeros((Lh, self.batch, n), dtype=self.dtype, device=self.device) for _ in range(count)]

    @staticmethod
    def _refuse_unsupported(packed) -> None:
        """Raise naming everything these kernels do not run (as ``refuse_unsupported`` in the torch backend)."""
        plan = packed.plan
        problems = []
        for r, (proj_name, rule, kind, *_rest) in enumerate(packed.rule_slices):
            if kind not in _TIMING + _RATE + (pk.K_SCALE_NORMALIZE,):
                problems.append(f"plasticity rule {rule.name or rule.kind!r} ({rule.kind}) on projection {proj_name!r}")
        for pop in plan.populations:
            if pop.threshold_rule is not None:
                problems.append(f"threshold rule (intrinsic plasticity) of population {pop.name!r}")
        for proj in plan.projections:
            if proj.stp is not None:
                problems.append(f"short-term plasticity of projection {proj.name!r}")
        for tri in getattr(plan, "tripartites", []):
            problems.append(f"tripartite astrocyte {tri.name!r}")
        if problems:
            raise SimulationError("the torch plasticity kernels do not run these yet: " + "; ".join(problems)
                                  + ". Run this network with the numba backend.")

    def _build_projection(self, packed, p, indptr, post, delay, row_off) -> _Projection:
        plast, rules = packed.plast, packed.rules
        dev = self.device
        proj_plan = packed.plan.projections[p]
        n_pre, n_post = int(plast.pp_npre[p]), int(plast.pp_npost[p])
        syn0, n_syn, Lh = int(plast.pp_syn0[p]), int(plast.pp_nsyn[p]), int(plast.pp_Lh[p])
        r0 = int(row_off[p])
        rows = np.asarray(indptr[r0:r0 + n_pre + 1], np.int64)
        d = np.asarray(delay[syn0:syn0 + n_syn], np.int64)
        pre_of = np.repeat(np.arange(n_pre, dtype=np.int64), np.diff(rows))
        pm0 = int(plast.pp_pm0[p])
        pm_ptr = np.asarray(plast.pm_ptr[pm0:pm0 + n_post + 1], np.int64)
        pm_lo, pm_hi = int(pm_ptr[0]), int(pm_ptr[-1])
        sg0 = int(plast.pp_sg0[p])
        sign = np.asarray(plast.w_sign[sg0:sg0 + n_syn], np.float64)
        mine = [r for r in range(len(rules.r_kind)) if int(rules.r_proj[r]) == p and int(rules.r_kind[r]) in _TIMING]
        dendritic = Lh > 1 and any(bool(rules.r_dend[r]) for r in mine)
        axonal = any(not bool(rules.r_dend[r]) for r in mine)
        dptr = pdptr = None
        if Lh > 1:
            # rows are sorted by delay (engine.plan), post-major rows too (numba's build): the run
            # of delay d in row j starts at the first synapse whose (row, delay) key reaches (j, d)
            dptr = self._delay_runs(pre_of, d, n_pre, Lh, proj_plan.name) + syn0
            pm_local = np.asarray(plast.pm_syn[pm_lo:pm_hi], np.int64) - syn0
            pdptr = self._delay_runs(np.repeat(np.arange(n_post), np.diff(pm_ptr)), d[pm_local], n_post, Lh,
                                     proj_plan.name)

        def t(a):
            return torch.from_numpy(np.ascontiguousarray(a, np.int64)).to(dev)

        return _Projection(
            p=p, name=proj_plan.name, pre_ent=int(packed.net[8][p]), post_ent=int(plast.pp_post_ent[p]),
            n_pre=n_pre, n_post=n_post, syn0=syn0, n_syn=n_syn, Lh=Lh, indptr=t(rows), post=t(post[syn0:syn0 + n_syn]),
            pre=t(pre_of), delay=t(d), sign=torch.from_numpy(sign).to(dev, self.dtype),
            negative=torch.from_numpy(sign < 0).to(dev), pm_ptr=t(pm_ptr - pm_lo),
            pm_syn=t(plast.pm_syn[pm_lo:pm_hi]), pm_pre=t(plast.pm_pre[pm_lo:pm_hi]),
            dptr=None if dptr is None else t(dptr), pdptr=None if pdptr is None else t(pdptr), axonal=axonal,
            dendritic=dendritic,
            spike_ring=(torch.zeros((Lh, self.batch, n_pre), dtype=torch.bool, device=dev)
                        if Lh > 1 and axonal else None),
            post_ring=(torch.zeros((Lh, self.batch, n_post), dtype=torch.bool, device=dev) if dendritic else None))

    @staticmethod
    def _delay_runs(row_of: np.ndarray, delay: np.ndarray, n_rows: int, Lh: int, name: str) -> np.ndarray:
        """``(n_rows, Lh + 1)``: position of the first entry of delay ``d`` (column ``d - 1``) in each
        row of a row-sorted, delay-sorted-within-rows list; column ``Lh`` is the row's end."""
        key = row_of * (Lh + 2) + delay
        if np.any(np.diff(key) < 0):
            raise SimulationError(f"projection {name!r}: synapses are not sorted by delay within rows")
        want = np.arange(n_rows)[:, None] * (Lh + 2) + np.arange(1, Lh + 2)[None, :]
        return np.searchsorted(key, want.ravel()).reshape(n_rows, Lh + 1)

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Traces, history rings and astrocyte states back to their initial values (new samples)."""
        for rule in self._rules:
            for t in (*rule.x, *rule.y, *rule.xhist, *rule.yhist, *([rule.elig] if rule.elig is not None else [])):
                t.zero_()
        for proj in self._projections.values():
            for ring in (proj.spike_ring, proj.post_ring):
                if ring is not None:
                    ring.zero_()
        self.dopamine.copy_(self._da_init)
        for live, init in zip((self.astro_A, self.astro_w, self.astro_b), self._astro_init):
            live.copy_(init)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Name -> live tensor of every piece of state (for save/restore: copy into them)."""
        out = {}
        for rule in self._rules:
            for q, t in enumerate(rule.x):
                out[f"rule{rule.r}.pre_trace{q}"] = t
            for q, t in enumerate(rule.y):
                out[f"rule{rule.r}.post_trace{q}"] = t
            for q, t in enumerate(rule.xhist):
                out[f"rule{rule.r}.pre_trace_history{q}"] = t
            for q, t in enumerate(rule.yhist):
                out[f"rule{rule.r}.post_trace_history{q}"] = t
            if rule.elig is not None:
                out[f"rule{rule.r}.eligibility"] = rule.elig
        for p, proj in self._projections.items():
            if proj.spike_ring is not None:
                out[f"projection{p}.spike_history"] = proj.spike_ring
            if proj.post_ring is not None:
                out[f"projection{p}.post_spike_history"] = proj.post_ring
        if self.dopamine.shape[1]:
            out["dopamine"] = self.dopamine
        if self.astro_A.shape[1]:
            out.update({"astrocyte_A": self.astro_A, "astrocyte_w": self.astro_w, "astrocyte_b": self.astro_b})
        return out

    def set_learning_rate_scale(self, scale: float, amplitudes: bool = True) -> None:
        """As :meth:`NumbaBackend.set_learning_rate_scale`: every rule's learning rates (and the
        astrocyte-driven depression) at ``scale`` times their built values."""
        if amplitudes:
            for rule in self._rules:
                cols = list(pk.LEARNING_RATE_COLUMNS[rule.kind])
                self._prm[rule.r, cols] = self._base_prm[rule.r, cols] * scale
        self._astro_scale[:] = self._base_astro * scale

    # ------------------------------------------------------------------------------------------
    # the per-step pass
    # ------------------------------------------------------------------------------------------
    def _split(self, flat: torch.Tensor | None, size: int):
        """Flat ``b * size + i`` spike indices -> (b, i), or None without spikes."""
        if flat is None or flat.numel() == 0:
            return None
        flat = flat.to(self.device, torch.int64)
        return torch.div(flat, size, rounding_mode="floor"), flat % size

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
        events = {}
        for p, proj in self._projections.items():
            pre = self._split(spikes.get(proj.pre_ent), proj.n_pre)
            post = self._split(spikes.get(proj.post_ent), proj.n_post)
            axonal = dendritic = (None, None)
            if proj.axonal:
                axonal = (self._arrivals(k, proj, pre), self._post_events(k, proj, post))
            if proj.dendritic:
                dendritic = (self._emissions(k, proj, pre), self._delayed_post_events(k, proj, post))
            events[p] = (pre, post, axonal, dendritic)
        for rule in self._rules:
            pre, post, axonal, dendritic = events[rule.proj.p]
            if rule.kind in _TIMING:
                if rule.dendritic:
                    self._timing_rule_dendritic(k, rule, weight, pre, post, *dendritic)
                else:
                    self._timing_rule(k, rule, weight, pre, post, *axonal)
                if rule.kind == pk.K_RSTDP:
                    self._reward_integration(rule, weight)
            elif rule.kind == pk.K_SCALE_NORMALIZE:
                due = (k in rule.events) if rule.has_events else (k + 1) % rule.interval == 0
                if due:
                    self._normalize(rule, weight)
            else:
                self._rate_rule(k, rule, weight, pre, post)
        self._astrocytes(spikes)
        for m, (tonic, P) in enumerate(zip(self._da_tonic, self._da_P)):
            d = self.dopamine[:, m]
            d.copy_(tonic + (d - tonic) * P)

    # -- the synapses touched in a step --------------------------------------------------------
    def _rows(self, proj: _Projection, pre):
        """Every synapse of the spiking presynaptic neurons ``(b, j)``: ``(b, s, j)``."""
        if pre is None:
            return None
        b, j = pre
        ex = _expand(proj.indptr[j], proj.indptr[j + 1] - proj.indptr[j])
        if ex is None:
            return None
        owner, s = ex
        return b[owner], s, j[owner]

    def _history_slot(self, k: int, proj: _Projection, s: torch.Tensor) -> torch.Tensor:
        """Ring slot of step ``k - d + 1`` for synapses ``s`` of delay ``d``; -1 before step 0."""
        em = k - proj.delay[s - proj.syn0] + 1
        return torch.where(em >= 0, torch.remainder(em, proj.Lh), torch.full_like(em, -1))

    @staticmethod
    def _ring_runs(k: int, ring: torch.Tensor, spikes, dptr: torch.Tensor):
        """Record step ``k``'s spikes in ``ring`` (Lh, B, n), then the entries that reach their
        synapses in step ``k``: for a spike of step ``e`` the run of delay ``k - e + 1`` of its row.
        Returns ``(b, row, entry, slot of e)`` or None."""
        Lh = ring.shape[0]
        slot = k % Lh
        ring[slot].zero_()
        if spikes is not None:
            ring[slot][spikes] = True
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

    def _arrivals(self, k: int, proj: _Projection, pre):
        """Synapses a presynaptic spike reaches in step ``k``: ``(b, s, j, emission slot)``.

        Without a history ring (every delay one step) those of step ``k``'s spikes; otherwise the
        delay-``d`` run of every spike emitted at ``k - d + 1`` (recorded in the spike ring first)."""
        if proj.Lh <= 1:
            rows = self._rows(proj, pre)
            return None if rows is None else (*rows, None)
        runs = self._ring_runs(k, proj.spike_ring, pre, proj.dptr)
        if runs is None:
            return None
        b, j, s, sl = runs
        return b, s, j, sl

    def _post_events(self, k: int, proj: _Projection, post):
        """Synapses of the neurons that spiked in step ``k``, post-major: ``(b, i, s, j, slot)``
        with the history slot of ``k - d + 1`` (None without a ring; -1 before step 0)."""
        if post is None:
            return None
        b, i = post
        ex = _expand(proj.pm_ptr[i], proj.pm_ptr[i + 1] - proj.pm_ptr[i])
        if ex is None:
            return None
        owner, t = ex
        s = proj.pm_syn[t]
        slot = self._history_slot(k, proj, s) if proj.Lh > 1 else None
        return b[owner], i[owner], s, proj.pm_pre[t], slot

    def _emissions(self, k: int, proj: _Projection, pre):
        """Dendritic delays: every synapse of step ``k``'s presynaptic spikes (seen at emission),
        ``(b, s, j, slot)`` with the history slot of the postsynaptic trace it reads (``k - d + 1``)."""
        rows = self._rows(proj, pre)
        if rows is None:
            return None
        b, s, j = rows
        return b, s, j, self._history_slot(k, proj, s)

    def _delayed_post_events(self, k: int, proj: _Projection, post):
        """Dendritic delays: postsynaptic spikes of step ``k - d + 1`` reaching their delay-``d``
        synapses in step ``k``: ``(b, i, s, j, emission slot)``."""
        runs = self._ring_runs(k, proj.post_ring, post, proj.pdptr)
        if runs is None:
            return None
        b, i, t, sl = runs
        return b, i, proj.pm_syn[t], proj.pm_pre[t], sl

    # -- timing rules --------------------------------------------------------------------------
    def _amplitude3(self, rule: _Rule, b: torch.Tensor):
        """Column 3 of the rule's parameters (the depression amplitude of pair STDP) per event:
        set by the rule's astrocyte per sample (``A(t) A_minus / A(0)``), else the constant."""
        if rule.astro < 0:
            return float(self._prm[rule.r, 3])
        return (self.astro_A[:, rule.astro] * float(self._astro_scale[rule.r]))[b]

    def _pre_update(self, rule, m, y0, r2, a3, neg):
        """New magnitudes at presynaptic events (numba's ``_pre_update``; R-STDP elsewhere)."""
        prm = self._prm[rule.r]
        lo, hi = float(prm[pk.C_LO]), float(prm[pk.C_HI])
        kind = rule.kind
        if kind == pk.K_STDP_ADD:
            A = torch.where(neg, float(prm[2]), a3) if rule.astro >= 0 else a3
            return torch.clamp(m - A * y0, lo, hi)
        if kind == pk.K_STDP_MULT:
            u = self._unit(m, lo, hi)
            u = torch.clamp_min(u - a3 * torch.pow(u, float(prm[7])) * y0, 0.0)
            return lo + u * (hi - lo)
        if kind == pk.K_TRIPLET:
            return torch.clamp(m - y0 * (float(prm[4]) + float(prm[5]) * r2), lo, hi)
        return torch.clamp(m + float(prm[2]) * y0, lo, hi)  # symmetric

    def _post_update(self, rule, m, x0, o2, a3, neg):
        """New magnitudes at postsynaptic events (numba's ``_post_update``; R-STDP elsewhere)."""
        prm = self._prm[rule.r]
        lo, hi = float(prm[pk.C_LO]), float(prm[pk.C_HI])
        kind = rule.kind
        if kind == pk.K_STDP_ADD:
            A = torch.where(neg, a3, float(prm[2])) if rule.astro >= 0 else float(prm[2])
            return torch.clamp(m + A * x0, lo, hi)
        if kind == pk.K_STDP_MULT:
            u = self._unit(m, lo, hi)
            u = torch.clamp_max(u + float(prm[2]) * torch.pow(1.0 - u, float(prm[6])) * x0, 1.0)
            return lo + u * (hi - lo)
        if kind == pk.K_TRIPLET:
            return torch.clamp(m + x0 * (float(prm[2]) + a3 * o2), lo, hi)
        return torch.clamp(m + a3 * x0, lo, hi)  # symmetric: column 3 is eta_post a

    @staticmethod
    def _unit(m, lo, hi):
        span = hi - lo
        return (m - lo) / span if span > 0 else torch.zeros_like(m)

    def _pre_event(self, rule: _Rule, weight, b, s, y0, r2) -> None:
        """Presynaptic events on the (unique) synapses ``(b, s)``, reading postsynaptic trace
        values ``y0`` (and ``r2`` for the triplet rule). Rules act on magnitudes (Dale's law);
        R-STDP moves its eligibility instead of the weight."""
        proj = rule.proj
        local = s - proj.syn0
        a3 = self._amplitude3(rule, b)
        if rule.kind == pk.K_RSTDP:
            rule.elig[b, local] -= a3 * y0
            return
        sg = proj.sign[local]
        m = self._pre_update(rule, weight[b, s].to(self.dtype) * sg, y0, r2, a3, proj.negative[local])
        weight[b, s] = (m * sg).to(weight.dtype)

    def _post_event(self, rule: _Rule, weight, b, s, x0, o2) -> None:
        """Postsynaptic events on the (unique) synapses ``(b, s)`` (see :meth:`_pre_event`)."""
        proj = rule.proj
        local = s - proj.syn0
        a3 = self._amplitude3(rule, b)
        if rule.kind == pk.K_RSTDP:
            rule.elig[b, local] += float(self._prm[rule.r, 2]) * x0
            return
        sg = proj.sign[local]
        m = self._post_update(rule, weight[b, s].to(self.dtype) * sg, x0, o2, a3, proj.negative[local])
        weight[b, s] = (m * sg).to(weight.dtype)

    @staticmethod
    def _bump(traces: list, spikes, nearest: bool) -> None:
        """Spikes ``(b, i)``: each trace becomes 1 (nearest-spike pairing) or gains 1 (all-to-all)."""
        if spikes is None:
            return
        for tr in traces:
            if nearest:
                tr[spikes] = 1.0
            else:
                tr[spikes] += 1.0

    def _decay(self, rule: _Rule) -> None:
        """Every trace of a timing rule to the next step."""
        prm = self._prm[rule.r]
        if rule.kind == pk.K_TRIPLET:
            factors = ((rule.x, (prm[6], prm[7])), (rule.y, (prm[8], prm[9])))
        else:
            factors = ((rule.x, (prm[4],)), (rule.y, (prm[5],)))
        for traces, decays in factors:
            for tr, f in zip(traces, decays):
                tr.mul_(float(f))

    def _timing_rule(self, k, rule: _Rule, weight, pre, post, arrivals, post_events) -> None:
        """Axonal delays (numba's ``_timing_rule``): presynaptic events at their arrival."""
        proj = rule.proj
        Lh = proj.Lh
        two = rule.kind == pk.K_TRIPLET
        slot = k % Lh if Lh > 1 else 0
        x0, y0 = rule.x[0], rule.y[0]
        # (S1) history of the traces before this step's increment
        if Lh > 1:
            if rule.exclusive:
                rule.xhist[0][slot].copy_(x0)
            if two:
                rule.xhist[1][slot].copy_(rule.x[1])
        # (S2) presynaptic arrivals read the postsynaptic traces before their increment
        if arrivals is not None:
            b, s, j, sl = arrivals
            r2 = None
            if two:
                r2 = rule.xhist[1][sl, b, j] if Lh > 1 else rule.x[1][b, j]
            self._pre_event(rule, weight, b, s, y0[b, proj.post[s - proj.syn0]], r2)
        # (S3)/(S4) presynaptic increments and postsynaptic events
        post_first = rule.exclusive and Lh <= 1
        for phase in range(2):
            if (phase == 0) != post_first:
                self._bump(rule.x, pre, rule.nearest)
                if Lh > 1 and not rule.exclusive:
                    rule.xhist[0][slot].copy_(x0)
            elif post_events is not None:
                b, i, s, j, sl = post_events
                if Lh > 1:
                    x = torch.where(sl >= 0, rule.xhist[0][sl.clamp_min(0), b, j], self._zero)
                else:
                    x = x0[b, j]
                self._post_event(rule, weight, b, s, x, rule.y[1][b, i] if two else None)
        # (S5) postsynaptic increments, (S6) decay of every trace to the next step
        self._bump(rule.y, post, rule.nearest)
        self._decay(rule)

    def _timing_rule_dendritic(self, k, rule: _Rule, weight, pre, post, emissions, delayed_post) -> None:
        """Dendritic delays (numba's ``_timing_rule_dendritic``, NEST's convention): a presynaptic
        spike acts at emission and reads the postsynaptic trace of ``k - d + 1``; a postsynaptic
        spike reaches a synapse of delay ``d`` ``d - 1`` steps late and reads the presynaptic trace then."""
        slot = k % rule.proj.Lh
        two = rule.kind == pk.K_TRIPLET
        # history of the postsynaptic traces before this step's increments
        for hist, tr in zip(rule.yhist, rule.y):
            hist[slot].copy_(tr)
        if emissions is not None:
            b, s, j, sl = emissions
            i = rule.proj.post[s - rule.proj.syn0]
            y = torch.where(sl >= 0, rule.yhist[0][sl.clamp_min(0), b, i], self._zero)
            self._pre_event(rule, weight, b, s, y, rule.x[1][b, j] if two else None)
        for phase in range(2):
            if (phase == 0) != rule.exclusive:
                self._bump(rule.x, pre, rule.nearest)
            elif delayed_post is not None:
                b, i, s, j, sl = delayed_post
                self._post_event(rule, weight, b, s, rule.x[0][b, j], rule.yhist[1][sl, b, i] if two else None)
        self._bump(rule.y, post, rule.nearest)
        self._decay(rule)

    def _reward_integration(self, rule: _Rule, weight) -> None:
        """R-STDP: ``w += c d dt`` on every synapse with eligibility while the sample's dopamine
        is not zero, then the eligibility decays."""
        prm = self._prm[rule.r]
        proj = rule.proj
        lo, hi = float(prm[pk.C_LO]), float(prm[pk.C_HI])
        d = self.dopamine[:, rule.mod]
        c = rule.elig
        s = slice(proj.syn0, proj.syn0 + proj.n_syn)
        w = weight[:, s]
        new = torch.clamp(w.to(self.dtype) * proj.sign + c * (d * float(prm[7]))[:, None], lo, hi) * proj.sign
        weight[:, s] = torch.where((c != 0.0) & (d != 0.0)[:, None], new.to(w.dtype), w)
        c.mul_(float(prm[6]))

    # -- rate rules, scaling -------------------------------------------------------------------
    def _rate_rule(self, k, rule: _Rule, weight, pre, post) -> None:
        """Oja / BCM on rate traces (Hz) and activity scaling, updated every ``interval`` steps."""
        prm = self._prm[rule.r]
        proj = rule.proj
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
            s = slice(proj.syn0, proj.syn0 + proj.n_syn)
            m = weight[:, s].to(self.dtype) * proj.sign
            yi = y[:, proj.post]
            if kind == pk.K_OJA:
                m = m + float(prm[2]) * yi * (rule.x[0][:, proj.pre] - yi * m) * float(prm[5])
            elif kind == pk.K_BCM:
                m = m + float(prm[2]) * rule.x[0][:, proj.pre] * yi * (yi - rule.y[1][:, proj.post]) * float(prm[5])
            else:
                m = m + float(prm[2]) * m * (float(prm[3]) - yi)
            weight[:, s] = (torch.clamp(m, lo, hi) * proj.sign).to(weight.dtype)
        if kind != pk.K_SCALE_ACTIVITY:
            rule.x[0].mul_(decay)
        y.mul_(decay)

    def _normalize(self, rule: _Rule, weight) -> None:
        """Every target's incoming magnitudes rescaled to sum ``target_sum`` (rows summing to 0 kept).
        The sums run in numba's post-major order."""
        prm = self._prm[rule.r]
        proj = rule.proj
        lo, hi = float(prm[pk.C_LO]), float(prm[pk.C_HI])
        s = slice(proj.syn0, proj.syn0 + proj.n_syn)
        m = weight[:, s].to(self.dtype) * proj.sign
        local = proj.pm_syn - proj.syn0
        total = torch.zeros((self.batch, proj.n_post), dtype=m.dtype, device=self.device)
        total.index_add_(1, proj.post[local], m[:, local])
        ok = total > 0.0
        f = torch.where(ok, float(prm[2]) / torch.where(ok, total, torch.ones_like(total)), torch.ones_like(total))
        scaled = torch.clamp(m * f[:, proj.post], lo, hi)
        weight[:, s] = (torch.where(ok[:, proj.post], scaled, m) * proj.sign).to(weight.dtype)

    # -- astrocytes ----------------------------------------------------------------------------
    def _astrocytes(self, spikes) -> None:
        """(7) every astrocyte integrates its sample's liquid-minus-reference spike count, then decays."""
        B = self.batch
        for a, (liquid, reference) in enumerate(self._astro_counts):
            diff = torch.zeros(B, dtype=torch.int64, device=self.device)
            for ents, sgn in ((liquid, 1), (reference, -1)):
                for e in ents:
                    flat = spikes.get(e)
                    if flat is not None and flat.numel():
                        b = torch.div(flat.to(self.device, torch.int64), self.entity_sizes[e], rounding_mode="floor")
                        diff += sgn * torch.bincount(b, minlength=B)
            A, w, bias = self.astro_A[:, a], self.astro_w[:, a], self.astro_b[:, a]
            A += (w * diff.to(self.dtype) + bias - A) * self._astro_rate[a]
            A *= self._astro_decay[a]
            w *= self._astro_decay[a]
            bias *= self._astro_decay[a]
