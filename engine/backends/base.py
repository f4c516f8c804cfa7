"""Backend interface shared by every simulation backend (numba, torch)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


def cuda_missing_reason() -> str | None:
    """Why a CUDA device cannot be used here ("no GPU found", "this torch is built without CUDA"),
    or None when one can (or torch is missing: the backend check names that)."""
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return None
    return "no GPU found" if torch.version.cuda else "this torch is built without CUDA"


@dataclass
class ChunkResult:
    """What one call of :meth:`Backend.run_steps` produced.

    Attributes
    ----------
    start_step, stop_step : int
        The chunk covers steps ``start_step .. stop_step - 1``.
    dt : float
        ms.
    spikes : dict
        Spike monitor name -> ``(steps int32, indices int32)`` of the chunk, in step order.
    states : dict
        State monitor name -> ``{variable: (steps int64, values [n_samples, n_indices])}``.
    rates : dict
        Rate monitor name -> spike count per step (int32, length ``stop_step - start_step``).
    weights : dict
        Weight monitor name -> ``(steps int64, values [n_snapshots, n_synapses])``; a snapshot at step
        ``k`` holds the weights at ``t_k`` (before step ``k`` is simulated).
    """

    start_step: int
    stop_step: int
    dt: float
    spikes: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)
    rates: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return self.stop_step - self.start_step

    @property
    def n_spikes(self) -> int:
        return sum(int(s.size) for s, _ in self.spikes.values())

    @classmethod
    def concatenate(cls, chunks: list) -> "ChunkResult":
        """Consecutive chunks of one run as one chunk."""
        if len(chunks) == 1:
            return chunks[0]
        out = cls(chunks[0].start_step, chunks[-1].stop_step, chunks[0].dt)

        def cat(pairs):
            return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

        for name in chunks[0].spikes:
            out.spikes[name] = cat([c.spikes[name] for c in chunks])
        for name in chunks[0].rates:
            out.rates[name] = np.concatenate([c.rates[name] for c in chunks])
        for name in chunks[0].states:
            out.states[name] = {var: cat([c.states[name][var] for c in chunks]) for var in chunks[0].states[name]}
        for name in dict.fromkeys(n for c in chunks for n in c.weights):
            out.weights[name] = cat([c.weights[name] for c in chunks if name in c.weights])
        return out


class Backend(ABC):
    """A plan turned into runnable state.

    Parameters
    ----------
    plan : SimulationPlan
    dtype : {"float32", "float64"}, optional
        Overrides ``plan.dtype``.
    """

    name = "abstract"
    #: node types this backend simulates; None = every type the compiler builds
    supported_node_types: frozenset | None = None
    #: the backend implements the engine's own step order (MODELS.md §0.2), float32 / float64 states
    #: and state files, so the shared golden-value suite (tests/engine) applies to it; a peer
    #: simulator wrapped as a backend (NEST) has its own integrators and tests of its own
    engine_semantics: bool = True

    def __init__(self, plan, dtype: str | None = None):
        self.plan = plan
        self.dtype = np.dtype(dtype or plan.dtype)

    @property
    @abstractmethod
    def step(self) -> int:
        """Index of the next step to simulate (0 after construction)."""

    @abstractmethod
    def warmup(self) -> None:
        """Compile whatever needs compiling (the runner's "jit" phase); no simulation progress."""

    @abstractmethod
    def run_steps(self, n: int) -> ChunkResult:
        """Advance ``n`` steps and return the monitored data of those steps.

        Raises
        ------
        engine.errors.NumericalInstabilityError
            A state variable became NaN or infinite (names population, variable and step).
        """

    @abstractmethod
    def get_state(self, population: str, variable: str) -> np.ndarray:
        """Copy of one state variable of a population at the current step."""

    @abstractmethod
    def set_state(self, population: str, variable: str, values) -> None:
        """Overwrite one state variable of a population (scalar or per-neuron array)."""

    def projection_weights(self, name: str) -> np.ndarray:
        """Current weights of projection ``name`` in its CSR order (may be a live view)."""
        raise NotImplementedError(f"the {self.name} backend cannot read weights")

    #: whether :mod:`engine.training` can present samples one by one on this backend
    #: (:meth:`reset_sample_state`, :meth:`set_learning_rate_scale`, :meth:`set_projection_weights`)
    supports_training_phases = False

    def reset_sample_state(self, initial: dict) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot reset the network between samples")

    def set_learning_rate_scale(self, scale: float, amplitudes: bool = True) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot schedule learning rates")

    def set_projection_weights(self, name: str, weights) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot set weights")

    @abstractmethod
    def state_arrays(self) -> dict:
        """Every dynamic array (copies) needed to continue the run identically."""

    @abstractmethod
    def load_state_arrays(self, arrays: dict) -> None:
        """Inverse of :meth:`state_arrays`."""

    def save_state(self, path) -> None:
        """Write the dynamic state to ``path`` (``.npz``, no pickle)."""
        np.savez(path, **self.state_arrays())

    def restore_state(self, path) -> None:
        """Load a state written by :meth:`save_state` for the same plan."""
        with np.load(path, allow_pickle=False) as data:
            self.load_state_arrays({k: data[k] for k in data.files})
