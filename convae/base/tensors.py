"""Two small things every part of convae does with models and images.

- :func:`eval_mode`: run a model in eval mode (batch norm uses its running statistics)
  and give it back in the mode it was in, even if the call fails;
- :func:`to_unit_float`: the datasets' uint8 pixels as the float32 values in [0, 1]
  that every model and metric takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


@contextmanager
def eval_mode(model: ModuleT) -> Iterator[ModuleT]:
    """``with eval_mode(model):`` runs the block with ``model`` in eval mode.

    On the way out the model is put back in training mode if it was training, so a
    model in the middle of training can be measured without being disturbed.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (0-255) -> float32 in [0, 1]; float input is returned as float32.

    A float32 input comes back as the same tensor, not a copy.
    """
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()
