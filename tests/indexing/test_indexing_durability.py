"""Durability: staging folder, resume without re-encoding, overwrite, extra builders."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch import ColBERT
from latesearch.errors import ConfigError, IndexCorruptError
from latesearch.indexing import IndexExistsError, IndexStore, build_index, building_folder


class Crash(Exception):
    pass


def crash_after(n_chunks: int, exc: type[BaseException] = Crash):
    seen = []

    def hook(info):
        seen.append(info.index)
        if len(seen) >= n_chunks:
            raise exc(f"simulated crash after chunk {info.index}")

    return hook


@pytest.fixture
def count_encoded(monkeypatch, tiny_colbert):
    """Counts documents passed through the encoder's forward pass."""
    counter = {"docs": 0}
    forward = tiny_colbert.forward_documents

    def counting(batch):
        counter["docs"] += len(batch)
        return forward(batch)

    monkeypatch.setattr(tiny_colbert, "forward_documents", counting)
    return counter


def same_index(a: IndexStore, b: IndexStore) -> None:
    assert list(a.doc_ids) == list(b.doc_ids)
    np.testing.assert_array_equal(a.doclens, b.doclens)
    np.testing.assert_allclose(a.token_range(0, a.n_embeddings),
                               b.token_range(0, b.n_embeddings), atol=1e-5)  # fmt: skip
    assert a.documents(range(a.n_docs)) == b.documents(range(b.n_docs))


def test_resume_continues_without_re_encoding(build, corpus, tmp_path, count_encoded, capsys):
    with pytest.raises(Crash):
        build(corpus, on_chunk=crash_after(1))
    target = tmp_path / "index"
    assert not target.exists()
    assert (building_folder(target) / "progress.json").is_file()
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(IndexCorruptError, match="resume"):
        IndexStore.open(target)

    count_encoded["docs"] = 0
    resumed = build(corpus, resume=True)
    assert count_encoded["docs"] == 40 - 6  # the first chunk (6 documents) was kept
    assert resumed.summary.resumed and not building_folder(target).exists()
    same_index(resumed, build(corpus, "reference"))


def test_ctrl_c_leaves_a_resumable_build(build, corpus, tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        build(corpus, on_chunk=crash_after(4, KeyboardInterrupt))
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err
    store = build(corpus, resume=True)
    assert store.n_docs == 40


def test_interrupted_build_needs_resume_or_overwrite(build, corpus, tmp_path, small_config):
    with pytest.raises(Crash):
        build(corpus, on_chunk=crash_after(1))
    with pytest.raises(IndexExistsError, match="resume"):
        build(corpus)
    # said before any model is loaded: a model that cannot load is not reached
    with pytest.raises(IndexExistsError, match="resume"):
        build_index(corpus, tmp_path / "index", tmp_path / "no-such-model", small_config,
                    progress=False)  # fmt: skip
    assert build(corpus, overwrite=True).n_docs == 40


def test_resume_refuses_another_model(build, corpus, tiny_bert_dir, tmp_path, small_config):
    from latesearch.indexing import build_index

    with pytest.raises(Crash):
        build(corpus, on_chunk=crash_after(1))
    other = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8, doc_maxlen=24)
    with pytest.raises(ConfigError, match="model"):
        build_index(corpus, tmp_path / "index", other, small_config, resume=True, progress=False)


def test_resume_refuses_a_changed_collection(build, corpus, docs, write_jsonl):
    with pytest.raises(Crash):
        build(corpus, on_chunk=crash_after(1))
    write_jsonl(corpus, docs[::-1])
    with pytest.raises(ConfigError, match="collection changed"):
        build(corpus, resume=True)


def test_resume_with_nothing_to_resume_builds(build, corpus):
    assert build(corpus, resume=True).n_docs == 40


def test_existing_index_is_kept_unless_overwrite(build, corpus, docs, write_jsonl, tmp_path):
    first = build(corpus)
    with pytest.raises(IndexExistsError, match="overwrite"):
        build(corpus)
    smaller = write_jsonl(tmp_path / "smaller.jsonl", docs[:10])
    with pytest.raises(Crash):
        build(smaller, overwrite=True, on_chunk=crash_after(1))
    with pytest.warns(UserWarning, match=r"index\.building"):  # the failed rebuild's folder
        survivor = IndexStore.open(tmp_path / "index")  # ... left the index alone
    same_index(survivor, first)
    assert build(smaller, overwrite=True).n_docs == 10


def test_empty_target_folder_is_accepted(build, corpus, tmp_path):
    (tmp_path / "index").mkdir()
    assert build(corpus).n_docs == 40


def test_extra_builders_write_inside_before_the_rename(build, corpus, tmp_path):
    calls = []

    def add_bm25(folder, store):
        assert folder == building_folder(tmp_path / "index")
        assert store.n_docs == 40 and not (tmp_path / "index").exists()
        (folder / "bm25").mkdir()
        (folder / "bm25" / "params.json").write_text("{}")
        calls.append(folder)

    store = build(corpus, extra_builders=[add_bm25])
    assert calls and (store.folder / "bm25" / "params.json").is_file()
    assert store.summary.bytes_on_disk >= (store.folder / "bm25" / "params.json").stat().st_size


def test_failed_extra_builder_is_resumable(build, corpus, count_encoded):
    def broken(folder, store):
        raise Crash("ann failed")

    with pytest.raises(Crash):
        build(corpus, extra_builders=[broken])
    count_encoded["docs"] = 0
    store = build(corpus, resume=True)
    assert count_encoded["docs"] == 0 and store.n_docs == 40


def test_add_component_replaces_atomically(build, corpus):
    store = build(corpus)

    def write(version):
        return lambda folder: (folder / "v.txt").write_text(version)

    store.add_component("ann", write("1"))
    store.add_component("ann", write("2"))
    assert (store.folder / "ann" / "v.txt").read_text() == "2"
    with pytest.raises(Crash):
        store.add_component("ann", lambda folder: (_ for _ in ()).throw(Crash()))
    assert (store.folder / "ann" / "v.txt").read_text() == "2"
    assert sorted(p.name for p in store.folder.iterdir() if p.name.startswith(".")) == []
    IndexStore.open(store.folder)  # still valid


def test_overwrite_never_replaces_an_unrelated_folder(build, corpus, tmp_path):
    from latesearch.errors import InputError

    folder = tmp_path / "not-an-index"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="refusing to replace"):
        build(corpus, name="not-an-index", overwrite=True)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_checkpoints_every_few_documents_whatever_the_group_size(build, corpus, small_config,
                                                                  count_encoded):  # fmt: skip
    config = small_config.replace(group_size=1000, chunk_size=None, checkpoint_docs=7,
                                  checkpoint_seconds=None)  # fmt: skip
    with pytest.raises(Crash):
        build(corpus, config=config, on_chunk=crash_after(3))
    count_encoded["docs"] = 0
    resumed = build(corpus, config=config, resume=True)
    assert count_encoded["docs"] == 40 - 21  # three checkpoints of 7 documents were kept
    assert [c.n_docs for c in resumed.chunks] == [7] * 5 + [5]
    same_index(resumed, build(corpus, "reference", config=small_config))


def test_checkpoints_follow_encoding_time(build, corpus, small_config):
    from latesearch.indexing.builder import FIRST_GROUP_BATCHES

    fast = small_config.replace(group_size=1000, chunk_size=None, checkpoint_docs=None,
                                checkpoint_seconds=1e-9, batch_size=2)  # fmt: skip
    # until a group is saved the throughput is unknown: the first two groups (the second is
    # read while the first is encoded) are small
    first = FIRST_GROUP_BATCHES * fast.run.batch_size
    assert 2 * first < 40
    sizes = [c.n_docs for c in build(corpus, config=fast).chunks]
    assert sizes == [first, first] + [fast.run.batch_size] * ((40 - 2 * first) // 2)
    slow = fast.replace(checkpoint_seconds=3600.0)
    sizes = [c.n_docs for c in build(corpus, "slow", config=slow).chunks]
    assert sizes == [first, first, 40 - 2 * first]


@pytest.mark.parametrize("field", ["checkpoint_docs", "checkpoint_seconds"])
def test_checkpoint_limits_are_validated(field):
    from latesearch.indexing import IndexConfig

    with pytest.raises(ConfigError, match=field):
        IndexConfig().replace(**{field: 0})
    assert getattr(IndexConfig().replace(**{field: None}).run, field) is None
