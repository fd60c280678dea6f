"""Corrupting a batch of images: Gaussian, salt-and-pepper, and masking.

All kinds work on a float batch in [0, 1] of any shape, are fully vectorised, return
values clipped to [0, 1], are reproducible from a seed, and leave the input unchanged at
level 0. On the command line a noise is written ``KIND:LEVEL`` (``gaussian:0.5``), or
``KIND:LOW-HIGH`` (``gaussian:0-0.6``) for a level drawn anew for every image, uniformly in
that range: what a blind denoiser trains on, one model for a range of noise levels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from convae.base.errors import ConfigError, check_choice

NOISE_KINDS = {
    "gaussian": "adds N(0, level^2) to every pixel (level = standard deviation)",
    "salt-pepper": "sets a fraction `level` of pixels to 0 or 1 at random",
    "mask": "drops a fraction `level` of pixels (sets them to 0)",
}
MAX_LEVEL = {"gaussian": 10.0, "salt-pepper": 1.0, "mask": 1.0}
_NUMBER = r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
_RANGE = re.compile(rf"^\s*{_NUMBER}\s*-\s*{_NUMBER}\s*$")  # "0-0.6", "0.1 - 0.5"


@dataclass(frozen=True)
class Noise:
    """A kind of noise and its strength; ``Noise("none", 0)`` means clean input.

    Attributes:
        kind: one of :data:`NOISE_KINDS`, or ``"none"``.
        level: the strength; with ``low``, the top of the range.
        low: if given, every image gets its own level, drawn uniformly from ``low`` to
            ``level`` (``Noise("gaussian", 0.6, low=0.0)``, written ``gaussian:0-0.6``).
    """

    kind: str = "none"
    level: float = 0.0
    low: float | None = None

    def __post_init__(self) -> None:
        if self.kind == "none":
            object.__setattr__(self, "level", 0.0)
            object.__setattr__(self, "low", None)
            return
        check_choice("noise kind", self.kind, NOISE_KINDS)
        hi = MAX_LEVEL[self.kind]
        if not 0 <= self.level <= hi:
            raise ConfigError(f"{self.kind} level must be between 0 and {hi}, got {self.level}")
        if self.low is not None and not 0 <= self.low < self.level:
            raise ConfigError(
                f"a {self.kind} level range must go from a lower to a higher level, got "
                f"{self.low:g} to {self.level:g}"
            )

    @property
    def is_clean(self) -> bool:
        return self.kind == "none" or self.level == 0

    @property
    def is_range(self) -> bool:
        """Whether each image gets its own level (a range, as a blind denoiser trains on)."""
        return self.low is not None and not self.is_clean

    def __str__(self) -> str:
        if self.is_clean:
            return "none"
        if self.is_range:
            return f"{self.kind}:{self.low:g}-{self.level:g}"
        return f"{self.kind}:{self.level:g}"

    def describe(self) -> str:
        """In words, e.g. "gaussian noise of level 0.5" or "... of levels 0 to 0.6"."""
        if self.is_clean:
            return "clean images"
        if self.is_range:
            return f"{self.kind} noise of every level from {self.low:g} to {self.level:g}"
        return f"{self.kind} noise of level {self.level:g}"

    @classmethod
    def parse(cls, spec: str | None) -> Noise:
        """``"gaussian:0.5"`` -> ``Noise("gaussian", 0.5)``; ``"gaussian:0-0.6"`` -> a
        level drawn per image from 0 to 0.6; ``None``/``"none"`` -> clean."""
        if spec is None or spec.strip().lower() in ("", "none"):
            return cls()
        kind, sep, level = spec.partition(":")
        value: float | None = None
        low: float | None = None
        try:
            value = float(level)
        except ValueError:
            if match := _RANGE.match(level):
                low, value = float(match[1]), float(match[2])
        if not sep or value is None:
            raise ConfigError(
                f"bad noise {spec!r}: write KIND:LEVEL, e.g. gaussian:0.5, salt-pepper:0.1 "
                f"or mask:0.3, or KIND:LOW-HIGH for a level drawn per image, e.g. "
                f"gaussian:0-0.6 (kinds: {', '.join(NOISE_KINDS)})"
            )
        return cls(kind.strip().lower(), value, low)

    def apply(
        self, x: torch.Tensor, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return a noisy copy of ``x`` (a float batch in [0, 1]); ``x`` is not modified.

        Args:
            x: float tensor, any shape, values in [0, 1].
            seed: makes the noise reproducible; ignored if ``generator`` is given.
            generator: a ``torch.Generator`` to draw from (advances it).
        """
        return add_noise(x, self.kind, self.level, seed=seed, generator=generator, low=self.low)


def add_noise(
    x: torch.Tensor,
    kind: str,
    level: float,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    low: float | None = None,
) -> torch.Tensor:
    """Corrupt a float batch in [0, 1]; see :class:`Noise` for the kinds.

    With ``low``, each image along the first dimension gets its own level, drawn
    uniformly from ``low`` to ``level``.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"add_noise expects a float tensor in [0, 1], got {x.dtype}")
    Noise(kind, level, low)  # validates
    if kind == "none" or level == 0:
        return x
    if generator is None:
        generator = torch.Generator(device=x.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
    strength: float | torch.Tensor = level
    if low is not None and x.dim() > 0:
        # one level per image: (B, 1, 1, 1) broadcasts over each image's pixels
        shape = (len(x),) + (1,) * (x.dim() - 1)
        u = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
        strength = low + (level - low) * u
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + strength * noise).clamp_(0, 1)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if kind == "mask":
        return x.masked_fill(u < strength, 0.0)
    # salt-pepper: the hit pixels (u < level) become 1 if in the lower half of the hit
    # range, else 0, so one draw decides both which pixels and which value
    out = x.masked_fill(u < strength, 0.0)
    return out.masked_fill(u < strength / 2, 1.0)
