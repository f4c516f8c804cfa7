"""Vectorised connectivity generators producing CSR by presynaptic neuron (no Python loop over synapses).

Each generator works on blocks of presynaptic rows so that peak memory stays bounded (a block holds
at most ``block_synapses`` candidate synapses), which keeps 100 M-synapse networks feasible.
Returned ``indices`` are sorted within each row; the caller reorders by delay when delays vary
(:func:`sort_rows_by_delay`).
"""

from __future__ import annotations

import numpy as np

from engine.errors import ParameterError

BLOCK_SYNAPSES = 1 << 23  # ~8 M candidate synapses per block (64 MB of int64 keys)


def _assemble(counts_blocks, index_blocks, n_pre):
    counts = np.concatenate(counts_blocks) if counts_blocks else np.zeros(n_pre, np.int64)
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate(index_blocks).astype(np.int32, copy=False) if index_blocks else np.zeros(0, np.int32)
    return indptr, indices


def _unique_rows(rows_local, targets, n_post):
    """Sort (row, target) pairs and drop duplicates; return keys."""
    keys = rows_local.astype(np.int64) * n_post + targets
    return np.unique(keys)


def sample_without_replacement(counts, n_post, rng, exclude=None):
    """For each row ``r``, ``counts[r]`` distinct targets uniform in ``[0, n_post)``.

    Parameters
    ----------
    exclude : ndarray, optional
        Per row, one target that must not be drawn (autapse exclusion); -1 for none.

    Returns
    -------
    keys : ndarray of int64
        Sorted ``row * n_post + target``.
    """
    counts = np.asarray(counts, np.int64)
    limit = n_post - (0 if exclude is None else (exclude >= 0).astype(np.int64))
    if np.any(counts > limit):
        raise ParameterError("connectivity", "more connections per neuron requested than targets available")
    rows = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    keys = np.unique(rows * n_post + rng.integers(0, n_post, size=rows.size))
    if exclude is not None:
        keys = keys[(keys % n_post) != exclude[keys // n_post]]
    # redraw the deficit left by duplicates until every row has its count (converges in a few rounds)
    for _ in range(1000):
        have = np.bincount(keys // n_post, minlength=counts.size)
        deficit = counts - have
        if not deficit.any():
            return keys
        rows = np.repeat(np.arange(counts.size, dtype=np.int64), deficit)
        extra = rows * n_post + rng.integers(0, n_post, size=rows.size)
        keys = np.unique(np.concatenate([keys, extra]))
        if exclude is not None:
            keys = keys[(keys % n_post) != exclude[keys // n_post]]
    raise RuntimeError("sampling without replacement did not converge")


def fixed_probability(n_pre, n_post, p, rng, allow_autapses=True, same_population=False, pre_rows=None):
    """Every pair connected independently with probability ``p`` (Erdős–Rényi, Bernoulli per pair).

    Sampled by geometric skipping over the flattened pair index ``j·n_post + i``: the gap to the next
    connected pair is Geometric(p), so the cost is proportional to the number of synapses (not
    pairs), the result comes out sorted by (pre, post) with no duplicates, and memory stays at
    one block of synapses at a time.

    Parameters
    ----------
    pre_rows : ndarray of bool, optional
        Rows allowed to have synapses (others stay empty), e.g. the excitatory part of a population.

    Returns
    -------
    indptr : ndarray of int64, indices : ndarray of int32
    """
    if not 0.0 <= p <= 1.0:
        raise ParameterError("p", "connection probability must be in [0, 1]")
    exclude_self = same_population and not allow_autapses
    total = int(n_pre) * int(n_post)
    counts = np.zeros(n_pre, np.int64)
    # the targets are written into one preallocated array (no list of blocks + concatenation, which
    # held the indices twice); its capacity is the expected count + 10 sigma, its unused tail is
    # never written, so those pages are never committed, and it grows in the rare case of overflow
    rows_ok = n_pre if pre_rows is None else int(np.count_nonzero(pre_rows))
    expected = p * rows_ok * int(n_post)
    indices = np.empty(int(min(rows_ok * int(n_post), expected + 10.0 * np.sqrt(expected) + 1024)), np.int32)
    used = 0
    if p > 0.0 and total > 0:
        chunk = int(min(BLOCK_SYNAPSES, p * total * 1.05 + 1024))
        last = -1
        while last < total - 1:
            positions = last + np.cumsum(rng.geometric(p, size=chunk))
            done = positions[-1] >= total
            if done:
                positions = positions[positions < total]
            if positions.size:
                last = int(positions[-1])
            rows = positions // n_post
            cols = positions - rows * n_post
            keep = None
            if pre_rows is not None:
                keep = np.asarray(pre_rows, bool)[rows]
            if exclude_self:
                keep = (rows != cols) if keep is None else keep & (rows != cols)
            if keep is not None:
                rows, cols = rows[keep], cols[keep]
            counts += np.bincount(rows, minlength=n_pre)
            if used + cols.size > indices.size:
                grown = np.empty(max(2 * indices.size, used + cols.size), np.int32)
                grown[:used] = indices[:used]
                indices = grown
            indices[used:used + cols.size] = cols
            used += cols.size
            del positions, rows, cols, keep
            if done:
                break
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, indices[:used]


def fixed_counts(n_pre, n_post, counts, rng, exclude_self=False):
    """Row ``r`` gets ``counts[r]`` distinct uniform targets (fixed out-degree when constant)."""
    counts = np.asarray(counts, np.int64)
    counts_blocks, index_blocks = [], []
    start = 0
    while start < n_pre:
        # grow the block until it holds about BLOCK_SYNAPSES synapses
        cum = np.cumsum(counts[start:])
        stop = start + max(1, int(np.searchsorted(cum, BLOCK_SYNAPSES, side="right")))
        stop = min(stop, n_pre)
        c = counts[start:stop]
        exclude = np.arange(start, stop, dtype=np.int64) if exclude_self else None
        keys = sample_without_replacement(c, n_post, rng, exclude)
        counts_blocks.append(c)
        index_blocks.append((keys % n_post).astype(np.int32))
        start = stop
    return _assemble(counts_blocks, index_blocks, n_pre)


def sort_rows_by_delay(indptr, indices, delays, *others):
    """Reorder synapses so that each row is sorted by (delay, post); returns reordered arrays."""
    n_pre = indptr.size - 1
    rows = np.repeat(np.arange(n_pre, dtype=np.int64), np.diff(indptr))
    order = np.lexsort((indices, delays, rows))
    return (indices[order], delays[order]) + tuple(o[order] for o in others)
