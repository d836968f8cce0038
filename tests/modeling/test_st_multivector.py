"""Sentence Transformers 6 `MultiVectorEncoder` checkpoints, built with the real package:
latesearch reads them and encodes exactly as Sentence Transformers does, refuses what it
cannot reproduce, and saves checkpoints that Sentence Transformers loads alike."""

from __future__ import annotations

import string

import pytest
import torch

pytest.importorskip(
    "sentence_transformers.multi_vector_encoder",
    reason="sentence-transformers 6 (the test extra) is not installed",
)

from sentence_transformers import MultiVectorEncoder  # noqa: E402
from sentence_transformers.base.modules import Normalize, Transformer  # noqa: E402
from sentence_transformers.base.modules.dense import Dense  # noqa: E402
from sentence_transformers.multi_vector_encoder.modules import (  # noqa: E402
    HierarchicalTokenPooling,
    MultiVectorMask,
)

from latesearch import ColBERT  # noqa: E402
from latesearch.errors import CheckpointError, ConfigError  # noqa: E402
from latesearch.modeling.checkpoints import detect_layout  # noqa: E402

QUERIES = [
    "what is late interaction?",
    "  How do proteins fold , in 3 steps !  ",
    "which model scores every query token against every document token and why does "
    "that beat a single vector on long passages",
]
DOCS = [
    "the cat is a dog .",
    "",
    "protein cell gene drug study ! what how why late "
    "interaction query document passage search retrieval model bert colbert token vector "
    "index score rank fast slow cat dog house tree river city",
]


# HierarchicalTokenPooling settings, each saved last in a checkpoint (after Normalize)
POOLINGS = {
    "pool-2": {"pool_factor": 2},
    "pool-1.5-two-protected": {"pool_factor": 1.5, "num_protected_tokens": 2},
    "pool-3-unnormalized": {"pool_factor": 3, "normalize_embeddings": False},
    "max-tokens-5": {"max_tokens": 5},
    "distance-0.3": {"distance_threshold": 0.3},
}


def _dense(i, o, *, bias=False, activation=None, seed=0):
    torch.manual_seed(seed)
    return Dense(
        i,
        o,
        bias=bias,
        activation_function=activation or torch.nn.Identity(),
        module_input_name="token_embeddings",
    )


def build(kind: str, bert, folder):
    """A tiny MultiVectorEncoder saved by Sentence Transformers itself."""
    if kind == "bare":  # what MultiVectorEncoder(plain backbone) builds
        model = MultiVectorEncoder(str(bert), device="cpu")
    else:
        settings = {
            "colbert": dict(
                query_length=12,
                document_length=20,
                query_expansion={"strategy": "fixed", "attend": False, "length": 12},
            ),
            "attend-2dense": dict(
                document_length=16,
                query_expansion={"strategy": "fixed", "attend": True, "length": 10},
            ),
        }.get(kind, {})
        modules = [Transformer(str(bert), **settings)]
        if kind == "attend-2dense":
            modules += [
                _dense(32, 24, bias=True, activation=torch.nn.Tanh()),
                _dense(24, 8, seed=1),
            ]
        else:
            modules.append(_dense(32, 16))
        if kind == "colbert":
            modules.append(MultiVectorMask(skiplist_words=list(string.punctuation)))
        if kind == "attend-2dense":
            modules.append(MultiVectorMask())
        if kind == "pooled-then-normalized":
            modules.append(HierarchicalTokenPooling(pool_factor=2))
        if kind != "attend-2dense":  # that one is saved without normalization
            modules.append(Normalize(module_input_name="token_embeddings"))
        if kind in POOLINGS:
            modules.append(HierarchicalTokenPooling(**POOLINGS[kind]))
        model = MultiVectorEncoder(modules=modules, device="cpu")
    model.save_pretrained(str(folder))
    return MultiVectorEncoder(str(folder), device="cpu")  # as users load it


def assert_same_encodings(ours: ColBERT, theirs: MultiVectorEncoder) -> None:
    queries, mask = ours.encode_queries(QUERIES, return_mask=True)
    for q, expected in enumerate(theirs.encode_query(QUERIES)):
        got = queries[q][mask[q]]
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    for got, expected in zip(ours.encode_documents(DOCS), theirs.encode_document(DOCS),
                             strict=True):  # fmt: skip
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["bare", "colbert", "attend-2dense"])
def test_a_multivector_encoder_encodes_as_sentence_transformers(kind, tiny_bert_dir, tmp_path):
    theirs = build(kind, tiny_bert_dir, tmp_path / kind)
    assert detect_layout(tmp_path / kind) == "sentence-transformers"
    ours = ColBERT.from_pretrained(tmp_path / kind, device="cpu")
    assert ours.layout == "sentence-transformers"
    assert ours.config.normalize == (kind != "attend-2dense")
    assert_same_encodings(ours, theirs)


@pytest.mark.parametrize("kind", sorted(POOLINGS))
def test_token_pooling_encodes_documents_as_sentence_transformers(kind, tiny_bert_dir,
                                                                  tmp_path):  # fmt: skip
    theirs = build(kind, tiny_bert_dir, tmp_path / kind)
    ours = ColBERT.from_pretrained(tmp_path / kind, device="cpu")
    settings = POOLINGS[kind]
    assert ours.config.doc_pooling.pool_factor == settings.get("pool_factor", 1)
    assert ours.config.doc_pooling.protected_tokens == settings.get("num_protected_tokens", 1)
    unpooled = ColBERT.from_pretrained(tmp_path / kind, device="cpu", doc_pooling=None)
    lengths = [len(d) for d in unpooled.encode_documents(DOCS)]
    pooled = [len(d) for d in ours.encode_documents(DOCS)]
    assert pooled[2] < lengths[2]  # the long document did lose tokens
    assert_same_encodings(ours, theirs)  # queries unpooled, documents pooled alike


def test_what_latesearch_cannot_reproduce_is_refused(tiny_bert_dir, tmp_path):
    build("pooled-then-normalized", tiny_bert_dir, tmp_path / "pooled")
    with pytest.raises(CheckpointError, match="HierarchicalTokenPooling followed by other"):
        ColBERT.from_pretrained(tmp_path / "pooled", device="cpu")
    build("pool-2", tiny_bert_dir, tmp_path / "queries")
    (tmp_path / "queries" / "3_HierarchicalTokenPooling" / "config.json").write_text(
        '{"pool_factor": 2, "tasks": ["query", "document"]}'
    )
    with pytest.raises(CheckpointError, match="token pooling on"):
        ColBERT.from_pretrained(tmp_path / "queries", device="cpu")
    build("bare", tiny_bert_dir, tmp_path / "prompted")
    model = MultiVectorEncoder(
        str(tmp_path / "prompted"),
        device="cpu",
        prompts={"query": "query: ", "document": "passage: "},
    )
    model.save_pretrained(str(tmp_path / "prompted"))
    with pytest.raises(CheckpointError, match="prompts"):
        ColBERT.from_pretrained(tmp_path / "prompted", device="cpu")


@pytest.mark.parametrize(
    "settings",
    [
        {"dim": 16, "query_maxlen": 12, "doc_maxlen": 24},  # markers, [MASK] expansion, skiplist
        {
            "dim": 16,
            "query_maxlen": 12,
            "doc_maxlen": 24,
            "markers": False,
            "query_augmentation": False,
            "mask_punctuation": False,
        },
    ],
)
def test_sentence_transformers_loads_what_latesearch_saves(settings, tiny_bert_dir, tmp_path):
    ours = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **settings)
    ours.save_pretrained(tmp_path / "saved")
    assert_same_encodings(ours, MultiVectorEncoder(str(tmp_path / "saved"), device="cpu"))


def test_a_multivector_checkpoint_saved_again_by_latesearch_keeps_encoding(tiny_bert_dir,
                                                                           tmp_path):  # fmt: skip
    theirs = build("colbert", tiny_bert_dir, tmp_path / "st")
    ColBERT.from_pretrained(tmp_path / "st", device="cpu").save_pretrained(tmp_path / "ours")
    again = ColBERT.from_pretrained(tmp_path / "ours", device="cpu")
    assert again.layout == "latesearch"
    assert_same_encodings(again, theirs)


def test_an_index_built_with_a_pooling_checkpoint_scores_as_sentence_transformers(
    tiny_bert_dir, tmp_path
):
    from latesearch import Index

    theirs = build("pool-2", tiny_bert_dir, tmp_path / "model")
    docs = [{"id": f"d{i}", "text": text} for i, text in enumerate(DOCS + QUERIES)]
    index = Index.build(docs, tmp_path / "index", tmp_path / "model", nbits=None, precision=32,
                        progress=False)  # fmt: skip
    texts = [d["text"] for d in docs]
    expected = theirs.similarity(theirs.encode_query(QUERIES), theirs.encode_document(texts))
    for q, query in enumerate(QUERIES):
        hits = index.search(query, k=len(docs), mode="exact")
        got = {h.doc_id: h.score for h in hits}
        want = {f"d{i}": float(s) for i, s in enumerate(expected[q])}
        assert got == pytest.approx(want, abs=1e-4)
    with pytest.raises(ConfigError, match="pools documents itself"):
        Index.build(docs, tmp_path / "twice", tmp_path / "model", pool_factor=2, progress=False)
    unpooled = ColBERT.from_pretrained(tmp_path / "model", device="cpu", doc_pooling=None)
    assert index.store.manifest.n_embeddings < sum(len(d) for d in unpooled.encode_documents(texts))


def test_a_pooling_checkpoint_saved_by_latesearch_keeps_pooling(tiny_bert_dir, tmp_path):
    theirs = build("pool-1.5-two-protected", tiny_bert_dir, tmp_path / "st")
    read = ColBERT.from_pretrained(tmp_path / "st", device="cpu")
    read.save_pretrained(tmp_path / "ours")
    again = ColBERT.from_pretrained(tmp_path / "ours", device="cpu")
    assert again.layout == "latesearch" and again.config.doc_pooling == read.config.doc_pooling
    assert_same_encodings(again, theirs)
