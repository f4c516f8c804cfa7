"""Surrogate-gradient training of the gradient_digits example (64-100-10 LIF, scikit-learn digits).

Prints the set-up time (compile, encoding, model), every epoch (loss, accuracy, seconds), the test
accuracy and the total, for plan-delay training and, with ``--delays``, for learnable (DCLS) delays.

Usage::

    python benchmarks/bench_gradient.py                 # the example's 15 epochs
    python benchmarks/bench_gradient.py --epochs 30 --delays
    python benchmarks/bench_gradient.py --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main() -> int:
    from engine.examples import gradient_digits
    from engine.gradient import SurrogateGradientTrainer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--delays", action="store_true", help="also train with learnable delays")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    args = parser.parse_args()
    for learn_delays in ([False, True] if args.delays else [False]):
        project = gradient_digits()
        node = next(n for n in project.graph.nodes.values() if n.type_id == "training.surrogate_gradient")
        node.set("learn_delays", learn_delays)
        t0 = time.perf_counter()
        trainer = SurrogateGradientTrainer(project, epochs=args.epochs, device=args.device)
        setup = time.perf_counter() - t0
        print(f"learn_delays={learn_delays} on {trainer.device}: set-up {setup:.1f} s")
        result = trainer.train(progress=lambda s: print(
            f"  epoch {s.epoch:3d} loss {s.loss:.4f} train {100 * s.train_accuracy:5.1f} % "
            f"validation {100 * s.validation_accuracy:5.1f} % {s.seconds:5.2f} s", flush=True))
        print(f"  test accuracy {100 * result.test_accuracy:.1f} % ({len(result.history)} epochs), training "
              f"{result.seconds:.1f} s, total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
