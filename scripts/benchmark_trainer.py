"""One epoch of the upsampling tutorial's model on full MNIST: its loop against convae's.

The tutorial way: torchvision's MNIST with ``ToTensor``, a ``DataLoader`` of batch 20,
Adam at 1e-3, MSE. convae's way: ``convae.trainer.train`` at its defaults. Both start from
the same initial weights, run in the same process one after the other, and are scored
on the full test set with the same code. Prints a Markdown table for the README.

    CONVAE_DATA_DIR=/path/to/datasets python scripts/benchmark_trainer.py
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

from convae import Autoencoder, ModelConfig, TrainConfig, build_model, evaluate, load_dataset
from convae.config import PRECISIONS
from convae.data import torchvision_dataset
from convae.trainer import autocast_dtype, resolve_device, train

ARCH = "conv-upsample"  # the upsampling tutorial's model


def plain_loop(model: torch.nn.Module, seed: int) -> float:
    """The tutorial's training loop, one epoch; returns wall seconds."""
    torch.manual_seed(seed)
    train_data = torchvision_dataset("mnist", train=True, transform=ToTensor())
    loader = DataLoader(train_data, batch_size=20, num_workers=0, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    model.train()
    start = time.perf_counter()
    for images, _ in loader:
        optimizer.zero_grad()
        loss = F.mse_loss(model(images), images)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    return seconds


def convae_trainer(model: Autoencoder, seed: int, cfg: TrainConfig) -> float:
    images = load_dataset("mnist", train=True).images
    start = time.perf_counter()
    train(model, images, cfg)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainConfig()
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="epochs timed per loop, the two loops taking turns; the median "
        "counts (a shared CPU's timings vary by 1.5x from run to run)",
    )
    parser.add_argument("--skip-plain", action="store_true", help="time convae's trainer only")
    args = parser.parse_args()
    cfg = TrainConfig(
        epochs=1, batch_size=args.batch_size, lr=args.lr, seed=args.seed, precision=args.precision
    )
    dtype = autocast_dtype(cfg.precision, resolve_device())
    loops = {
        f"convae trainer (batch {cfg.batch_size}, Adam {cfg.lr:g}, channels-last, "
        f"{'bf16 autocast' if dtype else 'float32'})": lambda model: convae_trainer(
            model, args.seed, cfg
        )
    }
    if not args.skip_plain:
        loops = {
            "tutorial loop (DataLoader, batch 20, Adam 1e-3)": lambda model: plain_loop(
                model, args.seed
            ),
            **loops,
        }

    test = load_dataset("mnist", train=False).images
    load_dataset("mnist", train=True)  # load once, outside the timed part (both loops)
    times: dict[str, list[float]] = {name: [] for name in loops}
    mse: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, run in loops.items():
            model = build_model(ModelConfig(ARCH), seed=args.seed)  # same start each time
            times[name].append(run(model))
            if name not in mse:  # fixed seed: every repeat ends with the same weights
                mse[name] = evaluate(model, test).mse

    print(
        f"{ARCH}, 1 epoch on 60,000 MNIST images, median of {args.repeats}; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print("\n| loop | wall time (s), median [min-max] | images/s | test MSE |\n|---|---|---|---|")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(
            f"| {name} | {medians[name]:.1f} [{min(t):.1f}-{max(t):.1f}] | "
            f"{60000 / medians[name]:,.0f} | {mse[name]:.5f} |"
        )
    if len(loops) == 2:
        (t0, t1), (m0, m1) = medians.values(), mse.values()
        print(
            f"\nspeed-up {t0 / t1:.1f}x (median times); test MSE ratio {m1 / m0:.2f} "
            f"(goal: >= 4x, <= 1.5)"
        )


if __name__ == "__main__":
    main()
