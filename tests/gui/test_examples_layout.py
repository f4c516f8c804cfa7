"""The bundled examples are laid out so that no two nodes overlap as the canvas draws them."""

import itertools

import pytest

from engine.project import Project, example_projects


@pytest.mark.parametrize("path", example_projects(), ids=lambda p: p.stem)
def test_example_nodes_do_not_overlap(path, qapp):
    from app.canvas import node_geometry

    nodes = list(Project.load(path).graph.nodes.values())
    boxes = {}
    for node in nodes:
        w, h, _ = node_geometry(node)
        x, y = node.position
        boxes[node.label] = (x, y, x + w, y + h)
    overlaps = [(a, b) for (a, ra), (b, rb) in itertools.combinations(boxes.items(), 2)
                if ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]]
    assert overlaps == []
