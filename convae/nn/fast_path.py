"""The same forward pass, computed in fewer and better-shaped operations.

:func:`fast_forward` returns a function that computes exactly what ``model(x)`` computes
(the same parameters, the same arithmetic up to float rounding) for the autoencoders
built in :mod:`convae.nn.models`, rewritten where PyTorch's CPU kernels are slow for the
tutorials' thin layers (measured in ``benchmarks/benchmark_trainer.py``):

- **upsample, then convolve** (nearest 2x upsampling followed by a 3x3 convolution, the
  upsampling tutorial's decoder) is one 3x3 convolution of the small image into four
  times the channels, one per output pixel phase, then a pixel shuffle: no upsampled
  image is ever built, and a 16 -> 1 convolution at 28x28 becomes a better-shaped
  16 -> 4 convolution at 14x14 (the "sub-pixel convolution" identity);
- **ReLU, then max-pool** is max-pool, then ReLU: both are monotonic, so they commute,
  and the ReLU runs on a quarter of the values;
- **a 2x2 max-pool, without gradients** (measuring) is two elementwise maxima of strided
  views: the same values, and 10 % off measuring 10,000 MNIST images with
  ``conv-upsample`` (0.59 s against 0.65 s, medians of seven, freed memory kept);
- **the first convolution of a greyscale image**, when its weights are being trained
  (the image's own gradient is never needed), is one matrix product of the image's 3x3
  neighbourhoods (9 columns) with the weights; oneDNN's kernels for a single input
  channel were 3x slower there. Without gradients (measuring) oneDNN's forward pass is
  the faster one (up to 1.6x for the whole model, never measurably slower; measured per
  architecture), and runs as it is.

Every other layer runs as it is. The model itself is not changed: its layers, names and
checkpoints stay those of :mod:`convae.nn.models`. The trainer and the measurement
(:func:`convae.measuring.metrics.reconstruct`) use this path; what looks inside a model
(:mod:`convae.measuring.activations`, with hooks on its layers) calls the model itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as torch_module

from convae.nn.models import Autoencoder

# images per forward pass when measuring: their activations stay in the CPU caches, 1.2-2x
# faster than 1000 (2,000 MNIST images' test loss in 0.06 s instead of 0.12 s)
MEASURING_BATCH = 250

Layer = Callable[[torch.Tensor], torch.Tensor]


def fast_forward(model: nn.Module) -> Layer:
    """A function computing ``model(x)`` faster: its layers, rewritten as above.

    Models without an ``encoder`` and a ``decoder`` made of ``nn.Sequential`` are called
    as they are.
    """
    parts = [getattr(model, name, None) for name in ("encoder", "decoder")]
    sequences = [p for p in parts if isinstance(p, nn.Sequential)]
    if len(sequences) != len(parts) or _overridden(model) or _hooked(model):
        return model
    layers: list[nn.Module] = [layer for part in sequences for layer in part]
    steps = _rewrite(layers)

    def forward(x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            x = step(x)
        return x

    return forward


def _overridden(model: nn.Module) -> bool:
    """Whether the model computes its output otherwise than encoder, then decoder (as
    :class:`convae.nn.models.Autoencoder` does): its class overrides them, or ``model.compile()``
    made calling it run torch's compiled code."""
    return (
        not isinstance(model, Autoencoder)
        or getattr(model, "_compiled_call_impl", None) is not None
        or any(
            getattr(type(model), name) is not getattr(Autoencoder, name)
            for name in ("forward", "encode", "decode")
        )
    )


def _hooked(model: nn.Module) -> bool:
    """Whether any hook would see the layers run (this path would skip or reorder them)."""
    hook_tables = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
    )
    global_hooks = (
        torch_module._global_forward_hooks,
        torch_module._global_forward_pre_hooks,
        torch_module._global_backward_hooks,
        torch_module._global_backward_pre_hooks,
    )
    return any(global_hooks) or any(
        getattr(m, table) for m in model.modules() for table in hook_tables
    )


def _rewrite(layers: list[nn.Module]) -> list[Layer]:
    steps: list[Layer] = []
    i = 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if i == 0 and _is_3x3_same(layer) and layer.in_channels == 1:
            steps.append(_InputConvStep(layer))
        elif _is_nearest_2x(layer) and _is_3x3_same(after):
            steps.append(_SubPixelConvStep(layer, after))
            i += 1
        elif isinstance(layer, nn.ReLU) and isinstance(after, nn.MaxPool2d):
            steps += [_pooling(after), layer]  # max-pool, then ReLU: the same values
            i += 1
        elif isinstance(layer, nn.MaxPool2d):
            steps.append(_pooling(layer))
        else:
            steps.append(layer)
        i += 1
    return steps


def _pooling(pool: nn.MaxPool2d) -> Layer:
    """``pool``, or for a 2x2 max-pool of stride 2 the faster :class:`_MaxPool2x2Step`."""
    plain = (
        pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and pool.dilation in (1, (1, 1))
        and not pool.ceil_mode
        and not pool.return_indices
    )
    return _MaxPool2x2Step(pool) if plain else pool


class _MaxPool2x2Step:
    """A 2x2 max-pool of stride 2 where no gradient flows through it (measuring): the
    maximum of each window's two rows, then of its two columns, read as strided views of
    a channels-last image; 2.6-3.7x faster than ``max_pool2d`` for the shapes of convae's
    models (measured), the same values. Where a gradient is wanted the layer runs as it
    is (its backward needs the indices it keeps), as it does for other inputs."""

    def __init__(self, pool: nn.MaxPool2d):
        self.pool = pool

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if (
            (torch.is_grad_enabled() and x.requires_grad)
            or x.ndim != 4
            or x.shape[-2] % 2
            or x.shape[-1] % 2
            or not x.is_contiguous(memory_format=torch.channels_last)
        ):
            return self.pool(x)
        n, c, h, w = x.shape
        windows = x.permute(0, 2, 3, 1).view(n, h // 2, 2, w // 2, 2, c)
        rows = torch.maximum(windows[:, :, 0], windows[:, :, 1])  # (N, H/2, W/2, 2, C)
        return torch.maximum(rows[:, :, :, 0], rows[:, :, :, 1]).permute(0, 3, 1, 2)


def _is_3x3_same(layer: nn.Module | None) -> TypeGuard[nn.Conv2d]:
    """A plain 3x3 convolution that keeps the image size (stride 1, padding 1)."""
    return (
        type(layer) is nn.Conv2d  # not a subclass, whose forward may differ
        and layer.kernel_size == (3, 3)
        and layer.stride == (1, 1)
        and layer.padding == (1, 1)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.padding_mode == "zeros"
    )


def _is_nearest_2x(layer: nn.Module | None) -> TypeGuard[nn.Upsample]:
    """Nearest upsampling, by a factor of 2 or to a fixed size (checked when called)."""
    return isinstance(layer, nn.Upsample) and layer.mode == "nearest"


class _InputConvStep:
    """A 3x3 convolution of a one-channel image as one matrix product (see module doc)."""

    def __init__(self, conv: nn.Conv2d):
        self.conv = conv

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # the plain layer where no weight gradient is wanted (measuring), where the
        # input's own gradient is (the product computes none), under autocast (the
        # product is float32 only), and for an input of another shape, type or device,
        # which the layer refuses with PyTorch's message
        w, b = self.conv.weight, self.conv.bias
        if (
            not (torch.is_grad_enabled() and w.requires_grad)
            or x.requires_grad
            or torch.is_autocast_enabled(x.device.type)
            or x.ndim != 4
            or x.shape[1] != 1
            or x.dtype != w.dtype
            or x.device != w.device
        ):
            return self.conv(x)
        if b is None:
            b = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        n, _, h, width = x.shape
        # the product's (N*H*W, C) rows, seen as a channels-last image outside the
        # Function (a view made inside one could not be changed in place, by an
        # in-place ReLU, say)
        return _InputConv.apply(x, w, b).view(n, h, width, -1).permute(0, 3, 1, 2)


def _neighbourhoods(image: torch.Tensor) -> torch.Tensor:
    """(N, H, W) -> (10, N*H*W): each pixel's 3x3 neighbourhood (zeros outside), in the
    order of a 3x3 kernel's taps, then a 1 (for the bias). Stacked as rows, each a
    shifted copy of the image: twice as fast as one row per pixel (measured)."""
    n, h, w = image.shape
    padded = F.pad(image, (1, 1, 1, 1))
    taps = [padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)]
    return torch.stack([*taps, image.new_ones(()).expand(n, h, w)]).view(10, -1)


class _InputConv(torch.autograd.Function):
    """conv2d(x, weight, bias, padding=1) for x of one channel, as (N*H*W, C) rows;
    no gradient for x.

    Forward: the neighbourhoods, transposed to (N*H*W, 10), @ (10, C) weights and bias.
    Backward: the weights' and bias's gradient is the neighbourhoods, (10, N*H*W), @ the
    output's gradient, one product.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        n, _, h, w = x.shape
        channels = weight.shape[0]
        columns = _neighbourhoods(x.reshape(n, h, w))
        ctx.save_for_backward(columns)
        weights = torch.cat((weight.view(channels, 9), bias.view(channels, 1)), dim=1)
        return columns.t() @ weights.t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (columns,) = ctx.saved_tensors
        channels = grad.shape[1]
        grads = (columns @ grad).t()  # (C, 10): the weights', then the bias's
        return None, grads[:, :9].reshape(channels, 1, 3, 3), grads[:, 9].contiguous()


@functools.cache
def _phase_taps(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(9, 36) of 0/1: row dy*3+dx, a tap of the kernel on the upsampled image; column
    (a*2+b)*9 + u*3+v, tap (u, v) on the small image for output phase (a, b): 1 where
    the first reads what the second does.

    Pixel 2i+a of the upsampled image's row, read at offset dy-1, comes from row
    floor((2i+a+dy-1)/2) = i + floor((a+dy-1)/2) of the small one: offset u-1 with
    u = floor((a+dy-1)/2) + 1.
    """
    taps = torch.zeros(3, 3, 2, 2, 3, 3, dtype=dtype, device=device)
    for a in range(2):
        for b in range(2):
            for dy in range(3):
                for dx in range(3):
                    taps[dy, dx, a, b, (a + dy - 1) // 2 + 1, (b + dx - 1) // 2 + 1] = 1
    return taps.reshape(9, 36)


class _SubPixelConvStep:
    """conv(upsample(x)) as a convolution of x into 4x the channels + pixel shuffle."""

    def __init__(self, upsample: nn.Upsample, conv: nn.Conv2d):
        self.upsample, self.conv = upsample, conv

    def _doubles(self, x: torch.Tensor) -> bool:
        up = self.upsample
        if up.size is not None:
            size = up.size if isinstance(up.size, tuple) else (up.size, up.size)
            return tuple(size) == (2 * x.shape[-2], 2 * x.shape[-1])
        factor = up.scale_factor
        factors = factor if isinstance(factor, tuple) else (factor, factor)
        return all(f is not None and float(f) == 2.0 for f in factors)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or not self._doubles(x):
            return self.conv(self.upsample(x))
        w, b = self.conv.weight, self.conv.bias
        out_c, in_c = w.shape[:2]
        # each phase's kernel is a sum of the kernel's taps: one product (2.5x faster than
        # einsum, with its gradient, measured); output channel phase * out_c + o, so each
        # pixel's four phases sit side by side
        phase_taps = w.reshape(out_c * in_c, 9) @ _phase_taps(w.dtype, w.device)
        phase_weight = (
            phase_taps.view(out_c, in_c, 4, 9).permute(2, 0, 1, 3).reshape(4 * out_c, in_c, 3, 3)
        )
        phase_bias = b.expand(4, out_c).reshape(-1) if b is not None else None
        return _interleave_phases(F.conv2d(x, phase_weight, phase_bias, padding=1))


def _interleave_phases(y: torch.Tensor) -> torch.Tensor:
    """(N, 4C, h, w), channels ordered (row phase, column phase, channel) -> (N, C, 2h, 2w)
    channels-last: ``pixel_shuffle`` for that order, 2.5x faster for 16 channels
    (measured: one copy into the channels-last layout, where pixel_shuffle makes two)."""
    n, c4, h, w = y.shape
    c = c4 // 4
    pixels = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, c)  # (N, i, j, a, b, C)
    return pixels.permute(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
