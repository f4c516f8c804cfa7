"""An SVG picture of the model graph, drawn headlessly (no Qt) with the canvas's geometry.

Nodes sit at their canvas positions with the canvas's sizes (title bar in the category colour,
one row per port, the parameter summary below), ports are circles in their kind's colour, wires
are the canvas's horizontal cubic Béziers from an output port to an input port, and groups are
titled frames. Text widths are estimated from the font size (the canvas measures them with Qt),
so a long label may be a few pixels wider or narrower than on screen.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

from engine.exporters import ExportReport, write_atomic

# Node geometry of the canvas (app/canvas.py imports it from here: engine/ may not import Qt).
NODE_MIN_WIDTH = 188.0
NODE_MAX_WIDTH = 300.0
TITLE_H = 26.0
ROW_H = 20.0
SUMMARY_LINE_H = 15.0
PORT_R = 6.0
CORNER = 7.0
GROUP_PAD = 26.0
GROUP_TITLE_H = 28.0
COMMENT_WIDTH = 260.0
#: average advance of one character at the canvas's fonts (title 12 px bold, body 11 px, small 10 px)
CHAR_W = {"title": 7.4, "body": 6.4, "small": 5.8}

THEME = {"background": "#1e2126", "body": "#2b3038", "border": "#4a525e", "text": "#e8eaed",
         "muted": "#a8b0bb", "comment": "#3a3f2c", "comment_text": "#e8e2b8"}


def node_geometry(node) -> tuple[float, float, float, list[str]]:
    """``(width, height, summary_top, summary_lines)`` of a node as the canvas draws it."""
    text = node.summary_text()
    summary = [t for t in text.split(" · ") if t] if text else []
    ins, outs = node.inputs(), node.outputs()
    widest_in = max([len(p.name) * CHAR_W["body"] for p in ins] + [0])
    widest_out = max([len(p.name) * CHAR_W["body"] for p in outs] + [0])
    type_w = len(node.title) * CHAR_W["small"] if node.title != node.label else 0
    want = max(NODE_MIN_WIDTH, len(node.label) * CHAR_W["title"] + type_w + 48, widest_in + widest_out + 56,
               max([len(t) * CHAR_W["small"] for t in summary] + [0]) + 28)
    width = min(NODE_MAX_WIDTH, math.ceil(want / 4) * 4)
    rows = max(len(ins), len(outs), 1)
    summary_top = TITLE_H + rows * ROW_H + 8
    height = summary_top + (len(summary) * SUMMARY_LINE_H + 10 if summary else 0)
    return float(width), float(height), float(summary_top), summary


def port_position(node, port_name: str, direction: str) -> tuple[float, float]:
    """Scene position of a port's centre."""
    width = node_geometry(node)[0]
    ports = node.inputs() if direction == "in" else node.outputs()
    i = next(k for k, p in enumerate(ports) if p.name == port_name)
    x = node.position[0] + (0.0 if direction == "in" else width)
    return x, node.position[1] + TITLE_H + 4 + ROW_H * (i + 0.5)


def wire_path(a: tuple[float, float], b: tuple[float, float]) -> str:
    """The canvas's wire: a cubic Bézier leaving and entering its ports horizontally."""
    dx = max(50.0, abs(b[0] - a[0]) * 0.5)
    return (f"M {a[0]:.1f} {a[1]:.1f} C {a[0] + dx:.1f} {a[1]:.1f} {b[0] - dx:.1f} {b[1]:.1f} "
            f"{b[0]:.1f} {b[1]:.1f}")


def _t(text: str) -> str:
    return escape(str(text), {'"': "&quot;"})


def render_svg(project) -> str:
    """The SVG document of ``project``'s model graph."""
    graph = project.graph
    parts: list[str] = []
    boxes = []
    geometry = {nid: node_geometry(n) for nid, n in graph.nodes.items()}
    # groups behind everything
    for grp in graph.groups.values():
        members = [graph.node(m) for m in grp.members if m in graph]
        if not members:
            continue
        x0 = min(m.position[0] for m in members) - GROUP_PAD
        y0 = min(m.position[1] for m in members) - GROUP_PAD - GROUP_TITLE_H
        x1 = max(m.position[0] + geometry[m.id][0] for m in members) + GROUP_PAD
        y1 = max(m.position[1] + geometry[m.id][1] for m in members) + GROUP_PAD
        boxes.append((x0, y0, x1, y1))
        parts.append(f'<g class="group" id="{_t(grp.id)}">'
                     f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="10" '
                     f'fill="{_t(grp.colour)}" fill-opacity="0.18" stroke="{_t(grp.colour)}"/>'
                     f'<text x="{x0 + 12:.1f}" y="{y0 + 19:.1f}" class="group-title">{_t(grp.title)}</text></g>')
    # wires below nodes
    for e in graph.edges:
        src, dst = graph.node(e.src), graph.node(e.dst)
        a, b = port_position(src, e.src_port, "out"), port_position(dst, e.dst_port, "in")
        colour = src.port(e.src_port, "out").kind.colour
        dx = max(50.0, abs(b[0] - a[0]) * 0.5)  # a backward wire bulges past its ends
        boxes.append((min(a[0], b[0], b[0] - dx * 0.75), min(a[1], b[1]), max(a[0], b[0], a[0] + dx * 0.75),
                      max(a[1], b[1])))
        parts.append(f'<path class="wire" data-src="{_t(e.src)}.{_t(e.src_port)}" '
                     f'data-dst="{_t(e.dst)}.{_t(e.dst_port)}" d="{wire_path(a, b)}" stroke="{colour}" '
                     f'stroke-width="2" fill="none"/>')
    for nid, node in graph.nodes.items():
        width, height, summary_top, summary = geometry[nid]
        x, y = node.position
        boxes.append((x - PORT_R, y, x + width + PORT_R, y + height))
        colour = node.category.colour
        g = [f'<g class="node" id="{_t(nid)}" transform="translate({x:.1f},{y:.1f})">',
             f'<rect width="{width:.1f}" height="{height:.1f}" rx="{CORNER}" fill="{THEME["body"]}" '
             f'stroke="{THEME["border"]}"/>',
             f'<path d="M 0 {TITLE_H} V {CORNER} Q 0 0 {CORNER} 0 H {width - CORNER:.1f} Q {width:.1f} 0 '
             f'{width:.1f} {CORNER} V {TITLE_H} Z" fill="{colour}"/>',
             f'<text x="10" y="17.5" class="title">{_t(node.label)}</text>']
        if node.title != node.label:
            g.append(f'<text x="{width - 8:.1f}" y="17" class="type" text-anchor="end">{_t(node.title)}</text>')
        for direction, ports in (("in", node.inputs()), ("out", node.outputs())):
            for i, port in enumerate(ports):
                py = TITLE_H + 4 + ROW_H * (i + 0.5)
                px = 0.0 if direction == "in" else width
                g.append(f'<circle class="port port-{direction}" data-port="{_t(port.name)}" cx="{px:.1f}" '
                         f'cy="{py:.1f}" r="{PORT_R}" fill="{port.kind.colour}" stroke="{THEME["background"]}"/>')
                tx, anchor = (PORT_R + 8, "start") if direction == "in" else (width - PORT_R - 8, "end")
                g.append(f'<text x="{tx:.1f}" y="{py + 4:.1f}" class="port-name" text-anchor="{anchor}">'
                         f'{_t(port.name)}</text>')
        for i, line in enumerate(summary):
            g.append(f'<text x="12" y="{summary_top + 11 + i * SUMMARY_LINE_H:.1f}" class="summary">'
                     f'{_t(line)}</text>')
        g.append("</g>")
        parts.append("".join(g))
    for c in graph.comments.values():
        lines = _wrap(c.text, int((COMMENT_WIDTH - 24) / CHAR_W["body"]))
        h = 22 + 15 * len(lines)
        x, y = c.position
        boxes.append((x, y, x + COMMENT_WIDTH, y + h))
        texts = "".join(f'<text x="12" y="{24 + 15 * i}" class="comment-text">{_t(t)}</text>'
                        for i, t in enumerate(lines))
        parts.append(f'<g class="comment" transform="translate({x:.1f},{y:.1f})">'
                     f'<rect width="{COMMENT_WIDTH}" height="{h}" rx="4" fill="{THEME["comment"]}"/>{texts}</g>')
    if boxes:
        x0 = min(b[0] for b in boxes) - 20
        y0 = min(b[1] for b in boxes) - 20
        x1 = max(b[2] for b in boxes) + 20
        y1 = max(b[3] for b in boxes) + 20
    else:
        x0, y0, x1, y1 = 0.0, 0.0, 200.0, 100.0
    w, h = x1 - x0, y1 - y0
    style = (f"text{{font-family:'DejaVu Sans',Arial,sans-serif;fill:{THEME['text']}}}"
             ".title{font-size:12px;font-weight:bold;fill:#ffffff}"
             f".type{{font-size:10px;fill:#ffffff;fill-opacity:0.8}}.port-name{{font-size:11px}}"
             f".summary{{font-size:10px;fill:{THEME['muted']}}}.group-title{{font-size:13px;font-weight:bold}}"
             f".comment-text{{font-size:11px;fill:{THEME['comment_text']}}}")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="{x0:.1f} {y0:.1f} {w:.1f} {h:.1f}">\n'
            f'<title>{_t(project.name)}</title>\n<style>{style}</style>\n'
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{THEME["background"]}"/>\n'
            + "\n".join(parts) + "\n</svg>\n")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return [line for para in text.splitlines() for line in (textwrap.wrap(para, max(10, width)) or [""])]


def export_svg(project, out: Path, **_ignored) -> ExportReport:
    """Write the picture of ``project``'s model graph to ``out`` (.svg)."""
    report = ExportReport("SVG")
    text = render_svg(project)
    write_atomic(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    report.written.append(Path(out))
    report.note("picture", f"{len(project.graph)} nodes, {len(project.graph.edges)} wires; text widths "
                           "are estimated, so labels may differ by a few pixels from the canvas")
    return report
