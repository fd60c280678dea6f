"""The pretrained models in checkpoints/ load, and reproduce the figures their index states.

The reproductions on full test sets, the searches on training images and the retraining
script are marked ``slow``: the fast tier checks every file and a small subset.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from support import REPO as ROOT

from convae import Noise, load_checkpoint, load_dataset
from convae.data.noise import NOISE_KINDS
from convae.measuring.denoise import (
    CLASSICAL_FILTERS,
    SWEEP_IMAGES,
    SWEEP_LEVELS,
    SWEEP_SEED,
    Filtered,
    classical_sweep,
)
from convae.measuring.metrics import evaluate, evaluate_model_on
from convae.measuring.pca import pca_for
from convae.measuring.tuning import LEVELS, classical_sweep_for, strengths_for, tuned_strengths
from convae.nn.models import ARCHITECTURES
from convae.nn.zoo import read_baselines, read_index

CHECKPOINTS = ROOT / "checkpoints"
ENTRIES = read_index(CHECKPOINTS)
BASELINES = read_baselines(CHECKPOINTS)
SIGMAS = ("gaussian:0.1", "gaussian:0.3", "gaussian:0.5")
SPOT_CHECK = 500  # test images re-evaluated per model; the full set is in the index
# The full 10,000-image eval, exact, for one model per dataset: the app's first choice.
# A full eval takes 2-10 s a model; every file's own figures equal its index entry, and
# every file gets the spot check on SPOT_CHECK images.
EXACT = [e for e in ENTRIES if e["arch"] == "conv-upsample"]


def _id(entry: dict) -> str:
    return entry["file"]


@pytest.fixture
def data_env(data_root, fashion_root, monkeypatch):
    """Both datasets found through CONVAE_DATA_DIR, as the CLI and the app find them."""
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))


@pytest.fixture(scope="module")
def retraining_script():
    """``scripts/train_checkpoints.py`` loaded as a module, from its file."""
    spec = importlib.util.spec_from_file_location(
        "train_checkpoints", ROOT / "scripts" / "train_checkpoints.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_every_architecture_ships_for_mnist_and_fashion_mnist():
    shipped = {(e["dataset"], e["arch"]) for e in ENTRIES}
    missing = {(d, a) for d in ("mnist", "fashion-mnist") for a in ARCHITECTURES} - shipped
    assert not missing, f"no shipped checkpoint for {sorted(missing)}"


def _shipped_files() -> set[str]:
    """The .pt files the repository ships; models saved from the app sit beside them."""
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--", "checkpoints/*.pt"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        return {p.name for p in CHECKPOINTS.glob("*.pt")}
    return {Path(f).name for f in tracked}


def test_index_lists_exactly_the_shipped_files():
    listed = {e["file"] for e in ENTRIES}
    assert listed == _shipped_files()
    assert all((CHECKPOINTS / f).is_file() for f in listed)


def test_checkpoints_are_small():
    sizes = {p.name: p.stat().st_size for p in CHECKPOINTS.glob("*.pt")}
    assert all(size < 2_000_000 for size in sizes.values()), sizes
    assert sum(sizes.values()) < 20_000_000


def test_index_entries_are_complete():
    for e in ENTRIES:
        for key in ("file", "arch", "dataset", "train_noise", "latent_size", "params"):
            assert key in e, (e["file"], key)
        for spec in ("clean", "gaussian:0.1", "gaussian:0.3", "gaussian:0.5"):
            m = e["metrics"][spec]
            assert {"mse", "psnr", "ssim"} <= set(m), (e["file"], spec)
            if spec != "clean":
                assert m["noisy_psnr"] is not None
        assert e["test_images"] == 10000


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_checkpoint_loads_and_matches_its_entry(entry):
    ckpt = load_checkpoint(CHECKPOINTS / entry["file"])
    assert ckpt.config.arch == entry["arch"]
    assert ckpt.dataset == entry["dataset"]
    assert ckpt.meta["train_noise"] == entry["train_noise"]
    assert ckpt.model.latent_size == entry["latent_size"]
    assert ckpt.model.num_params == entry["params"]
    assert ckpt.meta["metrics"] == entry["metrics"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_checkpoint_reconstructs_test_images_as_its_index_states(entry, data_env):
    """The first 500 test images give (about) the MSE the index states for all 10,000;
    the index itself is an exact output of the same function on the full set."""
    model = load_checkpoint(CHECKPOINTS / entry["file"]).model
    noise = Noise.parse(entry["train_noise"])
    spec = "clean" if noise.is_clean else str(noise)
    stated = entry["metrics"][spec]
    got = evaluate_model_on(model, entry["dataset"], noise, limit=SPOT_CHECK)
    assert got.n == SPOT_CHECK
    assert got.mse == pytest.approx(stated["mse"], rel=0.15)
    assert got.psnr == pytest.approx(stated["psnr"], abs=1.0)
    assert got.ssim == pytest.approx(stated["ssim"], abs=0.05)


def _mnist(arch: str) -> dict:
    return next(e for e in ENTRIES if e["arch"] == arch and e["dataset"] == "mnist")


def test_the_published_quality_goals_hold_on_the_mnist_test_set():
    """Issue goals, on the index's full-test-set figures (which the tests around this one
    tie to the files and to a fresh ``eval``)."""
    assert _mnist("conv-upsample")["metrics"]["clean"]["mse"] <= 0.0055
    best = max(
        (e for e in ENTRIES if e["dataset"] == "mnist" and e["latent_size"] <= 196),
        key=lambda e: e["metrics"]["clean"]["psnr"],
    )
    assert best["metrics"]["clean"]["psnr"] >= 26, best["file"]
    assert _mnist("denoiser")["metrics"]["gaussian:0.5"]["psnr"] >= 20


def _pca_psnr(dataset: str, k: int, spec: str = "clean") -> float:
    row = next(p for p in BASELINES[dataset]["pca"] if p["latent_size"] == k)
    return row["metrics"][spec]["psnr"]


def _best_clean(dataset: str, max_code: int) -> dict:
    return max(
        (e for e in ENTRIES if e["dataset"] == dataset and e["latent_size"] <= max_code),
        key=lambda e: e["metrics"]["clean"]["psnr"],
    )


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_learned_models_beat_pca_with_their_code_size(dataset):
    """The classical reference's goals, on the index's full-test-set figures: a linear
    encoder at least reaches PCA, convae's best 196-value code beats PCA-196 by 1 dB and
    a code of at most 128 values beats PCA-128."""
    linear = next(e for e in ENTRIES if e["dataset"] == dataset and e["arch"] == "linear")
    assert linear["metrics"]["clean"]["psnr"] >= _pca_psnr(dataset, 32)
    best = _best_clean(dataset, 196)
    assert best["metrics"]["clean"]["psnr"] >= _pca_psnr(dataset, 196) + 1, best["file"]
    small = _best_clean(dataset, 128)
    assert small["metrics"]["clean"]["psnr"] > _pca_psnr(dataset, 128), small["file"]


def test_the_best_cifar10_code_of_256_values_beats_pca_256():
    best = _best_clean("cifar10", 256)
    assert best["metrics"]["clean"]["psnr"] > _pca_psnr("cifar10", 256), best["file"]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("spec", SIGMAS)
def test_the_blind_denoiser_beats_every_classical_filter(dataset, spec):
    """One model for every level beats the noisy input, the median filter, total
    variation and non-local means (their strengths tuned for that very level)."""
    entry = next(e for e in ENTRIES if e["dataset"] == dataset and e["arch"] == "denoiser-blind")
    assert Noise.parse(entry["train_noise"]).is_range
    got = entry["metrics"][spec]
    classical = [c["metrics"][spec]["psnr"] for c in BASELINES[dataset]["classical"]]
    assert got["psnr"] > max([got["noisy_psnr"], *classical])


def test_the_published_tables_are_the_index(retraining_script):
    tables = {
        "checkpoints": retraining_script.markdown_table(ENTRIES, BASELINES),
        "denoising": retraining_script.denoising_table(ENTRIES, BASELINES),
    }
    for name, table in tables.items():
        block = f"<!-- {name}:start -->\n{table}\n<!-- {name}:end -->"
        for readme in (ROOT / "docs" / "models.md", CHECKPOINTS / "README.md"):
            assert block in readme.read_text(), (
                f"{readme} is out of date: run python scripts/train_checkpoints.py --tables-only"
            )
    assert "| (none: closed form) | PCA-196 | mnist |" in tables["checkpoints"]


# ------------------------------------------------------------------------ baselines
def test_the_baselines_cover_every_code_size_and_denoiser_on_the_full_test_sets():
    assert set(BASELINES) == {e["dataset"] for e in ENTRIES}
    for dataset, base in BASELINES.items():
        assert base["test_images"] == 10000
        sizes = {e["latent_size"] for e in ENTRIES if e["dataset"] == dataset}
        assert [p["latent_size"] for p in base["pca"]] == sorted(sizes)
        for p in base["pca"]:
            assert set(p["metrics"]) == {"clean", *SIGMAS}
            assert all(m["n"] == 10000 for m in p["metrics"].values())
        assert [c["name"] for c in base["classical"]] == list(CLASSICAL_FILTERS)
        for c in base["classical"]:
            assert set(c["metrics"]) == set(c["strengths"]) == set(SIGMAS)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(BASELINES))
def test_the_index_baselines_are_reproduced(dataset, data_env, retraining_script):
    """PCA's figures and the classical filters' (at the strengths chosen again on the
    training images) on the index's check subset, exactly."""
    base = BASELINES[dataset]
    check = base["check"]
    assert check["n"] == retraining_script.CHECK_IMAGES
    noise = Noise.parse(check["noise"])
    images = load_dataset(dataset, train=False).images[: check["n"]]
    for k, stated in check["pca"].items():
        got = evaluate(pca_for(dataset, int(k)), images, noise).to_dict()
        for key in ("mse", "psnr", "ssim", "noisy_psnr"):
            assert got[key] == pytest.approx(stated[key], rel=1e-5), (k, key)
    for row in base["classical"]:
        name = row["name"]
        chosen = {spec: tuned_strengths(dataset, Noise.parse(spec))[name] for spec in SIGMAS}
        assert chosen == row["strengths"], name  # chosen on training images, as stated
        got = evaluate(Filtered(name, chosen[str(noise)]), images, noise).to_dict()
        stated = check["classical"][name]
        for key in ("mse", "psnr", "ssim"):
            assert got[key] == pytest.approx(stated[key], rel=1e-5), (name, key)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(BASELINES))
def test_the_shipped_strengths_cover_the_slider_and_are_those_searched(
    dataset, data_env, monkeypatch
):
    """The index ships a strength for every noise kind at every slider level, so a
    slider move never waits for a search; a few of them, searched again on the training
    images, are the same; and the app's lookup reads them without loading any data."""
    table = BASELINES[dataset]["strengths"]
    assert len(table) == 1 + 3 * len(LEVELS) and "gaussian:0.05" in table and "none" in table
    for spec in ("gaussian:0.15", "salt-pepper:0.4", "mask:0.7"):
        assert tuned_strengths(dataset, Noise.parse(spec)) == table[spec], spec

    def no_data(*args, **kwargs):
        raise AssertionError("a shipped strength needs no search")

    monkeypatch.setattr("convae.data.datasets.load_dataset", no_data)
    level = 0.05 * 7  # as a slider sends it: 0.35000000000000003
    assert strengths_for(dataset, Noise("gaussian", level)) == table["gaussian:0.35"]
    # a level typed into a link takes the nearest shipped level's: no search
    assert strengths_for(dataset, Noise("mask", 0.123)) == table["mask:0.1"]
    assert strengths_for(dataset, Noise("gaussian", 7.5)) == table["gaussian:1"]
    assert strengths_for(dataset, Noise()) == table["none"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(BASELINES))
def test_the_shipped_noise_sweeps_are_the_classical_filters_measured_again(
    dataset, data_env, monkeypatch
):
    """The classical curves the index ships for the Explore page, one level of each
    noise kind measured again (one noise draw is scaled to every level, so a level
    alone gives the same figures); the page's reader returns them without measuring."""
    sweeps = BASELINES[dataset]["sweeps"]
    assert set(sweeps) == set(NOISE_KINDS)
    images = load_dataset(dataset, train=False).floats(slice(0, SWEEP_IMAGES))
    i = 3
    for kind, shipped in sweeps.items():
        assert (shipped["levels"], shipped["n_images"]) == (SWEEP_LEVELS, SWEEP_IMAGES)
        again = classical_sweep(
            images,
            kind,
            [SWEEP_LEVELS[i]],
            lambda level, kind=kind: strengths_for(dataset, Noise(kind, level)),
            SWEEP_SEED,
        )
        for name, ys in again.psnr.items():
            assert ys[0] == pytest.approx(shipped["psnr"][name][i], rel=1e-6), (kind, name)

    def no_data(*args, **kwargs):
        raise AssertionError("a shipped sweep needs no measuring")

    monkeypatch.setattr("convae.data.datasets.load_dataset", no_data)
    assert classical_sweep_for(dataset, "mask").psnr == sweeps["mask"]["psnr"]


def test_a_test_set_smaller_than_the_shipped_curves_is_measured(data_env):
    """Where the model's curves cover fewer images than the shipped ones (a small test
    set), the classical curves are measured on as many, so the page can join them."""
    sweep = classical_sweep_for("mnist", "gaussian", n_images=6)
    assert sweep.n_images == 6 and sweep.levels == SWEEP_LEVELS
    images = load_dataset("mnist", train=False).floats(slice(0, 6))
    again = classical_sweep(
        images,
        "gaussian",
        SWEEP_LEVELS,
        lambda level: strengths_for("mnist", Noise("gaussian", level)),
        SWEEP_SEED,
    )
    assert sweep.psnr == again.psnr
    assert sweep.psnr != BASELINES["mnist"]["sweeps"]["gaussian"]["psnr"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(BASELINES))
def test_eval_pca_reproduces_the_index_on_the_full_test_set(dataset, data_env, capsys):
    from convae.cli import main

    # 196 values for the 28x28 datasets, 256 (8x8x4) for CIFAR-10
    k = max(p["latent_size"] for p in BASELINES[dataset]["pca"] if p["latent_size"] <= 256)
    row = next(p for p in BASELINES[dataset]["pca"] if p["latent_size"] == k)
    args = ["eval", "--pca", str(k), "--dataset", dataset, "--json", "--quiet"]
    assert main([*args, "--noise", "gaussian:0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mse", "psnr", "ssim", "noisy_psnr"):
        assert out[key] == pytest.approx(row["metrics"]["gaussian:0.5"][key], rel=1e-5), key
    assert out["params"] == row["params"]


def test_the_shipped_models_stand_against_the_baselines_as_published():
    """What the tables make visible, stated once: every convolutional seed architecture
    is below PCA with its code size on clean MNIST (the tutorials' linear model reaches it,
    as a linear code can), and the denoiser trained at 0.5 beats every classical filter
    at 0.3 and 0.5 but not at 0.1."""
    pca = {p["latent_size"]: p["metrics"] for p in BASELINES["mnist"]["pca"]}
    seeds = [a for a, arch in ARCHITECTURES.items() if arch.from_tutorial and a != "linear"]
    assert seeds == ["conv-transpose", "conv-upsample", "conv-deep", "denoiser"]
    for e in (e for e in ENTRIES if e["dataset"] == "mnist" and e["arch"] in seeds):
        gap = e["metrics"]["clean"]["psnr"] - pca[e["latent_size"]]["clean"]["psnr"]
        assert gap < 0, e["file"]
    best = {
        spec: max(c["metrics"][spec]["psnr"] for c in BASELINES["mnist"]["classical"])
        for spec in SIGMAS
    }
    denoiser = _mnist("denoiser")["metrics"]
    assert denoiser["gaussian:0.1"]["psnr"] < best["gaussian:0.1"]
    assert denoiser["gaussian:0.3"]["psnr"] > best["gaussian:0.3"]
    assert denoiser["gaussian:0.5"]["psnr"] > best["gaussian:0.5"]


def test_one_model_per_dataset_is_checked_exactly():
    assert sorted(e["dataset"] for e in EXACT) == sorted({e["dataset"] for e in ENTRIES})


@pytest.mark.slow
@pytest.mark.parametrize("entry", EXACT, ids=_id)
def test_eval_cli_reproduces_the_index_exactly(entry, data_env, capsys):
    """``python -m convae eval FILE --json`` gives the index's figures on the same data:
    at noise 0.5, the model's output and the noisy input's own figures."""
    from convae.cli import main

    assert (
        main(["eval", str(CHECKPOINTS / entry["file"]), "--json", "--noise", "gaussian:0.5"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    stated = entry["metrics"]["gaussian:0.5"]
    for key in ("mse", "psnr", "ssim", "noisy_psnr"):
        assert out[key] == pytest.approx(stated[key], rel=1e-5), key
    assert out["latent_size"] == entry["latent_size"] and out["params"] == entry["params"]


@pytest.mark.slow
def test_the_retraining_script_writes_checkpoints_index_and_table(
    retraining_script, data_env, tmp_path, monkeypatch, capsys
):
    """The command that rebuilds the shipped set, on a tiny budget into another folder
    (its ``main()`` here: a process would pay seconds of imports)."""
    out = tmp_path / "set"
    monkeypatch.setattr(
        "sys.argv",
        [
            "train_checkpoints.py",
            "--dataset",
            "mnist",
            "--only",
            "conv-upsample",
            "--only",
            "denoiser",
            "--epochs-scale",
            "0.05",
            "--limit",
            "256",
            "--test-limit",
            "64",
            "--out",
            str(out),
        ],
    )
    retraining_script.main()
    assert f"index at {out / 'index.json'}" in capsys.readouterr().out
    entries = read_index(out)
    assert [(e["dataset"], e["arch"]) for e in entries] == [
        ("mnist", "conv-upsample"),
        ("mnist", "denoiser"),
    ]
    for e in entries:
        ckpt = load_checkpoint(out / e["file"])
        assert ckpt.meta["metrics"] == e["metrics"] and e["test_images"] == 64
    assert entries[1]["train_noise"] == "gaussian:0.5"
    readme = (out / "README.md").read_text()
    assert "| mnist-denoiser.pt | denoiser | mnist | gaussian:0.5 |" in readme
    # the baselines, measured by the same command on the same 64 test images
    base = read_baselines(out)["mnist"]
    assert base["test_images"] == 64
    assert [p["latent_size"] for p in base["pca"]] == [196, 256]
    assert "| (none: closed form) | PCA-256 | mnist |" in readme
    assert "(denoiser, gaussian:0.5)" in readme  # the denoising table

    # a later run for a new model keeps them and adds only its code size's PCA
    monkeypatch.setattr(
        "sys.argv",
        ["train_checkpoints.py", "--dataset", "mnist", "--only", "conv-2d"]
        + ["--epochs-scale", "0.05", "--limit", "256", "--test-limit", "64", "--out", str(out)],
    )
    retraining_script.main()
    again = read_baselines(out)["mnist"]
    assert [p["latent_size"] for p in again["pca"]] == [2, 196, 256]
    assert again["pca"][1:] == base["pca"] and again["classical"] == base["classical"]
