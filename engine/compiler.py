"""Model graph -> :class:`engine.plan.SimulationPlan`.

``compile_graph(project_or_graph, settings)`` turns the nodes of a model graph into the flat plan the
backends run:

* neuron nodes -> :class:`PopulationPlan` (named by node id; receptor channels ``exc`` = 0 and
  ``inh`` = 1, exponential/delta currents or conductances as the node says);
* Poisson, spike-train, data-set and event-stream nodes -> spike sources; current nodes -> one
  :class:`CurrentSourcePlan` per target population;
* projection nodes -> one :class:`ProjectionPlan` per target, generated block by block of
  presynaptic rows with numpy (no Python loop over synapses), weights and delays drawn per synapse;
* spike / state / rate monitors -> :class:`MonitorPlan`.

Every random stream is seeded: a node's own ``seed`` parameter when non-zero, otherwise a stream
derived from the project seed and the node id (plus a purpose tag), so that editing one node never
changes the random numbers of another.

Every node type is built by the function registered for it with :func:`builds` (as Nengo's
``Builder.register``): adding a node type means adding its builder here, not another ``type_id ==``
branch. Builders run in phases (populations and sources, then projections, then what acts on
projections such as plasticity rules, then monitors) so that each finds what it refers to. Node types
without a builder are not simulated; they are listed in ``plan.metadata["not_simulated"]`` and
validation warns about them on their node (:func:`unsupported_node_types`).
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from engine.connectivity import BLOCK_SYNAPSES, fixed_counts, fixed_probability
from engine.errors import ParameterError
from engine.plan import (CurrentSourcePlan, MonitorPlan, PoissonSourcePlan, PopulationPlan, ProjectionPlan,
                         ReceptorPlan, AstrocytePlan, RewardPlan, TripartitePlan, RULE_ORDER, RULE_PARAMS, RulePlan, SimulationPlan, SpikeTrainSourcePlan, STPPlan,
                         delay_dtype)

NEURON_MODELS = {"neuron.lif": "lif", "neuron.alif": "alif", "neuron.cobalif": "cobalif",
                 "neuron.izhikevich": "izhikevich"}
SPIKE_SOURCES = ("input.poisson", "input.spike_train", "input.dataset", "input.event_stream")
RECEPTOR_INDEX = {"excitatory": 0, "inhibitory": 1}

# build phases: each builder finds what earlier phases made
PHASE_NODES, PHASE_PROJECTIONS, PHASE_ACTING_ON_PROJECTIONS, PHASE_MONITORS = range(4)
_BUILDERS: dict[str, tuple[int, object]] = {}


def builds(*type_ids: str, phase: int = PHASE_NODES):
    """Decorator registering ``fn(ctx, node, plan)`` as the builder of node types ``type_ids``."""
    def register(fn):
        for type_id in type_ids:
            if type_id in _BUILDERS:
                raise ValueError(f"node type {type_id!r} has two builders")
            _BUILDERS[type_id] = (phase, fn)
        return fn
    return register


def buildable_node_types() -> frozenset[str]:
    """Node types the compiler turns into simulation plan parts."""
    return frozenset(_BUILDERS)


def unsupported_node_types(graph, backend: str) -> list:
    """Nodes of ``graph`` that ``backend`` cannot simulate (a backend runs what the compiler builds
    and what it declares in ``supported_node_types``; an unknown backend supports nothing)."""
    from engine.backends import backend_supported_node_types

    supported = backend_supported_node_types(backend) & buildable_node_types()
    return [node for node in graph.nodes.values() if node.type_id not in supported]


# ---------------------------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------------------------


def node_seed_sequence(project_seed: int, node, purpose: str) -> np.random.SeedSequence:
    """Seed of one random stream of a node: its own seed if set, else project seed + node id."""
    tag = zlib.crc32(purpose.encode())
    own = int(getattr(node, "seed", 0) or 0)
    if own:
        return np.random.SeedSequence(own, spawn_key=(tag,))
    return np.random.SeedSequence(int(project_seed), spawn_key=(zlib.crc32(node.id.encode()), tag))


def node_seed(project_seed: int, node, purpose: str) -> int:
    """The same stream as :func:`node_seed_sequence`, as one integer (for APIs that take an int)."""
    return int(node_seed_sequence(project_seed, node, purpose).generate_state(1)[0])


def projection_plan_name(node, post) -> str:
    """Name of the ProjectionPlan a projection node compiles to for one target population."""
    return f"{node.id}->{post.id}"


def node_rng(project_seed: int, node, purpose: str) -> np.random.Generator:
    return np.random.default_rng(node_seed_sequence(project_seed, node, purpose))


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, graph, settings, base_path):
        self.graph = graph
        self.dt = float(settings["dt"])
        self.seed = int(settings["seed"])
        self.dtype = str(settings["dtype"])
        self.duration = float(settings["duration"])
        self.base_path = base_path
        self.positions: dict[str, np.ndarray] = {}
        #: node id -> the ProjectionPlans it compiled to (one per target population)
        self.projections: dict[str, list[ProjectionPlan]] = {}
        #: node id -> PopulationPlan
        self.populations: dict[str, PopulationPlan] = {}

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        if not p.is_absolute() and self.base_path is not None:
            p = self.base_path / p
        return p

    def steps(self, ms: float) -> int:
        return int(round(ms / self.dt))


def _settings_dict(source, settings) -> tuple[object, dict, Path | None]:
    """(graph, merged settings, folder for relative paths) from a project or a graph + settings."""
    from engine.project import Project, SimulationSettings

    base = SimulationSettings().values_json()
    base_path = None
    if isinstance(source, Project):
        graph = source.graph
        base.update(source.settings.values_json())
        base_path = source.path.parent if source.path else None
    else:
        graph = source
    if isinstance(settings, SimulationSettings):
        base.update(settings.values_json())
    elif settings:
        base.update({k: v for k, v in dict(settings).items() if v is not None})
    if base.get("base_path"):
        base_path = Path(base["base_path"])
    return graph, base, base_path


def compile_graph(source, settings=None) -> SimulationPlan:
    """Compile a project or model graph into a :class:`SimulationPlan`.

    Parameters
    ----------
    source : engine.project.Project or engine.graph.ModelGraph
    settings : dict or SimulationSettings, optional
        Overrides of the project settings (``dt``, ``duration``, ``seed``, ``dtype``; ``base_path``
        for relative file paths when compiling a bare graph).

    Raises
    ------
    engine.errors.ValidationError
        The graph has errors (all of them are listed).
    engine.errors.ParameterError
        A data or connection file cannot be used.
    """
    from engine.validate import require_valid

    graph, merged, base_path = _settings_dict(source, settings)
    from engine.project import SimulationSettings

    checked = SimulationSettings(**{k: merged[k] for k in SimulationSettings().values_json()})
    warnings = require_valid(graph, checked)
    ctx = _Context(graph, merged, base_path)
    plan = SimulationPlan(dt=ctx.dt, n_steps=ctx.steps(ctx.duration), dtype=ctx.dtype, seed=ctx.seed)
    plan.metadata.update(labels={}, not_simulated=[], warnings=[str(w) for w in warnings], datasets={},
                         rate_monitors={}, weight_monitors={})
    for node in graph.nodes.values():
        plan.metadata["labels"][node.id] = node.label
        if node.type_id not in _BUILDERS:
            plan.metadata["not_simulated"].append(node.id)
    for phase in (PHASE_NODES, PHASE_PROJECTIONS, PHASE_ACTING_ON_PROJECTIONS, PHASE_MONITORS):
        for node in graph.nodes.values():
            entry = _BUILDERS.get(node.type_id)
            if entry is not None and entry[0] == phase:
                entry[1](ctx, node, plan)
    return plan


# ---------------------------------------------------------------------------------------------
# populations and positions
# ---------------------------------------------------------------------------------------------


@builds(*NEURON_MODELS)
def _build_population(ctx: _Context, node, plan: SimulationPlan) -> None:
    pop = _population(ctx, node)
    ctx.populations[node.id] = pop
    plan.populations.append(pop)


def _population(ctx: _Context, node) -> PopulationPlan:
    model = NEURON_MODELS[node.type_id]
    n = node.size()
    initial = {}
    scheme = None
    if model == "izhikevich":
        r = izhikevich_r(ctx.seed, node) if node.is_heterogeneous() else None
        a, b, c, d = node.abcd(r)
        params = dict(a=a, b=b, c=c, d=d, I_e=node.I_e)
        receptors = [ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")]
        scheme = "split2003" if node.scheme == "split_2003" else "euler"
    else:
        params = {k: node.get(k) for k in ("tau_m", "E_L", "V_th", "V_reset", "t_ref", "R", "I_e")}
        if model == "alif":
            params.update({k: node.get(k) for k in ("delta_theta", "tau_theta", "a_w", "b_w", "tau_w")})
        if model == "cobalif":
            receptors = [ReceptorPlan("exc", "conductance", node.tau_exc, node.E_exc),
                         ReceptorPlan("inh", "conductance", node.tau_inh, node.E_inh)]
        elif node.synapse == "delta":
            receptors = [ReceptorPlan("exc", "delta"), ReceptorPlan("inh", "delta")]
        else:
            receptors = [ReceptorPlan("exc", "exponential", node.tau_syn_exc),
                         ReceptorPlan("inh", "exponential", node.tau_syn_inh)]
        if node.V_init == "uniform":
            rng = node_rng(ctx.seed, node, "V_init")
            initial["V"] = rng.uniform(node.V_init_low, node.V_init_high, n)
    _positions(ctx, node)
    return PopulationPlan(node.id, model, n, params=params, initial_state=initial, receptors=receptors,
                          scheme=scheme)


def izhikevich_r(project_seed: int, node) -> np.ndarray:
    """The per-neuron r ~ U[0, 1) of an r-dependent Izhikevich preset; drawn from an integer seed
    so that the NEST script exporter can draw the same values."""
    return np.random.default_rng(node_seed(project_seed, node, "izhikevich_r")).random(node.size())


def _positions(ctx: _Context, node) -> np.ndarray | None:
    """Neuron positions (µm) of a node with a spatial layout, cached per node."""
    if node.id in ctx.positions:
        return ctx.positions[node.id]
    layout = getattr(node, "layout", "none")
    pos = None
    if layout == "grid":
        gx, gy, gz = node.grid
        idx = np.arange(node.size())
        pos = np.column_stack([idx % gx, (idx // gx) % gy, idx // (gx * gy)]).astype(np.float64) * node.spacing
    elif layout == "random":
        rng = node_rng(ctx.seed, node, "positions")
        pos = rng.random((node.size(), 3)) * np.asarray(node.extent, np.float64)
    ctx.positions[node.id] = pos
    return pos


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------


@builds("input.current", phase=PHASE_PROJECTIONS)
def _build_current_source(ctx: _Context, node, plan: SimulationPlan) -> None:
    for target, _ in ctx.graph.downstream(node.id, "current"):
        if target.type_id in NEURON_MODELS:
            plan.sources.append(_current_source(ctx, node, target))


@builds("input.poisson")
def _build_poisson(ctx: _Context, node, plan: SimulationPlan) -> None:
    plan.sources.append(PoissonSourcePlan(node.id, size=node.n, rates=node.rate,
                                          seed=node_seed(ctx.seed, node, "poisson"), start_step=ctx.steps(node.start),
                                          stop_step=ctx.steps(node.stop) if node.stop else 0))


@builds("input.spike_train")
def _build_spike_train(ctx: _Context, node, plan: SimulationPlan) -> None:
    from engine import encoders

    if node.source == "file":
        times, indices = encoders.load_spike_file(ctx.resolve(node.file), node.n)
    else:
        times, indices = np.asarray(node.times, np.float64), np.asarray(node.indices, np.int64)
    plan.sources.append(SpikeTrainSourcePlan.from_times(node.id, node.n, times, indices, ctx.dt))


def load_dataset(node, path: Path | None, project_seed: int):
    """The images and labels of a data-set encoder node (``path``: its resolved .npz file), with
    the node's pixel noise (its own seeded stream)."""
    from engine import encoders

    data = encoders.load_digits() if node.dataset == "sklearn_digits" else encoders.load_npz_dataset(path)
    if node.dataset == "npz" and data.n_pixels != node.pixels:
        raise ParameterError("pixels", f"the file has {data.n_pixels} pixels per image, the node says "
                                       f"{node.pixels}", node=node.label)
    if node.pixel_noise > 0:
        data = encoders.add_pixel_noise(data, node.pixel_noise, node_rng(project_seed, node, "pixel_noise"))
    return data


@builds("input.dataset")
def _build_dataset(ctx: _Context, node, plan: SimulationPlan) -> None:
    from engine import encoders

    data = load_dataset(node, ctx.resolve(node.file) if node.dataset == "npz" else None, ctx.seed)
    seed = node_seed(ctx.seed, node, "dataset")
    data = encoders.split_dataset(data, node.split, node.test_fraction, seed)
    enc = encoders.encode(data, encoding=node.encoding, max_rate=node.max_rate, presentation=node.presentation,
                          rest=node.rest, dt=ctx.dt, n_samples=node.n_samples, shuffle=node.shuffle == "yes",
                          latency_threshold=node.latency_threshold, seed=seed)
    plan.metadata["datasets"][node.id] = dict(labels=enc.labels, sample_start=enc.sample_start,
                                              presentation_steps=enc.presentation_steps)
    plan.sources.append(SpikeTrainSourcePlan(node.id, size=node.size(), kind="dataset", encoder=enc))


@builds("input.teacher", phase=PHASE_PROJECTIONS)
def _build_teacher(ctx: _Context, node, plan: SimulationPlan) -> None:
    """The label channel's spikes while each sample is shown (after the data sets are built)."""
    from engine import encoders

    ups = ctx.graph.upstream(node.id, "labels")
    dataset = plan.metadata["datasets"].get(ups[0][0].id) if ups else None
    if dataset is None:
        steps, indices = np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        labels = np.asarray(dataset["labels"], np.int64)
        if labels.size and labels.max() >= node.n:
            raise ParameterError("n", f"label {labels.max()} has no channel: the teacher has n = {node.n}",
                                 node=node.label)
        steps, indices = encoders.teacher_spikes(labels, dataset["sample_start"], int(dataset["presentation_steps"]),
                                                 node.rate * ctx.dt * 1e-3, node_rng(ctx.seed, node, "teacher"),
                                                 node.n, others=node.channels == "all_but_label")
    plan.sources.append(SpikeTrainSourcePlan(node.id, size=node.size(), steps=steps, indices=indices))


@builds("input.event_stream")
def _build_event_stream(ctx: _Context, node, plan: SimulationPlan) -> None:
    from engine import encoders

    steps, indices = encoders.load_event_stream(ctx.resolve(node.file), width=node.width, height=node.height,
                                                polarity=node.polarity, time_unit=node.time_unit, dt=ctx.dt)
    plan.sources.append(SpikeTrainSourcePlan(node.id, size=node.size(), steps=steps, indices=indices, kind="events"))


def _current_source(ctx: _Context, node, target) -> CurrentSourcePlan:
    name = f"{node.id}->{target.id}"
    seed = node_seed(ctx.seed, node, "noise:" + target.id)
    common = dict(target=target.id, seed=seed)
    if node.waveform == "dc":
        return CurrentSourcePlan(name, waveform="dc", amplitude=node.amplitude, **common)
    if node.waveform == "step":
        return CurrentSourcePlan(name, waveform="step", times=[node.onset, node.offset],
                                 amplitudes=[node.amplitude, 0.0], **common)
    if node.waveform == "sine":
        return CurrentSourcePlan(name, waveform="sine", amplitude=node.amplitude, offset=node.offset_current,
                                 frequency=node.frequency, phase=math.radians(node.phase), **common)
    return CurrentSourcePlan(name, waveform="noise", amplitude=node.amplitude, offset=node.offset_current, **common)


# ---------------------------------------------------------------------------------------------
# projections
# ---------------------------------------------------------------------------------------------


def _draw(rng, init: str, mean: float, low: float, high: float, std: float, size: int) -> np.ndarray:
    """Per-synapse values from constant / uniform / normal / lognormal (mean and std of the values)."""
    if init == "constant":
        return np.full(size, mean)
    if init == "uniform":
        return rng.uniform(low, high, size)
    if init == "normal":
        return rng.normal(mean, std, size)
    if init == "lognormal":
        if mean <= 0:
            raise ParameterError("weight", "a lognormal distribution needs a positive mean")
        sigma2 = math.log1p((std / mean) ** 2)
        return rng.lognormal(math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2), size)
    raise ParameterError("weight_init", f"unknown distribution {init!r}")


@builds("synapse.projection", phase=PHASE_PROJECTIONS)
def _build_projection(ctx: _Context, node, plan: SimulationPlan) -> None:
    made = _projections(ctx, node, plan)
    if node.stp == "tsodyks_markram":
        for proj in made:
            proj.stp = STPPlan(U=node.stp_U, tau_facil=node.stp_tau_facil, tau_rec=node.stp_tau_rec)
    ctx.projections[node.id] = made
    plan.projections.extend(made)


def _projections(ctx: _Context, node, plan: SimulationPlan) -> list[ProjectionPlan]:
    graph = ctx.graph
    pres = graph.upstream(node.id, "pre")
    if not pres:
        return []
    pre = pres[0][0]
    out = []
    for post, _ in graph.downstream(node.id, "post"):
        if post.type_id not in NEURON_MODELS:
            continue
        rng = node_rng(ctx.seed, node, "connectivity:" + post.id)
        out.append(_one_projection(ctx, node, pre, post, rng))
    return out


def _one_projection(ctx: _Context, node, pre, post, rng) -> ProjectionPlan:
    n_pre, n_post = pre.size(), post.size()
    same = pre.id == post.id
    exclude_self = same and not node.autapses
    file_weights = file_delays = None
    rule = node.connectivity
    if rule == "from_file":
        from engine.encoders import load_connection_file

        pre_idx, post_idx, file_weights, file_delays = load_connection_file(ctx.resolve(node.file), n_pre, n_post)
        order = np.lexsort((post_idx, pre_idx))
        pre_idx, post_idx = pre_idx[order], post_idx[order]
        file_weights = None if file_weights is None else file_weights[order]
        file_delays = None if file_delays is None else file_delays[order]
        counts = np.bincount(pre_idx, minlength=n_pre)
        indptr = np.zeros(n_pre + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = post_idx.astype(np.int32)
    else:
        indptr, indices = _connect(ctx, node, rule, pre, post, n_pre, n_post, exclude_self, rng)
    nsyn = indices.size
    sign = 1.0 if node.receptor == "excitatory" else -1.0
    wdtype = np.float32 if ctx.dtype == "float32" else np.float64
    weights = np.empty(nsyn, wdtype)
    # delays go straight to integer steps per block (uint16 holds every valid delay): no float64
    # and int64 arrays of nsyn entries
    steps = None if node.delay_init == "constant" and file_delays is None else np.empty(nsyn, np.uint16)
    max_steps = 1
    # weights and delays drawn in blocks of synapses: bounded temporary memory for 100 M synapses
    for lo in range(0, nsyn, BLOCK_SYNAPSES):
        hi = min(nsyn, lo + BLOCK_SYNAPSES)
        if file_weights is not None:
            w = file_weights[lo:hi]
        else:
            w = _draw(rng, node.weight_init, node.weight, node.weight_low, node.weight_high, node.weight_std, hi - lo)
        # the receptor sets the sign of drawn weights: currents +|w| (excitatory) / -|w|
        # (inhibitory), conductances |w|; weights from a file keep their own sign
        if post.type_id == "neuron.cobalif":
            weights[lo:hi] = np.abs(w)
        elif file_weights is not None:
            weights[lo:hi] = w
        else:
            weights[lo:hi] = sign * np.abs(w)
        del w
        if steps is not None:
            delays_ms = file_delays[lo:hi] if file_delays is not None else _draw(
                rng, node.delay_init, node.delay, node.delay_low, node.delay_high, node.delay_std, hi - lo)
            block = np.maximum(1, np.rint(np.asarray(delays_ms, np.float64) / ctx.dt)).astype(np.int64)
            if block.size:
                max_steps = max(max_steps, int(block.max()))
                delay_dtype(max_steps)  # raises for delays beyond uint16
            steps[lo:hi] = block
            del delays_ms, block
    if steps is None:
        d = max(1, int(round(node.delay / ctx.dt)))
        delays = np.full(nsyn, d, delay_dtype(d))
    else:
        dd = delay_dtype(max_steps if nsyn else 1)
        delays = steps if dd == steps.dtype else steps.astype(dd)
        del steps
        _sort_rows_by_delay(indptr, indices, weights, delays)
    return ProjectionPlan(projection_plan_name(node, post), pre.id, post.id, RECEPTOR_INDEX[node.receptor], indptr,
                          indices, weights, delays)


def _sort_rows_by_delay(indptr, indices, weights, delays) -> None:
    """Sort every CSR row by (delay, target) in place, for the ring buffer; blocks of rows of about
    BLOCK_SYNAPSES synapses keep the temporary index arrays small."""
    n_pre = indptr.size - 1
    a = 0
    while a < n_pre:
        b = int(np.searchsorted(indptr, indptr[a] + BLOCK_SYNAPSES, side="right")) - 1
        b = min(n_pre, max(b, a + 1))
        s0, s1 = int(indptr[a]), int(indptr[b])
        if s1 > s0:
            rows = np.repeat(np.arange(b - a, dtype=np.int32), np.diff(indptr[a:b + 1]))
            order = np.lexsort((indices[s0:s1], delays[s0:s1], rows))
            indices[s0:s1] = indices[s0:s1][order]
            weights[s0:s1] = weights[s0:s1][order]
            delays[s0:s1] = delays[s0:s1][order]
        a = b


def _connect(ctx, node, rule, pre, post, n_pre, n_post, exclude_self, rng):
    """CSR (indptr int64, indices int32 sorted within rows) of a connectivity rule."""
    if rule == "all_to_all":
        counts = np.full(n_pre, n_post - (1 if exclude_self else 0), np.int64)
        return _csr_from_row_generator(n_pre, counts, lambda lo, hi: _all_to_all_block(lo, hi, n_post, exclude_self))
    if rule == "one_to_one":
        m = min(n_pre, n_post)
        counts = (np.arange(n_pre) < m).astype(np.int64)
        indptr = np.zeros(n_pre + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, np.arange(m, dtype=np.int32)
    if rule == "fixed_probability":
        return fixed_probability(n_pre, n_post, node.p, rng, allow_autapses=not exclude_self, same_population=True)
    if rule == "fixed_indegree":
        return _fixed_indegree(n_pre, n_post, node.indegree, rng, exclude_self)
    if rule == "distance":
        pos_pre, pos_post = _positions(ctx, pre), _positions(ctx, post)
        if pos_pre is None or pos_post is None:
            raise ParameterError("connectivity", "distance-dependent connectivity needs spatial layouts",
                                 node=node.label)
        return _distance(pos_pre, pos_post, node.distance_C, node.distance_lambda, rng, exclude_self)
    if rule == "small_world":
        return _small_world(n_pre, n_post, node.k, node.beta, rng, exclude_self)
    raise ParameterError("connectivity", f"unknown connectivity {rule!r}", node=node.label)


def _csr_from_row_generator(n_pre, counts, block):
    """Fill preallocated CSR arrays from ``block(lo, hi) -> indices`` over row blocks."""
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), np.int32)
    per_row = max(1, int(counts.max()) if n_pre else 1)
    step = max(1, BLOCK_SYNAPSES // per_row)
    for lo in range(0, n_pre, step):
        hi = min(n_pre, lo + step)
        indices[indptr[lo]:indptr[hi]] = block(lo, hi)
    return indptr, indices


def _all_to_all_block(lo, hi, n_post, exclude_self):
    rows = hi - lo
    post = np.tile(np.arange(n_post, dtype=np.int32), rows)
    if not exclude_self:
        return post
    pre = np.repeat(np.arange(lo, hi, dtype=np.int32), n_post)
    return post[post != pre]


def _fixed_indegree(n_pre, n_post, indegree, rng, exclude_self):
    """Every post neuron draws ``indegree`` distinct pre neurons; transposed to pre-major CSR."""
    if indegree > n_pre - (1 if exclude_self else 0):
        raise ParameterError("indegree", f"indegree {indegree} exceeds the available presynaptic neurons")
    counts = np.full(n_post, indegree, np.int64)
    # sample in the post-major orientation (rows = post), then counting-sort into pre-major
    indptr_t, pre_of = fixed_counts(n_post, n_pre, counts, rng, exclude_self=exclude_self)
    post_of = np.repeat(np.arange(n_post, dtype=np.int32), indegree)
    return _transpose_csr(pre_of, post_of, n_pre)


def _transpose_csr(pre_of, post_of, n_pre):
    """CSR by pre from synapse lists (a stable counting sort keeps post order within each row)."""
    counts = np.bincount(pre_of, minlength=n_pre)
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    order = np.argsort(pre_of, kind="stable")
    return indptr, np.ascontiguousarray(post_of[order], dtype=np.int32)


def _distance(pos_pre, pos_post, C, lam, rng, exclude_self):
    """P(j -> i) = C·exp(-(D_ij/λ)²), one Bernoulli draw per pair, pre rows in blocks."""
    n_pre, n_post = pos_pre.shape[0], pos_post.shape[0]
    step = max(1, BLOCK_SYNAPSES // max(n_post, 1))
    counts_all, idx_all = [], []
    for lo in range(0, n_pre, step):
        hi = min(n_pre, lo + step)
        d2 = ((pos_pre[lo:hi, None, :] - pos_post[None, :, :]) ** 2).sum(axis=2)
        p = C * np.exp(-d2 / (lam * lam))
        if exclude_self:
            rows = np.arange(lo, hi)
            keep = rows < n_post
            p[np.flatnonzero(keep), rows[keep]] = 0.0
        hit = rng.random(p.shape) < p
        counts_all.append(hit.sum(axis=1))
        idx_all.append(np.nonzero(hit)[1].astype(np.int32))
    counts = np.concatenate(counts_all) if counts_all else np.zeros(0, np.int64)
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, (np.concatenate(idx_all) if idx_all else np.zeros(0, np.int32))


def _small_world(n_pre, n_post, k, beta, rng, exclude_self):
    """Watts–Strogatz: row j links to its k nearest ring neighbours (j ± 1..k/2 mod n_post); each
    link is rewired with probability beta to a uniform target (not j itself; a rewired link that
    duplicates an existing one is dropped)."""
    half = k // 2
    offsets = np.concatenate([np.arange(1, half + 1), -np.arange(1, half + 1)])
    keys_all = []
    step = max(1, BLOCK_SYNAPSES // max(k, 1))
    for lo in range(0, n_pre, step):
        hi = min(n_pre, lo + step)
        rows = np.repeat(np.arange(lo, hi, dtype=np.int64), offsets.size)
        targets = (rows + np.tile(offsets, hi - lo)) % n_post
        rewire = rng.random(rows.size) < beta
        new = rng.integers(0, n_post, rewire.sum())
        targets[rewire] = new
        if exclude_self:
            bad = targets == rows
            targets[bad] = (targets[bad] + 1 + rng.integers(0, max(n_post - 1, 1), bad.sum())) % n_post
        keys_all.append(np.unique(rows * n_post + targets))
    keys = np.concatenate(keys_all) if keys_all else np.zeros(0, np.int64)
    counts = np.bincount(keys // n_post, minlength=n_pre)
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, (keys % n_post).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# monitors
# ---------------------------------------------------------------------------------------------


@builds("monitor.spikes", "monitor.state", "monitor.rate", phase=PHASE_MONITORS)
def _build_monitor(ctx: _Context, node, plan: SimulationPlan) -> None:
    mon = _monitor(ctx, node, plan)
    if mon is not None:
        plan.monitors.append(mon)


def _monitor(ctx: _Context, node, plan: SimulationPlan) -> MonitorPlan | None:
    graph = ctx.graph
    port = {"monitor.spikes": "source", "monitor.rate": "source", "monitor.state": "population"}[node.type_id]
    ups = graph.upstream(node.id, port)
    if not ups:
        return None
    target = ups[0][0]
    size = target.size()
    if node.type_id == "monitor.spikes":
        indices = None
        if node.subset == "first":
            indices = np.arange(min(node.count, size))
        elif node.subset == "random":
            rng = node_rng(ctx.seed, node, "subset")
            indices = np.sort(rng.choice(size, min(node.count, size), replace=False))
        elif node.subset == "indices":
            indices = np.asarray([i for i in node.indices if i < size], np.int64)
        return MonitorPlan(node.id, target.id, "spikes", indices=indices)
    if node.type_id == "monitor.rate":
        plan.metadata["rate_monitors"][node.id] = dict(bin_ms=node.bin, smoothing_ms=node.smoothing)
        return MonitorPlan(node.id, target.id, "rate")
    return MonitorPlan(node.id, target.id, "state", indices=np.asarray(node.indices, np.int64),
                       variables=(node.variable,), every=node.every)


@builds("monitor.weights", phase=PHASE_MONITORS)
def _build_weight_monitor(ctx: _Context, node, plan: SimulationPlan) -> None:
    """Snapshots of the first target's synapses (a seeded subset of ``max_synapses`` at most)."""
    ups = ctx.graph.upstream(node.id, "projection")
    if not ups or not ctx.projections.get(ups[0][0].id):
        return
    proj = ctx.projections[ups[0][0].id][0]
    indices = None
    if proj.n_synapses > node.max_synapses:
        rng = node_rng(ctx.seed, node, "subset")
        indices = np.sort(rng.choice(proj.n_synapses, node.max_synapses, replace=False))
    every = ctx.steps(node.interval) if node.interval > 0 else 0
    plan.monitors.append(MonitorPlan(node.id, proj.name, "weights", indices=indices, every=max(every, 1) if
                                     node.interval > 0 else 0))
    rules = [r for r in proj.rules if "w_min" in r.params or "w_max" in r.params]
    bounds = (rules[0].get("w_min"), rules[0].get("w_max")) if rules else None
    plan.metadata["weight_monitors"][node.id] = dict(projection=proj.name, bounds=bounds)


# ---------------------------------------------------------------------------------------------
# plasticity rules, reward signals, short-term plasticity
# ---------------------------------------------------------------------------------------------

_RULE_NODE_KIND = {"plasticity.stdp": "stdp", "plasticity.triplet": "triplet", "plasticity.symmetric": "symmetric",
                   "plasticity.rstdp": "rstdp", "plasticity.oja": "oja", "plasticity.bcm": "bcm"}


def _rule_params(node, kind: str) -> dict:
    return {k: node.get(k) for k in RULE_PARAMS[kind] if k in node.params}


def _attach(ctx: _Context, node, rule_factory) -> None:
    """Add the rule made by ``rule_factory(projection_plan)`` to every projection the node is wired to."""
    for projection, _ in ctx.graph.downstream(node.id, "rule"):
        for proj in ctx.projections.get(projection.id, []):
            proj.rules.append(rule_factory(proj))
            proj.rules.sort(key=lambda r: RULE_ORDER.index(r.kind))
            proj.plastic = True


@builds(*_RULE_NODE_KIND, phase=PHASE_ACTING_ON_PROJECTIONS)
def _build_timing_or_rate_rule(ctx: _Context, node, plan: SimulationPlan) -> None:
    kind = _RULE_NODE_KIND[node.type_id]
    params = _rule_params(node, kind)
    modulator = None
    if kind == "rstdp":
        ups = ctx.graph.upstream(node.id, "modulation")
        modulator = ups[0][0].id if ups else None

    def astrocyte_of(proj):
        """A NALSM astrocyte wired to the projection sets a pair-STDP rule's depression rate."""
        if kind != "stdp":
            return None
        for astro, _ in ctx.graph.upstream(proj.name.split("->")[0], "modulation"):
            if astro.type_id == "modulator.nalsm_astrocyte":
                return astro.id
        return None

    _attach(ctx, node, lambda proj: RulePlan(kind, node.label, dict(params),
                                             pairing=getattr(node, "pairing", "all_to_all"),
                                             same_step=getattr(node, "same_step", "pre_then_post"),
                                             modulator=modulator, astrocyte=astrocyte_of(proj),
                                             dendritic=getattr(node, "delay_semantics", "axonal") == "dendritic"))


@builds("plasticity.scaling", phase=PHASE_ACTING_ON_PROJECTIONS)
def _build_scaling(ctx: _Context, node, plan: SimulationPlan) -> None:
    if node.mode == "normalize":
        kind = "scaling_normalize"
        params = dict(target_sum=node.target_sum, interval=node.interval)
        # interval 0: once at the start of every data-set sample presentation
        events = None
        if node.interval <= 0:
            starts = [np.asarray(d["sample_start"], np.int64) for d in plan.metadata["datasets"].values()]
            events = np.unique(np.concatenate(starts)) if starts else np.zeros(1, np.int64)
            params["interval"] = ctx.dt
    else:
        kind = "scaling_activity"
        params = dict(a_target=node.a_target, tau_a=node.tau_a, beta=node.beta, interval=max(node.interval, ctx.dt))
    _attach(ctx, node, lambda proj: RulePlan(kind, node.label, dict(params), event_steps=events if
                                             kind == "scaling_normalize" else None))


@builds("plasticity.intrinsic", phase=PHASE_ACTING_ON_PROJECTIONS)
def _build_adaptive_threshold(ctx: _Context, node, plan: SimulationPlan) -> None:
    """The target populations get an adaptive threshold V_th,eff = V_th + theta - offset: the Diehl &
    Cook form is the LIF family's own threshold adaptation (delta_theta, tau_theta), the Hao form adds
    the kernel's theta-dependent increment."""
    for projection, _ in ctx.graph.downstream(node.id, "rule"):
        for post, _ in ctx.graph.downstream(projection.id, "post"):
            pop = ctx.populations.get(post.id)
            if pop is None or pop.model == "izhikevich":
                continue
            if pop.model == "lif":
                pop.model = "alif"
            pop.params["V_th"] = np.asarray(pop.param("V_th")) - node.offset
            pop.params["tau_theta"] = node.tau_theta
            pop.params["delta_theta"] = node.theta_plus if node.form == "diehl_cook" else 0.0
            pop.initial_state["theta"] = node.theta_init
            if node.form == "hao":
                pop.threshold_rule = dict(theta_plus=node.theta_plus, offset=node.offset)


@builds("modulator.nalsm_astrocyte")
def _build_nalsm_astrocyte(ctx: _Context, node, plan: SimulationPlan) -> None:
    plan.astrocytes.append(AstrocytePlan(
        node.id, liquid=[n.id for n, _ in ctx.graph.upstream(node.id, "liquid")],
        reference=[n.id for n, _ in ctx.graph.upstream(node.id, "reference")], tau=node.tau_astro, w=node.w_astro,
        b=node.b_astro, A_init=node.A_init, decay=node.decay))


@builds("modulator.tripartite_astrocyte", phase=PHASE_ACTING_ON_PROJECTIONS)
def _build_tripartite_astrocyte(ctx: _Context, node, plan: SimulationPlan) -> None:
    """The covered projections release through Tsodyks-Markram synapses (the preset's facilitation
    and depression rates unless the projection sets its own) whose U_0 the astrocyte modulates."""
    from engine.kernels import astrocytes as ak

    names = []
    for projection, _ in ctx.graph.downstream(node.id, "modulation"):
        for proj in ctx.projections.get(projection.id, []):
            if proj.stp is None:
                syn = ak.TRIPARTITE_SYNAPSE
                proj.stp = STPPlan(U=node.U_0, tau_facil=1000.0 / syn["Omega_f"], tau_rec=1000.0 / syn["Omega_d"])
            else:
                proj.stp = STPPlan(U=node.U_0, tau_facil=proj.stp.tau_facil, tau_rec=proj.stp.tau_rec)
            names.append(proj.name)
    params = ak.preset_vector(node.preset, I_bias=node.I_bias, C_Theta=node.C_theta)
    plan.tripartites.append(TripartitePlan(node.id, names, params, U0_star=node.U_0,
                                           alpha=1.0 if node.alpha == "release_increasing" else 0.0,
                                           dt_astro=node.dt_astro))


@builds("modulator.reward")
def _build_reward(ctx: _Context, node, plan: SimulationPlan) -> None:
    if node.mode == "times":
        times = np.asarray(node.times, np.float64)
    else:
        rng = node_rng(ctx.seed, node, "reward_times")
        n = rng.poisson(node.rate * ctx.duration / 1000.0) if node.rate > 0 else 0
        times = np.sort(rng.uniform(0.0, ctx.duration, n))
    plan.modulators.append(RewardPlan(node.id, tau_d=node.tau_d, tonic=node.tonic,
                                      steps=np.rint(times / ctx.dt).astype(np.int64), amplitudes=node.amplitude))


# ---------------------------------------------------------------------------------------------
# readouts and the branching monitor: a spike recording now, evaluated after the run
# (engine/readouts.py)
# ---------------------------------------------------------------------------------------------


@builds("readout.vote", "readout.softmax", "readout.ridge", phase=PHASE_MONITORS)
def _build_readout(ctx: _Context, node, plan: SimulationPlan) -> None:
    from engine.readouts import plan_readout

    plan_readout(ctx.graph, node, plan, ctx.steps)


@builds("training.surrogate_gradient", phase=PHASE_MONITORS)
def _build_training(ctx: _Context, node, plan: SimulationPlan) -> None:
    """Nothing to simulate: a training node is read by ``python main.py train`` (engine/gradient.py)."""


@builds("monitor.branching", phase=PHASE_MONITORS)
def _build_branching_monitor(ctx: _Context, node, plan: SimulationPlan) -> None:
    from engine.readouts import plan_branching

    plan_branching(ctx.graph, node, plan, ctx.steps)


@builds("monitor.kernel_quality", phase=PHASE_MONITORS)
def _build_kernel_quality(ctx: _Context, node, plan: SimulationPlan) -> None:
    from engine.readouts import plan_kernel_quality

    plan_kernel_quality(ctx.graph, node, plan, node_seed(ctx.seed, node, "kernel_quality"))


@builds("training.phase", phase=PHASE_MONITORS)
def _build_training_phase(ctx: _Context, node, plan: SimulationPlan) -> None:
    """Phases shape how a run is driven (engine.training.Protocol builds each phase's graph
    without them), not what is simulated: nothing to add to a plan."""
