"""CUBA benchmark (Vogels & Abbott 2005 / Brette et al. 2007): Synweave's numba backend vs peers.

Network as in Brian2's ``examples/CUBA.py`` (see :func:`engine.networks.cuba_plan`): 80/20 E/I,
80 synapses per neuron (p = 0.02 at N = 4000, p = 80/N above), zero synaptic delay (one step
here), dt = 0.1 ms, all spikes recorded. NEST runs it with ``iaf_psc_exp`` on 1 and 2 threads
(``nest_1t``, ``nest_2t``; see :func:`worker_nest`).

Each (simulator, N) runs in its own subprocess so that peak memory is measured per configuration
(``ru_maxrss``, whole process: Python + numpy + numba + network). Peers that are not importable are
reported as "not installed".

Usage::

    python benchmarks/bench_cuba.py --sizes 4000 64000 --duration 1000
    python benchmarks/bench_cuba.py --sizes 4000 --peer-python /path/to/peer-venv/bin/python --repeat 3

The peers live in their own virtual environment (Brian2 2.9 needs numpy < 2.4)::

    python -m venv /tmp/b2env && /tmp/b2env/bin/pip install brian2 "numpy<2.4" cython nest-simulator
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PEERS = ("brian2_runtime", "brian2_cpp_standalone", "nest_1t", "nest_2t")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ----------------------------------------------------------------------------------------------
# workers (one configuration per process)
# ----------------------------------------------------------------------------------------------


def worker_synweave(n: int, duration: float, dt: float, seed: int, dtype: str) -> dict:
    import numpy as np

    from engine.networks import cuba_plan
    from engine.runner import Simulation

    t0 = time.perf_counter()
    plan = cuba_plan(n, seed=seed, dt=dt, duration_ms=duration, dtype=dtype)
    build_s = time.perf_counter() - t0
    sim = Simulation(plan)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = sim.run(duration)
    wall = time.perf_counter() - t1
    steps, idx = res.spikes["spikes"]
    out_degree = sum(np.diff(p.indptr) for p in plan.projections)
    events = int(out_degree[idx].sum())
    conn_bytes = sum(p.nbytes() for p in plan.projections)
    return dict(simulator="synweave-numba", n=n, synapses=plan.n_synapses, spikes=int(steps.size),
                rate_hz=res.mean_rate("spikes"), build_s=build_s, setup_s=setup_s, jit_s=sim.jit_time_s, run_s=wall,
                events=events, bytes_per_synapse=conn_bytes / max(plan.n_synapses, 1), peak_rss_mb=_peak_rss_mb(),
                threads=_numba_threads())


def _numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def _brian2_cuba(n: int, duration: float, dt: float, seed: int):
    """Brian2's CUBA example, scaled like ours (p = 80/N)."""
    import brian2 as b2

    b2.seed(seed)
    b2.defaultclock.dt = dt * b2.ms
    taum, taue, taui = 20 * b2.ms, 5 * b2.ms, 10 * b2.ms
    Vt, Vr, El = -50 * b2.mV, -60 * b2.mV, -49 * b2.mV
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    P = b2.NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * b2.ms, method="exact")
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * b2.mV
    P.gi = 0 * b2.mV
    we = (60 * 0.27 / 10) * b2.mV
    wi = (-20 * 4.5 / 10) * b2.mV
    p = min(1.0, 80.0 / n)
    n_exc = int(0.8 * n)
    Ce = b2.Synapses(P, P, on_pre="ge += we")
    Ci = b2.Synapses(P, P, on_pre="gi += wi")
    Ce.connect(f"i<{n_exc}", p=p)
    Ci.connect(f"i>={n_exc}", p=p)
    s_mon = b2.SpikeMonitor(P)
    net = b2.Network(P, Ce, Ci, s_mon)
    return b2, net, s_mon, (Ce, Ci), dict(taum=taum, taue=taue, taui=taui, Vt=Vt, Vr=Vr, El=El, we=we, wi=wi)


def worker_brian2_runtime(n, duration, dt, seed, dtype) -> dict:
    import brian2 as b2

    b2.prefs.codegen.target = "cython" if _has_cython() else "numpy"
    t0 = time.perf_counter()
    b2_, net, s_mon, syn, ns = _brian2_cuba(n, duration, dt, seed)
    nsyn = sum(len(s) for s in syn)
    net.run(0 * b2.ms, namespace=ns)  # code generation and Cython compilation happen here, not in the timed run
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    net.run(duration * b2.ms, namespace=ns)
    wall = time.perf_counter() - t1
    return dict(simulator=f"brian2-runtime({b2.prefs.codegen.target})", n=n, synapses=nsyn, spikes=int(s_mon.num_spikes),
                rate_hz=s_mon.num_spikes / n / (duration / 1000.0), setup_s=setup_s, run_s=wall, peak_rss_mb=_peak_rss_mb())


def _has_cython() -> bool:
    try:
        import Cython  # noqa: F401

        return True
    except ImportError:
        return False


def worker_brian2_cpp_standalone(n, duration, dt, seed, dtype) -> dict:
    import brian2 as b2

    with tempfile.TemporaryDirectory() as tmp:
        b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
        t0 = time.perf_counter()
        b2_, net, s_mon, syn, ns = _brian2_cuba(n, duration, dt, seed)
        net.run(duration * b2.ms, namespace=ns)
        b2.device.build(directory=tmp, compile=True, run=True)
        total = time.perf_counter() - t0
        run_s = float(b2.device._last_run_time)
        nsyn = sum(len(s) for s in syn)  # available once the standalone binary has run
        spikes = int(s_mon.num_spikes)
    return dict(simulator="brian2-cpp_standalone", n=n, synapses=nsyn, spikes=spikes,
                rate_hz=spikes / n / (duration / 1000.0), setup_s=total - run_s, run_s=run_s,
                peak_rss_mb=_peak_rss_mb(), note="setup_s includes C++ code generation and compilation")


#: NEST's pairwise_bernoulli visits all N^2 pairs (64k neurons: 95 s of connection set-up on one
#: thread); above this size ``--nest-rule auto`` uses fixed_indegree (same mean in-degree).
NEST_BERNOULLI_MAX_N = 64000


def worker_nest(n, duration, dt, seed, dtype, threads: int = 1, rule: str = "auto") -> dict:
    """The same network in NEST (``iaf_psc_exp``, exact integration, float64).

    Synweave / Brian2 express the synaptic currents in mV (``R = 1``); with ``C_m = 200 pF`` NEST's
    membrane resistance is ``tau_m / C_m = 0.1 GΩ``, so PSC jumps of 16.2 pA / -90 pA give the same
    1.62 mV / -9 mV as ``g_e += 1.62 mV`` / ``g_i += -9 mV``. Delay 0.1 ms = one step (NEST's
    minimum; Synweave's ``d = 1``). Build time = creating neurons, connections and the recorder;
    NEST finishes its connection infrastructure inside the first ``Simulate`` call, so ``run_s`` is
    timed on ``Run(duration)`` after one ``Run(dt)`` step that does that preparation (``first_step_s``
    reports it; the rate counts the spikes of both).

    ``rule``: ``pairwise_bernoulli`` (p = 80/N, autapses allowed: the statistics of cuba_plan and
    Brian2), ``fixed_indegree`` (K_E = 0.8·80, K_I = 0.2·80 per neuron) or ``auto`` (Bernoulli up to
    :data:`NEST_BERNOULLI_MAX_N` neurons).
    """
    import nest

    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": dt, "rng_seed": seed + 1, "local_num_threads": int(threads)})
    C_m, tau_m = 200.0, 20.0  # R = tau_m / C_m = 0.1 GOhm
    params = dict(C_m=C_m, tau_m=tau_m, E_L=-49.0, V_th=-50.0, V_reset=-60.0, t_ref=5.0,
                  tau_syn_ex=5.0, tau_syn_in=10.0, I_e=0.0)
    w_e, w_i = 16.2, -90.0  # pA: 1.62 mV and -9 mV at R = 0.1 GOhm
    t0 = time.perf_counter()
    pop = nest.Create("iaf_psc_exp", n, params=params)
    pop.V_m = nest.random.uniform(-60.0, -50.0)
    n_exc = int(round(0.8 * n))
    p = min(1.0, 80.0 / n)
    if rule == "auto":
        rule = "pairwise_bernoulli" if n <= NEST_BERNOULLI_MAX_N else "fixed_indegree"
    if rule == "pairwise_bernoulli":
        conn_e = conn_i = {"rule": "pairwise_bernoulli", "p": p, "allow_autapses": True}
    else:
        conn_e = {"rule": "fixed_indegree", "indegree": int(round(p * n_exc)), "allow_autapses": True}
        conn_i = {"rule": "fixed_indegree", "indegree": int(round(p * (n - n_exc))), "allow_autapses": True}
    nest.Connect(pop[:n_exc], pop, conn_e, {"weight": w_e, "delay": dt})
    nest.Connect(pop[n_exc:], pop, conn_i, {"weight": w_i, "delay": dt})
    n_syn = int(nest.GetKernelStatus("num_connections"))  # before the recorder adds N more
    rec = nest.Create("spike_recorder")
    nest.Connect(pop, rec)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    nest.Prepare()
    nest.Run(dt)  # one step: NEST builds its presynaptic connection tables here (set-up, not simulation)
    first_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    nest.Run(duration)
    wall = time.perf_counter() - t2
    nest.Cleanup()
    spikes = int(rec.n_events)
    return dict(simulator=f"nest-{threads}t", n=n, synapses=n_syn,
                spikes=spikes, rate_hz=spikes / n / ((duration + dt) / 1000.0), build_s=build_s,
                setup_s=build_s + first_s, first_step_s=first_s, run_s=wall, peak_rss_mb=_peak_rss_mb(),
                threads=int(threads), rule=rule)


def worker_nest_1t(n, duration, dt, seed, dtype, nest_rule="auto") -> dict:
    return worker_nest(n, duration, dt, seed, dtype, threads=1, rule=nest_rule)


def worker_nest_2t(n, duration, dt, seed, dtype, nest_rule="auto") -> dict:
    return worker_nest(n, duration, dt, seed, dtype, threads=2, rule=nest_rule)


WORKERS = {"synweave": worker_synweave, "brian2_runtime": worker_brian2_runtime,
           "brian2_cpp_standalone": worker_brian2_cpp_standalone, "nest_1t": worker_nest_1t,
           "nest_2t": worker_nest_2t}
PEER_MODULE = {"brian2_runtime": "brian2", "brian2_cpp_standalone": "brian2", "nest_1t": "nest", "nest_2t": "nest"}


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def _importable(module: str, python: str) -> bool:
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def run_worker(kind, n, args) -> dict:
    """Run one configuration ``args.repeat`` times (fresh process each); keep the fastest run."""
    python = sys.executable if kind == "synweave" else (args.peer_python or sys.executable)
    cmd = [python, os.path.abspath(__file__), "--worker", kind, "--sizes", str(n), "--duration",
           str(args.duration), "--dt", str(args.dt), "--seed", str(args.seed), "--dtype", args.dtype]
    if kind.startswith("nest"):
        cmd += ["--nest-rule", args.nest_rule]
    best = None
    runs = []
    for _ in range(max(1, args.repeat)):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        if proc.returncode != 0:
            return dict(simulator=kind, n=n, error=(proc.stderr.strip().splitlines() or ["failed"])[-1])
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append(row["run_s"])
        if best is None or row["run_s"] < best["run_s"]:
            best = row
    best["run_s_all"] = runs
    return best


def fmt_row(r: dict, duration: float) -> str:
    if "error" in r:
        return f"  {r['simulator']:<26} N={r['n']:<8} error: {r['error']}"
    sim_s = duration / 1000.0
    rt = r["run_s"] / sim_s
    parts = [f"  {r['simulator']:<26} N={r['n']:<8}", f"setup {r['setup_s']:7.2f} s", f"run {r['run_s']:8.3f} s",
             f"wall/simulated {rt:7.3f}", f"rate {r['rate_hz']:6.2f} Hz", f"peak RSS {r['peak_rss_mb']:8.1f} MB"]
    if "rule" in r:
        parts.insert(2, f"build {r['build_s']:7.2f} s")
        parts.append(r["rule"])
    if len(r.get("run_s_all", [])) > 1:
        parts.append("runs " + "/".join(f"{x:.3f}" for x in r["run_s_all"]))
    if "events" in r:
        parts.insert(3, f"{r['events'] / r['run_s'] / 1e6:8.2f} M syn-events/s")
        parts.append(f"{r['bytes_per_synapse']:.2f} B/synapse (+indptr)")
        parts.append(f"jit {r['jit_s']:.2f} s")
    return " | ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000, 256000])
    ap.add_argument("--duration", type=float, default=1000.0, help="simulated ms (default 1000)")
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--peers", nargs="*", default=list(PEERS), help="peers to compare (default all)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per configuration")
    ap.add_argument("--json", help="also write all rows to this JSON file")
    ap.add_argument("--peer-python", help="interpreter for the peers (e.g. a venv with brian2 and an older numpy)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per configuration, each in a fresh process; the fastest is reported (default 1)")
    ap.add_argument("--nest-rule", default="auto", choices=["auto", "pairwise_bernoulli", "fixed_indegree"],
                    help=f"NEST connection rule (auto: Bernoulli up to {NEST_BERNOULLI_MAX_N} neurons, then fixed indegree)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        extra = dict(nest_rule=args.nest_rule) if args.worker.startswith("nest") else {}
        row = WORKERS[args.worker](args.sizes[0], args.duration, args.dt, args.seed, args.dtype, **extra)
        print(json.dumps(row))
        return 0

    available = {peer: _importable(PEER_MODULE[peer], args.peer_python or sys.executable) for peer in args.peers}
    print(f"CUBA benchmark: {args.duration:g} ms at dt = {args.dt} ms, {args.dtype}, 80 synapses/neuron, "
          f"{os.cpu_count()} CPU(s)")
    for peer, ok in available.items():
        if not ok:
            print(f"  {peer}: not installed" + (f" (in {args.peer_python})" if args.peer_python else ""))
    rows = []
    for n in args.sizes:
        ours = run_worker("synweave", n, args)
        rows.append(ours)
        print(fmt_row(ours, args.duration), flush=True)
        for peer, ok in available.items():
            if not ok:
                continue
            r = run_worker(peer, n, args)
            rows.append(r)
            line = fmt_row(r, args.duration)
            if "error" not in r and "error" not in ours:
                line += f" | {r['run_s'] / ours['run_s']:.2f}x synweave run time"
            print(line, flush=True)
    print()
    print(summary_table(rows, args))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


def summary_table(rows: list, args) -> str:
    """Markdown table: run time per simulator, the peer / Synweave ratio and mean rates."""
    order = ["synweave-numba", "brian2-cpp_standalone", "brian2-runtime(cython)", "brian2-runtime(numpy)",
             "nest-1t", "nest-2t"]
    present = [name for name in order if any(r.get("simulator") == name for r in rows)]
    head = ["N", "synapses"] + [f"{name} run" for name in present] + ["mean rates (Hz)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in args.sizes:
        here = {r["simulator"]: r for r in rows if r.get("n") == n and "error" not in r}
        ours = here.get("synweave-numba")
        if not ours:
            continue
        cells = [f"{n:,}".replace(",", " "), f"{ours['synapses'] / 1e6:.2f} M"]
        rates = []
        for name in present:
            r = here.get(name)
            if r is None:
                cells.append("-")
                continue
            cell = f"{r['run_s']:.3f} s"
            if name != "synweave-numba":
                cell += f" ({r['run_s'] / ours['run_s']:.1f}x)"
            cells.append(cell)
            rates.append(f"{r['rate_hz']:.2f}")
        cells.append(" / ".join(rates))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(x) = peer run time / Synweave run time; rates in column order.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
