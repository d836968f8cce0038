"""Explanations, highlights and bounded scores of hits, checked against a brute-force
MaxSim computed straight from the encoder (every query token's best document token)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latesearch import Index
from latesearch.errors import InputError, UnknownDocumentError
from latesearch.modeling.offsets import document_tokens
from latesearch.search.explain import document_tokenizer, full_text
from latesearch.search.highlight import render

QUERY = "colbert late interaction search of the cat"


def brute_matches(model, query: str, text: str, tokenizer=None):
    """(best similarity, winning token) per scored query token, from the encoder."""
    Q, mask = model.encode_queries([query], return_mask=True)
    q = Q[0][mask[0]]
    D = model.encode_documents([text])[0] if tokenizer is None else _encode(model, tokenizer,
                                                                            text)  # fmt: skip
    best, where = (q @ D.T).max(dim=1)
    tokens = document_tokens(tokenizer or model.tokenizer, text)
    assert len(tokens) == D.shape[0]
    return best.tolist(), [tokens[j] for j in where.tolist()]


def _encode(model, tokenizer, text):
    batch = tokenizer.documents([text])
    with torch.inference_mode():
        embedded, kept = model.forward_documents(batch)
    return embedded[0][kept[0]]


def test_contributions_equal_a_brute_force_maxsim(tiny_index, tiny_colbert, brute,
                                                  collection_path):  # fmt: skip
    hits = tiny_index.search(QUERY, k=8, mode="exact", explain=True)
    ids, texts = brute.read_docs(collection_path)
    for hit in hits:
        e = hit.explanation
        assert e.exact and e.vectors == "full" and e.doc_id == hit.doc_id
        assert sum(m.similarity for m in e.matches) == pytest.approx(hit.score, rel=1e-5)
        assert sum(m.share for m in e.matches) == pytest.approx(1.0, rel=1e-5)
        text = texts[ids.index(hit.doc_id)]
        best, winners = brute_matches(tiny_colbert, QUERY, text)
        assert [m.similarity for m in e.matches] == pytest.approx(best, abs=1e-5)
        assert [m.doc_token for m in e.matches] == [t.token for t in winners]
        for m, t in zip(e.matches, winners, strict=True):  # spans in the stored fields
            field = {"title": hit.title, "text": hit.text}.get(m.field)
            if t.kind == "text":
                assert field[m.start : m.end] == text[t.start : t.end]
            else:
                assert m.field is None and m.start is None


def test_query_tokens_are_labelled(tiny_index):
    e = tiny_index.explain("late cat", "d3")
    kinds = [m.kind for m in e.matches]
    assert kinds[:2] == ["special", "marker"] and kinds[-1] == "mask"
    assert len(kinds) == tiny_index.model.config.query_maxlen  # query augmentation
    text = [m for m in e.matches if m.kind == "text"]
    assert ["late cat"[m.query_start : m.query_end] for m in text] == ["late", "cat"]


def test_titles_are_told_apart_from_texts(tiny_index):
    titled = [i for i, d in enumerate(tiny_index.store.documents(range(12))) if d["title"]]
    doc = tiny_index.store.documents([titled[0]])[0]
    e = tiny_index.explain(doc["title"], doc["doc_id"])
    fields = {m.field for m in e.matches}
    assert "title" in fields
    for m in e.matches:
        if m.field is not None:
            value = doc[m.field]
            assert 0 <= m.start < m.end <= len(value)
            assert value[m.start : m.end].lower() == m.doc_token.removeprefix("##")


def test_compressed_scores_are_explained_from_decompressed_vectors(metadata_indexes):
    compressed, _ = metadata_indexes
    hits = compressed.search(QUERY, k=5, source="residual", explain=True)
    for hit in hits:
        e = hit.explanation
        assert e.vectors == "residual" and not e.exact
        assert sum(m.similarity for m in e.matches) == pytest.approx(hit.score, rel=1e-5)
    full = compressed.search(QUERY, k=5, explain=True)  # the fp16 vectors it keeps
    assert all(h.explanation.vectors == "full" for h in full)
    assert full[0].explanation.score == pytest.approx(full[0].score, rel=1e-4)


def test_truncated_documents_and_a_doc_maxlen_override(tmp_path, tiny_colbert, brute):
    path = tmp_path / "long.jsonl"
    rows = [{"_id": f"L{i}", "title": "late cat" if i % 2 else "",
             "text": ("colbert, the dog; search of a tree! " * (3 + i)).strip()}
            for i in range(6)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = Index.build(path, tmp_path / "ix", tiny_colbert, nbits=None, precision=32,
                        doc_maxlen=10, progress=False)  # fmt: skip
    tokenizer = index.searcher.model.tokenizer
    short = document_tokenizer(index.store, tiny_colbert)
    assert short.config.doc_maxlen == 10 and tokenizer.config.doc_maxlen == 24
    for hit in index.search("dog tree search", k=6, mode="exact", explain=True):
        e = hit.explanation
        assert sum(m.similarity for m in e.matches) == pytest.approx(hit.score, rel=1e-5)
        text = full_text(hit.title, hit.text, " ")
        best, winners = brute_matches(tiny_colbert, "dog tree search", text, short)
        assert [m.similarity for m in e.matches] == pytest.approx(best, abs=1e-5)
        assert max((m.end for m in e.matches if m.field == "text"), default=0) < 40


def test_pooled_vectors_name_their_first_token(tmp_path, tiny_colbert, collection_path):
    index = Index.build(collection_path, tmp_path / "pooled", tiny_colbert, pool_factor=2,
                        nbits=None, precision=32, progress=False)  # fmt: skip
    hits = index.search(QUERY, k=5, mode="exact", explain=True)
    merged = [m.merged for h in hits for m in h.explanation.matches]
    assert max(merged) > 1
    for hit in hits:
        assert hit.explanation.score == pytest.approx(hit.score, rel=1e-5)


def test_bounded_scores(tiny_index):
    n = tiny_index.model.config.query_maxlen  # every position scored (augmentation)
    for mode in ("exact", "e2e", "rerank"):
        for hit in tiny_index.search(QUERY, k=3, mode=mode):
            assert hit.bounded_score == pytest.approx(hit.score / n)
            assert -1 <= hit.bounded_score <= 1
    assert all(h.bounded_score is None for h in tiny_index.search(QUERY, k=3, mode="hybrid"))
    reranked = tiny_index.rerank(QUERY, ["d1", "d2"])
    assert [h.bounded_score for h in reranked] == pytest.approx([h.score / n for h in reranked])


def test_fused_hits_explain_their_maxsim_part(tiny_index):
    for hit in tiny_index.search(QUERY, k=3, mode="hybrid", explain=True):
        assert hit.explanation.score > 1 > hit.score  # MaxSim, and the RRF score
        assert hit.highlights is not None and hit.text is not None


def test_highlights_are_whole_words_carrying_the_score(tiny_index):
    hits = tiny_index.search(QUERY, k=10, mode="exact", explain=True)
    assert any(h.highlights for h in hits)
    for hit in hits:
        last = {}
        for h in hit.highlights:
            value = hit.title if h.field == "title" else hit.text
            assert 0 <= h.start < h.end <= len(value) and 0 < h.share <= 1
            assert h.start == 0 or not value[h.start - 1].isalnum()
            assert h.end == len(value) or not value[h.end].isalnum()
            assert h.start > last.get(h.field, -1)  # sorted, not overlapping
            last[h.field] = h.end
        marked = hit.render_highlights(style="plain", markers=("<<", ">>"))
        assert marked.replace("<<", "").replace(">>", "") == hit.text
        assert marked.count("<<") == sum(h.field == "text" for h in hit.highlights)


def test_render_styles():
    text = "a <b> & late interaction"
    assert render(text, [(2, 5)]) == "a <mark>&lt;b&gt;</mark> &amp; late interaction"
    assert render(text, [(8, 24)], "ansi") == "a <b> & \x1b[1mlate interaction\x1b[0m"
    assert render(text, [(0, 1), (8, 12)], "plain") == "[a] <b> & [late] interaction"
    with pytest.raises(InputError):
        render(text, [], "bold")


def test_explain_errors(tiny_index):
    with pytest.raises(UnknownDocumentError):
        tiny_index.explain(QUERY, "no-such-doc")
    with pytest.raises(InputError):
        tiny_index.explain("  ", "d1")
    with pytest.raises(InputError, match="explain"):
        tiny_index.search(QUERY, explain="yes")


def test_hits_serialize_their_explanations(tiny_index):
    hit = tiny_index.search(QUERY, k=1, mode="exact", explain=True)[0]
    out = json.loads(json.dumps(hit.to_dict()))
    assert out["explanation"]["matches"][0]["kind"] == "special"
    assert out["highlights"] == [vars(h) for h in hit.highlights]
    assert np.isclose(out["bounded_score"], hit.bounded_score)
