"""Autosave to a recovery file and recovery after a crash.

While a window has unsaved changes, its project is written every 30 s (atomically, with
``engine.project.atomic_write_text``) to ``<data dir>/recovery/<pid>-<n>.swproj.recovery``. Saving
or closing the window normally deletes the file, so a file left behind means the program did
not end properly; the next start offers to recover it. Files of another *running* Synweave are
left alone.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from app import appdata
from engine.errors import ProjectFileError
from engine.project import Project, atomic_write_text

SUFFIX = ".swproj.recovery"
AUTOSAVE_MS = 30_000
_counter = itertools.count(1)
_active: set[Path] = set()


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


def orphaned_files() -> list[RecoveryEntry]:
    """Recovery files left by a process that is gone (or by no live window of this one)."""
    out = []
    for path in sorted(appdata.recovery_dir().glob(f"*{SUFFIX}")):
        try:
            pid = int(path.name.split("-", 1)[0])
        except ValueError:
            pid = -1
        if path.resolve() in _active:
            continue
        if pid != os.getpid() and _pid_alive(pid):
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
    """Writes one window's project to its recovery file while it has unsaved changes."""

    def __init__(self, window, interval_ms: int = AUTOSAVE_MS):
        super().__init__(window)
        self.window = window
        self.path = appdata.recovery_dir() / f"{os.getpid()}-{next(_counter)}{SUFFIX}"
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        self._saved_generation = -1
        self.writes = 0

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
