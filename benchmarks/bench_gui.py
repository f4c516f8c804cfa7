"""GUI overhead benchmark: a 64k-neuron CUBA network running with its raster drawn live.

    python benchmarks/bench_gui.py [--neurons 64000] [--duration 4000] [--repeats 3]

Measures, on the same plan:

* **event-loop latency** while the simulation runs in the designer: a QTimer probe fires every
  10 ms and records how late each tick is; reports max and p99 lateness (target < 50 ms);
* **run time** of the stepping in the designer (live raster, plots redrawn) vs the same run
  headless through ``engine.runner.Simulation`` (target: at most 15 % slower).

Runs offscreen (no display needed). Prints the figures and exits non-zero when a target is missed
(``--no-check`` only prints).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def headless(neurons: int, duration: float, seed: int) -> tuple[float, int]:
    from engine.networks import cuba_plan
    from engine.runner import Simulation

    sim = Simulation(cuba_plan(n=neurons, duration_ms=duration, seed=seed))
    t0 = time.perf_counter()
    res = sim.run(duration)
    return time.perf_counter() - t0, res.n_spikes


def in_designer(neurons: int, duration: float, seed: int, probe_ms: int = 10) -> dict:
    import app.devtools  # app/ owns every Qt import
    from engine.networks import cuba_plan

    return app.devtools.live_run_measurement(cuba_plan(n=neurons, duration_ms=duration, seed=seed), probe_ms)


def pct(values, q):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neurons", type=int, default=64_000)
    ap.add_argument("--duration", type=float, default=4000.0, help="model time per run (ms)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("SYNWEAVE_DATA_DIR", tempfile.mkdtemp(prefix="synweave-bench-"))

    print(f"CUBA {args.neurons:,} neurons, {args.duration:g} ms model time, {args.repeats} repeat(s), "
          f"{os.cpu_count()} CPU(s)")
    headless(min(args.neurons, 4000), 50.0, args.seed)  # JIT warm-up
    head, gui = [], []
    latencies = {"build": [], "run": []}
    for r in range(args.repeats):
        t, n = headless(args.neurons, args.duration, args.seed)
        head.append(t)
        res = in_designer(args.neurons, args.duration, args.seed)
        if res["error"]:
            print("run failed:", res["error"])
            return 1
        gui.append(res["run_s"])
        for k in latencies:
            latencies[k] += res["late"][k]
        print(f"  repeat {r + 1}: headless {t:.2f} s ({n:,} spikes) | designer {res['run_s']:.2f} s "
              f"({res['spikes']:,} spikes live, {res['chunks']} chunks, {res['redraws']} raster redraws, "
              f"{res['total_s']:.2f} s incl. build; GUI thread CPU {res['gui_cpu_s']:.2f} s, "
              f"of which raster drawing {res['redraw_s']:.2f} s)")
        assert res["spikes"] == n, "the live raster must receive every spike"
    h, g = statistics.median(head), statistics.median(gui)
    # Paired: each designer run against the headless run just before it (robust to a machine
    # whose load drifts between repeats); the median of those ratios is the figure we check.
    slower = (statistics.median(b / a for a, b in zip(head, gui)) - 1.0) * 100.0
    run_late = latencies["run"]
    build_late = latencies["build"]
    print(f"run time      headless {h:.2f} s   designer (live raster) {g:.2f} s (medians)   "
          f"=> {slower:+.1f} % paired median (target <= +15 %)")
    print(f"event loop    while running: max {max(run_late, default=0):.1f} ms, "
          f"p99 {pct(run_late, 99):.1f} ms late over {len(run_late)} probes (target < 50 ms)")
    print(f"              while building/JIT: max {max(build_late, default=0):.1f} ms, "
          f"p99 {pct(build_late, 99):.1f} ms late over {len(build_late)} probes")
    ok = slower <= 15.0 and max(run_late, default=0) < 50.0
    print("PASS" if ok else "MISS")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
