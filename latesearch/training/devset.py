"""Dev-set evaluation during training: exact MaxSim of every dev query against every dev
document (fine for a dev collection of a few thousand documents), nDCG@10 and MRR@10; over
several dev sets (NanoBEIR-style BEIR folders), each set's figures and their mean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from latesearch.data import load_beir, read_qrels, read_queries
from latesearch.scoring import maxsim, pad_documents
from latesearch.training.config import DEV_AVERAGES, DEV_METRICS, TrainConfig
from latesearch.training.data import load_texts
from latesearch.training.runtime import evaluation_mode

METRICS = DEV_METRICS


def query_group(qid: str) -> str:
    """A query's group: the part of its id before the first ':' ('' without one)."""
    return qid.partition(":")[0] if ":" in qid else ""


@dataclass
class DevSet:
    """Judged queries, their judgements, and the documents to rank."""

    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    documents: dict[str, str]
    primary: str = METRICS[0]

    @classmethod
    def load(cls, queries: str, qrels: str, collection: str) -> DevSet:
        judged = read_qrels(qrels)
        texts = read_queries(queries)
        return cls(
            {q: texts[q] for q in judged if q in texts}, judged, load_texts(collection, "raise")
        )

    @classmethod
    def load_beir(cls, folder: str, split: str = "test") -> DevSet:
        """The judged queries of a BEIR folder's `split` against its corpus."""
        corpus, queries, qrels = load_beir(folder, split)
        return cls(queries, qrels, load_texts(str(corpus), "raise"))

    def run(self, model, *, k: int = 100, doc_chunk: int = 512) -> dict[str, dict[str, float]]:
        """Top-`k` {qid: {doc_id: score}} by exact MaxSim; each document encoded once."""
        with evaluation_mode(model), torch.inference_mode():
            Q = model.encode_queries(list(self.queries.values()))
            embedded = model.encode_documents(list(self.documents.values()))
        return self.rank(Q, embedded, similarity=model.config.similarity, k=k, doc_chunk=doc_chunk)

    @torch.inference_mode()
    def rank(
        self,
        Q: torch.Tensor,
        embedded: Sequence[torch.Tensor],
        *,
        similarity: str = "cosine",
        k: int = 100,
        doc_chunk: int = 512,
    ) -> dict[str, dict[str, float]]:
        """Top-`k` run from embeddings already computed: `Q` in the order of `queries`,
        `embedded` (one tensor per document) in the order of `documents`."""
        scores = self.score_matrix(Q, embedded, similarity=similarity, doc_chunk=doc_chunk)
        return self.top_k(scores, k)

    @torch.inference_mode()
    def score_matrix(
        self,
        Q: torch.Tensor,
        embedded: Sequence[torch.Tensor],
        *,
        similarity: str = "cosine",
        doc_chunk: int = 512,
    ) -> torch.Tensor:
        """(queries x documents) exact MaxSim, rows and columns in the order of `queries`
        and `documents`."""
        if len(Q) != len(self.queries) or len(embedded) != len(self.documents):
            raise ValueError(
                f"expected {len(self.queries)} queries and {len(self.documents)} documents, "
                f"got {len(Q)} and {len(embedded)}"
            )
        scores = torch.empty(len(self.queries), len(self.documents))
        for start in range(0, len(self.documents), doc_chunk):
            D, mask = pad_documents(embedded[start : start + doc_chunk])
            scores[:, start : start + D.shape[0]] = maxsim(Q, D, mask, similarity=similarity)
        return scores

    def top_k(self, scores: torch.Tensor, k: int = 100) -> dict[str, dict[str, float]]:
        """{qid: {doc_id: score}} of the `k` best columns of a (queries x documents) matrix
        (MaxSim or any other score), best first."""
        qids, doc_ids = list(self.queries), list(self.documents)
        if tuple(scores.shape) != (len(qids), len(doc_ids)):
            raise ValueError(
                f"expected a {len(qids)} x {len(doc_ids)} score matrix, got {tuple(scores.shape)}"
            )
        top = scores.topk(min(k, len(doc_ids)), dim=1)
        return {
            qid: {doc_ids[j]: float(s) for s, j in zip(vals.tolist(), idx.tolist(), strict=True)}
            for qid, vals, idx in zip(qids, top.values, top.indices, strict=True)
        }

    def evaluate(
        self,
        model,
        qrels: Mapping[str, Mapping[str, int]] | None = None,
        *,
        average: str = "pooled",
    ) -> dict[str, float]:
        """{metric: mean} over the judged queries (or those of `qrels`); see `measure`."""
        return self.measure(self.run(model), qrels or self.qrels, average=average)

    @staticmethod
    def measure(
        run: Mapping[str, Mapping[str, float]],
        qrels: Mapping[str, Mapping[str, int]],
        *,
        average: str = "pooled",
    ) -> dict[str, float]:
        """{metric: mean} of `run`. 'pooled': over all judged queries. 'groups': the mean
        of each group's mean (groups by id prefix, `query_group`), so a domain with many
        queries does not outweigh the others; each group's figure is added as
        'metric/group'."""
        from latesearch.evaluation.metrics import evaluate_run

        if average not in DEV_AVERAGES:
            raise ValueError(f"average must be one of {DEV_AVERAGES}, got {average!r}")
        if average == "pooled":
            return dict(evaluate_run(run, qrels, list(METRICS)).aggregate)
        groups: dict[str, dict[str, Mapping[str, int]]] = {}
        for qid, judged in qrels.items():
            groups.setdefault(query_group(qid), {})[qid] = judged
        per_group = {
            group: evaluate_run(
                {q: run.get(q, {}) for q in judged}, judged, list(METRICS)
            ).aggregate
            for group, judged in sorted(groups.items())
        }
        found = {m: sum(g[m] for g in per_group.values()) / len(per_group) for m in METRICS}
        for group, scores in per_group.items():
            found.update({f"{m}/{group}": scores[m] for m in METRICS})
        return found


@dataclass
class DevSuite:
    """Named dev sets evaluated together: with one set its metrics; with several, each
    set's as 'metric/name' and, as 'metric', their mean (each set counts once, as in
    NanoBEIR's mean)."""

    sets: list[tuple[str, DevSet]]

    @classmethod
    def load(cls, config: TrainConfig) -> DevSuite:
        """The dev sets a TrainConfig names: 'dev' (the dev_* files), then each of
        `dev_beir` by its folder's name."""
        sets = []
        if config.dev_queries is not None:
            dev = DevSet.load(config.dev_queries, config.dev_qrels, config.dev_collection)
            sets.append(("dev", dev))
        for folder in config.dev_beir:
            base = Path(folder).name or "beir"
            name, i = base, 1
            while name in {n for n, _ in sets}:
                i += 1
                name = f"{base}-{i}"
            sets.append((name, DevSet.load_beir(folder, config.dev_split)))
        return cls(sets)

    def evaluate(self, model, *, average: str = "pooled") -> dict[str, float]:
        """{metric: value}; see the class."""
        if len(self.sets) == 1:
            return self.sets[0][1].evaluate(model, average=average)
        per_set = {name: dev.evaluate(model, average=average) for name, dev in self.sets}
        found = {m: sum(f[m] for f in per_set.values()) / len(per_set) for m in METRICS}
        for name, figures in per_set.items():
            found.update({f"{m}/{name}": figures[m] for m in METRICS})
        return found
