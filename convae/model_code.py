"""A model as code a student can take home: plain PyTorch that builds the same network,
and the few lines that load this exact model with convae.

:func:`pytorch_source` writes the network as a student would: an ``nn.Sequential`` of
named layers for the encoder and one for the decoder, each layer as PyTorch prints it
(PyTorch's printout of a built-in layer is the call that builds it); a residual block,
the one layer PyTorch lacks, comes as a short class of its own. The names are the
model's own, so a convae checkpoint's weights load into it with PyTorch alone.
"""

from __future__ import annotations

from torch import nn

from convae.nn.layers import layer_table
from convae.nn.models import Autoencoder, Residual

# convae.nn.models.Residual in plain PyTorch, with the same parameter names
RESIDUAL_SOURCE = '''
class Residual(nn.Module):
    """relu(x + body(x)): two 3x3 convolutions with batch norm, added to their input."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(channels, channels, kernel_size=3, padding=1)),
            ("bn1", nn.BatchNorm2d(channels)),
            ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(channels, channels, kernel_size=3, padding=1)),
            ("bn2", nn.BatchNorm2d(channels)),
        ]))

    def forward(self, x):
        return torch.relu(x + self.body(x))
'''


def _layer_call(module: nn.Module) -> str:
    """``nn.Conv2d(1, 16, kernel_size=(3, 3), ...)``: the call that builds ``module``."""
    if isinstance(module, Residual):
        return f"Residual({module.channels})"
    if not type(module).__module__.startswith("torch.nn.modules."):
        raise ValueError(f"{type(module).__name__} is not a PyTorch layer; it has no one-line call")
    return f"nn.{module!r}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def pytorch_source(model: Autoencoder, weights_file: str | None = None) -> str:
    """Python source that builds ``model``'s network in plain PyTorch.

    Args:
        model: any convae :class:`Autoencoder` made of PyTorch's own layers.
        weights_file: a checkpoint's file name; if given, the source ends with the two
            lines that load its weights with ``torch.load`` (no convae needed).

    Returns:
        Source defining ``model`` (an ``nn.Sequential`` of ``encoder`` and ``decoder``)
        whose ``state_dict`` has the same keys and shapes as ``model``'s; each layer is
        commented with its output shape for one image.
    """
    shapes = {row.name: row.output_shape for row in layer_table(model)}
    c, h, w = model.config.in_shape
    lines = [
        "from collections import OrderedDict",
        "",
        "import torch",
        "from torch import nn",
        "",
        f"# {model.config.arch} for {c}x{h}x{w} images: {model.num_params:,} parameters, "
        f"a {_shape(model.code_shape)} = {model.latent_size}-value code",
    ]
    if any(isinstance(m, Residual) for m in model.modules()):
        lines += [*RESIDUAL_SOURCE.splitlines(), ""]
    for part in ("encoder", "decoder"):
        lines.append(f"{part} = nn.Sequential(OrderedDict([")
        for name, module in getattr(model, part).named_children():
            code = ", the code" if f"{part}.{name}" == model.code_layer else ""
            out = _shape(shapes[f"{part}.{name}"])
            lines.append(f'    ("{name}", {_layer_call(module)}),  # -> {out}{code}')
        lines.append("]))")
    lines.append('model = nn.Sequential(OrderedDict([("encoder", encoder), ("decoder", decoder)]))')
    if weights_file:
        lines += [
            "",
            "# the trained weights: a convae checkpoint is a plain torch file",
            f'checkpoint = torch.load("{weights_file}", weights_only=True)',
            'model.load_state_dict(checkpoint["state_dict"])',
        ]
    lines += [
        "model.eval()",
        "",
        f"x = torch.rand(1, {c}, {h}, {w})  # one image, pixel values in [0, 1]",
        "with torch.no_grad():",
        f"    code = model[0](x)  # the encoder: {_shape(model.code_shape)}",
        f"    out = model[1](code)  # the decoder: back to {c}x{h}x{w}",
    ]
    return "\n".join(lines) + "\n"


def loading_source(
    model: Autoencoder, dataset: str, checkpoint: str | None = None, shipped: bool = False
) -> str:
    """The lines that load this exact model with convae and run it on test images.

    Args:
        model: the model shown.
        dataset: the dataset it works on (for the test images).
        checkpoint: its checkpoint's file name; None for the untrained model, which is
            rebuilt from its seed (0, as the app's untrained models).
        shipped: the checkpoint ships with convae (found by name wherever convae is
            installed); otherwise it is a file next to the script.
    """
    arch = model.config.arch
    shape = tuple(model.config.in_shape)
    if checkpoint is None:
        head = [
            "from convae import ModelConfig, build_model, load_dataset",
            "",
            "# the untrained model: random weights, the same for the same seed",
            f'model = build_model(ModelConfig("{arch}", {shape}), seed=0)',
        ]
    elif shipped:
        head = [
            "from convae import load_checkpoint, load_dataset",
            "from convae.nn.zoo import resolve_path",
            "",
            "# shipped with convae: found by name",
            f'model = load_checkpoint(resolve_path("{checkpoint.removesuffix(".pt")}")).model',
        ]
    else:
        head = [
            "from convae import load_checkpoint, load_dataset",
            "",
            "# the file downloaded from the app, next to this script",
            f'model = load_checkpoint("{checkpoint}").model',
        ]
    c, h, w = shape
    return (
        "\n".join(
            [
                "import torch",
                *head,
                "",
                f'test = load_dataset("{dataset}", train=False)',
                f"x = test.floats(slice(0, 8))  # 8 test images: 8x{c}x{h}x{w} in [0, 1]",
                "with torch.no_grad():",
                f"    code = model.encode(x)  # 8x{_shape(model.code_shape)}",
                "    out = model.decode(code)  # the reconstructions",
            ]
        )
        + "\n"
    )
