"""CUBA on the torch backend (CPU, and CUDA where present) against the numba backend, side by side.

Network: :func:`engine.networks.cuba_plan` (Vogels & Abbott 2005 as in Brian2's example, 80 synapses
per neuron, dt = 0.1 ms, one-step delays, all spikes recorded). For each size the same plan runs on
numba, torch-CPU and, where ``torch.cuda.is_available()``, torch-CUDA; the table gives the run wall
time (after set-up / jit), the spike count (identical on numba and torch-CPU: the backends are
bit-identical on the CPU) and the ratio of each torch column to numba (> 1: slower than numba).

Usage::

    python benchmarks/bench_torch.py                         # 4k, 16k, 64k; 100 ms of model time
    python benchmarks/bench_torch.py --sizes 4000 64000 --duration 1000 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def run_one(n: int, duration: float, backend: str, dtype: str, **options) -> dict:
    from engine.networks import cuba_plan
    from engine.runner import Simulation

    plan = cuba_plan(n, seed=1, dt=0.1, duration_ms=duration, dtype=dtype)
    t0 = time.perf_counter()
    sim = Simulation(plan, backend=backend, **options)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = sim.run(duration)
    run_s = time.perf_counter() - t1
    return dict(run_s=run_s, setup_s=setup, spikes=int(res.spikes["spikes"][0].size),
                us_per_step=run_s / plan.steps_for(duration) * 1e6)


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000])
    ap.add_argument("--duration", type=float, default=100.0, help="model time per run (ms)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch CPU intra-op thread counts to try")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, CUDA: {torch.cuda.get_device_name(0) if cuda else 'not available'}; "
          f"{os.cpu_count()} CPUs; {args.duration:g} ms model time, {args.dtype}")
    cols = ["numba"] + [f"torch-cpu/{t}t" for t in args.threads] + (["torch-cuda"] if cuda else [])
    print("| N | " + " | ".join(f"{c} run s (µs/step)" for c in cols) + " | spikes numba / torch-cpu | "
          + " | ".join(f"{c} / numba" for c in cols[1:]) + " |")
    print("|---" * (2 + 2 * len(cols) - 1) + "|")
    for n in args.sizes:
        rows = {"numba": run_one(n, args.duration, "numba", args.dtype)}
        for t in args.threads:
            rows[f"torch-cpu/{t}t"] = run_one(n, args.duration, "torch", args.dtype, device="cpu", threads=t)
        if cuda:
            rows["torch-cuda"] = run_one(n, args.duration, "torch", args.dtype, device="cuda")
        base = rows["numba"]["run_s"]
        cells = [f"{rows[c]['run_s']:.2f} ({rows[c]['us_per_step']:.0f})" for c in cols]
        spikes = f"{rows['numba']['spikes']} / {rows[cols[1]]['spikes']}"
        ratios = [f"{rows[c]['run_s'] / base:.1f}x" for c in cols[1:]]
        print(f"| {n} | " + " | ".join(cells) + f" | {spikes} | " + " | ".join(ratios) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
