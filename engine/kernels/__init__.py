"""Pure numba kernels of the simulation engine (no state, no Python objects inside).

* :mod:`engine.kernels.propagators` - build-time exact propagators (numpy/scipy)
* :mod:`engine.kernels.neurons`     - threshold/reset and per-step update of every neuron model
* :mod:`engine.kernels.network`     - sources, ring-buffer spike propagation, monitors, step loop
* :mod:`engine.kernels.rng`         - seeded per-stream xoshiro256** generator

Stateful wrappers live in :mod:`engine.backends`.
"""
