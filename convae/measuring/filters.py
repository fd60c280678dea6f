"""A model's learned filters: the weights of each layer that looks at pictures, as pictures.

A convolution's kernels are small images: ``conv1``'s 3x3 kernels are the patterns the
first layer looks for in the input, one per feature map it makes. A linear layer that
reads (or writes) the whole image is shown the same way: each unit's weights over the
pixels form one full-size picture. Positive and negative weights matter alike, so a
layer is drawn with a colour scale symmetric around zero, shared by all its kernels
(:func:`shared_limit`): brighter means the same weight in every panel.

Every function takes any convae :class:`Autoencoder` and leaves it untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from convae.nn.models import Autoencoder


@dataclass(frozen=True)
class LayerFilters:
    """One layer's weights as kernels.

    Attributes:
        name: the layer, e.g. ``"encoder.conv1"`` (as in ``Autoencoder.named_layers``).
        kind: the module's class, e.g. ``"Conv2d"``.
        kernels: (out, in, kh, kw): row ``o`` makes output channel ``o``, column ``i``
            reads input channel ``i`` (a transposed convolution's weights, stored the
            other way round, are turned to match).
        rgb: the kernels read a colour image's red, green and blue: each output's
            kernel is one colour picture (:func:`rgb_kernels`).
    """

    name: str
    kind: str
    kernels: torch.Tensor
    rgb: bool

    @property
    def shape_text(self) -> str:
        """E.g. ``"16 filters of 1x3x3"``."""
        o, i, kh, kw = self.kernels.shape
        return f"{o} filters of {i}x{kh}x{kw}"

    @property
    def limit(self) -> float:
        """The largest absolute weight (the colour scale's end)."""
        return float(self.kernels.abs().max()) if self.kernels.numel() else 0.0


def filter_layers(model: Autoencoder) -> list[LayerFilters]:
    """Every layer of ``model`` whose weights can be shown as pictures, in data-flow order:
    convolutions, transposed convolutions, and linear layers that read or write the
    whole image (their units' weights reshaped to the image's shape)."""
    c, h, w = model.config.in_shape
    pixels = c * h * w
    out: list[LayerFilters] = []
    for name, module in model.named_layers():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            continue
        weight = weight.detach().float().cpu().clone()  # a caller may change it: a copy
        if isinstance(module, nn.Conv2d):
            kernels = weight
        elif isinstance(module, nn.ConvTranspose2d):
            kernels = weight.transpose(0, 1)  # stored (in, out, kh, kw)
        elif isinstance(module, nn.Linear) and module.in_features == pixels:
            kernels = weight.view(module.out_features, c, h, w)  # each unit's view
        elif isinstance(module, nn.Linear) and module.out_features == pixels:
            kernels = weight.t().reshape(module.in_features, c, h, w)  # what each unit draws
        else:
            continue
        # colour pictures where the kernels meet the image's own red, green and blue
        colour = c == 3 and kernels.shape[1] == 3 and (not out or isinstance(module, nn.Linear))
        out.append(LayerFilters(name, type(module).__name__, kernels.contiguous(), colour))
    return out


def shared_limit(layers: Sequence[LayerFilters]) -> float:
    """One colour-scale end for several layers (e.g. a model and its untrained twin):
    the largest absolute weight among them, so equal colours mean equal weights."""
    return max((layer.limit for layer in layers), default=0.0)


def rgb_kernels(layer: LayerFilters, limit: float | None = None) -> torch.Tensor:
    """A colour layer's kernels as pictures: (out, 3, kh, kw) in [0, 1].

    Mid-grey is a zero weight; a channel brighter than grey is a positive weight on
    that colour. ``limit`` (default the layer's own) maps to 0 and 1.
    """
    if layer.kernels.shape[1] != 3:
        raise ValueError(f"{layer.name} reads {layer.kernels.shape[1]} channels, not RGB")
    limit = limit or layer.limit or 1.0
    return (0.5 + layer.kernels / (2 * limit)).clamp(0, 1)


@dataclass(frozen=True)
class Histogram:
    """Counts of several weight sets on shared bins."""

    edges: np.ndarray  # (bins + 1,)
    counts: dict[str, np.ndarray]  # name -> (bins,)


def weight_histogram(weights: dict[str, torch.Tensor], bins: int = 41) -> Histogram:
    """Histograms of each named weight tensor on the same bins, symmetric around zero
    (so that one set can be compared with another bar for bar)."""
    limit = max((float(t.abs().max()) for t in weights.values() if t.numel()), default=0.0)
    limit = limit or 1.0
    edges = np.linspace(-limit, limit, bins + 1)
    counts = {
        name: np.histogram(t.detach().float().cpu().numpy().ravel(), bins=edges)[0]
        for name, t in weights.items()
    }
    return Histogram(edges, counts)


def layer_grid(layer: LayerFilters, max_columns: int = 8) -> tuple[list[np.ndarray], int]:
    """The kernels as 2-D maps in display order, and the number of columns: one row per
    output channel and one column per input channel, or, for a layer that reads a single
    channel, rows of ``max_columns`` kernels."""
    o, i, _, _ = layer.kernels.shape
    maps = [m.numpy() for m in layer.kernels.reshape(o * i, *layer.kernels.shape[2:])]
    cols = i if i > 1 else min(max_columns, o)
    return maps, cols
