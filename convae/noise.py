"""Corrupting a batch of images: Gaussian, salt-and-pepper, and masking.

All kinds work on a float batch in [0, 1] of any shape, are fully vectorised, return
values clipped to [0, 1], are reproducible from a seed, and leave the input unchanged at
level 0. On the command line a noise is written ``KIND:LEVEL`` (``gaussian:0.5``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConfigError, check_choice

NOISE_KINDS = {
    "gaussian": "adds N(0, level^2) to every pixel (level = standard deviation)",
    "salt-pepper": "sets a fraction `level` of pixels to 0 or 1 at random",
    "mask": "drops a fraction `level` of pixels (sets them to 0)",
}
MAX_LEVEL = {"gaussian": 10.0, "salt-pepper": 1.0, "mask": 1.0}


@dataclass(frozen=True)
class Noise:
    """A kind of noise and its strength; ``Noise("none", 0)`` means clean input."""

    kind: str = "none"
    level: float = 0.0

    def __post_init__(self) -> None:
        if self.kind == "none":
            object.__setattr__(self, "level", 0.0)
            return
        check_choice("noise kind", self.kind, NOISE_KINDS)
        hi = MAX_LEVEL[self.kind]
        if not 0 <= self.level <= hi:
            raise ConfigError(f"{self.kind} level must be between 0 and {hi}, got {self.level}")

    @property
    def is_clean(self) -> bool:
        return self.kind == "none" or self.level == 0

    def __str__(self) -> str:
        return "none" if self.is_clean else f"{self.kind}:{self.level:g}"

    @classmethod
    def parse(cls, spec: str | None) -> Noise:
        """``"gaussian:0.5"`` -> ``Noise("gaussian", 0.5)``; ``None``/``"none"`` -> clean."""
        if spec is None or spec.strip().lower() in ("", "none"):
            return cls()
        kind, sep, level = spec.partition(":")
        try:
            value = float(level)
        except ValueError:
            value = None
        if not sep or value is None:
            raise ConfigError(
                f"bad noise {spec!r}: write KIND:LEVEL, e.g. gaussian:0.5, salt-pepper:0.1 "
                f"or mask:0.3 (kinds: {', '.join(NOISE_KINDS)})"
            )
        return cls(kind.strip().lower(), value)

    def apply(
        self, x: torch.Tensor, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return a noisy copy of ``x`` (a float batch in [0, 1]); ``x`` is not modified.

        Args:
            x: float tensor, any shape, values in [0, 1].
            seed: makes the noise reproducible; ignored if ``generator`` is given.
            generator: a ``torch.Generator`` to draw from (advances it).
        """
        return add_noise(x, self.kind, self.level, seed=seed, generator=generator)


def add_noise(
    x: torch.Tensor,
    kind: str,
    level: float,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Corrupt a float batch in [0, 1]; see :class:`Noise` for the kinds."""
    if not torch.is_floating_point(x):
        raise TypeError(f"add_noise expects a float tensor in [0, 1], got {x.dtype}")
    Noise(kind, level)  # validates
    if kind == "none" or level == 0:
        return x
    if generator is None:
        generator = torch.Generator(device=x.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + level * noise).clamp_(0, 1)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if kind == "mask":
        return x.masked_fill(u < level, 0.0)
    # salt-pepper: the hit pixels (u < level) become 1 if in the lower half of the hit
    # range, else 0, so one draw decides both which pixels and which value
    out = x.masked_fill(u < level, 0.0)
    return out.masked_fill(u < level / 2, 1.0)
