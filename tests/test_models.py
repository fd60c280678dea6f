import pytest
import torch

from convae import ARCHITECTURES, ConfigError, ModelConfig, architecture_names, build_model

SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)]
ALL = [(arch, shape) for arch in ARCHITECTURES for shape in SHAPES]


def batch(shape, n=2, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(params=ALL, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in ALL])
def model_and_input(request):
    arch, shape = request.param
    return build_model(ModelConfig(arch, shape), seed=0), batch(shape)


def test_output_has_the_input_shape_and_values_in_unit_range(model_and_input):
    model, x = model_and_input
    out = model(x)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1


def test_decode_of_encode_is_forward(model_and_input):
    model, x = model_and_input
    assert torch.equal(model.decode(model.encode(x)), model(x))


def test_latent_size_is_the_number_of_code_values(model_and_input):
    model, x = model_and_input
    z = model.encode(x)
    assert tuple(z.shape[1:]) == model.code_shape
    assert model.latent_size == z[0].numel()


def test_named_layers_follow_the_data_flow_and_cover_every_child(model_and_input):
    model, x = model_and_input
    called = []
    handles = [
        m.register_forward_hook(lambda mod, i, o, name=name: called.append(name))
        for name, m in model.named_layers()
    ]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    names = [name for name, _ in model.named_layers()]
    assert called == names
    children = [*model.encoder.children(), *model.decoder.children()]
    assert [m for _, m in model.named_layers()] == children
    assert all(n.startswith(("encoder.", "decoder.")) for n in names)


@pytest.mark.parametrize(
    "arch, size",
    [
        ("conv-transpose", 196),
        ("conv-upsample", 196),
        ("conv-deep", 128),
        ("linear", 32),
        ("conv-2d", 2),  # a code that is a point of the plane
        ("conv-res", 196),  # PCA-196's rival
        ("conv-res-half", 98),  # at most PCA-128's size
        ("denoiser-blind", 784),  # as many values as the image: no compression
    ],
)
def test_code_sizes_on_mnist_match_the_seeds(arch, size):
    assert build_model(ModelConfig(arch, (1, 28, 28))).latent_size == size


def test_conv_deep_code_is_4x4x8():
    assert build_model(ModelConfig("conv-deep")).code_shape == (8, 4, 4)


def test_conv_bn_code_is_no_larger_than_the_seeds():
    assert build_model(ModelConfig("conv-bn")).latent_size <= 196


def test_a_residual_block_keeps_the_shape_and_starts_near_its_input():
    """Its sum with the input is what lets the deeper models train as fast as conv-bn."""
    block = build_model(ModelConfig("conv-res")).encoder.res1
    x = torch.randn(4, 64, 7, 7)
    with torch.no_grad():
        assert block(x).shape == x.shape
        block.body.bn2.weight.zero_()  # the body adds nothing: the block is relu(x)
        assert torch.equal(block(x), torch.relu(x))


def test_unknown_architecture_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown architecture 'resnet'") as info:
        build_model(ModelConfig("resnet"))
    for name in ARCHITECTURES:
        assert name in str(info.value)


@pytest.mark.parametrize("shape", [(2, 28, 28), (1, 28, 32), (1, 64, 64), (28, 28), (4, 32, 32)])
def test_unsupported_input_shapes_are_refused(shape):
    with pytest.raises(ConfigError, match="in_shape|unsupported input shape"):
        build_model(ModelConfig("conv-upsample", shape))


def test_wrong_number_of_depths_is_refused():
    with pytest.raises(ConfigError, match="conv-deep takes 3 depths"):
        build_model(ModelConfig("conv-deep", depths=(16, 8)))


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    cfg = ModelConfig("conv-bn", (3, 32, 32))
    a, b, c = (build_model(cfg, seed=s).state_dict() for s in (7, 7, 8))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_seeded_build_leaves_the_global_random_state_alone():
    before = torch.random.get_rng_state()
    build_model(ModelConfig("conv-upsample"), seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_models_are_built_in_eval_mode():
    assert not build_model(ModelConfig("conv-bn")).training


@pytest.mark.parametrize("arch", architecture_names())
def test_output_mean_starts_the_output_at_the_data_brightness(arch):
    config = ModelConfig(arch, (1, 28, 28))
    plain = build_model(config, seed=0)
    started = build_model(config, seed=0, output_mean=0.13)
    last = [m for _, m in started.named_layers() if getattr(m, "bias", None) is not None][-1]
    assert torch.sigmoid(last.bias).allclose(torch.full_like(last.bias, 0.13))
    # only that bias differs from the plain initialisation
    differing = [
        k for k, v in started.state_dict().items() if not torch.equal(v, plain.state_dict()[k])
    ]
    assert len(differing) == 1 and differing[0].endswith("bias")


def _relu_inputs(model, x):
    """{layer name: its output} for every layer whose output a ReLU takes next."""
    layers = model.named_layers()
    seen = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out))
        for (name, layer), (_, after) in zip(layers[:-1], layers[1:], strict=True)
        if isinstance(after, torch.nn.ReLU)
    ]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize(
    "arch, layers",
    [
        ("conv-upsample", ["encoder.conv1", "encoder.conv2", "decoder.conv3"]),
        ("conv-transpose", ["encoder.conv1", "encoder.conv2", "decoder.deconv1"]),
        ("conv-2d", ["encoder.conv1", "encoder.conv2", "decoder.conv3"]),  # not its fc layers
    ],
)
def test_relu_biases_start_every_unit_positive_on_half_the_images(arch, layers):
    model = build_model(ModelConfig(arch, (1, 28, 28)), seed=0)
    images = (batch((1, 28, 28), n=32) * 255).to(torch.uint8)
    assert model.init_relu_biases(images) == layers
    outputs = _relu_inputs(model, images.float() / 255)
    for name in layers:
        out = outputs[name]
        per_channel = out.transpose(0, 1).reshape(out.shape[1], -1)
        positive = (per_channel > 0).float().mean(1)
        # half above the median, give or take the median itself (rounding)
        assert ((positive > 0.4) & (positive < 0.6)).all(), (name, positive)


@pytest.mark.parametrize("arch", ["conv-bn", "linear"])  # batch norm; only linear layers
def test_relu_biases_leave_models_without_a_convolution_feeding_a_relu_alone(arch):
    model = build_model(ModelConfig(arch), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.init_relu_biases(batch((1, 28, 28), n=8)) == []
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training  # left in the mode it was built in
