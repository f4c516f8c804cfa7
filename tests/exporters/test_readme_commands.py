"""Every command of the README's "Export and import" section works as written (run in a scratch
folder, with the repository's main.py and examples)."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Export and import", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_readme_lists_the_export_and_import_commands():
    commands = readme_commands()
    formats = {c[c.index("--format") + 1] for c in commands if "--format" in c}
    assert formats == {"graphml", "svg", "csv", "npz", "nir", "nest"}
    assert any(c[1:3] == ["main.py", "import"] for c in commands)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nir") is None or importlib.util.find_spec("nest") is None,
                    reason="the README's NIR and NEST lines need pip install -e '.[export,nest]'")
def test_readme_export_commands_work_as_written(tmp_path):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # NEST threads on shared test cores
    for argv in readme_commands():
        assert argv[0] == "python"
        argv = [sys.executable] + [str(ROOT / a) if a == "main.py" or a.startswith("resources/") else a
                                   for a in argv[1:]]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, (argv, done.stderr[-2000:])
    for name in ("cuba.graphml", "cuba_net.graphml", "cuba.svg", "cuba_results.npz", "cuba_csv/monitors.csv",
                 "cuba_200ms.npz", "cuba.nir", "cuba_from_nir.swproj", "cuba_nest.py"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert list((tmp_path / "cuba_nest_spikes").glob("Raster-*.dat"))
