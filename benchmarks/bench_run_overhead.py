"""End-to-end cost of a run with cached kernels: from starting Python to the last spike.

Builds the CUBA network (:func:`engine.networks.cuba_plan`) at the requested size, constructs a
:class:`engine.runner.Simulation` and runs it, each in a fresh interpreter (numba's on-disk kernel
cache warm: the first run on a machine compiles the kernels, ~15 s per dtype, and is excluded). The
overhead is everything except the time spent inside the simulation kernel.

Usage::

    python benchmarks/bench_run_overhead.py --n 64000 --duration 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, sys, time
t_start = time.perf_counter()
sys.path.insert(0, {root!r})
from engine.networks import cuba_plan
from engine.runner import Simulation
t_import = time.perf_counter()
plan = cuba_plan({n}, seed=1, dtype={dtype!r})
t_plan = time.perf_counter()
sim = Simulation(plan)
t_sim = time.perf_counter()
res = sim.run({duration})
t_run = time.perf_counter()
steps, idx = res.spikes["spikes"]
print(json.dumps(dict(imports=t_import - t_start, plan=t_plan - t_import, simulation=t_sim - t_plan,
                      jit=sim.jit_time_s, backend=sim.setup_time_s, run_call=t_run - t_sim,
                      kernel=res.wall_time_s, spikes=int(steps.size), last_spike_step=int(steps[-1]) if steps.size else -1)))
"""


def measure(n: int, duration: float, dtype: str) -> dict:
    code = _CHILD.format(root=ROOT, n=n, dtype=dtype, duration=duration)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - t0
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process"] = total
    row["interpreter"] = total - row["imports"] - row["plan"] - row["simulation"] - row["run_call"]
    row["overhead"] = total - row["kernel"]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64000)
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    measure(min(args.n, 1000), 1.0, args.dtype)  # make sure the kernels are compiled and cached
    rows = [measure(args.n, args.duration, args.dtype) for _ in range(args.repeat)]
    best = min(rows, key=lambda r: r["process"])
    print(f"CUBA N={args.n}, {args.duration:g} ms, {args.dtype}: fastest of {len(rows)} fresh processes")
    for key, label in (("interpreter", "interpreter start/exit"), ("imports", "import engine.networks, engine.runner"),
                       ("plan", "cuba_plan (connectivity)"), ("backend", "Simulation: import numba, state + CSR"),
                       ("jit", "Simulation: load cached kernels, warm-up"), ("run_call", "run() call"),
                       ("kernel", "  of which inside the kernel")):
        print(f"  {label:<42} {best[key]:7.3f} s")
    print(f"  {'total (process start to exit)':<42} {best['process']:7.3f} s")
    print(f"  {'overhead beyond the simulation kernel':<42} {best['overhead']:7.3f} s")
    print("  all runs (total / overhead): " + ", ".join(f"{r['process']:.2f}/{r['overhead']:.2f}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
