"""First-run latency: how long a fresh install makes a user wait for the first spikes.

Measures, each in fresh processes:

* ``cli``: ``python main.py run resources/examples/cuba.swproj -q`` in a fresh copy of the source
  tree (cold: no ``__pycache__``, numba compiles every kernel; an empty ``NUMBA_CACHE_DIR`` alone
  is not cold here, because ``engine/kernels`` installs its own in-tree cache locator) and again
  in the same copy (warm);
* ``gui``: start of the designer (process start, CUBA example opened as on a first start) to the
  first spike arriving in the live raster, Run pressed after ``--think`` seconds (a user looking
  at the window), with and without the background warm-up compile (``app/warmup.py``), cold and
  warm cache.

Usage::

    python benchmarks/bench_first_run.py [--repeat 2] [--think 0 5]

Prints a Markdown table (seconds, the fastest of ``--repeat`` runs).
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
CUBA = ROOT / "resources" / "examples" / "cuba.swproj"

GUI_SCRIPT = r"""
import os, sys, time, json
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
    QTimer.singleShot(300, warmup.start)
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


def fresh_tree(folder: Path) -> Path:
    """A copy of the source tree without any cache: what a fresh install has."""
    tree = folder / "synweave"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns("__pycache__", ".git", "*.pyc", "*.nbi",
                                                              "*.nbc", ".pytest_cache", ".hypothesis"))
    (folder / "numba-cache").mkdir()
    return tree


def _env(folder: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(folder / "numba-cache"), QT_QPA_PLATFORM="offscreen")
    env.pop("SYNWEAVE_NO_WARMUP", None)
    return env


def time_cli(folder: Path) -> float:
    tree = folder / "synweave"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(tree / "main.py"), "run", str(tree / CUBA.relative_to(ROOT)), "-q"],
                   env=_env(folder), check=True, capture_output=True, cwd=tree)
    return time.perf_counter() - t0


def time_gui(folder: Path, warmup: bool, think: float) -> dict:
    tree = folder / "synweave"
    script = GUI_SCRIPT.format(root=str(tree), cuba=str(tree / CUBA.relative_to(ROOT)), warmup=warmup,
                               think=think)
    with tempfile.TemporaryDirectory() as data:
        env = dict(_env(folder), SYNWEAVE_DATA_DIR=data)
        out = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                             text=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--think", type=float, nargs="+", default=[0.0, 5.0])
    args = parser.parse_args()
    rows = []
    for cold in (True, False):
        label = "cold" if cold else "warm"
        cli = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                fresh_tree(Path(tmp))
                if not cold:
                    time_cli(Path(tmp))
                cli.append(time_cli(Path(tmp)))
        rows.append((f"CLI `run cuba.swproj` (1 s model time), {label}", min(cli), ""))
        for warmup in (False, True):
            for think in args.think:
                runs = []
                for _ in range(args.repeat):
                    with tempfile.TemporaryDirectory() as tmp:
                        fresh_tree(Path(tmp))
                        if not cold:
                            time_cli(Path(tmp))
                        runs.append(time_gui(Path(tmp), warmup, think))
                best = min(runs, key=lambda r: r["start_to_spike"])
                rows.append((f"GUI, {label}, warm-up {'on' if warmup else 'off'}, Run after {think:g} s",
                             best["start_to_spike"], f"Run to first spike {best['run_to_spike']:.2f} s, "
                                                     f"window shown {best['shown']:.2f} s"))
    print("| case | seconds | detail |\n|---|---|---|")
    for name, sec, detail in rows:
        print(f"| {name} | {sec:.2f} | {detail} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
