"""Coding a compressed build's chunks on a Ray cluster (`IndexConfig.ray`): centroid
assignment and residual quantization, the longest phase of a large build after encoding,
spread over coder actors, each holding the codec and its centroid assigner (built once per
actor from the codec put once into the object store).

With `ray_transport="shared"` (every node mounts the index's folder) an actor reads a
chunk's embeddings from the build folder and writes its codes and residuals there, as a
local build does; with "object_store" the driver sends blocks of embeddings and writes the
codes that come back. Either way the files are the single-process coder's (the same codec,
the same assigner). Ray restarts an actor that dies and runs its task again (a chunk's
files are written under temporary names and renamed, so a retry overwrites a partial one).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latesearch.compressed.centroids import Assigner
from latesearch.compressed.codec import ResidualCodec
from latesearch.compressed.coding import BLOCK_ROWS, code_block
from latesearch.indexing.compression import chunk_embeddings, code_chunk, write_codes
from latesearch.indexing.config import CodecConfig, RayConfig
from latesearch.indexing.manifest import ChunkInfo
from latesearch.indexing.ray_pool import RESTARTS, connect

CODER_PREFIX = "latesearch-coder-"  # actors are named <prefix><build>-<rank>
IN_FLIGHT = 2  # tasks queued per actor


class _Coder:
    """The actor's body: the codec and an assigner over its centroids."""

    def __init__(self, codec: ResidualCodec, assignment: str, seed: int, threads: int):
        import faiss

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
        self.codec = codec
        self.assign = Assigner(codec.centroids32, assignment, seed=seed)

    def code_file(self, folder: str, chunk: ChunkInfo) -> ChunkInfo:
        """Code a chunk of the shared build folder in place; its new record."""
        return code_chunk(Path(folder), chunk, self.codec, self.assign)

    def code_block(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(centroid codes, packed residuals) of a block of embeddings."""
        return code_block(embeddings, self.codec, self.assign)

    def pid(self) -> int:
        return os.getpid()


class RayCoder:
    """A `compression.ChunkCoder` on coder actors of a Ray cluster: `workers` of them (None:
    one per `cpus_per_worker` CPUs of the cluster), started per call and stopped after."""

    def __init__(self, address: str, *, workers: int | None = None, cpus_per_worker: int = 1,
                 transport: str = "object_store") -> None:  # fmt: skip
        self.address, self.workers = address, workers
        self.cpus, self.transport = cpus_per_worker, transport
        self.label = f"ray ({transport})"

    @classmethod
    def for_config(cls, config: RayConfig) -> RayCoder:
        return cls(config.address, workers=config.workers,
                   cpus_per_worker=config.cpus_per_worker,
                   transport=config.transport)  # fmt: skip

    def __call__(self, folder: Path, chunks: list[ChunkInfo], codec: ResidualCodec,
                 config: CodecConfig, progress: Callable[[int], None] | None = None,
                 ) -> list[ChunkInfo]:  # fmt: skip
        ray = connect(self.address)
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.cpus)
        shared = ray.put(codec)  # kept while the actors live: restarts rebuild from it
        actor = ray.remote(num_cpus=self.cpus, max_restarts=RESTARTS,
                           max_task_retries=RESTARTS)(_Coder)  # fmt: skip
        build = uuid.uuid4().hex[:12]
        actors = [actor.options(name=f"{CODER_PREFIX}{build}-{rank}").remote(
                      shared, config.assignment, config.seed, self.cpus)
                  for rank in range(max(1, min(workers, len(chunks))))]  # fmt: skip
        try:
            if self.transport == "shared":
                return self._in_place(ray, actors, folder, chunks, progress)
            return self._by_blocks(ray, actors, folder, chunks, codec, progress)
        finally:
            for a in actors:
                ray.kill(a)

    @staticmethod
    def _in_place(ray: Any, actors: list[Any], folder: Path, chunks: list[ChunkInfo],
                  progress: Callable[[int], None] | None) -> list[ChunkInfo]:  # fmt: skip
        """One task per chunk, each actor kept IN_FLIGHT tasks busy; results in order."""
        todo = iter(range(len(chunks)))
        pending: dict[Any, tuple[int, Any]] = {}
        coded: list[ChunkInfo | None] = [None] * len(chunks)

        def submit(a: Any) -> None:
            i = next(todo, None)
            if i is not None:
                pending[a.code_file.remote(str(folder), chunks[i])] = (i, a)

        for a in actors * IN_FLIGHT:
            submit(a)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ref)
            coded[i] = ray.get(ref)
            if progress is not None:
                progress(chunks[i].n_embeddings)
            submit(a)
        return coded  # type: ignore[return-value]

    @staticmethod
    def _by_blocks(ray: Any, actors: list[Any], folder: Path, chunks: list[ChunkInfo],
                   codec: ResidualCodec, progress: Callable[[int], None] | None,
                   ) -> list[ChunkInfo]:  # fmt: skip
        """Blocks of every chunk sent out in order, IN_FLIGHT per actor ahead of the one
        written; each chunk's files written from its blocks."""

        def blocks() -> Iterator[tuple[int, np.ndarray]]:
            for chunk in chunks:
                embeddings = chunk_embeddings(folder, chunk, codec.dim)
                for start in range(0, chunk.n_embeddings, BLOCK_ROWS):
                    yield start, np.ascontiguousarray(embeddings[start : start + BLOCK_ROWS])

        def results() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
            window: deque[tuple[int, Any]] = deque()
            turn = itertools.cycle(actors)
            for start, block in blocks():
                window.append((start, next(turn).code_block.remote(block)))
                if len(window) > IN_FLIGHT * len(actors):
                    yield _done(ray, window.popleft())
            while window:
                yield _done(ray, window.popleft())

        stream = results()
        out = []
        for chunk in chunks:
            n_blocks = -(-chunk.n_embeddings // BLOCK_ROWS)
            out.append(write_codes(folder, chunk, codec, itertools.islice(stream, n_blocks),
                                   progress))  # fmt: skip
        return out


def _done(ray: Any, item: tuple[int, Any]) -> tuple[int, np.ndarray, np.ndarray]:
    start, ref = item
    codes, residuals = ray.get(ref)
    return start, codes, residuals
