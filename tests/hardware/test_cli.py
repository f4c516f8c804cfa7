"""The ``board`` command line: argparse wiring, ``board list``, ``board emulate`` as a subprocess."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import SynweaveError
from hardware import cli
from hardware.neurocorex.driver import NeuroCoreXDriver

from . import _vectors

REPO = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synweave")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_register_adds_board_list_and_emulate():
    parser = build_parser()
    args = parser.parse_args(["board", "emulate", "--fast", "--seconds", "2"])
    assert args.func is cli.cmd_emulate and args.fast and args.seconds == 2.0
    args = parser.parse_args(["board", "list"])
    assert args.func is cli.cmd_list
    args = parser.parse_args(["board"])
    assert args.func(args) == 2  # prints the board help


def test_board_list_prints_a_table_or_says_none(capsys):
    args = build_parser().parse_args(["board", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "DEVICE" in out or "no serial ports found" in out


def test_emulate_rejects_a_non_positive_duration():
    args = build_parser().parse_args(["board", "emulate", "--seconds", "0"])
    with pytest.raises(SynweaveError, match="seconds"):
        args.func(args)


def start_emulator(*extra: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "hardware.cli", "board", "emulate", *extra], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = proc.stdout.readline().strip()
    assert path.startswith("/dev/"), (path, proc.stderr.read() if proc.poll() is not None else "")
    return proc, path


def test_emulate_fast_subprocess_serves_the_driver_until_terminated():
    proc, path = start_emulator("--fast")
    try:
        with NeuroCoreXDriver(path, timeout=1.0) as driver:
            image = _vectors.scratch_image()
            driver.upload(image)
            driver.verify_ff()
            assert driver.run(_vectors.load("tiny").runs[0]).spikes() == [(2, 4), (4, 6), (5, 4), (7, 6)]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=5)
        finally:
            proc.kill()
    assert code == 0
    assert not os.path.exists(path)


def test_emulate_stops_by_itself_after_seconds():
    proc, _ = start_emulator("--fast", "--seconds", "0.3")
    start = time.monotonic()
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - start < 3


def test_board_list_shows_boards_served_by_board_emulate(capsys):
    proc, path = start_emulator("--fast")
    try:
        args = build_parser().parse_args(["board", "list"])
        assert args.func(args) == 0
        out = capsys.readouterr().out
        assert f"{path}  virtual NeuroCoreX board (served by `board emulate`)" in out.splitlines()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)


def test_emulate_fault_options_are_parsed_and_checked():
    args = build_parser().parse_args(["board", "emulate", "--fault", "truncate", "--fault-on", "readback",
                                      "--fault-after", "100", "--fault-skip", "2"])
    assert (args.fault, args.fault_on, args.fault_after, args.fault_skip) == ("truncate", "readback", 100, 2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["board", "emulate", "--fault", "melt"])
    args = build_parser().parse_args(["board", "emulate", "--fault", "silent", "--fault-after", "-1"])
    with pytest.raises(SynweaveError, match="fault-after"):
        args.func(args)


@pytest.mark.parametrize("skip", [0, 1])
def test_emulate_with_a_fault_breaks_the_chosen_answer(skip):
    from hardware.errors import BoardTimeoutError

    proc, path = start_emulator("--fast", "--fault", "truncate", "--fault-after", "20", "--fault-skip", str(skip))
    tiny = _vectors.load("tiny").runs[0]
    try:
        with NeuroCoreXDriver(path, timeout=0.5) as driver:
            driver.upload(_vectors.scratch_image())
            for _ in range(skip):
                assert driver.run(tiny).spikes() == [(2, 4), (4, 6), (5, 4), (7, 6)]  # served intact
            with pytest.raises(BoardTimeoutError, match=r"stopped after 19 of 112 bytes"):
                driver.run(tiny)
        assert "fault armed: truncate in run" in proc.stderr.readline() + proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
