"""Retrain the pretrained models in checkpoints/ and rewrite their index and tables.

    CONVAE_DATA_DIR=/path/to/datasets python scripts/train_checkpoints.py
    python scripts/train_checkpoints.py --dataset cifar10     # where CIFAR-10 can be downloaded
    python scripts/train_checkpoints.py --only conv-bn --dataset mnist   # one model

For every (dataset, architecture) it trains with the recipe below, evaluates on the full
test set (clean, and with Gaussian noise 0.1, 0.3 and 0.5), saves
``checkpoints/{dataset}-{arch}.pt`` atomically, and rewrites ``checkpoints/index.json``,
the tables in ``checkpoints/README.md`` and in ``docs/models.md``.
Entries for models not retrained in this run are kept.

The index's baselines are measured by the same command, on the same test images and
noise: PCA with every code size the dataset's models use, and the classical denoisers
(median, total variation, non-local means: strengths chosen on training images). A
dataset's baselines are measured when it has none yet, when a model brings a new code
size (that PCA only), and again with ``--baselines``; otherwise they are kept, so adding a
model later costs only its new PCA row. Training and measuring are
``convae.classroom.fitting.fit``'s, as for ``python -m convae train``; it measures with
``convae.measuring.metrics.evaluate`` on the test split and noise seed ``python -m convae eval``
uses, so ``eval FILE --json`` reproduces the figures exactly.
"""

from __future__ import annotations

import argparse
import fcntl
import math
import re
import time
from dataclasses import asdict
from pathlib import Path

import torch

from convae import ModelConfig, Noise, TrainConfig, build_model, dataset_names, load_dataset
from convae.classroom.fitting import Fitted, fit
from convae.data.datasets import DATASETS
from convae.data.noise import NOISE_KINDS
from convae.measuring.denoise import CLASSICAL_FILTERS, Filtered
from convae.measuring.metrics import evaluate
from convae.measuring.pca import pca_for
from convae.measuring.tuning import classical_sweep_for, strength_table, tuned_strengths
from convae.nn.checkpoint import save_checkpoint
from convae.nn.models import ARCHITECTURES
from convae.nn.trainer import with_architecture_defaults
from convae.nn.zoo import checkpoint_dir, read_baselines, read_index, write_index

ROOT = Path(__file__).resolve().parent.parent

# measured besides clean input (the training noise is added if it is not among them)
EVAL_NOISES = (Noise("gaussian", 0.1), Noise("gaussian", 0.3), Noise("gaussian", 0.5))

# Per-architecture training recipe; anything not named uses TrainConfig's defaults, but
# for precision (the shipped set was trained in float32, which every CPU computes alike),
# the learning rate (2e-3 for all, from before each architecture had its own) and the
# warm-up (none: the shipped set was trained before it).
BASE_RECIPE: dict = {"precision": "float32", "lr": 2e-3, "warmup": 0}
RECIPES: dict[str, dict] = {
    # at 2e-3, 13 of the 32 ReLU code units died (always 0) and it stayed 0.2-0.4 dB below
    # PCA-32 on MNIST and Fashion-MNIST; at 5e-4 one died, and 20 epochs gave 1.8 dB more
    # on MNIST (first 2,000 test images)
    "linear": {"epochs": 30, "schedule": "cosine", "lr": 5e-4},
    # the tutorial's own lr: at 2e-3 two of its four ReLU code channels died on MNIST
    "conv-transpose": {"epochs": 20, "lr": 1e-3},
    "conv-upsample": {"epochs": 20},
    "conv-deep": {"epochs": 15},
    # noisy in, clean out (as in the denoising tutorial); 6 constant-lr epochs of the model
    # without batch norm reached 18.9 dB at noise 0.5, 20 cosine ones 19.3 dB (goal: 20)
    "denoiser": {"epochs": 20, "schedule": "cosine", "noise": Noise("gaussian", 0.5)},
    "conv-bn": {"epochs": 10},
    # one epoch reached 28.0 dB on MNIST and 24.4 on Fashion-MNIST (PCA-196: 28.0, 25.2)
    "conv-res": {"epochs": 10, "schedule": "cosine"},
    # one epoch reached 24.0 dB on Fashion-MNIST (PCA-128: 23.2)
    "conv-res-half": {"epochs": 4, "schedule": "cosine"},
    # blind: every image its own level, from clean to beyond the app's usual range
    "denoiser-blind": {
        "epochs": 6,
        "schedule": "cosine",
        "noise": Noise("gaussian", 0.6, low=0.0),
    },
    # a 2-value code: cosine decay settles the few points that decide the whole map
    "conv-2d": {"epochs": 20, "schedule": "cosine"},
}
# What a dataset trains differently, over RECIPES (CIFAR-10: 50,000 colour images;
# "depths" builds a wider model), and over the base recipe (DATASET_BASE_RECIPES: CIFAR-10
# trains with bfloat16 autocast where the CPU computes it natively, 2-3x faster; "auto")
DATASET_RECIPES: dict[str, dict[str, dict]] = {
    # Fashion-MNIST's textures leave more to learn: one epoch of conv-res was 3.6 dB
    # short of MNIST's
    "fashion-mnist": {"conv-res": {"epochs": 14}},
    "cifar10": {
        # at 2e-3, 1e-3 and 5e-4 every code unit died within an epoch (a constant output):
        # 3,072 positive inputs move each unit a long way per Adam step
        "linear": {"epochs": 15, "lr": 1e-4, "schedule": "constant"},
        "conv-transpose": {"epochs": 8, "lr": 2e-3},
        "conv-upsample": {"epochs": 8},
        "conv-deep": {"epochs": 6},
        "denoiser": {"epochs": 6, "schedule": "cosine", "noise": Noise("gaussian", 0.5)},
        # 4x the default width; the code stays 8x8x4 = 256 values, as PCA-256's
        "conv-bn": {"epochs": 20, "schedule": "cosine", "depths": (64, 128, 4)},
        "conv-res": {"epochs": 16},
        "conv-2d": {"epochs": 6, "schedule": "cosine"},
    },
}
DATASET_BASE_RECIPES: dict[str, dict] = {"cifar10": {"precision": "auto", "lr": None}}
SHIPPED_DATASETS = ("mnist", "fashion-mnist", "cifar10")  # what the shipped set covers
# the baselines' figures are repeated on the first CHECK_IMAGES test images at CHECK_NOISE,
# so that a test reproduces them in seconds (the full sets take a minute or two)
CHECK_IMAGES = 300
CHECK_NOISE = Noise("gaussian", 0.3)


def entry_for(path: Path, fitted: Fitted, dataset: str, cfg: TrainConfig) -> dict:
    """The index's entry for one checkpoint: its description, in the index's fields."""
    model, meta = fitted.model, fitted.meta
    return {
        "file": path.name,
        "arch": model.config.arch,
        "dataset": dataset,
        "train_noise": meta["train_noise"],
        "latent_size": model.latent_size,
        "params": model.num_params,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": meta["train"]["lr"],  # the rate used (a recipe may leave it to the model)
        "schedule": cfg.schedule,
        "train_seconds": round(fitted.history.seconds, 1),
        "test_images": meta["test_images"],
        "metrics": meta["metrics"],
    }


def recipe_for(dataset: str, arch: str) -> dict:
    """How ``arch`` trains on ``dataset``: TrainConfig's fields (and ``depths``)."""
    return {
        **BASE_RECIPE,
        **DATASET_BASE_RECIPES.get(dataset, {}),
        **RECIPES.get(arch, {}),
        **DATASET_RECIPES.get(dataset, {}).get(arch, {}),
    }


def train_one(
    dataset: str,
    arch: str,
    out_dir: Path,
    epochs_scale: float = 1.0,
    seed: int = 0,
    limit: int | None = None,
    test_limit: int | None = None,
) -> dict:
    recipe = recipe_for(dataset, arch)
    depths = tuple(recipe.pop("depths", ()))
    recipe["epochs"] = max(1, round(recipe.get("epochs", 1) * epochs_scale))
    cfg = TrainConfig(seed=seed, limit=limit, **recipe)
    train_set = load_dataset(dataset, train=True)
    test_set = load_dataset(dataset, train=False)
    model = build_model(
        ModelConfig(arch, train_set.shape, depths=depths),
        seed=cfg.seed,
        output_mean=train_set.subset(limit=cfg.limit).mean_intensity(),
    )  # as initial_model built it when the shipped set was trained (its ReLU units'
    # biases as PyTorch initialises them), at the recipe's depths
    print(
        f"== {dataset} / {arch}: {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"lr {with_architecture_defaults(cfg, arch).lr}, "
        f"noise {cfg.noise}",
        flush=True,
    )

    def on_epoch(s):
        print(
            f"   epoch {s.epoch:2d}: train {s.train_loss:.5f}  test {s.test_loss:.5f}  "
            f"{s.seconds:5.1f}s",
            flush=True,
        )

    fitted = fit(
        model,
        train_set.images,
        cfg,
        test_images=test_set.images[:2000],
        eval_images=test_set.subset(limit=test_limit).images,
        also_measure=EVAL_NOISES,
        meta={"dataset": dataset},
        on_epoch=on_epoch,
    )
    path = out_dir / f"{dataset}-{arch}.pt"
    entry = entry_for(path, fitted, dataset, cfg)
    save_checkpoint(path, model, fitted.meta)
    m = entry["metrics"]
    print(
        f"   saved {path.name}: clean MSE {m['clean']['mse']:.5f} PSNR "
        f"{m['clean']['psnr']:.2f}; gaussian 0.5 PSNR {m['gaussian:0.5']['psnr']:.2f} "
        f"(input {m['gaussian:0.5']['noisy_psnr']:.2f})",
        flush=True,
    )
    return entry


def sort_key(entry: dict) -> tuple[int, int]:
    return dataset_names().index(entry["dataset"]), list(ARCHITECTURES).index(entry["arch"])


def _pca_row(dataset: str, k: int, images: torch.Tensor) -> dict:
    pca = pca_for(dataset, k)
    # keyed as the models' metrics are: "clean", then "gaussian:0.1", ...
    metrics = {"clean": evaluate(pca, images).to_dict()}
    metrics |= {str(n): evaluate(pca, images, n).to_dict() for n in EVAL_NOISES}
    return {"latent_size": k, "params": pca.num_params, "metrics": metrics}


def _classical_row(dataset: str, name: str, images: torch.Tensor) -> dict:
    strengths = {str(n): tuned_strengths(dataset, n)[name] for n in EVAL_NOISES}
    metrics = {
        str(n): evaluate(Filtered(name, strengths[str(n)]), images, n).to_dict()
        for n in EVAL_NOISES
    }
    return {"name": name, "strengths": strengths, "metrics": metrics}


def _check(dataset: str, pca_sizes: list[int]) -> dict:
    """The baselines on the first CHECK_IMAGES test images at CHECK_NOISE."""
    images = load_dataset(dataset, train=False).images[:CHECK_IMAGES]
    strengths = tuned_strengths(dataset, CHECK_NOISE)
    return {
        "n": len(images),
        "noise": str(CHECK_NOISE),
        "pca": {
            str(k): evaluate(pca_for(dataset, k), images, CHECK_NOISE).to_dict() for k in pca_sizes
        },
        "classical": {
            name: evaluate(Filtered(name, strengths[name]), images, CHECK_NOISE).to_dict()
            for name in CLASSICAL_FILTERS
        },
    }


def measure_baselines(
    dataset: str, code_sizes: set[int], old: dict | None, test_limit: int | None = None
) -> dict:
    """A dataset's baselines, measured on the test images the models are measured on.

    ``old``'s parts are kept where they were measured on as many test images; only what
    is missing is measured (everything, if ``old`` is None): a PCA row for each new code
    size, the classical rows, and what the app reads: the strength table and the
    classical noise sweeps (not for a trial run on fewer test images: they take a minute
    or two of CPU, and the app can measure them itself).
    """
    test = load_dataset(dataset, train=False).subset(limit=test_limit)
    if old is not None and old.get("test_images") != len(test):
        old = None  # measured on another number of test images: all again
    base = dict(old or {"test_images": len(test)})
    pca = {row["latent_size"]: row for row in base.get("pca", [])}
    changed = old is None
    for k in sorted(code_sizes - set(pca)):
        print(f"== {dataset} / PCA-{k}", flush=True)
        pca[k] = _pca_row(dataset, k, test.images)
        changed = True
    base["pca"] = [pca[k] for k in sorted(pca)]
    if "classical" not in base:
        print(f"== {dataset} / classical filters", flush=True)
        base["classical"] = [_classical_row(dataset, n, test.images) for n in CLASSICAL_FILTERS]
        changed = True
    if "strengths" not in base and test_limit is None:
        print(f"== {dataset} / the classical filters' strengths at every level", flush=True)
        base["strengths"] = strength_table(dataset)
    if "sweeps" not in base and test_limit is None:
        print(f"== {dataset} / the classical filters' noise sweeps", flush=True)
        base["sweeps"] = {kind: asdict(classical_sweep_for(dataset, kind)) for kind in NOISE_KINDS}
    if changed or "check" not in base:
        base["check"] = _check(dataset, sorted(pca))
    return base


def update_index(
    out_dir: Path,
    entry: dict | None = None,
    baselines: bool = False,
    fresh: bool = False,
    test_limit: int | None = None,
) -> tuple[list[dict], dict[str, dict]]:
    """Add ``entry`` to the index under a file lock (several runs may share a folder);
    with ``baselines``, bring every dataset's baselines up to date (``fresh``: measure
    them all again). Returns the entries and the baselines."""
    with open(out_dir / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = {(e["dataset"], e["arch"]): e for e in read_index(out_dir)}
        if entry is not None:
            entries[(entry["dataset"], entry["arch"])] = entry
        ordered = sorted(entries.values(), key=sort_key)
        known = read_baselines(out_dir)
        if baselines:
            for dataset in sorted({e["dataset"] for e in ordered}, key=dataset_names().index):
                sizes = {e["latent_size"] for e in ordered if e["dataset"] == dataset}
                old = None if fresh else known.get(dataset)
                known[dataset] = measure_baselines(dataset, sizes, old, test_limit)
        write_index(ordered, out_dir, known)
    return ordered, known


SIGMAS = ("gaussian:0.1", "gaussian:0.3", "gaussian:0.5")


def _pca_of(baselines: dict[str, dict], dataset: str, k: int) -> dict | None:
    rows = baselines.get(dataset, {}).get("pca", [])
    return next((r for r in rows if r["latent_size"] == k), None)


def markdown_table(entries: list[dict], baselines: dict[str, dict]) -> str:
    """Every model, then each dataset's PCA rows; "vs PCA" is the model's clean PSNR
    minus that of PCA with the same code size (negative: below the linear method)."""
    head = (
        "| file | arch | dataset | trained on | code | params | clean MSE | clean PSNR | "
        "vs PCA | clean SSIM | PSNR @ σ=0.1 (input) | PSNR @ σ=0.3 (input) | "
        "PSNR @ σ=0.5 (input) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )

    def cells(m: dict) -> str:
        noisy = [f"{m[k]['psnr']:.2f} ({m[k]['noisy_psnr']:.2f})" for k in SIGMAS]
        return (
            f"{m['clean']['mse']:.5f} | {m['clean']['psnr']:.2f}"
            + " | {vs} | "
            + f"{m['clean']['ssim']:.3f} | "
            + " | ".join(noisy)
        )

    rows = []
    datasets = sorted({e["dataset"] for e in entries} | set(baselines), key=dataset_names().index)
    for dataset in datasets:
        for e in (e for e in entries if e["dataset"] == dataset):
            pca = _pca_of(baselines, dataset, e["latent_size"])
            psnr = e["metrics"]["clean"]["psnr"]
            vs = "—" if pca is None else f"{psnr - pca['metrics']['clean']['psnr']:+.2f}"
            if e["latent_size"] >= math.prod(DATASETS[dataset].shape):  # PCA: the identity
                vs = "— (no compression)"
            rows.append(
                f"| {e['file']} | {e['arch']} | {dataset} | {e['train_noise']} | "
                f"{e['latent_size']} | {e['params']:,} | "
                + cells(e["metrics"]).format(vs=vs)
                + " |"
            )
        for p in baselines.get(dataset, {}).get("pca", []):
            rows.append(
                f"| (none: closed form) | PCA-{p['latent_size']} | {dataset} | none | "
                f"{p['latent_size']} | {p['params']:,} | "
                + cells(p["metrics"]).format(vs="—")
                + " |"
            )
    return head + "\n" + "\n".join(rows)


def denoising_table(entries: list[dict], baselines: dict[str, dict]) -> str:
    """Each model trained on noisy input at each σ, beside what needs no training: the
    noisy input itself, each classical filter, PCA with the model's code size."""
    names = list(CLASSICAL_FILTERS)
    head = (
        "| dataset | σ | noisy input | "
        + " | ".join(names)
        + " | PCA (model's code size) | model (trained on) | model vs best classical |\n"
        + "|---" * (len(names) + 6)
        + "|"
    )
    rows = []
    for dataset, base in baselines.items():
        classical = {c["name"]: c for c in base.get("classical", [])}
        models = [e for e in entries if e["dataset"] == dataset and e["train_noise"] != "none"]
        for spec in SIGMAS:
            filters = [classical[n]["metrics"][spec]["psnr"] for n in names if n in classical]
            noisy = next(iter(classical.values()))["metrics"][spec]["noisy_psnr"]
            start = f"| {dataset} | {spec.split(':')[1]} | {noisy:.2f} | " + " | ".join(
                f"{v:.2f}" for v in filters
            )
            if not models:
                rows.append(start + " | — | none shipped | — |")
            for e in models:
                pca = _pca_of(baselines, dataset, e["latent_size"])
                pca_cell = (
                    "—"
                    if pca is None
                    else f"{pca['metrics'][spec]['psnr']:.2f} (PCA-{pca['latent_size']})"
                )
                psnr = e["metrics"][spec]["psnr"]
                rows.append(
                    start + f" | {pca_cell} | {psnr:.2f} ({e['arch']}, {e['train_noise']}) | "
                    f"{psnr - max(filters):+.2f} |"
                )
    return head + "\n" + "\n".join(rows)


def replace_between(path: Path, name: str, text: str) -> None:
    """Replace the text between <!-- name:start --> and <!-- name:end --> in ``path``."""
    if not path.exists():
        return
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = path.read_text()
    if start not in content:
        return
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", content))


def write_tables(entries: list[dict], baselines: dict[str, dict], out_dir: Path) -> None:
    tables = {
        "checkpoints": markdown_table(entries, baselines),
        "denoising": denoising_table(entries, baselines),
    }
    readme = out_dir / "README.md"
    if not readme.exists():
        readme.write_text(
            "# Pretrained models\n\nWritten by `scripts/train_checkpoints.py`; do not edit the "
            "tables by hand.\n\n<!-- checkpoints:start -->\n<!-- checkpoints:end -->\n\n"
            "<!-- denoising:start -->\n<!-- denoising:end -->\n"
        )
    for name, table in tables.items():
        replace_between(readme, name, table)
        if out_dir.resolve() == (ROOT / "checkpoints").resolve():  # not for trial runs
            replace_between(ROOT / "docs" / "models.md", name, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        action="append",
        choices=dataset_names(),
        help=f"repeatable; default: {', '.join(SHIPPED_DATASETS)}",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(ARCHITECTURES),
        help="retrain only these architectures (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: checkpoints/")
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply every recipe's epochs (e.g. 0.1 for a quick trial)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="train on the first N images (trials only)")
    parser.add_argument("--test-limit", type=int, help="evaluate on N test images (trials only)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--tables-only",
        action="store_true",
        help="rewrite the tables in checkpoints/README.md and docs/models.md from index.json "
        "(adding any baselines it lacks), train nothing",
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="measure every dataset's baselines (PCA, classical filters) again, not only "
        "what they lack; with --tables-only: only them, train nothing",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out_dir = args.out or checkpoint_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not args.tables_only:
        for dataset in args.dataset or SHIPPED_DATASETS:
            for arch in args.only or ARCHITECTURES:
                entry = train_one(
                    dataset,
                    arch,
                    out_dir,
                    args.epochs_scale,
                    args.seed,
                    args.limit,
                    args.test_limit,
                )
                update_index(out_dir, entry)  # after every model: a crash loses little
    # baselines last: they need every code size the models use (with --tables-only too:
    # an index from before the baselines gets them; a complete one costs nothing)
    entries, baselines = update_index(
        out_dir, baselines=True, fresh=args.baselines, test_limit=args.test_limit
    )
    write_tables(entries, baselines, out_dir)
    print(f"done in {time.perf_counter() - start:.0f}s; index at {out_dir / 'index.json'}")


if __name__ == "__main__":
    main()
