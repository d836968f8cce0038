"""The cached contrastive loss (GradCache): same loss and parameter gradients as the
uncached computation, at a chunk smaller than the batch."""

from __future__ import annotations

import copy

import pytest
import torch

from latesearch import ColBERT, train
from latesearch.errors import ConfigError
from latesearch.training.cached import cached_backward
from latesearch.training.loss import Objective

QUERIES = ["what cat", "what protein", "what music", "what physics", "what drug"]
DOCS = [
    "the cat dog house", "a dog in the house", "the protein gene cell", "gene study",
    "the music city river", "river city", "the physics particle energy", "energy data",
    "the drug patient disease", "patient effect",
]  # fmt: skip
TEACHER = torch.tensor([[3.0, 1.0], [2.5, 0.5], [1.0, 0.0], [4.0, 2.0], [0.3, 0.1]])


def _encode(model):
    def encode(queries, documents):
        Q = None if queries is None else model.forward_queries(queries)
        D, mask = (None, None) if documents is None else model.forward_documents(documents)
        return Q, D, mask

    return encode


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("distill", [False, True])
def test_cached_loss_and_gradients_equal_the_uncached_ones(tiny_colbert, distill):
    model = copy.deepcopy(tiny_colbert).train()
    objective = Objective(nway=2, similarity="cosine", in_batch=True, distill=distill)
    teacher = TEACHER if distill else None
    queries, documents = model.tokenizer.queries(QUERIES), model.tokenizer.documents(DOCS)

    loss = objective(*_encode(model)(queries, documents), teacher)
    loss.backward()
    expected = _grads(model)
    model.zero_grad(set_to_none=True)

    cached = cached_backward(
        _encode(model), queries, documents, lambda Q, D, m: objective(Q, D, m, teacher), 3
    )
    assert float(cached) == pytest.approx(float(loss.detach()), rel=1e-5)
    found = _grads(model)
    assert found.keys() == expected.keys() and len(found) > 10
    for name, grad in expected.items():
        torch.testing.assert_close(found[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_each_chunk_is_encoded_again_with_its_own_dropout(dropout_bert):
    """With dropout, the second pass must draw the masks of the first: the gradients equal
    those of an uncached pass that encodes the same chunks in the same order."""
    model = ColBERT.from_pretrained(dropout_bert, dim=16, query_maxlen=12, doc_maxlen=24).train()
    objective = Objective(nway=2, similarity="cosine", in_batch=True)
    queries, documents = model.tokenizer.queries(QUERIES), model.tokenizer.documents(DOCS)
    encode = _encode(model)

    def rows(batch, start, stop):
        return type(batch)(*(t[start:stop] for t in batch.astuple()))

    torch.manual_seed(3)
    Q = torch.cat([encode(rows(queries, s, s + 4), None)[0] for s in (0, 4)])
    D = torch.cat([encode(None, rows(documents, s, s + 4))[1] for s in (0, 4, 8)])
    loss = objective(Q, D, documents.output_mask)
    loss.backward()
    expected = _grads(model)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    cached = cached_backward(encode, queries, documents, objective, 4)
    assert float(cached) == pytest.approx(float(loss.detach()), rel=1e-5)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, expected[name], atol=1e-6, rtol=1e-4, msg=name)
    with pytest.raises(ValueError, match="chunk"):
        cached_backward(encode, queries, documents, objective, 0)


def test_training_with_a_cached_loss_gives_the_same_model(tmp_path, tiny_bert_dir, toy_triples,
                                                          small_config):  # fmt: skip
    common = dict(triples=toy_triples, base_model=tiny_bert_dir, steps=3, batch_size=6,
                  negatives_per_query=1, in_batch_negatives=True, anchor_weight=0.1)  # fmt: skip
    plain = train(small_config(output=tmp_path / "plain", **common))
    cached = train(small_config(output=tmp_path / "cached", cache_chunk_size=4, **common))
    a = ColBERT.from_pretrained(plain.final).state_dict()
    b = ColBERT.from_pretrained(cached.final).state_dict()
    # a key bias shifts every attention logit of a query alike: its gradient is rounding
    # noise, which Adam scales up to full steps, so it is left out
    for key in (k for k in a if not k.endswith("attention.self.key.bias")):
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4, msg=key)
    assert cached.last_loss == pytest.approx(plain.last_loss, rel=1e-4)
    with pytest.raises(ConfigError, match="cache_chunk_size"):
        small_config(triples=toy_triples, cache_chunk_size=0)
