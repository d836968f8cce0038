"""Delta checkpoints: store only what changed from the base backbone, verified by checksum."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from latesearch import ColBERT
from latesearch.errors import CheckpointError
from latesearch.modeling.delta import DELTA_FILE, write_delta

TEXTS = ["late interaction of query and document tokens", "a cat, a dog; a house!"]


@pytest.fixture()
def base_dir(tiny_bert_dir, tmp_path):
    return shutil.copytree(tiny_bert_dir, tmp_path / "base")


def _trained(base_dir) -> ColBERT:
    model = ColBERT.from_pretrained(base_dir, dim=16, query_maxlen=12, doc_maxlen=24)
    torch.manual_seed(1)
    with torch.no_grad():
        layer = model.backbone.encoder.layer[-1].output.dense.weight
        layer.add_(0.05 * torch.randn_like(layer))
        model.backbone.embeddings.word_embeddings.weight[[1, 2, 6]] += 0.1  # markers, [MASK]
        model.linear.weight.mul_(1.5)
    return model


def test_delta_round_trip_stores_only_changes(base_dir, tmp_path):
    model = _trained(base_dir)
    manifest = write_delta(model, base_dir, tmp_path / "delta", base_name=str(base_dir))
    assert manifest["stored"] == {
        "embeddings.word_embeddings.weight": f"3 of {model.backbone.config.vocab_size} rows",
        "encoder.layer.1.output.dense.weight": "whole",
    }
    loaded = ColBERT.from_pretrained(tmp_path / "delta")
    assert loaded.layout == "latesearch-delta" and loaded.config == model.config
    torch.testing.assert_close(
        loaded.encode_queries(TEXTS), model.encode_queries(TEXTS), atol=5e-3, rtol=0
    )
    for a, b in zip(loaded.encode_documents(TEXTS), model.encode_documents(TEXTS), strict=True):
        torch.testing.assert_close(a, b, atol=5e-3, rtol=0)


def test_delta_refuses_a_different_base(base_dir, tmp_path):
    write_delta(_trained(base_dir), base_dir, tmp_path / "delta", base_name=str(base_dir))
    with open(base_dir / "model.safetensors", "ab") as handle:
        handle.write(b" ")  # any change to the base file
    with pytest.raises(CheckpointError, match="checksum"):
        ColBERT.from_pretrained(tmp_path / "delta")


def test_delta_manifest_is_validated(base_dir, tmp_path):
    write_delta(_trained(base_dir), base_dir, tmp_path / "delta", base_name=str(base_dir))
    path = tmp_path / "delta" / DELTA_FILE
    manifest = json.loads(path.read_text())
    manifest["colbert_config"]["dim"] = -3
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="colbert_config"):
        ColBERT.from_pretrained(tmp_path / "delta")
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="delta manifest"):
        ColBERT.from_pretrained(tmp_path / "delta")
