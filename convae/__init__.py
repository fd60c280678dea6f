"""convae: see what a convolutional autoencoder does.

The package is usable without Streamlit::

    from convae import ModelConfig, build_model, load_dataset, train, TrainConfig
    test = load_dataset("mnist", train=False)
    model = build_model(ModelConfig("conv-upsample", test.shape), seed=0)
"""

__version__ = "0.1.0"

from .activations import capture_activations
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .data import ImageSet, dataset_names, load_dataset
from .errors import CheckpointError, ConfigError, ConvaeError, DatasetError
from .fitting import Fitted, fit, initial_model
from .metrics import Evaluation, evaluate, image_metrics, reconstruct
from .models import ARCHITECTURES, Autoencoder, architecture_names, build_model
from .noise import NOISE_KINDS, Noise, add_noise
from .trainer import History, Progress, resolve_device, train

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
