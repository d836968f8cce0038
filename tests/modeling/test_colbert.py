"""The encoder: shapes, normalization, per-batch padding invariance, dtypes, bad input."""

from __future__ import annotations

import pytest
import torch

from latesearch import ColBERT
from latesearch.errors import ConfigError, InputError

DOCS = [
    "colbert is a late interaction model.",
    "the cat sat in the house",
    "",
    "protein cell gene drug study result effect patient disease " * 8,
    "a",
]


def test_query_shape_and_norm(tiny_colbert):
    Q = tiny_colbert.encode_queries(["what is late interaction?", "cat"])
    assert Q.shape == (2, 12, 16) and Q.dtype == torch.float32
    assert torch.allclose(Q.norm(dim=-1), torch.ones(2, 12), atol=1e-5)


def test_documents_drop_punctuation_and_keep_order(tiny_colbert):
    D = tiny_colbert.encode_documents(DOCS)
    assert len(D) == len(DOCS)
    tok = tiny_colbert.tokenizer
    for text, emb in zip(DOCS, D, strict=True):
        kept = tok.documents([text]).output_mask.sum().item()
        assert emb.shape == (kept, 16)
        assert torch.allclose(emb.norm(dim=-1), torch.ones(kept), atol=1e-5)
    assert D[2].shape[0] == 3  # empty document: [CLS] [D] [SEP]
    assert D[3].shape[0] == 24  # truncated at doc_maxlen, never an error


def test_batched_equals_one_by_one(tiny_colbert):
    together = tiny_colbert.encode_documents(DOCS, batch_size=2)
    for text, emb in zip(DOCS, together, strict=True):
        alone = tiny_colbert.encode_documents([text])[0]
        assert torch.allclose(alone, emb, atol=1e-5)
    queries = ["late interaction", "cat", "gene drug study"]
    batched = tiny_colbert.encode_queries(queries, batch_size=2)
    for i, q in enumerate(queries):
        assert torch.allclose(tiny_colbert.encode_queries([q])[0], batched[i], atol=1e-5)


def test_masked_positions_see_real_tokens_only(tiny_colbert):
    """Without attend_to_mask_tokens, real-token outputs ignore the [MASK] padding."""
    ids = tiny_colbert.tokenizer.queries(["late interaction"])
    n = int(ids.attention_mask.sum())
    hidden = tiny_colbert.backbone(input_ids=ids.input_ids[:, :n]).last_hidden_state
    full = tiny_colbert.backbone(
        input_ids=ids.input_ids, attention_mask=ids.attention_mask
    ).last_hidden_state
    assert torch.allclose(hidden[0], full[0, :n], atol=1e-5)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_close_to_float32(tiny_bert_dir, tiny_colbert, dtype):
    half = ColBERT.from_pretrained(
        tiny_bert_dir, device="cpu", dtype=dtype, dim=16, query_maxlen=12, doc_maxlen=24
    )
    assert half.dtype == getattr(torch, dtype)
    Q32 = tiny_colbert.encode_queries(["late interaction"])
    Qh = half.encode_queries(["late interaction"])
    assert Qh.dtype == getattr(torch, dtype)
    assert torch.allclose(Qh.float(), Q32, atol=5e-2)


def test_no_augmentation_returns_zero_padded_rows(tiny_bert_dir):
    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", query_augmentation=False, dim=8)
    Q = model.encode_queries(["cat", "late interaction model search"])
    lengths = (Q.abs().sum(-1) > 0).sum(1).tolist()
    assert lengths == [4, 7]


def test_bad_arguments(tiny_colbert, tiny_bert_dir):
    with pytest.raises(InputError):
        tiny_colbert.encode_queries([" "])
    with pytest.raises(InputError):
        tiny_colbert.encode_documents(["ok", None])
    with pytest.raises(ConfigError, match="dtype"):
        ColBERT.from_pretrained(tiny_bert_dir, dtype="int8")
    with pytest.raises(ConfigError, match="max_position_embeddings"):
        ColBERT.from_pretrained(tiny_bert_dir, device="cpu", doc_maxlen=1000)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            ColBERT.from_pretrained(tiny_bert_dir, device="cuda")


def test_fingerprint_changes_with_weights(tiny_bert_dir):
    a = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8)
    b = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8)
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        b.linear.weight[0, 0] += 1
    assert a.fingerprint() != b.fingerprint()


def test_new_projection_is_orthogonal_and_thread_independent():
    from latesearch.modeling.colbert import new_projection

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = new_projection(384, 128)
        torch.set_num_threads(max(2, threads))
        many = new_projection(384, 128)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)
    torch.testing.assert_close(one @ one.T, torch.eye(128), atol=1e-5, rtol=0)
    assert not torch.equal(one, new_projection(384, 128, seed=1))


def test_raw_token_maxsim_baseline(tiny_bert_dir):
    """markers=False, no augmentation, identity head: exactly the backbone's raw MaxSim."""
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    from latesearch import ColBERT, ColBERTConfig

    hidden = AutoModel.from_pretrained(tiny_bert_dir).config.hidden_size
    config = ColBERTConfig(
        dim=hidden, markers=False, query_augmentation=False, mask_punctuation=False
    )
    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **config.to_dict())
    model.linear.weight.data = torch.eye(hidden)
    query, doc = "late interaction search", "a passage about late interaction models"
    Q = model.encode_queries([query])[0]
    D = model.encode_documents([doc])[0]
    hf, backbone = AutoTokenizer.from_pretrained(tiny_bert_dir), AutoModel.from_pretrained(
        tiny_bert_dir
    ).eval()
    with torch.no_grad():
        q = F.normalize(backbone(**hf(query, return_tensors="pt")).last_hidden_state[0], dim=-1)
        d = F.normalize(backbone(**hf(doc, return_tensors="pt")).last_hidden_state[0], dim=-1)
    assert torch.allclose(Q, q, atol=1e-5) and torch.allclose(D, d, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 100])
def test_chunked_documents_match_one_batch(tiny_colbert, chunk_size):
    """Length-sorted chunks give the same embeddings, in the input order, and the same
    gradients as one padded batch."""
    texts = [DOCS[1], "a", DOCS[0] + " " + DOCS[2], DOCS[2], "b c"]
    batch = tiny_colbert.tokenizer.documents(texts)
    tiny_colbert.zero_grad()
    whole, mask = tiny_colbert.forward_documents(batch)
    (whole * torch.arange(whole.numel()).view_as(whole).sin()).sum().backward()
    expected = {n: p.grad.clone() for n, p in tiny_colbert.named_parameters() if p.grad is not None}
    tiny_colbert.zero_grad()
    chunked, chunked_mask = tiny_colbert.forward_documents(batch, chunk_size=chunk_size)
    (chunked * torch.arange(chunked.numel()).view_as(chunked).sin()).sum().backward()
    assert chunked.shape == whole.shape and torch.equal(mask, chunked_mask)
    assert torch.allclose(chunked, whole, atol=1e-5)
    assert expected
    for name, param in tiny_colbert.named_parameters():
        if name in expected:
            assert torch.allclose(param.grad, expected[name], atol=1e-4), name
    tiny_colbert.zero_grad()
    with pytest.raises(ValueError, match="chunk_size"):
        tiny_colbert.forward_documents(batch, chunk_size=0)
