"""NEST backend: the :class:`SimulationPlan` built in PyNEST (``nest-simulator``) and run in chunks.

The network is built from the plan, not from the graph: populations with their per-neuron
parameters and initial states, every projection as its explicit connection list (the plan's CSR
with its weights and delays, connected with ``one_to_one`` node-id arrays), the plan's spike
sources and monitors. So a NEST run uses exactly the synapses Synweave drew; only the random
numbers of the dynamics (Poisson inputs, noise currents) are NEST's own, and runs agree with the
numba backend statistically where the network is chaotic, spike for spike where it is not.

Mapping (NEST units: ms, mV, pA, pF, nS)
----------------------------------------
==========================  ================================================================
plan                        NEST
==========================  ================================================================
``lif``, exponential        ``iaf_psc_exp``, ``C_m = tau_m / R`` (ms / GOhm = pF), weights pA;
channels                    channel 0 -> ``tau_syn_ex``, channel 1 -> ``tau_syn_in``
``lif``, delta channels     ``iaf_psc_delta`` (weight = jump of V in mV)
``cobalif``                 ``iaf_cond_exp``, ``g_L = 1/R`` nS, ``C_m = tau_m g_L``, weights
                            ``w g_L`` nS (channel 1 negative: NEST routes by sign)
``izhikevich``              ``izhikevich`` (``consistent_integration`` off for ``split2003``,
                            on for ``euler``); delta channels only, weight = jump of v
Poisson source              ``poisson_generator`` -> ``parrot_neuron`` per channel
spike trains / data sets    ``spike_generator`` per channel -> ``parrot_neuron``
dc current                  added to the neurons' ``I_e`` (acts from step 0, as ours)
step / sine / noise         ``step_current_generator`` / ``ac_generator`` / ``noise_generator``
synapses and plasticity     the shared table of :mod:`engine.exporters.nest_mapping` (also used by the
                            script exporter): ``static_synapse``; Tsodyks-Markram STP ->
                            ``tsodyks2_synapse``; pair STDP -> ``stdp_synapse`` / ``stdp_nn_symm_synapse``;
                            triplet STDP -> ``stdp_triplet_synapse``; reward STDP ->
                            ``stdp_dopamine_synapse``
reward signal               a ``volume_transmitter`` fed by a ``spike_generator`` (through a parrot
                            relay) that replays the plan's reward steps (random rewards are drawn
                            by Synweave at compile time, so both backends see the same rewards)
``alif``                    ``aeif_psc_exp`` / ``aeif_psc_delta`` with ``Delta_T = 0`` (adaptation
                            current; threshold adaptation refused)
==========================  ================================================================

Not mapped (refused with a :class:`SimulationError` naming the node and the reason): threshold
adaptation (``alif``, ``cobalif``), plasticity rules other than pair / triplet / reward STDP, STP
combined with a rule, rewards of unequal amplitudes, NALSM astrocytes, the tripartite astrocyte
(:data:`engine.exporters.nest_mapping.TRIPARTITE_REFUSAL` says why), exponential channels on
Izhikevich neurons, channels whose weights NEST would route to the other time constant (NEST picks
the channel by the weight's sign).

Plastic weights read back (:meth:`NestBackend.projection_weights`) are NEST's: its STDP synapses
apply the potentiation of a postsynaptic spike when the synapse's next presynaptic spike passes, so
potentiation after a synapse's last presynaptic spike is not in them yet (reward STDP is brought up
to date every step by its volume transmitter).

Time convention (MODELS.md §0.2)
--------------------------------
NEST integrates a neuron from ``t_k`` to ``t_{k+1}`` and stamps a threshold crossing at the end of
that step, ``t_{k+1}``, then delivers it ``d·dt`` later. Our threshold-first loop detects the same
crossing at the start of step ``k+1`` and stamps it ``t_{k+1}`` too, and a delay of ``d`` steps
makes the earliest postsynaptic spike ``k+1+d`` in both. Measured here: neuron-to-neuron spike
steps agree exactly (tests/engine/test_nest_backend.py). The one-step differences are at the edges:

* NEST cannot emit a spike at ``t = 0`` and its generators reach their parrot relay one step
  later, so an input spike of step ``k`` leaves the relay at step ``max(k, 2)`` (the generator
  fires at ``(k - 1)·dt``): input spikes of steps 0 and 1 arrive one or two steps late.
  Poisson trains are drawn by NEST and relayed one step after their generator.
* Step, sine and noise currents come from NEST devices, whose output reaches the neuron one step
  after the device computes it. DC currents are exact (they become ``I_e``).
* A spike that NEST emits at the last instant of a chunk belongs to the first step of the next
  chunk in our convention; it is reported with that chunk (chunking never changes the result).
* A neuron whose initial ``V`` is above threshold spikes at step 0 in our convention and at step 1
  in NEST's.

State files
-----------
NEST keeps synaptic ring buffers, refractory counters and generator states inside its kernel and
cannot export them, so :meth:`NestBackend.state_arrays` raises a :class:`SimulationError`.

Threads
-------
``threads`` (backend option) sets NEST's ``local_num_threads``. OpenMP threads otherwise spin while
they wait for each other, which collapses throughput on a shared or oversubscribed machine, so this
module sets ``OMP_WAIT_POLICY=PASSIVE`` before NEST is first imported (unless the environment already
sets it). NEST's kernel is global: constructing a second :class:`NestBackend` resets it and makes the
first one unusable (it then raises instead of returning another network's data). NEST crashes when
called from a thread other than the one that loaded it, so every NEST call of this module runs on one
dedicated thread (the runner, the CLI and the GUI's run workers call from wherever they are).
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import os
import threading

import numpy as np

from engine.backends.base import Backend, ChunkResult
from engine.errors import NumericalInstabilityError, SimulationError
from engine.exporters.nest_mapping import (TRIPARTITE_REFUSAL, NotMapped, adaptive_lif, adaptive_lif_problem,
                                           synapse_mapping)
from engine.plan import (CurrentSourcePlan, PoissonSourcePlan, SimulationPlan, SpikeTrainSourcePlan,
                         canonical_var)
from engine.readouts import ANALYSIS_TYPES

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by OpenMP when NEST loads: do not spin
os.environ.setdefault("PYNEST_QUIET", "1")  # no banner on stdout (the CLI's summary goes there)


def _start_numba_threads_first() -> None:
    """Start numba's threading layer before NEST loads its OpenMP runtime. With numba's OpenMP layer,
    the other order (NEST imported, then a parallel numba kernel run, then a NEST call) crashes NEST
    with a segmentation fault in ``ResetKernel`` (measured with nest-simulator 3.10 / numba 0.6x:
    this order is safe, and the workqueue layer is safe in both)."""
    try:
        from numba.np.ufunc.parallel import _launch_threads
    except ImportError:  # numba missing or reorganised: nothing to order
        return
    _launch_threads()


_start_numba_threads_first()

#: NEST's kernel keeps OpenMP thread-private state of the thread that loaded it: a NEST call from any
#: other thread crashes the process (segmentation fault; the GUI and the runner use worker threads).
#: Every NEST call therefore runs on this one thread, which also imports NEST.
_NEST_THREAD = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nest-kernel")


def _on_nest_thread(fn):
    """Run the decorated method on the NEST thread (directly when already there), re-raising its errors."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if threading.current_thread().name.startswith("nest-kernel"):
            return fn(*args, **kwargs)
        return _NEST_THREAD.submit(fn, *args, **kwargs).result()
    return call


nest = _NEST_THREAD.submit(importlib.import_module, "nest").result()

#: NEST model per plan model (the LIF model depends on its channel kind)
_NEST_NEURON = {"cobalif": "iaf_cond_exp", "izhikevich": "izhikevich"}
#: NEST models with an excitatory and an inhibitory exponential current (routed by the weight's sign)
_TWO_CURRENTS = ("iaf_psc_exp", "aeif_psc_exp")
#: plan state variable -> NEST state name, per NEST model
_NEST_VAR = {
    "iaf_psc_exp": {"V": "V_m", "I_exc": "I_syn_ex", "I_inh": "I_syn_in"},
    "iaf_psc_delta": {"V": "V_m"},
    "iaf_cond_exp": {"V": "V_m", "g_exc": "g_ex", "g_inh": "g_in"},
    "izhikevich": {"v": "V_m", "u": "U_m"},
    "aeif_psc_exp": {"V": "V_m", "w": "w", "I_exc": "I_syn_ex", "I_inh": "I_syn_in"},
    "aeif_psc_delta": {"V": "V_m", "w": "w"},
}
#: variables NEST only records (multimeter) but cannot read or write through the node status
_RECORD_ONLY = {"I_syn_ex", "I_syn_in"}

#: the kernel is global: each backend remembers which build it owns
_KERNEL = {"owner": 0}


def _set_verbosity() -> None:
    try:
        nest.verbosity = nest.VerbosityLevel.ERROR  # NEST 3.10 and newer
    except AttributeError:
        nest.set_verbosity("M_ERROR")


def _scalar_or_list(values: np.ndarray):
    """A float when all entries are equal (one value for NEST), else a list (one per node)."""
    values = np.atleast_1d(np.asarray(values, np.float64))
    if values.size and np.all(values == values[0]):
        return float(values[0])
    return values.tolist()


class _Population:
    """A plan population in NEST: its nodes, model and unit conversions."""

    def __init__(self, pop, model: str, nodes, g_leak):
        self.pop = pop
        self.model = model
        self.nodes = nodes
        self.first = int(nodes[0].global_id) if pop.size else 0
        #: nS per unit of our conductances (cobalif), per neuron
        self.g_leak = g_leak


class NestBackend(Backend):
    """Run a plan in NEST (PyNEST 3.6 or newer).

    Parameters
    ----------
    plan : SimulationPlan
    dtype : {"float32", "float64"}, optional
        Precision of the returned state samples; NEST itself computes in float64.
    threads : int
        NEST's ``local_num_threads`` (default 1).
    """

    name = "nest"
    engine_semantics = False
    #: recorded in the results next to numpy's and numba's
    library_versions = {"nest": str(getattr(nest, "__version__", "unknown"))}
    supported_node_types = frozenset({
        "neuron.lif", "neuron.alif", "neuron.cobalif", "neuron.izhikevich",
        "input.poisson", "input.spike_train", "input.teacher", "input.dataset", "input.event_stream", "input.current",
        "synapse.projection", "plasticity.stdp", "plasticity.triplet", "plasticity.rstdp", "modulator.reward",
        "monitor.spikes", "monitor.state", "monitor.rate", "monitor.weights",
        # evaluated by the runner from spike recordings this backend makes like any other
        *ANALYSIS_TYPES,
        # read by `main.py train` (engine/gradient.py); nothing to simulate
        "training.surrogate_gradient",
    })
    #: shown by validation on nodes of these types (the run refuses them with the same reason)
    unsupported_reasons = {
        "modulator.tripartite_astrocyte": TRIPARTITE_REFUSAL.replace("the tripartite (G-ChI) astrocyte is not mapped",
                                                                     "not mapped"),
        "modulator.nalsm_astrocyte": "NEST has no synapse whose depression an astrocyte sets",
    }

    @_on_nest_thread
    def __init__(self, plan: SimulationPlan, dtype: str | None = None, threads: int = 1):
        super().__init__(plan, dtype)
        self.dt = float(plan.dt)
        self.threads = int(threads)
        if self.threads < 1:
            raise SimulationError(f"threads must be >= 1, not {threads}")
        self._labels = plan.metadata.get("labels", {})
        self._refuse_unmapped()
        self._k = 0
        _KERNEL["owner"] += 1
        self._owner = _KERNEL["owner"]
        nest.ResetKernel()
        _set_verbosity()
        nest.SetKernelStatus({"resolution": self.dt, "local_num_threads": self.threads,
                              "rng_seed": int(plan.seed) % (2 ** 31 - 2) + 1})
        if abs(nest.GetKernelStatus("resolution") - self.dt) > 1e-12:
            raise SimulationError(f"NEST cannot use dt = {self.dt:g} ms (its time grid is 0.001 ms by default)")
        self._build()

    # ------------------------------------------------------------------------------------------
    # what cannot be mapped
    # ------------------------------------------------------------------------------------------
    def _label(self, name: str) -> str:
        """The node label of a plan item (plan names are node ids, ``id->target`` for projections)."""
        node_id = name.split("->")[0]
        return self._labels.get(node_id, name)

    def _refuse(self, name: str, what: str):
        raise SimulationError(f"{self._label(name)}: {what} is not mapped to NEST; run it with the numba backend")

    def _not_mapped(self, name: str, why: str):
        raise SimulationError(f"{self._label(name)}: not mapped to NEST: {why}; run it with the numba backend")

    def _refuse_unmapped(self) -> None:
        """Raise for what NEST cannot run, before anything is built; keeps each projection's synapse
        mapping (:func:`engine.exporters.nest_mapping.synapse_mapping`) for the build."""
        plan = self.plan
        for astro in plan.astrocytes:
            self._refuse(astro.name, "the NALSM astrocyte (a global plasticity controller)")
        for tri in plan.tripartites:
            raise SimulationError(f"{self._label(tri.name)}: {TRIPARTITE_REFUSAL}")
        for pop in plan.populations:
            if pop.model == "alif":
                problem = adaptive_lif_problem(pop.param)
                if problem or pop.threshold_rule is not None or np.any(pop.initial("theta") != 0):
                    self._not_mapped(pop.name, problem or "threshold adaptation of the adaptive LIF (NEST's aeif "
                                                          "models have a fixed threshold)")
            if pop.model == "cobalif" and (np.any(pop.param("delta_theta") != 0) or np.any(pop.initial("theta") != 0)
                                           or pop.threshold_rule is not None):
                self._refuse(pop.name, "threshold adaptation of the conductance LIF")
            if np.any(np.asarray(pop.initial_state.get("refractory", 0)) != 0):
                self._refuse(pop.name, "an initial refractory state")
            kinds = {r.kind for r in pop.receptors}
            if pop.model == "izhikevich" and kinds != {"delta"}:
                self._refuse(pop.name, "an exponential current channel on Izhikevich neurons")
            if pop.model in ("lif", "alif") and len(kinds) > 1:
                self._refuse(pop.name, "mixing delta and exponential channels")
            if kinds & {"exponential", "conductance"} and len(pop.receptors) > 2:
                self._refuse(pop.name, "more than two exponential or conductance channels")
            for rec in pop.receptors:
                if rec.kind != "delta" and np.any(pop.initial(("g_" if pop.model == "cobalif" else "I_") + rec.name)):
                    self._refuse(pop.name, f"a non-zero initial value of channel {rec.name!r}")
        rewards = {m.name: m for m in plan.modulators}
        self._synapses = {}
        post_params: dict[str, dict] = {}
        for proj in plan.projections:
            post = plan.population(proj.post)
            scale = 1.0
            if post.model == "cobalif":  # our conductances are in units of g_L = 1/R nS
                g_leak = 1.0 / post.param("R")
                scale = float(g_leak[0]) if np.all(g_leak == g_leak[0]) else None
            # a rule's errors name the rule node, other errors the projection node
            where = proj.rules[0].name if proj.rules and proj.rules[0].name else self._label(proj.name)
            if scale is None and (proj.rules or proj.stp is not None):
                raise SimulationError(f"{where}: not mapped to NEST: plasticity onto conductance neurons with "
                                      "per-neuron leak conductances; run it with the numba backend")
            try:
                mapping = synapse_mapping(proj, post, scale or 1.0, rewards)
            except NotMapped as exc:
                raise SimulationError(f"{where}: not mapped to NEST: {exc}; run it with the numba backend") from None
            for key, value in mapping.post_params.items():
                if post_params.setdefault(proj.post, {}).setdefault(key, value) != value:
                    raise SimulationError(f"{where}: not mapped to NEST: two plasticity rules with different {key} "
                                          f"onto {self._label(proj.post)} (NEST keeps {key} in the postsynaptic "
                                          "neuron); run it with the numba backend")
            self._synapses[proj.name] = (mapping, scale)

    # ------------------------------------------------------------------------------------------
    # build
    # ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        plan = self.plan
        self.pops: dict[str, _Population] = {}
        for pop in plan.populations:
            self.pops[pop.name] = self._create_population(pop)
        # spike sources: parrot relays, so that every target sees the same train
        self.parrots: dict[str, object] = {}
        for src in plan.sources:
            if isinstance(src, PoissonSourcePlan):
                self.parrots[src.name] = self._poisson(src)
            elif isinstance(src, SpikeTrainSourcePlan):
                self.parrots[src.name] = self._spike_train(src)
        for src in plan.sources:
            if isinstance(src, CurrentSourcePlan):
                self._current(src)
        self.stdp_models: dict[str, str] = {}  # plastic projection -> its NEST synapse model
        self.weight_scale: dict[str, float] = {}
        self._volume_transmitters: dict[str, object] = {}
        for q, proj in enumerate(plan.projections):
            self._connect(q, proj)
        self._build_monitors()

    def _volume_transmitter(self, name: str):
        """The volume transmitter of reward signal ``name``: one spike per reward at its step.

        NEST connects no device to a volume transmitter, so a spike generator fires at ``(k - 2) dt``
        and a parrot relays it (one step per hop) to arrive at ``k dt``, the reward's time in our
        convention (rewards in the first two steps arrive at step 2)."""
        if name not in self._volume_transmitters:
            reward = next(m for m in self.plan.modulators if m.name == name)
            vt = nest.Create("volume_transmitter")
            steps = np.asarray(reward.steps, np.int64)
            if steps.size:
                times, counts = np.unique(np.maximum(steps - 2, 1) * self.dt, return_counts=True)
                gen = nest.Create("spike_generator", params={"spike_times": times.tolist(),
                                                             "spike_multiplicities": counts.tolist()})
                relay = nest.Create("parrot_neuron")
                nest.Connect(gen, relay, syn_spec={"delay": self.dt})
                nest.Connect(relay, vt, syn_spec={"delay": self.dt})
            self._volume_transmitters[name] = vt
        return self._volume_transmitters[name]

    def _create_population(self, pop) -> _Population:
        kind = pop.receptors[0].kind if pop.receptors else "delta"
        if pop.model == "lif":
            model = "iaf_psc_delta" if kind == "delta" else "iaf_psc_exp"
        elif pop.model == "alif":
            model, aeif = adaptive_lif(pop.param, kind == "delta")
        else:
            model = _NEST_NEURON[pop.model]
        g_leak = None
        if pop.model == "izhikevich":
            params = dict(a=pop.param("a"), b=pop.param("b"), c=pop.param("c"), d=pop.param("d"),
                          V_th=pop.param("v_peak"), I_e=pop.param("I_e"), V_m=pop.initial("v"), U_m=pop.initial("u"))
            fixed = dict(consistent_integration=pop.scheme == "euler")
        else:
            R = pop.param("R")
            params = dict(E_L=pop.param("E_L"), V_th=pop.param("V_th"), V_reset=pop.param("V_reset"),
                          t_ref=pop.param("t_ref"), I_e=pop.param("I_e"), V_m=pop.initial("V"))
            fixed = {}
            if model == "iaf_cond_exp":
                g_leak = 1.0 / R
                params.update(g_L=g_leak, C_m=pop.param("tau_m") * g_leak)
                for rec, (e_key, tau_key) in zip(pop.receptors, (("E_ex", "tau_syn_ex"), ("E_in", "tau_syn_in"))):
                    params[e_key] = np.broadcast_to(np.asarray(rec.E_rev, np.float64), (pop.size,))
                    params[tau_key] = np.broadcast_to(np.asarray(rec.tau, np.float64), (pop.size,))
            elif pop.model == "alif":
                params.update(aeif, w=pop.initial("w"))
                if model == "aeif_psc_exp":
                    taus = [np.broadcast_to(np.asarray(r.tau, np.float64), (pop.size,)) for r in pop.receptors]
                    params.update(tau_syn_ex=taus[0], tau_syn_in=taus[-1])
            else:
                params.update(tau_m=pop.param("tau_m"), C_m=pop.param("tau_m") / R)
                if model == "iaf_psc_exp":
                    taus = [np.broadcast_to(np.asarray(r.tau, np.float64), (pop.size,)) for r in pop.receptors]
                    params.update(tau_syn_ex=taus[0], tau_syn_in=taus[-1])
        nodes = nest.Create(model, pop.size, params=fixed) if pop.size else None
        if nodes is not None:
            values = {k: _scalar_or_list(v) for k, v in params.items()}
            scalars = {k: v for k, v in values.items() if not isinstance(v, list)}
            if scalars:
                nodes.set(scalars)
            for key, value in values.items():
                if isinstance(value, list):
                    nodes.set({key: value})
        return _Population(pop, model, nodes, g_leak)

    def _poisson(self, src: PoissonSourcePlan):
        if not src.size:
            return None
        rates = np.broadcast_to(np.asarray(src.rates, np.float64), (src.size,))
        parrots = nest.Create("parrot_neuron", src.size)
        timing = {}
        if src.start_step:
            timing["start"] = src.start_step * self.dt
        if src.stop_step:
            timing["stop"] = src.stop_step * self.dt
        if np.all(rates == rates[0]):
            gen = nest.Create("poisson_generator", params=dict(timing, rate=float(rates[0])))
            nest.Connect(gen, parrots, "all_to_all", {"delay": self.dt})  # one independent train per parrot
        else:
            gens = nest.Create("poisson_generator", src.size, params=timing)
            gens.set({"rate": rates.tolist()})
            nest.Connect(gens, parrots, "one_to_one", {"delay": self.dt})
        return parrots

    def _spike_train(self, src: SpikeTrainSourcePlan):
        if not src.size:
            return None
        size = max(int(src.size), 1)
        key = np.unique(src.steps * np.int64(size) + src.indices)  # one spike per (step, channel), as numba
        steps, channels = key // size, key % size
        # the generator fires one step before the parrot relays it: the relay emits at step max(k, 2)
        times = np.maximum(steps - 1, 1) * self.dt
        gens = nest.Create("spike_generator", src.size)
        order = np.argsort(channels, kind="stable")
        bounds = np.searchsorted(channels[order], np.arange(src.size + 1))
        spike_times = [np.unique(times[order][bounds[i]:bounds[i + 1]]).tolist() for i in range(src.size)]
        gens.set([{"spike_times": t} for t in spike_times])
        parrots = nest.Create("parrot_neuron", src.size)
        nest.Connect(gens, parrots, "one_to_one", {"delay": self.dt})
        return parrots

    def _current(self, src: CurrentSourcePlan) -> None:
        target = self.pops[src.target]
        if target.nodes is None:
            return
        idx = np.arange(target.pop.size) if src.indices is None else np.asarray(src.indices, np.int64).ravel()
        nodes = target.nodes[idx.tolist()] if src.indices is not None else target.nodes
        amplitude = np.broadcast_to(np.asarray(src.amplitude, np.float64), idx.shape)
        if src.waveform == "dc":  # exact: a constant bias from step 0, as in the numba backend
            current = np.asarray(nodes.get("I_e"), np.float64).reshape(-1)
            nodes.set({"I_e": (current + amplitude).tolist()})
            return
        if src.waveform != "step" and amplitude.size and not np.all(amplitude == amplitude[0]):
            self._refuse(src.name, f"a {src.waveform} current with per-neuron amplitudes")
        amp = float(amplitude[0]) if amplitude.size else 0.0
        if src.waveform == "step":
            k = np.rint(np.asarray(src.times, np.float64) / self.dt).astype(np.int64)
            order = np.argsort(k, kind="stable")
            k, values = k[order], np.asarray(src.amplitudes, np.float64).ravel()[order]
            # NEST needs increasing times > 0; a change at step 0 takes effect at the first instant it can
            times = np.maximum(k, 1) * self.dt
            times, last = np.unique(times[::-1], return_index=True)  # the last value set at a time wins
            values = values[::-1][last]
            device = nest.Create("step_current_generator", params={"amplitude_times": times.tolist(),
                                                                   "amplitude_values": values.tolist()})
        elif src.waveform == "sine":
            device = nest.Create("ac_generator", params={"amplitude": amp, "offset": float(src.offset),
                                                         "frequency": float(src.frequency),
                                                         "phase": float(np.degrees(src.phase))})
        else:
            device = nest.Create("noise_generator", params={"mean": float(src.offset), "std": amp, "dt": self.dt})
        nest.Connect(device, nodes)

    def _connect(self, q: int, proj) -> None:
        post = self.pops[proj.post]
        pre_nodes = self.pops[proj.pre].nodes if proj.pre in self.pops else self.parrots.get(proj.pre)
        if not proj.n_synapses or pre_nodes is None or post.nodes is None:
            return
        channel = post.pop.receptor_index(proj.receptor)
        weights = np.asarray(proj.weights, np.float64)
        scale = 1.0
        if post.model == "iaf_cond_exp":
            # our conductances are in units of g_L; NEST picks the channel by the weight's sign
            g_leak = np.broadcast_to(np.asarray(post.g_leak, np.float64), (post.pop.size,))
            weights = weights * g_leak[proj.indices] * (-1.0 if channel == 1 else 1.0)
            scale = float(g_leak[0]) if np.all(g_leak == g_leak[0]) else None
        elif post.model in _TWO_CURRENTS and len(post.pop.receptors) == 2:
            taus = [np.asarray(r.tau, np.float64) for r in post.pop.receptors]
            wrong = weights < 0 if channel == 0 else weights > 0
            if np.any(wrong) and not np.array_equal(np.broadcast_to(taus[0], (post.pop.size,)),
                                                    np.broadcast_to(taus[1], (post.pop.size,))):
                self._refuse(proj.name, f"{'negative' if channel == 0 else 'positive'} weights on channel "
                                        f"{post.pop.receptors[channel].name!r} (NEST's {post.model} routes "
                                        "negative weights to tau_syn_in and positive ones to tau_syn_ex)")
        mapping, _ = self._synapses[proj.name]
        syn = {"synapse_model": mapping.base}
        if mapping.base != "static_synapse":
            model = f"sw_{mapping.base}_{q}"
            params = dict(mapping.params)
            if mapping.reward is not None:
                params["volume_transmitter"] = self._volume_transmitter(mapping.reward)
            nest.CopyModel(mapping.base, model, params)
            if mapping.post_params:
                post.nodes.set(dict(mapping.post_params))
            syn["synapse_model"] = model
            if mapping.plastic:
                self.stdp_models[proj.name] = model
                self.weight_scale[proj.name] = scale
        pre_first = int(pre_nodes[0].global_id)
        syn.update(weight=weights, delay=np.asarray(proj.delays, np.float64) * self.dt)
        nest.Connect(pre_first + proj.pre_indices().astype(np.int64), post.first + proj.indices.astype(np.int64),
                     "one_to_one", syn)

    def _emitter_nodes(self, name: str):
        if name in self.pops:
            return self.pops[name].nodes
        if name in self.parrots:
            return self.parrots[name]
        raise SimulationError(f"no population or spike source named {name!r}")

    def _build_monitors(self) -> None:
        self.spike_recorders = []  # (monitor, recorder, first node id)
        self.rate_recorders = []
        self.meters = []  # (monitor, multimeter, [(var, nest name, factor)], first node id)
        self._pending_spikes: dict[str, tuple] = {}
        self._pending_samples: dict[str, dict] = {}
        for mon in self.plan.monitors:
            if mon.kind == "weights":  # read by the runner through projection_weights()
                continue
            nodes = self._emitter_nodes(mon.target)
            size = self.plan.emitter_size(mon.target)
            if mon.kind in ("spikes", "rate"):
                rec = nest.Create("spike_recorder")
                if nodes is not None:
                    watched = (nodes if mon.kind == "rate" or mon.indices is None
                               else nodes[np.unique(mon.indices).tolist()])
                    if len(watched):
                        nest.Connect(watched, rec)
                first = int(nodes[0].global_id) if nodes is not None else 0
                (self.spike_recorders if mon.kind == "spikes" else self.rate_recorders).append((mon, rec, first, size))
                continue
            target = self.pops[mon.target]
            names = []
            for var in mon.variables:
                ours = canonical_var(target.pop, var)
                nest_name = _NEST_VAR[target.model].get(ours)
                if nest_name is None:
                    raise SimulationError(f"{self._label(mon.name)}: NEST's {target.model} has no state variable "
                                          f"for {var!r}")
                names.append((var, ours, nest_name))
            idx = np.arange(target.pop.size) if mon.indices is None else mon.indices
            watched = np.unique(idx)  # NEST records each node once; columns repeat as the monitor asks
            meter = nest.Create("multimeter", params={"record_from": sorted({n for _, _, n in names}),
                                                      "interval": mon.every * self.dt})
            if watched.size and target.nodes is not None:
                nest.Connect(meter, target.nodes[watched.tolist()])
            self.meters.append((mon, meter, names, target, idx))
            # step 0 is a multiple of every interval; NEST's multimeter starts at t = dt
            self._pending_samples[mon.name] = {var: self._initial_samples(target, ours, idx) for var, ours, _ in names}

    def _initial_samples(self, target: _Population, var: str, idx: np.ndarray):
        """The step-0 sample (NEST's multimeter starts at ``t = dt``): the state before the first step."""
        values = target.pop.initial(var)[idx] if idx.size else np.zeros(0)
        return (np.zeros(1, np.int64), values[None, :].astype(np.float64))

    # ------------------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------------------
    def _check_owner(self) -> None:
        if _KERNEL["owner"] != self._owner:
            raise SimulationError("another NEST simulation has been built since this one: NEST has one kernel "
                                  "per process, so only the newest NEST backend can run")

    @property
    def step(self) -> int:
        return self._k

    @_on_nest_thread
    def warmup(self) -> None:
        """Nothing to compile: NEST builds its connection tables inside the first chunk."""
        self._check_owner()

    @_on_nest_thread
    def run_steps(self, n: int) -> ChunkResult:
        n = int(n)
        if n < 0:
            raise SimulationError("cannot run a negative number of steps")
        self._check_owner()
        k0, k1 = self._k, self._k + n
        if n:
            # Simulate = Prepare + Run + Cleanup: recorders can only be emptied outside a Run context
            nest.Simulate(n * self.dt)
        self._k = k1
        result = ChunkResult(k0, k1, self.dt)
        for mon, rec, first, _ in self.spike_recorders:
            steps, idx = self._take_spikes(mon.name, rec, first, k0, k1)
            result.spikes[mon.name] = (steps.astype(np.int32), idx)
        for mon, rec, first, _ in self.rate_recorders:
            steps, _ = self._take_spikes(mon.name, rec, first, k0, k1)
            result.rates[mon.name] = np.bincount(steps - k0, minlength=n)[:n].astype(np.int32)
        for mon, meter, names, target, idx in self.meters:
            result.states[mon.name] = self._take_samples(mon, meter, names, target, idx, k0, k1)
        self._check_finite(k1)
        return result

    def _take_spikes(self, name: str, rec, first: int, k0: int, k1: int):
        """Spikes of steps ``k0 .. k1 - 1``: NEST stamps the crossings of the last step at ``t_{k1}``,
        which is step ``k1`` in our convention, so those wait for the next chunk."""
        events = rec.get("events")
        rec.set({"n_events": 0})
        steps = np.rint(np.asarray(events["times"], np.float64) / self.dt).astype(np.int64)
        idx = np.asarray(events["senders"], np.int64) - first
        old_steps, old_idx = self._pending_spikes.get(name, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        steps, idx = np.concatenate([old_steps, steps]), np.concatenate([old_idx, idx])
        later = steps >= k1
        self._pending_spikes[name] = (steps[later], idx[later])
        steps, idx = steps[~later], idx[~later]
        order = np.lexsort((idx, steps))
        return steps[order], idx[order].astype(np.int32)

    def _take_samples(self, mon, meter, names, target: _Population, idx, k0: int, k1: int) -> dict:
        events = meter.get("events")
        meter.set({"n_events": 0})
        times = np.asarray(events["times"], np.float64)
        senders = np.asarray(events["senders"], np.int64)
        steps = np.rint(times / self.dt).astype(np.int64)
        watched = np.unique(idx)
        column = np.searchsorted(target.first + watched, senders)
        pending = self._pending_samples[mon.name]
        out = {}
        for var, ours, nest_name in names:
            values = np.asarray(events.get(nest_name, np.zeros(0)), np.float64)
            if ours.startswith("g_") and values.size:  # nS -> units of g_L
                g_leak = np.broadcast_to(np.asarray(target.g_leak, np.float64), (target.pop.size,))
                values = values / g_leak[watched[column]]
            uniq = np.unique(steps)
            table = np.full((uniq.size, watched.size), np.nan)
            if uniq.size:
                table[np.searchsorted(uniq, steps), column] = values
            table = table[:, np.searchsorted(watched, idx)]
            have = pending.get(var)
            all_steps = np.concatenate([have[0], uniq]) if have is not None else uniq
            all_values = np.concatenate([have[1], table]) if have is not None else table
            now = all_steps < k1
            pending[var] = (all_steps[~now], all_values[~now])
            out[var] = (all_steps[now], all_values[now].astype(self.dtype))
        return out

    def _check_finite(self, k: int) -> None:
        """Izhikevich's explicit integrators can diverge (the LIF models are integrated exactly or by
        NEST's adaptive solver); reading V of a population costs ~0.1 s per 4000 neurons in PyNEST, so
        only those populations are checked after each chunk."""
        for name, target in self.pops.items():
            if target.nodes is None or target.model != "izhikevich":
                continue
            values = np.asarray(target.nodes.get("V_m"), np.float64)
            if not np.all(np.isfinite(values)):
                raise NumericalInstabilityError(name, "v" if target.pop.model == "izhikevich" else "V", k, self.dt)

    # ------------------------------------------------------------------------------------------
    # state access
    # ------------------------------------------------------------------------------------------
    def _address(self, population: str, variable: str):
        self._check_owner()
        if population not in self.pops:
            raise SimulationError(f"no population named {population!r}")
        target = self.pops[population]
        ours = canonical_var(target.pop, variable)
        nest_name = _NEST_VAR[target.model].get(ours) if ours else None
        if nest_name is None or nest_name in _RECORD_ONLY:
            raise SimulationError(f"NEST's {target.model} does not let {variable!r} of {population!r} be read or "
                                  "written (state monitors can record the channel currents)")
        return target, ours, nest_name

    @_on_nest_thread
    def get_state(self, population: str, variable: str) -> np.ndarray:
        target, ours, nest_name = self._address(population, variable)
        if target.nodes is None:
            return np.zeros(0, self.dtype)
        values = np.asarray(target.nodes.get(nest_name), np.float64).reshape(-1)
        if ours.startswith("g_"):
            values = values / target.g_leak
        return values.astype(self.dtype)

    @_on_nest_thread
    def set_state(self, population: str, variable: str, values) -> None:
        """Overwrite a state variable between chunks. A spike NEST stamped at the chunk's last instant
        (our next step) has already been emitted and is not undone, unlike in the numba backend."""
        target, ours, nest_name = self._address(population, variable)
        if target.nodes is None:
            return
        values = np.broadcast_to(np.asarray(values, np.float64), (target.pop.size,))
        if ours.startswith("g_"):
            values = values * target.g_leak
        target.nodes.set({nest_name: values.tolist()})

    @_on_nest_thread
    def projection_weights(self, name: str) -> np.ndarray:
        """Weights of projection ``name`` in its CSR order and our units (static ones: the plan's)."""
        self._check_owner()
        proj = next((p for p in self.plan.projections if p.name == name), None)
        if proj is None:
            raise SimulationError(f"no projection named {name!r}")
        if name not in self.stdp_models:
            return np.array(proj.weights, copy=True)
        conns = nest.GetConnections(synapse_model=self.stdp_models[name])
        got = {k: np.atleast_1d(v) for k, v in conns.get(["source", "target", "delay", "weight"]).items()}
        src = np.asarray(got["source"], np.int64) - int(self._emitter_nodes(proj.pre)[0].global_id)
        tgt = np.asarray(got["target"], np.int64) - self.pops[proj.post].first
        delay = np.rint(np.asarray(got["delay"], np.float64) / self.dt).astype(np.int64)
        weight = np.asarray(got["weight"], np.float64) / self.weight_scale[name]
        ours = np.lexsort((proj.delays.astype(np.int64), proj.indices.astype(np.int64), proj.pre_indices()))
        theirs = np.lexsort((delay, tgt, src))
        out = np.empty(proj.n_synapses, proj.weights.dtype)
        out[ours] = weight[theirs]
        return out

    def state_arrays(self) -> dict:
        raise SimulationError("the NEST backend cannot save the network state: NEST keeps its synaptic ring "
                              "buffers, refractory counters and generator states inside its kernel; use the numba "
                              "backend for state files")

    def load_state_arrays(self, arrays: dict) -> None:
        raise SimulationError("the NEST backend cannot restore a network state (NEST cannot load its kernel "
                              "state); use the numba backend for state files")
