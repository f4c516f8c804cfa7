#!/usr/bin/env python3
"""The C. elegans connectome of the PyPI package ``cect`` as an edge list for ``main.py import``.

``cect`` itself is not installed: it pins ``numpy<2.4`` (ours is newer) and pulls in pyNeuroML,
wormneuroatlas, hiveplotlib and plotly. Its wheel (MIT licence) ships the data files, and this
script reads one straight out of the wheel (a zip file) or an unpacked copy:

    pip download cect --no-deps -d /tmp/cect            # the wheel only, nothing installed
    python scripts/cect_connectome.py /tmp/cect/cect-*.whl --out celegans_edges.csv
    python main.py import celegans_edges.csv --out celegans.swproj

The data set is ``cect/data/aconnectome_white_1986_whole.csv`` (White et al. 1986, the whole
animal; tab-separated ``pre post type synapses``). Chemical synapses become one synapse each with
weight ``synapses x --weight`` (mV: the imported LIF has delta synapses; all excitatory, as the
file has no transmitter signs); electrical synapses (gap junctions) have no counterpart in Synweave
and are counted, not converted. Neuron names, in index order, go to ``<out>_neurons.txt``. With
cect 0.3.5: 309 cells, 2,386 chemical connections, 575 electrical entries.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

DATA = "cect/data/aconnectome_white_1986_whole.csv"


def read_white_1986(source: Path) -> str:
    """The text of the White et al. 1986 table from a cect wheel or an unpacked cect directory."""
    if source.is_dir():
        path = source / DATA
        if not path.is_file():
            path = source / DATA.split("/", 1)[1]  # the package folder itself
        return path.read_text(encoding="utf-8")
    try:
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(DATA).decode("utf-8")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise SystemExit(f"{source}: not a cect wheel holding {DATA} ({exc})") from None


def edge_list(text: str, weight: float) -> tuple[list[str], list[tuple[int, int, float]], int]:
    """(neuron names, chemical edges ``(pre, post, weight)``, number of electrical entries skipped)."""
    rows = [ln.split("\t") for ln in text.splitlines() if ln.strip()]
    header = [c.strip().lower() for c in rows[0]]
    if header[:4] != ["pre", "post", "type", "synapses"]:
        raise SystemExit(f"unexpected columns {rows[0]} (expected pre, post, type, synapses)")
    rows = [[c.strip() for c in r] for r in rows[1:]]
    names = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    edges, electrical = [], 0
    for pre, post, kind, count in rows:
        if kind == "electrical":
            electrical += 1
        elif kind == "chemical":
            edges.append((index[pre], index[post], float(count) * weight))
        else:
            raise SystemExit(f"unknown synapse type {kind!r} ({pre} -> {post})")
    return names, edges, electrical


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="cect wheel (.whl) or unpacked cect directory")
    parser.add_argument("--out", type=Path, default=Path("celegans_edges.csv"), help="edge list to write (.csv)")
    parser.add_argument("--weight", type=float, default=1.0, help="weight per chemical synapse (mV)")
    args = parser.parse_args(argv)
    names, edges, electrical = edge_list(read_white_1986(args.source), args.weight)
    args.out.write_text("pre,post,weight\n" + "".join(f"{a},{b},{w:g}\n" for a, b, w in edges), encoding="utf-8")
    args.out.with_name(args.out.stem + "_neurons.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"{len(names)} neurons, {len(edges)} chemical connections -> {args.out}; "
          f"{electrical} electrical (gap-junction) entries not converted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
