"""Simulation backends and their registry.

A backend turns a :class:`engine.plan.SimulationPlan` into runnable state and advances it in chunks
(:class:`engine.backends.base.Backend`). Backends register under a short name so that the runner,
the CLI and a shared test-suite can pick them by name::

    backend_cls = get_backend("numba")
    sim_state = backend_cls(plan)

The NEST backend (``"nest"``, :mod:`engine.backends.nest_backend`) needs ``nest-simulator`` and the
torch backend (``"torch"``, CPU or CUDA) needs torch; both are registered lazily, so that they are
only imported when asked for.
"""

from __future__ import annotations

import importlib

from engine.errors import SimulationError

# name -> "module:attribute" (imported on first use, so that e.g. torch is only imported when asked for)
_REGISTRY: dict[str, str | type] = {
    "numba": "engine.backends.numba_backend:NumbaBackend",
    "nest": "engine.backends.nest_backend:NestBackend",  # needs nest-simulator (the `nest` extra)
    # CPU or CUDA (``device=``); no plasticity yet: see engine.backends.torch_backend
    "torch": "engine.backends.torch_backend:TorchBackend",
}


#: name -> the optional package a backend needs (checked without importing it)
_REQUIRES: dict[str, str] = {"nest": "nest"}


def missing_dependency(name: str) -> str | None:
    """The package backend ``name`` needs and this Python lacks (None: nothing missing). Cheap: the
    package is looked up, not imported (importing NEST takes a second and starts its kernel)."""
    import importlib.util

    package = _REQUIRES.get(name)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return package


def register_backend(name: str, target) -> None:
    """Register a backend class, or a lazy ``"module:Class"`` reference, under ``name``."""
    _REGISTRY[name] = target


def available_backends() -> list[str]:
    """Names of registered backends (importable or not)."""
    return sorted(_REGISTRY)


def get_backend(name: str):
    """The backend class registered as ``name``.

    Raises
    ------
    SimulationError
        Unknown name, or the backend's module cannot be imported (missing optional dependency).
    """
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise SimulationError(f"unknown backend {name!r}; available: {', '.join(available_backends())}") from None
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SimulationError(f"backend {name!r} cannot be loaded: {exc}") from exc
        target = getattr(module, attr)
        _REGISTRY[name] = target
    return target


def backend_supported_node_types(name: str) -> frozenset:
    """Node types backend ``name`` simulates: its class's ``supported_node_types`` (None: everything
    the compiler builds). Unknown or unloadable backends support nothing."""
    from engine.compiler import buildable_node_types

    if name not in _REGISTRY:
        return frozenset()
    try:
        cls = get_backend(name)
    except SimulationError:
        return frozenset()
    declared = getattr(cls, "supported_node_types", None)
    return buildable_node_types() if declared is None else frozenset(declared)


def backend_unsupported_reason(name: str, type_id: str) -> str | None:
    """Why backend ``name`` cannot run node type ``type_id``, when its class says
    (``unsupported_reasons``: type id -> reason), else None."""
    if name not in _REGISTRY:
        return None
    try:
        cls = get_backend(name)
    except SimulationError:
        return None
    return dict(getattr(cls, "unsupported_reasons", {})).get(type_id)
