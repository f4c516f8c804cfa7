"""Test-wide settings: headless Qt, deterministic hashing-free runs."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
