"""Graph validation: every problem at once, each with its node, port or field, and a fix hint."""

from __future__ import annotations

from engine.errors import ParameterError, Problem, ValidationError
from engine.graph import ModelGraph


def validate(graph: ModelGraph, settings=None) -> list[Problem]:
    """All problems of a graph (errors and warnings), in a stable order.

    Parameters
    ----------
    graph : ModelGraph
    settings : SimulationSettings, optional
        When given, checks that depend on the time step (Poisson fidelity, delay rounding,
        Izhikevich's 1-ms scheme) are included.
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
    if settings is not None:
        problems.extend(_check_with_settings(graph, settings))
    return problems


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
    from engine.backends import available_backends, backend_supported_node_types
    from engine.compiler import buildable_node_types, unsupported_node_types

    if backend not in available_backends():
        return [Problem(f"simulation backend {backend!r} is not available in this version (planned)",
                        field="backend", hint=f"choose one of: {', '.join(available_backends())}")]
    # a node the compiler builds into the plan but the backend does not run makes the backend refuse
    # the plan (an error); one the compiler does not build is simply left out of the run (a warning)
    refused = buildable_node_types() - backend_supported_node_types(backend)
    out = []
    for node in unsupported_node_types(graph, backend):
        if node.type_id in refused:
            others = [b for b in available_backends() if node.type_id in backend_supported_node_types(b)]
            out.append(Problem(f"{node.title} is not simulated by the {backend} backend yet: the run would be refused",
                               node=node.label, field="backend",
                               hint=f"use the {' or '.join(others)} backend, or remove the node" if others
                               else "remove the node"))
        else:
            out.append(Problem(f"{node.title} is not simulated by the {backend} backend yet: it has no effect on a run",
                               node=node.label, severity="warning",
                               hint="remove it, or keep it for export and later versions"))
    return out


def _check_with_settings(graph: ModelGraph, settings) -> list[Problem]:
    dt = settings.dt
    out: list[Problem] = _check_backend(graph, settings.backend)
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
            if node.scheme == "euler" and dt > 0.1:
                out.append(Problem(f"forward Euler at dt = {dt:g} ms is inaccurate for Izhikevich "
                                   "neurons", node=node.label, field="scheme", severity="warning",
                                   hint="use dt <= 0.1 ms"))
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
