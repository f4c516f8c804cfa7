"""``board`` command line: list serial ports, serve a virtual NeuroCoreX board.

The main CLI calls :func:`register` with its argparse subparsers; every handler returns an exit
code and raises :class:`engine.errors.SynweaveError` subclasses for user errors. The module also
runs on its own: ``python -m hardware.cli board emulate --fast``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from engine.errors import ParameterError, SynweaveError
from hardware.neurocorex.virtual_board import FAULT_KINDS, FAULT_TARGETS, VirtualBoard


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``board`` command (with ``list`` and ``emulate``) to an argparse subparsers object.

    Returns
    -------
    argparse.ArgumentParser
        The ``board`` parser.
    """
    board = subparsers.add_parser(
        "board",
        help="NeuroCoreX FPGA board: list serial ports, run a virtual board",
        description="Work with NeuroCoreX boards (Digilent Cmod A7) over their USB serial port.",
    )
    board.set_defaults(func=lambda args: _print_help(board))
    commands = board.add_subparsers(dest="board_command", metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        help="list serial ports and flag likely NeuroCoreX boards",
        description="List serial ports with their USB ids; FTDI 0403:6010 (Digilent) ports are flagged. "
                    "Use the port marked 'yes (UART)'.",
    )
    listing.set_defaults(func=cmd_list)

    emulate = commands.add_parser(
        "emulate",
        help="serve a virtual board on a pseudo-terminal (prints its device path)",
        description="Start a virtual NeuroCoreX board (the bit-exact digital twin behind a pseudo-terminal) "
                    "and print its device path on stdout; connect to it like to a real board. Serves "
                    "until Ctrl-C or --seconds.",
    )
    emulate.add_argument("--fast", action="store_true",
                         help="answer at once instead of with the board's timing (0.96 ms per timestep)")
    emulate.add_argument("--seconds", type=float, default=None, metavar="N",
                         help="stop after N seconds (default: run until Ctrl-C)")
    faults = emulate.add_argument_group(
        "fault injection", "rehearse failures: break one answer of the virtual board")
    faults.add_argument("--fault", choices=FAULT_KINDS, default=None,
                        help="disconnect: close the port (a pulled cable); silent: stop answering "
                             "(a hung FPGA); garbage: random bytes instead of the answer; truncate: "
                             "cut the answer short, the board keeps working")
    faults.add_argument("--fault-on", choices=FAULT_TARGETS, default="run",
                        help="which answer to break: a run's spike stream (default) or a weight read-back")
    faults.add_argument("--fault-after", type=int, default=0, metavar="BYTES",
                        help="bytes of that answer sent intact first (for a run the 0xFF marker counts)")
    faults.add_argument("--fault-skip", type=int, default=0, metavar="N",
                        help="answers of that kind served intact before the broken one (default 0: "
                             "the first; a deploy reads the weights back once before its first run)")
    emulate.set_defaults(func=cmd_emulate)
    return board


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_list(args: argparse.Namespace) -> int:
    """``board list``: print a table of serial ports."""
    from hardware.neurocorex.discovery import emulated_board_ports, format_ports_table, list_ports

    ports = list_ports()
    virtual = emulated_board_ports()
    if ports:
        print(format_ports_table(ports))
    elif not virtual:
        print("no serial ports found; plug in the board (or use `board emulate` for a virtual one)")
    for path in virtual:
        print(f"{path}  virtual NeuroCoreX board (served by `board emulate`)")
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    """``board emulate``: serve a virtual board until Ctrl-C, SIGTERM or ``--seconds``."""
    seconds = args.seconds
    if seconds is not None and not seconds > 0:
        raise ParameterError("seconds", f"must be a positive number of seconds; got {seconds:g}")
    fault = getattr(args, "fault", None)
    for name in ("fault_after", "fault_skip"):
        if getattr(args, name, 0) < 0:
            raise ParameterError(name.replace("_", "-"), f"must be 0 or more; got {getattr(args, name)}")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # `kill`, a terminating test harness or a service manager: stop cleanly like on Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    board = VirtualBoard(fast=args.fast)
    if fault:
        board.inject_fault(fault, args.fault_on, args.fault_after, args.fault_skip)
    board.start()
    mode = "fast" if args.fast else "real timing"
    print(board.device_path, flush=True)  # alone on stdout, so scripts can read it
    print(f"virtual NeuroCoreX board ({mode}) at {board.device_path}; Ctrl-C to stop", file=sys.stderr, flush=True)
    if fault:
        which = "run" if args.fault_on == "run" else "read-back"
        print(f"fault armed: {fault} in {which} {args.fault_skip + 1} after {args.fault_after} intact "
              "byte(s)", file=sys.stderr, flush=True)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop.is_set() and board.running and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    if board.error is not None:
        raise SynweaveError(f"the virtual board stopped unexpectedly: {board.error!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the application's main CLI wires :func:`register` itself)."""
    parser = argparse.ArgumentParser(prog="python -m hardware.cli")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except SynweaveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
