"""The distillation recipe's data step: mined negatives scored by a teacher, written as
colbert-ai's n-way examples, then distilled from."""

from __future__ import annotations

import pytest

from latesearch import ColBERT, train
from latesearch.data import read_id_triples, read_qrels, read_queries
from latesearch.training import checkpointing as ckpt
from latesearch.training.data import load_texts
from latesearch.training.mining import mine_bm25
from latesearch.training.teacher import maxsim_teacher, write_examples


def test_mine_score_and_distil(tmp_path, toy_beir, tiny_colbert, tiny_bert_dir, small_config):
    queries = read_queries(toy_beir["queries"])
    collection = load_texts(toy_beir["collection"], "raise")
    positives = {q: {d for d, rel in judged.items() if rel > 0}
                 for q, judged in read_qrels(toy_beir["qrels"]).items()}  # fmt: skip
    mined = mine_bm25(queries, positives, collection.items(), depth=5)
    teacher = maxsim_teacher(tiny_colbert)
    path = tmp_path / "examples.jsonl"
    assert write_examples(path, queries, collection, positives, mined, teacher, nway=3) == 6

    for triple in read_id_triples(path, queries, collection):
        assert triple.doc_ids[0] in positives[triple.query_id]
        assert triple.doc_ids[1:] == mined[triple.query_id][:2]
        texts = [triple.positive, *triple.negatives]
        assert triple.scores == pytest.approx(teacher(triple.query, texts), abs=1e-5)

    config = small_config(
        triples=path, queries=toy_beir["queries"], collection=toy_beir["collection"],
        distill_from="triples", negatives_per_query=2, in_batch_negatives=True,
        cache_chunk_size=4, base_model=tiny_bert_dir, steps=2, batch_size=3,
        eval_every=1, dev_queries=toy_beir["queries"], dev_qrels=toy_beir["qrels"],
        dev_collection=toy_beir["collection"], output=tmp_path / "run",
    )  # fmt: skip
    result = train(config)
    assert ckpt.is_complete(tmp_path / "run" / "best")
    assert ColBERT.from_pretrained(result.final).config.dim == 16
    with pytest.raises(ValueError, match="nway"):
        write_examples(path, queries, collection, positives, mined, teacher, nway=1)
