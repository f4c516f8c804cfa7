"""Training protocols: phases that present a data set sample by sample (no Qt).

A project whose graph holds ``training.phase`` nodes is run as a :class:`Protocol` instead of one
plain simulation. The phases form a chain (``next`` -> ``previous``); each runs on its own build
of the graph (:func:`phase_project`):

* the data-set encoder presents ``samples`` samples for ``presentation`` ms each;
* with ``plasticity`` off, the rules, the NALSM astrocytes that drive them and reward sources
  that only feed them are left out, so the phase runs the static (fast) kernels;
* ``overrides`` set parameters for the phase only (``Astrocyte.decay = 0.99``).

The plastic weights one phase ends with are the initial weights of the next (the same projection
by name, the same connectivity by construction: connectivity depends only on seeds). Within a
phase, before each sample, ``reset`` puts back the per-sample state
(:attr:`engine.backends.numba_backend.NumbaBackend.SAMPLE_STATE`) and with
``state_and_weights`` the weights the phase started with (NALSM phase 2: every sample starts
from the weights of phase 1). The rules' learning rates follow a linear per-sample schedule.

The timeline is continuous: phase ``p`` occupies global steps ``[offset_p, offset_p + n_p)``, so
rasters and results read as one run. Readouts and branching monitors are trained and scored on the
samples of each phase marked ``analyse`` (the last phase when none is).

Checkpoints are single ``.npz`` files written atomically (temporary file + rename) every
``checkpoint_every`` samples, at the end of every phase and when a run is stopped. They hold the
backend's dynamic state, the phase's starting weights and everything recorded so far; resuming
from one gives results identical to an uninterrupted run (the kernels are deterministic and
chunking never changes a result).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.backends.base import ChunkResult
from engine.errors import SimulationError
from engine.plan import MODEL_DEFAULTS
from engine.readouts import has_analysis
from engine.runner import ANALYSIS_GROUPS, RunControls, next_chunk_steps
from nodes.base import Category
from nodes.training import parse_overrides

PHASE_TYPE = "training.phase"
CHECKPOINT_VERSION = 1
#: nodes that only exist to drive plasticity (left out of a phase with plasticity off)
PLASTICITY_DRIVERS = ("modulator.nalsm_astrocyte", "modulator.reward")


@dataclass(frozen=True)
class PhaseSpec:
    """One phase as read from its node (see :class:`nodes.training.TrainingPhase`)."""

    node_id: str
    name: str
    samples: int
    presentation: float
    plasticity: bool
    reset: str
    learning_rate: float
    learning_rate_end: float
    overrides: str
    analyse: bool
    checkpoint_every: int
    workers: int = 1
    batch: int = 1

    def learning_rate_at(self, sample: int, n_samples: int) -> float:
        """The linear schedule's scale at ``sample`` (0-based) of ``n_samples``."""
        if n_samples <= 1:
            return self.learning_rate
        return self.learning_rate + (self.learning_rate_end - self.learning_rate) * sample / (n_samples - 1)

    @property
    def scheduled(self) -> bool:
        return self.plasticity and (self.learning_rate != 1.0 or self.learning_rate_end != 1.0)


#: carry-dict key prefix of a population's learned effective threshold V_th + theta
THRESHOLD_CARRY = "threshold:"


def learned_thresholds(sim) -> dict:
    """``{THRESHOLD_CARRY + population: V_th + theta}`` of the populations with an adaptive threshold
    rule (plasticity.intrinsic): what they learned, carried into the next phase like the weights."""
    return {THRESHOLD_CARRY + pop.name: pop.param("V_th") + sim.backend.get_state(pop.name, "theta")
            for pop in sim.plan.populations if "theta" in pop.initial_state}


def apply_thresholds(plan, carry: dict) -> None:
    """Start ``plan``'s populations from carried thresholds: where the threshold still adapts, theta
    continues from the carried value; where it does not (a phase with plasticity off), the learned
    threshold is frozen into V_th (Hao et al. 2020 freeze theta for testing)."""
    for pop in plan.populations:
        effective = carry.get(THRESHOLD_CARRY + pop.name)
        if effective is None:
            continue
        effective = np.asarray(effective, np.float64)
        if effective.shape != (pop.size,):
            raise SimulationError(f"population {pop.name!r} has {pop.size} neurons but the previous phase "
                                  f"ended with {effective.size} thresholds")
        if "theta" in pop.initial_state:
            pop.initial_state["theta"] = effective - pop.param("V_th")
        else:
            pop.params["V_th"] = effective


def has_phases(graph) -> bool:
    return any(n.type_id == PHASE_TYPE for n in graph.nodes.values())


def phase_specs(graph) -> list[PhaseSpec]:
    """The phases of a (validated) graph in chain order; the last is analysed when none is."""
    phases = {n.id: n for n in graph.nodes.values() if n.type_id == PHASE_TYPE}
    if not phases:
        return []
    roots = [n for n in phases.values() if not graph.upstream(n.id, "previous")]
    if len(roots) != 1:
        raise SimulationError("the training phases must form one chain; run 'validate' for details")
    chain, node = [], roots[0]
    while node is not None and node.id not in {n.id for n in chain}:
        chain.append(node)
        nxt = graph.downstream(node.id, "next")
        node = nxt[0][0] if len(nxt) == 1 else None
    specs = [PhaseSpec(n.id, n.label, int(n.samples), float(n.presentation), bool(n.plasticity), n.reset,
                       float(n.learning_rate), float(n.learning_rate_end), n.overrides, bool(n.analyse),
                       int(n.checkpoint_every), int(n.workers), int(n.batch)) for n in chain]
    if not any(s.analyse for s in specs):
        specs[-1] = dataclasses.replace(specs[-1], analyse=True)
    return specs


def dataset_node(graph):
    found = [n for n in graph.nodes.values() if n.type_id == "input.dataset"]
    if len(found) != 1:
        raise SimulationError(f"training phases need exactly one Dataset encoder; the graph has {len(found)}")
    return found[0]


def phase_project(project, spec: PhaseSpec):
    """An independent copy of ``project`` as ``spec`` runs it (see the module docs)."""
    copy = project.snapshot()
    graph = copy.graph
    for node, param, value in parse_overrides(spec.overrides, graph):
        node.set(param, value)
    encoder = dataset_node(graph)
    if spec.samples:
        encoder.set("n_samples", spec.samples)
    if spec.presentation:
        encoder.set("presentation", spec.presentation)
    drop = [n.id for n in graph.nodes.values() if n.type_id == PHASE_TYPE]
    if not spec.plasticity:
        drop += [n.id for n in graph.nodes.values()
                 if n.category == Category.PLASTICITY or n.type_id in PLASTICITY_DRIVERS]
    for node_id in drop:
        graph.remove_node(node_id)
    return copy


def phase_samples(project, spec: PhaseSpec) -> tuple[int, float]:
    """(samples, ms per sample) of a phase, before compiling it."""
    from engine import encoders

    encoder = dataset_node(phase_project(project, spec).graph)  # with the phase's overrides (e.g. its split)
    n = spec.samples or int(encoder.n_samples)
    if not n:
        if encoder.dataset == "sklearn_digits":
            data = encoders.load_digits()
        else:
            data = encoders.load_npz_dataset(project.resolve_path(encoder.file))
        if encoder.split != "all":
            data = encoders.split_dataset(data, encoder.split, encoder.test_fraction, 0)
        n = len(data.labels)
    presentation = spec.presentation or float(encoder.presentation)
    return n, presentation + float(encoder.rest)


def protocol_duration_ms(project, sample_limit: int | None = None) -> float:
    """Model time of every phase together (what a plain run's duration is to a protocol)."""
    dt = float(project.settings.dt)
    total = 0.0
    for spec in phase_specs(project.graph):
        n, ms = phase_samples(project, spec)
        total += min(n, sample_limit or n) * max(1, int(round(ms / dt))) * dt
    return total


def baseline_projects(project) -> list:
    """``[(name, project)]``: the baselines of Ivanov & Michmizos 2021 on the same liquid and readout,
    asked for by a NALSM astrocyte's ``compare_baselines`` (none otherwise).

    * ``LSM``: no rule and no astrocyte; every projection the astrocyte gated gets a constant
      weight magnitude ``lsm_weight``; only the analysed phases run (the others only shape weights);
    * ``LSM + STDP``: the rules without the astrocyte (their depression rate stays A_minus).
    """
    graph = project.graph
    astrocytes = [n for n in graph.nodes.values() if n.type_id == "modulator.nalsm_astrocyte"]
    chosen = [n for n in astrocytes if n.compare_baselines]
    if not chosen:
        return []
    gated = {proj.id for astro in astrocytes for proj, _ in graph.downstream(astro.id, "modulation")}
    lsm = project.snapshot()
    analysed = {s.node_id for s in phase_specs(graph) if s.analyse}
    for node in list(lsm.graph.nodes.values()):
        if (node.category == Category.PLASTICITY or node.type_id in PLASTICITY_DRIVERS
                or (node.type_id == PHASE_TYPE and node.id not in analysed)):
            lsm.graph.remove_node(node.id)
        elif node.id in gated:
            node.set("weight_init", "constant")
            node.set("weight", chosen[0].lsm_weight)
    stdp = project.snapshot()
    for astro in astrocytes:
        stdp.graph.remove_node(astro.id)
    for variant in (lsm, stdp):
        _drop_overrides_of_removed_nodes(variant.graph)
    return [("LSM", lsm), ("LSM + STDP", stdp)]


def kernel_quality_projects(project) -> list:
    """``[(node id, project)]``: for every kernel-quality node with pixel noise, the project that
    measures its AP (MODELS.md §6.4): every data-set encoder adds the node's pixel noise, the node
    itself has none (so its SP there is the AP), and the other analysis nodes and the NALSM
    baselines are left out (only the node's recording is needed). Seeds are unchanged, so the
    samples, their order and every other random stream are those of the clean run."""
    from engine.readouts import ANALYSIS_TYPES, KERNEL_QUALITY_TYPE

    out = []
    for node in project.graph.nodes.values():
        if node.type_id != KERNEL_QUALITY_TYPE or node.pixel_noise <= 0:
            continue
        variant = project.snapshot()
        graph = variant.graph
        for other in list(graph.nodes.values()):
            if other.type_id in ANALYSIS_TYPES and other.id != node.id:
                graph.remove_node(other.id)
            elif other.type_id == "input.dataset":
                other.set("pixel_noise", node.pixel_noise)
            elif other.type_id == "modulator.nalsm_astrocyte":
                other.set("compare_baselines", False)
        graph.node(node.id).set("pixel_noise", 0.0)
        _drop_overrides_of_removed_nodes(graph)
        out.append((node.id, variant))
    return out


def add_generalisation_ranks(project, results, run_variant, stopped, callback=None) -> None:
    """AP and SP − AP of every kernel-quality node of ``results`` (which hold its SP): runs each
    node's noisy project (:func:`kernel_quality_projects`) with ``run_variant(project) -> results``
    (None when stopped before it started), unless ``stopped()``; a noisy run that gives no rank is an analysis problem naming the node.
    ``callback`` gets an empty chunk at the end of the run carrying ``kernel_quality`` (live views)."""
    from engine.readouts import add_generalisation

    labels = {n.id: n.label for n in project.graph.nodes.values()}
    for node_id, variant in kernel_quality_projects(project):
        clean = results.kernel_quality.get(node_id)
        if clean is None:
            continue
        if stopped():
            return
        noisy = run_variant(variant)
        if noisy is None or noisy.stopped:
            return
        if node_id in noisy.kernel_quality:
            results.kernel_quality[node_id] = add_generalisation(clean, noisy.kernel_quality[node_id])
            if callback is not None:
                chunk = ChunkResult(results.n_steps, results.n_steps, results.dt)
                chunk.kernel_quality = {node_id: results.kernel_quality[node_id]}
                callback(chunk)
        else:
            results.analysis_problems.append(f"kernel quality {labels[node_id]!r}: the run on noisy inputs gave "
                                             f"no rank ({'; '.join(noisy.analysis_problems) or 'no samples'})")


def _drop_overrides_of_removed_nodes(graph) -> None:
    """A phase's overrides that name a node a baseline removed (``Astrocyte.decay``) go with it."""
    labels = {n.label for n in graph.nodes.values()} | set(graph.nodes)
    for node in graph.nodes.values():
        if node.type_id == PHASE_TYPE and node.overrides:
            kept = [item for item in node.overrides.split(";")
                    if item.strip() and item.partition("=")[0].strip().rpartition(".")[0] in labels]
            node.set("overrides", "; ".join(item.strip() for item in kept))


def summary_row(name: str, results) -> dict:
    """Test accuracy of the first readout, branching factor of the first branching monitor, SP − AP
    of the first kernel-quality node (NaN for what the run does not have)."""
    readout = next(iter(results.readouts.values()), {})
    branching = next(iter(results.branching.values()), {})
    kernel = next(iter(results.kernel_quality.values()), {})
    return dict(model=name, accuracy=float(readout.get("accuracy", float("nan"))),
                n_test=int(readout.get("n_test", 0)),
                branching_factor=float(branching.get("branching_factor", float("nan"))),
                rate_hz=float(branching.get("rate_hz", float("nan"))),
                sp_minus_ap=float(kernel.get("SP_minus_AP", float("nan"))))


def project_digest(project) -> str:
    """What a checkpoint must match to be resumed: the graph and the settings."""
    doc = project.to_json()
    text = json.dumps({"graph": doc["graph"], "settings": doc["settings"]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# chunks on the protocol's timeline
# ---------------------------------------------------------------------------------------------


def shift_chunk(chunk: ChunkResult, offset: int) -> ChunkResult:
    """``chunk`` with every step moved by ``offset`` (phase-local -> protocol timeline)."""
    out = ChunkResult(chunk.start_step + offset, chunk.stop_step + offset, chunk.dt, rates=dict(chunk.rates))
    steps_type = np.int32 if chunk.stop_step + offset < 2**31 else np.int64  # spike steps are most of a record
    out.spikes = {k: (s.astype(steps_type) + steps_type(offset), i) for k, (s, i) in chunk.spikes.items()}
    out.states = {k: {v: (s + offset, x) for v, (s, x) in d.items()} for k, d in chunk.states.items()}
    out.weights = {k: (s + offset, x) for k, (s, x) in chunk.weights.items()}
    # what Simulation.analyse() hands to live views: readout results, per-sample signals (ms)
    if hasattr(chunk, "readouts"):
        out.readouts = chunk.readouts
    if hasattr(chunk, "kernel_quality"):
        out.kernel_quality = chunk.kernel_quality
    if hasattr(chunk, "signals"):
        out.signals = {k: (np.asarray(t) + offset * chunk.dt, v) for k, (t, v) in chunk.signals.items()}
    return out


def slice_results(results, start_step: int, n_steps: int):
    """The spikes of ``results`` in ``[start_step, start_step + n_steps)`` on a phase-local clock
    (what :func:`engine.readouts.analyse` reads)."""
    from engine.runner import SimulationResults

    out = SimulationResults(dt=results.dt, n_steps=n_steps, settings=results.settings, sizes=results.sizes)
    for name, (steps, idx) in results.spikes.items():
        lo, hi = np.searchsorted(steps, [start_step, start_step + n_steps])
        out.spikes[name] = (steps[lo:hi] - start_step, idx[lo:hi])
    return out


# ---------------------------------------------------------------------------------------------
# the protocol runner
# ---------------------------------------------------------------------------------------------


@dataclass
class PhaseReport:
    """What one finished phase did (printed by the CLI, kept in the results' settings)."""

    name: str
    samples: int
    steps: int
    wall_s: float
    samples_per_s: float
    readouts: dict = dataclasses.field(default_factory=dict)
    branching: dict = dataclasses.field(default_factory=dict)
    problems: list = dataclasses.field(default_factory=list)


class Protocol(RunControls):
    """Runs the phases of a project (the :class:`engine.runner.Simulation` interface: ``run``,
    ``pause``/``resume``/``stop``, ``results``, ``plan``, progress callbacks).

    Parameters
    ----------
    project : engine.project.Project
    backend : str
        A backend with ``supports_training_phases`` (numba).
    checkpoint : path, optional
        Where checkpoints are written; None writes none.
    resume : bool
        Continue from ``checkpoint`` (which must exist and belong to this project).
    """

    def __init__(self, project, backend: str = "numba", settings: dict | None = None, seed: int | None = None,
                 dtype: str | None = None, on_progress: Callable | None = None, checkpoint=None,
                 resume: bool = False, sample_limit: int | None = None, **backend_options):
        from engine.validate import require_valid

        self.project = project.snapshot()
        #: folder of relative file parameters when the project has no file (an example's copy)
        self.base_path = (settings or {}).get("base_path")
        if settings:
            for key, value in settings.items():
                if key in self.project.settings.params:
                    self.project.settings.set(key, value)
        if seed is not None:
            self.project.settings.set("seed", int(seed))
        if dtype is not None:
            self.project.settings.set("dtype", str(dtype))
        require_valid(self.project.graph, self.project.settings)
        self.specs = phase_specs(self.project.graph)
        if not self.specs:
            raise SimulationError("the project has no training phase")
        self.sample_limit = sample_limit
        self.baselines: list = []
        self.sizes = [phase_samples(self.project, s) for s in self.specs]
        if sample_limit:  # a quick try-out: at most this many samples per phase
            self.sizes = [(min(n, int(sample_limit)), ms) for n, ms in self.sizes]
            self.specs = [dataclasses.replace(s, samples=n) for s, (n, _) in zip(self.specs, self.sizes)]
        self.backend_name = backend
        self.backend_options = backend_options
        self.on_progress = on_progress
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.resume_requested = bool(resume)
        dt = float(self.project.settings.dt)
        self.phase_steps = [n * max(1, int(round(ms / dt))) for n, ms in self.sizes]
        self.offsets = np.concatenate([[0], np.cumsum(self.phase_steps)]).astype(np.int64)
        self.total_steps = int(self.offsets[-1])
        self.target_chunk_s = 0.1
        self._init_controls()
        self.sim = None
        self.results = None
        self.reports: list[PhaseReport] = []
        self.checkpoints_written = 0
        self.learned: dict = {}

    def final_weights(self) -> dict:
        """Projection name -> weights at the end, for every projection that was plastic in a phase."""
        return {name: np.array(w, copy=True) for name, w in self.learned.items()
                if not name.startswith(THRESHOLD_CARRY)}

    @property
    def plan(self):
        return self.sim.plan if self.sim is not None else None

    # -- running ---------------------------------------------------------------------------------
    def run(self, duration_ms: float | None = None, callback: Callable[[ChunkResult], None] | None = None):
        """Run every phase (``duration_ms`` is ignored: the phases set the length)."""
        start = self._load_checkpoint() if self.resume_requested else None
        first_phase = start["phase"] if start else 0
        carry = start["carry"] if start else {}
        if self.on_progress is not None:  # phases a resumed run does not repeat are done
            from engine.runner import Progress

            for p, report in enumerate(self.reports[:first_phase]):
                n = self.sizes[p][0]
                self.on_progress(Progress("run", float(self.offsets[p + 1]) / max(self.total_steps, 1), 0.0,
                                          int(self.offsets[p + 1]), self.total_steps, report.wall_s,
                                          f"phase {p + 1}/{len(self.specs)} {self.specs[p].name!r} done",
                                          phase_index=p, phase_name=self.specs[p].name, sample=n, n_samples=n,
                                          samples_per_s=report.samples_per_s))
        for p in range(first_phase, len(self.specs)):
            carry = self._run_phase(p, carry, start if p == first_phase else None, callback)
            if carry is None:  # stopped
                return self.results
        if self.results.kernel_quality:
            add_generalisation_ranks(self.project, self.results, lambda variant: self._run_sub(Protocol(
                variant, backend=self.backend_name, on_progress=self._prefixed("Noisy inputs (AP)"),
                sample_limit=self.sample_limit, **self.backend_options)), self._stop.is_set, callback)
        variants = baseline_projects(self.project)
        if variants:
            self.baselines = [summary_row("NALSM", self.results)]
            for name, variant in variants:
                if self._stop.is_set():
                    break
                baseline = self._run_sub(Protocol(variant, backend=self.backend_name, on_progress=self._prefixed(name),
                                                  sample_limit=self.sample_limit, **self.backend_options))
                if baseline is None:
                    break
                self.baselines.append(summary_row(name, baseline))
            self.results.settings["baselines"] = self.baselines
            if callback is not None and self.results.readouts:
                # live views: the first readout's panel lists the baselines beside its own result
                node, result = next(iter(self.results.readouts.items()))
                chunk = ChunkResult(self.total_steps, self.total_steps, self.results.dt)
                chunk.readouts = {node: dict(result, baselines=self.baselines)}
                callback(chunk)
        return self.results

    def _prefixed(self, name: str):
        """Progress of a baseline run, its phases named after the baseline."""
        if self.on_progress is None:
            return None

        def report(progress):
            if progress.phase_name:
                progress = dataclasses.replace(progress, phase_name=f"{name}: {progress.phase_name}",
                                               message=f"{name}: {progress.message}")
            self.on_progress(progress)
        return report

    def _build(self, p: int, carry: dict):
        from engine.compiler import compile_graph
        from engine.runner import Simulation

        spec = self.specs[p]
        project = phase_project(self.project, spec)
        n, ms = self.sizes[p]
        plan = compile_graph(project, {"duration": n * ms, **({"base_path": self.base_path} if self.base_path else {})})
        for proj in plan.projections:
            if proj.name in carry:
                weights = np.asarray(carry[proj.name])
                if weights.shape != proj.weights.shape:
                    raise SimulationError(f"phase {spec.name!r}: projection {proj.name!r} has {proj.n_synapses} "
                                          f"synapses but the previous phase ended with {weights.size}")
                proj.weights = weights.astype(proj.weights.dtype, copy=True)
        apply_thresholds(plan, carry)
        options = dict(self.backend_options)
        if self.backend_name == "torch" and spec.reset != "none":
            options["batch"] = spec.batch  # every sample starts from the reset network: present them side by side
        sim = Simulation(plan, backend=self.backend_name, on_progress=self.on_progress, **options)
        if not getattr(sim.backend, "supports_training_phases", False):
            raise SimulationError(f"the {self.backend_name} backend cannot run training phases yet; "
                                  "use the numba backend")
        return sim

    def _run_phase(self, p: int, carry: dict, start: dict | None, callback):
        spec = self.specs[p]
        sim = self.sim = self._build(p, carry)
        self._carry = carry
        plan = sim.plan
        dataset = next(iter(plan.metadata["datasets"].values()))
        starts = np.asarray(dataset["sample_start"], np.int64)
        n = int(starts.size)
        period = int(starts[1] - starts[0]) if n > 1 else int(self.phase_steps[p] // max(n, 1))
        bounds = np.append(starts, starts[-1] + period if n else 0)
        offset = int(self.offsets[p])
        initial = sim.backend.state_arrays()
        start_weights = {proj.name: np.array(sim.backend.projection_weights(proj.name), copy=True)
                         for proj in plan.projections if proj.plastic}
        if self.results is None:
            self.results = sim.results
            self.results.settings["phases"] = [dataclasses.asdict(s) for s in self.specs]
            self.results.n_steps = 0
        sample, within = 0, 0
        if start is not None:
            sample, within = start["sample"], start["within"]
            if start["state"] is not None:  # None: the checkpoint was written between two phases
                sim.backend.load_state_arrays(start["state"])
                start_weights = {k: np.asarray(v) for k, v in start["start_weights"].items()}
            self.results = start["results"]
            if within and spec.scheduled:
                sim.backend.set_learning_rate_scale(spec.learning_rate_at(sample, n), amplitudes=False)
        if getattr(sim.backend, "B", 1) > 1:  # batch 1 runs below: its checkpoints keep what carries over
            return self._run_phase_batched(p, sim, bounds, start_weights, carry, callback, sample)
        if spec.workers > 1 and n >= 2 and (start is None or start["state"] is None):
            return self._run_phase_parallel(p, sim, bounds, initial, start_weights, carry, callback)
        # a phase whose samples need nothing at their boundaries runs in large chunks
        per_sample = spec.reset != "none" or spec.scheduled
        t_phase, done_at_start = time.perf_counter(), sample
        last_checkpoint = sample
        chunk_target = period
        pending: list[ChunkResult] = []
        t_yield = time.perf_counter()
        while sample < n:
            if self._hold_while_paused():
                break
            if within == 0:
                self._prepare_sample(sim, spec, sample, n, sample == 0, initial, start_weights)
            k = int(bounds[sample]) + within
            limit = int(bounds[sample + 1]) if per_sample else int(bounds[n])
            if spec.checkpoint_every and self.checkpoint is not None:  # checkpoints fall on sample starts
                limit = min(limit, int(bounds[min(n, last_checkpoint + spec.checkpoint_every)]))
            steps = max(1, min(limit - k, chunk_target, sim._steps_to_next_snapshot()))
            chunk, wall = sim.run_backend_chunk(steps, last=lambda: k + steps >= int(bounds[n]))
            shifted = shift_chunk(chunk, offset)
            self.results._append(shifted)
            self.results.wall_time_s += wall
            pending.append(shifted)
            # where the chunk ended: sample index and steps into it
            k_end = k + steps
            sample = int(np.searchsorted(bounds, k_end, side="right")) - 1
            within = k_end - int(bounds[sample]) if sample < n else 0
            chunk_target = period if per_sample else next_chunk_steps(steps, wall, self.target_chunk_s)
            if time.perf_counter() - t_yield >= self.target_chunk_s or sample >= n:
                if callback is not None:
                    callback(ChunkResult.concatenate(pending))
                pending, t_yield = [], time.perf_counter()
            self._report_progress(p, sample, n, within, period, t_phase, done_at_start)
            if (spec.checkpoint_every and within == 0 and sample < n
                    and sample - last_checkpoint >= spec.checkpoint_every):
                self._write_checkpoint(p, sample, within, start_weights)
                last_checkpoint = sample
        if pending and callback is not None:
            callback(ChunkResult.concatenate(pending))
        if self._stop.is_set() and sample < n:
            self.results.stopped = True
            self._write_checkpoint(p, sample, within, start_weights)
            return None
        return self._finish_phase(p, sim, bounds, start_weights, carry, time.perf_counter() - t_phase,
                                  n - done_at_start, callback)

    def _prepare_sample(self, sim, spec, sample: int, n: int, first: bool, initial, start_weights) -> None:
        """Reset before a sample (not before the first one of a run or block) and set its rates."""
        if not first and spec.reset != "none":
            sim.backend.reset_sample_state(initial)
            if spec.reset == "state_and_weights":
                for name, w in start_weights.items():
                    sim.backend.set_projection_weights(name, w)
        if spec.scheduled:
            sim.backend.set_learning_rate_scale(spec.learning_rate_at(sample, n))

    def _run_phase_parallel(self, p, sim, bounds, initial, start_weights, carry, callback):
        """Blocks of consecutive samples in ``spec.workers`` threads (numba kernels release the GIL),
        each on its own build, its step counter moved to the block's first sample."""
        import copy

        from engine.runner import Simulation

        spec = self.specs[p]
        n = int(bounds.size - 1)
        offset = int(self.offsets[p])
        plan = sim.plan
        from engine.plan import CurrentSourcePlan, PoissonSourcePlan

        # spike trains and waveforms are indexed by step (a worker can start anywhere); random
        # streams are drawn in order
        random_sources = [s.name for s in plan.sources if isinstance(s, PoissonSourcePlan)
                          or (isinstance(s, CurrentSourcePlan) and s.waveform == "noise")]
        if random_sources or plan.modulators or plan.tripartites:
            what = random_sources[:1] or [m.name for m in plan.modulators][:1] or [t.name for t in plan.tripartites][:1]
            label = plan.metadata["labels"].get(what[0], what[0])
            raise SimulationError(f"phase {spec.name!r}: {label!r} follows one stream through the whole phase, so "
                                  "its samples cannot be presented in parallel; set workers to 1")
        blocks = [b for b in np.array_split(np.arange(n), min(spec.workers, n)) if b.size]
        sims = [sim] + [Simulation(copy.deepcopy(plan), backend=self.backend_name, **self.backend_options)
                        for _ in blocks[1:]]
        outputs: list[list] = [[] for _ in blocks]
        done = [0] * len(blocks)
        failures: list[BaseException] = []
        t_phase = time.perf_counter()

        def work(w: int) -> None:
            worker, block = sims[w], blocks[w]
            try:
                worker.backend._k = int(bounds[block[0]])  # inputs are indexed by step: start at the block
                for s in block:
                    if self._hold_while_paused() or failures:
                        return
                    self._prepare_sample(worker, spec, int(s), n, s == block[0], initial, start_weights)
                    chunk = worker.backend.run_steps(int(bounds[s + 1] - bounds[s]))
                    outputs[w].append(shift_chunk(chunk, offset))
                    done[w] += 1
            except BaseException as exc:  # reported by the calling thread
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(w,), name=f"synweave-phase-{w}", daemon=True)
                   for w in range(len(blocks))]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=self.target_chunk_s)
            self._report_progress(p, sum(done), n, 0, int(bounds[1] - bounds[0]), t_phase, 0)
        if failures:
            raise failures[0]
        if self._stop.is_set():
            self.results.stopped = True
            self._write_checkpoint(p, 0, 0, start_weights, between_phases=True)
            return None
        for w in range(len(blocks)):  # in sample order: blocks are consecutive
            for chunk in outputs[w]:
                self.results._append(chunk)
            if callback is not None and outputs[w]:
                callback(ChunkResult.concatenate(outputs[w]))
        self.results.wall_time_s += time.perf_counter() - t_phase
        sim.backend._k = int(bounds[n])
        if spec.plasticity and len(sims) > 1:
            # the weights of the phase's last sample are those of the last block's worker
            for name in start_weights:
                sim.backend.set_projection_weights(name, sims[-1].backend.projection_weights(name))
        return self._finish_phase(p, sim, bounds, start_weights, carry, time.perf_counter() - t_phase, n, callback)

    def _run_phase_batched(self, p, sim, bounds, start_weights, carry, callback, first_sample: int):
        """Batches of ``B`` consecutive samples side by side (a backend with ``run_samples``), every
        copy starting from the phase's initial state and start weights; a checkpoint falls between
        two batches, where nothing but the results and the weights carried in is needed."""
        spec = self.specs[p]
        backend = sim.backend
        B = backend.B
        self._refuse_carried_state(sim, spec, B)
        n = int(bounds.size - 1)
        offset = int(self.offsets[p])
        period = int(bounds[1] - bounds[0]) if n > 1 else int(bounds[-1] - bounds[0])
        t_phase, sample, last_checkpoint = time.perf_counter(), first_sample, first_sample
        final_weights = {}
        while sample < n:
            if self._hold_while_paused():
                break
            members = np.arange(sample, min(sample + B, n))
            starts = np.concatenate([bounds[members], np.repeat(bounds[members[-1]], B - members.size)])
            if spec.scheduled:
                # each copy at its own sample's point of the schedule (empty copies repeat the last)
                rates = [spec.learning_rate_at(int(m), n) for m in members]
                backend.set_learning_rate_scale(np.array(rates + rates[-1:] * (B - members.size)))
            t0 = time.perf_counter()
            # every copy starts from the shared weights, which stay the phase's start weights until the end
            chunks = backend.run_samples(starts, period)
            self.results.wall_time_s += time.perf_counter() - t0
            shifted = [shift_chunk(chunks[b], offset) for b in range(members.size)]
            for chunk in shifted:
                self.results._append(chunk)
            if callback is not None:
                callback(ChunkResult.concatenate(shifted))
            if spec.plasticity and start_weights:
                final_weights = {name: backend.batch_projection_weights(name)[members.size - 1]
                                 for name in start_weights}
            sample = int(members[-1]) + 1
            self._report_progress(p, sample, n, 0, period, t_phase, first_sample)
            if (spec.checkpoint_every and sample < n and sample - last_checkpoint >= spec.checkpoint_every):
                self._write_checkpoint(p, sample, 0, start_weights, between_phases=True)
                last_checkpoint = sample
        if self._stop.is_set() and sample < n:
            self.results.stopped = True
            self._write_checkpoint(p, sample, 0, start_weights, between_phases=True)
            return None
        backend._k = int(bounds[n])
        for name, w in final_weights.items():  # the phase ends with its last sample's weights
            backend.set_projection_weights(name, w)
        return self._finish_phase(p, sim, bounds, start_weights, carry, time.perf_counter() - t_phase,
                                  n - first_sample, callback)

    def _refuse_carried_state(self, sim, spec, batch: int) -> None:
        """Samples side by side cannot hand each other state: refuse what would carry over."""
        labels = sim.plan.metadata.get("labels", {})
        for pop in sim.plan.populations:
            if "delta_theta" in MODEL_DEFAULTS[pop.model] and np.any(pop.param("delta_theta") != 0):
                raise SimulationError(
                    f"phase {spec.name!r}: the adaptive threshold of {labels.get(pop.name, pop.name)!r} carries "
                    f"from sample to sample (it is kept at each reset), which a batch of {batch} cannot; "
                    "set the phase's batch to 1")

    def _finish_phase(self, p, sim, bounds, start_weights, carry, wall, n_done, callback):
        spec = self.specs[p]
        plan = sim.plan
        n = int(bounds.size - 1)
        offset = int(self.offsets[p])
        report = PhaseReport(spec.name, n, int(self.phase_steps[p]), wall, n_done / wall if wall > 0 else 0.0)
        if spec.analyse and has_analysis(plan):
            sim.results = slice_results(self.results, offset, int(bounds[n]))
            chunk = sim.analyse()
            report.readouts, report.branching = sim.results.readouts, sim.results.branching
            report.problems = sim.results.analysis_problems
            for group in ANALYSIS_GROUPS:
                getattr(self.results, group).update(getattr(sim.results, group))
            self.results.analysis_problems = list(report.problems)
            if callback is not None and chunk is not None:
                callback(shift_chunk(chunk, offset))
        self.reports.append(report)
        self.results.settings["phase_reports"] = [
            dict(name=r.name, samples=r.samples, steps=r.steps, wall_s=round(r.wall_s, 3),
                 samples_per_s=round(r.samples_per_s, 1)) for r in self.reports]
        # weights learned in earlier phases pass through phases without plasticity unchanged
        carry = dict(carry)
        carry.update({name: np.array(sim.backend.projection_weights(name), copy=True) for name in start_weights})
        carry.update(learned_thresholds(sim))
        self.learned = carry
        if p + 1 < len(self.specs):
            self._carry = carry
            self._write_checkpoint(p + 1, 0, 0, carry, between_phases=True)
        elif self.checkpoint is not None and self.checkpoint.exists():
            self.checkpoint.unlink()  # finished: a stale checkpoint would only mislead a later --resume
        return carry

    def _report_progress(self, p, sample, n, within, period, t_phase, done_at_start):
        if self.on_progress is None:
            return
        from engine.runner import Progress

        spec = self.specs[p]
        done_global = int(self.offsets[p]) + min(sample, n) * period + within
        elapsed = time.perf_counter() - t_phase
        done_here = sample + within / max(period, 1) - done_at_start
        rate = done_here / elapsed if elapsed > 0 else 0.0
        phase_eta = (n - sample - within / max(period, 1)) / rate if rate > 0 else None
        message = (f"phase {p + 1}/{len(self.specs)} {spec.name!r}: sample {min(sample, n)}/{n}"
                   + (f", {rate:.0f} samples/s" if rate else ""))
        self.on_progress(Progress("run", done_global / max(self.total_steps, 1), phase_eta, done_global,
                                  self.total_steps, elapsed, message, phase_index=p, phase_name=spec.name,
                                  sample=min(sample, n), n_samples=n, samples_per_s=rate))

    # -- checkpoints -------------------------------------------------------------------------------
    def _write_checkpoint(self, phase: int, sample: int, within: int, start_weights: dict,
                          between_phases: bool = False) -> None:
        """Atomic: a crash while writing leaves the previous checkpoint intact. ``start_weights``:
        the plastic weights the phase started with; ``self._carry``: every weight carried into it."""
        if self.checkpoint is None:
            return
        meta = dict(version=CHECKPOINT_VERSION, digest=project_digest(self.project), phase=phase, sample=sample,
                    within=within, backend=self.backend_name, reports=self.results.settings.get("phase_reports", []))
        arrays = {"checkpoint": np.array(json.dumps(meta))}
        if not between_phases:  # inside a phase: the backend's state continues it
            for key, value in self.sim.backend.state_arrays().items():
                arrays[f"state/{key}"] = value
        for name, w in start_weights.items():
            arrays[f"start_weights/{name}"] = w
        for name, w in self._carry.items():
            arrays[f"carry/{name}"] = w
        for key, value in self.results.to_arrays().items():
            arrays[f"results/{key}"] = value
        folder = self.checkpoint.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.checkpoint.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.checkpoint)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.checkpoints_written += 1

    def _load_checkpoint(self) -> dict:
        from engine.runner import SimulationResults

        path = self.checkpoint
        if path is None or not path.is_file():
            raise SimulationError(f"no checkpoint to resume from at {str(path)!r}; run without --resume")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["checkpoint"]))
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise SimulationError(f"checkpoint {str(path)!r} cannot be read ({exc}); delete it and run again") from None
        if meta.get("version") != CHECKPOINT_VERSION:
            raise SimulationError(f"checkpoint {str(path)!r} has version {meta.get('version')!r}, "
                                  f"expected {CHECKPOINT_VERSION}; delete it and run again")
        if meta.get("digest") != project_digest(self.project):
            raise SimulationError(f"checkpoint {str(path)!r} belongs to another version of this project (the "
                                  "graph or settings changed since it was written); delete it or undo the change")
        phase = int(meta["phase"])
        if not 0 <= phase < len(self.specs):
            raise SimulationError(f"checkpoint {str(path)!r} names phase {phase}; the project has {len(self.specs)}")

        def group(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        weights = group("start_weights/")
        state = group("state/")
        self.results = SimulationResults.from_arrays(group("results/"))
        self.results.stopped = False  # this run continues it
        self.reports = [PhaseReport(r["name"], r["samples"], r["steps"], r["wall_s"], r["samples_per_s"])
                        for r in meta.get("reports", [])]
        return dict(phase=phase, sample=int(meta["sample"]), within=int(meta["within"]),
                    state=state or None, start_weights=weights, carry=group("carry/"), results=self.results)
