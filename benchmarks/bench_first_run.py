"""First-run latency: how long a fresh install makes a user wait for the first spikes.

Measures, each in fresh processes on a fresh copy of a source tree (no ``__pycache__``) with an
empty ``NUMBA_CACHE_DIR`` ("cold": numba compiles every kernel the run needs, as on a fresh
install), and again in the same copy ("warm": the kernels load from the cache):

* ``cli``: ``python main.py run resources/examples/<example>.swproj --duration <d> -q`` for the
  CUBA, song STDP and NALSM digits examples (short durations: the run itself is a few ms);
* ``gui``: start of the designer (process start, CUBA example opened as on a first start) to the
  first spike arriving in the live raster, Run pressed after ``--think`` seconds (a user looking
  at the window), with and without the background warm-up compile (``app/warmup.py``).

``--tree`` measures another source tree the same way (e.g. an older commit unpacked with
``git archive``); given more than once, the trees' runs alternate, for before/after figures taken
under the same load. A fresh copy of the tree is cold whatever the tree
does with ``NUMBA_CACHE_DIR`` (older trees kept the kernel cache in ``engine/kernels/__pycache__``).

Usage::

    python benchmarks/bench_first_run.py [--tree PATH ...] [--repeat 2] [--cases cli gui]

Prints a Markdown table: the range (fastest - slowest) of ``--repeat`` runs per case and tree, in
seconds.
On a shared machine the spread is large: give ranges, not single figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path("resources") / "examples"
#: (example, --duration) of the CLI cases
CLI_CASES = (("cuba", "100ms"), ("song_stdp", "100ms"), ("nalsm_digits", "100ms"))
#: (cache, warm-up, Run pressed after s) of the GUI cases
GUI_CASES = (("cold", False, 0.0), ("cold", True, 0.0), ("cold", True, 5.0), ("warm", False, 0.0),
             ("warm", True, 5.0))

GUI_SCRIPT = r"""
import inspect, os, sys, time, json
t_start = time.perf_counter()
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, {root!r})
import app
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
qa = QApplication([])
from app.main_window import MainWindow
from engine.project import Project
win = MainWindow(Project())
win.open_example({cuba!r})
win.show()
qa.processEvents()
t_shown = time.perf_counter()
if {warmup!r}:
    from app import warmup
    args = (win,) if inspect.signature(warmup.start).parameters else ()  # older trees: no argument
    QTimer.singleShot(300, lambda: warmup.start(*args))
marks = {{}}

def on_chunks(chunks):
    if "first_spike" not in marks and any(c.n_spikes for c in chunks):
        marks["first_spike"] = time.perf_counter()
        win.stop_run()

def press_run():
    marks["run"] = time.perf_counter()
    win.start_run()

win.run.chunks.connect(on_chunks)
win.run.finished.connect(lambda *_: qa.quit())
QTimer.singleShot(int({think!r} * 1000), press_run)
qa.exec()
print(json.dumps({{"shown": t_shown - t_start, "run_to_spike": marks["first_spike"] - marks["run"],
                  "start_to_spike": marks["first_spike"] - t_start}}), flush=True)
os._exit(0)  # skip Qt's teardown at interpreter exit (it can crash PySide6 6.12 offscreen)
"""


def fresh_tree(source: Path, folder: Path) -> Path:
    """A copy of the source tree without any cache, and an empty numba cache: a fresh install."""
    tree = folder / "synweave"
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns("__pycache__", ".git", "*.pyc", "*.nbi",
                                                                "*.nbc", ".pytest_cache", ".hypothesis"))
    (folder / "numba-cache").mkdir()
    return tree


def _env(folder: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba-cache"), QT_QPA_PLATFORM="offscreen")
    env.pop("SYNWEAVE_NO_WARMUP", None)
    return env


def time_cli(folder: Path, example: str, duration: str) -> float:
    tree = folder / "synweave"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(tree / "main.py"), "run", str(tree / EXAMPLES / f"{example}.swproj"),
                    "--duration", duration, "-q"], env=_env(folder), check=True, capture_output=True, cwd=tree)
    return time.perf_counter() - t0


def time_gui(folder: Path, warmup: bool, think: float) -> dict:
    tree = folder / "synweave"
    script = GUI_SCRIPT.format(root=str(tree), cuba=str(tree / EXAMPLES / "cuba.swproj"), warmup=warmup,
                               think=think)
    with tempfile.TemporaryDirectory() as data:
        env = dict(_env(folder), SYNWEAVE_DATA_DIR=data)
        out = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                             text=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _range(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if len(values) == 1 or hi - lo < 0.005 else f"{lo:.2f} - {hi:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, action="append",
                        help="source tree to measure (default: this one); give it twice or more to compare "
                             "trees: their runs alternate, so that they share the machine's load")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=["cli", "gui"], choices=["cli", "gui"])
    parser.add_argument("--examples", nargs="+", default=[e for e, _ in CLI_CASES], help="CLI cases to run")
    parser.add_argument("--gui-cases", nargs="+", type=int, default=list(range(len(GUI_CASES))),
                        help="GUI cases to run (indices into GUI_CASES)")
    args = parser.parse_args()
    trees = args.tree or [ROOT]
    rows = []

    def add(name, per_tree, detail=lambda t: ""):
        rows.append((name, [_range(per_tree[t]) for t in range(len(trees))], [detail(t) for t in range(len(trees))]))
        print(rows[-1], file=sys.stderr, flush=True)

    if "cli" in args.cases:
        for example, duration in [c for c in CLI_CASES if c[0] in args.examples]:
            cold, warm = ([[] for _ in trees] for _ in range(2))
            for _ in range(args.repeat):
                for t, tree in enumerate(trees):
                    with tempfile.TemporaryDirectory() as tmp:
                        fresh_tree(tree, Path(tmp))
                        cold[t].append(time_cli(Path(tmp), example, duration))
                        warm[t].append(time_cli(Path(tmp), example, duration))
            add(f"CLI `run {example}.swproj --duration {duration}`, cold", cold)
            add(f"CLI `run {example}.swproj --duration {duration}`, warm", warm)
    if "gui" in args.cases:
        for cache, warmup, think in [GUI_CASES[i] for i in args.gui_cases]:
            runs = [[] for _ in trees]
            for _ in range(args.repeat):
                for t, tree in enumerate(trees):
                    with tempfile.TemporaryDirectory() as tmp:
                        fresh_tree(tree, Path(tmp))
                        if cache == "warm":
                            time_gui(Path(tmp), True, 5.0)  # fills the cache as a first session would
                        runs[t].append(time_gui(Path(tmp), warmup, think))
            add(f"GUI start to first spike, {cache}, warm-up {'on' if warmup else 'off'}, Run after {think:g} s",
                [[r["start_to_spike"] for r in runs[t]] for t in range(len(trees))],
                lambda t: (f"Run to first spike {_range([r['run_to_spike'] for r in runs[t]])} s, window shown "
                           f"{_range([r['shown'] for r in runs[t]])} s"))
    head = " | ".join(f"{tree} (s)" for tree in trees)
    print(f"| case | {head} | detail |\n|---|{'---|' * len(trees)}---|")
    for name, secs, details in rows:
        print(f"| {name} | {' | '.join(secs)} | {'; '.join(d for d in details if d)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
