"""Training: configuration, subject splits, batching, the loop and checkpoints."""

from mrsynth.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mrsynth.training.config import TrainConfig
from mrsynth.training.splits import kfold_subjects, split_subjects
from mrsynth.training.trainer import TrainResult, resolve_device, train_model

__all__ = [
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "kfold_subjects",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "split_subjects",
    "train_model",
]
