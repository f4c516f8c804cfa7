"""The board layer must not depend on Qt: the CLI, scripts and the mapper use it headless."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_hardware_package_imports_no_qt():
    code = ("import sys, hardware.cli, hardware.errors, hardware.neurocorex as n; "
            "from hardware.neurocorex import driver, twin, virtual_board, discovery, protocol; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_qt_in_board_layer_sources():
    for path in (REPO / "hardware").rglob("*.py"):
        text = path.read_text()
        for name in ("PySide6", "PyQt", "pyqtgraph"):
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path} imports {name}"
