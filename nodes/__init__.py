"""The node catalogue.

Importing this package registers every node type. Use :func:`node_type` to look one up by its
stable id, :func:`all_node_types` for the palette order, and :func:`create` to make a node.
"""

from nodes.base import (Category, NodeType, Port, PortKind, all_node_types, node_type,  # noqa: F401
                        register)
from nodes import inputs, neurons, synapses, plasticity, modulators, readouts, monitors, training  # noqa: F401,E402


def create(type_id: str, node_id: str = "", label: str = "", position=(0.0, 0.0), **values) -> NodeType:
    """Instantiate a node of the catalogue with validated parameter values."""
    return node_type(type_id)(node_id, label, position, **values)
