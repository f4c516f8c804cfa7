"""Fuzzing ``run --duration 1ms`` over mutated project files (issue 9): 0 tracebacks, 0 hangs.

The cases run in one child process (``tests/engine/run_fuzz.py``) whose address space is limited
with ``RLIMIT_AS`` and whose memory budget the preflight is told about, so a case that allocates
more than the preflight allowed ends in a MemoryError (a failure) instead of swapping the machine;
each case has a time limit, and so does the whole child.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_SPACE_LIMIT = 6 * 2**30   # the child's 2 GiB budget plus numba/LLVM's own mappings
CASES = 60


def _limit_memory():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_AS, SIGALRM and FIFOs")
def test_mutated_projects_run_or_fail_with_one_clear_line(tmp_path, seed=11):
    out = subprocess.run([sys.executable, "-m", "tests.engine.run_fuzz", "--cases", str(CASES),
                          "--seed", str(seed), "--workdir", str(tmp_path), "--case-timeout", "60"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
                         preexec_fn=_limit_memory)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cases"] == CASES
    assert summary["failures"] == [], json.dumps(summary["failures"], indent=1)[:6000]
    # the cases reach the run, not only the loader
    assert summary["ran"] >= CASES // 5 and summary["refused"] >= CASES // 5
