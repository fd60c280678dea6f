"""Time to a good model: the upsampling tutorial's training loop against convae's.

Both loops train the tutorial's model (``conv-upsample``) on full MNIST, in the same
process, one after the other, for three seeds:

- the tutorial's way: torchvision's MNIST with ``ToTensor``, a ``DataLoader`` of batch
  20, Adam at 1e-3, MSE; the model's layers with PyTorch's default initialisation;
- convae's way: the README's package example, ``initial_model`` and
  ``convae.train`` with ``TrainConfig()``'s defaults.

Every 5,000 training images (``--probe-every``) both are scored on the full test set by
the same code (``convae.evaluate``); the scoring is not counted in their time. From these probes the
script reports each loop's epoch time (medians), test MSE after one epoch (means), and
the time each took to reach two targets: the tutorial loop's own one-epoch mean, and
the tutorial's published ten-epoch figure (0.0081 per pixel: it reports 0.1618 as the
MSE summed over a batch of 20). ``--cli`` also times ``python -m convae train
--epochs 1`` and ``eval`` as a user runs them: what share is spent outside the epoch.
``--ablation`` times every architecture's training step with and without each of the
trainer's two newest speed-ups (the kept freed memory, each setting in a fresh process;
the fast path, alternating within it): what each bought, per architecture.
``--compile`` times every architecture as it trains and after ``model.compile()``
(torch.compile), each in a fresh process with an empty compiler cache, compiling time
included: whether torch's compiler would pay for itself.

    CONVAE_DATA_DIR=/path/to/datasets python benchmarks/benchmark_trainer.py \
        [--cli] [--ablation] [--compile]

Prints Markdown tables for ``docs/performance.md``. Run it on a quiet machine: a second
busy process on a 2-core CPU slows both loops' threads by 2-5x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

from convae import (
    ARCHITECTURES,
    ModelConfig,
    TrainConfig,
    build_model,
    evaluate,
    initial_model,
    load_dataset,
    train,
)
from convae.data.datasets import torchvision_dataset
from convae.nn.models import Autoencoder
from convae.nn.trainer import Progress, with_architecture_defaults

ARCH = "conv-upsample"  # the upsampling tutorial's model
PUBLISHED_TEN_EPOCHS = 0.1618 / 20  # the tutorial's reported loss is summed over batch 20
# training images between two scorings on the test set (default): a time to a target is
# the first scoring's at or below it, so late by up to one interval; at 10,000 images that
# was up to half of convae's time to the targets (it reaches them after 15,000-20,000)
PROBE_EVERY = 5_000
N_TRAIN = 60_000


@dataclass
class Run:
    """One loop, one seed: test MSE and training seconds at every probe."""

    seed: int
    probes: list[tuple[int, float, float]] = field(default_factory=list)  # images, s, MSE

    def at_epoch(self, epoch: int = 1) -> tuple[float, float]:
        """(seconds, test MSE) after ``epoch`` epochs."""
        for images, seconds, mse in self.probes:
            if images >= epoch * N_TRAIN:
                return seconds, mse
        raise ValueError(f"the run stopped before epoch {epoch}")

    def time_to(self, target: float) -> float | None:
        """Training seconds until the first probe at or below ``target``; None: never."""
        return next((s for _, s, mse in self.probes if mse <= target), None)


class Probe:
    """Scores the model every ``every`` images; its own time is kept off the clock."""

    def __init__(self, model: torch.nn.Module, test: torch.Tensor, run: Run, every: int):
        self.model, self.test, self.run, self.every = model, test, run, every
        self.start = time.perf_counter()
        self.paused = 0.0  # seconds spent scoring
        self.images = 0
        self.next = every

    def seen(self, images: int) -> None:
        """``images``: how many training images the model has seen so far in all."""
        self.images = images
        if images >= self.next:
            t0 = time.perf_counter()
            training_s = t0 - self.start - self.paused
            was_training = self.model.training
            mse = evaluate(self.model, self.test).mse
            self.model.train(was_training)
            self.run.probes.append((images, training_s, mse))
            self.next += self.every
            self.paused += time.perf_counter() - t0

    def done(self, target: float, min_epochs: int) -> bool:
        return self.images >= min_epochs * N_TRAIN and any(
            mse <= target for _, _, mse in self.run.probes
        )


def tutorial_loop(seed: int, test: torch.Tensor, target: float, max_epochs: int, every: int) -> Run:
    """The tutorial's loop, epoch after epoch until ``target`` (and at least one epoch)."""
    model = build_model(ModelConfig(ARCH), seed=seed)  # the tutorial's layers and init
    torch.manual_seed(seed)  # the loader's shuffling
    loader = DataLoader(
        torchvision_dataset("mnist", train=True, transform=ToTensor()),
        batch_size=20,
        shuffle=True,
        num_workers=0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    run = Run(seed)
    probe = Probe(model, test, run, every)
    model.train()
    for _ in range(max_epochs):
        for images, _ in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(images), images)
            loss.backward()
            optimizer.step()
            probe.seen(probe.images + len(images))
        if probe.done(target, 1):
            break
    return run


def convae_loop(seed: int, test: torch.Tensor, target: float, max_epochs: int, every: int) -> Run:
    """README's package example, one epoch at a time until ``target``."""
    train_set = load_dataset("mnist", train=True)
    run = Run(seed)
    cfg = TrainConfig(epochs=max_epochs, seed=seed)
    model = initial_model(ARCH, train_set, cfg)
    probe = Probe(model, test, run, every)
    stop = threading.Event()

    def on_step(p: Progress) -> None:
        probe.seen((p.epoch - 1) * N_TRAIN + min(p.step * cfg.batch_size, N_TRAIN))
        if probe.done(target, 1):
            stop.set()

    # one call for all epochs, as a user makes it (constant learning rate: its first epoch
    # is TrainConfig(epochs=1)'s); the stop ends it once the target is met
    train(model, train_set.images, cfg, on_step=on_step, stop=stop)
    return run


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def loop_table(runs: dict[str, list[Run]], targets: dict[str, float]) -> str:
    lines = [
        "| loop | epoch time (s), median [min-max] | test MSE after 1 epoch (mean; per seed) | "
        + " | ".join(f"time to {name} (s), median" for name in targets)
        + " |",
        "|---|---|---|" + "---|" * len(targets),
    ]
    for name, rs in runs.items():
        epoch = [r.at_epoch()[0] for r in rs]
        mse = [r.at_epoch()[1] for r in rs]
        to = []
        for target in targets.values():
            times = [r.time_to(target) for r in rs]
            reached = [t for t in times if t is not None]
            to.append(
                f"{statistics.median(reached):.1f}" + ("" if len(reached) == len(rs) else "*")
                if reached
                else "not reached"
            )
        lines.append(
            f"| {name} | {_median_range(epoch)} | {statistics.mean(mse):.5f}; "
            + ", ".join(f"{m:.5f}" for m in mse)
            + " | "
            + " | ".join(to)
            + " |"
        )
    return "\n".join(lines)


def _timed_run(command: list[str]) -> tuple[float, subprocess.CompletedProcess, dict[str, float]]:
    """Run ``python -X importtime COMMAND``: its wall time, its result, and the seconds
    that very process spent importing torch and torch's compiler (``torch._dynamo``,
    which torch.optim's optimizers import and :class:`convae.nn.adam.Adam` does not: 0 if
    nothing imported it), read from Python's own import timings, so nothing is
    subtracted across processes."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    imports = {"torch": 0.0, "torch._dynamo": 0.0}
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | name", the name indented by nesting
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if found and found[2] in imports:
            imports[found[2]] = int(found[1]) / 1e6
    return wall, proc, imports


def cli_table() -> str:
    """``convae train --epochs 1`` and ``eval`` as a user runs them, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.pt"
        train_s, proc, imports = _timed_run(
            ["-m", "convae", "train", "--arch", ARCH, "--epochs", "1"]
            + ["--out", str(out), "--quiet"]
        )
        found = re.search(r"epoch 1: .*?, ([0-9.]+)s \(", proc.stdout + proc.stderr)
        if found is None:
            raise SystemExit(f"no epoch time in train's output:\n{proc.stderr[-2000:]}")
        epoch_s = float(found[1])
        eval_s, ev, eval_imports = _timed_run(["-m", "convae", "eval", str(out), "--json"])
        n = json.loads(ev.stdout)["n"]
    torch_s, compiler_s = imports["torch"], imports["torch._dynamo"]
    outside = train_s - epoch_s
    ours = outside - torch_s - compiler_s  # convae's imports, data, measuring, saving
    eval_torch_s = eval_imports["torch"] + eval_imports["torch._dynamo"]
    eval_rest = eval_s - eval_torch_s
    return "\n".join(
        [
            "| command | wall time (s) | of which |",
            "|---|---|---|",
            f"| `python -m convae train --arch {ARCH} --epochs 1` | {train_s:.1f} | "
            f"epoch {epoch_s:.1f} s; outside it {outside:.1f} s ({outside / train_s:.0%}): "
            f"importing torch {torch_s:.1f} s, torch's compiler {compiler_s:.1f} s, "
            f"everything else {ours:.1f} s ({ours / train_s:.0%}) |",
            f"| `python -m convae eval m.pt --json` ({n:,} test images) | {eval_s:.1f} | "
            f"importing torch {eval_torch_s:.1f} s, everything else {eval_rest:.1f} s |",
        ]
    )


ABLATION_IMAGES = 3_200  # per timed run: 50 steps of batch 64
ABLATION_ROUNDS = 3  # alternating runs with and without the fast path


def ablation_one(arch: str, keep_memory: bool) -> tuple[float, float]:
    """Seconds per MNIST epoch of ``arch`` at TrainConfig()'s defaults, without and with
    the fast path: runs over ABLATION_IMAGES alternate between the two, after one of each
    that warms oneDNN's kernels up, and the best of each is kept (a busy neighbour or a
    slower spell of a shared machine only ever adds time)."""
    import convae.nn.trainer

    if not keep_memory:
        # glibc's own thresholds: the trainer asks for nothing
        convae.nn.trainer.keep_freed_memory = lambda: False  # type: ignore[assignment]
    train_set = load_dataset("mnist", train=True)
    best = {False: float("inf"), True: float("inf")}
    for round_ in range(ABLATION_ROUNDS + 1):
        for fast in (False, True):
            cfg = TrainConfig(limit=ABLATION_IMAGES, fast_path=fast)
            model = initial_model(arch, train_set, cfg)
            seconds = train(model, train_set.images, cfg).epochs[0].seconds
            if round_:
                best[fast] = min(best[fast], seconds * N_TRAIN / ABLATION_IMAGES)
    return best[False], best[True]


def ablation_table() -> str:
    """Every architecture with and without each speed-up; freed memory kept or not in a
    fresh process each (kept memory cannot be given back within one)."""
    lines = [
        "| architecture | s/epoch, neither | kept memory | kept memory + fast path (default) "
        "| fast path's gain |",
        "|---|---|---|---|---|",
    ]
    for arch in ARCHITECTURES:
        times = {}
        for keep in (False, True):
            out = subprocess.run(
                [sys.executable, __file__, "--ablation-one", arch, str(int(keep))],
                capture_output=True,
                text=True,
                check=True,
            )
            times[keep] = json.loads(out.stdout.splitlines()[-1])
            print(f"ablation {arch} keep={keep}: {times[keep]}", file=sys.stderr)
        neither, kept, fast = times[False][0], times[True][0], times[True][1]
        lines.append(f"| {arch} | {neither:.1f} | {kept:.1f} | {fast:.1f} | {kept / fast:.2f}x |")
    return "\n".join(lines)


COMPILE_IMAGES = 3_200  # per timed run: 50 steps of batch 64


def compile_one(arch: str) -> tuple[float, float, float]:
    """Seconds per MNIST epoch of ``arch`` at TrainConfig()'s defaults as it trains
    (eager, the fast path) and after ``model.compile()`` (torch.compile's default mode),
    and the seconds the compiled model's first run spent compiling. Best of two timed runs
    each; the process starts with an empty compiler cache (see compile_table)."""
    train_set = load_dataset("mnist", train=True)
    cfg = TrainConfig(limit=COMPILE_IMAGES)

    def seconds(model: Autoencoder) -> float:
        return train(model, train_set.images, cfg).epochs[0].seconds

    eager = initial_model(arch, train_set, cfg)
    compiled = initial_model(arch, train_set, cfg)
    compiled.compile()  # calling the model runs the compiled code (the fast path steps aside)
    first = seconds(compiled)  # compiles forward and backward, then trains
    best = {"eager": float("inf"), "compiled": float("inf")}
    for _ in range(2):
        best["eager"] = min(best["eager"], seconds(eager))
        best["compiled"] = min(best["compiled"], seconds(compiled))
    per_epoch = N_TRAIN / COMPILE_IMAGES
    return best["eager"] * per_epoch, best["compiled"] * per_epoch, first - best["compiled"]


def compile_table() -> str:
    """Every architecture eager and under torch.compile, each in a fresh process with a
    fresh compiler cache: the compile time is what a first training run pays."""
    lines = [
        "| architecture | s/epoch, eager (default) | s/epoch, `model.compile()` "
        "| compiling (s, once per process) | compile's gain |",
        "|---|---|---|---|---|",
    ]
    for arch in ARCHITECTURES:
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run(
                [sys.executable, __file__, "--compile-one", arch],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache},
            )
        eager, compiled, compiling = json.loads(out.stdout.splitlines()[-1])
        print(f"compile {arch}: {eager:.1f} {compiled:.1f} {compiling:.1f}", file=sys.stderr)
        lines.append(
            f"| {arch} | {eager:.1f} | {compiled:.1f} | {compiling:.0f} | {eager / compiled:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=10, help="stop a loop here at most")
    parser.add_argument(
        "--probe-every",
        type=int,
        default=PROBE_EVERY,
        help="training images between two scorings (a time to a target is the first "
        "scoring's at or below it, so it is late by up to this many images' time)",
    )
    parser.add_argument("--cli", action="store_true", help="also time the command line")
    parser.add_argument("--json", type=Path, help="also write every probe here")
    parser.add_argument("--ablation", action="store_true", help="also time each speed-up")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile per architecture"
    )
    parser.add_argument("--cli-only", action="store_true", help="only --cli")
    parser.add_argument("--ablation-only", action="store_true", help="only --ablation")
    parser.add_argument("--compile-only", action="store_true", help="only time torch.compile")
    parser.add_argument("--ablation-one", nargs=2, help=argparse.SUPPRESS)  # a subprocess's
    parser.add_argument("--compile-one", help=argparse.SUPPRESS)  # a subprocess's
    args = parser.parse_args()
    if args.ablation_one:
        arch, keep = args.ablation_one
        print(json.dumps(ablation_one(arch, keep == "1")))
        return
    if args.compile_one:
        print(json.dumps(compile_one(args.compile_one)))
        return
    only = {"cli_only": cli_table, "ablation_only": ablation_table, "compile_only": compile_table}
    if any(getattr(args, name) for name in only):
        for name, table in only.items():
            if getattr(args, name):
                print(table())
        return

    test = load_dataset("mnist", train=False).images
    load_dataset("mnist", train=True)  # read once, outside both loops' time
    tutorial = "tutorial loop (DataLoader, batch 20, Adam 1e-3)"
    d = with_architecture_defaults(TrainConfig(), ARCH)
    ours = (
        f"convae `TrainConfig()` (batch {d.batch_size}, Adam {d.lr:g} after {d.warmup} steps "
        f"of warm-up, betas {d.adam_betas})"
    )
    runs: dict[str, list[Run]] = {tutorial: [], ours: []}
    # the tutorial's seeds first: its one-epoch mean is the first target
    for seed in args.seeds:
        runs[tutorial].append(
            tutorial_loop(seed, test, PUBLISHED_TEN_EPOCHS, args.max_epochs, args.probe_every)
        )
        print(f"tutorial seed {seed}: {runs[tutorial][-1].probes}", file=sys.stderr)
    targets = {
        "the tutorial's 1-epoch MSE": statistics.mean(r.at_epoch()[1] for r in runs[tutorial]),
        f"its published 10-epoch MSE {PUBLISHED_TEN_EPOCHS:.4f}": PUBLISHED_TEN_EPOCHS,
    }
    for seed in args.seeds:
        runs[ours].append(
            convae_loop(seed, test, min(targets.values()), args.max_epochs, args.probe_every)
        )
        print(f"convae seed {seed}: {runs[ours][-1].probes}", file=sys.stderr)

    print(
        f"{ARCH} on full MNIST, seeds {', '.join(map(str, args.seeds))}; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; scored every {args.probe_every:,} "
        "training images\n"
    )
    print(loop_table(runs, targets))
    t_ep = [statistics.median(r.at_epoch()[0] for r in rs) for rs in runs.values()]
    print(f"\nepoch time: convae {t_ep[0] / t_ep[1]:.1f}x faster (medians; goal 8x)")
    for name, target in targets.items():
        times = [[t for r in rs if (t := r.time_to(target)) is not None] for rs in runs.values()]
        if all(len(ts) == len(args.seeds) for ts in times):
            a, b = (statistics.median(ts) for ts in times)
            print(f"time to {name}: convae {a / b:.1f}x faster (medians; goal 8x)")
    if args.json:
        args.json.write_text(
            json.dumps({k: [r.__dict__ for r in rs] for k, rs in runs.items()}, indent=1)
        )
    if args.cli:
        print()
        print(cli_table())
    if args.ablation:
        print()
        print(ablation_table())
    if args.compile:
        print()
        print(compile_table())


if __name__ == "__main__":
    main()
