"""Pure numba kernels of the simulation engine (no state, no Python objects inside).

* :mod:`engine.kernels.propagators` - build-time exact propagators (numpy/scipy)
* :mod:`engine.kernels.neurons`     - threshold/reset and per-step update of every neuron model
* :mod:`engine.kernels.network`     - sources, ring-buffer spike propagation, monitors, step loop
* :mod:`engine.kernels.rng`         - seeded per-stream xoshiro256** generator

Stateful wrappers live in :mod:`engine.backends`.
"""

import hashlib as _hashlib
import os as _os
import threading as _threading
import types as _types


def _leaf_options() -> dict:
    """numba options of the *leaf* kernels (those that neither allocate nor return arrays).

    They are compiled without numba's reference-counting runtime (NRT) where numba supports that:
    otherwise every array argument is atomically increfed on entry and decrefed on exit (~10 ns
    each), about 0.3 us per simulated step for the ~100 array arguments of the per-step kernels, a
    quarter of the step time of a 4000-neuron network. A leaf kernel that allocated would fail to
    compile (not run wrongly), so keep allocation in :func:`engine.kernels.network.run_chunk`.
    """
    opts = dict(cache=True, nogil=True)
    try:
        from numba.core.cpu import CPUTargetOptions
        from numba.core.options import TargetOptions

        if isinstance(getattr(CPUTargetOptions, "_nrt", None), TargetOptions.Mapping):
            opts["_nrt"] = False
    except ImportError:  # pragma: no cover - other numba layout: keep the runtime
        pass
    return opts


LEAF_OPTS = _leaf_options()

_VARIANTS: dict = {}
_VARIANTS_LOCK = _threading.Lock()  # the GUI's background warm-up makes variants too


def specialise(template, name: str, constants: dict, options: dict):
    """A numba dispatcher of ``template`` with some of its globals frozen to ``constants``.

    The fused kernels are written once, with their optional code paths behind ``if FLAG:`` tests
    of module-level flags. A variant is the same code object run with a copy of the module's
    globals in which the flags (and any specialised callees) are replaced: numba reads globals as
    compile-time constants and prunes the branches of a False flag before type inference, so the
    kernels behind them are neither typed nor compiled. Each variant has its own qualified name,
    hence its own entries in numba's on-disk cache; ``name`` must therefore determine
    ``constants`` completely. Variants are made once per process.

    Parameters
    ----------
    template : function
        Plain Python function (not jitted) whose globals include every key of ``constants``.
    name : str
        Qualified name of the variant (a valid identifier; it names the cache files).
    constants : dict
        Global name -> value (bools, or dispatchers of callees) fixed for this variant.
    options : dict
        ``numba.njit`` options.
    """
    key = (template.__module__, name)
    with _VARIANTS_LOCK:
        dispatcher = _VARIANTS.get(key)
        if dispatcher is None:
            from numba import njit

            missing = set(constants) - set(template.__globals__)
            if missing:
                raise KeyError(f"{template.__name__} has no globals {sorted(missing)}")
            namespace = dict(template.__globals__)
            namespace.update(constants)
            fn = _types.FunctionType(template.__code__, namespace, name, template.__defaults__,
                                     template.__closure__)
            fn.__qualname__ = name
            fn.__doc__ = template.__doc__
            fn.__module__ = template.__module__
            dispatcher = _VARIANTS[key] = njit(**options)(fn)
    return dispatcher

_KERNEL_DIR = _os.path.dirname(_os.path.abspath(__file__))


def _kernel_sources_hash() -> bytes:
    digest = _hashlib.sha256()
    for name in sorted(_os.listdir(_KERNEL_DIR)):
        if name.endswith(".py"):
            with open(_os.path.join(_KERNEL_DIR, name), "rb") as fh:
                digest.update(name.encode() + b"\0" + fh.read())
    return digest.digest()


def _install_cache_locator() -> None:
    """Make numba's on-disk cache of these kernels depend on *all* kernel sources.

    numba keys a cached function on its own file only, so the fused ``run_chunk`` would keep a stale
    copy of a neuron kernel edited in another file. This locator (tried first, only for files of
    this package) stamps every kernel with a hash of the whole package. The cache lives in
    ``engine/kernels/__pycache__``, or under ``$NUMBA_CACHE_DIR`` when that is set. If numba's
    internals differ, the default locators apply unchanged.
    """
    try:
        from numba.core import config
        from numba.core.caching import CacheImpl, InTreeCacheLocator, UserProvidedCacheLocator
    except ImportError:  # pragma: no cover - other numba layout
        return

    stamp = _kernel_sources_hash()
    # $NUMBA_CACHE_DIR (numba's own switch) moves the cache there, as for any other numba code
    base = UserProvidedCacheLocator if config.CACHE_DIR else InTreeCacheLocator

    class KernelPackageLocator(base):
        def get_source_stamp(self):
            return stamp

        @classmethod
        def from_function(cls, py_func, py_file):
            if _os.path.dirname(_os.path.abspath(py_file)) != _KERNEL_DIR:
                return None
            self = cls(py_func, py_file)
            try:
                self.ensure_cache_path()
            except OSError:
                return None
            return self

    if not any(getattr(c, "__name__", "") == "KernelPackageLocator" for c in CacheImpl._locator_classes):
        CacheImpl._locator_classes.insert(0, KernelPackageLocator)


_install_cache_locator()


#: set to 1 to run every plan on the general step-loop kernel (all code paths) instead of the
#: variant compiled for its feature set: one compile serves every network (the test suite, which
#: builds dozens of small networks, uses it; tests/engine/test_kernel_variants.py checks that each
#: variant gives bit-identical results to the general kernel)
GENERAL_KERNEL_ENV = "SYNWEAVE_GENERAL_KERNEL"
