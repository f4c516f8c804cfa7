"""Small widget variants shared by the designer's panels."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QSpinBox


class _WheelNeedsFocus:
    """Mixin: the mouse wheel changes the value only while the widget has focus.

    Scrolling a form with the wheel must not edit the field that happens to pass under the
    pointer; without focus the wheel event is ignored and goes on to the scroll area.
    """

    def _init_focus(self):
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event):
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class FocusWheelComboBox(_WheelNeedsFocus, QComboBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_focus()


class FocusWheelSpinBox(_WheelNeedsFocus, QSpinBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_focus()
