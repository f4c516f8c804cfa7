"""Size and memory estimates of a project before it is compiled (``python main.py info``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.errors import SimulationError
from nodes.base import Category

#: bytes of one static synapse in the compiled plan: int32 target + float32 weight + uint16 delay
BYTES_PER_STATIC_SYNAPSE = 10
#: extra bytes of a plastic synapse: int32 post-major index + float32 per-synapse rule state
BYTES_PER_PLASTIC_EXTRA = 8
#: mean firing rate assumed for spike-monitor memory when nothing better is known
ASSUMED_RATE_HZ = 10.0
#: measured peak / estimate while compiling (benchmarks/RESULTS.md: 100M synapses, 1.48 GiB peak
#: for a 1.0 GiB estimate): the preflight refuses when estimate x this exceeds available memory
PEAK_FACTOR = 1.5


@dataclass
class ProjectInfo:
    populations: int = 0
    neurons: int = 0
    input_channels: int = 0
    projections: int = 0
    synapses: float = 0.0
    plastic_synapses: float = 0.0
    monitors: int = 0
    steps: int = 0
    memory_bytes: dict[str, float] = field(default_factory=dict)

    @property
    def total_bytes(self) -> float:
        return sum(self.memory_bytes.values())

    def lines(self) -> list[str]:
        out = [
            f"populations      {self.populations}",
            f"neurons          {self.neurons:,}",
            f"input channels   {self.input_channels:,}",
            f"projections      {self.projections}",
            f"synapses         {self.synapses:,.0f} (expected)" + (
                f", {self.plastic_synapses:,.0f} plastic" if self.plastic_synapses else ""),
            f"monitors         {self.monitors}",
            f"time steps       {self.steps:,}",
            "memory estimate  " + human_bytes(self.total_bytes),
        ]
        out += [f"  {k:<15} {human_bytes(v)}" for k, v in self.memory_bytes.items() if v]
        return out


def human_bytes(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {units[-1]}"


#: how to shrink each part of the estimate
SHRINK_HINTS = {
    "neuron state": "make populations smaller or delays shorter",
    "synapses": "make populations smaller or connections sparser",
    "plasticity": "make plastic projections smaller or sparser",
    "spike records": "record fewer neurons or a shorter run",
    "other records": "record fewer state variables, less often, or a shorter run",
    "encoded inputs": "give the data-set encoder fewer pixels or a lower max_rate",
}


def available_memory_bytes() -> int | None:
    """Memory the system can give this process now (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(project, available: int | None = None) -> ProjectInfo:
    """Refuse, before anything is allocated, a project whose estimate exceeds available memory.

    Raises
    ------
    SimulationError
        With the estimate, its largest part and the memory available.
    """
    info = summarize(project)
    available = available_memory_bytes() if available is None else available
    need = info.total_bytes
    if available is not None and need * PEAK_FACTOR > available:
        part, size = max(info.memory_bytes.items(), key=lambda kv: kv[1])
        raise SimulationError(
            f"not enough memory: the network needs about {human_bytes(need)} ({part} "
            f"{human_bytes(size)}; {info.neurons:,} neurons, {info.synapses:,.0f} synapses expected), "
            f"this machine has {human_bytes(available)} available; {SHRINK_HINTS.get(part, '')} "
            "(`python main.py info` lists the estimate)")
    return info


def summarize(project) -> ProjectInfo:
    graph, settings = project.graph, project.settings
    info = ProjectInfo(steps=int(round(settings.duration / settings.dt)))
    word = 4 if settings.dtype == "float32" else 8
    max_delay_steps = 1
    for node in graph.nodes.values():
        if node.category == Category.NEURON:
            info.populations += 1
            info.neurons += node.size()
        elif node.category == Category.INPUT and node.size() is not None:
            info.input_channels += node.size()
        elif node.category == Category.MONITOR:
            info.monitors += 1
        elif node.type_id == "synapse.projection":
            info.projections += 1
            delay = node.delay_high if node.delay_init == "uniform" else node.delay + 3 * (
                node.delay_std if node.delay_init in ("normal", "lognormal") else 0.0)
            max_delay_steps = max(max_delay_steps, int(round(delay / settings.dt)) + 1)
            plastic = bool(graph.upstream(node.id, "rule"))
            for pre, _ in graph.upstream(node.id, "pre"):
                for post, _ in graph.downstream(node.id, "post"):
                    count = node.expected_synapses(pre.size() or 0, post.size() or 0, pre is post)
                    info.synapses += count
                    if plastic:
                        info.plastic_synapses += count
    state = 0.0
    for node in graph.of_category(Category.NEURON):
        # state variables + refractory counter + two receptor channels of the delay ring buffer
        state += node.size() * (len(node.state_variables) * word + 4 + 2 * max_delay_steps * word)
    info.memory_bytes = {
        "neuron state": state,
        "synapses": info.synapses * BYTES_PER_STATIC_SYNAPSE,
        "plasticity": info.plastic_synapses * BYTES_PER_PLASTIC_EXTRA,
        "spike records": _spike_record_bytes(graph, settings),
        "other records": _other_record_bytes(graph, settings, info.steps, word),
        "encoded inputs": _encoded_input_bytes(graph, settings, info.steps),
    }
    return info


#: mean pixel value of scikit-learn's digits scaled to [0, 1] (used for rate-coded spike counts)
DIGITS_MEAN_PIXEL = 0.30
#: bytes per encoded input spike: int64 step + int32 index, twice while sorting
BYTES_PER_ENCODED_SPIKE = 24


def _encoded_input_bytes(graph, settings, steps: int) -> float:
    """A data-set encoder turns samples into spikes chunk by chunk as the run reaches them
    (:class:`engine.encoders.Encoding`): the spikes of the largest chunk plus one block of random
    draws, whatever the number of samples."""
    from engine.encoders import Encoding
    from engine.runner import MAX_CHUNK_STEPS
    from nodes.inputs import SKLEARN_DIGITS_SAMPLES

    total = 0.0
    for node in graph.nodes.values():
        if node.type_id != "input.dataset":
            continue
        samples = node.n_samples
        if not samples and node.dataset == "sklearn_digits":
            share = {"all": 1.0, "test": node.test_fraction, "train": 1.0 - node.test_fraction}[node.split]
            samples = round(SKLEARN_DIGITS_SAMPLES * share)
        pixels = node.size()
        present_steps = max(1, round(node.presentation / settings.dt))
        period = present_steps + round(node.rest / settings.dt)
        window = min(steps, MAX_CHUNK_STEPS, samples * period)  # steps of the largest chunk
        if node.encoding == "rate":
            spikes = window * present_steps / period * pixels * DIGITS_MEAN_PIXEL \
                * min(1.0, node.max_rate * settings.dt * 1e-3)
            draws = min(Encoding.BLOCK_DRAWS, present_steps * pixels) * 9.0  # float64 draws + bool hits
        else:
            spikes, draws = min(samples, window // period + 2) * pixels, 0.0
        total += spikes * BYTES_PER_ENCODED_SPIKE + draws
    return total


def _other_record_bytes(graph, settings, steps: int, word: int) -> float:
    """Rate monitors keep a count per step; state monitors a value per index per sample."""
    total = 0.0
    for mon in graph.nodes.values():
        if mon.type_id == "monitor.rate":
            total += steps * 8.0 * len(graph.upstream(mon.id, "source"))
        elif mon.type_id == "monitor.state":
            samples = steps / mon.every
            total += samples * (len(mon.indices) * word + 8) * len(graph.upstream(mon.id, "population"))
    return total


def _spike_record_bytes(graph, settings) -> float:
    seconds = settings.duration * 1e-3
    total = 0.0
    for mon in graph.nodes.values():
        if mon.type_id != "monitor.spikes":
            continue
        for src, _ in graph.upstream(mon.id, "source"):
            n = src.size() or 0
            if mon.subset in ("first", "random"):
                n = min(n, mon.count)
            elif mon.subset == "indices":
                n = len(mon.indices)
            total += n * ASSUMED_RATE_HZ * seconds * 8  # int32 step + int32 index
    return total
