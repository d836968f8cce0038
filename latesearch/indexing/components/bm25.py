"""BM25 first stage over bm25s: build from `(doc_id, text)` pairs, save/load, search.

Queries are tokenized by the same `bm25s.tokenization.Tokenizer` settings (lowercasing,
stopwords, PyStemmer stemmer) as the corpus and mapped through the index's saved vocabulary;
unknown words are dropped. Only documents sharing at least one term with a query are
returned (their Lucene BM25 score is > 0).
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenized, Tokenizer

from latesearch._configio import JsonConfig, check_positive
from latesearch.compressed.arrays import READ_ERRORS
from latesearch.errors import ConfigError, IndexCorruptError, InputError
from latesearch.indexing._store import (
    atomic_folder,
    check_number,
    read_json,
    write_json,
)
from latesearch.indexing.components.bm25_statistics import RESCORABLE, BM25Statistics, rescored

METHODS = ("lucene", "robertson", "atire")
CONFIG_FILE = "config.json"
DOC_IDS_FILE = "doc_ids.json"
LENGTHS_FILE = "doc_lengths.npy"  # tokens per document after stopwords (BM25's lengths)


@dataclass(frozen=True)
class BM25Config(JsonConfig):
    """BM25 settings; `k1`/`b` default to Anserini's (0.9, 0.4)."""

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"
    lowercase: bool = True

    def __post_init__(self) -> None:
        check_number("BM25Config", "k1", self.k1, minimum=0.0, integer=False)
        check_number("BM25Config", "b", self.b, minimum=0.0, integer=False)
        if self.b > 1:
            _bad("b", self.b, "a number in [0, 1]")
        if self.method not in METHODS:
            _bad("method", self.method, f"one of {METHODS}")
        if self.stemmer is not None and self.stemmer not in Stemmer.algorithms():
            _bad("stemmer", self.stemmer, "None or a PyStemmer algorithm such as 'english'")
        if self.stopwords is not None:
            try:
                if not isinstance(self.stopwords, str):
                    raise ValueError
                Tokenizer(stopwords=self.stopwords)
            except ValueError:
                _bad("stopwords", self.stopwords, "None or a bm25s language code such as 'en'")
        if not isinstance(self.lowercase, bool):
            _bad("lowercase", self.lowercase, "true or false")

    def tokenizer(self) -> Tokenizer:
        """A fresh bm25s tokenizer with these settings (empty vocabulary)."""
        stemmer = Stemmer.Stemmer(self.stemmer) if self.stemmer else None
        return Tokenizer(lower=self.lowercase, stopwords=self.stopwords, stemmer=stemmer)


def _bad(name: str, value: Any, expected: str) -> None:
    raise ConfigError(f"BM25Config.{name} must be {expected}, got {value!r}")


class BM25Index:
    """A bm25s index plus its string document ids (row i of the index is `doc_ids[i]`)."""

    def __init__(self, retriever: bm25s.BM25, doc_ids: list[str], config: BM25Config,
                 lengths: np.ndarray | None = None) -> None:  # fmt: skip
        self.retriever, self.doc_ids, self.config = retriever, doc_ids, config
        self.lengths = lengths  # None: a bm25/ saved before lengths were kept
        self.total_length = 0 if lengths is None else int(lengths.sum())
        self._by_id: dict[int, str] | None = None  # vocabulary id -> term, made when asked
        # Query tokenizer: same settings, vocabulary = the index's; never grows the vocab.
        self._tokenizer = config.tokenizer()
        vocab = dict(retriever.vocab_dict)
        if config.stemmer:
            self._tokenizer.stem_to_sid = vocab
        else:
            self._tokenizer.word_to_id = vocab
        self._lock = threading.Lock()  # PyStemmer objects are not thread-safe

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(cls, docs: Iterable[tuple[str, str]], config: BM25Config | None = None) -> BM25Index:
        """Index `(doc_id, text)` pairs, streamed: texts are tokenized one at a time and only
        their token ids are kept (4 bytes a token), never the texts."""
        config = config or BM25Config()
        tokenizer = config.tokenizer()
        doc_ids: list[str] = []
        seen: set[str] = set()

        def texts() -> Iterator[str]:
            for n, item in enumerate(docs, 1):
                doc_id, text = _check_doc(item, n)
                if doc_id in seen:
                    raise InputError(f"document {n}: duplicate id {doc_id!r}", field="doc_id")
                seen.add(doc_id)
                doc_ids.append(doc_id)
                yield text

        ids = [array("i", t) for t in tokenizer.streaming_tokenize(texts(), update_vocab=True)]
        if not ids:
            raise InputError("no documents to index")
        retriever = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        retriever.index(Tokenized(ids=ids, vocab=tokenizer.get_vocab_dict()), show_progress=False)
        return cls(retriever, doc_ids, config, np.array([len(t) for t in ids], dtype=np.int32))

    def tokenize(self, queries: list[str]) -> list[list[int]]:
        """Token ids of `queries` in the index vocabulary (unknown words dropped)."""
        with self._lock:
            return self._tokenizer.tokenize(
                list(queries),
                update_vocab=False,
                return_as="ids",
                show_progress=False,
                allow_empty=False,
            )

    @property
    def rescorable(self) -> bool:
        """Whether `search` can score with another collection's statistics."""
        return self.lengths is not None and self.config.method in RESCORABLE

    def statistics(self, queries: list[str]) -> BM25Statistics:
        """This index's statistics for the terms of `queries` (a shard's share of a whole
        collection's, see `bm25_statistics`)."""
        tokens = self.tokenize(list(queries))
        indptr = self.retriever.scores["indptr"]
        names = self._names()
        df = {names[t]: int(indptr[t + 1] - indptr[t]) for ids in tokens for t in ids}
        return BM25Statistics(len(self.doc_ids), self.total_length, df)

    def _names(self) -> dict[int, str]:
        if self._by_id is None:
            self._by_id = {i: term for term, i in self.retriever.vocab_dict.items()}
        return self._by_id

    def search(
        self, queries: list[str], k: int, *, n_threads: int = 0, allowed: Any = None,
        statistics: BM25Statistics | None = None,
    ) -> list[list[tuple[str, float]]]:  # fmt: skip
        """Top-`k` `(doc_id, score)` per query, best first (equal scores: the one indexed
        first). Queries with no indexed term get an empty list; fewer than `k` results come
        back when fewer documents match.
        `allowed`: positions (in build order) of the only documents that may be returned.
        `statistics`: a whole collection's, this index being part of it (a shard), to score
        with instead of this index's own (where `rescorable`; otherwise ignored)."""
        if isinstance(queries, str):
            raise InputError("queries must be a list of strings, not one string", field="queries")
        check_positive("k", k)
        tokens = self.tokenize(queries)
        results: list[list[tuple[str, float]]] = [[] for _ in tokens]
        asked = [i for i, ids in enumerate(tokens) if ids]
        if not asked:
            return results
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.doc_ids), dtype=np.float32)
            mask[np.asarray(allowed, dtype=np.int64)] = 1.0
        if statistics is not None and self.rescorable:
            for i in asked:
                results[i] = self._rescored_top(tokens[i], k, mask, statistics)
            return results
        try:
            docs, scores = self.retriever.retrieve(
                [tokens[i] for i in asked],
                k=min(k, len(self.doc_ids)),
                show_progress=False,
                n_threads=n_threads,
                weight_mask=mask,
            )
        except (IndexError, ValueError) as err:  # memory-mapped matrix damaged on disk
            raise IndexCorruptError(f"bm25/: the score matrix is damaged ({err}); rebuild it "
                                    "(Index.add_bm25())") from None
        for i, row_docs, row_scores in zip(asked, docs.tolist(), scores.tolist(), strict=True):
            kept = sorted(((-s, d) for d, s in zip(row_docs, row_scores, strict=True) if s > 0))
            results[i] = [(self.doc_ids[d], -s) for s, d in kept]  # ties: lower position first
        return results

    def _rescored_top(self, ids: list[int], k: int, mask: np.ndarray | None,
                      whole: BM25Statistics) -> list[tuple[str, float]]:  # fmt: skip
        """One query's top `k` scored with `whole`'s statistics (ties: lower position)."""
        data, indices = self.retriever.scores["data"], self.retriever.scores["indices"]
        indptr, names = self.retriever.scores["indptr"], self._names()
        postings = [(names[t], np.asarray(indices[indptr[t] : indptr[t + 1]], dtype=np.int64),
                     np.asarray(data[indptr[t] : indptr[t + 1]])) for t in ids]  # fmt: skip
        own = BM25Statistics(len(self.doc_ids), self.total_length)
        scores = rescored(postings, self.lengths, own, whole, self.config.k1, self.config.b)
        if mask is not None:
            scores *= mask
        hits = np.flatnonzero(scores > 0)
        if hits.size > k:  # those tied with or above the k-th best only, then sorted
            kth = np.partition(scores[hits], hits.size - k)[hits.size - k]
            hits = hits[scores[hits] >= kth]
        top = hits[np.lexsort((hits, -scores[hits]))[:k]]
        return [(self.doc_ids[d], float(scores[d])) for d in top]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the index into `folder`, atomically (temp sibling folder + `os.replace`)."""
        with atomic_folder(folder, marker=CONFIG_FILE) as tmp:
            self.retriever.save(tmp, show_progress=False)
            write_json(tmp / DOC_IDS_FILE, self.doc_ids)
            if self.lengths is not None:
                np.save(tmp / LENGTHS_FILE, self.lengths)
            self.config.save(tmp / CONFIG_FILE)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, mmap: bool = True) -> BM25Index:
        """Open an index written by `save`; the score matrix is memory-mapped when `mmap`."""
        folder = Path(folder)
        config = BM25Config.load(folder / CONFIG_FILE)
        doc_ids = read_json(folder / DOC_IDS_FILE)
        if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
            raise IndexCorruptError(f"{folder / DOC_IDS_FILE}: expected a list of strings")
        try:
            retriever = bm25s.BM25.load(folder, mmap=mmap, show_progress=False)
        except READ_ERRORS as err:
            raise IndexCorruptError(f"{folder}: cannot load the bm25s index ({err})") from None
        if retriever.scores.get("num_docs") != len(doc_ids):
            raise IndexCorruptError(
                f"{folder}: {len(doc_ids)} doc ids but the bm25s index has "
                f"{retriever.scores.get('num_docs')} documents"
            )
        lengths = None
        if (folder / LENGTHS_FILE).is_file():
            try:
                lengths = np.load(folder / LENGTHS_FILE)
            except READ_ERRORS as err:
                raise IndexCorruptError(f"{folder / LENGTHS_FILE}: unreadable ({err})") from None
            if lengths.shape != (len(doc_ids),) or lengths.dtype.kind not in "iu":
                raise IndexCorruptError(f"{folder / LENGTHS_FILE}: expected {len(doc_ids)} "
                                        f"integer lengths, got {lengths.shape} {lengths.dtype}")
        return cls(retriever, doc_ids, config, lengths)


def _check_doc(item: Any, n: int) -> tuple[str, str]:
    try:
        doc_id, text = item
    except (TypeError, ValueError):
        raise InputError(f"document {n}: expected a (doc_id, text) pair") from None
    if not isinstance(doc_id, str) or not doc_id:
        msg = f"document {n}: id must be a non-empty string, got {doc_id!r}"
        raise InputError(msg, field="doc_id")
    if not isinstance(text, str):
        msg = f"document {n}: text must be a string, got {type(text).__name__}"
        raise InputError(msg, field="text")
    return doc_id, text
