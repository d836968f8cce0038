"""MaxSim kernels over tensors (ColBERT late interaction); knows nothing of models."""

from latesearch.scoring.maxsim import (
    DEFAULT_MAX_ELEMENTS,
    SIMILARITIES,
    flops_maxsim,
    maxsim,
    maxsim_pairs,
)
from latesearch.scoring.padding import pad_documents, pad_from_flat

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "SIMILARITIES",
    "flops_maxsim",
    "maxsim",
    "maxsim_pairs",
    "pad_documents",
    "pad_from_flat",
]
