"""`DocumentPooling` / `pool_tokens` against Sentence Transformers 6's own
`HierarchicalTokenPooling` on random documents, and the settings' validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latesearch.errors import ConfigError
from latesearch.modeling.token_pooling import DocumentPooling, pool_tokens

SETTINGS = [
    {"pool_factor": 2},
    {"pool_factor": 1.5, "num_protected_tokens": 2},
    {"pool_factor": 4, "num_protected_tokens": 0, "normalize_embeddings": False},
    {"max_tokens": 3},
    {"distance_threshold": 0.8},
    {"normalize_embeddings": True},  # nothing merged: only normalized
]


def ours(settings: dict) -> DocumentPooling:
    renamed = {"num_protected_tokens": "protected_tokens", "normalize_embeddings": "normalize"}
    return DocumentPooling(**{renamed.get(k, k): v for k, v in settings.items()})


@pytest.mark.parametrize("settings", SETTINGS)
def test_pooled_documents_are_sentence_transformers(settings):
    modules = pytest.importorskip("sentence_transformers.multi_vector_encoder.modules")
    theirs = modules.HierarchicalTokenPooling(**settings)
    generator = torch.Generator().manual_seed(5)
    documents = [torch.nn.functional.normalize(torch.randn(n, 8, generator=generator), dim=-1)
                 for n in (0, 1, 2, 3, 7, 20, 41)]  # fmt: skip
    expected = theirs.pool([d.clone() for d in documents])
    for document, want in zip(documents, expected, strict=True):
        got, labels = pool_tokens(document, ours(settings))
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
        assert len(labels) == len(document) and (len(document) == 0 or labels.max() < len(got))
    pooled = pool_tokens(documents[-1], ours(settings))
    if ours(settings).merges:
        assert len(pooled[0]) < len(documents[-1])
        members = np.bincount(pooled[1])  # each output vector is the mean of its members
        assert members.sum() == len(documents[-1]) and (members > 0).all()


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="mutually exclusive"):
        DocumentPooling(pool_factor=2, max_tokens=4)
    with pytest.raises(ConfigError, match="pool_factor"):
        DocumentPooling(pool_factor=0.5)
    with pytest.raises(ConfigError, match="max_tokens"):
        DocumentPooling(max_tokens=1, protected_tokens=1)
    with pytest.raises(ConfigError, match="distance_threshold"):
        DocumentPooling(distance_threshold=-1.0)
    assert DocumentPooling.from_dict({"pool_factor": 2}).pool_factor == 2.0
