"""Encoding groups of documents on one device: tokenization in worker threads, optional
length bucketing, batches padded to their own longest document (paper Section 3.4)."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from latesearch.errors import ConfigError
from latesearch.modeling import ColBERT, ColBERTTokenizer

T = TypeVar("T")
TOKENIZE_PIECE = 256  # documents per tokenizer call in a worker thread
STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}


@dataclass
class EncoderSettings:
    """What an encoder needs besides the model (picklable, sent to device workers)."""

    batch_size: int
    tokenizer_workers: int
    length_bucketing: bool
    storage_dtype: str
    compute_dtype: str | None = None
    doc_maxlen: int | None = None
    pooled: bool = False  # also a pooled dense vector per document (IndexConfig.dense)
    windows: tuple[int, int, int] | None = None  # IndexConfig.windows: window, stride, most


@dataclass
class Tokenized:
    """A group's token ids (markers included) and what tokenization noticed."""

    ids: list[list[int]]  # a sequence per document, or per window of a document
    truncated: np.ndarray  # (n_docs,) bool: longer than doc_maxlen (or all windows reach)
    empty: np.ndarray  # (n_docs,) bool: no content tokens
    windows: np.ndarray | None = None  # (n_docs,) int64: sequences of each document

    @staticmethod
    def concat(parts: Sequence[Tokenized]) -> Tokenized:
        windows = [p.windows for p in parts]
        return Tokenized(
            list(itertools.chain.from_iterable(p.ids for p in parts)),
            np.concatenate([p.truncated for p in parts] or [np.zeros(0, bool)]),
            np.concatenate([p.empty for p in parts] or [np.zeros(0, bool)]),
            None if not parts or windows[0] is None else np.concatenate(windows),  # type: ignore[arg-type]
        )


@dataclass
class EncodedGroup:
    """A group's embeddings, documents in input order, concatenated: (n_tokens, dim)."""

    embeddings: torch.Tensor
    doclens: torch.Tensor  # (n_docs,) int32
    truncated: torch.Tensor  # (n_docs,) bool
    empty: torch.Tensor  # (n_docs,) bool
    dense: torch.Tensor | None = None  # (n_docs, dense_dim): pooled vectors, where asked

    @staticmethod
    def concat(parts: Sequence[EncodedGroup]) -> EncodedGroup:
        dense = [p.dense for p in parts]
        return EncodedGroup(
            torch.cat([p.embeddings for p in parts]),
            torch.cat([p.doclens for p in parts]),
            torch.cat([p.truncated for p in parts]),
            torch.cat([p.empty for p in parts]),
            None if any(d is None for d in dense) else torch.cat(dense),  # type: ignore[arg-type]
        )


class DocumentEncoder:
    """Tokenizes and encodes groups of document texts on the model's device."""

    def __init__(
        self,
        model: ColBERT,
        settings: EncoderSettings,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.progress = progress
        config = model.config
        if settings.doc_maxlen is not None and settings.doc_maxlen != config.doc_maxlen:
            config = config.replace(doc_maxlen=settings.doc_maxlen)
            self.tokenizer = ColBERTTokenizer(model.tokenizer.hf, config)
        else:
            self.tokenizer = model.tokenizer
        if settings.windows is not None:
            longest = settings.windows[0] + self.tokenizer.frame
            if longest > self.tokenizer.config.doc_maxlen:
                raise ConfigError(
                    f"IndexConfig.window {settings.windows[0]} plus {self.tokenizer.frame} "
                    f"special tokens passes doc_maxlen {self.tokenizer.config.doc_maxlen}",
                    field="window",
                )
        self.storage_dtype = STORAGE_DTYPES[settings.storage_dtype]
        self.skip = np.array(sorted(self.tokenizer.skiplist), dtype=np.int64)
        workers = settings.tokenizer_workers
        self.pool = ThreadPoolExecutor(workers, "latesearch-tok") if workers else None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ tokenization
    def tokenize(self, texts: list[str]) -> Tokenized:
        """Token ids of every text, truncated at doc_maxlen (counted)."""
        windowed = self.settings.windows is not None
        if not texts:
            return Tokenized([], np.zeros(0, bool), np.zeros(0, bool),
                             np.zeros(0, np.int64) if windowed else None)  # fmt: skip
        if windowed:
            window, stride, most = self.settings.windows  # type: ignore[misc]
            nested, truncated, empty = self.tokenizer.document_windows_flagged(
                texts, window, stride, most
            )
            counts = np.fromiter((len(w) for w in nested), dtype=np.int64, count=len(nested))
            flat = list(itertools.chain.from_iterable(nested))
            return Tokenized(flat, np.asarray(truncated, bool), np.asarray(empty, bool), counts)
        ids, truncated, empty = self.tokenizer.document_ids_flagged(texts)
        truncated = np.asarray(truncated, dtype=bool)
        empty = np.asarray(empty, dtype=bool)
        return Tokenized(ids, truncated, empty)

    def submit_tokenize(self, texts: list[str]) -> Callable[[], Tokenized]:
        """Start tokenizing in the worker threads; call the result to wait for it."""
        if self.pool is None:
            return lambda: self.tokenize(texts)
        futures: list[Future[Tokenized]] = [
            self.pool.submit(self.tokenize, texts[i : i + TOKENIZE_PIECE])
            for i in range(0, len(texts), TOKENIZE_PIECE)
        ]

        def wait() -> Tokenized:
            return Tokenized.concat([f.result() for f in futures])

        return wait

    # ------------------------------------------------------------------ encoding
    def doclens(self, ids: list[list[int]]) -> np.ndarray:
        """Embeddings each document will keep: tokens minus punctuation (vectorised)."""
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        if not self.skip.size:
            return lengths.astype(np.int32)
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64)
        kept = np.concatenate([[0], np.cumsum(~np.isin(flat, self.skip))])
        ends = np.cumsum(lengths)
        return (kept[ends] - kept[ends - lengths]).astype(np.int32)

    def encode_tokens(self, tokenized: Tokenized) -> EncodedGroup:
        """Encode tokenized documents in batches; embeddings in input order (a windowed
        document's: its windows' in turn)."""
        ids = tokenized.ids
        doclens = self.doclens(ids)  # per sequence
        windows = tokenized.windows
        finishes = np.ones(len(ids), dtype=np.int64)  # documents a sequence completes
        if windows is not None:
            finishes = np.zeros(len(ids), dtype=np.int64)
            finishes[np.cumsum(windows) - 1] = 1
        offsets = np.concatenate([[0], np.cumsum(doclens, dtype=np.int64)])
        out = torch.empty((int(offsets[-1]), self.model.config.dim), dtype=self.storage_dtype)
        dense = None
        if self.settings.pooled:
            hidden = self.model.backbone.config.hidden_size
            dense = torch.zeros((len(ids), hidden), dtype=torch.float16)  # fp16 whatever
            # the token vectors' precision: one vector a document is small either way
        order = np.arange(len(ids))
        if self.settings.length_bucketing:
            lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
            order = np.argsort(-lengths, kind="stable")
        size = self.settings.batch_size
        batches = (order[i : i + size] for i in range(0, len(order), size))
        padded = ((rows, self.tokenizer.pad_documents([ids[r] for r in rows])) for rows in batches)
        if self.pool is not None:
            padded = background(padded, maxsize=4)
        device = self.model.device
        autocast = (
            torch.autocast(device.type, dtype=getattr(torch, self.settings.compute_dtype))
            if self.settings.compute_dtype
            else nullcontext()
        )
        with torch.inference_mode(), autocast:
            for rows, batch in padded:
                if dense is not None:
                    embedded, pooled = self.model.embed_and_pool(batch)
                    mask = batch.output_mask.to(embedded.device)
                    dense[torch.from_numpy(rows)] = pooled.to("cpu", torch.float16)
                else:
                    embedded, mask = self.model.forward_documents(batch)
                kept = embedded[mask].to("cpu", self.storage_dtype)
                n = doclens[rows].astype(np.int64)
                if kept.shape[0] != int(n.sum()):
                    raise RuntimeError("encoder kept a different number of tokens than counted")
                within = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
                dest = torch.from_numpy(np.repeat(offsets[rows], n) + within)
                out[dest] = kept
                if self.progress is not None:
                    self.progress(int(finishes[rows].sum()))
        if windows is not None and len(windows):
            doclens = np.add.reduceat(doclens, np.cumsum(windows) - windows).astype(np.int32)
        return EncodedGroup(
            out,
            torch.from_numpy(doclens),
            torch.from_numpy(tokenized.truncated),
            torch.from_numpy(tokenized.empty),
            dense,
        )

    def encode(self, texts: list[str]) -> EncodedGroup:
        return self.encode_tokens(self.submit_tokenize(texts)())

    def encode_stream(
        self, groups: Iterable[tuple[T, list[str]]]
    ) -> Iterator[tuple[T, EncodedGroup]]:
        """Encode groups in turn; with worker threads, group g+1 is tokenized while group g
        is encoded."""
        return pipelined(groups, self.submit_tokenize,
                         lambda wait: self.encode_tokens(wait()))  # fmt: skip


def pipelined(
    groups: Iterable[tuple[T, list[str]]],
    submit: Callable[[list[str]], Any],
    collect: Callable[[Any], EncodedGroup],
) -> Iterator[tuple[T, EncodedGroup]]:
    """(key, encoded group) for each (key, texts) of `groups`, in order, group g+1 sent
    out (`submit(texts)` -> a handle) before group g is collected (`collect(handle)`), so
    that the two overlap."""
    iterator = iter(groups)
    item = next(iterator, None)
    pending = None if item is None else (item[0], submit(item[1]))
    while pending is not None:
        key, handle = pending
        item = next(iterator, None)
        pending = None if item is None else (item[0], submit(item[1]))
        yield key, collect(handle)


def background(items: Iterator[T], maxsize: int) -> Iterator[T]:
    """Run an iterator in a thread, `maxsize` items ahead (a bounded queue)."""
    channel: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        channel.put((None, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            channel.put((None, done))
        except BaseException as err:  # handed to the consumer
            channel.put((err, None))

    thread = threading.Thread(target=produce, name="latesearch-pad", daemon=True)
    thread.start()
    try:
        while True:
            err, item = channel.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
