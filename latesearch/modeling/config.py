"""`ColBERTConfig`: the encoder's settings, saved with every checkpoint and validated on load."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json
from latesearch._configio import config_from_dict, read_json
from latesearch.errors import ConfigError

CONFIG_FILE = "latesearch_config.json"
SIMILARITIES = ("cosine", "l2")


@dataclass(frozen=True)
class ColBERTConfig:
    """Settings of a ColBERT encoder (Khattab & Zaharia 2020, Sections 3.1-3.3).

    Lengths count every token, markers and [CLS]/[SEP] included, as in colbert-ai.
    `markers=False` leaves out [Q]/[D] (the plain backbone's ``[CLS] tokens [SEP]``); with
    `query_augmentation=False` and an orthogonal head of the backbone's width it scores
    exactly the raw MaxSim of the backbone's own token states, a zero-shot baseline.
    """

    query_maxlen: int = 32
    doc_maxlen: int = 180
    dim: int = 128
    similarity: str = "cosine"
    mask_punctuation: bool = True
    query_augmentation: bool = True
    markers: bool = True
    attend_to_mask_tokens: bool = False
    query_token: str = "[unused0]"
    doc_token: str = "[unused1]"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = {"int": int, "str": str, "bool": bool}[str(f.type)]
            if expected is int and isinstance(value, bool) or not isinstance(value, expected):
                raise ConfigError(
                    f"ColBERTConfig.{f.name} must be {expected.__name__}, got {value!r}"
                )
        if self.query_maxlen < 4:
            raise ConfigError(f"ColBERTConfig.query_maxlen must be >= 4, got {self.query_maxlen}")
        if self.doc_maxlen < 3:
            raise ConfigError(f"ColBERTConfig.doc_maxlen must be >= 3, got {self.doc_maxlen}")
        if self.dim < 1:
            raise ConfigError(f"ColBERTConfig.dim must be >= 1, got {self.dim}")
        if self.similarity not in SIMILARITIES:
            raise ConfigError(
                f"ColBERTConfig.similarity must be one of {SIMILARITIES}, got {self.similarity!r}"
            )
        if not self.query_token.strip() or not self.doc_token.strip():
            raise ConfigError("ColBERTConfig.query_token and doc_token must be non-empty tokens")

    def replace(self, **changes: Any) -> ColBERTConfig:
        """A copy with some fields changed (validated)."""
        return from_dict({**self.to_dict(), **changes}, source="overrides")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write `latesearch_config.json` into `folder` atomically."""
        return write_json(Path(folder) / CONFIG_FILE, self.to_dict())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ColBERTConfig:
        """Read and validate `latesearch_config.json` from `folder`."""
        path = Path(folder) / CONFIG_FILE
        return from_dict(read_json(path, what="ColBERT config file"), source=str(path))


def from_dict(data: Any, *, source: str = "config") -> ColBERTConfig:
    """Build a config from a mapping; unknown fields and bad values are errors naming them."""
    return config_from_dict(ColBERTConfig, data, source=source)
