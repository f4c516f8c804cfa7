"""Autosave to a recovery file and recovery after a crash.

A few seconds after each change (edit, undo, redo, setting) of a window with unsaved changes, its
project is written (atomically, with ``engine.project.atomic_write_text``) to
``<data dir>/recovery/<pid>-<n>.swproj.recovery``. Saving, closing the window normally, or undoing
back to the saved state deletes the file at once, so a file left behind means the program did not
end properly; the next start offers to recover it.

Files of another *running* Synweave are left alone. Whether the owner still runs is decided by a
lock: every process holds an exclusive ``flock`` on ``recovery/<pid>.lock`` while it lives, and the
kernel drops it the moment the process dies, even while the dead process is still a zombie or
after its pid was reused (where ``kill(pid, 0)`` would still say "alive").
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

try:
    import fcntl
except ImportError:  # Windows: fall back to asking whether the pid exists
    fcntl = None

from app import appdata
from engine.errors import ProjectFileError
from engine.project import Project, atomic_write_text

SUFFIX = ".swproj.recovery"
#: delay between the last change and the recovery copy (changes in a burst write once)
AUTOSAVE_DELAY_MS = 2_000
_counter = itertools.count(1)
_active: set[Path] = set()
#: this process's liveness locks, one per recovery folder, held open while it runs
_locks: dict[Path, object] = {}


def _lock_path(folder: Path, pid: int) -> Path:
    return folder / f"{pid}.lock"


def hold_process_lock() -> None:
    """Take this process's liveness lock in the recovery folder (once per folder)."""
    folder = appdata.recovery_dir()
    if fcntl is None or folder in _locks:
        return
    handle = open(_lock_path(folder, os.getpid()), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by an unrelated process that had our pid: keep the pid check
        handle.close()
        return
    _locks[folder] = handle


def _owner_alive(folder: Path, pid: int) -> bool:
    """Whether the Synweave process ``pid`` that wrote a recovery file still runs."""
    lock = _lock_path(folder, pid)
    if fcntl is None or not lock.exists():
        return _pid_alive(pid)
    try:
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True  # the owner holds it
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return _pid_alive(pid)
    return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass
class RecoveryEntry:
    path: Path
    original: str | None
    name: str
    saved_at: str

    def describe(self) -> str:
        where = f"“{Path(self.original).name}”" if self.original else f"the unsaved project “{self.name}”"
        return f"{where} (autosaved {self.saved_at})"

    def load(self) -> Project:
        project = Project.load(self.path)
        info = project.view.pop("recovery", {})
        original = info.get("original_path") if isinstance(info, dict) else None
        project.path = Path(original) if original else None
        return project

    def discard(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def _remove_dead_locks(folder: Path) -> None:
    """Delete the liveness locks of dead processes that left no recovery file behind."""
    if fcntl is None:
        return
    for lock in folder.glob("*.lock"):
        try:
            pid = int(lock.stem)
        except ValueError:
            continue
        if pid == os.getpid() or any(folder.glob(f"{pid}-*{SUFFIX}")) or _owner_alive(folder, pid):
            continue
        try:
            lock.unlink()
        except OSError:
            pass


def orphaned_files() -> list[RecoveryEntry]:
    """Recovery files left by a process that is gone (or by no live window of this one)."""
    out = []
    folder = appdata.recovery_dir()
    _remove_dead_locks(folder)
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            pid = int(path.name.split("-", 1)[0])
        except ValueError:
            pid = -1
        if path.resolve() in _active:
            continue
        if pid != os.getpid() and _owner_alive(folder, pid):
            continue  # another Synweave is running and owns it
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            info = data.get("view", {}).get("recovery", {})
            name = data.get("metadata", {}).get("name", "Untitled")
        except (OSError, ValueError, AttributeError):
            info, name = {}, "Untitled"
        out.append(RecoveryEntry(path, info.get("original_path"), name, info.get("saved_at", "?")))
    return out


class Autosaver(QObject):
    """Writes one window's project to its recovery file a few seconds after each change."""

    def __init__(self, window, delay_ms: int = AUTOSAVE_DELAY_MS):
        super().__init__(window)
        self.window = window
        self.path = appdata.recovery_dir() / f"{os.getpid()}-{next(_counter)}{SUFFIX}"
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self.autosave)
        self._saved_generation = -1
        self.writes = 0
        self.watch(window.doc)

    def watch(self, doc) -> None:
        """Follow a window's (new) document: every change schedules a write, clean discards."""
        doc.undo_stack.indexChanged.connect(self.schedule)
        doc.undo_stack.cleanChanged.connect(self._on_clean_changed)

    def schedule(self, *args) -> None:
        self.timer.start()  # restarts: a burst of edits is written once

    def _on_clean_changed(self, clean: bool) -> None:
        try:
            modified = self.window.doc.modified
        except RuntimeError:  # the stack is being destroyed (teardown), not undone: keep the file
            return
        if clean and not modified:
            self.timer.stop()
            self.discard()  # undone back to the saved state: nothing to recover

    def autosave(self) -> bool:
        """Write the recovery file if there are changes since the last autosave."""
        doc = self.window.doc
        if not doc.modified:
            self.discard()
            return False
        generation = self.window.generation
        if generation == self._saved_generation and self.path.exists():
            return False
        project = doc.project
        data = project.to_json()
        view = dict(data.get("view", {}))
        view["recovery"] = {"original_path": str(project.path) if project.path else None,
                            "saved_at": _dt.datetime.now().strftime("%H:%M:%S on %d %b %Y"),
                            "pid": os.getpid()}
        data["view"] = view
        try:
            hold_process_lock()
            atomic_write_text(self.path, json.dumps(data, indent=1) + "\n", keep_backup=False)
        except OSError as exc:
            self.window.statusBar().showMessage(f"Autosave failed: {exc}", 8000)
            return False
        _active.add(self.path.resolve())
        self._saved_generation = generation
        self.writes += 1
        return True

    def discard(self) -> None:
        self._saved_generation = -1
        _active.discard(self.path.resolve())
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass

    def stop(self) -> None:
        self.timer.stop()
        self.discard()


def load_entry(entry: RecoveryEntry) -> Project:
    try:
        return entry.load()
    except ProjectFileError:
        raise
