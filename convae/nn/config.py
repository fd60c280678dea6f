"""Typed settings: what a model is built from and how it is trained.

Both dataclasses are saved inside every checkpoint (as plain dicts), so a model can be
rebuilt and described from the file alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from convae.base.errors import ConfigError, check_choice
from convae.data.images import SUPPORTED_CHANNELS, SUPPORTED_SIZES
from convae.data.noise import Noise


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an architecture.

    Attributes:
        arch: registry name, e.g. ``"conv-upsample"`` (see ``convae.nn.models.ARCHITECTURES``).
        in_shape: input shape ``(C, H, W)``; taken from the dataset, so one definition
            serves MNIST, Fashion-MNIST and CIFAR-10.
        hidden: code size of the ``linear`` model; 32 of 784 values (~4%) as in the seed.
        depths: channel depths of the conv layers; ``()`` means the architecture's own
            default (the tutorials' sizes).
    """

    arch: str
    in_shape: tuple[int, int, int] = (1, 28, 28)  # MNIST, the tutorials' dataset
    hidden: int = 32  # linear only; the seed's 32-unit code
    depths: tuple[int, ...] = ()  # () = the architecture's default depths

    def __post_init__(self) -> None:
        shape = tuple(int(v) for v in self.in_shape)
        object.__setattr__(self, "in_shape", shape)
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        if len(shape) != 3:
            raise ConfigError(f"in_shape must be (channels, height, width), got {self.in_shape!r}")
        c, h, w = shape
        if c not in SUPPORTED_CHANNELS or h != w or h not in SUPPORTED_SIZES:
            raise ConfigError(
                f"unsupported input shape {shape}: expected C in {SUPPORTED_CHANNELS} and "
                f"H = W in {SUPPORTED_SIZES} (MNIST-like 1x28x28 or CIFAR-10 3x32x32)"
            )
        if self.hidden < 1:
            raise ConfigError(f"hidden must be a positive code size, got {self.hidden}")
        if any(d < 1 for d in self.depths):
            raise ConfigError(f"depths must be positive channel counts, got {self.depths}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_shape"] = list(self.in_shape)
        d["depths"] = list(self.depths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model settings {sorted(unknown)}; expected {sorted(known)}")
        values = dict(d)
        for key in ("in_shape", "depths"):  # to_dict writes them as lists
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


LOSSES = ("mse", "bce")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass
class TrainConfig:
    """How a model is trained.

    Defaults were measured on a 2-core CPU (see ``benchmarks/benchmark_trainer.py``): larger
    batches than the tutorials' 20 keep the cores busy, and a higher learning rate makes up
    for the fewer steps per epoch.
    """

    epochs: int = 1
    batch_size: int = 64  # 20 in the tutorials; 64 uses the CPU far better (measured)
    # None: the architecture's own (``Architecture.lr``: 1.5e-2 for conv-upsample, else 2e-3);
    # 1e-3 in the tutorials
    lr: float | None = None
    # Adam's (beta1, beta2); PyTorch's beta2 is 0.999: 0.99 did as well or better for every
    # architecture in one epoch (seeds 0 and 1), and helps conv-upsample meet the tutorial
    adam_betas: tuple[float, float] = (0.9, 0.99)
    loss: str = "mse"  # the tutorials' loss; "bce" also works as outputs are in [0, 1]
    schedule: str = "constant"  # or "cosine": lr falls to 0 over the run (longer runs)
    # steps over which the learning rate first rises linearly to its value (at most a
    # tenth of the run); 0: none; None: the architecture's own (``Architecture.warmup``:
    # 50 for conv-upsample and linear, else none)
    warmup: int | None = None
    # noisy input, clean target: trains a denoiser; "KIND:LEVEL" text is parsed into a Noise
    noise: Noise = Noise()
    seed: int = 0  # fixes shuffling and training noise
    limit: int | None = None  # use only the first N training images (quick runs)
    channels_last: bool = True  # faster convolutions on CPU (measured)
    # the same forward pass in fewer, better-shaped operations (convae.nn.fast_path)
    fast_path: bool = True
    # "auto": bfloat16 autocast on CPUs that compute it natively (AVX-512-BF16 or AMX):
    # there 1.2-1.4x faster per epoch for the 3x3-conv models, same PSNR (measured)
    precision: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.adam_betas = tuple(float(b) for b in self.adam_betas)  # type: ignore[assignment]
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"Adam's betas must be two numbers in [0, 1), got {self.adam_betas}")
        if isinstance(self.noise, str):  # as typed on a command line or saved in a checkpoint
            self.noise = Noise.parse(self.noise)
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        check_choice("loss", self.loss, LOSSES)
        check_choice("learning-rate schedule", self.schedule, SCHEDULES)
        check_choice("precision", self.precision, PRECISIONS)
        if self.warmup is not None and self.warmup < 0:
            raise ConfigError(f"warm-up must be 0 or more steps, got {self.warmup}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as saved in a checkpoint: the noise as its ``KIND:LEVEL`` text."""
        return {**asdict(self), "noise": str(self.noise)}
