"""Work around a reference-count bug of PySide6 6.12 on Python 3.11.

PySide6 6.12.0 returns ``None`` from every C++ ``void`` method without taking a reference to it
(harmless on Python >= 3.12, where ``None`` is immortal; PEP 683). On Python 3.11 each call
drops ``None``'s count by one, and after a few thousand paint calls the interpreter aborts with
"Fatal Python error: none_dealloc". The designer makes millions of such calls (every
``QPainter.setPen`` ...), so we give ``None`` the immortality 3.12 gives it: a count so large it can
never reach zero. ``None`` is never freed in a healthy program, so nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 52


def make_none_immortal() -> bool:
    """Raise the reference counts of ``None``, ``True`` and ``False`` far out of reach.

    (CPython < 3.12 release builds only; the same bug class shows for the two booleans at exit.)
    """
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if hasattr(sys, "gettotalrefcount"):  # debug build: ob_refcnt is not the first field
        return False
    for singleton in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(singleton))
        if refcnt.value < _HEADROOM:
            refcnt.value += _HEADROOM
    return True
