"""``python main.py train FILE``: surrogate-gradient training of a project's LIF chain.

Prints one line per epoch (loss, train and validation accuracy, seconds) and the test accuracy of
the trained network on the encoder's test split; ``--save`` writes a copy of the project whose
trained projections read their weights (and delays) from connection files next to it, which
``python main.py run`` simulates. User mistakes raise :class:`engine.errors.SynweaveError`
subclasses, which ``main`` prints as one line without a traceback.
"""

from __future__ import annotations

import sys

import numpy as np


def _percent(x: float) -> str:
    return "   -  " if np.isnan(x) else f"{100 * x:5.1f} %"


def cmd_train(args) -> int:
    from engine.gradient import SurrogateGradientTrainer, check_save_path, save_trained_project
    from engine.project import Project

    if args.save:
        check_save_path(args.save)
    project = Project.load(args.file)
    trainer = SurrogateGradientTrainer(project, epochs=args.epochs, device=args.device)
    for warning in trainer.warnings:
        print(f"synweave: warning: {warning}", file=sys.stderr)
    n_train, n_val, n_test = (len(part[1]) for part in (trainer.data.train, trainer.data.validation,
                                                         trainer.data.test))
    print(f"training {' -> '.join(p.label for p in trainer.chain.populations)} on {n_train} samples "
          f"(validation {n_val}, test {n_test}), {trainer.params['epochs']} epochs on {trainer.device}")

    def report(stats) -> None:
        print(f"epoch {stats.epoch:4d}  loss {stats.loss:8.4f}  train {_percent(stats.train_accuracy)}  "
              f"validation {_percent(stats.validation_accuracy)}  {stats.seconds:6.2f} s", flush=True)

    result = trainer.train(progress=report)
    ties = int(np.sum(result.test_predictions < 0))
    print(f"test accuracy {100 * result.test_accuracy:.1f} % on {n_test} samples ({ties} tied, counted wrong), "
          f"{result.seconds:.1f} s")
    if args.save:
        path = save_trained_project(project, result, args.save)
        print(f"wrote {path} (trained projections read "
              f"{', '.join(repr(p.label) for p in result.projections)} from connection files next to it)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train a feed-forward LIF chain with surrogate gradients",
                       description="Train the network of a project's Surrogate-gradient training node "
                                   "(BPTT through the simulator's LIF step).")
    p.add_argument("file", help="project (.swproj) with a training.surrogate_gradient node")
    p.add_argument("--epochs", type=int, help="override the training node's epochs")
    p.add_argument("--device", help="torch device: cpu or cuda (default: the project's device setting)")
    p.add_argument("--save", metavar="TRAINED.swproj",
                   help="write a copy of the project with the trained weights (connection files next to it)")
    p.set_defaults(func=cmd_train)
