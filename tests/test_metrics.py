import pytest
import torch
import torch.nn.functional as F

from convae import ModelConfig, Noise, build_model, evaluate, image_metrics, reconstruct
from convae.measuring.metrics import psnr_per_image, ssim_per_image

FIELDS = ("mse", "psnr", "ssim")
NOISY_FIELDS = ("noisy_mse", "noisy_psnr", "noisy_ssim")


@pytest.fixture(scope="module")
def model():
    return build_model(ModelConfig("conv-upsample"), seed=0)


def test_psnr_of_a_constant_offset_of_0_1_is_20_db():
    x = torch.full((2, 1, 8, 8), 0.4)
    m = image_metrics(x + 0.1, x)
    assert m["mse"].tolist() == pytest.approx([0.01, 0.01], rel=1e-4)
    assert m["psnr"].tolist() == pytest.approx([20.0, 20.0], abs=1e-3)


def test_identical_images_have_psnr_100_and_ssim_1(images):
    assert psnr_per_image(images, images).tolist() == pytest.approx([100.0] * 4, abs=1e-3)
    assert ssim_per_image(images, images).tolist() == pytest.approx([1.0] * 4, abs=1e-5)


def test_ssim_drops_for_noisy_images(images):
    noisy = Noise("gaussian", 0.2).apply(images, seed=0)
    assert (ssim_per_image(noisy, images) < 0.9).all()


def test_metrics_are_per_image(images):
    x_hat = images.clone()
    x_hat[1] = (x_hat[1] + 0.1).clamp(0, 1)
    psnr = psnr_per_image(x_hat, images)
    assert psnr.shape == (4,)
    assert psnr[0] == pytest.approx(100, abs=1e-3) and psnr[1] < 30


@pytest.mark.parametrize(
    "a, b",
    [
        ((2, 1, 8, 8), (2, 1, 8, 9)),
        ((2, 1, 8, 8), (3, 1, 8, 8)),
        ((1, 8, 8), (1, 8, 8)),
    ],
)
def test_mismatched_or_non_batch_shapes_raise_value_error(a, b):
    with pytest.raises(ValueError, match="same shape"):
        image_metrics(torch.zeros(a), torch.zeros(b))


def test_evaluate_reports_noisy_fields_only_with_noise(model, images):
    clean = evaluate(model, images)
    assert clean.noise == "none" and clean.n == 4
    assert all(getattr(clean, k) is None for k in NOISY_FIELDS)
    noisy = evaluate(model, images, Noise("gaussian", 0.5))
    assert noisy.noise == "gaussian:0.5"
    assert all(isinstance(getattr(noisy, k), float) for k in FIELDS + NOISY_FIELDS)
    assert noisy.noisy_psnr < 15  # the input itself is heavily corrupted


def test_evaluate_is_reproducible_for_a_seed(model, images):
    noise = Noise("salt-pepper", 0.3)
    a = evaluate(model, images, noise, seed=1)
    assert a == evaluate(model, images, noise, seed=1)
    assert a.noisy_psnr != evaluate(model, images, noise, seed=2).noisy_psnr


def test_evaluate_means_do_not_depend_on_batching(model, images):
    whole = evaluate(model, images, batch_size=1000)
    split = evaluate(model, images, batch_size=3)
    for k in FIELDS:
        assert getattr(split, k) == pytest.approx(getattr(whole, k), rel=1e-5)
    with torch.no_grad():
        assert whole.mse == pytest.approx(F.mse_loss(model(images), images).item(), rel=1e-5)


def test_evaluate_reports_each_batch_and_the_same_means(model, images):
    seen = []
    result = evaluate(
        model, images, Noise.parse("gaussian:0.2"), batch_size=3, on_batch=seen.append
    )
    assert sum(seen) == len(images) and all(0 < n <= 3 for n in seen)
    assert result == evaluate(model, images, Noise.parse("gaussian:0.2"), batch_size=3)


def test_evaluate_accepts_uint8_images(model, images):
    as_bytes = (images * 255).round().to(torch.uint8)
    assert evaluate(model, as_bytes) == evaluate(model, as_bytes.float() / 255)


def test_evaluate_needs_images(model):
    with pytest.raises(ValueError, match="at least one image"):
        evaluate(model, torch.zeros(0, 1, 28, 28))


def test_reconstruct_restores_training_mode(images):
    model = build_model(ModelConfig("conv-bn"), seed=0).train()
    out = reconstruct(model, images, batch_size=3)
    assert model.training
    assert out.shape == images.shape
    with torch.no_grad():
        assert torch.allclose(out, model.eval()(images), atol=1e-6)


def test_evaluate_measures_a_copy_and_leaves_the_model_as_it_was(images):
    model = build_model(ModelConfig("conv-bn"), seed=0)  # batch norm: eval mode matters
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = evaluate(model, images)
    assert model.training
    assert model.encoder.conv1.weight.is_contiguous()  # not turned channels-last
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with torch.no_grad():  # the numbers are the model's own, in eval mode
        expected = F.mse_loss(model.eval()(images), images).item()
    assert result.mse == pytest.approx(expected, rel=1e-5)
