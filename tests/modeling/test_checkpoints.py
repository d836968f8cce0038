"""Checkpoint layouts: write each from a tiny BERT, load back, same embeddings."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from latesearch import ColBERT
from latesearch.errors import CheckpointError

QUERIES = ["what is late interaction?", "cat and dog"]
DOCS = ["colbert is a late interaction model.", "the cat sat in the house", ""]


def assert_same_embeddings(a: ColBERT, b: ColBERT) -> None:
    assert torch.allclose(a.encode_queries(QUERIES), b.encode_queries(QUERIES), atol=1e-6)
    for x, y in zip(a.encode_documents(DOCS), b.encode_documents(DOCS), strict=True):
        assert torch.allclose(x, y, atol=1e-6)


@pytest.fixture
def trained_like(tiny_bert_dir):
    """A tiny ColBERT whose projection differs from the seeded default."""
    model = ColBERT.from_pretrained(
        tiny_bert_dir, device="cpu", dim=8, query_maxlen=10, doc_maxlen=20, similarity="l2"
    )
    with torch.no_grad():
        model.linear.weight.copy_(torch.randn(model.linear.weight.shape))
    return model


def test_save_pretrained_writes_colbertv2_layout(trained_like, tmp_path):
    out = trained_like.save_pretrained(tmp_path / "ckpt")
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "artifact.metadata"} <= names
    assert "tokenizer_config.json" in names
    assert json.loads((out / "config.json").read_text())["architectures"] == ["HF_ColBERT"]
    meta = json.loads((out / "artifact.metadata").read_text())
    assert meta["query_token_id"] == "[unused0]" and meta["doc_token_id"] == "[unused1]"
    assert (meta["query_maxlen"], meta["doc_maxlen"], meta["dim"]) == (10, 20, 8)
    assert meta["similarity"] == "l2" and meta["attend_to_mask_tokens"] is False
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert f.get_tensor("linear.weight").shape == (8, 32)
    assert all(k.startswith("bert.") for k in keys - {"linear.weight"})
    assert not list(tmp_path.glob(".ckpt.tmp-*"))  # temp folder renamed away


def test_round_trip_latesearch_layout(trained_like, tmp_path):
    trained_like.save_pretrained(tmp_path / "ckpt")
    loaded = ColBERT.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert loaded.layout == "latesearch"
    assert loaded.config == trained_like.config
    assert_same_embeddings(trained_like, loaded)


def test_overwrite_keeps_a_complete_checkpoint(trained_like, tmp_path):
    trained_like.save_pretrained(tmp_path / "ckpt")
    trained_like.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_colbert_ai_layout(trained_like, tmp_path):
    """As colbert-ai writes it: pytorch_model.bin, artifact.metadata with many extra keys."""
    folder = tmp_path / "colbert-ai"
    trained_like.save_pretrained(folder)
    for name in ("latesearch_config.json", "modules.json", "README.md"):
        (folder / name).unlink()
    state = {
        "bert." + k: v for k, v in trained_like.backbone.state_dict().items()
    } | {"linear.weight": trained_like.linear.weight.detach().clone()}
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    meta = json.loads((folder / "artifact.metadata").read_text())
    meta.update(nbits=2, bsize=32, checkpoint="colbert-ir/colbertv2.0", meta={"git_branch": "x"})
    (folder / "artifact.metadata").write_text(json.dumps(meta))
    loaded = ColBERT.from_pretrained(folder, device="cpu")
    assert loaded.layout == "colbert-ai"
    assert loaded.config == trained_like.config
    assert_same_embeddings(trained_like, loaded)


def test_pylate_layout(trained_like, tmp_path):
    """sentence-transformers / PyLate: modules.json, 1_Dense, prefixes and lengths."""
    folder = tmp_path / "pylate"
    folder.mkdir()
    trained_like.backbone.save_pretrained(str(folder))
    trained_like.tokenizer.hf.save_pretrained(str(folder))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Dense").mkdir()
    (folder / "1_Dense" / "config.json").write_text(
        json.dumps({"in_features": 32, "out_features": 8, "bias": False})
    )
    save_file(
        {"linear.weight": trained_like.linear.weight.detach().contiguous()},
        str(folder / "1_Dense" / "model.safetensors"),
    )
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "query_prefix": "[unused0]",
                "document_prefix": "[unused1]",
                "query_length": 10,
                "document_length": 20,
                "attend_to_expansion_tokens": False,
                "skiplist_words": ["!", ".", ","],
                "do_query_expansion": True,
            }
        )
    )
    loaded = ColBERT.from_pretrained(folder, device="cpu", similarity="l2")
    assert loaded.layout == "pylate"
    # PyLate strips texts and skips its own word list, looked up in the vocabulary
    assert loaded.config.strip_text and loaded.config.skiplist_lookup == "vocabulary"
    assert loaded.config.skiplist == ("!", ".", ",")
    pylate = {"strip_text": True, "skiplist": ("!", ".", ","), "skiplist_lookup": "vocabulary"}
    assert loaded.config == dataclasses.replace(trained_like.config, **pylate)
    assert_same_embeddings(trained_like, loaded)


def test_plain_backbone_gets_seeded_projection(tiny_bert_dir):
    a = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8)
    b = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8)
    assert a.layout == "hf"
    assert torch.equal(a.linear.weight, b.linear.weight)
    # orthogonal rows: the projection keeps the geometry of the hidden space
    w = a.linear.weight
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)


def test_missing_and_malformed_checkpoints(tiny_bert_dir, trained_like, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        ColBERT.from_pretrained(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        ColBERT.from_pretrained(empty)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_dir, broken)
    (broken / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="config.json"):
        ColBERT.from_pretrained(broken)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny_bert_dir, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights file"):
        ColBERT.from_pretrained(no_weights)


def test_bad_config_in_checkpoint(trained_like, tmp_path):
    folder = trained_like.save_pretrained(tmp_path / "ckpt")
    cfg = json.loads((folder / "latesearch_config.json").read_text())
    (folder / "latesearch_config.json").write_text(json.dumps(cfg | {"flavour": "x"}))
    with pytest.raises(CheckpointError, match="flavour"):
        ColBERT.from_pretrained(folder)
    (folder / "latesearch_config.json").write_text(json.dumps(cfg | {"dim": 12}))
    misfit = r"ckpt: projection: head tensor linear.weight has shape \(8, 32\)"
    with pytest.raises(CheckpointError, match=misfit):
        ColBERT.from_pretrained(folder)
    (folder / "latesearch_config.json").write_text(json.dumps(cfg | {"doc_token": "[nope]"}))
    with pytest.raises(CheckpointError, match="doc_token"):
        ColBERT.from_pretrained(folder)


def test_save_pretrained_never_replaces_an_unrelated_folder(tiny_colbert, tmp_path):
    from latesearch.errors import InputError

    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="refusing to replace"):
        tiny_colbert.save_pretrained(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
