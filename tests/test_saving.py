"""Saving (issue 9): the backup is atomic too, killed saves leave no torn file and no litter,
and a save keeps the file's permission bits."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import examples
from engine.project import Project

ROOT = Path(__file__).resolve().parent.parent

SAVER = """
import sys
sys.path.insert(0, {root!r})
from engine import examples
project = examples.cuba()
project.view["padding"] = "x" * 4_000_000   # a few MB: a copy takes long enough to be caught
target = {target!r}
project.save(target)
print("ready", flush=True)
generation = 0
while True:
    generation += 1
    project.metadata["description"] = str(generation)
    project.save(target)
"""


def _complete(path: Path):
    """The parsed document, or raise: a torn or empty file does not parse."""
    return json.loads(path.read_text())


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_saves_never_leave_a_torn_file_or_backup(tmp_path):
    target = tmp_path / "net.swproj"
    rng = random.Random(9)
    for kill in range(6):
        child = subprocess.Popen([sys.executable, "-c", SAVER.format(root=str(ROOT), target=str(target))],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.15))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(30)
        for path in (target, target.with_name("net.swproj.bak")):
            if path.exists():
                assert _complete(path)["format"] == "synweave-project", (kill, path.name)
    # the next save clears what the killed ones left behind
    Project.load(target).save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.swproj", "net.swproj.bak"]


class SimulatedKill(BaseException):
    """Stands for SIGKILL in the middle of a system call: nothing after it runs."""


@pytest.mark.parametrize("victim", ["sendfile", "link", "replace", "fsync", "write"])
@pytest.mark.parametrize("call", [1, 2, 3])
def test_a_save_killed_inside_any_system_call_leaves_whole_files(tmp_path, monkeypatch, victim, call):
    project = examples.cuba()
    project.view["padding"] = "x" * 200_000
    target = project.save(tmp_path / "net.swproj")
    project.settings.duration = 20.0
    project.save()
    versions = {target.read_text(), target.with_name("net.swproj.bak").read_text()}
    project.settings.duration = 30.0
    new = project.dumps()
    real = getattr(os, victim)
    calls = []

    def dying(*args, **kwargs):
        calls.append(victim)
        if len(calls) < call:
            return real(*args, **kwargs)
        if victim == "sendfile":  # half the bytes reach the disk, then the process is gone
            out_fd, in_fd, offset, count = args
            real(out_fd, in_fd, offset, max(1, os.fstat(in_fd).st_size // 2))
        elif victim == "write":
            fd, data = args
            real(fd, bytes(data)[: len(data) // 2])
        raise SimulatedKill

    monkeypatch.setattr(os, victim, dying)
    try:
        project.save()
    except SimulatedKill:
        pass
    monkeypatch.undo()
    assert target.read_text() in versions | {project.dumps()}
    bak = target.with_name("net.swproj.bak")
    assert bak.read_text() in versions | {new}, f"torn backup after a kill in {victim} #{call}"


def test_orphaned_temporary_files_are_removed_on_save_and_on_open(tmp_path):
    target = examples.cuba().save(tmp_path / "net.swproj")
    orphan = tmp_path / ".net.swproj.k1llx9.tmp"
    orphan.write_text('{"torn')
    other = tmp_path / ".other.swproj.abc.tmp"   # another file's: left alone
    other.write_text("x")
    Project.load(target)
    assert not orphan.exists() and other.exists()
    orphan.write_text('{"torn')
    Project.load(target).save()
    assert not orphan.exists() and other.exists()


def test_save_keeps_the_file_mode_and_new_files_follow_the_umask(tmp_path):
    target = examples.cuba().save(tmp_path / "net.swproj")
    os.chmod(target, 0o640)
    project = Project.load(target)
    project.settings.duration = 20.0
    project.save()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert stat.S_IMODE(target.with_name("net.swproj.bak").stat().st_mode) == 0o640
    old = os.umask(0o027)
    try:
        fresh = examples.cuba().save(tmp_path / "fresh.swproj")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_backup_holds_the_previous_version(tmp_path):
    project = examples.cuba()
    target = project.save(tmp_path / "net.swproj")
    first = target.read_text()
    project.settings.duration = 30.0
    project.save()
    second = target.read_text()
    project.settings.duration = 40.0
    project.save()
    assert target.with_name("net.swproj.bak").read_text() == second != first
