"""Test-wide settings: headless Qt, deterministic hashing-free runs."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One general step-loop kernel for the suite's many small networks (one compile instead of one per
# feature set); tests/engine/test_kernel_variants.py runs the per-feature variants against it.
os.environ.setdefault("SYNWEAVE_GENERAL_KERNEL", "1")
