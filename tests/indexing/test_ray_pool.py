"""Builds on a (local) Ray cluster equal single-process builds: through the object store
and through shared files, and when an encoder actor dies mid-build."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch.errors import ConfigError
from latesearch.indexing import IndexConfig, IndexStore, build_index
from latesearch.indexing.ray_pool import ACTOR_PREFIX

CONFIG = IndexConfig().replace(nbits=2, keep_full=True, n_centroids=16, group_size=12, chunk_size=6,
                     checkpoint_seconds=None, batch_size=4)  # fmt: skip


def assert_same_index(ours: IndexStore, theirs: IndexStore) -> None:
    """The same ids, lengths, texts and vectors (to float rounding: batches are padded
    differently), and the same centroid codes but for rare boundary tokens."""
    assert list(ours.doc_ids) == list(theirs.doc_ids)
    assert np.array_equal(ours.doclens, theirs.doclens)
    assert ours.documents(range(ours.n_docs)) == theirs.documents(range(theirs.n_docs))
    every = np.arange(ours.n_docs)
    np.testing.assert_allclose(ours.flat(every, source="full")[0].astype(np.float32),
                               theirs.flat(every, source="full")[0].astype(np.float32),
                               atol=2e-3)  # fmt: skip
    assert np.mean(ours.vectors.codes(every)[0] == theirs.vectors.codes(every)[0]) > 0.99
    ours.verify()


@pytest.fixture
def local_build(corpus, tiny_colbert, tmp_path):
    """(the test corpus, its single-process build)."""
    return corpus, build_index(corpus, tmp_path / "local", tiny_colbert, CONFIG, progress=False)


@pytest.mark.parametrize("transport", ["object_store", "shared"])
def test_a_ray_build_equals_a_local_build(ray_cluster, local_build, tiny_colbert, tmp_path,
                                          transport):  # fmt: skip
    corpus, local = local_build
    config = CONFIG.replace(ray="auto", ray_workers=2, ray_transport=transport)
    store = build_index(corpus, tmp_path / "ray", tiny_colbert, config, progress=False)
    assert_same_index(store, local)
    assert store.manifest.codec["coded_by"] == f"ray ({transport})"
    assert not (tmp_path / "ray" / "ray-spill").exists()
    assert not [n for n in ray_cluster.util.list_named_actors() if n.startswith(ACTOR_PREFIX)]


def test_a_killed_encoder_is_restarted_and_the_index_is_the_same(
    ray_cluster, kill_once, local_build, tiny_colbert, tmp_path
):
    corpus, local = local_build
    kill_one = kill_once(ACTOR_PREFIX)  # after the first chunk: later groups in flight
    config = CONFIG.replace(ray="auto", ray_workers=2)
    store = build_index(corpus, tmp_path / "ray", tiny_colbert, config, progress=False,
                        on_chunk=kill_one)  # fmt: skip
    assert kill_one.killed
    assert_same_index(store, local)


def test_ray_settings_are_checked():
    for bad in ({"ray": ""}, {"ray": 3}, {"ray_workers": 0}, {"ray_cpus_per_worker": 0},
                {"ray_transport": "nfs"}):  # fmt: skip
        with pytest.raises(ConfigError, match="IndexConfig.ray"):
            IndexConfig().replace(**bad)


def test_an_interrupted_ray_build_resumes_to_the_same_index(ray_cluster, local_build,
                                                            tiny_colbert, tmp_path):  # fmt: skip
    corpus, local = local_build
    config = CONFIG.replace(ray="auto", ray_workers=2)
    seen = []

    def stop_after_two(chunk):
        seen.append(chunk.index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, tmp_path / "ray", tiny_colbert, config, progress=False,
                    on_chunk=stop_after_two)  # fmt: skip
    assert not [n for n in ray_cluster.util.list_named_actors() if n.startswith(ACTOR_PREFIX)]
    store = build_index(corpus, tmp_path / "ray", tiny_colbert, config, progress=False,
                        resume=True)  # fmt: skip
    assert store.manifest.stats["resumed"]
    assert_same_index(store, local)
