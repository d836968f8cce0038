"""Shards built at the same time, each by a Ray task on any node of a cluster
(`ShardedIndex.build(..., ray=..., parallel_shards=True)`).

Every shard is an ordinary build (`Index.build`) run inside its task on that node's devices:
its collection piece, its centroids, codes, components, its own staging folder and resume.
The sharded build folder must be on storage every node mounts. A task whose node or worker
dies is run again by Ray (up to RETRIES times) and resumes its shard from what that shard's
staging folder holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from latesearch.indexing import IndexConfig
from latesearch.indexing.ray_pool import RESTARTS, connect

RETRIES = RESTARTS


def build_shard(part: str, target: str, model: Any, config: IndexConfig, bm25: bool,
                ann: bool | None, threads: int) -> str:  # fmt: skip
    """One shard's build, in this process (a Ray task's); its folder."""
    import torch

    from latesearch.index import Index

    torch.set_num_threads(threads)
    started = Path(target).with_name(Path(target).name + ".building").is_dir()
    Index.build(part, target, model, config=config, bm25=bm25, ann=ann, resume=started,
                overwrite=True, progress=False)  # fmt: skip
    return target


def build_in_parallel(todo: list[tuple[Path, Path]], model: Any, config: IndexConfig, *,
                      bm25: bool, ann: bool | None) -> None:  # fmt: skip
    """Build every (collection piece, shard folder) of `todo` in Ray tasks, all at once
    (as many run as the cluster has room for: `ray.cpus_per_worker` CPUs, and one GPU
    where the cluster has any, per task)."""
    ray = connect(config.ray.address)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    cpus = config.ray.cpus_per_worker
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES)(build_shard)
    shared = ray.put(model)
    local = config.replace(ray=None)  # each shard encodes on its task's own devices
    refs = [task.remote(os.fspath(part), os.fspath(target), shared, local, bm25, ann, cpus)
            for part, target in todo]  # fmt: skip
    ray.get(refs)
