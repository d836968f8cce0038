"""`ColBERTConfig`: the encoder's settings, saved with every checkpoint and validated on load."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, ClassVar

from latesearch._configio import JsonConfig, check_positive
from latesearch.errors import ConfigError
from latesearch.modeling.token_pooling import DocumentPooling

CONFIG_FILE = "latesearch_config.json"
SIMILARITIES = ("cosine", "l2")
SKIPLIST_LOOKUPS = ("encode", "vocabulary")
ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "sigmoid")
HEAD_LAYER_KEYS = {"in_features": int, "out_features": int, "bias": bool,
                   "activation": str, "residual": bool}


@dataclass(frozen=True)
class ColBERTConfig(JsonConfig):
    """Settings of a ColBERT encoder (Khattab & Zaharia 2020, Sections 3.1-3.3).

    Lengths count every token, markers and [CLS]/[SEP] included, as in colbert-ai.
    `markers=False` leaves out [Q]/[D] (the plain backbone's ``[CLS] tokens [SEP]``); with
    `query_augmentation=False` and an orthogonal head of the backbone's width it scores
    exactly the raw MaxSim of the backbone's own token states, a zero-shot baseline.

    Settings for other libraries' checkpoints: `strip_text` / `lowercase` (texts stripped /
    lowercased before tokenizing, as sentence-transformers does), `query_mask_tokens` (0:
    queries padded with [MASK] up to `query_maxlen`, as colbert-ai does; N > 0: exactly N
    [MASK] appended, as Hofstätter's ColBERT does), `skiplist` and `skiplist_lookup`
    ("encode": a word's first token when encoded, colbert-ai; "vocabulary": the word as one
    vocabulary entry, PyLate), `drop_cls` (BGE-M3), `normalize` (False: raw vectors),
    `head` (dense layers after the backbone; empty: one bias-free [hidden -> dim] layer), and
    `doc_pooling` (documents' tokens pooled when encoded, as a Sentence Transformers 6
    `HierarchicalTokenPooling` module does; `token_pooling.DocumentPooling`).
    """

    file_name: ClassVar[str] = CONFIG_FILE

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
    strip_text: bool = False
    lowercase: bool = False
    query_mask_tokens: int = 0
    skiplist: tuple[str, ...] = field(default_factory=lambda: tuple(string.punctuation))
    skiplist_lookup: str = "encode"
    drop_cls: bool = False
    normalize: bool = True
    head: tuple = ()
    doc_pooling: DocumentPooling | None = None

    def validate(self) -> None:
        self._check_ints("query_maxlen", minimum=4)
        self._check_ints("doc_maxlen", minimum=3)
        self._check_ints("query_mask_tokens", minimum=0)
        self._check_ints("dim")
        if self.query_mask_tokens and not self.query_augmentation:
            raise ConfigError("ColBERTConfig.query_mask_tokens needs query_augmentation=True")
        if self.similarity not in SIMILARITIES:
            raise ConfigError(
                f"ColBERTConfig.similarity must be one of {SIMILARITIES}, got {self.similarity!r}"
            )
        if not self.query_token.strip() or not self.doc_token.strip():
            raise ConfigError("ColBERTConfig.query_token and doc_token must be non-empty tokens")
        if not all(self.skiplist):
            raise ConfigError("ColBERTConfig.skiplist must be a list of non-empty strings")
        if self.skiplist_lookup not in SKIPLIST_LOOKUPS:
            raise ConfigError(
                f"ColBERTConfig.skiplist_lookup must be one of {SKIPLIST_LOOKUPS}, "
                f"got {self.skiplist_lookup!r}"
            )
        object.__setattr__(self, "head", tuple(_head_layer(i, x) for i, x in enumerate(self.head)))
        if self.head:
            if self.head[-1]["out_features"] != self.dim:
                raise ConfigError(
                    f"ColBERTConfig.head ends at {self.head[-1]['out_features']} features, "
                    f"dim is {self.dim}"
                )
            for i, (a, b) in enumerate(zip(self.head, self.head[1:], strict=False)):
                if a["out_features"] != b["in_features"]:
                    raise ConfigError(
                        f"ColBERTConfig.head[{i + 1}].in_features must be "
                        f"{a['out_features']} (the previous layer's output)"
                    )

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values; `doc_pooling` only where set, so that configs (and the
        index manifests holding them) keep the keys earlier versions saved."""
        data = super().to_dict()
        if data["doc_pooling"] is None:
            del data["doc_pooling"]
        return data

    @property
    def simple_head(self) -> bool:
        """True for the paper's head: one bias-free linear layer, no activation."""
        return not self.head or (
            len(self.head) == 1
            and not self.head[0]["bias"]
            and self.head[0]["activation"] == "identity"
            and not self.head[0]["residual"]
        )


def _head_layer(index: int, layer: Any) -> dict[str, Any]:
    """One validated layer of a projection head (a mapping with HEAD_LAYER_KEYS)."""
    where = f"ColBERTConfig.head[{index}]"
    if not isinstance(layer, dict):
        raise ConfigError(f"{where} must be an object, got {layer!r}")
    unknown = sorted(set(layer) - set(HEAD_LAYER_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}")
    out = {"bias": False, "activation": "identity", "residual": False, **layer}
    for key, kind in HEAD_LAYER_KEYS.items():
        value = out.get(key)
        wrong_kind = isinstance(value, bool) != (kind is bool) or not isinstance(value, kind)
        if value is None or wrong_kind:
            raise ConfigError(f"{where}.{key} must be {kind.__name__}, got {value!r}")
    check_positive(f"{where}.in_features", out["in_features"], error=ConfigError)
    check_positive(f"{where}.out_features", out["out_features"], error=ConfigError)
    if out["activation"] not in ACTIVATIONS:
        raise ConfigError(
            f"{where}.activation must be one of {ACTIVATIONS}, got {out['activation']!r}"
        )
    return out
