"""Compressed indexes: the build, resume, add/delete against a fresh build with the same
centroids, verification and corruption."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latesearch.errors import IndexCorruptError
from latesearch.indexing import IndexConfig, IndexStore, build_index, compress_index, update_index

CONFIG = IndexConfig().replace(group_size=16, chunk_size=6, batch_size=5, precision=32, nbits=2,
                     n_centroids=16, keep_full=False)  # fmt: skip
UNCOMPRESSED = CONFIG.replace(nbits=None, n_centroids=None)


class Crash(Exception):
    pass


def crash_after(n: int):
    seen = []

    def on_chunk(info):
        seen.append(info)
        if len(seen) >= n:
            raise Crash

    return on_chunk


def decompressed(store: IndexStore) -> np.ndarray:
    return store.flat(np.arange(store.n_docs), source="residual")[0]


def codes(store: IndexStore) -> np.ndarray:
    return store.vectors.codes(np.arange(store.n_docs))[0]


def assert_same_index(ours: IndexStore, theirs: IndexStore) -> None:
    """Same documents and texts; the same centroid codes and decompressed vectors, up to
    the rare token whose float rounding (batches padded differently) crosses a boundary."""
    assert list(ours.doc_ids) == list(theirs.doc_ids)
    assert ours.documents(range(ours.n_docs)) == theirs.documents(range(theirs.n_docs))
    assert np.array_equal(ours.doclens, theirs.doclens)
    assert np.mean(codes(ours) == codes(theirs)) > 0.995
    close = np.isclose(decompressed(ours), decompressed(theirs), atol=1e-4).all(axis=1)
    assert close.mean() > 0.99
    ours.verify()


def test_build_writes_codes_not_vectors(build_corpus):
    store = build_corpus()
    assert store.compressed and not store.vectors.has_full and store.manifest.format_version == 2
    assert store.codec.n_centroids == 16 and store.codec.nbits == 2
    names = {p.name for p in (store.folder / "chunks").iterdir()}
    assert not any(name.endswith(".embeddings.npy") for name in names)
    assert store.codes_flat()[0].dtype == np.uint16
    assert store.residuals_flat()[0].shape[1] == store.dim * 2 // 8
    # the inverted file lists exactly the (centroid, document) pairs of the codes
    pairs = {(int(c), int(d)) for c, d in zip(codes(store), store.token_to_doc(), strict=True)}
    ivf = store.ivf
    listed = {(c, int(d)) for c in range(ivf.n_centroids)
              for d in ivf.docs[ivf.offsets[c]:ivf.offsets[c + 1]]}  # fmt: skip
    assert listed == pairs
    store.verify()


@pytest.fixture
def build_corpus(build, corpus):
    """build_corpus(name, config=CONFIG, **build_index options) -> IndexStore of the
    40-document test corpus."""

    def _build(name="index", config=CONFIG, **kwargs):
        return build(corpus, name, config=config, **kwargs)

    return _build


def test_keep_full_keeps_the_vectors_and_they_match_an_uncompressed_build(build_corpus):
    full = build_corpus("full", CONFIG.replace(keep_full=True))
    plain = build_corpus("plain", UNCOMPRESSED)
    assert full.vectors.has_full and full.compressed
    ours = full.flat(np.arange(full.n_docs), source="full")[0]
    assert np.allclose(ours, plain.flat(np.arange(plain.n_docs))[0], atol=1e-6)
    cosine = np.sum(decompressed(full) * ours, axis=1)
    assert cosine.mean() > 0.9


def test_codes_and_vectors_come_back_in_the_order_asked_across_chunks(build_corpus):
    store = build_corpus("full", CONFIG.replace(keep_full=True))
    assert len(store.chunks) > 1
    every_codes, every_vectors = codes(store), store.flat(np.arange(store.n_docs))[0]
    starts = store.offsets
    for wanted in ([33, 0, 7, 20, 5, 33], [4, 5, 6, 7], list(range(store.n_docs))[::-1], []):
        rows = np.concatenate([np.arange(starts[d], starts[d + 1]) for d in wanted] or [[]])
        rows = rows.astype(np.int64)
        got_codes, lengths = store.vectors.codes(wanted)
        got_vectors, _ = store.flat(wanted, source="full")
        assert lengths.tolist() == [int(store.doclens[d]) for d in wanted]
        np.testing.assert_array_equal(got_codes, every_codes[rows])
        np.testing.assert_array_equal(got_vectors, every_vectors[rows])
        for source in ("full", "residual"):
            blocks = list(store.vectors.vector_blocks(wanted, source=source, rows=7))
            assert all(b.dtype == torch.float32 and len(b) < 2 * 7 for b in blocks)
            joined = torch.cat(blocks).numpy() if blocks else np.zeros((0, store.dim))
            np.testing.assert_array_equal(joined, store.flat(wanted, source=source)[0])


def test_compress_index_equals_a_compressed_build(build_corpus, tmp_path):
    direct = build_corpus("direct")
    plain = build_corpus("plain", UNCOMPRESSED)
    converted = compress_index(plain.folder, tmp_path / "converted", nbits=2, n_centroids=16)
    assert np.array_equal(converted.codec.centroids, direct.codec.centroids)
    assert_same_index(converted, direct)
    assert plain.flat([0])[0].shape[0] == plain.doclens[0]  # the source is left intact
    plain.verify()


def test_resume_of_an_interrupted_compressed_build_equals_an_uninterrupted_one(build_corpus):
    with pytest.raises(Crash):
        build_corpus("resumed", on_chunk=crash_after(3))
    resumed = build_corpus("resumed", resume=True)
    whole = build_corpus("whole")
    assert resumed.summary.resumed
    assert np.allclose(resumed.codec.centroids, whole.codec.centroids, atol=1e-3)
    assert_same_index(resumed, whole)


def test_add_and_delete_equal_a_fresh_build_with_the_same_centroids(
    tiny_colbert, tmp_path, docs, write_jsonl
):
    base = build_index(write_jsonl(tmp_path / "a.jsonl", docs[:28]), tmp_path / "idx",
                       tiny_colbert, CONFIG, progress=False)  # fmt: skip
    base.close()
    more = write_jsonl(tmp_path / "b.jsonl", docs[28:])
    store, _ = update_index(tmp_path / "idx", add=more, delete=["doc-3", "doc-11"],
                            model=tiny_colbert, progress=False)  # fmt: skip
    kept = [d for d in docs if d["_id"] not in ("doc-3", "doc-11")]
    plain = build_index(write_jsonl(tmp_path / "all.jsonl", kept), tmp_path / "plain",
                        tiny_colbert, UNCOMPRESSED, progress=False)  # fmt: skip
    fresh = compress_index(plain.folder, tmp_path / "fresh", nbits=2, codec_from=store.folder)
    assert np.array_equal(store.codec.centroids, fresh.codec.centroids)
    assert_same_index(store, fresh)
    assert store.manifest.codec["sha256"] != base.manifest.codec["sha256"]  # new ivf


def test_corrupt_codes_residuals_and_ivf_are_detected(build_corpus):
    store = build_corpus()
    folder = store.folder
    for name in (store.chunks[0].codes, store.chunks[1].residuals, store.chunks[0].norms,
                 "ivf/docs.npy", "codec/centroids.npy"):  # fmt: skip
        path = folder / name
        original = path.read_bytes()
        raw = bytearray(original)
        raw[-3] ^= 0x5A
        path.write_bytes(bytes(raw))
        with IndexStore.open(folder) as damaged, pytest.raises(IndexCorruptError,
                                                               match=name.split("/")[-1]):
            damaged.verify()
        path.write_bytes(original)
    path = folder / store.chunks[0].residuals
    path.write_bytes(path.read_bytes()[:-5])  # truncated: refused on open
    with pytest.raises(IndexCorruptError, match="residuals"):
        IndexStore.open(folder)


def test_old_uncompressed_indexes_load_and_update_as_before(build_corpus, tiny_colbert,
                                                            write_jsonl, tmp_path):  # fmt: skip
    store = build_corpus("old", UNCOMPRESSED)
    assert store.manifest.format_version == 1 and store.manifest.codec is None
    new = write_jsonl(tmp_path / "more.jsonl", [{"_id": "new-1", "title": "", "text": "cat"}])
    updated, _ = update_index(store.folder, add=new, model=tiny_colbert, progress=False)
    assert not updated.compressed and updated.n_docs == store.n_docs + 1


def test_the_compress_command(build_corpus, tmp_path, capsys):
    from latesearch.cli.main import main

    plain = build_corpus("plain", UNCOMPRESSED)
    target = tmp_path / "small"
    assert main(["compress", str(plain.folder), str(target), "--nbits", "1",
                 "--n-centroids", "8", "--quiet"]) == 0  # fmt: skip
    assert "8 centroids, 1 bits" in capsys.readouterr().out
    with IndexStore.open(target) as store:
        assert store.codec.nbits == 1 and store.n_docs == plain.n_docs
    assert main(["compress", str(target), str(tmp_path / "again")]) == 2  # already compressed


def test_additions_to_an_index_that_keeps_full_vectors_keep_them(tiny_colbert, tmp_path, docs,
                                                                 write_jsonl):  # fmt: skip
    config = CONFIG.replace(keep_full=True)
    build_index(write_jsonl(tmp_path / "a.jsonl", docs[:28]), tmp_path / "idx", tiny_colbert,
                config, progress=False).close()  # fmt: skip
    store, _ = update_index(tmp_path / "idx", add=write_jsonl(tmp_path / "b.jsonl", docs[28:]),
                            model=tiny_colbert, progress=False)  # fmt: skip
    plain = build_index(write_jsonl(tmp_path / "all.jsonl", docs), tmp_path / "plain",
                        tiny_colbert, UNCOMPRESSED, progress=False)  # fmt: skip
    assert store.vectors.has_full and store.n_docs == len(docs)
    ours = store.flat(np.arange(store.n_docs), source="full")[0]
    assert np.allclose(ours, plain.flat(np.arange(plain.n_docs))[0], atol=1e-5)
    store.verify()


def test_a_model_without_normalized_vectors_is_indexed_uncompressed_only(
    corpus, tiny_bert_dir, tmp_path
):
    from latesearch import ColBERT
    from latesearch.errors import ConfigError

    raw = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=16, normalize=False)
    with pytest.raises(ConfigError, match="not normalized"):
        build_index(corpus, tmp_path / "compressed", raw, CONFIG, progress=False)
    assert not (tmp_path / "compressed").exists()
    plain = build_index(corpus, tmp_path / "plain", raw, UNCOMPRESSED, progress=False)
    norms = np.linalg.norm(plain.flat([0])[0].astype(np.float32), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-2)  # stored as the model gives them
    with pytest.raises(ConfigError, match="not normalized"):
        compress_index(plain.folder, tmp_path / "converted", nbits=2, n_centroids=16)
