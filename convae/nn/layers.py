"""A model's anatomy: every layer with its output shape, and how much the code compresses.

What the Home page's layer table and the sidebar's compression figure show; measured on
the model itself, so it is right for any architecture and input size.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from convae.nn.models import Autoencoder


@dataclass(frozen=True)
class LayerRow:
    """One row of a model's layer table."""

    name: str  # e.g. "encoder.conv1"
    kind: str  # the module's class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension, e.g. (16, 28, 28)
    params: int

    @property
    def size(self) -> int:
        """Number of values this layer outputs per image."""
        return math.prod(self.output_shape)


@torch.no_grad()
def layer_table(model: Autoencoder) -> list[LayerRow]:
    """Every layer in data-flow order with its output shape and parameter count.

    Shapes are measured by running one blank image through a private copy of the model
    (so they are right for any architecture and input size), which leaves the model
    itself untouched: a model shared between threads never sees a foreign hook.
    """
    model = copy.deepcopy(model)
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    layers = model.named_layers()
    for name, module in layers:

        def hook(_m, _i, out, name=name):
            shapes[name] = tuple(out.shape[1:])

        handles.append(module.register_forward_hook(hook))
    model.eval()
    device = next(model.parameters()).device
    model(torch.zeros(1, *model.config.in_shape, device=device))
    return [
        LayerRow(name, type(m).__name__, shapes[name], sum(p.numel() for p in m.parameters()))
        for name, m in layers
    ]


@dataclass(frozen=True)
class Compression:
    code_size: int  # values in the code
    input_size: int  # values in one input image
    code_shape: tuple[int, ...]

    @property
    def ratio(self) -> float:
        """Code size as a fraction of the input size (0.25 = the code is a quarter)."""
        return self.code_size / self.input_size

    @property
    def ratio_text(self) -> str:
        """The ratio as a percentage to show: "25%", or "0.3%" for a tiny code (2 of 784
        values would round to a misleading 0%)."""
        return f"{self.ratio:.0%}" if self.ratio >= 0.01 else f"{self.ratio:.1%}"


def compression(model: Autoencoder) -> Compression:
    """How much smaller the code is than the input, e.g. 196 / 784 = 25%."""
    return Compression(model.latent_size, math.prod(model.config.in_shape), model.code_shape)
