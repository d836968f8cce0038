"""The shipped default model: a checksum-verified delta over the pip-installed backbone."""

from __future__ import annotations

import json

import pytest
import torch

from latesearch import ColBERT
from latesearch.modeling.default import DEFAULT_MODEL_DIR, default_model_path
from latesearch.modeling.delta import DELTA_FILE, file_sha256

pytestmark = pytest.mark.slow
SHIPPED = (DEFAULT_MODEL_DIR / DELTA_FILE).is_file()


@pytest.mark.skipif(not SHIPPED, reason="no default model delta shipped")
def test_default_loads_the_shipped_delta_offline():
    from latesearch.modeling.default import backbone_path

    assert default_model_path() == DEFAULT_MODEL_DIR
    manifest = json.loads((DEFAULT_MODEL_DIR / DELTA_FILE).read_text())
    assert manifest["base"]["sha256"] == file_sha256(backbone_path() / "model.safetensors")
    model = ColBERT.from_pretrained(device="cpu")
    assert model.layout == "latesearch-delta"
    # doc_maxlen 300 since v18 (docs/model.md, "How it was chosen")
    assert (model.config.dim, model.config.query_maxlen, model.config.doc_maxlen) == (128, 32, 300)
    Q = model.encode_queries(["how do I remove a directory tree?"])
    D = model.encode_documents(["Recursively delete a directory tree.", "Parse a JSON string."])
    # only the real query tokens are scored: [CLS] how do i remove a directory tree ? [SEP]
    # (no [Q]/[D] markers since v9; with them, [Q] follows [CLS])
    assert not model.config.query_augmentation
    n_tokens = 10 + int(model.config.markers)
    assert Q.shape == (1, n_tokens, 128)
    scores = [float((Q[0] @ d.T).max(1).values.sum()) for d in D]
    assert scores[0] > scores[1]  # a trained model ranks the relevant passage first
    torch.testing.assert_close(Q.norm(dim=-1), torch.ones(1, n_tokens), atol=1e-3, rtol=0)
