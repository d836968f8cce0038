"""The engine of compressed indexes: exhaustive when its parameters keep every candidate,
exact scores for what it returns, PLAID's defaults, checked parameters."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch import Index
from latesearch.errors import InputError
from latesearch.search.engine import EngineParams
from latesearch.search.engine.interaction import pruned_interaction

QUERIES = ["late interaction search", "protein cell gene", "music of the city", "river data"]
EVERYTHING = {"ncells": 10**6, "centroid_score_threshold": -1e9, "ndocs": 10**6}


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_colbert, brute):
    folder = tmp_path_factory.mktemp("engine")
    corpus = brute.write_collection(folder / "corpus.jsonl", n=150, seed=4)
    return Index.build(corpus, folder / "index", tiny_colbert, progress=False, keep_full=True,
                       chunk_size=40, group_size=80, n_centroids=32)  # fmt: skip


def assert_same_ranking(ours, theirs):
    """The same documents in the same order, scores equal to float rounding."""
    assert [h.doc_id for h in ours] == [h.doc_id for h in theirs]
    assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-4)


@pytest.mark.parametrize("source", ["residual", "full"])
def test_keeping_every_candidate_equals_exhaustive_search(index, source):
    for query in QUERIES:
        engine = index.search(query, k=10, source=source, **EVERYTHING)
        exact = index.search(query, k=10, mode="exact", source=source)
        assert_same_ranking(engine, exact)


def test_default_search_returns_exact_scores_of_its_documents(index):
    for query in QUERIES:
        hits = index.search(query, k=5)
        assert len(hits) == 5 and index.last_timings.mode == "e2e"
        again = index.rerank(query, [h.doc_id for h in hits])  # exact MaxSim of the same docs
        assert_same_ranking(hits, again)


def test_residual_scores_approximate_full_ones(index):
    for query in QUERIES:
        full = index.search(query, k=10, mode="exact", source="full")
        residual = index.search(query, k=10, mode="exact", source="residual")
        overlap = len({h.doc_id for h in full} & {h.doc_id for h in residual})
        assert overlap >= 6
        assert abs(full[0].score - residual[0].score) < 0.1 * abs(full[0].score)


def test_narrow_parameters_score_fewer_documents(index):
    index.search(QUERIES[0], k=5, ncells=1, ndocs=8)
    narrow = index.last_timings.n_candidates
    index.search(QUERIES[0], k=5, **EVERYTHING)
    assert narrow <= 5 < index.last_timings.n_candidates == 150


def test_params_follow_k_and_are_checked():
    assert EngineParams.for_k(10) == EngineParams(1, 0.5, 256)
    assert EngineParams.for_k(100) == EngineParams(3, 0.45, 1024)
    assert EngineParams.for_k(1000) == EngineParams(4, 0.4, 4096)
    assert EngineParams.for_k(5000).ndocs == 20000
    assert EngineParams.for_k(10, ncells=3).ncells == 3
    assert EngineParams.for_k(10).exact_survivors(10) == 64
    # queries padded with [MASK]: more documents through the centroid interaction
    assert EngineParams.for_k(10, query_augmentation=True) == EngineParams(1, 0.5, 768)
    assert EngineParams.for_k(100, query_augmentation=True) == EngineParams(3, 0.45, 2048)
    assert EngineParams.for_k(1000, query_augmentation=True) == EngineParams.for_k(1000)
    assert EngineParams.for_k(10, ndocs=300, query_augmentation=True).ndocs == 300
    for bad in ({"ncells": 0}, {"ndocs": -1}, {"centroid_score_threshold": float("nan")}):
        with pytest.raises(InputError):
            EngineParams.for_k(10, **bad)


def test_bad_search_arguments_are_input_errors(index):
    with pytest.raises(InputError, match="ncells"):
        index.search("cat", k=3, ncells=0)
    with pytest.raises(Exception, match="source"):
        index.search("cat", k=3, source="disk")


def test_the_query_mask_comes_from_the_encoder(tiny_colbert):
    Q, mask = tiny_colbert.encode_queries(["cat dog", "the river of the city music"],
                                          return_mask=True)  # fmt: skip
    assert mask.shape == Q.shape[:2] and str(mask.dtype) == "torch.bool"
    assert (Q[~mask] == 0).all()


def test_a_faiss_ann_on_a_compressed_index_is_refused_before_encoding(tmp_path):
    from latesearch.errors import ConfigError

    with pytest.raises(ConfigError, match="keep_full"):
        Index.build(tmp_path / "missing.jsonl", tmp_path / "x", ann=True, keep_full=False)


@pytest.mark.parametrize("threshold", [-1e9, 0.0, 0.3])
def test_pruned_interaction_is_the_same_from_the_lists_and_from_the_codes(index, threshold):
    store = index.store
    rng = np.random.default_rng(0)
    scores = rng.uniform(-0.5, 1.0, size=(store.codec.n_centroids, 7)).astype(np.float32)
    candidates = np.sort(rng.choice(store.n_docs, size=60, replace=False))
    from_lists = pruned_interaction(scores, threshold, store.ivf, candidates)
    from_codes = pruned_interaction(scores, threshold, store.ivf, candidates,
                                    codes_of=store.vectors.codes, candidate_tokens=0)  # fmt: skip
    assert np.allclose(from_lists, from_codes)
    codes, lengths = store.vectors.codes(candidates)  # the definition, document by document
    expected = []
    for doc in np.split(codes, np.cumsum(lengths)[:-1]):
        rows = scores[doc[np.max(scores[doc], axis=1) >= threshold]]
        expected.append(rows.max(axis=0).sum() if len(rows) else 0.0)
    assert np.allclose(from_codes, expected, atol=1e-5)


def test_defaults_follow_the_models_query_augmentation(index, monkeypatch):
    seen = []
    engine = index.searcher.engine
    shortlist = engine._shortlist
    monkeypatch.setattr(engine, "_shortlist",
                        lambda *a, **kw: seen.append(a[3]) or shortlist(*a, **kw))  # fmt: skip
    assert index.store.colbert_config.query_augmentation and engine.stats.query_augmentation
    index.search(QUERIES[0], k=10)
    index.search(QUERIES[0], k=10, ndocs=40, ncells=1)
    assert [p.ndocs for p in seen] == [768, 40]
    # 150 documents over 32 centroids: sparse cells, so `auto` probes more than the table's 1
    assert seen[0].ncells > 1 and seen[1].ncells == 1


def test_shortlist_traces_each_stage(index):
    from latesearch.search.timing import SearchTimings

    Q, mask = index.model.encode_queries([QUERIES[1]], return_mask=True)
    params = EngineParams(ncells=2, centroid_score_threshold=0.0, ndocs=30)
    trace = {}
    docs = index.searcher.engine.shortlist(Q, mask, 5, params, SearchTimings(), trace=trace)
    stages = [set(trace[s].tolist()) for s in ("candidates", "pruned interaction",
                                                "full interaction")]  # fmt: skip
    assert stages[0] >= stages[1] >= stages[2] == set(docs.tolist())
    assert len(stages[1]) <= 30 and len(stages[2]) == max(5, 30 // 4)


def test_subset_codes_equal_reading_the_subset(index):
    from latesearch.search.engine.pipeline import subset_codes

    store = index.store
    docs = np.arange(0, store.n_docs, 2)
    codes, lengths = store.vectors.codes(docs)
    for subset in (docs[::3], docs[:1], docs[-2:], docs[:0], docs):
        got_codes, got_lengths = subset_codes(docs, codes, lengths, subset)
        want_codes, want_lengths = store.vectors.codes(subset)
        np.testing.assert_array_equal(got_lengths, want_lengths)
        np.testing.assert_array_equal(got_codes, want_codes)


def test_document_centroids_are_each_documents_distinct_codes(index):
    store = index.store
    by_doc = index.searcher.engine.doc_centroids
    docs = np.array([0, 5, 3, store.n_docs - 1])
    got, counts = by_doc.of(docs)
    parts = np.split(got, np.cumsum(counts)[:-1])
    for doc, part in zip(docs, parts, strict=True):
        codes, _ = store.vectors.codes([doc])
        np.testing.assert_array_equal(part, np.unique(codes))
    assert by_doc.offsets[-1] == len(store.ivf)
