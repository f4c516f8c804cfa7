"""Slow, independent reference simulator used to check the engine spike-for-spike.

Written straight from MODELS.md, sharing no code with ``engine.kernels`` or ``engine.backends``:

* LIF/ALIF propagators from one matrix exponential of the full linear system per neuron
  (``scipy.linalg.expm``), not from the closed forms;
* synaptic delays with a spike-history buffer (§3.2) instead of a ring buffer (§3.1): the input of
  step ``k`` is ``Σ w·S[k - d + 1]``, accumulated event by event in emission order (largest delay
  first, then projection, presynaptic index and synapse order), which is the order in which the
  ring buffer receives them, so the float sums agree bit for bit;
* its own pure-Python xoshiro256** for Poisson and noise sources (same algorithm and draw order);
* neuron updates vectorised per population with numpy, one Python step loop.

Only for small networks: cost grows with synapses × steps in Python.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import expm

from engine.plan import (CurrentSourcePlan, PoissonSourcePlan, SimulationPlan, SpikeTrainSourcePlan,
                         stream_seed)

_MASK = (1 << 64) - 1


class PyXoshiro:
    """Pure-Python xoshiro256** (state from the same SeedSequence words as the engine)."""

    def __init__(self, seed_sequence):
        words = [int(x) for x in seed_sequence.generate_state(4, np.uint64)]
        if not any(words):
            words[0] = 0x9E3779B97F4A7C15
        self.s = words

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & _MASK

    def next(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & _MASK, 7) * 9) & _MASK
        t = (s[1] << 17) & _MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _arr(x, n):
    return np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()


class _Pop:
    def __init__(self, pop, dt):
        self.p = pop
        self.n = n = pop.size
        self.dt = dt
        self.model = pop.model
        self.prm = {k: pop.param(k) for k in pop.params.keys() | set(_defaults(pop))}
        self.kinds = [r.kind for r in pop.receptors]
        self.taus = [_arr(r.tau if r.kind != "delta" else 1.0, n) for r in pop.receptors]
        self.erev = [_arr(r.E_rev, n) for r in pop.receptors]
        self.chan = np.array([pop.initial(name) for name in pop.state_names()[len(_state0(pop)):]]).reshape(len(self.kinds), n)
        self.iext = np.zeros(n)
        if self.model == "izhikevich":
            self.v = pop.initial("v")
            self.u = pop.initial("u")
        else:
            self.V = pop.initial("V")
            self.theta = pop.initial("theta") if self.model in ("alif", "cobalif") else np.zeros(n)
            self.w = pop.initial("w") if self.model == "alif" else np.zeros(n)
            self.ref = np.broadcast_to(np.asarray(pop.initial_state.get("refractory", 0), np.int64), (n,)).copy()
            self.nref = np.rint(self.prm["t_ref"] / dt).astype(np.int64)
        if self.model in ("lif", "alif"):
            self._build_matrices()

    def _build_matrices(self):
        """Per-neuron exact propagator of z = [V-E_L, w, I_exp..., 1, i_ext] (expm of the generator)."""
        n, dt, prm = self.n, self.dt, self.prm
        exp_ch = [c for c, k in enumerate(self.kinds) if k == "exponential"]
        E = len(exp_ch)
        self.exp_ch = exp_ch
        dim = 4 + E
        self.P = np.zeros((n, dim, dim))
        a_w = prm.get("a_w", np.zeros(n))
        tau_w = prm.get("tau_w", np.ones(n))
        has_w = self.model == "alif"
        cache = {}
        for i in range(n):
            key = (prm["tau_m"][i], prm["R"][i], prm["I_e"][i], a_w[i], tau_w[i]) + tuple(self.taus[c][i] for c in exp_ch)
            if key not in cache:
                tm, R, Ie = key[:3]
                A = np.zeros((dim, dim))
                A[0, 0] = -1.0 / tm
                A[0, 2 + E] = R * Ie / tm
                A[0, 3 + E] = R / tm
                if has_w:
                    A[0, 1] = -R / tm
                    A[1, 0] = a_w[i] / tau_w[i]
                    A[1, 1] = -1.0 / tau_w[i]
                for e in range(E):
                    A[0, 2 + e] = R / tm
                    A[2 + e, 2 + e] = -1.0 / key[5 + e]
                cache[key] = expm(A * dt)
            self.P[i] = cache[key]

    def detect(self):
        if self.model == "izhikevich":
            fired = self.v >= self.prm["v_peak"]
            self.v[fired] = self.prm["c"][fired]
            self.u[fired] += self.prm["d"][fired]
            return np.flatnonzero(fired)
        fired = (self.ref == 0) & (self.V >= self.prm["V_th"] + self.theta)
        self.V[fired] = self.prm["V_reset"][fired]
        self.ref[fired] = self.nref[fired]
        if self.model in ("alif", "cobalif"):
            self.theta[fired] += self.prm["delta_theta"][fired]
        if self.model == "alif":
            self.w[fired] += self.prm["b_w"][fired]
        return np.flatnonzero(fired)

    def update(self, arrivals):
        """arrivals: (C, n) summed weights of step k."""
        dt, prm = self.dt, self.prm
        chan = self.chan + arrivals
        if self.model == "izhikevich":
            current = prm["I_e"] + self.iext
            for c, kind in enumerate(self.kinds):
                current = current + (chan[c] / dt if kind == "delta" else chan[c])
            v, u, a, b = self.v, self.u, prm["a"], prm["b"]
            if self.p.scheme == "split2003":
                for _ in range(2):
                    v = v + 0.5 * dt * ((0.04 * v + 5) * v + 140 - u + current)
                u = u + dt * a * (b * v - u)
            else:
                v, u = v + dt * ((0.04 * v + 5) * v + 140 - u + current), u + dt * a * (b * v - u)
            self.v, self.u = v, u
            self.chan = np.array([chan[c] * (0.0 if k == "delta" else np.exp(-dt / self.taus[c]))
                                  for c, k in enumerate(self.kinds)]).reshape(chan.shape)
            return
        refr = self.ref > 0
        if self.model == "cobalif":
            g_tot = 1.0 + chan.sum(axis=0)
            num = prm["E_L"] + sum(chan[c] * self.erev[c] for c in range(len(self.kinds))) + prm["R"] * (prm["I_e"] + self.iext)
            v_inf = num / g_tot
            V_new = v_inf + (self.V - v_inf) * np.exp(-dt * g_tot / prm["tau_m"])
            self.theta = self.theta * np.exp(-dt / prm["tau_theta"])
        else:
            E = len(self.exp_ch)
            z = np.zeros((self.n, 4 + E))
            z[:, 0] = self.V - prm["E_L"]
            z[:, 1] = self.w
            for e, c in enumerate(self.exp_ch):
                z[:, 2 + e] = chan[c]
            z[:, 2 + E] = 1.0
            z[:, 3 + E] = self.iext
            z_new = np.einsum("nij,nj->ni", self.P, z)
            V_new = prm["E_L"] + z_new[:, 0]
            for c, kind in enumerate(self.kinds):
                if kind == "delta":
                    V_new = V_new + chan[c]
            if self.model == "alif":
                # while V is clamped, w relaxes towards a_w (V_reset - E_L)
                pw = np.exp(-dt / prm["tau_w"])
                w_ref = self.w * pw + prm["a_w"] * (prm["V_reset"] - prm["E_L"]) * (1 - pw)
                self.w = np.where(refr, w_ref, z_new[:, 1])
                self.theta = self.theta * np.exp(-dt / prm["tau_theta"])
        self.V = np.where(refr, prm["V_reset"], V_new)
        self.ref = np.where(refr, self.ref - 1, self.ref)
        decays = []
        for c, kind in enumerate(self.kinds):
            decays.append(chan[c] * (0.0 if kind == "delta" else np.exp(-dt / self.taus[c])))
        self.chan = np.array(decays).reshape(chan.shape)


def _defaults(pop):
    from engine.plan import MODEL_DEFAULTS

    return MODEL_DEFAULTS[pop.model]


def _state0(pop):
    from engine.plan import MODEL_STATE

    return MODEL_STATE[pop.model]


def simulate(plan: SimulationPlan, n_steps: int, record_state: tuple = ()):
    """Run ``plan`` for ``n_steps``.

    Returns
    -------
    spikes : dict
        Emitter name -> ``(steps, indices)`` for every population and spike source.
    traces : dict
        ``(population, variable)`` -> array [n_steps, n] sampled after reset (as the engine's monitors).
    """
    dt = plan.dt
    pops = {p.name: _Pop(p, dt) for p in plan.populations}
    sizes = {p.name: p.size for p in plan.populations}
    rngs, trains = {}, {}
    for s in plan.sources:
        if isinstance(s, PoissonSourcePlan):
            sizes[s.name] = s.size
            rngs[s.name] = PyXoshiro(stream_seed(plan.seed, "poisson:" + s.name, s.seed))
        elif isinstance(s, SpikeTrainSourcePlan):
            sizes[s.name] = s.size
            by_step = {}
            for k, i in sorted(set(zip(s.steps.tolist(), s.indices.tolist()))):
                by_step.setdefault(k, []).append(i)
            trains[s.name] = by_step
        elif isinstance(s, CurrentSourcePlan):
            rngs[s.name] = PyXoshiro(stream_seed(plan.seed, "current:" + s.name, s.seed))
    L = plan.max_delay
    history = {name: [np.zeros(0, np.int64)] * L for name in sizes}  # spike-history buffer H[L][emitter]
    projections = []
    for proj in plan.projections:
        post = pops[proj.post]
        c = post.p.receptor_index(proj.receptor)
        rows = [(proj.indices[a:b], proj.weights[a:b].astype(np.float64), proj.delays[a:b].astype(np.int64))
                for a, b in zip(proj.indptr[:-1], proj.indptr[1:])]
        projections.append((proj, c, rows))
    spikes = {name: ([], []) for name in sizes}
    traces = {key: [] for key in record_state}
    for k in range(n_steps):
        fired = {}
        for name, pop in pops.items():
            fired[name] = pop.detect()
        for s in plan.sources:
            if isinstance(s, PoissonSourcePlan):
                active = k >= s.start_step and (s.stop_step == 0 or k < s.stop_step)
                fired[s.name] = (_poisson(rngs[s.name], _arr(s.rates, s.size) * dt / 1000.0) if active
                                 else np.zeros(0, np.int64))
            elif isinstance(s, SpikeTrainSourcePlan):
                fired[s.name] = np.asarray(trains[s.name].get(k, []), np.int64)
        for name, idx in fired.items():
            spikes[name][0].extend([k] * len(idx))
            spikes[name][1].extend(idx.tolist())
            history[name][k % L] = idx
        for (pop_name, var) in record_state:
            pop = pops[pop_name]
            traces[(pop_name, var)].append(np.array(getattr(pop, var) if not var.startswith(("I_", "g_"))
                                                    else pop.chan[pop.p.receptor_index(var[2:])]))
        # inputs of step k from the history, in the ring buffer's accumulation order
        arrivals = {name: np.zeros((len(p.kinds), p.n)) for name, p in pops.items()}
        for d in range(L, 0, -1):
            if k - d + 1 < 0:
                continue
            for proj, c, rows in projections:
                target = arrivals[proj.post][c]
                for j in history[proj.pre][(k - d + 1) % L]:
                    post_idx, w, delays = rows[j]
                    for s in np.flatnonzero(delays == d):
                        target[post_idx[s]] += w[s]
        for pop in pops.values():
            pop.iext[:] = 0.0
        for s in plan.sources:
            if isinstance(s, CurrentSourcePlan):
                _inject(s, pops[s.target], k, dt, rngs[s.name])
        for name, pop in pops.items():
            pop.update(arrivals[name])
    out = {name: (np.asarray(a, np.int64), np.asarray(b, np.int64)) for name, (a, b) in spikes.items()}
    return out, {key: np.array(v) for key, v in traces.items()}


def _poisson(rng, p):
    n = p.size
    out = []
    if n and np.all(p == p[0]):
        p0 = float(p[0])
        if p0 >= 1.0:
            return np.arange(n)
        if p0 <= 0.0:
            return np.zeros(0, np.int64)
        log_q = math.log1p(-p0)
        j = -1
        while True:
            j += 1 + int(math.floor(math.log(1.0 - rng.uniform()) / log_q))
            if j >= n:
                break
            out.append(j)
    else:
        for j in range(n):
            if rng.uniform() < p[j]:
                out.append(j)
    return np.asarray(out, np.int64)


def _inject(src, pop, k, dt, rng):
    idx = np.arange(pop.n) if src.indices is None else np.asarray(src.indices, np.int64)
    t = k * dt
    amp = _arr(src.amplitude, idx.size)
    if src.waveform == "dc":
        values = src.offset + amp
    elif src.waveform == "step":
        steps = np.rint(np.asarray(src.times, float) / dt).astype(np.int64)
        level = 0.0
        for kk, val in sorted(zip(steps.tolist(), np.asarray(src.amplitudes, float).tolist()), key=lambda x: x[0]):
            if kk <= k:
                level = val
        values = src.offset + np.ones(idx.size) * level
    elif src.waveform == "sine":
        values = src.offset + amp * math.sin(2 * math.pi * src.frequency / 1000.0 * t + src.phase)
    else:
        values = np.array([src.offset + a * rng.normal() for a in amp])
    np.add.at(pop.iext, idx, values)
