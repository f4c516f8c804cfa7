"""The Synweave designer (PySide6). The only package of Synweave that imports Qt."""

from app._pyside_fix import make_none_immortal

make_none_immortal()
