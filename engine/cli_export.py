"""``python main.py export FILE --format graphml|svg|csv|npz|nir|nest``: headless export.

Prints what was written and the export report (everything the format cannot carry, per node, and
every conversion applied). User mistakes raise :class:`engine.errors.SynweaveError` subclasses,
which ``main`` prints as one line without a traceback.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ExportError

EPILOG = """examples:
  python main.py export resources/examples/cuba.swproj --format graphml
  python main.py export resources/examples/cuba.swproj --format graphml --what connectome --out cuba_net.graphml
  python main.py export resources/examples/cuba.swproj --format svg
  python main.py run resources/examples/cuba.swproj --duration 200ms --out r.npz
  python main.py export resources/examples/cuba.swproj --format csv --results r.npz --out cuba_csv
  python main.py export resources/examples/cuba.swproj --format nir
  python main.py export resources/examples/cuba.swproj --format nest --duration 1s
  python main.py import cuba.nir --out cuba_from_nir.swproj
"""


def handler(args) -> int:
    from engine.cli_run import parse_duration
    from engine.exporters import FORMATS, default_output, export

    fmt = args.format
    if Path(args.file).suffix == ".nir":
        raise ExportError(f"{args.file} is a NIR file; turn it into a project with "
                          f"`python main.py import {args.file}`")
    from engine.project import Project

    project = Project.load(args.file)
    out = Path(args.out) if args.out else default_output(project.path, fmt, args.what if fmt == "graphml" else "")
    options: dict = {}
    if fmt == "graphml":
        options["what"] = args.what
    elif args.what != "model":
        raise ExportError("--what applies to --format graphml only")
    for flag, value, formats in (("--results", args.results, ("csv", "npz")),
                                 ("--backend", args.backend, ("csv", "npz")),
                                 ("--duration", args.duration, ("csv", "npz", "nest")),
                                 ("--nir-spikes", args.nir_spikes, ("nir",)),
                                 ("--threads", args.threads, ("nest",))):
        if value is not None and fmt not in formats:
            raise ExportError(f"{flag} applies to --format {'/'.join(formats)} only")
    duration = parse_duration(args.duration) if args.duration else None
    if fmt in ("csv", "npz"):
        options.update(results=args.results, backend=args.backend, duration_ms=duration)
    if fmt == "nir":
        options.update(spikes=args.nir_spikes or "dirac")
    if fmt == "nest":
        if args.threads is not None and args.threads < 1:
            raise ExportError("--threads must be at least 1")
        options.update(duration_ms=duration, threads=args.threads or 1)
    report = export(project, fmt, out, **options)
    print(f"{project.name}: {FORMATS[fmt].title} export")
    for line in report.lines():
        print(line)
    return 0


def import_handler(args) -> int:
    from engine.exporters import import_file

    src = Path(args.file)
    out = Path(args.out) if args.out else src.with_suffix(".swproj")
    project, report, kind = import_file(src, out, dt_ms=args.dt, spikes=args.nir_spikes)
    print(f"{src}: {kind} import -> {project.path}")
    for line in report.lines():
        print(line)
    return 0


def register(subparsers) -> None:
    """Add the ``export`` command to ``main.py``'s subparsers."""
    import argparse

    from engine.exporters import FORMATS

    p = subparsers.add_parser(
        "export", help="export to GraphML, SVG, CSV/npz, NIR or a NEST script",
        description="Export a project headless and print a report of everything the format cannot "
                    "carry.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="project file (.swproj)")
    p.add_argument("--format", required=True, choices=tuple(FORMATS),
                   help="; ".join(f"{k}: {v.description}" for k, v in FORMATS.items()))
    p.add_argument("--out", help="output file (a folder for csv); default: next to FILE")
    p.add_argument("--what", choices=("model", "connectome"), default="model",
                   help="graphml: the model graph (default) or the expanded neurons and synapses")
    p.add_argument("--results", help="csv/npz: a results .npz of `run --out`; default: simulate the project now")
    p.add_argument("--duration", help="csv/npz without --results, nest: model time (e.g. 1s); default: the project's")
    p.add_argument("--backend", help="csv/npz without --results: simulation backend (default: the project's)")
    p.add_argument("--nir-spikes", choices=("dirac", "step"), default=None,
                   help="nir: spikes as Dirac impulses (NIR's continuous time, default) or as one-step "
                        "pulses of height 1 (the discrete-time convention of snnTorch's NIR import)")
    p.add_argument("--threads", type=int, default=None,
                   help="nest: default of the script's --threads (local threads per MPI process), 1 if not given")
    p.set_defaults(func=handler)

    p = subparsers.add_parser("import", help="turn a NIR graph or a connectome (.csv/.npz) into a project",
                              description="Build a project from a NIR file (snnTorch, Norse, ... or our "
                                          "own export) with a readable left-to-right layout, or from a "
                                          "connectome: an edge list (pre,post[,weight[,delay_ms]]) or a "
                                          "square adjacency matrix (row = presynaptic) in .csv or .npz.")
    p.add_argument("file", metavar="FILE", help=".nir graph, or .csv / .npz edge list or adjacency matrix")
    p.add_argument("--out", help="project to write (default: FILE with .swproj); connection lists "
                                 "go next to it")
    p.add_argument("--dt", type=float, default=None,
                   help="time step in ms (NIR: when the file does not record one); default 0.1")
    p.add_argument("--nir-spikes", choices=("dirac", "step"), default=None,
                   help="spike convention of a foreign NIR file (default: as recorded, else dirac)")
    p.set_defaults(func=import_handler)
