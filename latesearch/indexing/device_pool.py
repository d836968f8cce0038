"""Several devices: one spawned process per device, each encoding a contiguous shard of every
group; shards are merged back in document order."""

from __future__ import annotations

import copy
import itertools
import os
import queue
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch
import torch.multiprocessing as mp

from latesearch.indexing.encoder_run import (
    DocumentEncoder,
    EncodedGroup,
    EncoderSettings,
    pipelined,
)
from latesearch.modeling import ColBERT

T = TypeVar("T")
POLL_SECONDS = 1.0


def _worker(
    rank: int,
    model: ColBERT,
    device: str,
    settings: EncoderSettings,
    threads: int,
    inbox: Any,
    results: Any,
) -> None:
    """Device process: encode every shard it is sent; report progress, results, errors."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    torch.set_num_threads(threads)
    encoder = None
    try:
        model = model.to(device)
        encoder = DocumentEncoder(model, settings, progress=lambda n: results.put(("n", rank, n)))
        while (item := inbox.get()) is not None:
            key, texts = item
            g = encoder.encode(texts)
            results.put(("ok", rank, (key, g.embeddings, g.doclens, g.truncated, g.empty,
                                      g.dense)))  # fmt: skip
    except BaseException:
        results.put(("error", rank, traceback.format_exc()))
    finally:
        if encoder is not None:
            encoder.close()


class DevicePool:
    """Encoder processes, one per device; `encode_stream` keeps two groups in flight."""

    def __init__(
        self,
        model: ColBERT,
        devices: list[str],
        settings: EncoderSettings,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.devices = devices
        self.progress = progress
        context = mp.get_context("spawn")
        shared = model if model.device.type == "cpu" else copy.deepcopy(model).cpu()
        n_cpu = sum(torch.device(d).type == "cpu" for d in devices)
        threads = max(1, (os.cpu_count() or 1) // max(1, n_cpu))
        per_worker = EncoderSettings(
            **{**vars(settings), "tokenizer_workers": _split(settings.tokenizer_workers, devices)}
        )
        self.results = context.Queue()
        self.inboxes = [context.Queue() for _ in devices]
        self.processes = [
            context.Process(
                target=_worker,
                args=(rank, shared, device, per_worker, threads, inbox, self.results),
                name=f"latesearch-encode-{device}",
                daemon=True,
            )
            for rank, (device, inbox) in enumerate(zip(devices, self.inboxes, strict=True))
        ]
        for process in self.processes:
            process.start()
        self._done: dict[tuple[int, int], EncodedGroup] = {}

    def _submit(self, serial: int, texts: list[str]) -> None:
        bounds = np.linspace(0, len(texts), len(self.devices) + 1).astype(int)
        for rank, inbox in enumerate(self.inboxes):
            inbox.put((serial, texts[bounds[rank] : bounds[rank + 1]]))

    def _collect(self, serial: int) -> EncodedGroup:
        wanted = [(serial, rank) for rank in range(len(self.devices))]
        while any(key not in self._done for key in wanted):
            try:
                kind, rank, payload = self.results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._check_alive()
                continue
            if kind == "n":
                if self.progress is not None:
                    self.progress(payload)
            elif kind == "error":
                raise RuntimeError(f"encoder process on {self.devices[rank]} failed:\n{payload}")
            else:
                key, embeddings, doclens, truncated, empty, dense = payload
                self._done[(key, rank)] = EncodedGroup(
                    embeddings.clone(), doclens.clone(), truncated.clone(), empty.clone(),
                    None if dense is None else dense.clone(),
                )  # fmt: skip
        return EncodedGroup.concat([self._done.pop(key) for key in wanted])

    def _check_alive(self) -> None:
        for device, process in zip(self.devices, self.processes, strict=True):
            if not process.is_alive():
                raise RuntimeError(
                    f"encoder process on {device} died (exit code {process.exitcode}); "
                    "out of memory? Try a smaller --batch-size or --group-size"
                )

    def encode_stream(
        self, groups: Iterable[tuple[T, list[str]]]
    ) -> Iterator[tuple[T, EncodedGroup]]:
        """Encode groups in order; group g+1 is sent out before group g is collected."""
        serials = itertools.count()

        def submit(texts: list[str]) -> int:
            serial = next(serials)
            self._submit(serial, texts)
            return serial

        return pipelined(groups, submit, self._collect)

    def close(self) -> None:
        """Stop the processes (politely, then by force)."""
        for inbox, process in zip(self.inboxes, self.processes, strict=True):
            if process.is_alive():
                inbox.put(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for q in (*self.inboxes, self.results):
            q.cancel_join_thread()
            q.close()


def _split(workers: int, devices: list[str]) -> int:
    """Tokenizer threads per device process (0 stays 0: no parallel tokenization)."""
    return 0 if workers == 0 else max(1, workers // len(devices))
