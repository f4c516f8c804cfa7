"""Deploy a project to a NeuroCoreX board and compare the board with its twin and the simulation.

``python main.py deploy FILE --port PORT`` maps the graph (hardware.neurocorex.mapper), uploads
the image with a progress bar, verifies the FF weights by read-back, runs every sample (or the
given inputs), and writes the board's spikes next to the digital twin's and the float
simulation's, with their agreement and, for data-set inputs with a vote readout, the accuracy of
each. A run in which the board's frames differ from the twin's is reported as a warning naming
the step and the neurons (``--strict`` makes it an error: exit status 1). Messages speak in the
model's terms (node labels, neuron and channel indices), never in board slots.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import SynweaveError
from hardware.errors import VerifyError
from hardware.neurocorex import protocol as p
from hardware.neurocorex.mapper import BoardMapping, MapOptions, map_project
from hardware.neurocorex.twin import NeuroCoreXTwin


@dataclass
class Trial:
    """One board run: a data-set sample, or the whole input of a project without data set."""

    source_spikes: dict[str, tuple[np.ndarray, np.ndarray]]
    n_model_steps: int
    label: int | None = None


class ModelNames:
    """Board slots and input addresses of a mapping, named in the model's terms (``Label[i]``)."""

    def __init__(self, project, mapping: BoardMapping) -> None:
        nodes = project.graph.nodes
        self.neuron = {int(k): f"{nodes[pop].label}[{i}]"
                       for pop, slots in mapping.neuron_slots.items() for i, k in enumerate(slots)}
        self.channel = {int(a): f"{nodes[src].label}[{i}]"
                        for src, addresses in mapping.input_addresses.items() for i, a in enumerate(addresses)}

    def neurons(self, slots) -> str:
        """``"Classes[2], Classes[5] and 1 board neuron the model does not use"``, or ``"nothing"``."""
        names = [self.neuron[int(k)] for k in slots if int(k) in self.neuron]
        unused = sum(1 for k in slots if int(k) not in self.neuron)
        if unused:
            names.append(f"{unused} board neuron{'s' if unused > 1 else ''} the model does not use")
        if not names:
            return "nothing"
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def weight(self, row: int, column: int) -> str:
        """What an FF weight RAM entry is in the model, e.g. ``"the weight Digits[3] -> Classes[1]"``."""
        post = self.neuron.get(row - p.FF_ROW_OFFSET)
        pre = self.channel.get(column)
        if post and pre:
            return f"the weight {pre} -> {post}"
        if post:
            return f"an unused input of {post}"
        if pre:
            return f"a weight from {pre} onto a board neuron the model does not use"
        return "a weight the model does not use"


@dataclass
class RunMismatch:
    """A run in which the board's frames differ from the twin's prediction."""

    run: int  # 0-based
    n_runs: int
    label: int | None
    differing_steps: int
    n_steps: int
    board_step: int  # first differing board timestep
    model_step: int | None  # the model step that board step belongs to (None: outside the run)
    board_only: str  # neurons that fired on the board only, in that step (model names)
    twin_only: str

    def __str__(self) -> str:
        sample = f" (sample label {self.label})" if self.label is not None else ""
        when = (f"model step {self.model_step} (board step {self.board_step})" if self.model_step is not None
                else f"board step {self.board_step}")
        return (f"run {self.run + 1} of {self.n_runs}{sample}: the board differs from its twin in "
                f"{self.differing_steps} of {self.n_steps} steps; first at {when}: only the board fired "
                f"{self.board_only}; only the twin fired {self.twin_only}")


def compare_run(board_frames: np.ndarray, twin_frames: np.ndarray, schedule, names: ModelNames,
                run: int, n_runs: int, label: int | None) -> RunMismatch | None:
    """Compare one run's board frames with the twin's; ``None`` when they are identical."""
    board_frames = np.asarray(board_frames, bool)
    twin_frames = np.asarray(twin_frames, bool)
    if board_frames.shape == twin_frames.shape and np.array_equal(board_frames, twin_frames):
        return None
    n = max(len(board_frames), len(twin_frames))  # a cut stream has fewer frames: missing = silent
    board_frames, twin_frames = (np.vstack([f, np.zeros((n - len(f), p.FRAME_BITS), bool)])
                                 for f in (board_frames, twin_frames))
    differs = np.any(board_frames != twin_frames, axis=1)
    step = int(np.argmax(differs))
    model_step = int(np.searchsorted(schedule.board_start, step - 1, side="right") - 1)
    if not 0 <= model_step < schedule.n_model_steps:
        model_step = None
    only_board = np.flatnonzero(board_frames[step] & ~twin_frames[step]) + p.FIRST_NEURON
    only_twin = np.flatnonzero(twin_frames[step] & ~board_frames[step]) + p.FIRST_NEURON
    return RunMismatch(run, n_runs, label, int(differs.sum()), n, step, model_step,
                       names.neurons(only_board), names.neurons(only_twin))


@dataclass
class DeployReport:
    labels: list = field(default_factory=list)
    board_counts: list = field(default_factory=list)  # per trial: spike counts per output neuron
    twin_counts: list = field(default_factory=list)
    float_counts: list = field(default_factory=list)
    board_spikes: list = field(default_factory=list)  # per trial: (model step, neuron) arrays per population
    twin_spikes: list = field(default_factory=list)
    float_spikes: list = field(default_factory=list)
    frame_agreement: list = field(default_factory=list)  # board vs twin frames identical (bool)
    mismatches: list = field(default_factory=list)  # RunMismatch of every run that differed
    readback: np.ndarray | None = None  # FF weights read back after the runs (when STDP is on)

    def accuracy(self, counts) -> float | None:
        if not self.labels or self.labels[0] is None:
            return None
        predictions = [int(np.argmax(c)) if np.any(c) else -1 for c in counts]
        return float(np.mean([pr == lab for pr, lab in zip(predictions, self.labels)]))

    def summary(self) -> list[str]:
        n = len(self.board_counts)
        lines = [f"trials {n}; board and twin frames identical in "
                 f"{sum(self.frame_agreement)}/{n} runs"]
        b, f = np.array(self.board_counts, float), np.array(self.float_counts, float)
        if b.size and f.size and b.std() > 0 and f.std() > 0:
            lines.append(f"spike-count correlation board vs float simulation: "
                         f"{np.corrcoef(b.ravel(), f.ravel())[0, 1]:.3f}")
        acc = [(name, self.accuracy(c)) for name, c in (("board", self.board_counts),
                                                        ("twin", self.twin_counts),
                                                        ("float", self.float_counts)) if len(c)]
        if acc and acc[0][1] is not None:
            lines.append("accuracy  " + "   ".join(f"{name} {a * 100:.1f}%" for name, a in acc))
        if self.float_counts:
            agree = np.mean([np.argmax(x) == np.argmax(y) for x, y in zip(self.board_counts, self.float_counts)])
            lines.append(f"board and float predictions agree on {agree * 100:.1f}% of samples")
        return lines


def trials_of(project, plan, mapping: BoardMapping, max_trials: int | None = None) -> list[Trial]:
    """Split the compiled inputs into board runs: one per data-set sample, else one in all."""
    sources = {s.name: s for s in plan.sources if getattr(s, "emits_spikes", False)}
    datasets = plan.metadata.get("datasets", {})
    if datasets:
        ds_id, info = next(iter(datasets.items()))
        starts, width = np.asarray(info["sample_start"]), int(info["presentation_steps"])
        trials = []
        for s, start in enumerate(starts[:max_trials]):
            spikes = {}
            for name in mapping.input_addresses:
                steps, indices = sources[name].spikes_between(start, start + width)  # encodes this trial only
                spikes[name] = (steps - start, indices)
            trials.append(Trial(spikes, width, int(info["labels"][s])))
        return trials
    spikes = {name: (sources[name].steps, sources[name].indices) for name in mapping.input_addresses
              if hasattr(sources[name], "steps")}
    missing = [name for name in mapping.input_addresses if name not in spikes]
    if missing:
        raise SynweaveError(f"inputs {missing} are Poisson sources; give their spikes with --inputs "
                            "FILE.npz (arrays times, indices) or use a spike-train source")
    return [Trial(spikes, plan.n_steps)]


def float_simulation(plan, trial: Trial, populations: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The engine's simulation of the same trial: plan with the trial's spikes as the inputs."""
    import copy

    from engine.plan import MonitorPlan, SpikeTrainSourcePlan
    from engine.runner import Simulation

    trial_plan = copy.copy(plan)
    trial_plan.sources = [
        SpikeTrainSourcePlan(src.name, size=src.size, steps=trial.source_spikes[src.name][0],
                             indices=trial.source_spikes[src.name][1])
        if src.name in trial.source_spikes else src
        for src in plan.sources]
    trial_plan.n_steps = trial.n_model_steps
    trial_plan.monitors = [MonitorPlan(f"deploy:{pop}", pop, "spikes") for pop in populations]
    results = Simulation(trial_plan).run()
    return {pop: results.spikes[f"deploy:{pop}"] for pop in populations}


def deploy(project, port, *, options: MapOptions | None = None, max_trials: int | None = None,
           timeout: float = 5.0, progress=None, simulate: bool = True, log=print, on_trial=None,
           should_stop=None, on_agreement=None) -> DeployReport:
    """Map, upload, verify, run every trial on the board (and the twin and the simulation).

    Parameters
    ----------
    port : str, NeuroCoreXDriver or None
        A serial port path, an open driver (kept open), or None to run the twin only.
    progress : callable(done, total, stage), optional
    on_trial : callable(index, trial, mapping, board, twin, float_or_None), optional
        Called after each run with spikes as (model step, neuron) per population: live views.
    should_stop : callable() -> bool, optional
        Polled between runs; True ends the deploy early (the report holds the runs so far).
    on_agreement : callable(index, RunMismatch or None), optional
        Called after each run with the board-vs-twin comparison (None: identical frames).

    Each run whose board frames differ from the twin's is logged as a warning (step and neurons
    in model terms) and kept in ``report.mismatches``. When the image enables on-chip STDP, the
    FF weights are read back after the runs and compared with the twin's.
    """
    from engine.compiler import compile_graph
    from hardware.neurocorex.driver import NeuroCoreXDriver

    mapping = map_project(project, options)
    for w in mapping.warnings:
        log(str(w))
    for name, q in mapping.quantisation.items():
        log(f"{name}: {q['synapses']} synapses, max quantisation error "
            f"{q['max_relative_error'] * 100:.2f}% of the largest weight, rms {q['rms_error_mV']:.3f} mV")
    plan = compile_graph(project)
    trials = trials_of(project, plan, mapping, max_trials)
    pops = list(mapping.neuron_slots)
    output = pops[-1]
    report = DeployReport()
    names = ModelNames(project, mapping)
    twin = NeuroCoreXTwin(mapping.image, power_up_byte=False)
    own_driver = isinstance(port, str)
    driver = NeuroCoreXDriver(port, timeout=timeout) if own_driver else port
    try:
        if driver:
            driver.upload(mapping.image, progress=progress, include_stdp_enable=True)
            try:
                driver.verify_ff(mapping.image)
            except VerifyError as exc:
                raise _verify_error_in_model_terms(exc, names) from None
            log(f"uploaded and verified {p.WEIGHT_BLOCK_BYTES - 1} FF weights")
        for i, trial in enumerate(trials):
            if should_stop and should_stop():
                log(f"stopped after {i} of {len(trials)} runs")
                break
            schedule = mapping.schedule(trial.source_spikes, trial.n_model_steps)
            twin_run = twin.run(schedule.events)
            board_run = driver.run(schedule.events) if driver else twin_run
            mismatch = compare_run(board_run.frames, twin_run.frames, schedule, names, i, len(trials),
                                   trial.label)
            report.frame_agreement.append(mismatch is None)
            if mismatch is not None:
                report.mismatches.append(mismatch)
                log(f"warning: {mismatch}")
            if on_agreement:
                on_agreement(i, mismatch)
            board = mapping.population_spikes(board_run.frames, schedule)
            twin_sp = mapping.population_spikes(twin_run.frames, schedule)
            n_out = len(mapping.neuron_slots[output])
            report.labels.append(trial.label)
            report.board_spikes.append(board)
            report.twin_spikes.append(twin_sp)
            report.board_counts.append(np.bincount(board[output][1], minlength=n_out))
            report.twin_counts.append(np.bincount(twin_sp[output][1], minlength=n_out))
            sim = None
            if simulate:
                sim = float_simulation(plan, trial, pops)
                report.float_spikes.append(sim)
                report.float_counts.append(np.bincount(np.asarray(sim[output][1], np.int64), minlength=n_out))
            if on_trial:
                on_trial(i, trial, mapping, board, twin_sp, sim)
            if progress:
                progress(i + 1, len(trials), "runs")
        if mapping.image.stdp_enabled:
            report.readback = driver.read_back_ff() if driver else twin.ff_weights
            differ = np.argwhere(report.readback[:, :] != twin.ff_weights)
            differ = differ[~((differ[:, 0] == p.N_SLOTS - 1) & (differ[:, 1] == p.N_INPUTS - 1))]
            if differ.size:
                r, c = (int(x) for x in differ[0])
                log(f"warning: after on-chip STDP the board's FF weights differ from the twin's in "
                    f"{len(differ)} entries; first: {names.weight(r, c)} is {int(report.readback[r, c])} "
                    f"on the board, {int(twin.ff_weights[r, c])} in the twin")
    finally:
        if driver and own_driver:
            driver.close()
    return report


def _verify_error_in_model_terms(exc: VerifyError, names: ModelNames) -> VerifyError:
    """The driver's read-back mismatch, said in model names instead of RAM rows and columns."""
    row, column, expected, got = exc.first
    return VerifyError(
        f"the board does not hold the uploaded weights: {names.weight(row, column)} reads back as {got}, "
        f"{expected} was uploaded; {len(exc.mismatches)} FF weight(s) differ in total. Deploy again; if "
        "it persists, power-cycle the board (an incomplete block misaligns its write counters)",
        exc.mismatches)


def save_report(report: DeployReport, path: str | Path, mapping_info: dict | None = None) -> None:
    """Board, twin and simulation spikes side by side in one .npz (no pickle)."""
    arrays = {"labels": np.array([-1 if x is None else x for x in report.labels]),
              "board_counts": np.array(report.board_counts),
              "twin_counts": np.array(report.twin_counts),
              "float_counts": np.array(report.float_counts),
              "frame_agreement": np.array(report.frame_agreement)}
    for kind, per_trial in (("board", report.board_spikes), ("twin", report.twin_spikes),
                            ("float", report.float_spikes)):
        for t, spikes in enumerate(per_trial):
            for pop, (steps, idx) in spikes.items():
                arrays[f"{kind}/{t}/{pop}/steps"] = np.asarray(steps, np.int64)
                arrays[f"{kind}/{t}/{pop}/neurons"] = np.asarray(idx, np.int64)
    np.savez_compressed(path, **arrays)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    sp = subparsers.add_parser("deploy", help="deploy a project to a NeuroCoreX board",
                               description="Map a project onto a NeuroCoreX board, upload, run, and "
                                           "compare the board with its twin and the simulation.")
    sp.add_argument("file")
    sp.add_argument("--port", help="serial port of the board (see `board list`; `board emulate` "
                                   "prints a virtual one); without it only the twin runs")
    sp.add_argument("--samples", type=int, default=None, help="at most this many data-set samples")
    sp.add_argument("--weight-scale", type=float, default=None, help="board units per mV (default: auto)")
    sp.add_argument("--gain", type=int, default=1, help="FF gain 1..255")
    sp.add_argument("--exponential", choices=("refuse", "delta"), default="refuse",
                    help="approximate exponential synapses by delta jumps")
    sp.add_argument("--leak", choices=("auto", "none"), default="auto")
    sp.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the board")
    sp.add_argument("--no-simulation", action="store_true", help="skip the float simulation")
    sp.add_argument("--out", help="write spikes and counts to this .npz")
    sp.add_argument("--onchip-stdp", metavar="TPRE,TPOST,DWPOS,DWNEG", type=_four_bytes, default=None,
                    help="switch the board's own FF STDP on (windows in board steps, amplitudes in "
                         "weight units). On this board version it does not train the network's "
                         "synapses (it updates other RAM entries); the weights are read back after the runs")
    sp.add_argument("--strict", action="store_true",
                    help="exit with status 1 when the board differs from its twin in any run "
                         "(default: a warning per run)")
    sp.set_defaults(func=_cmd_deploy)


def _four_bytes(text: str) -> tuple[int, int, int, int]:
    import argparse

    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected four numbers 0..255 separated by commas "
                                         f"(TPRE,TPOST,DWPOS,DWNEG), e.g. 3,3,1,1; got {text!r}")
    return values


class ProgressBar:
    """A one-line progress bar on a stream that is always ended before anything else is printed.

    Call it as a ``progress(done, total, stage)`` callback; :meth:`print` writes a message on a
    line of its own (ending an unfinished bar first), and :meth:`end_line` ends an unfinished bar
    (before an error message, for instance).
    """

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.open = False

    def __call__(self, done: int, total: int, stage: str) -> None:
        filled = int(self.width * done / max(total, 1))
        self.stream.write(f"\r{stage:<10} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        self.open = done < total
        if not self.open:
            self.stream.write("\n")
        self.stream.flush()

    def end_line(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False

    def print(self, message: str) -> None:
        self.end_line()
        print(message, file=self.stream, flush=True)


def _cmd_deploy(args) -> int:
    from engine.project import Project

    project = Project.load(args.file)
    options = MapOptions(weight_scale=args.weight_scale, gain=args.gain,
                         exponential=args.exponential, leak=args.leak, onchip_stdp=args.onchip_stdp)
    start = time.perf_counter()
    bar = ProgressBar()
    try:
        report = deploy(project, args.port, options=options, max_trials=args.samples, timeout=args.timeout,
                        progress=bar, simulate=not args.no_simulation, log=bar.print)
    finally:
        bar.end_line()  # an error message must not continue the bar's line
    for line in report.summary():
        print(line)
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.out:
        save_report(report, args.out)
        print(f"wrote {args.out}")
    if args.strict and report.mismatches:
        runs = ", ".join(str(m.run + 1) for m in report.mismatches)
        raise SynweaveError(f"the board differed from its twin in {len(report.mismatches)} of "
                            f"{len(report.frame_agreement)} runs (run {runs}; see the warnings above); "
                            "--strict makes that an error")
    return 0
