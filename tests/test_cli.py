"""The command line.

``main()`` runs in this process, where a traceback would be an exception that fails the
test: train, eval, and every kind of bad input. One subprocess, ``python -m convae eval``
as users run it, checks what only a process shows: the exit status, and stdout and
stderr free of anything but the command's own output. Each subprocess pays 4-10 s of
imports (torch, torchvision, torchmetrics) on a 2-core machine, hence only one.
"""

import contextlib
import io
import json
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

from convae import Noise, architecture_names, evaluate, load_checkpoint
from convae.cli import main

KEYS = {"arch", "dataset", "latent_size", "params", "mse", "psnr", "ssim"}
NO_NETWORK = {  # a proxy that refuses connections: downloads fail at once, network or not
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "",
    "NO_PROXY": "",
}


def run_cli(*args, data_dir, **env):
    environ = {**os.environ, "CONVAE_DATA_DIR": str(data_dir), **NO_NETWORK, **env}
    return subprocess.run(
        [sys.executable, "-m", "convae", *map(str, args)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def call_main(args) -> int:
    """``main()`` as ``python -m convae`` ends: argparse's errors exit, the rest return."""
    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        return e.code


def run_main(capsys, *args):
    """``main()`` in this process: (exit status, stdout, stderr)."""
    status = call_main(args)
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, stderr, message):
    assert status == 2  # the status of every error caused by the user's input
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert re.search(message, stderr), stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """A conv-upsample model trained for one quick epoch by ``main()``: (checkpoint,
    exit status, stdout, stderr). Module-wide, so ``capsys`` cannot capture it: the
    streams are redirected here instead."""
    out = tmp_path_factory.mktemp("cli") / "x.pt"
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        mp.setenv("CONVAE_DATA_DIR", str(data_root))
        for var, value in NO_NETWORK.items():
            mp.setenv(var, value)
        status = call_main(
            [
                "train",
                "--arch",
                "conv-upsample",
                "--epochs",
                "1",
                "--limit",
                "500",
                "--test-limit",
                "200",
                "--quiet",
                "--out",
                out,
            ]
        )
    return out, status, stdout.getvalue(), stderr.getvalue()


def one_json_object(stdout):
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout  # ONE JSON object, nothing else
    return json.loads(lines[0])


def check_eval_report(report, checkpoint, images, noise):
    assert KEYS <= set(report)
    assert report["arch"] == "conv-upsample" and report["dataset"] == "mnist"
    assert report["latent_size"] == 196 and report["params"] > 0 and report["n"] == 200
    assert report["noise"] == noise
    noisy = ("noisy_mse", "noisy_psnr", "noisy_ssim")
    if noise == "none":
        assert all(report[k] is None for k in noisy)
    else:
        assert all(isinstance(report[k], float) for k in noisy)
    # the same numbers as evaluating the file here (evaluate's default noise seed is eval's)
    expected = evaluate(load_checkpoint(checkpoint).model, images, Noise.parse(noise))
    for k in ("mse", "psnr", "ssim") + (noisy if noise != "none" else ()):
        assert report[k] == pytest.approx(getattr(expected, k), rel=1e-4), k


def random_bytes_file(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    return path


def file_in_the_way(tmp_path):
    (tmp_path / "afile").write_text("I am a file, not a folder")
    return tmp_path / "afile" / "x.pt"


def plain_pickle_file(folder: Path) -> Path:
    path = folder / "plain.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return path


BAD_INPUTS = {  # name: (arguments given the test's tmp folder, expected message)
    "unknown architecture": (
        lambda t: ["train", "--arch", "resnet", "--out", t / "x.pt"],
        r"unknown architecture 'resnet'; choose one of: linear, conv-transpose",
    ),
    "bad noise spec": (
        lambda t: ["train", "--arch", "linear", "--noise", "gaussian:x", "--out", t / "x.pt"],
        r"argument --noise: bad noise 'gaussian:x': write KIND:LEVEL",
    ),
    "unknown noise kind": (
        lambda t: ["eval", t / "x.pt", "--noise", "blur:1"],
        r"argument --noise: unknown noise kind 'blur'",
    ),
    "missing checkpoint": (
        lambda t: ["eval", t / "nope.pt"],
        r"no checkpoint at .*nope\.pt: the file does not exist",
    ),
    "random-bytes checkpoint": (
        lambda t: ["eval", random_bytes_file(t)],
        r"cannot load .*random\.pt: it is truncated, corrupted or not a torch file",
    ),
    "unknown dataset": (
        lambda t: ["train", "--arch", "linear", "--dataset", "imagenet", "--out", t / "x.pt"],
        r"unknown dataset 'imagenet'; choose one of: mnist, fashion-mnist, cifar10",
    ),
    "out under a file": (
        lambda t: [
            "train",
            "--arch",
            "linear",
            "--limit",
            "1",
            "--test-limit",
            "1",
            "--quiet",
            "--out",
            file_in_the_way(t),
        ],
        r"convae: error: (File exists|Not a directory): .*afile",
    ),
    "out is a folder": (
        lambda t: ["train", "--arch", "linear", "--out", t],
        r"--out .* is a folder; give a file name such as .*linear\.pt",
    ),
    "plain pickle checkpoint": (
        lambda t: ["eval", plain_pickle_file(t)],
        r"cannot load .*plain\.pkl: it is truncated, corrupted or not a torch file",
    ),
    "unknown schedule": (
        lambda t: ["train", "--arch", "linear", "--schedule", "warmup", "--out", t / "x.pt"],
        r"argument --schedule: invalid choice: 'warmup'",
    ),
    "zero epochs": (
        lambda t: ["train", "--arch", "linear", "--epochs", "0", "--out", t / "x.pt"],
        r"argument --epochs: expected a number of at least 1, got 0",
    ),
    "negative warm-up": (
        lambda t: ["train", "--arch", "linear", "--warmup", "-5", "--out", t / "x.pt"],
        r"argument --warmup: expected a number of at least 0, got -5",
    ),
    "warm-up not a number": (
        lambda t: ["train", "--arch", "linear", "--warmup", "1e9", "--out", t / "x.pt"],
        r"argument --warmup: expected a whole number, got '1e9'",
    ),
}


# --- the same main(), in this process ---------------------------------------------------


def test_train_writes_a_checkpoint_describing_the_run(trained):
    out, status, stdout, stderr = trained
    assert status == 0, stderr
    assert re.search(rf"saved {re.escape(str(out))}: test MSE [\d.]+, PSNR [\d.]+ dB", stdout)
    assert stderr == ""  # --quiet: no progress bar
    ckpt = load_checkpoint(out)
    assert ckpt.config.arch == "conv-upsample" and ckpt.dataset == "mnist"
    assert ckpt.meta["train"]["limit"] == 500 and ckpt.meta["test_images"] == 200
    # the settings as used: conv-upsample's own learning rate and warm-up
    assert ckpt.meta["train"]["lr"] == 1.5e-2 and ckpt.meta["train"]["warmup"] == 50
    assert set(ckpt.meta["metrics"]["clean"]) >= {"mse", "psnr", "ssim"}
    assert len(ckpt.meta["history"]["epochs"]) == 1


def test_a_blind_denoiser_trains_on_a_range_of_levels_and_is_measured_at_it(
    tmp_path, capsys, monkeypatch, data_root
):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    out = tmp_path / "blind.pt"
    status, stdout, stderr = run_main(
        capsys, "train", "--arch", "denoiser-blind", "--noise", "gaussian:0-0.6",
        "--limit", "64", "--test-limit", "50", "--quiet", "--out", out,
    )  # fmt: skip
    assert status == 0, stderr
    ckpt = load_checkpoint(out)
    assert ckpt.meta["train_noise"] == "gaussian:0-0.6"
    assert Noise.parse(ckpt.meta["train"]["noise"]) == Noise("gaussian", 0.6, low=0.0)
    assert set(ckpt.meta["metrics"]) == {"clean", "gaussian:0-0.6"}
    assert ckpt.meta["metrics"]["gaussian:0-0.6"]["noisy_psnr"] is not None


def test_eval_json_with_noise_prints_one_object_with_noisy_metrics(
    trained, capsys, monkeypatch, data_root, mnist_test
):
    out = trained[0]
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    status, stdout, _ = run_main(
        capsys, "eval", out, "--json", "--limit", "200", "--noise", "gaussian:0.5"
    )
    assert status == 0
    check_eval_report(one_json_object(stdout), out, mnist_test.images[:200], "gaussian:0.5")


def test_list_prints_every_architecture_name_first(capsys):
    status, out, _ = run_main(capsys, "list")
    assert status == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == architecture_names()
    assert all(len(line.split()) > 1 for line in lines)  # and a description


def test_eval_json_prints_one_object_with_the_metrics(
    trained, capsys, monkeypatch, data_root, mnist_test
):
    out = trained[0]
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    status, stdout, _ = run_main(capsys, "eval", out, "--json", "--limit", "200")
    assert status == 0
    check_eval_report(one_json_object(stdout), out, mnist_test.images[:200], "none")


def test_eval_prints_a_readable_summary(trained, capsys, monkeypatch, data_root):
    out = trained[0]
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    status, stdout, _ = run_main(capsys, "eval", out, "--limit", "20", "--noise", "mask:0.3")
    assert status == 0
    assert re.search(r"conv-upsample on mnist \(20 test images, input noise mask:0.3\)", stdout)
    assert re.search(r"MSE [\d.]+  PSNR [\d.]+ dB  SSIM [\d.]+", stdout)
    assert "noisy input: PSNR" in stdout


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_ends_in_one_line_naming_the_problem(
    tmp_path, monkeypatch, capsys, data_root, name
):
    make_args, message = BAD_INPUTS[name]
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    status, out, err = run_main(capsys, *make_args(tmp_path))
    assert_one_line_error(status, err, message)
    assert out == ""  # refused before any training ("epoch 1"), and nothing else printed
    assert not (tmp_path / "x.pt").exists()


def test_missing_data_ends_in_one_line_naming_the_folder(tmp_path, monkeypatch, capsys, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CONVAE_DATA_DIR", str(empty))
    status, _, err = run_main(
        capsys,
        "train",
        "--arch",
        "linear",
        "--quiet",
        "--dataset",
        "fashion-mnist",
        "--out",
        tmp_path / "x.pt",
    )
    assert_one_line_error(
        status,
        err,
        rf"fashion-mnist is not in {re.escape(str(empty))}"
        r".*FashionMNIST/raw/train-images-idx3-ubyte\.gz",
    )


def test_eval_shows_its_progress_on_stderr_unless_quiet(trained, capsys, monkeypatch, data_root):
    out = trained[0]
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    status, stdout, stderr = run_main(capsys, "eval", out, "--json", "--limit", "1500")
    assert status == 0 and one_json_object(stdout)["n"] == 1500  # stdout: only the JSON
    # a bar over the 1,500 images (which frames it draws depends on timing)
    assert re.search(r"measuring on mnist: +\d+%\|.*\| \d+/1500 ", stderr)
    status, stdout, stderr = run_main(capsys, "eval", out, "--json", "--limit", "1500", "--quiet")
    assert status == 0 and one_json_object(stdout)["n"] == 1500 and stderr == ""


def test_the_command_exits_with_mains_status(monkeypatch):
    """``convae`` and ``python -m convae`` run ``main`` and exit with its status (a
    refused input's 2 included), after the exit handlers and with the output flushed:
    the interpreter's own teardown is skipped, nothing else."""
    import convae.cli

    events = []

    class Exited(Exception):
        pass

    def exit_now(code):
        events.append(("exit", code))
        raise Exited

    monkeypatch.setattr(convae.cli.atexit, "_run_exitfuncs", lambda: events.append("handlers"))
    monkeypatch.setattr(convae.cli.os, "_exit", exit_now)
    monkeypatch.setattr(convae.cli.sys.stdout, "flush", lambda: events.append("flushed"))
    for status in (0, 2):
        monkeypatch.setattr(convae.cli, "main", lambda status=status: status)
        with pytest.raises(Exited):
            convae.cli.run()
        assert events == ["handlers", "flushed", ("exit", status)]
        events.clear()


# --- end to end, in a subprocess -------------------------------------------------------


@pytest.mark.slow
def test_eval_as_a_process_prints_only_its_json_and_exits_0(trained, data_root, mnist_test):
    """``python -m convae eval`` in a fresh process: exit status 0, stdout one JSON object
    with the noisy metrics, stderr empty with ``--quiet`` (no warning, no traceback, from
    the imports or anywhere)."""
    out = trained[0]
    result = run_cli(
        "eval",
        out,
        "--json",
        "--limit",
        "200",
        "--noise",
        "gaussian:0.5",
        "--quiet",
        data_dir=data_root,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    check_eval_report(one_json_object(result.stdout), out, mnist_test.images[:200], "gaussian:0.5")
