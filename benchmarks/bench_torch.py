"""The torch backend (CPU, and CUDA where present) against the numba backend, side by side.

Part ``cuba``:

Network: :func:`engine.networks.cuba_plan` (Vogels & Abbott 2005 as in Brian2's example, 80 synapses
per neuron, dt = 0.1 ms, one-step delays, all spikes recorded). For each size the same plan runs on
numba, torch-CPU and, where ``torch.cuda.is_available()``, torch-CUDA; the table gives the run wall
time (after set-up / jit), the spike count (identical on numba and torch-CPU: the backends are
bit-identical on the CPU) and the ratio of each torch column to numba (> 1: slower than numba).

Part ``nalsm``: samples per second of the NALSM digits liquid (1000 LIF neurons, 250 steps of
1 ms per sample, ``resources/examples/nalsm_digits.swproj`` after a short phase-1 initialisation)
presenting the data set with plasticity off (an LSM's feature extraction) and, with ``--plastic``,
the recipe's phase 2 (per-sample weights reset to the phase-1 ones, astrocyte-gated STDP): numba
one sample after another, torch at batch 1, 32 and 256 (each copy its own state and weights).
Wall time of the phase's sample loop; the first run of each configuration is a warm-up.

Usage::

    python benchmarks/bench_torch.py                         # both parts: CUBA 4k-256k, NALSM
    python benchmarks/bench_torch.py --part cuba --sizes 4000 64000 --duration 1000 --threads 1 2
    python benchmarks/bench_torch.py --part nalsm --batches 1 32 256 --plastic
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


def nalsm_samples_per_s(backend: str, batch: int, samples: int, plastic: bool, **options) -> float:
    """Samples/s of the features phase (the better of two runs: the first compiles and warms up)."""
    from bench_nalsm import features_project

    from engine.training import Protocol

    best = 0.0
    for _ in range(2):
        project = features_project(samples, 250, plastic, 1, batch=batch, init_samples=5, baselines=False)
        protocol = Protocol(project, backend=backend, **options)
        protocol.run()
        best = max(best, protocol.reports[-1].samples_per_s)
    return best


def part_nalsm(args, cuda: bool) -> None:
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    modes = [("frozen", False)] + ([("plastic", True)] if args.plastic else [])
    print(f"\nNALSM digits liquid (1000 LIF, 250 steps/sample): samples/s, {args.samples} samples per batch size "
          "(at least the batch)")
    cols = [f"torch-cpu B={b}" for b in args.batches] + ([f"torch-cuda B={b}" for b in args.batches] if cuda else [])
    print("| mode | numba | " + " | ".join(cols) + " | " + " | ".join(f"{c} / numba" for c in cols) + " |")
    print("|---" * (2 + 2 * len(cols)) + "|")
    for label, plastic in modes:
        base = nalsm_samples_per_s("numba", 1, args.samples, plastic)
        rates = {}
        for b in args.batches:
            rates[f"torch-cpu B={b}"] = nalsm_samples_per_s("torch", b, max(args.samples, b), plastic, device="cpu")
            if cuda:
                rates[f"torch-cuda B={b}"] = nalsm_samples_per_s("torch", b, max(args.samples, 2 * b), plastic,
                                                                  device="cuda")
        print(f"| {label} | {base:.0f} | " + " | ".join(f"{rates[c]:.0f}" for c in cols) + " | "
              + " | ".join(f"{rates[c] / base:.2f}x" for c in cols) + " |", flush=True)


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("cuba", "nalsm", "all"), default="all")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000, 256000])
    ap.add_argument("--duration", type=float, default=100.0, help="model time per run (ms)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch CPU intra-op thread counts to try")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256], help="NALSM batch sizes")
    ap.add_argument("--samples", type=int, default=256, help="NALSM samples per configuration")
    ap.add_argument("--plastic", action="store_true", help="also the plastic phase 2 (astrocyte-gated STDP)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    if args.part in ("cuba", "all"):
        part_cuba(args, cuda)
    if args.part in ("nalsm", "all"):
        part_nalsm(args, cuda)
    return 0


def part_cuba(args, cuda: bool) -> None:
    import torch

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


if __name__ == "__main__":
    raise SystemExit(main())
