"""Brute-force dense search: exact top-k by cosine, save/load."""

from __future__ import annotations

import pytest
import torch

from latesearch.errors import InputError
from latesearch.modeling.dense import DenseEncoder
from latesearch.search.dense import DenseIndex


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return DenseEncoder.from_pretrained(tiny_bert_dir)


def test_search_matches_brute_force(encoder, tmp_path, brute, collection_path):
    ids, texts = brute.read_docs(collection_path)
    index = DenseIndex.build(zip(ids, texts, strict=True), encoder, batch_size=7, chunk=16)
    assert len(index) == len(ids)
    queries = ["cell gene drug", "music river"]
    results = index.search(queries, encoder, k=5)
    D = encoder.encode(texts)
    for query, hits in zip(queries, results, strict=True):
        scores = D @ encoder.encode([query])[0]
        best = torch.topk(scores, 5)
        assert [h[0] for h in hits] == [ids[i] for i in best.indices.tolist()]
        assert [h[1] for h in hits] == pytest.approx(best.values.tolist(), abs=1e-5)
    loaded = DenseIndex.load(index.save(tmp_path / "dense"))
    again = loaded.search(queries, encoder, k=5)
    assert [[h[0] for h in r] for r in again] == [[h[0] for h in r] for r in results]
    assert torch.equal(loaded.embeddings, index.embeddings)
    assert len(index.search(["cell"], encoder, k=1000)[0]) == len(ids)


def test_errors(encoder):
    with pytest.raises(InputError, match="no documents"):
        DenseIndex.build([], encoder)
    with pytest.raises(InputError, match="duplicate"):
        DenseIndex.build([("a", "cell"), ("a", "gene")], encoder)
    index = DenseIndex.build([("a", "cell"), ("b", "gene")], encoder)
    with pytest.raises(InputError, match="k must be"):
        index.search(["cell"], encoder, k=0)
    with pytest.raises(InputError, match="list of strings"):
        index.search("cell", encoder, k=1)
