"""convae.classroom.fitting: build, train, measure and describe a model in one call."""

import pytest
import torch

from convae import (
    ImageSet,
    ModelConfig,
    Noise,
    TrainConfig,
    build_model,
    evaluate,
    fit,
    initial_model,
    train,
)
from convae.classroom.fitting import measured_noises

CPU = "cpu"  # same device every run, so equal seeds give bit-equal weights


def blobs(n=64, seed=0):
    """uint8 squares of several brightnesses at random places: learnable in a few steps,
    no dataset needed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        r, c = torch.randint(4, 20, (2,), generator=g).tolist()
        x[i, 0, r : r + 6, c : c + 6] = 100 + i % 64 * 2
    return x


def image_set(n=64):
    x = blobs(n)
    return ImageSet("blobs", True, x, torch.zeros(n, dtype=torch.int64), ("blob",))


def test_initial_model_starts_at_the_brightness_of_the_images_it_will_train_on_and_alive():
    train_set = image_set()
    cfg = TrainConfig(seed=3, limit=10)
    model = initial_model("conv-upsample", train_set, cfg)
    expected = build_model(
        ModelConfig("conv-upsample", (1, 28, 28)),
        seed=3,
        output_mean=train_set.subset(limit=10).mean_intensity(),
    )
    expected.init_relu_biases(train_set.images[:10])
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), expected.state_dict().values(), strict=True)
    )
    other = initial_model("conv-upsample", train_set, TrainConfig(seed=3))  # all 64 images
    assert not torch.equal(other.decoder.conv4.bias, model.decoder.conv4.bias)


def test_measured_noises_are_clean_then_the_extra_ones_then_the_training_noise():
    g5, g1 = Noise("gaussian", 0.5), Noise("gaussian", 0.1)
    assert measured_noises(TrainConfig()) == [Noise()]
    assert measured_noises(TrainConfig(noise=g5)) == [Noise(), g5]
    assert measured_noises(TrainConfig(noise=g5), [g1, g5]) == [Noise(), g1, g5]
    assert measured_noises(TrainConfig(noise="mask:0.2"), [g1]) == [Noise(), g1, Noise("mask", 0.2)]
    assert measured_noises(TrainConfig(), [Noise(), g1]) == [Noise(), g1]


def test_fit_trains_as_train_does_and_measures_as_evaluate_does():
    data = blobs()
    cfg = TrainConfig(epochs=2, batch_size=16, lr=5e-3, noise="gaussian:0.3", limit=48)
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    fitted = fit(
        model,
        data,
        cfg,
        test_images=data[:16],
        eval_images=data[:20],
        also_measure=[Noise("mask", 0.5)],
        meta={"dataset": "blobs"},
        device=CPU,
    )
    alone = build_model(ModelConfig("conv-upsample"), seed=0)
    train(alone, data, cfg, test_images=data[:16], device=CPU)
    assert fitted.model is model and not model.training
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), alone.parameters(), strict=True)
    )
    assert list(fitted.metrics) == ["clean", "mask:0.5", "gaussian:0.3"]
    for key, noise in [
        ("clean", Noise()),
        ("mask:0.5", Noise("mask", 0.5)),
        ("gaussian:0.3", Noise("gaussian", 0.3)),
    ]:
        assert fitted.metrics[key] == evaluate(alone, data[:20], noise).to_dict()


def test_fit_describes_the_model_for_its_checkpoint():
    data = blobs()
    cfg = TrainConfig(epochs=1, batch_size=16, noise="salt-pepper:0.1", limit=40)
    fitted = fit(
        build_model(ModelConfig("linear"), seed=0),
        data,
        cfg,
        eval_images=data[:8],
        meta={"dataset": "blobs", "note": "x"},
        device=CPU,
    )
    meta = fitted.meta
    assert list(meta) == [
        "dataset",
        "note",
        "train_noise",
        "train",
        "metrics",
        "history",
        "train_images",
        "test_images",
    ]
    assert meta["train_noise"] == "salt-pepper:0.1"
    # the settings as used: no learning rate or warm-up given, so linear's own
    assert meta["train"] == {**cfg.to_dict(), "lr": 2e-3, "warmup": 50}
    assert meta["train_images"] == 40 and meta["test_images"] == 8
    assert meta["history"] == fitted.history.to_dict()
    assert len(meta["history"]["epochs"]) == 1
    assert meta["metrics"] is fitted.metrics and meta["metrics"]["clean"]["n"] == 8


def test_fit_without_eval_images_measures_nothing():
    fitted = fit(build_model(ModelConfig("linear"), seed=0), blobs(16), TrainConfig(), device=CPU)
    assert fitted.metrics == {} and fitted.meta["test_images"] == 0
    assert fitted.meta["train_images"] == 16


def test_on_measure_counts_up_to_every_image_at_every_noise():
    data = blobs(30)
    calls = []
    fit(
        build_model(ModelConfig("linear"), seed=0),
        data,
        TrainConfig(noise="mask:0.3"),
        eval_images=data,
        device=CPU,
        on_measure=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (0, 60)  # before the first batch: two noises x 30 images
    assert calls[-1] == (60, 60)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize("arch", ["conv-upsample", "denoiser"])
def test_fit_leaves_a_model_ready_to_use(arch):
    fitted = fit(
        build_model(ModelConfig(arch), seed=0), blobs(32), TrainConfig(batch_size=16), device=CPU
    )
    assert not fitted.model.training
    with torch.no_grad():
        assert torch.isfinite(fitted.model(blobs(2).float() / 255)).all()


@pytest.mark.parametrize(
    "arch, given, used",
    [("conv-upsample", None, 1.5e-2), ("conv-bn", None, 2e-3), ("conv-upsample", 5e-4, 5e-4)],
)
def test_without_a_learning_rate_each_architecture_trains_at_its_own(arch, given, used):
    cfg = TrainConfig(epochs=1, batch_size=16, limit=16, lr=given)
    fitted = fit(build_model(ModelConfig(arch), seed=0), blobs(16), cfg, device=CPU)
    assert fitted.meta["train"]["lr"] == used
    again = build_model(ModelConfig(arch), seed=0)
    train(again, blobs(16), TrainConfig(epochs=1, batch_size=16, limit=16, lr=used), device=CPU)
    for a, b in zip(fitted.model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)  # the same training as naming that rate
