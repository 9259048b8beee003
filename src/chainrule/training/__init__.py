"""Training the lecture's way: the engine behind ``chainrule train`` and ``evaluate``."""

from chainrule.training.config import TrainConfig
from chainrule.training.loop import evaluate_model, load_run, train

__all__ = ["TrainConfig", "evaluate_model", "load_run", "train"]
