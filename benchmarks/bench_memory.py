"""Peak memory of a 1M-neuron / 100M-synapse network: plan build, backend build, run.

Usage::

    python benchmarks/bench_memory.py                    # CUBA plan (engine.networks.cuba_plan)
    python benchmarks/bench_memory.py --path compiler    # graph compiler: fixed probability,
                                                         # normal weights, uniform delays

Reports after each phase the process peak RSS (``resource.getrusage().ru_maxrss``, no tracemalloc)
and the current RSS, and the peak in bytes per synapse. Run each configuration in its own process:
the peak is process-wide.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GiB = 1024 ** 3


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def current_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def report(phase: str, t0: float, nsyn: int | None = None) -> None:
    peak, cur = peak_bytes(), current_bytes()
    per = f"  peak {peak / nsyn:5.1f} B/syn" if nsyn else ""
    print(f"{phase:<16} {time.perf_counter() - t0:6.1f} s  peak RSS {peak / GiB:5.2f} GiB  "
          f"current {cur / GiB:5.2f} GiB{per}", flush=True)


def compiler_graph(n: int, k: float):
    from engine.graph import ModelGraph

    g = ModelGraph()
    pop = g.add_node("neuron.lif", "Pop", n=n, I_e=150.0)
    prj = g.add_node("synapse.projection", "Rec", connectivity="fixed_probability", p=k / n,
                     weight_init="normal", weight=1.0, weight_std=0.2,
                     delay_init="uniform", delay_low=1.0, delay_high=5.0)
    g.connect(pop.id, "spikes", prj.id, "pre")
    g.connect(prj.id, "post", pop.id, "input")
    return g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=float, default=100.0, help="synapses per neuron")
    ap.add_argument("--path", choices=("cuba", "compiler"), default="cuba")
    ap.add_argument("--ms", type=float, default=2.0, help="model time to run")
    args = ap.parse_args()

    from engine.runner import Simulation

    t0 = time.perf_counter()
    report("start", t0)
    if args.path == "cuba":
        from engine.networks import cuba_plan

        plan = cuba_plan(n=args.n, synapses_per_neuron=args.k, monitor="none", duration_ms=args.ms)
    else:
        from engine.compiler import compile_graph

        plan = compile_graph(compiler_graph(args.n, args.k), dict(dt=0.1, duration=args.ms, seed=1))
    nsyn = sum(p.n_synapses for p in plan.projections)
    print(f"{args.path}: {args.n} neurons, {nsyn} synapses, plan connectivity "
          f"{sum(p.nbytes() for p in plan.projections) / nsyn:.2f} B/syn (incl. indptr)")
    report("plan build", t0, nsyn)
    sim = Simulation(plan)
    print(f"backend shared CSR {sim.backend.connectivity_nbytes() / nsyn:.2f} B/syn (incl. indptr)")
    report("backend build", t0, nsyn)
    sim.run(args.ms)
    report("run", t0, nsyn)
    peak = peak_bytes()
    print(f"PEAK {peak / GiB:.2f} GiB = {peak / nsyn:.1f} B/syn; 3 GiB budget {'met' if peak <= 3 * GiB else 'NOT met'}")


if __name__ == "__main__":
    main()
