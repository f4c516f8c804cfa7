"""Graph validation: every problem at once, each with its node, port or field, and a fix hint."""

from __future__ import annotations

import math
from pathlib import Path

from engine.errors import ParameterError, Problem, ValidationError
from engine.graph import ModelGraph
from nodes.base import Category

#: how many standard deviations of the input fluctuations count as "can reach threshold"
FLUCTUATION_SIGMAS = 3.0
#: relaxation time (ms) of an Izhikevich neuron near rest, for its fluctuation estimate
IZHIKEVICH_TAU_MS = 5.0


def validate(graph: ModelGraph, settings=None, base_path: str | Path | None = None) -> list[Problem]:
    """All problems of a graph (errors and warnings), in a stable order.

    Parameters
    ----------
    graph : ModelGraph
    settings : SimulationSettings, optional
        When given, checks that depend on the time step (Poisson fidelity, delay rounding,
        Izhikevich's 1-ms scheme) are included.
    base_path : path, optional
        The project file's folder: relative file parameters are checked below it (without it only
        absolute ones are checked here; every file is checked again when it is opened).
    """
    problems: list[Problem] = []
    if len(graph) == 0:
        problems.append(Problem("the network is empty", severity="warning",
                                hint="add a population from the palette (Tab)"))
    for node in graph.nodes.values():
        for name, param in node.params.items():
            try:
                param.coerce(node.get(name))
            except ParameterError as exc:
                problems.append(Problem(exc.detail, node=node.label, field=name,
                                        hint=f"valid: {param.describe()}"))
        problems.extend(node.check())
        for port in node.inputs():
            if port.required and not graph.upstream(node.id, port.name):
                kinds = " or ".join(k.value for k in port.kinds)
                problems.append(Problem(f"required input {port.name!r} is not connected",
                                        node=node.label, field=port.name,
                                        hint=f"wire a {kinds} output into it"))
        problems.extend(node.check_in_graph(graph))
        problems.extend(_check_files(node, base_path))
    problems.extend(_check_network(graph))
    if settings is not None:
        problems.extend(_check_with_settings(graph, settings))
    return problems


def validate_project(project) -> list[Problem]:
    """:func:`validate` with the project's settings and folder."""
    folder = project.path.parent if project.path is not None else None
    return validate(project.graph, project.settings, folder)


def _check_files(node, base_path) -> list[Problem]:
    """File parameters in use must name regular files (a FIFO or a terminal would block a run)."""
    from engine.encoders import file_kind

    out = []
    for name, param in node.params.items():
        value = node.get(name)
        if not getattr(param, "is_path", False) or not value:
            continue
        if not all(node.get(other) in allowed for other, allowed in param.visible_if.items()):
            continue  # not used by the current settings of the node
        path = Path(value).expanduser()
        if not path.is_absolute():
            if base_path is None:
                continue
            path = Path(base_path) / path
        kind = file_kind(path)
        if kind == "missing":
            out.append(Problem(f"file {str(path)!r} not found", node=node.label, field=name,
                               hint="choose an existing file (relative paths start at the project "
                                    "file's folder)"))
        elif kind is not None:
            out.append(Problem(f"{str(path)!r} is {kind}, not a regular file", node=node.label,
                               field=name, hint="choose a data file"))
    return out


def errors_only(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def require_valid(graph: ModelGraph, settings=None) -> list[Problem]:
    """Raise :class:`ValidationError` listing every error; return the warnings otherwise."""
    problems = validate(graph, settings)
    errors = errors_only(problems)
    if errors:
        raise ValidationError(errors)
    return [p for p in problems if p.severity != "error"]


def _check_backend(graph: ModelGraph, backend: str) -> list[Problem]:
    """The chosen backend exists, and every node it cannot simulate is named on that node."""
    from engine.backends import (available_backends, backend_supported_node_types, backend_unsupported_reason,
                                 missing_dependency)
    from engine.compiler import buildable_node_types, unsupported_node_types

    if backend not in available_backends():
        return [Problem(f"the {backend} backend is planned but not available yet",
                        field="backend", hint=f"choose {' or '.join(available_backends())}")]
    package = missing_dependency(backend)
    if package is not None:
        return [Problem(f"the {backend} backend needs the {package} package, which is not installed",
                        field="backend", hint=f"pip install -e '.[{backend}]', or choose numba")]
    built = buildable_node_types()
    out = []
    for node in unsupported_node_types(graph, backend):
        if node.type_id in built:  # compiled into the plan, which this backend refuses: the run would fail
            others = [b for b in available_backends() if node.type_id in backend_supported_node_types(b)]
            why = backend_unsupported_reason(backend, node.type_id)
            out.append(Problem(f"{node.title} cannot be run by the {backend} backend: "
                               f"{why or 'the run would be refused'}",
                               node=node.label, field="backend",
                               hint=f"use the {' or '.join(others)} backend, or remove the node" if others
                               else "remove the node"))
        else:
            out.append(Problem(f"{node.title} is not simulated by the {backend} backend yet: it has no effect "
                               "on a run", node=node.label, severity="warning",
                               hint="remove it, or keep it for export and later versions"))
    return out


def _check_device(graph: ModelGraph, settings) -> list[Problem]:
    """A CUDA device chosen where there is none: a torch run would fail (an error); surrogate-gradient
    training, which runs on torch whatever the backend, would fail (a warning: the run works)."""
    from engine.backends.base import cuda_missing_reason
    from engine.gradient import training_nodes

    trains = bool(training_nodes(graph))
    if settings.device == "cpu" or (settings.backend != "torch" and not trains):
        return []
    why = cuda_missing_reason()
    if why is None:
        return []
    if settings.backend == "torch":
        return [Problem(f"device {settings.device!r} is not available here ({why})", field="device",
                        hint="choose device cpu (the same network, on the CPU), or run where a GPU is")]
    return [Problem(f"device {settings.device!r} is not available here ({why}): Train cannot run on it",
                    field="device", severity="warning",
                    hint="choose device cpu (the same training, on the CPU), or train where a GPU is")]


def _check_with_settings(graph: ModelGraph, settings) -> list[Problem]:
    dt = settings.dt
    out: list[Problem] = _check_backend(graph, settings.backend) + _check_device(graph, settings)
    for node in graph.nodes.values():
        if node.type_id == "input.poisson" and node.rate * dt * 1e-3 > 0.1:
            out.append(Problem(f"rate {node.rate:g} Hz gives a spike probability of "
                               f"{node.rate * dt * 1e-3:.2f} per step, above 0.1: the trains are "
                               "no longer Poisson", node=node.label, field="rate",
                               severity="warning", hint=f"use dt <= {100.0 / node.rate:g} ms"))
        if node.type_id == "neuron.izhikevich":
            if node.scheme == "split_2003" and abs(dt - 1.0) > 1e-9:
                out.append(Problem(f"the 2003 split scheme is defined for dt = 1 ms, not {dt:g} ms",
                                   node=node.label, field="scheme", severity="warning",
                                   hint="set dt = 1 ms or choose scheme = euler"))
            if node.scheme == "split_2003" and settings.dtype == "float32":
                out.append(Problem("the 2003 split scheme is chaotic under rounding: float32 changes spike "
                                   "counts (12 of the 42 of the MODELS.md §1.4 table)", node=node.label,
                                   field="scheme", severity="warning",
                                   hint="set the project's dtype to float64 (Simulation settings)"))
            if node.scheme == "euler" and dt > 0.1:
                out.append(Problem(f"forward Euler at dt = {dt:g} ms is inaccurate for Izhikevich "
                                   "neurons", node=node.label, field="scheme", severity="warning",
                                   hint="use dt <= 0.1 ms"))
        if node.type_id == "training.phase" and node.batch > 1 and settings.backend != "torch":
            out.append(Problem(f"batch {node.batch} has no effect on the {settings.backend} backend: it presents "
                               "the samples one after another", node=node.label, field="batch",
                               severity="warning", hint="choose the torch backend, or use workers for parallel "
                                                        "threads on numba"))
        if node.type_id == "synapse.projection":
            if node.delay_init == "constant" and node.delay < dt - 1e-12:
                out.append(Problem(f"delay {node.delay:g} ms is shorter than dt = {dt:g} ms and "
                                   "becomes one step", node=node.label, field="delay",
                                   severity="warning", hint=f"use a delay >= {dt:g} ms"))
        for name, param in node.params.items():
            if param.unit == "ms" and name.startswith("tau") and node.get(name) < dt:
                out.append(Problem(f"{name} = {node.get(name):g} ms is shorter than dt = {dt:g} ms",
                                   node=node.label, field=name, severity="warning",
                                   hint="reduce dt for accurate dynamics"))
    return out


# ----------------------------------------------------------------------------------------------
# Network-level warnings: what makes a run silent or leaves nothing to look at
# ----------------------------------------------------------------------------------------------
def _check_network(graph: ModelGraph) -> list[Problem]:
    out: list[Problem] = []
    populations = graph.of_category(Category.NEURON)
    for pop in populations:
        inputs = graph.upstream(pop.id, "input")
        outputs = any(graph.downstream(pop.id, port.name) for port in pop.outputs())
        if not inputs and not outputs:
            out.append(Problem("the population is not connected to anything", node=pop.label,
                               severity="warning",
                               hint="wire a source through a Projection into 'input', and 'spikes' "
                                    "into a monitor"))
        problem = _drive_problem(graph, pop)
        if problem is not None:
            out.append(problem)
    active = populations or [n for n in graph.nodes.values() if n.category == Category.INPUT]
    recorders = [n for n in graph.nodes.values() if n.category in (Category.MONITOR, Category.READOUT)]
    if active and not recorders:
        out.append(Problem("the network has no monitor: a run records nothing to plot or count",
                           severity="warning",
                           hint="add a Spike monitor (Monitors in the palette) and wire a "
                                "population's 'spikes' into it"))
    return out


class _Unknown(Exception):
    """An input whose drive cannot be estimated cheaply (recurrent, data, noise, file weights)."""


def _weight_moments(prj) -> tuple[float, float]:
    """Mean of |w| and mean of w**2 of a projection's initial weights."""
    match prj.weight_init:
        case "constant":
            return abs(prj.weight), prj.weight ** 2
        case "uniform":
            lo, hi = prj.weight_low, prj.weight_high
            mean = (lo + hi) / 2
            return abs(mean), mean ** 2 + (hi - lo) ** 2 / 12
        case _:
            return abs(prj.weight), prj.weight ** 2 + prj.weight_std ** 2


def _spike_inputs(graph: ModelGraph, pop):
    """(sign, rate per ms of arriving spikes per neuron, E|w|, E[w^2], projection) per projection."""
    for node, port in graph.upstream(pop.id, "input"):
        if node.type_id != "synapse.projection":
            continue
        if node.connectivity == "from_file" or graph.upstream(node.id, "rule"):
            raise _Unknown  # weights from a file, or weights that learning changes
        for pre, _ in graph.upstream(node.id, "pre"):
            if pre.type_id != "input.poisson":
                raise _Unknown
            indegree = node.expected_synapses(pre.size(), pop.size(), pre is pop) / pop.size()
            m1, m2 = _weight_moments(node)
            sign = 1.0 if node.receptor == "excitatory" else -1.0
            yield sign, indegree * pre.rate * 1e-3, m1, m2, node


def _current_peak(graph: ModelGraph, pop) -> float:
    """The largest injected current (pA or model units) the population's current sources give."""
    total = 0.0
    for node, _ in graph.upstream(pop.id, "input"):
        if node.type_id != "input.current":
            continue
        match node.waveform:
            case "dc" | "step":
                total += max(node.amplitude, 0.0) if node.waveform == "step" else node.amplitude
            case "sine":
                total += node.offset_current + abs(node.amplitude)
            case _:
                raise _Unknown  # noise: fluctuation-driven
    return total


def _lif_reach(pop, inputs, current) -> tuple[float, float]:
    """Mean and standard deviation of V (mV) under Poisson drive (Campbell's theorem)."""
    tau_m, R = pop.tau_m, pop.R
    mean = pop.E_L + R * (pop.I_e + current)
    var = 0.0
    for sign, lam, m1, m2, _ in inputs:
        if pop.synapse == "delta":  # each spike a jump of w mV decaying with tau_m
            mean += sign * lam * m1 * tau_m
            var += lam * m2 * tau_m / 2
        else:  # exponential current: PSP R w tau_s / (tau_s - tau_m) (e^-t/tau_s - e^-t/tau_m)
            tau_s = pop.tau_syn_exc if sign > 0 else pop.tau_syn_inh
            if abs(tau_s - tau_m) < 1e-6:
                tau_s = tau_m * (1 + 1e-6)
            mean += sign * lam * m1 * R * tau_s
            amp = R * tau_s / (tau_s - tau_m)
            var += lam * m2 * amp ** 2 * (tau_s / 2 + tau_m / 2 - 2 * tau_s * tau_m / (tau_s + tau_m))
    return mean, math.sqrt(var)


def _drive_problem(graph: ModelGraph, pop) -> Problem | None:
    """A warning when a population cannot reach threshold from its inputs' mean drive."""
    try:
        inputs = list(_spike_inputs(graph, pop))
        current = _current_peak(graph, pop)
    except _Unknown:
        return None
    if not graph.upstream(pop.id, "input"):
        what = "receives no input"
    else:
        what = "gets too little input drive"
    hint = ("raise the projections' weights or the sources' rates, or add a current source"
            if inputs else "wire a Poisson source through a Projection into 'input', or raise I_e")
    k = FLUCTUATION_SIGMAS
    if pop.type_id in ("neuron.lif", "neuron.alif"):
        mean, sd = _lif_reach(pop, inputs, current)
        if mean + k * sd >= pop.V_th:
            return None
        detail = f"V stays near {mean:.1f} ± {sd:.1f} mV, below V_th = {pop.V_th:g} mV"
    elif pop.type_id == "neuron.cobalif":
        g = {1.0: [0.0, 0.0], -1.0: [0.0, 0.0]}
        for sign, lam, m1, m2, prj in inputs:
            tau = pop.tau_exc if sign > 0 else pop.tau_inh
            g[sign][0] += lam * m1 * tau
            g[sign][1] += lam * m2 * tau / 2
        g_exc = g[1.0][0] + k * math.sqrt(g[1.0][1])
        g_inh = max(0.0, g[-1.0][0] - k * math.sqrt(g[-1.0][1]))
        v_high = (pop.E_L + g_exc * pop.E_exc + g_inh * pop.E_inh + pop.R * (pop.I_e + current)) \
            / (1.0 + g_exc + g_inh)
        if v_high >= pop.V_th:
            return None
        detail = f"V stays below about {v_high:.1f} mV, under V_th = {pop.V_th:g} mV"
    elif pop.type_id == "neuron.izhikevich":
        # the r-dependent presets span r in [0, 1): the largest b has the lowest rheobase
        b = (max(pop.abcd(r)[1] for r in (0.0, 1.0)) if pop.is_heterogeneous() else pop.abcd()[1])
        if b >= 5:
            return None
        rheobase = (5 - b) ** 2 / 0.16 - 140  # input above which v has no resting point
        mean = pop.I_e + current + sum(sign * lam * m1 for sign, lam, m1, _, _ in inputs)
        sd = math.sqrt(sum(lam * m2 for _, lam, _, m2, _ in inputs) / (2 * IZHIKEVICH_TAU_MS))
        if mean + k * sd >= rheobase:
            return None
        detail = f"mean input {mean:.2f} ± {sd:.2f} stays below the rheobase {rheobase:.2f}"
    else:
        return None
    return Problem(f"{what}: {detail}, so it will hardly ever spike (estimate)", node=pop.label,
                   field="input", severity="warning", hint=hint)
