"""Dark and light themes: a QSS style sheet per theme plus the colours the canvas paints with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLES_DIR = Path(__file__).resolve().parent.parent / "resources" / "styles"
ICONS_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
THEMES = ("dark", "light")


@dataclass(frozen=True)
class CanvasColours:
    background: str
    grid_minor: str
    grid_major: str
    node_body: str
    node_border: str
    node_selected: str
    node_text: str
    node_subtext: str
    port_label: str
    wire_shadow: str
    group_fill_alpha: int
    comment_fill: str
    comment_text: str
    highlight: str
    refused: str
    plot_background: str
    plot_foreground: str


CANVAS = {
    "dark": CanvasColours(
        background="#1d2025", grid_minor="#24282e", grid_major="#2c3138", node_body="#2b2f36",
        node_border="#15171b", node_selected="#f5a623", node_text="#eef1f5", node_subtext="#9aa4b1",
        port_label="#c3cad4", wire_shadow="#101215", group_fill_alpha=38, comment_fill="#3a3f2c",
        comment_text="#e8e6c8", highlight="#7fe0a0", refused="#ff5c5c",
        plot_background="#181b20", plot_foreground="#c3cad4"),
    "light": CanvasColours(
        background="#eef0f3", grid_minor="#e4e7eb", grid_major="#d7dbe1", node_body="#ffffff",
        node_border="#aab2bd", node_selected="#e8890c", node_text="#1d232b", node_subtext="#5d6875",
        port_label="#3c4551", wire_shadow="#c9ced6", group_fill_alpha=22, comment_fill="#fff7c2",
        comment_text="#4a4220", highlight="#1f9d55", refused="#d92d2d",
        plot_background="#ffffff", plot_foreground="#333a44"),
}


def colours(theme: str) -> CanvasColours:
    return CANVAS.get(theme, CANVAS["dark"])


def style_sheet(theme: str) -> str:
    path = STYLES_DIR / f"{theme}.qss"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    return text.replace("@ICONS@", ICONS_DIR.as_posix())


def _palette(theme: str) -> QPalette:
    pal = QPalette()
    if theme == "dark":
        base, window, text, button, hl = "#1f2227", "#262a30", "#e3e7ed", "#2e333a", "#3d7bd9"
        disabled = "#6b7380"
    else:
        base, window, text, button, hl = "#ffffff", "#f3f4f6", "#1d232b", "#e9ecf0", "#2f6fd0"
        disabled = "#9aa3ae"
    R = QPalette.ColorRole
    pal.setColor(R.Window, QColor(window))
    pal.setColor(R.WindowText, QColor(text))
    pal.setColor(R.Base, QColor(base))
    pal.setColor(R.AlternateBase, QColor(window))
    pal.setColor(R.Text, QColor(text))
    pal.setColor(R.Button, QColor(button))
    pal.setColor(R.ButtonText, QColor(text))
    pal.setColor(R.Highlight, QColor(hl))
    pal.setColor(R.HighlightedText, QColor("#ffffff"))
    pal.setColor(R.ToolTipBase, QColor(window))
    pal.setColor(R.ToolTipText, QColor(text))
    pal.setColor(R.PlaceholderText, QColor(disabled))
    for role in (R.Text, R.WindowText, R.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return pal


def apply_theme(theme: str, app: QApplication | None = None) -> None:
    app = app or QApplication.instance()
    if app is None:
        return
    if theme not in THEMES:
        theme = "dark"
    app.setStyle("Fusion")
    app.setPalette(_palette(theme))
    app.setStyleSheet(style_sheet(theme))
    app.setProperty("synweave_theme", theme)


def current_theme() -> str:
    app = QApplication.instance()
    theme = app.property("synweave_theme") if app else None
    return theme if theme in THEMES else "dark"
