"""Deploy a project to a NeuroCoreX board and compare the board with its twin and the simulation.

``python main.py deploy FILE --port PORT`` maps the graph (hardware.neurocorex.mapper), uploads
the image with a progress bar, verifies the FF weights by read-back, runs every sample (or the
given inputs), and writes the board's spikes next to the digital twin's and the float
simulation's, with their agreement and, for data-set inputs with a vote readout, the accuracy of
each.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import SynweaveError
from hardware.neurocorex import protocol as p
from hardware.neurocorex.mapper import BoardMapping, MapOptions, map_project
from hardware.neurocorex.twin import NeuroCoreXTwin


@dataclass
class Trial:
    """One board run: a data-set sample, or the whole input of a project without data set."""

    source_spikes: dict[str, tuple[np.ndarray, np.ndarray]]
    n_model_steps: int
    label: int | None = None


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
                src = sources[name]
                sel = (src.steps >= start) & (src.steps < start + width)
                spikes[name] = (src.steps[sel] - start, src.indices[sel])
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
           should_stop=None) -> DeployReport:
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
    twin = NeuroCoreXTwin(mapping.image, power_up_byte=False)
    own_driver = isinstance(port, str)
    driver = NeuroCoreXDriver(port, timeout=timeout) if own_driver else port
    try:
        if driver:
            driver.upload(mapping.image, progress=progress)
            driver.verify_ff(mapping.image)
            log(f"uploaded and verified {p.WEIGHT_BLOCK_BYTES - 1} FF weights")
        for i, trial in enumerate(trials):
            if should_stop and should_stop():
                log(f"stopped after {i} of {len(trials)} runs")
                break
            schedule = mapping.schedule(trial.source_spikes, trial.n_model_steps)
            twin_run = twin.run(schedule.events)
            board_run = driver.run(schedule.events) if driver else twin_run
            report.frame_agreement.append(bool(np.array_equal(board_run.frames, twin_run.frames)))
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
    finally:
        if driver and own_driver:
            driver.close()
    return report


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
    sp.set_defaults(func=_cmd_deploy)


def _progress_bar(done: int, total: int, stage: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{stage:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _cmd_deploy(args) -> int:
    from engine.project import Project

    project = Project.load(args.file)
    options = MapOptions(weight_scale=args.weight_scale, gain=args.gain,
                         exponential=args.exponential, leak=args.leak)
    start = time.perf_counter()
    report = deploy(project, args.port, options=options, max_trials=args.samples, timeout=args.timeout,
                    progress=_progress_bar, simulate=not args.no_simulation,
                    log=lambda msg: print(msg, file=sys.stderr))
    for line in report.summary():
        print(line)
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.out:
        save_report(report, args.out)
        print(f"wrote {args.out}")
    return 0
