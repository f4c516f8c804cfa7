"""Where the designer keeps its per-user data: preferences, recent files, crash-recovery files.

Everything lives in one folder: ``$SYNWEAVE_DATA_DIR`` when set (tests point it at a temporary
folder), else Qt's ``AppDataLocation``. Preferences are an INI file in that folder rather than the
platform registry, so a test or a portable install never touches the user's real settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

ORG = "Synweave"
APP = "Synweave"
MAX_RECENT = 10


def data_dir() -> Path:
    override = os.environ.get("SYNWEAVE_DATA_DIR")
    if override:
        path = Path(override)
    else:
        location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        path = Path(location) if location else Path.home() / ".synweave"
    path.mkdir(parents=True, exist_ok=True)
    return path


def recovery_dir() -> Path:
    path = data_dir() / "recovery"
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir() -> Path:
    """Checkpoints of training runs started in the designer (one per project)."""
    path = data_dir() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings() -> QSettings:
    return QSettings(str(data_dir() / "synweave.ini"), QSettings.Format.IniFormat)


#: Not "general/...": QSettings' INI format keeps top-level keys in a section named [General]
#: and escapes a group of that name, so a key under "general/" does not read back in a new process.
STARTED_KEY = "startup/started_before"


def is_first_start() -> bool:
    return not settings().value(STARTED_KEY, False, type=bool)


def mark_started() -> None:
    s = settings()
    s.setValue(STARTED_KEY, True)
    s.sync()


def recent_files() -> list[str]:
    value = settings().value("files/recent", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent_file(path: str | Path) -> list[str]:
    path = str(Path(path).resolve())
    files = [path] + [f for f in recent_files() if f != path]
    files = files[:MAX_RECENT]
    s = settings()
    s.setValue("files/recent", files)
    s.sync()
    return files


def clear_recent_files() -> None:
    s = settings()
    s.setValue("files/recent", [])
    s.sync()


def preference(key: str, default=None):
    return settings().value(f"prefs/{key}", default)


def set_preference(key: str, value) -> None:
    s = settings()
    s.setValue(f"prefs/{key}", value)
    s.sync()
