"""NALSM throughput: samples per second of the digits liquid (``resources/examples/nalsm_digits.swproj``),
and the time and peak memory of the whole example.

Part ``features`` presents samples of ``--steps`` ms (dt = 1 ms, the recipe's 250 steps by
default) to the example's 1000-neuron liquid after a short phase-1 initialisation, in four ways:

* ``plastic``: the recipe's phase 2 (per-sample reset to the phase-1 weights, astrocyte-gated
  STDP decaying x0.99 per ms), one worker;
* ``frozen 1`` / ``frozen 2``: the same samples with plasticity off (an LSM's feature extraction),
  one worker and two worker threads (blocks of consecutive samples at once);

each reported as samples/s (wall time of the phase's sample loop, compile excluded: the first
repeat warms the kernels). Part ``example`` runs the example as shipped (``main.py run``'s
:class:`engine.training.Protocol`) and prints the wall time of each phase, the readout's test
accuracy, the branching factor and the process's peak resident memory.

Usage::

    python benchmarks/bench_nalsm.py                       # both parts
    python benchmarks/bench_nalsm.py --part features --samples 400 --steps 250
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import examples  # noqa: E402
from engine.training import Protocol  # noqa: E402


def features_project(samples: int, steps: int, plastic: bool, workers: int, batch: int = 1, init_samples: int = 50,
                     baselines: bool = True):
    """The example with ``samples`` digits, a phase 1 of ``init_samples`` and a Features phase of
    ``steps`` ms per sample (plastic or frozen, ``workers`` threads on numba, ``batch`` copies on torch)."""
    project = examples.nalsm_digits()
    for node in project.graph.nodes.values():
        if node.type_id == "input.dataset":
            node.set("n_samples", samples)
        elif node.label == "Liquid initialisation":
            node.set("samples", init_samples)
        elif node.label == "Features":
            node.set("presentation", float(steps))
            node.set("plasticity", plastic)
            node.set("workers", workers)
            node.set("batch", batch)
            node.set("overrides", "Astrocyte.decay = 0.99" if plastic else "")
            node.set("checkpoint_every", 0)
        elif node.type_id == "readout.softmax":
            node.set("epochs", 1)
        elif node.type_id == "modulator.nalsm_astrocyte":
            node.set("compare_baselines", baselines)
    return project


def part_features(args) -> None:
    print(f"NALSM feature extraction: 1000-neuron liquid, {args.steps} steps per sample, {args.samples} samples")
    print(f"{'mode':<12}{'samples/s':>12}{'µs/step':>10}")
    for label, plastic, workers in (("plastic", True, 1), ("frozen 1", False, 1), ("frozen 2", False, 2)):
        best = 0.0
        for _ in range(args.repeat + 1):  # the first one compiles
            protocol = Protocol(features_project(args.samples, args.steps, plastic, workers))
            protocol.run()
            best = max(best, protocol.reports[-1].samples_per_s)
        print(f"{label:<12}{best:>12.0f}{1e6 / (best * args.steps):>10.1f}")


def part_example(args) -> None:
    from engine.project import Project

    path = Path(__file__).resolve().parents[1] / "resources/examples/nalsm_digits.swproj"
    t0 = time.perf_counter()
    protocol = Protocol(Project.load(path))
    results = protocol.run()
    wall = time.perf_counter() - t0
    print(f"nalsm_digits.swproj as shipped: wall {wall:.1f} s (compile and readout training included)")
    for r in protocol.reports:
        print(f"  phase {r.name!r}: {r.samples} samples, {r.wall_s:.1f} s, {r.samples_per_s:.0f} samples/s")
    for node, r in results.readouts.items():
        print(f"  readout {node}: test accuracy {100 * r['accuracy']:.1f} % on {r['n_test']} samples")
    for node, b in results.branching.items():
        print(f"  branching factor {node}: {b['branching_factor']:.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"  peak resident memory {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("features", "example", "all"), default="all")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.part in ("features", "all"):
        part_features(args)
    if args.part in ("example", "all"):
        part_example(args)


if __name__ == "__main__":
    main()
