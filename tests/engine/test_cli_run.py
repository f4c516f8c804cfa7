"""`python main.py run`: the CLI handler module (wired into main.py by the lead)."""

import argparse

import pytest

from engine.cli_run import parse_duration, register
from engine.errors import ParameterError, SynweaveError
from engine.runner import SimulationResults


def make_parser():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("text, ms", [("1s", 1000.0), ("250ms", 250.0), ("500", 500.0), (" 0.5 min", 30000.0),
                                      ("1e3", 1000.0)])
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["abc", "-1s", "0", "1 h"])
def test_parse_duration_errors(text):
    with pytest.raises(ParameterError):
        parse_duration(text)


def test_run_cuba_example(tmp_path, capsys):
    from engine.project import example_projects

    path = next(p for p in example_projects() if p.name == "cuba.swproj")
    out = tmp_path / "r.npz"
    args = make_parser().parse_args(["run", str(path), "--duration", "100ms", "--seed", "4", "--out", str(out),
                                     "--dtype", "float64"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "spikes recorded" in captured.out and "mean rate" in captured.out
    assert "run" in captured.err  # progress bar on stderr
    res = SimulationResults.load(out)
    assert res.n_steps == 1000 and res.settings["seed"] == 4 and res.settings["dtype"] == "float64"
    assert sum(s.size for s, _ in res.spikes.values()) > 0


def test_run_missing_file_is_a_user_error(tmp_path):
    args = make_parser().parse_args(["run", str(tmp_path / "nope.swproj")])
    with pytest.raises(SynweaveError):
        args.func(args)
