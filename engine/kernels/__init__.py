"""Pure numba kernels of the simulation engine (no state, no Python objects inside).

* :mod:`engine.kernels.propagators` - build-time exact propagators (numpy/scipy)
* :mod:`engine.kernels.neurons`     - threshold/reset and per-step update of every neuron model
* :mod:`engine.kernels.network`     - sources, ring-buffer spike propagation, monitors, step loop
* :mod:`engine.kernels.rng`         - seeded per-stream xoshiro256** generator

Stateful wrappers live in :mod:`engine.backends`.
"""

import hashlib as _hashlib
import os as _os


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
    this package) stamps every kernel with a hash of the whole package. If numba's internals differ,
    the default locators apply unchanged.
    """
    try:
        from numba.core.caching import CacheImpl, InTreeCacheLocator
    except ImportError:  # pragma: no cover - other numba layout
        return

    stamp = _kernel_sources_hash()

    class KernelPackageLocator(InTreeCacheLocator):
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
