"""Learned weights back into a project: the next run starts where this one ended.

Each plastic projection node is rewritten to ``connectivity = from_file`` with a connection list
(``pre``, ``post``, ``weight``, ``delay`` in ms, ``.npz``) written next to the new project file, so
the copy runs anywhere without the original run. The original project is not modified.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from engine.errors import ParameterError


def save_learned_weights(project, sim, out_path) -> list[Path]:
    """Write ``out_path`` (a project copy) and one ``<stem>_<node>_weights.npz`` per plastic projection.

    Returns the connection files written. A projection node with several target populations cannot
    hold one connection list per target and is refused with a clear message.
    """
    from engine.project import Project

    out_path = Path(out_path)
    if out_path.suffix != ".swproj":
        raise ParameterError("save_weights", f"{str(out_path)!r}: give the project copy a .swproj name")
    copy = Project.loads(project.dumps(), path=project.path)
    plan, dt = sim.plan, sim.plan.dt
    learned = sim.final_weights()  # projection name -> weights, for every projection that learned
    by_node: dict[str, list] = {}
    for proj in plan.projections:
        if proj.name in learned:
            by_node.setdefault(proj.name.split("->")[0], []).append(proj)
    written = []
    for node_id, projs in by_node.items():
        node = copy.graph.nodes[node_id]
        if len(projs) > 1:
            raise ParameterError("save_weights", f"projection {node.label!r} targets {len(projs)} populations; "
                                 "learned weights can only be written for a single target", node=node.label)
        proj = projs[0]
        weights = np.asarray(learned[proj.name], np.float64)
        target = out_path.with_name(f"{out_path.stem}_{node_id}_weights.npz")
        write_connection_file(target, proj.pre_indices(), proj.indices, weights, proj.delays.astype(np.float64) * dt)
        node.set("connectivity", "from_file")
        node.set("file", target.name)
        written.append(target)
    copy.save(out_path)
    return written


def write_connection_file(path: Path, pre, post, weight, delay_ms) -> None:
    """A connection list (``pre``, ``post``, ``weight``, ``delay`` in ms) as an ``.npz`` that a
    projection with ``connectivity = from_file`` reads; written atomically."""
    _atomic_npz(Path(path), pre=np.asarray(pre, np.int64), post=np.asarray(post, np.int64),
                weight=np.asarray(weight, np.float64), delay=np.asarray(delay_ms, np.float64))


def _atomic_npz(path: Path, **arrays) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
