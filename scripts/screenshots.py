"""Render screenshots of the designer to docs/screenshots/ (dark and light, 1x and 2x).

    python scripts/screenshots.py            # all four
    python scripts/screenshots.py --theme dark --scale 2

Each screenshot runs in its own process because QT_SCALE_FACTOR must be set before Qt starts.
The window shows the CUBA example after a short run: live raster, rate, the inspector on the
excitatory population, the problems panel.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def render(theme: str, scale: int, out: Path, duration_ms: float = 1000.0) -> Path:
    sys.path.insert(0, str(ROOT))
    import app  # noqa: F401  (PySide6 work-around first)
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance() or QApplication([])
    from app import theme as themes
    from app.main_window import MainWindow
    from engine.project import Project, example_projects

    themes.apply_theme(theme)
    win = MainWindow(Project())
    win.resize(1440, 900)
    win.open_example(next(p for p in example_projects() if p.stem == "cuba"))
    win.show()
    qapp.processEvents()
    win.resizeDocks([win.problems_dock], [330], Qt.Orientation.Vertical)
    win.resizeDocks([win.palette_dock, win.inspector_dock], [210, 330], Qt.Orientation.Horizontal)
    raster_dock = next(iter(win.plot_docks.values()))
    win.resizeDocks([win.problems_dock, raster_dock], [290, 1150], Qt.Orientation.Horizontal)
    g = win.doc.graph
    raster = next(nid for nid, n in g.nodes.items() if n.type_id == "monitor.spikes")
    exc = next(nid for nid, n in g.nodes.items() if n.label == "Excitatory")
    try:
        import engine.compiler  # noqa: F401
        win.doc.set_setting("duration", duration_ms)
        win.start_run()
    except ImportError:
        from engine.networks import cuba_plan

        win.start_plan_run(cuba_plan(n=4000, duration_ms=duration_ms, seed=2007), {"spikes": raster})
    t0 = time.time()
    while win.run.running and time.time() - t0 < 300:
        qapp.processEvents()
        time.sleep(0.005)
    qapp.processEvents()
    win.plot_docks[raster].raise_()
    win.scene.select_nodes([exc])
    qapp.processEvents()
    win.view.fit_all()
    for _ in range(10):
        qapp.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(out))
    win.doc.undo_stack.setClean()
    win.doc.force_modified = False
    win.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--theme", choices=("dark", "light"), action="append")
    parser.add_argument("--scale", type=int, choices=(1, 2), action="append")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    themes_ = args.theme or ["dark", "light"]
    scales = args.scale or [1, 2]
    out = Path(args.out)
    if args.child:
        theme, scale = themes_[0], scales[0]
        path = render(theme, scale, out / f"main-{theme}@{scale}x.png")
        print(path)
        return 0
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    status = 0
    with tempfile.TemporaryDirectory() as data:
        env["SYNWEAVE_DATA_DIR"] = data  # never touch the user's settings or recovery files
        for theme in themes_:
            for scale in scales:
                env["QT_SCALE_FACTOR"] = str(scale)
                proc = subprocess.run([sys.executable, __file__, "--child", "--theme", theme, "--scale",
                                       str(scale), "--out", str(out)], env=env, capture_output=True, text=True)
                if proc.returncode:
                    print(proc.stdout, proc.stderr, file=sys.stderr)
                    status = 1
                else:
                    print(proc.stdout.strip().splitlines()[-1])
    return status


if __name__ == "__main__":
    sys.exit(main())
