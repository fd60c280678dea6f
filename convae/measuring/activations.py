"""Per-layer activations of any architecture, captured with forward hooks, and shown as maps."""

from __future__ import annotations

import math

import torch

from convae.base.tensors import eval_mode
from convae.nn.models import Autoencoder

CODE = "code"  # the name under which the latent appears in the result


@torch.no_grad()
def capture_activations(model: Autoencoder, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` and return every layer's output, in data-flow order.

    Args:
        model: any convae :class:`Autoencoder`.
        x: (B, C, H, W) float batch in [0, 1].

    Returns:
        ``{"input": x, "encoder.conv1": ..., ..., "code": z, "decoder...": ...,
        "output": x_hat}``; every value a detached CPU tensor whose first dimension is B.
        ``"code"`` is the encoder's output (the same tensor as its last layer's).

    The model is left as it was: its mode is restored and every hook is removed, even if
    the forward pass fails.
    """
    captured: dict[str, torch.Tensor] = {"input": x.detach().cpu()}
    layers = model.named_layers()
    last_encoder = model.code_layer
    handles = []

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            captured[name] = output.detach().float().cpu()
            if name == last_encoder:
                captured[CODE] = captured[name]

        return hook

    try:
        for name, module in layers:
            handles.append(module.register_forward_hook(hook_for(name)))
        device = next(model.parameters()).device
        with eval_mode(model):
            captured["output"] = model(x.to(device)).detach().float().cpu()
    finally:
        for h in handles:
            h.remove()
    # "output" last, after the decoder's layers
    captured["output"] = captured.pop("output")
    return captured


def activation_maps(act: torch.Tensor) -> torch.Tensor:
    """One image's activation as (channels, H, W) maps for display.

    Args:
        act: a layer output for one image: (C, H, W), or a flat vector (N,) from a
            linear layer, which is shown as one map with rows of ceil(sqrt(N)) values
            (the unused tail is NaN, so a plot leaves it blank).
    """
    if act.ndim == 3:
        return act.float()
    if act.ndim == 1:
        n = act.numel()
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        flat = torch.full((rows * cols,), float("nan"))
        flat[:n] = act.float()
        return flat.view(1, rows, cols)
    raise ValueError(f"expected one image's activation (C, H, W) or (N,), got {tuple(act.shape)}")
