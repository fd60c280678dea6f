"""The command line: ``python -m convae list | train | eval``.

Every error caused by the user's input ends in one line on stderr and exit status 2;
Ctrl-C ends with status 130 and never leaves a half-written checkpoint.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from convae.base.errors import ConvaeError, check_choice
from convae.data.datasets import ImageSet, dataset_names, load_dataset
from convae.data.folders import check_shape, is_folder_name
from convae.data.noise import Noise
from convae.measuring.metrics import evaluate_model_on
from convae.nn.allocator import keep_freed_memory
from convae.nn.checkpoint import load_checkpoint, save_checkpoint
from convae.nn.config import LOSSES, PRECISIONS, SCHEDULES, TrainConfig
from convae.nn.models import ARCHITECTURES

if TYPE_CHECKING:
    from torch import nn


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a number of at least {least}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _noise(text: str) -> Noise:
    try:
        return Noise.parse(text)
    except ConvaeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 3x32x32, got {text!r}")
    try:
        return check_shape(tuple(int(p) for p in parts))
    except ConvaeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


DATASET_HELP = f"one of: {', '.join(dataset_names())}; or folder:PATH, a folder of images"
SHAPE_HELP = (
    "a folder of images' shape, CxHxW (1x28x28, 1x32x32, 3x28x28 or 3x32x32); default: "
    "1x28x28 if every picture is grey, else 3x32x32"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m convae",
        description="Train, evaluate and inspect convolutional autoencoders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the architectures, one per line, name first")

    t = sub.add_parser("train", help="train a model and save it as a checkpoint")
    t.add_argument("--arch", required=True, help=f"one of: {', '.join(ARCHITECTURES)}")
    t.add_argument("--dataset", default="mnist", help=DATASET_HELP)
    t.add_argument("--shape", type=_shape, help=SHAPE_HELP)
    t.add_argument("--epochs", type=_positive_int, default=1)
    t.add_argument("--limit", type=_positive_int, help="train on the first N images only")
    defaults = TrainConfig()
    t.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    t.add_argument(
        "--lr",
        type=float,
        default=defaults.lr,
        help="Adam's learning rate (default: the architecture's own, 1.5e-2 for conv-upsample, "
        "else 2e-3)",
    )
    t.add_argument("--loss", choices=LOSSES, default=defaults.loss)
    t.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=defaults.schedule,
        help="learning rate: constant, or cosine (falls to 0 by the last step)",
    )
    t.add_argument(
        "--warmup",
        type=_non_negative_int,
        default=defaults.warmup,
        metavar="STEPS",
        help="steps over which the learning rate first rises to its value (at most a tenth "
        "of the run; 0: none; default: the architecture's own, 50 for conv-upsample and "
        "linear, else 0)",
    )
    t.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help="auto: bfloat16 autocast where the CPU computes it natively",
    )
    t.add_argument(
        "--noise",
        type=_noise,
        default=Noise(),
        help="train a denoiser: noisy input KIND:LEVEL (or KIND:LOW-HIGH, a level drawn per "
        "image: a blind denoiser), clean target",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--test-limit",
        type=_positive_int,
        help="evaluate on the first N test images only (default: all)",
    )
    t.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="measure a checkpoint's MSE, PSNR and SSIM on a test set")
    e.add_argument(
        "path",
        type=Path,
        nargs="?",
        help="checkpoint file, or a shipped one's name (e.g. mnist-conv-upsample)",
    )
    e.add_argument(
        "--pca",
        type=_positive_int,
        metavar="K",
        help="measure PCA with K components (fitted on the training split) instead of a "
        "checkpoint: the classical reference for a code of K values; needs --dataset",
    )
    e.add_argument(
        "--dataset", help="default: the dataset the model was trained on; or folder:PATH"
    )
    e.add_argument("--noise", type=_noise, default=Noise(), help="corrupt the input: KIND:LEVEL")
    e.add_argument("--limit", type=_positive_int, help="the first N test images only")
    e.add_argument("--seed", type=int, default=0, help="noise seed")
    e.add_argument("--json", action="store_true", help="one JSON object on stdout")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _images_bar(total: int, desc: str, quiet: bool):
    """A progress bar on stderr counting images (stdout stays for results and JSON)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc=desc, disable=quiet, file=sys.stderr, leave=False)


def _load(name: str, train: bool, shape, quiet: bool) -> ImageSet:
    """A split of a dataset; a folder of images is read with a progress bar."""
    from tqdm import tqdm

    if not is_folder_name(name):
        return load_dataset(name, train=train, shape=shape)
    bar: tqdm | None = None

    def on_progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # steps: each picture's header (for its shape), then its pixels
            bar = tqdm(
                total=total,
                unit="step",
                desc=f"reading {name}",
                disable=quiet,
                file=sys.stderr,
                leave=False,
            )
        bar.update(done - bar.n)

    try:
        return load_dataset(name, train=train, shape=shape, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()


def cmd_list(_args) -> int:
    width = max(map(len, ARCHITECTURES))
    for name, arch in ARCHITECTURES.items():
        print(f"{name:<{width}}  {arch.summary}")
    return 0


def cmd_train(args) -> int:
    from tqdm import tqdm

    from convae.classroom.fitting import fit, initial_model

    check_choice(
        "architecture", args.arch, ARCHITECTURES, hint="(`python -m convae list` describes them)"
    )
    if args.out.is_dir():
        raise ConvaeError(
            f"--out {args.out} is a folder; give a file name such as "
            f"{args.out / (args.arch + '.pt')}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)  # fail now, not after the training
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        schedule=args.schedule,
        warmup=args.warmup,
        noise=args.noise,
        seed=args.seed,
        limit=args.limit,
        precision=args.precision,
    )
    train_set = _load(args.dataset, True, args.shape, args.quiet)
    test_set = _load(args.dataset, False, args.shape, args.quiet).subset(limit=args.test_limit)
    model = initial_model(args.arch, train_set, cfg)
    n = min(len(train_set), args.limit or len(train_set))
    steps = -(-n // cfg.batch_size) * cfg.epochs
    bar = tqdm(
        total=steps,
        unit="step",
        disable=args.quiet,
        file=sys.stderr,
        desc=f"{args.arch} on {args.dataset}",
    )

    def on_step(p):
        bar.update(1)
        bar.set_postfix(
            epoch=f"{p.epoch}/{p.epochs}",
            loss=f"{p.loss:.4f}",
            img_s=f"{p.images_per_s:.0f}",
            refresh=False,
        )

    def on_epoch(s):
        bar.write(
            f"epoch {s.epoch}: train loss {s.train_loss:.5f}, test loss "
            f"{s.test_loss:.5f}, {s.seconds:.1f}s ({s.images_per_s:.0f} images/s)"
            + (f", about {s.eta_s:.0f}s left" if s.epoch < cfg.epochs else "")
        )

    measuring: tqdm | None = None

    def on_measure(done, total):
        nonlocal measuring
        if measuring is None:  # training is over: its bar gives way to this one
            bar.close()
            measuring = _images_bar(total, "measuring on the test set", args.quiet)
        measuring.update(done - measuring.n)

    fitted = fit(
        model,
        train_set.images,
        cfg,
        test_images=test_set.images[:2000],
        eval_images=test_set.images,
        meta={"dataset": args.dataset},
        on_step=on_step,
        on_epoch=on_epoch,
        on_measure=on_measure,
    )
    bar.close()
    if measuring is not None:
        measuring.close()
    save_checkpoint(args.out, model, fitted.meta)
    clean = fitted.metrics["clean"]
    print(
        f"saved {args.out}: test MSE {clean['mse']:.5f}, PSNR {clean['psnr']:.2f} dB, "
        f"SSIM {clean['ssim']:.3f} on {len(test_set)} {args.dataset} test images"
    )
    return 0


def _eval_target(args) -> tuple[nn.Module, dict]:
    """The model ``eval`` measures (a checkpoint, or PCA) and what the output says of it."""
    if (args.path is None) == (args.pca is None):
        raise ConvaeError("give a checkpoint to measure, or --pca K (not both)")
    if args.pca is not None:
        from convae.measuring.pca import pca_for

        if not args.dataset:
            raise ConvaeError("--pca needs --dataset (PCA is fitted on its training split)")
        if not is_folder_name(args.dataset):
            check_choice("dataset", args.dataset, dataset_names())
        try:
            pca = pca_for(args.dataset, args.pca)
        except ValueError as e:
            raise ConvaeError(f"--pca {args.pca}: {e}") from None
        return pca, {
            "file": None,
            "arch": "pca",
            "dataset": args.dataset,
            "train_noise": "none",
            "latent_size": pca.latent_size,
            "params": pca.num_params,
            "shape": list(pca.in_shape),
        }
    from convae.nn.zoo import resolve_path

    ckpt = load_checkpoint(resolve_path(args.path))
    dataset = args.dataset or ckpt.dataset
    if not dataset:
        raise ConvaeError(f"{args.path} does not say its dataset; pass --dataset")
    # a folder of images is read at the model's shape; a named dataset has its own
    shape = ckpt.config.in_shape if is_folder_name(dataset) else None
    test_set = _load(dataset, False, shape, args.quiet)
    if test_set.shape != ckpt.config.in_shape:
        raise ConvaeError(
            f"{args.path} is a model for input {ckpt.config.in_shape}, but {dataset} images "
            f"are {test_set.shape}; pick a dataset of that shape"
        )
    return ckpt.model, {
        "file": str(args.path),
        "arch": ckpt.config.arch,
        "dataset": dataset,
        "train_noise": ckpt.meta.get("train_noise", "none"),
        "latent_size": ckpt.model.latent_size,
        "params": ckpt.model.num_params,
        "shape": list(ckpt.config.in_shape),
    }


def cmd_eval(args) -> int:
    model, described = _eval_target(args)
    dataset = described["dataset"]
    in_shape = tuple(described.pop("shape"))
    shape = in_shape if is_folder_name(dataset) else None  # a named dataset has its own
    test_set = _load(dataset, False, shape, args.quiet)
    n = len(test_set.subset(limit=args.limit))  # what evaluate_model_on will measure
    with _images_bar(n, f"measuring on {dataset}", args.quiet) as bar:
        result = evaluate_model_on(
            model, dataset, args.noise, args.limit, args.seed, on_batch=bar.update, shape=shape
        )
    out = {**described, **result.to_dict()}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['arch']} on {dataset} ({result.n} test images, input noise {result.noise}):")
        print(f"  MSE {result.mse:.5f}  PSNR {result.psnr:.2f} dB  SSIM {result.ssim:.4f}")
        if result.noisy_psnr is not None:
            print(f"  noisy input: PSNR {result.noisy_psnr:.2f} dB  SSIM {result.noisy_ssim:.4f}")
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # a short-lived process: measuring reuses its batches' memory too
    try:
        with warnings.catch_warnings():
            # torch warns about the pickles it refuses; the CLI's own message says it all
            warnings.simplefilter("ignore")
            return COMMANDS[args.command](args)
    except ConvaeError as e:
        print(f"convae: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convae: interrupted; nothing was saved", file=sys.stderr)
        return 130
    except OSError as e:  # e.g. --out in a folder that cannot be written
        print(f"convae: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


def run() -> NoReturn:
    """The ``convae`` command (and ``python -m convae``): :func:`main`, then exit with its
    status.

    Python's own exit takes the interpreter apart object by object: it garbage-collects,
    several times over, the hundreds of thousands of objects torch made on import (none
    of them garbage), frees them one at a time, and runs torch's C++ destructors, all for
    memory the process is about to hand back whole: 0.18 s of every command after its
    last line of output (``eval``, six runs: 0.26 s against 0.08 s, medians; before
    that, collecting alone took 0.6 s). So the exit handlers run (``atexit``'s, torch's among
    them), the output is flushed, and the process ends there.
    """
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (`| head`)
            stream.flush()
    os._exit(code)
