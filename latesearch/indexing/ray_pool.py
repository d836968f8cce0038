"""Encoding on a Ray cluster (`IndexConfig.ray`): one actor per worker, each loading the
model once, every group cut into contiguous shards, one per actor, merged back in document
order, so the builder downstream (chunks, centroids, codes, resume) is the single-process
one. Encoded shards come back through Ray's object store, or (`ray_transport="shared"`,
where every node mounts the index's folder) as .npy files the actors write into the build
folder. Ray restarts an actor that dies and runs its shard again.

Ray is an optional dependency (`pip install "latesearch[ray]"`), imported only here."""

from __future__ import annotations

import copy
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from latesearch.errors import ConfigError
from latesearch.indexing.encoder_run import (
    DocumentEncoder,
    EncodedGroup,
    EncoderSettings,
    pipelined,
)
from latesearch.modeling import ColBERT

T = TypeVar("T")
ACTOR_PREFIX = "latesearch-encoder-"  # actors are named <prefix><build>-<rank>
RESTARTS = 3  # times Ray restarts a dead actor and retries its shard
FIELDS = ("embeddings", "doclens", "truncated", "empty", "dense")


def import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ConfigError(
            'Ray is not installed: pip install "latesearch[ray]" (IndexConfig.ray / --ray)'
        ) from err
    return ray


def connect(address: str) -> Any:
    """The `ray` module, connected: "auto" joins the cluster of RAY_ADDRESS or one running
    on this machine, else starts a local one; "local" starts a local one; anything else is
    a cluster address ("ray://head:10001", "head:6379"). A connection already made in this
    process is kept as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address == "local":
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    elif address == "auto":
        try:
            ray.init(address="auto", log_to_driver=False)
        except ConnectionError:  # no cluster to join: one on this machine
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    return ray


class _Encoder:
    """The actor's body: one model, encoding the shards it is sent."""

    def __init__(self, model: ColBERT, settings: EncoderSettings, device: str, threads: int):
        torch.set_num_threads(threads)
        self.encoder = DocumentEncoder(model.to(device), settings)

    def encode(self, texts: list[str], spill: str | None) -> dict[str, Any]:
        """The shard's arrays, or where `spill` is a folder, the .npy files written there."""
        g = self.encoder.encode(texts)
        arrays = {name: None if getattr(g, name) is None else getattr(g, name).cpu().numpy()
                  for name in FIELDS}  # fmt: skip
        if spill is None:
            return arrays
        folder = Path(spill) / uuid.uuid4().hex
        folder.mkdir(parents=True)
        for name, array in arrays.items():
            if array is not None:
                np.save(folder / f"{name}.npy", array)
        return {"folder": str(folder)}

    def pid(self) -> int:
        return os.getpid()


class RayEncoderPool:
    """Encoder actors on a Ray cluster; `encode_stream` keeps two groups in flight, like
    `DevicePool`."""

    def __init__(
        self,
        model: ColBERT,
        settings: EncoderSettings,
        *,
        address: str,
        workers: int | None,
        cpus_per_worker: int,
        transport: str,
        spill: Path,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        ray = self.ray = connect(address)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if workers is None:
            workers = gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_worker)
        self.workers = workers
        use_gpu = gpus >= workers
        self.progress = progress
        self.spill = str(spill) if transport == "shared" else None
        if self.spill is not None:
            spill.mkdir(parents=True, exist_ok=True)
        per_worker = EncoderSettings(**{**vars(settings), "tokenizer_workers": 0})
        cpu_model = model if model.device.type == "cpu" else copy.deepcopy(model).cpu()
        # kept while the actors live: Ray restarts a dead actor from this very object
        shared = self._model = ray.put(cpu_model)
        actor = ray.remote(
            num_cpus=cpus_per_worker, num_gpus=1 if use_gpu else 0,
            max_restarts=RESTARTS, max_task_retries=RESTARTS,
        )(_Encoder)  # fmt: skip
        build = uuid.uuid4().hex[:12]
        self.actors = [
            actor.options(name=f"{ACTOR_PREFIX}{build}-{rank}").remote(
                shared, settings=per_worker, device="cuda" if use_gpu else "cpu",
                threads=cpus_per_worker,
            )  # fmt: skip
            for rank in range(workers)
        ]

    def _submit(self, texts: list[str]) -> list[tuple[int, Any]]:
        bounds = np.linspace(0, len(texts), self.workers + 1).astype(int)
        return [
            (int(bounds[r + 1] - bounds[r]),
             a.encode.remote(texts[bounds[r] : bounds[r + 1]], self.spill))
            for r, a in enumerate(self.actors)
        ]  # fmt: skip

    def _collect(self, pending: list[tuple[int, Any]]) -> EncodedGroup:
        parts = []
        for n, ref in pending:
            parts.append(_group(self.ray.get(ref)))
            if self.progress is not None:
                self.progress(n)
        return EncodedGroup.concat(parts)

    def encode_stream(
        self, groups: Iterable[tuple[T, list[str]]]
    ) -> Iterator[tuple[T, EncodedGroup]]:
        """Encode groups in order; group g+1 is sent out before group g is collected."""
        return pipelined(groups, self._submit, self._collect)

    def close(self) -> None:
        """Stop the actors (the cluster itself stays up)."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)


def _group(result: dict[str, Any]) -> EncodedGroup:
    """An `EncodedGroup` from an actor's arrays, or from the files it wrote (then removed)."""
    if "folder" in result:
        folder = Path(result["folder"])
        result = {name: np.load(folder / f"{name}.npy") if (folder / f"{name}.npy").is_file()
                  else None for name in FIELDS}  # fmt: skip
        shutil.rmtree(folder)
    return EncodedGroup(
        *(torch.from_numpy(np.array(result[name])) for name in FIELDS[:4]),
        None if result["dense"] is None else torch.from_numpy(np.array(result["dense"])),
    )
