"""Torch rule kernels (engine/backends/torch_rules.py) alone: time per step at batch 1, 32 and 256.

Network: the NALSM digits example's plan (``resources/examples/nalsm_digits.swproj``: 1000-neuron
liquid, 64 inputs, eight projections with astrocyte-gated pair STDP, about 27k synapses), built
with the numba backend's tables. Each step feeds random spikes (every neuron and input spiking with
probability ``--rate`` per step, independently per sample) into :meth:`BatchedRules.step`; the
table gives the wall time per step and per sample-step, on the CPU and, where present, on CUDA.
The numba line is :func:`engine.kernels.plasticity.plasticity_step` on such spikes (batch 1), called
once per step from Python (through the torch backend's host wrapper), so it includes the call's
dispatch cost; the same call on a step without spikes is printed as its floor.

Usage::

    python benchmarks/bench_torch_rules.py                      # 200 steps, batches 1 32 256
    python benchmarks/bench_torch_rules.py --steps 500 --batches 1 256 --rate 0.02
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import examples  # noqa: E402
from engine.backends.numba_backend import NumbaBackend  # noqa: E402
from engine.backends.torch_rules import BatchedRules  # noqa: E402
from engine.compiler import compile_graph  # noqa: E402


def packed_nalsm() -> NumbaBackend:
    plan = compile_graph(examples.nalsm_digits(), {"duration": 10.0})
    return NumbaBackend(plan, dtype="float32", parallel=False, uniform=False, lazy_inputs=False)


def raster(packed, batch: int, steps: int, rate: float, seed: int = 0) -> list[dict]:
    """Per step: entity -> flat spike indices ``b * size + i`` (ascending)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        spikes = {}
        for e, size in enumerate(int(s) for s in packed.entity_sizes):
            flat = np.flatnonzero(rng.random(batch * size) < rate)
            if flat.size:
                spikes[e] = flat
        out.append(spikes)
    return out


def time_torch(packed, batch: int, steps: int, rate: float, device: str) -> float:
    dev = torch.device(device)
    rules = BatchedRules(packed, batch, dev, torch.float32)
    weight = torch.from_numpy(np.asarray(packed.net[6])).to(dev).repeat(batch, 1)
    spikes = [{e: torch.from_numpy(v).to(dev) for e, v in s.items()} for s in raster(packed, batch, steps, rate)]
    for k in range(5):  # warm-up (allocator, kernels)
        rules.step(k, spikes[k], weight)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for k, s in enumerate(spikes):
        rules.step(k + 5, s, weight)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def time_numba(packed, steps: int, rate: float) -> float:
    from engine.backends.torch_backend import _host_plasticity

    spikes = raster(packed, 1, steps, rate)
    net, plast, rules = tuple(packed.net), tuple(packed.plast), tuple(packed.rules)
    lif, coba = packed.lif, packed.coba

    def run(k, s):
        packed.ent_cnt[:] = 0
        for e, flat in s.items():
            off = int(packed.ent_off[e])
            packed.spk[off:off + flat.size] = flat
            packed.ent_cnt[e] = flat.size
        _host_plasticity(k, packed.ent_off, packed.ent_cnt, packed.spk, net, plast, rules, lif[0], lif[3], coba[0],
                         coba[3])

    run(0, spikes[0])  # compile
    t0 = time.perf_counter()
    for k, s in enumerate(spikes):
        run(k + 1, s)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--rate", type=float, default=0.02, help="spike probability per neuron and step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    packed = packed_nalsm()
    n_syn = int(packed.net[6].size)
    print(f"NALSM plan: {n_syn} synapses, {len(packed.plastic_projections)} plastic projections; "
          f"spike probability {args.rate} per step; {args.steps} steps")
    try:
        numba_s = time_numba(packed, args.steps, args.rate)
        floor = time_numba(packed, args.steps, 0.0)
        print(f"numba plasticity_step (batch 1): {numba_s * 1e6:.0f} µs/step "
              f"({floor * 1e6:.0f} µs/step without spikes: the call itself)")
    except ImportError:  # the torch backend's host wrapper is gone
        numba_s = float("nan")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{'device':<8}{'batch':>6}{'µs/step':>12}{'µs/sample-step':>16}{'x numba':>10}")
    for device in devices:
        for batch in args.batches:
            s = time_torch(packed, batch, args.steps, args.rate, device)
            print(f"{device:<8}{batch:>6}{s * 1e6:>12.0f}{s * 1e6 / batch:>16.1f}{numba_s * batch / s:>10.2f}")


if __name__ == "__main__":
    main()
