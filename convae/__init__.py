"""convae: see what a convolutional autoencoder does.

The package is usable without Streamlit::

    from convae import ModelConfig, build_model, load_dataset, train, TrainConfig
    test = load_dataset("mnist", train=False)
    model = build_model(ModelConfig("conv-upsample", test.shape), seed=0)

Its folders are layers, each importing only from those below it (``lint-imports``
checks the contracts in ``pyproject.toml``):

- ``cli``, ``figures``, ``model_code``: the faces, what a person runs or sees;
- ``classroom``: fitting, step-by-step training, the queue and its worker processes,
  saved models, the class challenge and its board;
- ``measuring``: metrics, PCA, classical denoisers, what a model does inside;
- ``nn``: the architectures, their training, checkpoints, the shipped models;
- ``data``: datasets, pictures and drawings made model inputs, noise;
- ``base``: errors, atomic files, tensor helpers, the version.
"""

from convae.base.errors import CheckpointError, ConfigError, ConvaeError, DatasetError
from convae.base.version import __version__
from convae.classroom.fitting import Fitted, fit, initial_model
from convae.data.datasets import ImageSet, dataset_names, load_dataset
from convae.data.noise import NOISE_KINDS, Noise, add_noise
from convae.measuring.activations import capture_activations
from convae.measuring.metrics import Evaluation, evaluate, image_metrics, reconstruct
from convae.nn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from convae.nn.config import ModelConfig, TrainConfig
from convae.nn.models import ARCHITECTURES, Autoencoder, architecture_names, build_model
from convae.nn.trainer import History, Progress, resolve_device, train

__all__ = [
    "ARCHITECTURES",
    "Autoencoder",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "ConvaeError",
    "DatasetError",
    "Evaluation",
    "Fitted",
    "History",
    "ImageSet",
    "ModelConfig",
    "NOISE_KINDS",
    "Noise",
    "Progress",
    "TrainConfig",
    "__version__",
    "add_noise",
    "architecture_names",
    "build_model",
    "capture_activations",
    "dataset_names",
    "evaluate",
    "fit",
    "image_metrics",
    "initial_model",
    "load_checkpoint",
    "load_dataset",
    "reconstruct",
    "resolve_device",
    "save_checkpoint",
    "train",
]
