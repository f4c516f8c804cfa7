"""Shared fixtures of the engine tests: every backend-level test runs on each registered backend."""

import pytest

from engine.backends import available_backends, get_backend
from engine.errors import SimulationError


def _loadable():
    names = []
    for name in available_backends():
        try:
            cls = get_backend(name)
        except SimulationError:  # optional dependency missing: skip rather than fail
            continue
        if cls.engine_semantics:  # NEST runs its own integrators: tests/engine/test_nest_backend.py
            names.append(name)
    return names


@pytest.fixture(params=_loadable())
def backend(request):
    """Name of a registered, importable backend."""
    return request.param
