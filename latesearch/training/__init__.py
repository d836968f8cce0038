"""Training: `train(TrainConfig(...))` fine-tunes a ColBERT encoder end to end
(Khattab & Zaharia 2020, Section 3.3) from triples or from qrels with mined negatives."""

from latesearch.training.config import TrainConfig
from latesearch.training.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
