"""A deterministic, resumable stream of training examples.

Sources: text triples (TSV or JSONL records), id triples (JSONL/TSV ids + queries +
collection), or qrels with mined negatives. Examples are numbered from 0 over endless
epochs; a run's position is the number of examples consumed (``step * batch_size``), and
`TrainingStream.batches(start)` continues from any position: file sources re-read (not
keep) the skipped rows, the qrels source jumps there directly. Triples files are read in
file order each epoch; qrels pairs are shuffled per epoch and negatives sampled per
example, all from the run's seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from latesearch.data import ReadStats, read_collection, read_id_triples, read_qrels, read_queries
from latesearch.data import read_text_triples as _read_text
from latesearch.errors import InputError
from latesearch.training.config import TrainConfig


@dataclass
class Example:
    """A query with its documents ``[positive, *negatives]`` (and teacher scores of them)."""

    query: str
    documents: list[str]
    teacher: list[float] | None = None


@dataclass
class MicroBatch:
    """One forward pass: queries, their documents grouped per query, teacher scores."""

    queries: list[str]
    documents: list[str]
    teacher: torch.Tensor | None


class SkipCounter:
    """Bad rows seen while reading (the largest count over epochs, so re-reads don't add)."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, int] = {}

    def set(self, epoch: int, count: int) -> None:
        self.by_epoch[epoch] = count

    @property
    def total(self) -> int:
        return max(self.by_epoch.values(), default=0)


class TriplesSource:
    """Text or id triples, in file order; rows with too few negatives are bad rows."""

    def __init__(
        self,
        path: str,
        negatives: int,
        on_error: str,
        *,
        queries: Mapping[str, str] | None = None,
        collection: Mapping[str, str] | None = None,
        need_scores: bool = False,
    ) -> None:
        self.path, self.negatives, self.on_error = path, negatives, on_error
        self.queries, self.collection, self.need_scores = queries, collection, need_scores
        self.length: int | None = None
        self.skipped = SkipCounter()

    def _read(self, stats: ReadStats):
        if self.queries is None:
            return _read_text(self.path, on_error=self.on_error, stats=stats)
        return read_id_triples(
            self.path, self.queries, self.collection or {}, on_error=self.on_error, stats=stats
        )

    def epoch(self, epoch: int, skip: int) -> Iterator[Example]:
        stats, count, own_skips = ReadStats(), 0, 0
        for triple in self._read(stats):
            line = stats.read + stats.total_skipped  # every line is read or skipped
            problem = None
            if len(triple.negatives) < self.negatives:
                problem = (
                    "negatives",
                    f"{len(triple.negatives)} negatives, "
                    f"negatives_per_query={self.negatives} needed",
                )
            elif self.need_scores and triple.scores is None:
                problem = ("scores", "no teacher scores (distill_from='triples')")
            if problem is not None:
                if self.on_error == "raise":
                    raise InputError(problem[1], path=self.path, line=line, field=problem[0])
                own_skips += 1
                continue
            self.skipped.set(epoch, stats.total_skipped + own_skips)  # before yielding
            count += 1
            if count > skip:
                k = self.negatives
                scores = triple.scores[: k + 1] if triple.scores is not None else None
                yield Example(triple.query, [triple.positive, *triple.negatives[:k]], scores)
        self.skipped.set(epoch, stats.total_skipped + own_skips)
        self.length = count


class QrelsSource:
    """(query, positive) pairs of qrels, shuffled per epoch, with `negatives` sampled per
    example from the query's mined list (topped up with random documents if short)."""

    def __init__(
        self,
        pairs: list[tuple[str, str]],
        queries: Mapping[str, str],
        collection: Mapping[str, str],
        mined: Mapping[str, list[str]],
        positives: Mapping[str, set[str]],
        negatives: int,
        seed: int,
    ) -> None:
        self.pairs, self.queries, self.collection = pairs, queries, collection
        self.mined, self.positives, self.negatives, self.seed = mined, positives, negatives, seed
        self.length: int | None = len(pairs)
        self.skipped = SkipCounter()
        self._doc_ids = list(collection) if negatives else []

    def epoch(self, epoch: int, skip: int) -> Iterator[Example]:
        order = list(range(len(self.pairs)))
        random.Random(f"{self.seed}/epoch/{epoch}").shuffle(order)
        for i in range(skip, len(order)):
            qid, pid = self.pairs[order[i]]
            rng = random.Random(f"{self.seed}/{epoch}/{i}")
            negs = self._sample(qid, rng)
            yield Example(
                self.queries[qid], [self.collection[pid]] + [self.collection[n] for n in negs]
            )

    def _sample(self, qid: str, rng: random.Random) -> list[str]:
        k, pool = self.negatives, self.mined.get(qid, [])
        if len(pool) >= k:
            return rng.sample(pool, k)
        chosen, taken = list(pool), set(pool) | self.positives[qid]
        while len(chosen) < k and len(taken) < len(self._doc_ids):
            pid = self._doc_ids[rng.randrange(len(self._doc_ids))]
            if pid not in taken:
                chosen.append(pid)
                taken.add(pid)
        if len(chosen) < k:
            raise InputError(f"the collection has too few documents for {k} negatives")
        return chosen


class TrainingStream:
    """Cuts the example sequence into optimizer steps of `batch_size` examples; this rank
    keeps micro-batches ``a * world_size + rank`` (a < grad_accum) of every step."""

    def __init__(
        self,
        source: TriplesSource | QrelsSource,
        *,
        batch_size: int,
        grad_accum: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.source, self.batch_size, self.grad_accum = source, batch_size, grad_accum
        self.rank, self.world_size = rank, world_size
        self.micro_size = batch_size // (grad_accum * world_size)

    @property
    def skipped(self) -> int:
        return self.source.skipped.total

    def examples(self, start: int = 0) -> Iterator[Example]:
        """Examples from position `start` on, over endless epochs."""
        epoch, skip = 0, start
        while True:
            length = self.source.length
            if length is not None and length > 0 and skip >= length:
                epoch, skip = epoch + 1, skip - length
                continue
            yield from self.source.epoch(epoch, skip)
            if not self.source.length:
                raise InputError("no usable training examples", path=_name(self.source))
            epoch, skip = epoch + 1, max(0, skip - self.source.length)

    def batches(self, start: int = 0) -> Iterator[list[MicroBatch]]:
        """This rank's micro-batches of each step, from example position `start`."""
        stream = self.examples(start)
        b = self.micro_size
        while True:
            step = [next(stream) for _ in range(self.batch_size)]
            yield [
                _micro(step[(a * self.world_size + self.rank) * b :][:b])
                for a in range(self.grad_accum)
            ]


def _micro(examples: list[Example]) -> MicroBatch:
    teacher = None
    if examples and all(e.teacher is not None for e in examples):
        teacher = torch.tensor([e.teacher for e in examples], dtype=torch.float32)
    return MicroBatch(
        [e.query for e in examples], [d for e in examples for d in e.documents], teacher
    )


def _name(source: TriplesSource | QrelsSource) -> str | None:
    return getattr(source, "path", None)


def load_texts(path: str, on_error: str) -> dict[str, str]:
    """A collection as {doc_id: title + text} (the whole collection, in memory)."""
    return {doc.doc_id: doc.full_text() for doc in read_collection(path, on_error=on_error)}


def build_stream(
    config: TrainConfig, output: Path, *, rank: int = 0, world_size: int = 1, runtime=None
) -> TrainingStream:
    """The training stream `config` describes (mining negatives into `output` if asked)."""
    k = config.negatives_per_query
    fmt = config.triples_format_resolved()
    need_scores = config.distill_from == "triples"
    if fmt == "text":
        source: TriplesSource | QrelsSource = TriplesSource(
            config.triples, k, config.on_error, need_scores=need_scores
        )
    elif fmt == "ids":
        source = TriplesSource(
            config.triples,
            k,
            config.on_error,
            queries=read_queries(config.queries, on_error=config.on_error),
            collection=load_texts(config.collection, config.on_error),
            need_scores=need_scores,
        )
    else:
        source = qrels_source(config, output, runtime)
    return TrainingStream(
        source,
        batch_size=config.batch_size,
        grad_accum=config.grad_accum,
        rank=rank,
        world_size=world_size,
    )


def qrels_source(config: TrainConfig, output: Path, runtime=None) -> QrelsSource:
    """Positive pairs from qrels (relevance > 0) with negatives mined once per run."""
    from latesearch.training import mining

    stats = ReadStats()
    qrels = read_qrels(config.qrels, on_error=config.on_error, stats=stats)
    queries = read_queries(config.queries, on_error=config.on_error, stats=stats)
    collection = load_texts(config.collection, config.on_error)
    positives: dict[str, set[str]] = {}
    skipped = stats.total_skipped
    for qid, judged in sorted(qrels.items()):
        for pid, rel in sorted(judged.items()):
            if rel <= 0:
                continue
            problem = None
            if qid not in queries:
                problem = ("query-id", f"judged query {qid!r} is not in {config.queries}")
            elif pid not in collection:
                problem = ("corpus-id", f"judged document {pid!r} is not in {config.collection}")
            if problem is not None:
                if config.on_error == "raise":
                    raise InputError(problem[1], path=config.qrels, field=problem[0])
                skipped += 1
                continue
            positives.setdefault(qid, set()).add(pid)
    pairs = [(q, p) for q in sorted(positives) for p in sorted(positives[q])]
    if not pairs:
        raise InputError("no usable relevant (query, document) pairs", path=config.qrels)
    mined: dict[str, list[str]] = {}
    if config.negatives_per_query:
        path = output / mining.MINED_FILE
        if (runtime is None or runtime.is_main) and not path.exists():
            mined_queries = {q: queries[q] for q in positives}
            if config.mine_negatives == "bm25":
                mined = mining.mine_bm25(
                    mined_queries, positives, collection.items(), config.mine_depth
                )
            else:
                mined = mining.mine_index(
                    str(config.mine_negatives)[len("index:") :],
                    mined_queries,
                    positives,
                    config.mine_depth,
                )
            mining.save_mined(path, mined)
        if runtime is not None:
            runtime.barrier()
        mined = mining.load_mined(path)
    source = QrelsSource(
        pairs, queries, collection, mined, positives, config.negatives_per_query, config.seed
    )
    source.skipped.set(0, skipped)
    return source
