"""Modeling: configuration, tokenization, the ColBERT encoder and checkpoint layouts."""

from latesearch.modeling.colbert import ColBERT, resolve_device, resolve_dtype
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.default import backbone_path
from latesearch.modeling.tokenization import ColBERTTokenizer, TokenBatch

__all__ = [
    "ColBERT",
    "ColBERTConfig",
    "ColBERTTokenizer",
    "TokenBatch",
    "backbone_path",
    "resolve_device",
    "resolve_dtype",
]
