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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def render(theme: str, scale: int, out: Path, duration_ms: float = 1000.0) -> Path:
    sys.path.insert(0, str(ROOT))
    from app.devtools import render_screenshot  # app/ owns every Qt import

    return render_screenshot(theme, out, duration_ms)


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
