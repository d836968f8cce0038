"""Chunks coded on a (local) Ray cluster are the single-process coder's files, through
shared files and through the object store, and when a coder actor dies mid-way."""

from __future__ import annotations

import shutil

import pytest

from latesearch.indexing import CodecConfig, IndexConfig, build_index
from latesearch.indexing.compression import compress_chunks
from latesearch.indexing.ray_coding import CODER_PREFIX, RayCoder

CODING = CodecConfig(nbits=2, n_centroids=16)


@pytest.fixture
def uncompressed(corpus, tiny_colbert, tmp_path):
    """(folder, chunks, dim) of an uncompressed fp16 build in several chunks."""
    config = IndexConfig().replace(nbits=None, chunk_size=6, group_size=12, checkpoint_seconds=None)
    store = build_index(corpus, tmp_path / "source", tiny_colbert, config, progress=False)
    return store.folder, store.manifest.chunks, store.dim


def _copy(source, target):
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("transport", ["shared", "object_store"])
def test_ray_coding_writes_the_local_coders_files_though_an_actor_dies(
    ray_cluster, kill_once, uncompressed, tmp_path, transport
):
    source, chunks, dim = uncompressed
    assert len(chunks) > 3
    local_dir, ray_dir = _copy(source, tmp_path / "local"), _copy(source, tmp_path / "ray")
    local = compress_chunks(local_dir, chunks, dim, CODING)
    kill_one = kill_once(CODER_PREFIX)  # after the first result: others in flight or to come
    coder = RayCoder("auto", workers=2, transport=transport)
    ours = compress_chunks(ray_dir, chunks, dim, CODING, coder=coder, progress=kill_one)
    assert kill_one.killed
    assert ours.codec["coded_by"] == f"ray ({transport})" and local.codec["coded_by"] == "local"
    assert ours.codec["sha256"] == local.codec["sha256"]  # codec/ and ivf/ files
    for a, b in zip(ours.chunks, local.chunks, strict=True):
        assert (a.codes_sha256, a.residuals_sha256) == (b.codes_sha256, b.residuals_sha256)
        for name in (a.codes, a.residuals):
            assert (ray_dir / name).read_bytes() == (local_dir / name).read_bytes()
    assert not list(ray_dir.rglob("*.tmp"))
    assert not [n for n in ray_cluster.util.list_named_actors() if n.startswith(CODER_PREFIX)]
