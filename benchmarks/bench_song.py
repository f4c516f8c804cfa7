"""Plasticity benchmark: the Song et al. (2000) STDP network against Brian2 and NEST, and the per-step
cost of a plastic projection against the same projection static.

Part ``song`` (MODELS.md §4.1, ``resources/examples/song_stdp.swproj``): 1000 Poisson inputs at
15 Hz, all-to-all onto one conductance-based LIF (tau_m 10 ms, E_L -74 mV, V_th -54 mV, V_reset
-60 mV, E_e 0 mV, tau_e 5 ms, no refractory period), every synapse plastic with additive,
all-to-all pair STDP (tau+ = tau- = 20 ms, A+ = 0.01 g_max, A- = 1.05 A+, weights in [0, g_max],
g_max = 0.01, initial w ~ U[0, g_max]), dt = 0.1 ms, 100 s of model time. Simulators:

* ``synweave`` / ``synweave_f64``: the example project compiled by :func:`engine.compiler.compile_graph`
  (float32 as the example says, and float64 like the peers), its monitors replaced by one spike
  monitor on the output neuron; final weights from :meth:`engine.runner.Simulation.final_weights`.
* ``brian2_cpp_standalone`` (and, opt-in because each simulated second costs seconds of Python
  scheduling, ``brian2_runtime``): Brian2's ``examples/synapses/STDP.py`` equations (forward Euler,
  event-driven traces), with ``v`` starting at E_L like the others (the example starts at 0 mV).
* ``nest_1t`` (and, opt-in, ``nest_2t``): ``iaf_cond_exp`` + ``stdp_synapse`` (``lambda = A+/W_max = 0.01``,
  ``alpha = 1.05``, ``mu_plus = mu_minus = 0``), see :func:`worker_nest_song`.

Each run prints its simulation time (set-up, code generation and compilation excluded), the ratio
peer / Synweave, the mean output rate (whole run and last 10 s) and the histogram of the final
``w/g_max`` in 10 bins, so that the rows can be checked to simulate the same thing (MODELS.md
STDP-2: first bin >= 200, last >= 150, bins 3-8 <= 100, mean w/g_max in [0.44, 0.50]).

Part ``overhead``: the CUBA network of ``bench_cuba.py`` (:func:`engine.networks.cuba_plan`) at
each ``--sizes``, run three ways in separate processes: ``static``; ``pinned`` (pair STDP on the
excitatory recurrent projection with ``w_min = w_max = 1.62 mV``: every trace, event and clip is
computed, but the weights cannot move, so the spike trains equal the static run's and the
difference is the plasticity machinery alone); ``learning`` (additive pair STDP in [0, 3.24] mV,
A+ = 0.01 w_max, A- = 1.05 A+, tau 20 ms: weights move, so spike counts may differ a little).
Reported in µs per step and as a ratio to the static run.

Usage::

    python benchmarks/bench_song.py --peer-python /tmp/b2env/bin/python --repeat 3
    python benchmarks/bench_song.py --part overhead --sizes 4000 64000 --repeat 3
    python benchmarks/bench_song.py --part song --duration 10000 --peers brian2_cpp_standalone

The peers live in their own virtual environment (Brian2 2.9 needs numpy < 2.4)::

    python -m venv /tmp/b2env && /tmp/b2env/bin/pip install brian2 "numpy<2.4" cython nest-simulator
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.bench_cuba import _has_cython, _importable, _peak_rss_mb  # noqa: E402

SONG_PROJECT = os.path.join(ROOT, "resources", "examples", "song_stdp.swproj")
#: MODELS.md §4.1 parameters shared by every simulator of part ``song``
SONG = dict(n_inputs=1000, rate_hz=15.0, tau_m=10.0, E_L=-74.0, V_th=-54.0, V_reset=-60.0, E_e=0.0, tau_e=5.0,
            tau_stdp=20.0, g_max=0.01, a_plus_frac=0.01, a_minus_ratio=1.05)
HIST_BINS = 10
LAST_WINDOW_MS = 10000.0  # STDP-2 measures the output rate over the last 10 s

SONG_PEERS = ("brian2_cpp_standalone", "nest_1t")
#: opt-in: Brian2 runtime spends seconds of Python scheduling per simulated second; NEST on two
#: threads spins at its per-step barriers and, on a shared 2-core machine, ran 20x slower than on one
OPTIONAL_PEERS = ("brian2_runtime", "nest_2t")
PEER_MODULE = {"brian2_runtime": "brian2", "brian2_cpp_standalone": "brian2", "nest_1t": "nest", "nest_2t": "nest"}
VARIANTS = ("static", "pinned", "learning")


# ----------------------------------------------------------------------------------------------
# what every Song worker reports
# ----------------------------------------------------------------------------------------------


def song_summary(out_spike_times_ms, weights_over_gmax, duration_ms: float) -> dict:
    """Output rates (whole run, last 10 s) and the final weight histogram, comparable across simulators."""
    import numpy as np

    t = np.asarray(out_spike_times_ms, np.float64)
    u = np.asarray(weights_over_gmax, np.float64)
    window = min(LAST_WINDOW_MS, duration_ms)
    hist, _ = np.histogram(np.clip(u, 0.0, 1.0), bins=HIST_BINS, range=(0.0, 1.0))
    return dict(out_spikes=int(t.size), rate_hz=t.size / (duration_ms / 1000.0),
                rate_last_hz=int(np.count_nonzero(t >= duration_ms - window)) / (window / 1000.0),
                hist=[int(h) for h in hist], mean_w=float(u.mean()), n_syn=int(u.size),
                at_zero=float(np.mean(u <= 1e-6)), at_max=float(np.mean(u >= 1.0 - 1e-6)))


# ----------------------------------------------------------------------------------------------
# part "song": workers (one configuration per process)
# ----------------------------------------------------------------------------------------------


def song_plan(duration: float, dt: float, seed: int, dtype: str):
    """The example project compiled to a plan, recording only the output neuron's spikes."""
    from engine.compiler import compile_graph
    from engine.plan import MonitorPlan
    from engine.project import Project

    project = Project.load(SONG_PROJECT)
    plan = compile_graph(project, dict(duration=duration, dt=dt, seed=seed, dtype=dtype))
    (out,) = plan.populations
    plan.monitors = [MonitorPlan("out", out.name, "spikes")]
    return plan


def worker_synweave(duration, dt, seed, dtype) -> dict:
    """Synweave in float32, the example project's dtype (``dtype`` is the CUBA part's option)."""
    return _synweave_song(duration, dt, seed, "float32")


def worker_synweave_f64(duration, dt, seed, dtype) -> dict:
    return _synweave_song(duration, dt, seed, "float64")


def _synweave_song(duration, dt, seed, dtype) -> dict:
    from engine.runner import Simulation

    t0 = time.perf_counter()
    plan = song_plan(duration, dt, seed, dtype)
    sim = Simulation(plan)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = sim.run(duration)
    wall = time.perf_counter() - t1
    steps, _ = res.spikes["out"]
    (w,) = sim.final_weights().values()
    (rule,) = plan.projections[0].rules
    row = dict(simulator=f"synweave-numba({dtype})", setup_s=setup_s, jit_s=sim.jit_time_s, run_s=wall,
               peak_rss_mb=_peak_rss_mb())
    row.update(song_summary(steps * dt, w / rule.get("w_max"), duration))
    return row


def _brian2_song(duration: float, dt: float, seed: int):
    """Brian2's ``examples/synapses/STDP.py`` (Song, Miller & Abbott 2000), ``v(0) = E_L``."""
    import brian2 as b2

    b2.seed(seed)
    b2.defaultclock.dt = dt * b2.ms
    s = SONG
    gmax = s["g_max"]
    dApre = s["a_plus_frac"] * gmax
    ns = dict(taum=s["tau_m"] * b2.ms, taupre=s["tau_stdp"] * b2.ms, taupost=s["tau_stdp"] * b2.ms,
              Ee=s["E_e"] * b2.mV, vt=s["V_th"] * b2.mV, vr=s["V_reset"] * b2.mV, El=s["E_L"] * b2.mV,
              taue=s["tau_e"] * b2.ms, gmax=gmax, dApre=dApre, dApost=-dApre * s["a_minus_ratio"])
    eqs_neurons = """
    dv/dt = (ge * (Ee-v) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
    """
    inputs = b2.PoissonGroup(s["n_inputs"], rates=s["rate_hz"] * b2.Hz)
    neurons = b2.NeuronGroup(1, eqs_neurons, threshold="v>vt", reset="v = vr", method="euler", namespace=ns)
    neurons.v = s["E_L"] * b2.mV
    S = b2.Synapses(inputs, neurons,
                    """w : 1
                       dApre/dt = -Apre / taupre : 1 (event-driven)
                       dApost/dt = -Apost / taupost : 1 (event-driven)""",
                    on_pre="""ge += w
                              Apre += dApre
                              w = clip(w + Apost, 0, gmax)""",
                    on_post="""Apost += dApost
                               w = clip(w + Apre, 0, gmax)""",
                    namespace=ns)
    S.connect()
    S.w = "rand() * gmax"
    out_mon = b2.SpikeMonitor(neurons)
    return b2.Network(inputs, neurons, S, out_mon), S, out_mon


def worker_brian2_cpp_standalone(duration, dt, seed, dtype) -> dict:
    import brian2 as b2

    with tempfile.TemporaryDirectory() as tmp:
        b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
        t0 = time.perf_counter()
        net, S, out_mon = _brian2_song(duration, dt, seed)
        net.run(duration * b2.ms)
        b2.device.build(directory=tmp, compile=True, run=True)
        total = time.perf_counter() - t0
        run_s = float(b2.device._last_run_time)
        row = dict(simulator="brian2-cpp_standalone", setup_s=total - run_s, run_s=run_s, peak_rss_mb=_peak_rss_mb(),
                   note="setup_s includes C++ code generation and compilation")
        row.update(song_summary(out_mon.t[:] / b2.ms, S.w[:] / SONG["g_max"], duration))
    return row


def worker_brian2_runtime(duration, dt, seed, dtype) -> dict:
    import brian2 as b2

    b2.prefs.codegen.target = "cython" if _has_cython() else "numpy"
    t0 = time.perf_counter()
    net, S, out_mon = _brian2_song(duration, dt, seed)
    net.run(0 * b2.ms)  # code generation and Cython compilation happen here, not in the timed run
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    net.run(duration * b2.ms)
    wall = time.perf_counter() - t1
    row = dict(simulator=f"brian2-runtime({b2.prefs.codegen.target})", setup_s=setup_s, run_s=wall,
               peak_rss_mb=_peak_rss_mb())
    row.update(song_summary(out_mon.t[:] / b2.ms, S.w[:] / SONG["g_max"], duration))
    return row


#: NEST's leak conductance (nS) for the Song neuron: Brian2's dimensionless conductances are in units
#: of g_L, so a weight w becomes w * G_LEAK_NS nS and W_max = g_max * G_LEAK_NS = 1 nS.
G_LEAK_NS = 100.0


def worker_nest_song(duration, dt, seed, dtype, threads: int = 1) -> dict:
    """The Song network in NEST 3: ``iaf_cond_exp`` + ``stdp_synapse``.

    ``C_m = g_L tau_m`` (100 nS, 1000 pF: tau_m 10 ms), ``t_ref = 0``, ``V_m(0) = E_L``. The inputs are
    a ``poisson_generator`` feeding 1000 ``parrot_neuron`` (NEST's way to give plastic synapses
    independent Poisson sources; the parrots add one 0.1 ms step of latency to every input, which
    changes no statistics). ``stdp_synapse`` in NEST's normalised form with ``W_max = g_max g_L = 1 nS``:
    potentiation ``w += lambda W_max K+`` = A+ K+, depression ``w -= alpha lambda W_max K-`` = A- K-
    (``mu_plus = mu_minus = 0``: additive), ``tau_plus = tau_minus = 20 ms``, delay 0.1 ms. NEST
    integrates ``iaf_cond_exp`` with an adaptive GSL solver. Timed on ``Run(duration)`` after
    ``Prepare()`` and one ``Run(dt)`` step (NEST finishes its connection tables there).
    """
    import nest

    s = SONG
    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": dt, "rng_seed": seed + 1, "local_num_threads": int(threads)})
    w_max = s["g_max"] * G_LEAK_NS
    t0 = time.perf_counter()
    neuron = nest.Create("iaf_cond_exp", 1, params=dict(
        C_m=G_LEAK_NS * s["tau_m"], g_L=G_LEAK_NS, E_L=s["E_L"], V_th=s["V_th"], V_reset=s["V_reset"], t_ref=0.0,
        E_ex=s["E_e"], tau_syn_ex=s["tau_e"], tau_minus=s["tau_stdp"], V_m=s["E_L"]))
    generator = nest.Create("poisson_generator", params={"rate": s["rate_hz"]})
    parrots = nest.Create("parrot_neuron", s["n_inputs"])
    nest.Connect(generator, parrots, "all_to_all", {"delay": dt})
    nest.Connect(parrots, neuron, "all_to_all",
                 {"synapse_model": "stdp_synapse", "weight": nest.random.uniform(0.0, w_max), "delay": dt,
                  "tau_plus": s["tau_stdp"], "lambda": s["a_plus_frac"], "alpha": s["a_minus_ratio"],
                  "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": w_max})
    rec = nest.Create("spike_recorder")
    nest.Connect(neuron, rec)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    nest.Prepare()
    nest.Run(dt)
    first_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    nest.Run(duration)
    wall = time.perf_counter() - t2
    nest.Cleanup()
    import numpy as np

    # NEST ran dt + duration: shift so that the "last 10 s" window ends where the run ended
    times = np.asarray(rec.get("events")["times"], np.float64) - dt
    weights = np.asarray(nest.GetConnections(parrots, neuron).get("weight"), np.float64)
    row = dict(simulator=f"nest-{threads}t", build_s=build_s, setup_s=build_s + first_s, first_step_s=first_s,
               run_s=wall, peak_rss_mb=_peak_rss_mb(), threads=int(threads))
    row.update(song_summary(times, weights / w_max, duration))
    return row


def worker_nest_1t(duration, dt, seed, dtype) -> dict:
    return worker_nest_song(duration, dt, seed, dtype, threads=1)


def worker_nest_2t(duration, dt, seed, dtype) -> dict:
    return worker_nest_song(duration, dt, seed, dtype, threads=2)


SONG_WORKERS = {"synweave": worker_synweave, "synweave_f64": worker_synweave_f64,
                "brian2_cpp_standalone": worker_brian2_cpp_standalone, "brian2_runtime": worker_brian2_runtime,
                "nest_1t": worker_nest_1t, "nest_2t": worker_nest_2t}


# ----------------------------------------------------------------------------------------------
# part "overhead": CUBA with the excitatory recurrent projection static or plastic
# ----------------------------------------------------------------------------------------------


def cuba_variant_plan(variant: str, n: int, duration: float, dt: float, seed: int, dtype: str):
    """:func:`engine.networks.cuba_plan` with pair STDP on ``Ce`` (``pinned``, ``learning``) or without."""
    from engine.networks import CUBA_PARAMS, cuba_plan
    from engine.plan import RulePlan

    plan = cuba_plan(n, seed=seed, dt=dt, duration_ms=duration, dtype=dtype)
    w = CUBA_PARAMS["w_exc"]
    if variant == "pinned":
        bounds = dict(w_min=w, w_max=w)
        a_plus = 0.01 * w
    elif variant == "learning":
        bounds = dict(w_min=0.0, w_max=2.0 * w)
        a_plus = 0.01 * 2.0 * w
    elif variant == "static":
        return plan
    else:
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    ce = next(p for p in plan.projections if p.name == "Ce")
    ce.rules = [RulePlan("stdp", "bench STDP", dict(form="additive", A_plus=a_plus, A_minus=1.05 * a_plus,
                                                    tau_plus=20.0, tau_minus=20.0, **bounds))]
    ce.plastic = True
    return plan


def worker_overhead(variant: str, n: int, duration, dt, seed, dtype) -> dict:
    import numpy as np

    from engine.runner import Simulation

    t0 = time.perf_counter()
    plan = cuba_variant_plan(variant, n, duration, dt, seed, dtype)
    sim = Simulation(plan)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = sim.run(duration)
    wall = time.perf_counter() - t1
    steps, idx = res.spikes["spikes"]
    out_degree = sum(np.diff(p.indptr) for p in plan.projections)
    ce = next(p for p in plan.projections if p.name == "Ce")
    mean_w = float(np.mean(sim.final_weights()["Ce"])) if ce.plastic else float(np.mean(ce.weights))
    return dict(simulator="synweave-numba", variant=variant, n=n, n_steps=plan.n_steps, synapses=plan.n_synapses,
                plastic_synapses=ce.n_synapses if ce.plastic else 0, spikes=int(steps.size),
                spike_hash=_digest(steps, idx), events=int(out_degree[idx].sum()), rate_hz=res.mean_rate("spikes"),
                setup_s=setup_s, run_s=wall, us_per_step=wall / plan.n_steps * 1e6, mean_w_exc=mean_w,
                peak_rss_mb=_peak_rss_mb())


def _digest(*arrays) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def _worker_cmd(python: str, kind: str, args, extra=()) -> list:
    return [python, os.path.abspath(__file__), "--worker", kind, "--duration", str(args.duration), "--dt",
            str(args.dt), "--seed", str(args.seed), "--dtype", args.dtype, *extra]


def run_worker(cmd: list, label: dict, args) -> dict:
    """Run ``cmd`` ``args.repeat`` times (fresh process each); keep the fastest run."""
    best, runs = None, []
    for _ in range(max(1, args.repeat)):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return dict(label, error=f"no result within --timeout {args.timeout:g} s")
        if proc.returncode != 0:
            return dict(label, error=(proc.stderr.strip().splitlines() or ["failed"])[-1])
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append(row["run_s"])
        if best is None or row["run_s"] < best["run_s"]:
            best = row
    best["run_s_all"] = runs
    return best


def fmt_song_row(r: dict, ref: dict | None) -> str:
    if "error" in r:
        return f"  {r['simulator']:<28} error: {r['error']}"
    parts = [f"  {r['simulator']:<28}", f"setup {r['setup_s']:6.2f} s", f"run {r['run_s']:7.3f} s"]
    if ref is not None and r is not ref:
        parts.append(f"{r['run_s'] / ref['run_s']:5.2f}x synweave")
    parts += [f"rate {r['rate_hz']:5.2f} Hz (last 10 s {r['rate_last_hz']:5.2f})", f"mean w/gmax {r['mean_w']:.3f}",
              "hist " + str(r["hist"]), f"peak RSS {r['peak_rss_mb']:6.0f} MB"]
    if len(r.get("run_s_all", [])) > 1:
        parts.append("runs " + "/".join(f"{x:.3f}" for x in r["run_s_all"]))
    return " | ".join(parts)


def stdp2_verdict(r: dict) -> str:
    """MODELS.md STDP-2 acceptance bands on one row (meaningful for a 100 s run)."""
    h = r["hist"]
    ok = (h[0] >= 200 and h[-1] >= 150 and all(x <= 100 for x in h[2:8]) and 0.44 <= r["mean_w"] <= 0.50
          and 15.0 <= r["rate_last_hz"] <= 25.0)
    return "yes" if ok else "no"


def song_table(rows: list, duration: float) -> str:
    """Markdown: run time, ratios to both Synweave dtypes, rates and the final histogram per simulator."""
    ok = [r for r in rows if "error" not in r]
    ref32 = next((r for r in ok if r["simulator"] == "synweave-numba(float32)"), None)
    ref64 = next((r for r in ok if r["simulator"] == "synweave-numba(float64)"), None)
    head = ["simulator", "run", "x Synweave f32", "x Synweave f64", "rate (Hz)", "rate last 10 s (Hz)",
            "mean w/g_max", "w/g_max histogram (10 bins)", "STDP-2 bands"]
    lines = [f"Song et al. network, {duration / 1000:g} s of model time", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in ok:
        cells = [r["simulator"], f"{r['run_s']:.3f} s",
                 f"{r['run_s'] / ref32['run_s']:.2f}" if ref32 else "-",
                 f"{r['run_s'] / ref64['run_s']:.2f}" if ref64 else "-",
                 f"{r['rate_hz']:.2f}", f"{r['rate_last_hz']:.1f}", f"{r['mean_w']:.3f}",
                 " ".join(str(x) for x in r["hist"]), stdp2_verdict(r)]
        lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['simulator']} | {r['error']} |" + " |" * (len(head) - 2))
    lines.append("")
    lines.append("x = this simulator's run time / Synweave's (float32: the example's dtype; float64: the peers').")
    return "\n".join(lines)


def overhead_table(rows: list) -> str:
    ok = [r for r in rows if "error" not in r]
    head = ["N", "plastic synapses", "variant", "run", "µs/step", "x static", "+µs/step", "rate (Hz)",
            "spikes = static"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in sorted({r["n"] for r in ok}):
        here = {r["variant"]: r for r in ok if r["n"] == n}
        base = here.get("static")
        for v in VARIANTS:
            r = here.get(v)
            if r is None:
                continue
            same = "-" if base is None or v == "static" else ("yes" if r["spike_hash"] == base["spike_hash"] else "no")
            cells = [f"{n:,}".replace(",", " "), f"{r['plastic_synapses'] / 1e6:.2f} M", v, f"{r['run_s']:.3f} s",
                     f"{r['us_per_step']:.1f}",
                     f"{r['run_s'] / base['run_s']:.2f}" if base else "-",
                     f"{r['us_per_step'] - base['us_per_step']:+.1f}" if base else "-",
                     f"{r['rate_hz']:.2f}", same]
            lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']} | | {r['variant']} | error: {r['error']} |" + " |" * (len(head) - 4))
    return "\n".join(lines)


def run_song(args) -> list:
    python = args.peer_python or sys.executable
    peers = list(args.peers)
    available = {peer: _importable(PEER_MODULE[peer], python) for peer in peers}
    print(f"Song et al. STDP: {args.duration:g} ms at dt = {args.dt} ms, seed {args.seed}, {os.cpu_count()} CPU(s)")
    for peer, ok in available.items():
        if not ok:
            where = f" (in {args.peer_python})" if args.peer_python else " (pass --peer-python for a peer venv)"
            print(f"  {peer}: not installed{where}; skipped, Synweave's figures are reported without it")
    rows = []
    ref = None
    for kind in ["synweave", "synweave_f64"] + [p for p in peers if available[p]]:
        py = sys.executable if kind.startswith("synweave") else python
        r = run_worker(_worker_cmd(py, kind, args), dict(simulator=kind), args)
        if kind == "synweave" and "error" not in r:
            ref = r
        rows.append(r)
        print(fmt_song_row(r, ref), flush=True)
    print()
    print(song_table(rows, args.duration))
    return rows


def run_overhead(args) -> list:
    print(f"\nPlastic vs static projection: CUBA, {args.overhead_duration:g} ms at dt = {args.dt} ms, {args.dtype}, "
          "pair STDP on the excitatory recurrent projection")
    rows = []
    sub = argparse.Namespace(**{**vars(args), "duration": args.overhead_duration})
    for n in args.sizes:
        for v in VARIANTS:
            cmd = _worker_cmd(sys.executable, "overhead", sub, ["--variant", v, "--sizes", str(n)])
            r = run_worker(cmd, dict(simulator="synweave-numba", variant=v, n=n), args)
            rows.append(r)
            if "error" in r:
                print(f"  N={n:<7} {v:<9} error: {r['error']}", flush=True)
            else:
                print(f"  N={n:<7} {v:<9} run {r['run_s']:.3f} s | {r['us_per_step']:7.1f} µs/step | "
                      f"rate {r['rate_hz']:.2f} Hz | {r['events'] / 1e6:.1f} M syn-events | "
                      f"mean w_exc {r['mean_w_exc']:.4f} | runs " + "/".join(f"{x:.3f}" for x in r["run_s_all"]),
                      flush=True)
    print()
    print(overhead_table(rows))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", nargs="+", default=["song", "overhead"], choices=["song", "overhead"])
    ap.add_argument("--duration", type=float, default=100000.0, help="Song: simulated ms (default 100000)")
    ap.add_argument("--overhead-duration", type=float, default=1000.0, help="CUBA: simulated ms (default 1000)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 64000], help="CUBA sizes (default 4000 64000)")
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=2000, help="default 2000, the example project's seed")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="Synweave dtype of the CUBA part (the Song part runs both)")
    ap.add_argument("--peers", nargs="*", default=list(SONG_PEERS), choices=SONG_PEERS + OPTIONAL_PEERS,
                    help="Song peers (default: %(default)s; brian2_runtime and nest_2t are opt-in)")
    ap.add_argument("--peer-python", help="interpreter for the peers (e.g. a venv with brian2, nest and an older numpy)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per configuration, each in a fresh process; the fastest is reported (default 1)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    ap.add_argument("--json", help="also write all rows to this JSON file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker == "overhead":
        row = worker_overhead(args.variant, args.sizes[0], args.duration, args.dt, args.seed, args.dtype)
        print(json.dumps(row))
        return 0
    if args.worker:
        print(json.dumps(SONG_WORKERS[args.worker](args.duration, args.dt, args.seed, args.dtype)))
        return 0

    out = {}
    if "song" in args.part:
        out["song"] = run_song(args)
    if "overhead" in args.part:
        out["overhead"] = run_overhead(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
