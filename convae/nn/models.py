"""The architecture registry.

Every model is an :class:`Autoencoder`: an ``encoder`` and a ``decoder``, each an
``nn.Sequential`` whose children carry readable names (``conv1``, ``pool1``, ...). That
one convention gives every architecture ``encode``/``decode``/``forward``, a list of its
layers in order, and lets :mod:`convae.measuring.activations` hook any of them generically.

Sizes follow the tutorials this project follows (a linear code; convolutions with a
transposed-convolution or an upsampling decoder; a deeper 4x4x8 variant; a denoiser; a
colour model for CIFAR-10); shapes in comments are for
MNIST's 1x28x28 input, CIFAR-10's 3x32x32 works the same way.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from convae.base.errors import ConfigError, check_choice
from convae.base.tensors import eval_mode, to_unit_float
from convae.nn.config import ModelConfig


class Autoencoder(nn.Module):
    """An encoder and a decoder; subclasses only build the two ``nn.Sequential``s."""

    def __init__(self, config: ModelConfig, encoder: nn.Sequential, decoder: nn.Sequential):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        # measured now, before any thread can be training the model (measuring switches
        # the encoder to eval mode for a moment); on the meta device (a checkpoint's
        # skeleton: shapes only) when first asked, as running layers there imports
        # torch's compiler (1.5 s)
        if next(encoder.parameters()).device.type != "meta":
            _ = self.code_shape

    @functools.cached_property
    def code_shape(self) -> tuple[int, ...]:
        """Shape of one image's code, e.g. (4, 7, 7), measured by encoding a blank image."""
        device = next(self.encoder.parameters()).device
        # eval mode so that measuring the code shape leaves batch-norm statistics alone
        with torch.no_grad(), eval_mode(self.encoder):
            blank = torch.zeros(1, *self.config.in_shape, device=device)
            return tuple(self.encoder(blank).shape[1:])

    @property
    def latent_size(self) -> int:
        """Number of values in the code (the compressed representation)."""
        return math.prod(self.code_shape)

    @property
    def code_layer(self) -> str:
        """Name of the layer whose output is the code: the encoder's last, e.g.
        ``"encoder.pool2"`` (as in :meth:`named_layers`)."""
        last, _ = list(self.encoder.named_children())[-1]
        return f"encoder.{last}"

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> code of shape (B, *code_shape)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Code (B, *code_shape) -> reconstruction (B, C, H, W) in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def init_output_bias(self, mean: float) -> None:
        """Start the output at the data's mean brightness: sigmoid(bias) = ``mean``.

        Without this the first output is 0.5 everywhere while MNIST's mean pixel is 0.13;
        the first large updates then push every ReLU negative to darken the image, and
        they die: seed-sized models (4 code channels) collapsed to a constant output.
        """
        mean = min(max(float(mean), 1e-3), 1 - 1e-3)
        biases = [
            bias
            for _, m in self.named_layers()
            if isinstance(bias := getattr(m, "bias", None), torch.Tensor)
        ]
        biases[-1].fill_(math.log(mean / (1 - mean)))

    @torch.no_grad()
    def init_relu_biases(self, images: torch.Tensor) -> list[str]:
        """Start every convolution's ReLU units alive: each convolution that feeds a ReLU
        (not through batch norm) gets the bias that puts the median of each of its output
        channels, over ``images``, at 0, so every unit starts positive on half of them.
        Layer by layer, in one pass over ``images``, each with the ones before it already
        set. Linear layers are left
        as they are: started so, ``conv-2d``'s fully connected layers cost it 2-6 % of test
        MSE after an epoch, and ``linear`` gained nothing (seeds 0-3 and 0-1).

        With PyTorch's initialisation, ``conv-upsample``'s four code channels were not all
        alive: for seed 0 one was negative on every one of 1,000 test images before the
        first step, and for seeds 1 and 2 one went silent in the first five steps, for
        good. Started alive (and with :attr:`Architecture.warmup`), one epoch on MNIST
        ended at a test MSE of 0.0054, 0.0070 and 0.0056 instead of 0.0087, 0.0066 and
        0.0066 (docs/models.md, "How a new training starts").

        Args:
            images: (N, C, H, W) uint8 or float in [0, 1], a few hundred training images.

        Returns:
            The names of the layers whose biases were set, e.g. ``["encoder.conv1"]``.
        """
        x = to_unit_float(images).to(next(self.parameters()).device)
        layers = self.named_layers()
        set_names = []
        with eval_mode(self):  # the layers one after another: what forward computes
            for (name, layer), after in zip(layers, [*layers[1:], None], strict=True):
                x = layer(x)
                bias = getattr(layer, "bias", None)
                if (
                    after is not None
                    and isinstance(after[1], nn.ReLU)
                    and isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))
                    and isinstance(bias, torch.Tensor)
                ):
                    median = x.transpose(0, 1).reshape(x.shape[1], -1).median(dim=1).values
                    bias -= median
                    x = x - median.view(1, -1, *[1] * (x.ndim - 2))  # as with the new bias
                    set_names.append(name)
        return set_names

    def named_layers(self) -> list[tuple[str, nn.Module]]:
        """Every layer in the order data flows through it, named ``encoder.conv1`` etc."""
        return [(f"encoder.{n}", m) for n, m in self.encoder.named_children()] + [
            (f"decoder.{n}", m) for n, m in self.decoder.named_children()
        ]


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)  # keeps H and W


def _conv_block(
    n: int, c_in: int, c_out: int, batch_norm: bool = True
) -> list[tuple[str, nn.Module]]:
    """``convN`` (3x3), ``bnN`` (with ``batch_norm``) and ``reluN``, as named layers."""
    norm = [(f"bn{n}", nn.BatchNorm2d(c_out))] if batch_norm else []
    return [(f"conv{n}", _conv(c_in, c_out)), *norm, (f"relu{n}", nn.ReLU())]


def _pooled_sizes(size: int, n: int) -> list[int]:
    """Spatial sizes after n 2x poolings with ceil, e.g. 28 -> [14, 7, 4] (as TF's 'same')."""
    sizes = []
    for _ in range(n):
        size = math.ceil(size / 2)
        sizes.append(size)
    return sizes


def _depths(config: ModelConfig, default: tuple[int, ...]) -> tuple[int, ...]:
    depths = config.depths or default
    if len(depths) != len(default):
        raise ConfigError(
            f"{config.arch} takes {len(default)} depths (default {default}), got {depths}"
        )
    return depths


def linear(config: ModelConfig) -> Autoencoder:
    """Flatten -> one hidden ReLU layer (the code) -> sigmoid, as in the linear tutorial."""
    c, h, w = config.in_shape
    n = c * h * w  # 784 for MNIST
    encoder = _seq(
        ("flatten", nn.Flatten()),  # (B, 784)
        ("fc1", nn.Linear(n, config.hidden)),
        ("relu1", nn.ReLU()),  # (B, 32): the code
    )
    decoder = _seq(
        ("fc2", nn.Linear(config.hidden, n)),
        ("sigmoid", nn.Sigmoid()),
        ("unflatten", nn.Unflatten(1, (c, h, w))),  # (B, 1, 28, 28)
    )
    return Autoencoder(config, encoder, decoder)


def _seed_encoder(c: int, d1: int, d2: int) -> nn.Sequential:
    return _seq(
        ("conv1", _conv(c, d1)),  # (B, 16, 28, 28)
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2, 2)),  # (B, 16, 14, 14)
        ("conv2", _conv(d1, d2)),  # (B, 4, 14, 14)
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2, 2)),  # (B, 4, 7, 7): the code, 196 values
    )


def conv_transpose(config: ModelConfig) -> Autoencoder:
    """Conv encoder, transposed-conv decoder (kernel 2, stride 2), as in the first conv seed."""
    c = config.in_shape[0]
    d1, d2 = _depths(config, (16, 4))
    decoder = _seq(
        ("deconv1", nn.ConvTranspose2d(d2, d1, kernel_size=2, stride=2)),  # (B, 16, 14, 14)
        ("relu3", nn.ReLU()),
        ("deconv2", nn.ConvTranspose2d(d1, c, kernel_size=2, stride=2)),  # (B, 1, 28, 28)
        ("sigmoid", nn.Sigmoid()),
    )
    return Autoencoder(config, _seed_encoder(c, d1, d2), decoder)


def conv_upsample(config: ModelConfig) -> Autoencoder:
    """Same encoder; nearest upsampling + conv decoder (no checkerboard artifacts)."""
    c = config.in_shape[0]
    d1, d2 = _depths(config, (16, 4))
    decoder = _seq(
        ("up1", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 4, 14, 14)
        ("conv3", _conv(d2, d1)),  # (B, 16, 14, 14)
        ("relu3", nn.ReLU()),
        ("up2", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 16, 28, 28)
        ("conv4", _conv(d1, c)),  # (B, 1, 28, 28)
        ("sigmoid", nn.Sigmoid()),
    )
    return Autoencoder(config, _seed_encoder(c, d1, d2), decoder)


def _three_pool(
    config: ModelConfig, default: tuple[int, int, int], batch_norm: bool = False
) -> Autoencoder:
    """Three conv+pool stages down to 4x4, then resize-and-conv back up (the deeper variant).

    With ``batch_norm``, every conv but the last is followed by batch norm (``bnN``).
    """
    c, h, _ = config.in_shape
    d1, d2, d3 = _depths(config, default)
    s1, s2, _ = _pooled_sizes(h, 3)  # 28 -> 14, 7, 4

    def conv(n: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
        return _conv_block(n, cin, cout, batch_norm)

    encoder = _seq(
        *conv(1, c, d1),  # (B, d1, 28, 28)
        ("pool1", nn.MaxPool2d(2, 2, ceil_mode=True)),  # (B, d1, 14, 14)
        *conv(2, d1, d2),
        ("pool2", nn.MaxPool2d(2, 2, ceil_mode=True)),  # (B, d2, 7, 7)
        *conv(3, d2, d3),
        ("pool3", nn.MaxPool2d(2, 2, ceil_mode=True)),  # (B, d3, 4, 4): the code
    )
    decoder = _seq(
        ("up1", nn.Upsample(size=(s2, s2), mode="nearest")),  # (B, d3, 7, 7)
        *conv(4, d3, d3),
        ("up2", nn.Upsample(size=(s1, s1), mode="nearest")),  # (B, d3, 14, 14)
        *conv(5, d3, d2),
        ("up3", nn.Upsample(size=(h, h), mode="nearest")),  # (B, d2, 28, 28)
        *conv(6, d2, d1),
        ("conv7", _conv(d1, c)),  # (B, 1, 28, 28)
        ("sigmoid", nn.Sigmoid()),
    )
    return Autoencoder(config, encoder, decoder)


def conv_deep(config: ModelConfig) -> Autoencoder:
    """Depths 16-8-8, three poolings, a 4x4x8 = 128-value code (the deeper variant)."""
    return _three_pool(config, (16, 8, 8))


def denoiser(config: ModelConfig) -> Autoencoder:
    """The same shape with depths 32-32-16 and batch norm, to be trained on noisy input.

    The denoising tutorial's depths. Without batch norm, Adam left 6 of the 16 code
    channels and 8 of the 32 middle ones dead (always 0) and the model stopped at
    19.3 dB on MNIST with noise 0.5; with it, 1.4 dB more at the same training budget
    (measured).
    """
    return _three_pool(config, (32, 32, 16), batch_norm=True)


def conv_bn(config: ModelConfig) -> Autoencoder:
    """convae's own design: batch-normalised, with a linear 7x7x4 = 196-value code.

    Differences from the tutorials, each for reconstruction quality at the same code size:
    batch norm for faster, steadier training; 32 channels in the middle instead of 4;
    and no ReLU on the code, so no code value is stuck at zero. Depths 16-32 were
    measured to reach 26 dB at a quarter of the cost of 32-64 on a 2-core CPU.
    """
    c, h, _ = config.in_shape
    d1, d2, d3 = _depths(config, (16, 32, 4))
    encoder = _seq(
        ("conv1", _conv(c, d1)),  # (B, 16, 28, 28)
        ("bn1", nn.BatchNorm2d(d1)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2, 2)),  # (B, 16, 14, 14)
        ("conv2", _conv(d1, d2)),  # (B, 32, 14, 14)
        ("bn2", nn.BatchNorm2d(d2)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2, 2)),  # (B, 32, 7, 7)
        ("conv3", _conv(d2, d3)),  # (B, 4, 7, 7): the code, 196 values
    )
    decoder = _seq(
        ("conv4", _conv(d3, d2)),  # (B, 32, 7, 7)
        ("bn4", nn.BatchNorm2d(d2)),
        ("relu4", nn.ReLU()),
        ("up1", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 32, 14, 14)
        ("conv5", _conv(d2, d1)),  # (B, 16, 14, 14)
        ("bn5", nn.BatchNorm2d(d1)),
        ("relu5", nn.ReLU()),
        ("up2", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 16, 28, 28)
        ("conv6", _conv(d1, c)),  # (B, 1, 28, 28)
        ("sigmoid", nn.Sigmoid()),
    )
    return Autoencoder(config, encoder, decoder)


class Residual(nn.Module):
    """Two 3x3 convolutions with batch norm whose output is added to the input (He et
    al., 2016): ``relu(x + bn(conv(relu(bn(conv(x))))))``, shape unchanged. The sum lets
    a deep stack start close to the identity and learn only a correction."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.body = _seq(
            ("conv1", _conv(channels, channels)),
            ("bn1", nn.BatchNorm2d(channels)),
            ("relu1", nn.ReLU()),
            ("conv2", _conv(channels, channels)),
            ("bn2", nn.BatchNorm2d(channels)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def _residual(config: ModelConfig, default: tuple[int, int, int]) -> Autoencoder:
    """Two conv+pool stages, then a residual block at the code's resolution on each side
    of a linear code of ``d3`` channels (``conv-res``, ``conv-res-half``, ``denoiser-blind``).
    """
    c, h, _ = config.in_shape
    d1, d2, d3 = _depths(config, default)

    conv = _conv_block  # conv, batch norm, ReLU
    encoder = _seq(
        *conv(1, c, d1),  # (B, 32, 28, 28)
        ("pool1", nn.MaxPool2d(2, 2)),  # (B, 32, 14, 14)
        *conv(2, d1, d2),  # (B, 64, 14, 14)
        ("pool2", nn.MaxPool2d(2, 2)),  # (B, 64, 7, 7)
        *conv(3, d2, d2),
        ("res1", Residual(d2)),  # (B, 64, 7, 7)
        ("conv4", _conv(d2, d3)),  # (B, 4, 7, 7): the code, linear (no ReLU)
    )
    decoder = _seq(
        *conv(5, d3, d2),  # (B, 64, 7, 7)
        ("res2", Residual(d2)),
        ("up1", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 64, 14, 14)
        *conv(6, d2, d2),
        ("up2", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 64, 28, 28)
        *conv(7, d2, d1),  # (B, 32, 28, 28)
        ("conv8", _conv(d1, c)),  # (B, 1, 28, 28)
        ("sigmoid", nn.Sigmoid()),
    )
    return Autoencoder(config, encoder, decoder)


def conv_res(config: ModelConfig) -> Autoencoder:
    """convae's strongest design for a 7x7x4 = 196-value code (8x8x4 = 256 on CIFAR-10).

    ``conv-bn`` made wider (32-64 channels), with a third convolution and a residual
    block at 7x7 on each side of the code: built to beat PCA with the same code size,
    which every tutorial architecture stays below. One epoch on MNIST reached 28.0 dB,
    as much as ``conv-bn`` after ten (measured).
    """
    return _residual(config, (32, 64, 4))


def conv_res_half(config: ModelConfig) -> Autoencoder:
    """``conv-res`` with half the code: 7x7x2 = 98 values (8x8x2 = 128 on CIFAR-10)."""
    return _residual(config, (32, 64, 2))


def denoiser_blind(config: ModelConfig) -> Autoencoder:
    """``conv-res`` with a 7x7x16 = 784-value code (as many values as an MNIST image),
    trained on every noise level from 0 to 0.6: one model for clean and noisy input alike.

    A denoiser needs no narrow code: the noise, not the code size, is what it must learn
    to throw away. With no level to be told, it must judge the noise from the image.
    """
    return _residual(config, (32, 64, 16))


def conv_2d(config: ModelConfig) -> Autoencoder:
    """A code of just two values, so that the latent map is the code itself.

    Two conv+pool stages, then a small fully connected network down to 2 numbers (no
    activation: a ReLU there could leave one of the only two values stuck at 0); the
    decoder mirrors it. As in latent-space explorers and ConvNetJS's MNIST demo, every
    point of the plane decodes to an image with no projection in between.
    """
    c, h, _ = config.in_shape
    d1, d2 = _depths(config, (16, 8))
    s = h // 4  # 28 -> 7, 32 -> 8
    flat = d2 * s * s
    encoder = _seq(
        ("conv1", _conv(c, d1)),  # (B, 16, 28, 28)
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2, 2)),  # (B, 16, 14, 14)
        ("conv2", _conv(d1, d2)),  # (B, 8, 14, 14)
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2, 2)),  # (B, 8, 7, 7)
        ("flatten", nn.Flatten()),  # (B, 392)
        ("fc1", nn.Linear(flat, 64)),
        ("relu3", nn.ReLU()),  # (B, 64)
        ("fc2", nn.Linear(64, 2)),  # (B, 2): the code
    )
    decoder = _seq(
        ("fc3", nn.Linear(2, 64)),
        ("relu4", nn.ReLU()),  # (B, 64)
        ("fc4", nn.Linear(64, flat)),
        ("relu5", nn.ReLU()),  # (B, 392)
        ("unflatten", nn.Unflatten(1, (d2, s, s))),  # (B, 8, 7, 7)
        ("up1", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 8, 14, 14)
        ("conv3", _conv(d2, d1)),  # (B, 16, 14, 14)
        ("relu6", nn.ReLU()),
        ("up2", nn.Upsample(scale_factor=2, mode="nearest")),  # (B, 16, 28, 28)
        ("conv4", _conv(d1, c)),  # (B, 1, 28, 28)
        ("sigmoid", nn.Sigmoid()),
    )
    return Autoencoder(config, encoder, decoder)


@dataclass(frozen=True)
class Architecture:
    """A registered architecture.

    Attributes:
        lr: Adam's learning rate when the training settings name none (``TrainConfig.lr``
            is None), for the default batch of 64. One epoch on MNIST: ``conv-upsample``
            reached a 1.2x lower test MSE at 1e-2 than at 2e-3 (seeds 0-2, means 0.0075
            and 0.0090), while 1e-2 doubled ``conv-bn``'s error on one of two seeds and
            hurt ``conv-2d`` and ``conv-transpose`` on one, so they keep 2e-3; with its
            code channels started alive and a warm-up, ``conv-upsample`` did better still
            at 1.5e-2 (seeds 0-5, means 0.0055 against 0.0058 at 1e-2 and 0.0062 at 7e-3;
            docs/models.md, "How a new training starts").
        warmup: steps of learning-rate warm-up when the training settings name none
            (``TrainConfig.warmup`` is None). 50 for ``conv-upsample``, whose high rate
            moved the weights so far in Adam's first steps that a code channel went silent
            for good in 2 of 7 seeds even when started alive (1 of 7 with the warm-up), and
            for ``linear`` (a test MSE 11-22 % lower after one epoch, seeds 0 and 1); none
            for the others, where it changed nothing or cost up to 7 % (``conv-deep`` 6 %,
            ``conv-bn`` 7 % on one seed of two; docs/models.md, "How a new training starts").
    """

    name: str
    build: Callable[[ModelConfig], Autoencoder]
    summary: str
    lr: float = 2e-3
    warmup: int = 0
    # as a tutorial defines it (kept so, even where a linear method reconstructs better)
    from_tutorial: bool = True


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "linear",
            linear,
            "flatten -> 32 hidden units -> sigmoid (as in the tutorial)",
            warmup=50,
        ),
        Architecture(
            "conv-transpose",
            conv_transpose,
            "conv 16-4 + 2x pooling, transposed-conv decoder; 7x7x4 code",
        ),
        Architecture(
            "conv-upsample",
            conv_upsample,
            "conv 16-4 + 2x pooling, nearest-upsample + conv decoder; 7x7x4 code",
            lr=1.5e-2,
            warmup=50,
        ),
        Architecture("conv-deep", conv_deep, "conv 16-8-8, three poolings; 4x4x8 = 128 code"),
        Architecture(
            "denoiser", denoiser, "conv 32-32-16 + batch norm, three poolings; for denoising"
        ),
        Architecture(
            "conv-bn",
            conv_bn,
            "convae's own: conv 16-32 with batch norm, linear 7x7x4 code",
            from_tutorial=False,
        ),
        Architecture(
            "conv-res",
            conv_res,
            "convae's strongest: conv 32-64 with batch norm and residual blocks, linear 7x7x4 code",
            from_tutorial=False,
        ),
        Architecture(
            "conv-res-half",
            conv_res_half,
            "conv-res with half the code: linear 7x7x2 = 98 values",
            from_tutorial=False,
        ),
        Architecture(
            "denoiser-blind",
            denoiser_blind,
            "conv-res with a 7x7x16 code, trained on every noise level from 0 to 0.6",
            from_tutorial=False,
        ),
        Architecture(
            "conv-2d",
            conv_2d,
            "conv 16-8 + 2x pooling, then fully connected down to a 2-value code",
            from_tutorial=False,
        ),
    )
}


def architecture_names() -> list[str]:
    return list(ARCHITECTURES)


def build_model(
    config: ModelConfig, seed: int | None = None, output_mean: float | None = None
) -> Autoencoder:
    """Build the architecture ``config.arch`` for ``config.in_shape``.

    Args:
        config: which architecture and for which input shape.
        seed: if given, the initial weights are a function of it alone.
        output_mean: the training data's mean pixel value; if given, the output starts
            there (see :meth:`Autoencoder.init_output_bias`). Pass it to train from
            scratch: it keeps small ReLU models from dying in their first steps.

    Raises:
        ConfigError: the architecture name is unknown.
    """
    check_choice("architecture", config.arch, ARCHITECTURES)
    if seed is None:
        model = ARCHITECTURES[config.arch].build(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = ARCHITECTURES[config.arch].build(config)
    if output_mean is not None:
        model.init_output_bias(output_mean)
    return model.eval()
