"""Training: the one loop every baseline uses (:mod:`tiktalk.training.trainer`)."""

from tiktalk.training.trainer import (
    EpochSampler,
    TrainConfig,
    TrainingInterrupted,
    evaluate_loss,
    load_checkpoint,
    move_to_device,
    resolve_device,
    train,
)

__all__ = [
    "EpochSampler", "TrainConfig", "TrainingInterrupted", "evaluate_loss", "load_checkpoint",
    "move_to_device", "resolve_device", "train",
]
