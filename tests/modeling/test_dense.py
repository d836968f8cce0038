"""Dense bi-encoder: masked mean pooling, normalization, length limit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from latesearch.errors import CheckpointError
from latesearch.modeling.dense import DenseEncoder, mean_pool


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]])
    pooled = mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    expected = torch.tensor([[2.0, 2.0]]) / (8**0.5)
    assert torch.allclose(pooled, expected)


def test_encode_is_batch_invariant_and_normalized(tiny_bert_dir):
    encoder = DenseEncoder.from_pretrained(tiny_bert_dir)
    texts = ["cell gene", "the protein of the cell is a drug for the patient disease", "dog"]
    together = encoder.encode(texts, batch_size=3)
    alone = torch.cat([encoder.encode([t]) for t in texts])
    assert together.shape == (3, encoder.dim)
    assert torch.allclose(together, alone, atol=1e-5)  # padding does not leak into the mean
    assert torch.allclose(together.norm(dim=1), torch.ones(3), atol=1e-5)
    with torch.inference_mode():  # the mean of the last hidden states, by hand
        batch = encoder.tokenizer(texts[:1], return_tensors="pt")
        hidden = encoder.backbone(**batch).last_hidden_state[0]
    manual = hidden.mean(0) / hidden.mean(0).norm()
    assert torch.allclose(together[0], manual, atol=1e-5)


def test_max_length_from_sentence_transformers_config(tiny_bert_dir, tmp_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8}))
    encoder = DenseEncoder.from_pretrained(folder)
    assert encoder.max_length == 8
    long = " ".join(["cell"] * 50)
    truncated = " ".join(["cell"] * 6)  # [CLS] + 6 + [SEP] = 8 tokens
    assert torch.allclose(encoder.encode([long]), encoder.encode([truncated]), atol=1e-5)
    assert DenseEncoder.from_pretrained(folder, max_length=4).max_length == 4


def test_missing_model_folder(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        DenseEncoder.from_pretrained(tmp_path)
