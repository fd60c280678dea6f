"""PCA, the classical reference with the same code size: theory, shapes, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from convae import Noise, evaluate, load_dataset
from convae.cli import main
from convae.measuring.pca import fit_pca, pca_for


@pytest.fixture(scope="module")
def mnist_2000():
    return load_dataset("mnist", train=True).images[:2000]


def test_training_error_is_the_sum_of_the_discarded_eigenvalues(mnist_2000):
    """Theory, not a re-run of the same code: on its own training images PCA's mean
    squared error per pixel is (sum of the eigenvalues it leaves out) / (pixels)."""
    x = mnist_2000.double() / 255
    for k in (1, 20, 150):
        pca = fit_pca(mnist_2000, k)
        error = (pca.decode(pca.encode(x.float())).double() - x).pow(2).mean().item()
        discarded = pca.eigenvalues[k:].sum().item() / x[0].numel()
        assert error == pytest.approx(discarded, rel=1e-4), k
    # and the eigenvalues are the variances along the components
    codes = pca.encode(x.float()).double()
    assert codes.var(0, unbiased=False)[:5] == pytest.approx(pca.eigenvalues[:5], rel=1e-4)


def test_components_are_orthonormal_and_fits_are_deterministic(mnist_2000):
    pca = fit_pca(mnist_2000, 40)
    gram = pca.components @ pca.components.T
    assert torch.allclose(gram, torch.eye(40), atol=1e-5)
    again = fit_pca(mnist_2000, 40)
    assert torch.equal(pca.components, again.components) and torch.equal(pca.mean, again.mean)
    assert (pca.eigenvalues[:-1] >= pca.eigenvalues[1:]).all()  # largest first


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_encode_decode_shapes_for_grey_and_colour_images(shape):
    images = torch.randint(
        0, 256, (300, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    pca = fit_pca(images, 16)
    x = images[:5].float() / 255
    assert pca.encode(x).shape == (5, 16) and pca.latent_size == 16
    out = pca(x)
    assert out.shape == (5, *shape) and 0 <= out.min() and out.max() <= 1  # clipped


@pytest.mark.parametrize(
    "dataset", ["mnist", "fashion-mnist", pytest.param("cifar10", marks=pytest.mark.slow)]
)
def test_encode_decode_shapes_for_every_dataset(dataset):
    """Fitted on 400 of each dataset's images (the shapes, not the fit, are the point:
    test images, so that no training split of 50,000 pictures is decoded for it), the
    code has k values and the output the images' shape."""
    test = load_dataset(dataset, train=False)
    pca = fit_pca(test.images[3:403], 64)
    x = test.floats(slice(0, 3))
    code = pca.encode(x)
    assert code.shape == (3, 64) and pca.latent_size == 64
    assert pca.decode(code).shape == x.shape == (3, *test.shape)
    assert pca(x).shape == x.shape and pca.components.shape == (64, x[0].numel())


def test_more_components_reconstruct_better_and_bad_k_is_refused():
    test = load_dataset("mnist", train=False).images[:500]
    psnrs = [evaluate(pca_for("mnist", k), test).psnr for k in (8, 32, 196)]
    assert psnrs == sorted(psnrs) and psnrs[-1] > 25
    assert pca_for("mnist", 32).components.shape == (32, 784)
    with pytest.raises(ValueError, match="between 1 and 784"):
        pca_for("mnist", 785)


def test_eval_measures_pca_like_a_checkpoint(capsys):
    status = main(
        [
            "eval",
            "--pca",
            "32",
            "--dataset",
            "mnist",
            "--limit",
            "800",
            "--json",
            "--noise",
            "gaussian:0.3",
            "--quiet",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (out["arch"], out["latent_size"], out["n"], out["noise"]) == (
        "pca",
        32,
        800,
        "gaussian:0.3",
    )
    test = load_dataset("mnist", train=False).images[:800]
    expected = evaluate(pca_for("mnist", 32), test, Noise("gaussian", 0.3))
    assert out["psnr"] == pytest.approx(expected.psnr, rel=1e-6)
    assert out["noisy_psnr"] < out["psnr"]  # projecting on the subspace removes noise too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--pca", "32"], "--pca needs --dataset"),
        (["eval"], "give a checkpoint to measure, or --pca K"),
        (["eval", "--pca", "9999", "--dataset", "mnist"], "between 1 and 784"),
    ],
)
def test_eval_pca_mistakes_end_in_one_line(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_noise_sweep_measures_pca_beside_the_model():
    from convae import ModelConfig, build_model
    from convae.measuring.denoise import noise_sweep

    images = load_dataset("mnist", train=False).floats(slice(0, 64))
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    pca = pca_for("mnist", 196)
    sweep = noise_sweep(model, images, "gaussian", [0.1, 0.5], references={"PCA-196": pca})
    assert list(sweep.psnr)[-1] == "PCA-196" and len(sweep.psnr["PCA-196"]) == 2
    clean = evaluate(pca, images).psnr
    assert clean > sweep.psnr["PCA-196"][0] > sweep.psnr["PCA-196"][1]  # worse with noise
    # projecting on the principal subspace removes much of the noise
    assert sweep.psnr["PCA-196"][1] > sweep.psnr["noisy input"][1] + 2
