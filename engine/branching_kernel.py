"""Compiled inner loop of the branching-factor estimator (engine/readouts.py, MODELS.md §6.3).

A module of its own so that importing :mod:`engine.readouts` (the GUI does, at start) does not
import numba.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def partner_window_sums(indptr, partners, before, n_ev, lo, hi):  # pragma: no cover (compiled)
    """For every event e: Σ over the partners q in CSR row ``n_ev[e]`` of the spikes of q in
    ``[lo[e], hi[e])`` (``before[t, q]`` = spikes of q in ``[0, t)``)."""
    out = np.zeros(n_ev.size)
    for e in range(n_ev.size):
        total = 0.0
        for k in range(indptr[n_ev[e]], indptr[n_ev[e] + 1]):
            q = partners[k]
            total += before[hi[e], q] - before[lo[e], q]
        out[e] = total
    return out
