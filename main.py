"""Synweave command line.

    python main.py                     open the designer (with an example project on first start)
    python main.py FILE.swproj         open a project in the designer
    python main.py validate FILE       list every problem of a project
    python main.py info FILE           populations, neurons, synapses and a memory estimate
    python main.py nodes [--markdown]  the node catalogue with parameters and units
    python main.py run FILE ...        simulate headless (see `run --help`)
    python main.py train FILE ...      train a LIF chain with surrogate gradients (see `train --help`)
    python main.py export FILE ...     export to NIR, NEST, GraphML ... (see `export --help`)
    python main.py deploy FILE ...     deploy to a NeuroCoreX board (see `deploy --help`)
    python main.py board ...           list boards, or emulate one on a pseudo-terminal

User mistakes print one clear message on stderr and exit with status 1 (2 for bad arguments);
they never print a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# Subcommands contributed by other modules: each has ``register(subparsers)``.
COMMAND_MODULES = ("engine.cli_run", "engine.cli_train", "engine.cli_export", "hardware.cli", "hardware.deploy")


def _load_project(path: str):
    from engine.project import Project

    return Project.load(path)


def cmd_validate(args) -> int:
    from engine.validate import validate_project

    project = _load_project(args.file)
    problems = validate_project(project)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(p)
    print(f"{args.file}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return 1 if errors else 0


def cmd_info(args) -> int:
    from engine.info import summarize

    project = _load_project(args.file)
    print(f"{project.name}  ({args.file})")
    s = project.settings
    print(f"dt {s.dt:g} ms, duration {s.duration:g} ms, backend {s.backend}, {s.dtype}, seed {s.seed}")
    for line in summarize(project).lines():
        print(line)
    return 0


def catalogue_table(markdown: bool = False) -> str:
    import nodes

    out: list[str] = []
    if markdown:
        out.append("# Synweave node catalogue\n")
    for cls in nodes.all_node_types():
        ports = ", ".join(f"{p.direction}:{p.name} ({p.kind.value}{', many' if p.multiple else ''}"
                          f"{', required' if p.required else ''})" for p in cls.ports)
        if markdown:
            out.append(f"## {cls.title} — `{cls.type_id}` ({cls.category.value})\n")
            out.append("```\n" + cls.doc() + "\n```\n")
            out.append(f"Ports: {ports}\n")
            out.append("| parameter | unit | default | valid | description |")
            out.append("|---|---|---|---|---|")
            for name, p in cls.params.items():
                out.append(f"| `{name}` | {p.unit_text() or '-'} | `{p.to_json(p.default)!r}` | "
                           f"{p.describe()} | {p.doc} |")
            out.append("")
        else:
            out.append(f"{cls.type_id:<32} {cls.title}  [{cls.category.value}]")
            out.append(f"    {cls.doc_line()}")
            out.append(f"    ports: {ports}")
            for name, p in cls.params.items():
                default = p.to_json(p.default)
                unit = p.unit_text() or "-"
                out.append(f"    {name:<18} {unit:<9} default {default!r:<22} {p.describe():<24} {p.doc}")
            out.append("")
    return "\n".join(out)


def cmd_nodes(args) -> int:
    text = catalogue_table(markdown=args.markdown)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_gui(args) -> int:
    try:
        from app.main_window import run_app
    except ImportError as exc:
        print(f"synweave: the designer cannot start: {exc}. Install the GUI dependencies with "
              "`pip install -e .`", file=sys.stderr)
        return 1
    return run_app(args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synweave", description="Design, simulate and deploy spiking neural networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("gui", help="open the designer (the default without a command)")
    p.add_argument("file", nargs="?", help="project to open")
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("validate", help="list every problem of a project")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("info", help="counts and a memory estimate of a project")
    p.add_argument("file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("nodes", help="the node catalogue with parameters and units")
    p.add_argument("--markdown", action="store_true", help="Markdown instead of a text table")
    p.add_argument("-o", "--output", help="write to a file")
    p.set_defaults(func=cmd_nodes)

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the module exists but a dependency is missing
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine.errors import SynweaveError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (len(argv) == 1 and argv[0].endswith(".swproj")):
        argv = ["gui", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SynweaveError as exc:
        print(f"synweave: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synweave: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
