"""Retrain the pretrained models in checkpoints/ and rewrite their index and tables.

    CONVAE_DATA_DIR=/path/to/datasets python scripts/train_checkpoints.py
    python scripts/train_checkpoints.py --dataset cifar10     # where CIFAR-10 can be downloaded
    python scripts/train_checkpoints.py --only conv-bn --dataset mnist   # one model

For every (dataset, architecture) it trains with the recipe below, evaluates on the full
test set (clean, and with Gaussian noise 0.1, 0.3 and 0.5), saves
``checkpoints/{dataset}-{arch}.pt`` atomically, and rewrites ``checkpoints/index.json``,
the table in ``checkpoints/README.md`` and the summary in the top-level ``README.md``.
Entries for models not retrained in this run are kept. Training and measuring are
``convae.fitting.fit``'s, as for ``python -m convae train``; it measures with
``convae.metrics.evaluate`` on the test split and noise seed ``python -m convae eval``
uses, so ``eval FILE --json`` reproduces the figures exactly.
"""

from __future__ import annotations

import argparse
import fcntl
import re
import time
from pathlib import Path

import torch

from convae import Noise, TrainConfig, dataset_names, load_dataset
from convae.checkpoint import save_checkpoint
from convae.fitting import Fitted, fit, initial_model
from convae.models import ARCHITECTURES
from convae.zoo import checkpoint_dir, read_index, write_index

ROOT = Path(__file__).resolve().parent.parent

# measured besides clean input (the training noise is added if it is not among them)
EVAL_NOISES = (Noise("gaussian", 0.1), Noise("gaussian", 0.3), Noise("gaussian", 0.5))

# Per-architecture training recipe; anything not named uses TrainConfig's defaults, but
# for precision (the shipped set was trained in float32, which every CPU computes alike)
# and the learning rate (2e-3 for all, from before each architecture had its own).
BASE_RECIPE: dict = {"precision": "float32", "lr": 2e-3}
RECIPES: dict[str, dict] = {
    "linear": {"epochs": 20},
    # the tutorial's own lr: at 2e-3 two of its four ReLU code channels died on MNIST
    "conv-transpose": {"epochs": 20, "lr": 1e-3},
    "conv-upsample": {"epochs": 20},
    "conv-deep": {"epochs": 15},
    # noisy in, clean out (as in the denoising tutorial); 6 constant-lr epochs of the model
    # without batch norm reached 18.9 dB at noise 0.5, 20 cosine ones 19.3 dB (goal: 20)
    "denoiser": {"epochs": 20, "schedule": "cosine", "noise": Noise("gaussian", 0.5)},
    "conv-bn": {"epochs": 10},
    # a 2-value code: cosine decay settles the few points that decide the whole map
    "conv-2d": {"epochs": 20, "schedule": "cosine"},
}
SHIPPED_DATASETS = ("mnist", "fashion-mnist")  # what the shipped set covers


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
        "lr": cfg.lr,
        "schedule": cfg.schedule,
        "train_seconds": round(fitted.history.seconds, 1),
        "test_images": meta["test_images"],
        "metrics": meta["metrics"],
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
    recipe = {**BASE_RECIPE, **RECIPES.get(arch, {})}
    recipe["epochs"] = max(1, round(recipe.get("epochs", 1) * epochs_scale))
    cfg = TrainConfig(seed=seed, limit=limit, **recipe)
    train_set = load_dataset(dataset, train=True)
    test_set = load_dataset(dataset, train=False)
    model = initial_model(arch, train_set, cfg)
    print(
        f"== {dataset} / {arch}: {cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr}, "
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


def update_index(out_dir: Path, entry: dict | None = None) -> list[dict]:
    """Add ``entry`` to the index under a file lock (several runs may share a folder)."""
    with open(out_dir / ".index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = {(e["dataset"], e["arch"]): e for e in read_index(out_dir)}
        if entry is not None:
            entries[(entry["dataset"], entry["arch"])] = entry
        ordered = sorted(entries.values(), key=sort_key)
        write_index(ordered, out_dir)
    return ordered


def markdown_table(entries: list[dict]) -> str:
    head = (
        "| file | arch | dataset | trained on | code | params | clean MSE | clean PSNR | "
        "clean SSIM | PSNR @ σ=0.1 (input) | PSNR @ σ=0.3 (input) | "
        "PSNR @ σ=0.5 (input) |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for e in entries:
        m = e["metrics"]
        noisy = [
            f"{m[k]['psnr']:.2f} ({m[k]['noisy_psnr']:.2f})"
            for k in ("gaussian:0.1", "gaussian:0.3", "gaussian:0.5")
        ]
        rows.append(
            f"| {e['file']} | {e['arch']} | {e['dataset']} | {e['train_noise']} | "
            f"{e['latent_size']} | {e['params']:,} | {m['clean']['mse']:.5f} | "
            f"{m['clean']['psnr']:.2f} | {m['clean']['ssim']:.3f} | " + " | ".join(noisy) + " |"
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


def write_tables(entries: list[dict], out_dir: Path) -> None:
    table = markdown_table(entries)
    readme = out_dir / "README.md"
    if not readme.exists():
        readme.write_text(
            "# Pretrained models\n\nWritten by `scripts/train_checkpoints.py`; do not edit the "
            "table by hand.\n\n<!-- checkpoints:start -->\n<!-- checkpoints:end -->\n"
        )
    replace_between(readme, "checkpoints", table)
    if out_dir.resolve() == (ROOT / "checkpoints").resolve():  # not for trial runs elsewhere
        replace_between(ROOT / "README.md", "checkpoints", table)


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
        help="rewrite the README tables from index.json, train nothing",
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
    write_tables(update_index(out_dir), out_dir)
    print(f"done in {time.perf_counter() - start:.0f}s; index at {out_dir / 'index.json'}")


if __name__ == "__main__":
    main()
