import importlib
import math
import threading

import pytest
import torch

from convae import ModelConfig, TrainConfig, build_model, train
from convae.nn.trainer import evaluate_loss as mean_loss

CPU = "cpu"  # same device every run, so equal seeds give bit-equal weights


def fresh(arch="conv-upsample"):
    return build_model(ModelConfig(arch), seed=0)


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def assert_usable(model, x):
    assert not model.training
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


@pytest.fixture(scope="module")
def data(mnist_train_small):
    return mnist_train_small.images  # (256, 1, 28, 28) uint8


def test_a_few_steps_reduce_the_loss(data):
    model = fresh()
    before = mean_loss(model, data)
    history = train(model, data, TrainConfig(batch_size=64, lr=1e-2), device=CPU)  # 4 steps
    assert mean_loss(model, data) < 0.8 * before
    assert [e.epoch for e in history.epochs] == [1]
    assert not history.stopped


def test_same_seed_same_weights_other_seed_other_weights(data):
    cfg = dict(batch_size=32, limit=64)
    runs = []
    for seed in (1, 1, 2):
        model = fresh()
        train(model, data, TrainConfig(seed=seed, **cfg), device=CPU)
        runs.append(weights(model))
    assert same(runs[0], runs[1])
    assert not same(runs[0], runs[2])


def test_denoising_training_runs_and_uses_the_noise(data):
    cfg = dict(batch_size=32, limit=64, seed=0)
    clean, noisy = fresh(), fresh()
    train(clean, data, TrainConfig(**cfg), device=CPU)
    history = train(
        noisy, data, TrainConfig(noise="gaussian:0.5", **cfg), device=CPU, test_images=data[:32]
    )
    assert math.isfinite(history.epochs[0].train_loss)
    assert math.isfinite(history.epochs[0].test_loss)
    assert not same(weights(clean), weights(noisy))


def test_bce_loss_trains(data):
    model = fresh("conv-deep")
    before = weights(model)
    losses = []
    train(
        model,
        data,
        TrainConfig(loss="bce", batch_size=32, limit=64),
        device=CPU,
        on_step=lambda p: losses.append(p.loss),
    )
    assert len(losses) == 2 and all(0 < v < 10 for v in losses)  # BCE, not MSE, values
    assert not same(before, weights(model))
    assert_usable(model, data[:4].float() / 255)


def test_callbacks_receive_sensible_progress(data):
    steps, epochs = [], []
    history = train(
        fresh(),
        data,
        TrainConfig(epochs=2, batch_size=50, limit=100),
        device=CPU,
        test_images=data[200:],
        on_step=steps.append,
        on_epoch=epochs.append,
    )
    assert [(p.epoch, p.step) for p in steps] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(p.epochs == 2 and p.steps_per_epoch == 2 for p in steps)
    fractions = [p.fraction for p in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1
    assert all(0 < f <= 1 for f in fractions)
    assert all(p.eta_s >= 0 and p.images_per_s > 0 and p.elapsed_s > 0 for p in steps)
    assert all(math.isfinite(p.loss) and p.loss > 0 for p in steps)
    assert steps[-1].eta_s == 0
    assert [s.epoch for s in epochs] == [1, 2] and epochs == history.epochs
    assert all(s.test_loss is not None and s.images_per_s > 0 for s in epochs)
    assert epochs[0].eta_s > 0 and epochs[1].eta_s == 0  # one epoch left, then none
    assert history.to_dict()["epochs"][1]["epoch"] == 2


def test_resolve_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from convae.nn.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device().type == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")  # an explicit choice wins


def test_stop_from_inside_on_step_ends_training_after_that_step(data):
    stop = threading.Event()
    steps = []

    def on_step(p):
        steps.append(p)
        if p.step == 2:
            stop.set()

    model = fresh("conv-bn")
    history = train(
        model, data, TrainConfig(epochs=3, batch_size=16), device=CPU, on_step=on_step, stop=stop
    )
    assert history.stopped
    assert len(steps) == 2 and history.epochs == []
    assert_usable(model, data[:4].float() / 255)


def test_stop_from_another_thread(data):
    stop, first_step, stop_sent = threading.Event(), threading.Event(), threading.Event()
    steps = []

    def on_step(p):
        steps.append(p)
        first_step.set()
        stop_sent.wait(timeout=30)  # lets the other thread act between two steps

    def stopper():
        first_step.wait(timeout=30)
        stop.set()
        stop_sent.set()

    thread = threading.Thread(target=stopper)
    thread.start()
    model = fresh()
    history = train(model, data, TrainConfig(batch_size=16), device=CPU, on_step=on_step, stop=stop)
    thread.join(timeout=30)
    assert history.stopped and len(steps) == 1
    assert_usable(model, data[:4].float() / 255)


def test_limit_keeps_the_first_images(data):
    steps = []
    train(fresh(), data, TrainConfig(batch_size=10, limit=25), device=CPU, on_step=steps.append)
    assert [p.step for p in steps] == [1, 2, 3]


def test_training_needs_images(data):
    with pytest.raises(ValueError, match="at least one training image"):
        train(fresh(), data[:0], TrainConfig(), device=CPU)


def test_cosine_schedule_shrinks_the_steps_towards_the_end(data):
    """With ``schedule="cosine"`` the last epoch moves the weights far less."""

    def last_epoch_change(schedule):
        model, after_first = fresh(), []
        train(
            model,
            data,
            TrainConfig(epochs=2, batch_size=32, limit=64, schedule=schedule),
            device=CPU,
            on_epoch=lambda s: after_first.append(weights(model)) if s.epoch == 1 else None,
        )
        return sum(
            (a - b).abs().sum().item() for a, b in zip(weights(model), after_first[0], strict=True)
        )

    constant, cosine = last_epoch_change("constant"), last_epoch_change("cosine")
    assert 0 < cosine < 0.6 * constant


def _rates(cfg, total_steps):
    """The learning rates of a run of ``total_steps`` at 0.1, or None for a constant one."""
    from convae.nn.trainer import lr_schedule

    factor = lr_schedule(cfg, total_steps)
    return None if factor is None else [0.1 * factor(step) for step in range(total_steps)]


def test_warmup_raises_the_rate_linearly_then_the_schedule_takes_over():
    constant = _rates(TrainConfig(warmup=4), 100)
    assert constant[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    assert constant[-1] == pytest.approx(0.1)
    cosine = _rates(TrainConfig(warmup=4, schedule="cosine"), 100)
    at_4 = 0.1 * (1 + math.cos(math.pi * 4 / 100)) / 2  # the cosine, from the run's start
    assert cosine[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, at_4])
    assert cosine[50] == pytest.approx(0.05)
    assert cosine[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 99 / 100)) / 2)


def test_warmup_takes_at_most_a_tenth_of_the_run():
    assert _rates(TrainConfig(warmup=50), 20)[:3] == pytest.approx([0.05, 0.1, 0.1])
    assert _rates(TrainConfig(warmup=50), 9) is None  # too short: a constant rate
    assert _rates(TrainConfig(warmup=0), 1000) is None


def test_the_warmup_is_the_architectures_own_unless_the_settings_name_one():
    from convae.nn.trainer import with_architecture_defaults

    assert with_architecture_defaults(TrainConfig(), "conv-upsample").warmup == 50
    assert with_architecture_defaults(TrainConfig(), "conv-bn").warmup == 0
    assert with_architecture_defaults(TrainConfig(warmup=0), "conv-upsample").warmup == 0
    assert with_architecture_defaults(TrainConfig(warmup=7), "conv-bn").warmup == 7


def test_a_negative_warmup_is_refused():
    from convae import ConfigError

    with pytest.raises(ConfigError, match="warm-up"):
        TrainConfig(warmup=-1)


def test_unknown_schedule_is_refused():
    from convae import ConfigError

    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="linear-warmup")


def test_auto_precision_is_bfloat16_only_on_cpus_that_compute_it(monkeypatch):
    train_module = importlib.import_module("convae.nn.trainer")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(train_module, "_cpu_has_native_bf16", lambda: True)
    assert train_module.autocast_dtype("auto", cpu) is torch.bfloat16
    assert train_module.autocast_dtype("auto", cuda) is None
    assert train_module.autocast_dtype("float32", cpu) is None
    monkeypatch.setattr(train_module, "_cpu_has_native_bf16", lambda: False)
    assert train_module.autocast_dtype("auto", cpu) is None
    assert train_module.autocast_dtype("bfloat16", cpu) is torch.bfloat16


@pytest.mark.parametrize(
    "precision, conv_dtype", [("float32", torch.float32), ("bfloat16", torch.bfloat16)]
)
def test_precision_sets_the_convolutions_dtype_and_weights_stay_float32(
    data, precision, conv_dtype
):
    model = fresh()
    before = mean_loss(model, data)
    seen = []
    # conv2: a layer the trainer's fast path calls as it is
    hook = model.encoder.conv2.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    train(model, data, TrainConfig(batch_size=64, lr=1e-2, precision=precision), device=CPU)
    hook.remove()
    assert set(seen[:4]) == {conv_dtype}  # the 4 training steps; evaluation follows
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert mean_loss(model, data) < 0.8 * before
    with torch.no_grad():
        assert model(data[:2].float() / 255).dtype == torch.float32


def test_bfloat16_training_is_deterministic_too(data):
    runs = []
    for _ in range(2):
        model = fresh()
        train(model, data, TrainConfig(batch_size=32, limit=64, precision="bfloat16"), device=CPU)
        runs.append(weights(model))
    assert same(runs[0], runs[1])


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'fp8'; choose one of: auto"):
        TrainConfig(precision="fp8")
