"""Fuzzing ``main.py run FILE --duration 1ms`` with mutated project files (issue 9).

Run as a script in a child process (the test sets its memory limit)::

    python -m tests.engine.run_fuzz --cases 100 --seed 1 --workdir DIR

Every mutated project must either run or end with a Synweave error (exit status 1, one line on
stderr); a traceback or a case that takes longer than ``--case-timeout`` seconds (not counting
numba compiling kernels) is a failure.
The script prints one JSON object: ``{"cases", "ran", "refused", "failures": [...]}``.

Mutations are drawn from the parameter descriptors, so most values pass the loader and reach
the compiler and the run: the bounds themselves, tiny and huge values inside them, every choice,
extreme lists, and special files (FIFOs, directories, devices, empty and corrupt files).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import sys
import traceback
from pathlib import Path

#: what the harness grants a case; the preflight must refuse anything larger
MEMORY_BUDGET_BYTES = 2 * 2**30


def _special_files(workdir: Path) -> list[str]:
    import numpy as np

    fifo = workdir / "pipe.npz"
    if hasattr(os, "mkfifo") and not fifo.exists():
        os.mkfifo(fifo)
    (workdir / "folder.npz").mkdir(exist_ok=True)
    (workdir / "empty.npz").write_bytes(b"")
    (workdir / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (workdir / "text.csv").write_text("time_ms,index\n1,0\nx,y\n")
    (workdir / "nan.csv").write_text("0,0,nan,1\n1,1,1,inf\n")
    np.savez(workdir / "conn.npz", pre=np.array([0, 1, 2]), post=np.array([0, 0, 1]),
             weight=np.array([1.0, -2.0, 1e300]), delay=np.array([1.0, 2.0, 3.0]))
    np.savez(workdir / "spikes.npz", times=np.array([0.5, 1e12, 3.0]), indices=np.array([0, 1, 99]))
    np.savez(workdir / "images.npz", images=np.zeros((0, 64)), labels=np.zeros(0, np.int64))
    np.savez(workdir / "events.npz", x=np.array([0, 5]), y=np.array([0, 5]), t=np.array([0, 1e30]),
             polarity=np.array([0, 1]))
    return [str(fifo), str(workdir / "folder.npz"), "/dev/zero", "/dev/stdin", "/dev/null",
            str(workdir / "empty.npz"), str(workdir / "junk.npz"), str(workdir / "text.csv"),
            str(workdir / "nan.csv"), str(workdir / "conn.npz"), str(workdir / "spikes.npz"),
            str(workdir / "images.npz"), str(workdir / "events.npz"), "missing.npz", "",
            "neurocorex_digits_weights.npz"]


def _value(param, rng: random.Random, files: list[str]):
    """A value for one parameter: mostly inside its bounds, at the extremes, sometimes outside."""
    from nodes.params import Bool, Choice, Float, FloatList, Int, IntList, Text

    if isinstance(param, Bool):
        return rng.random() < 0.5
    if isinstance(param, Choice):
        return rng.choice(param.choices)
    if isinstance(param, Text):
        return rng.choice(files) if param.is_path else rng.choice(["", "x" * 50, "é"])
    if isinstance(param, (Int, Float)):
        lo = param.low if param.low is not None else -1e12
        hi = param.high if param.high is not None else 1e12
        picks = [lo, hi, (lo + hi) / 2, lo + (hi - lo) * 1e-9, 0, 1, 2, 1e-300, 1.8e19, -1,
                 rng.uniform(lo, hi), 10 ** rng.uniform(-6, 9)]
        value = rng.choice(picks)
        return int(value) if isinstance(param, Int) and abs(value) < 2**63 else value
    if isinstance(param, (FloatList, IntList)):
        length = param.length if param.length is not None else rng.choice([0, 1, 3, 50])
        hi = param.high if param.high is not None else 1e9
        return [rng.choice([0, 1, 5, 99, hi, rng.uniform(0, 100)]) for _ in range(length)]
    return None


def mutate(doc: dict, rng: random.Random, files: list[str]) -> dict:
    """1-3 mutations of parameters, settings, wires or view of a project document."""
    import nodes
    from engine.project import SimulationSettings

    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        graph = doc["graph"]
        if kind < 0.7 and graph["nodes"]:
            node = rng.choice(graph["nodes"])
            cls = nodes.node_type(node["type"])
            name = rng.choice(list(cls.params))
            value = _value(cls.params[name], rng, files)
            node["params"][name] = list(value) if isinstance(value, tuple) else value
        elif kind < 0.85:
            params = SimulationSettings.params
            name = rng.choice(["dt", "duration", "seed", "dtype", "chunk"])
            # dt stays >= 0.01 ms: a data-set encoder encodes every sample before the run starts
            # (whatever the duration), which at dt = 0.001 ms is minutes of real work, not a hang
            doc["settings"][name] = (rng.choice([0.01, 0.05, 0.1, 0.5, 1.0, 10.0]) if name == "dt"
                                     else _value(params[name], rng, files))
        elif kind < 0.95 and graph["edges"]:
            graph["edges"].pop(rng.randrange(len(graph["edges"])))
        else:
            doc["view"] = {"canvas": {"zoom": rng.choice([1.0, 1e308, 0.0, -5]), "center": [0, 0]}}
    return doc


def bases() -> list[dict]:
    """Small projects that exercise every input type plus the bundled examples."""
    from engine import examples
    from engine.project import Project

    project = Project()
    g = project.graph
    sources = [g.add_node("input.poisson", n=50), g.add_node("input.spike_train", n=100, times=[1.0, 2.0],
                                                             indices=[0, 1]),
               g.add_node("input.dataset", split="test"), g.add_node("input.event_stream", file="events.npz")]
    pops = [g.add_node("neuron.lif", n=20), g.add_node("neuron.izhikevich", n=20),
            g.add_node("neuron.cobalif", n=20), g.add_node("neuron.alif", n=20)]
    for i, (src, pop) in enumerate(zip(sources, pops)):
        prj = g.add_node("synapse.projection", receptor_type="conductance" if i == 2 else "current")
        g.connect(src.id, "spikes", prj.id, "pre")
        g.connect(prj.id, "post", pop.id, "input")
    cur = g.add_node("input.current", waveform="step")
    g.connect(cur.id, "current", pops[0].id, "input")
    for kind, port, pop in (("monitor.spikes", "source", pops[0]), ("monitor.rate", "source", pops[1]),
                            ("monitor.state", "population", pops[3])):
        mon = g.add_node(kind)
        g.connect(pop.id, "spikes" if port == "source" else "state", mon.id, port)
    return [project.to_json()] + [build().to_json() for build in examples.BUILDERS.values()]


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


def _pause_alarm_while_compiling() -> None:
    """Stop a case's clock while numba compiles a kernel.

    Kernels are compiled per feature set of a network (engine.kernels.network.chunk_kernel), so a
    case may be the first to need a variant: a cold compile is work, not a hang, and an alarm
    raised inside numba's compiler would leave it unusable for the following cases.
    """
    from numba.core import event

    class CompileClock(event.Listener):
        depth = 0
        remaining = 0

        def on_start(self, ev):
            if self.depth == 0:
                self.remaining = signal.alarm(0)
            self.depth += 1

        def on_end(self, ev):
            self.depth -= 1
            if self.depth == 0 and self.remaining:
                signal.alarm(self.remaining)

    event.register("numba:compile", CompileClock())


def run_case(path: Path, timeout_s: int) -> tuple[str, str]:
    """('ran' | 'refused' | 'traceback' | 'hung' | 'bad-message', detail)."""
    import main

    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main.main(["run", str(path), "--duration", "1ms", "-q"])
    except CaseTimeout:
        return "hung", ""
    except BaseException as exc:  # noqa: BLE001 - a traceback is what we look for
        return "traceback", "".join(traceback.format_exception(exc))[-1500:]
    finally:
        signal.alarm(0)
    if code == 0:
        return "ran", ""
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("synweave: error:")]
    if code != 1 or not lines or "Traceback" in err.getvalue():
        return "bad-message", f"exit {code}: {err.getvalue()[-800:]}"
    return "refused", lines[0][:200]


def main_(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--case-timeout", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep every case file, not only failures")
    args = parser.parse_args(argv)
    import engine.info

    real = getattr(engine.info, "available_memory_bytes", lambda: None)
    engine.info.available_memory_bytes = lambda: min(real() or MEMORY_BUDGET_BYTES, MEMORY_BUDGET_BYTES)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    import shutil
    from engine.project import example_projects

    weights = example_projects()[0].parent / "neurocorex_digits_weights.npz"
    shutil.copy(weights, workdir / weights.name)
    files = _special_files(workdir)
    _pause_alarm_while_compiling()
    rng = random.Random(args.seed)
    base_docs = bases()
    summary = {"cases": 0, "ran": 0, "refused": 0, "failures": []}
    for case in range(args.cases):
        doc = mutate(json.loads(json.dumps(rng.choice(base_docs))), rng, files)
        path = workdir / f"case{case:04d}.swproj"
        path.write_text(json.dumps(doc))
        outcome, detail = run_case(path, args.case_timeout)
        summary["cases"] += 1
        if outcome in ("ran", "refused"):
            summary[outcome] += 1
            if not args.keep:
                path.unlink()
        else:
            summary["failures"].append({"case": path.name, "outcome": outcome, "detail": detail})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main_())
