"""``python main.py run FILE``: simulate a project headless.

Prints a progress bar on stderr (phases validate / compile / jit / run with ETA) and a one-line
summary on stdout; ``--out`` writes every monitor's data with the settings and library versions to
an ``.npz``. User mistakes raise :class:`engine.errors.SynweaveError` subclasses, which ``main``
prints without a traceback.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time

import numpy as np

from engine.errors import ParameterError
from engine.readouts import is_internal_recording
from engine.training import has_phases

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|min)?\s*$")
_UNIT_MS = {None: 1.0, "ms": 1.0, "s": 1000.0, "min": 60_000.0}


def parse_duration(text: str) -> float:
    """``"1s"``, ``"250 ms"``, ``"0.5min"`` or a bare number of ms -> ms."""
    match = _DURATION.match(str(text))
    if not match:
        raise ParameterError("duration", f"cannot read {text!r} as a duration; write e.g. 1s, 250ms or 500 (ms)")
    value = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if value <= 0:
        raise ParameterError("duration", "the duration must be > 0")
    return value


class ProgressBar:
    """A one-line progress bar on a text stream (redrawn in place on terminals)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_phase = None
        self._last_draw = 0.0

    def __call__(self, progress) -> None:
        now = time.monotonic()
        if progress.phase_index >= 0:  # a training phase: one bar per phase, counted in samples
            progress = dataclasses.replace(
                progress, phase=f"phase {progress.phase_index + 1} {progress.phase_name!r}",
                fraction=progress.sample / max(progress.n_samples, 1))
        phase_changed = progress.phase != self._last_phase
        if not phase_changed and progress.fraction < 1.0 and now - self._last_draw < 0.1:
            return  # at most 10 redraws per second
        self._last_draw = now
        if phase_changed and self._last_phase is not None and self.tty:
            self.stream.write("\n")
        self._last_phase = progress.phase
        filled = int(round(self.width * progress.fraction))
        bar = "#" * filled + "." * (self.width - filled)
        eta = f" ETA {progress.eta_s:5.1f} s" if progress.eta_s is not None and progress.fraction < 1 else ""
        line = f"{progress.phase:<8} [{bar}] {100 * progress.fraction:5.1f}%{eta}"
        if progress.phase_index >= 0:
            line += f" {progress.sample}/{progress.n_samples} samples, {progress.samples_per_s:.0f}/s"
        if self.tty:
            self.stream.write("\r" + line)
        elif phase_changed or progress.fraction >= 1.0:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._last_phase is not None:
            self.stream.write("\n")
            self.stream.flush()


def handler(args) -> int:
    from engine.project import Project
    from engine.runner import Simulation

    project = Project.load(args.file)
    settings = {}
    duration = parse_duration(args.duration) if args.duration else project.settings.duration
    try:
        project.settings.duration = duration
    except ParameterError as exc:
        raise ParameterError("duration", f"--duration {args.duration}: {exc.detail}") from None
    settings["duration"] = duration
    if args.seed is not None:
        if not 0 <= args.seed < 2 ** 32:
            raise ParameterError("seed", "the seed must be in 0 .. 2**32 - 1")
        settings["seed"] = args.seed
    if args.dtype:
        settings["dtype"] = args.dtype
    backend = args.backend or project.settings.backend
    settings["backend"] = backend  # validation warns about the nodes this backend does not simulate
    options = {}
    if backend == "torch":
        options["device"] = args.device or project.settings.device
    elif args.device:
        raise ParameterError("device", f"--device applies to the torch backend only (the backend is {backend!r})")
    preflight(project)
    bar = None if args.quiet else ProgressBar(sys.stderr)
    t0 = time.perf_counter()
    phased = has_phases(project.graph)
    if not phased and (args.checkpoint or args.resume or args.samples):
        raise ParameterError("checkpoint", "--checkpoint, --resume and --samples apply to projects with training "
                                           "phases; this project has none (add a Training phase node)")
    if args.samples is not None and args.samples < 2:
        raise ParameterError("samples", f"--samples {args.samples}: present at least 2 samples per phase")
    try:
        if phased:
            if args.duration:
                raise ParameterError("duration", "--duration does not apply: this project's training phases set "
                                                 "how long it runs (samples x presentation per phase)")
            sim = protocol_for(project, args, backend, settings, bar)
            results = run_protocol(sim)
            duration = results.n_steps * results.dt
        else:
            sim = Simulation(project, backend=backend, settings=settings, on_progress=bar, **options)
            for warning in sim.plan.metadata.get("warnings", []):
                print(f"synweave: {warning}", file=sys.stderr)
            results = sim.run(duration)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    if args.out:
        results.save(args.out)
    n_spikes, rate = spike_summary(results)
    saved = f", results in {args.out}" if args.out else ""
    print(f"{project.name}: {duration:g} ms simulated, {n_spikes} spikes recorded, mean rate {rate:.2f} Hz, "
          f"wall {wall:.2f} s (run {results.wall_time_s:.2f} s){saved}")
    if phased:
        for line in phase_summary(sim):
            print(line)
        if results.stopped:
            print(f"stopped; checkpoint {sim.checkpoint} — continue with: python main.py run {args.file} --resume"
                  + (f" --checkpoint {sim.checkpoint}" if args.checkpoint else ""))
            return 130
    for line in weight_summary(results, sim.plan):
        print(line)
    for line in analysis_summary(results, sim.plan):
        print(line)
    for problem in results.analysis_problems:
        print(f"synweave: {problem}", file=sys.stderr)
    for line in baseline_table(getattr(sim, "baselines", [])):
        print(line)
    if args.save_weights:
        from engine.learned import save_learned_weights

        written = save_learned_weights(project, sim, args.save_weights)
        print(f"learned weights of {len(written)} projection(s) written; project copy {args.save_weights}")
    return 0


def protocol_for(project, args, backend: str, settings: dict, bar):
    """The :class:`engine.training.Protocol` of a project with training phases; checkpoints go to
    ``--checkpoint`` or ``<project stem>.checkpoint.npz`` in the working folder."""
    from pathlib import Path

    from engine.training import Protocol

    settings = {k: v for k, v in settings.items() if k not in ("duration", "backend")}
    checkpoint = Path(args.checkpoint) if args.checkpoint else Path(f"{Path(args.file).stem}.checkpoint.npz")
    return Protocol(project, backend=backend, settings=settings, on_progress=bar, checkpoint=checkpoint,
                    resume=args.resume, sample_limit=args.samples)


def run_protocol(protocol):
    """Run the phases; Ctrl+C stops after the current chunk and writes a checkpoint."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return protocol.run()
    previous = signal.signal(signal.SIGINT, lambda *_: protocol.stop())
    try:
        return protocol.run()
    finally:
        signal.signal(signal.SIGINT, previous)


def phase_summary(protocol) -> list[str]:
    """One line per finished phase: samples, time per sample, throughput and wall time."""
    lines = []
    for i, r in enumerate(protocol.reports):
        per_sample = r.steps / max(r.samples, 1) * protocol.project.settings.dt
        lines.append(f"phase {i + 1} {r.name!r}: {r.samples} samples x {per_sample:g} ms, "
                     f"{r.samples_per_s:.0f} samples/s, wall {r.wall_s:.1f} s")
    return lines


def baseline_table(rows: list) -> list[str]:
    """The NALSM / LSM / LSM + STDP comparison (Ivanov & Michmizos 2021) as printed by ``run``."""
    if not rows:
        return []
    kernel = any(np.isfinite(r.get("sp_minus_ap", np.nan)) for r in rows)
    lines = [f"{'model':<12}{'test accuracy':>15}{'branching factor':>18}{'liquid rate':>13}"
             + (f"{'SP - AP':>10}" if kernel else "")]
    for r in rows:
        lines.append(f"{r['model']:<12}{100 * r['accuracy']:>13.1f} %{r['branching_factor']:>18.3f}"
                     f"{r['rate_hz']:>10.1f} Hz" + (f"{r.get('sp_minus_ap', np.nan):>10.1f}" if kernel else ""))
    return lines


def weight_summary(results, plan) -> list[str]:
    """One line per weight monitor: mean weight, fraction at each bound, a 10-bin histogram."""
    lines = []
    labels = plan.metadata.get("labels", {})
    info = plan.metadata.get("weight_monitors", {})
    for name, (steps, values) in results.weights.items():
        if not len(steps):
            continue
        w = np.abs(np.asarray(values[-1], np.float64))
        text = f"weights {labels.get(name, name)!r} at {steps[-1] * results.dt / 1000.0:g} s: {w.size} synapses, " \
               f"mean {w.mean():.4g}" if w.size else f"weights {labels.get(name, name)!r}: no synapses"
        bounds = info.get(name, {}).get("bounds")
        if bounds and w.size:
            lo, hi = max(bounds[0], 0.0), bounds[1]
            tol = 1e-3 * (hi - lo)
            text += f", {np.mean(w <= lo + tol):.1%} at w_min, {np.mean(w >= hi - tol):.1%} at w_max"
            hist = np.histogram(np.clip(w, lo, hi), bins=10, range=(lo, hi))[0]
            text += f", histogram (10 bins) {hist.tolist()}"
        lines.append(text)
    return lines


def preflight(project) -> None:
    """What must hold before anything is compiled or allocated: no validation errors (data files
    checked below the project's folder) and an estimate that fits in the available memory.

    Raises
    ------
    ValidationError, SimulationError
    """
    from engine.errors import ValidationError
    from engine.info import check_memory
    from engine.validate import errors_only, validate_project

    errors = errors_only(validate_project(project))
    if errors:
        raise ValidationError(errors)
    check_memory(project)


def analysis_summary(results, plan) -> list[str]:
    """Readout accuracies (with per-class accuracy, ties and the confusion matrix) and branching
    factors of a run, as printed by ``main.py run``."""
    labels = plan.metadata.get("labels", {})
    lines = []
    for node_id, r in results.readouts.items():
        name = labels.get(node_id, node_id)
        text = f"readout {name!r} ({r['kind']}): test accuracy {100 * r['accuracy']:.1f} % on {r['n_test']} samples"
        if r["n_train"]:
            text += f" (trained on {r['n_train']}"
            if r["n_validation"]:
                text += f", validation {r['n_validation']} at {100 * r['validation_accuracy']:.1f} %"
            text += f"), train accuracy {100 * r['train_accuracy']:.1f} %"
        else:
            text += " (neuron i votes for class i; nothing trained)"
        if r["kind"] == "softmax":
            text += f", epoch {r['best_epoch']} selected"
        if r["kind"] == "ridge":
            text += f", lambda {r['ridge_lambda']:g}"
        if r["kind"] == "vote":
            text += (f", {r['n_ties']} of {r['n_test']} test samples tied (counted wrong), "
                     f"{r['unassigned_neurons']} neurons unassigned")
        lines.append(text)
        per_class = " ".join("-" if np.isnan(a) else f"{100 * a:.0f}" for a in r["per_class_accuracy"])
        lines.append(f"  per-class accuracy (%): {per_class}")
        confusion = np.asarray(r["confusion"])
        width = max(3, len(str(int(confusion.max()))) + 1) if confusion.size else 3
        header = "true\\pred" + "".join(f"{c:>{width}}" for c in range(confusion.shape[1]))
        if r["kind"] == "vote":
            header += "  ties"
        lines.append("  " + header)
        for c, row in enumerate(confusion):
            line = f"{c:>9}" + "".join(f"{v:>{width}}" for v in row)
            if r["kind"] == "vote":
                line += f"{int(r['ties'][c]):>6}"
            lines.append("  " + line)
    for node_id, b in results.branching.items():
        name = labels.get(node_id, node_id)
        lines.append(f"branching factor {name!r}: {b['branching_factor']:.3f} (mean over {b['n_samples']} samples, "
                     f"{b['n_synapses']} recurrent synapses, population rate {b['rate_hz']:.1f} Hz)")
    for node_id, k in results.kernel_quality.items():
        lines.append(f"kernel quality {labels.get(node_id, node_id)!r}: {kernel_quality_text(k)}")
    return lines


def kernel_quality_text(k: dict) -> str:
    """``SP 83.5, AP 97.4, SP - AP -13.9 (rank of 125 neurons x 200 samples, mean of 10 draws, ...)``."""
    size = (f"rank of {int(k['n_neurons'])} neurons x {int(k['n_columns'])} samples, mean of {int(k['draws'])} "
            f"draws over {int(k['n_samples'])} samples")
    if "AP" not in k:
        why = "pixel_noise = 0" if float(k["pixel_noise"]) == 0 else "the run on noisy inputs did not finish"
        return f"SP {float(k['SP']):.1f} ({size}; no AP: {why})"
    return (f"SP {float(k['SP']):.1f}, AP {float(k['AP']):.1f}, SP - AP {float(k['SP_minus_AP']):.1f} "
            f"({size}; AP with pixel noise {float(k['pixel_noise']):.3g})")


def spike_summary(results) -> tuple[int, float]:
    """Spikes and mean rate (Hz) over every monitored population (spike and rate monitors; a target
    watched by both is counted once; the recordings readouts make for themselves are left out)."""
    duration_s = results.n_steps * results.dt / 1000.0
    shown = [k for k in results.spikes if not is_internal_recording(k)]
    if shown:
        n_spikes = sum(int(results.spikes[k][0].size) for k in shown)
        neurons = sum(results.sizes.get(k, 0) for k in shown)
        return n_spikes, (n_spikes / (neurons * duration_s) if neurons and duration_s else 0.0)
    counts = sum(int(c.sum()) for c in results.rates.values())
    neurons = sum(results.sizes.get(k, 0) for k in results.rates)
    return counts, (counts / (neurons * duration_s) if neurons and duration_s else 0.0)


def register(subparsers) -> None:
    """Add the ``run`` command to ``main.py``'s subparsers."""
    p = subparsers.add_parser("run", help="simulate a project headless",
                              description="Simulate a project without the GUI and print a summary.")
    p.add_argument("file", metavar="FILE", help="project file (.swproj)")
    p.add_argument("--duration", help="model time, e.g. 1s, 250ms or 500 (ms); default: the project's")
    p.add_argument("--backend", choices=None,
                   help="simulation backend: numba, nest (needs nest-simulator) or torch; default: the project's")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="device of the torch backend (default: the project's); no plasticity on torch yet")
    p.add_argument("--seed", type=int, help="project seed override")
    p.add_argument("--out", help="write recorded data, settings and versions to this .npz")
    p.add_argument("--dtype", choices=("float32", "float64"), help="state precision (default: the project's)")
    p.add_argument("--save-weights", metavar="OUT.swproj",
                   help="write a copy of the project whose plastic projections start from the learned weights")
    p.add_argument("--checkpoint", metavar="FILE.npz",
                   help="training phases: where checkpoints go (default: <project>.checkpoint.npz here)")
    p.add_argument("--samples", type=int, metavar="N",
                   help="training phases: present at most N samples in each phase (a quick try-out)")
    p.add_argument("--resume", action="store_true",
                   help="training phases: continue from the checkpoint of a stopped or crashed run")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)
