"""KL distillation from teacher scores, end to end: every layout of scored triples, the
loss against the teacher, and a student that learns a teacher's ordering."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
import torch

from latesearch import ColBERT, train
from latesearch.errors import ConfigError, InputError
from latesearch.scoring import maxsim, pad_documents
from latesearch.training import checkpointing as ckpt
from latesearch.training.loss import distillation_kl, nway_scores

from .conftest import TOPICS

QUERIES = [f"what {a}" for a, _ in TOPICS]
DOCS = [f"the {a} {t}" for a, t in TOPICS]
# an arbitrary teacher: its preferences have nothing to do with the words shared
TEACHER = [[round(random.Random(f"{q}/{d}").uniform(0, 6), 3) for d in DOCS] for q in QUERIES]


def _examples(nway: int) -> list[tuple[int, list[int]]]:
    """(query, documents) pairs, each query with `nway` consecutive documents (rotating),
    shuffled so that a batch mixes queries."""
    n = len(TOPICS)
    rows = [(q, [(q + s + j) % n for j in range(nway)]) for q in range(n) for s in range(n)]
    random.Random(0).shuffle(rows)
    return rows


def _write(folder: Path, layout: str, nway: int) -> dict[str, Path]:
    """The teacher's scored examples in `layout`, with queries/collection files if needed."""
    rows, files = _examples(nway), {}
    if layout == "text":
        lines = [{"query": QUERIES[q], "positive": DOCS[ds[0]],
                  "negatives": [DOCS[d] for d in ds[1:]],
                  "scores": [TEACHER[q][d] for d in ds]} for q, ds in rows]  # fmt: skip
        name = "distill.jsonl"
    else:
        (folder / "queries.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in enumerate(QUERIES)))
        (folder / "collection.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in enumerate(DOCS)))
        files = {"queries": folder / "queries.tsv", "collection": folder / "collection.tsv"}
        if layout == "ids":
            lines = [[f"{q}", *([f"{d}", TEACHER[q][d]] for d in ds)] for q, ds in rows]
            name = "distill.jsonl"
        elif layout == "colbert-ai":  # integer ids, all n documents, .json
            lines = [[q, *([d, TEACHER[q][d]] for d in ds)] for q, ds in _examples(len(DOCS))]
            name = "examples.json"
        else:  # PyLate
            lines = [{"query_id": q, "document_ids": ds, "scores": [TEACHER[q][d] for d in ds]}
                     for q, ds in rows]  # fmt: skip
            name = "kd.jsonl"
    path = folder / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {"triples": path, **files}


def _start(tiny_bert_dir) -> ColBERT:
    return ColBERT.from_pretrained(tiny_bert_dir, dim=16, query_maxlen=12, doc_maxlen=24)


@torch.no_grad()
def _kl(model: ColBERT, examples, nway: int) -> float:
    """The distillation loss of `model` over `examples` (query, documents) against TEACHER."""
    model.eval()
    Q = model.forward_queries(model.tokenizer.queries([QUERIES[q] for q, _ in examples]))
    D, mask = model.forward_documents(
        model.tokenizer.documents([DOCS[d] for _, ds in examples for d in ds[:nway]])
    )
    scores = nway_scores(Q, D, mask, nway, model.config.similarity)
    teacher = torch.tensor([[TEACHER[q][d] for d in ds[:nway]] for q, ds in examples])
    return float(distillation_kl(scores, teacher))


@pytest.mark.parametrize("layout", ["ids", "text", "colbert-ai", "pylate"])
def test_each_layout_distils_against_its_teacher_scores(layout, tmp_path, tiny_bert_dir,
                                                        small_config):  # fmt: skip
    """Step 1's logged loss is the KL of the starting model's scores to the teacher's,
    on the first batch's documents in the file's order (the first `nway` of colbert-ai's)."""
    nway = 3
    config = small_config(**_write(tmp_path, layout, nway), base_model=tiny_bert_dir,
                          distill_from="triples", negatives_per_query=nway - 1, steps=2,
                          batch_size=2, output=tmp_path / "run")  # fmt: skip
    assert config.triples_format_resolved() == ("text" if layout == "text" else "ids")
    result = train(config)
    logged = ckpt.JsonlLog(tmp_path / "run" / ckpt.LOSS_LOG).read()
    examples = _examples(len(DOCS) if layout == "colbert-ai" else nway)
    assert logged[0]["loss"] == pytest.approx(_kl(_start(tiny_bert_dir), examples[:2], nway),
                                              rel=1e-4)  # fmt: skip
    assert logged[1]["loss"] != pytest.approx(logged[0]["loss"])  # the next batch, trained
    assert result.steps == 2


def test_distillation_loss_goes_down(tmp_path, tiny_bert_dir, small_config):
    nway = 4
    config = small_config(**_write(tmp_path, "text", nway), base_model=tiny_bert_dir,
                          distill_from="triples", negatives_per_query=nway - 1, steps=30,
                          batch_size=6, lr=3e-3, output=tmp_path / "run")  # fmt: skip
    result = train(config)
    every = _examples(nway)
    before = _kl(_start(tiny_bert_dir), every, nway)
    after = _kl(ColBERT.from_pretrained(result.final), every, nway)
    assert after < 0.5 * before, (before, after)


def _agreement(model: ColBERT) -> float:
    """Share of document pairs that `model` orders as the teacher does, over all queries."""
    model.eval()
    Q = model.encode_queries(QUERIES)
    D, mask = pad_documents(model.encode_documents(DOCS))
    scores = maxsim(Q, D, mask)
    pairs = [(q, a, b) for q in range(len(QUERIES))
             for a, b in itertools.combinations(range(len(DOCS)), 2)]  # fmt: skip
    agree = sum(
        float((scores[q, a] - scores[q, b]) * (TEACHER[q][a] - TEACHER[q][b])) > 0
        for q, a, b in pairs
    )
    return agree / len(pairs)


def test_student_learns_the_teachers_ordering(tmp_path, tiny_bert_dir, small_config):
    """Each query sees 4 of the 6 documents at a time; the student must order all 15
    document pairs of each query as the teacher does, which shared words do not
    predict (the start model agrees on fewer than half of the pairs)."""
    config = small_config(**_write(tmp_path, "ids", 4), base_model=tiny_bert_dir,
                          distill_from="triples", negatives_per_query=3, steps=90,
                          batch_size=6, lr=5e-3, output=tmp_path / "run")  # fmt: skip
    before = _agreement(_start(tiny_bert_dir))
    after = _agreement(ColBERT.from_pretrained(train(config).final))
    assert before < 0.6 and after > 0.8, (before, after)


def test_distillation_needs_scores_on_every_row(tmp_path, toy_triples, tiny_bert_dir,
                                                small_config):  # fmt: skip
    config = small_config(triples=toy_triples, base_model=tiny_bert_dir, distill_from="triples",
                          output=tmp_path / "run")  # fmt: skip
    with pytest.raises(InputError, match=r"triples\.tsv:1 \(field .scores.\)"):
        train(config)
    with pytest.raises(ConfigError, match="distill_from"):
        small_config(qrels=toy_triples, queries="q", collection="c", mine_negatives="bm25",
                     distill_from="triples")  # fmt: skip
