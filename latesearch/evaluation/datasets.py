"""Evaluation sets: queries plus judgements from a BEIR folder or separate files, optionally
restricted to a query subset (an id list, or the queries "novel" to training judgements)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from latesearch.data import load_beir, read_qrels, read_queries
from latesearch.data._io import find_file
from latesearch.errors import InputError
from latesearch.evaluation.subsets import novel_queries, read_query_ids, restrict

Qrels = dict[str, dict[str, int]]
PathArg = str | os.PathLike


@dataclass
class EvalSet:
    """Judged queries to evaluate. `n_unjudged` counts the queries read that have no
    judgement (skipped, never searched); `notes` says what was left out and why."""

    queries: dict[str, str]
    qrels: Qrels
    name: str
    n_unjudged: int = 0
    notes: list[str] = field(default_factory=list)

    def subset(self, qids: set[str], label: str) -> EvalSet:
        """The same set restricted to `qids` (queries and judgements), named `name[label]`."""
        queries, qrels = restrict(self.queries, qids), restrict(self.qrels, qids)
        dropped = len(self.qrels) - len(qrels)
        note = f"subset {label}: {len(qrels)} judged queries kept, {dropped} left out"
        notes = [*self.notes, note]
        return EvalSet(queries, qrels, f"{self.name}[{label}]", self.n_unjudged, notes)


def load_eval_set(
    queries: PathArg,
    qrels: PathArg | None = None,
    *,
    split: str = "test",
    topic_field: str = "title",
) -> EvalSet:
    """Queries and judgements. `queries` is a BEIR folder (queries.jsonl + qrels/<split>.tsv;
    `qrels` then optional and overriding the folder's) or a query file (TSV, BEIR JSONL or
    TREC topics; `qrels` required: TREC, BEIR TSV or `qid<TAB>docid` lists). Queries without
    any judgement are dropped and counted in `n_unjudged`."""
    source = Path(queries)
    if source.is_dir() and qrels is None:
        _, split_queries, split_qrels = load_beir(source, split)
        return EvalSet(split_queries, split_qrels, f"{source.name}/{split}")
    if source.is_dir():
        all_queries = read_queries(find_file(source, "queries.jsonl"))
        judgements = read_qrels(qrels)
        name = f"{source.name}/{Path(qrels).stem}"
    else:
        if qrels is None:
            raise InputError("--qrels is needed unless the queries are a BEIR folder",
                             field="qrels")  # fmt: skip
        all_queries = read_queries(source, topic_field=topic_field)
        judgements = read_qrels(qrels)
        name = f"{source.parent.name}/{source.stem}" if source.parent.name else source.stem
    judged = {q: docs for q, docs in judgements.items() if docs}
    kept = restrict(all_queries, judged)
    n_unjudged = len(all_queries) - len(kept)
    notes = []
    if n_unjudged:
        notes.append(f"skipped {n_unjudged} queries without judgements")
    missing = [q for q in judged if q not in all_queries]
    if missing:
        notes.append(f"{len(missing)} judged queries have no query text (first: {missing[0]!r})")
    return EvalSet(kept, restrict(judged, kept), name, n_unjudged, notes)


def restrict_eval_set(
    data: EvalSet,
    *,
    query_ids: PathArg | None = None,
    exclude_train_qrels: PathArg | None = None,
) -> EvalSet:
    """`data` restricted to the ids listed in `query_ids`, and/or to the queries none of whose
    relevant documents is relevant in `exclude_train_qrels` (SciFact-novel)."""
    if query_ids is not None:
        data = data.subset(read_query_ids(query_ids), Path(query_ids).name)
    if exclude_train_qrels is not None:
        data = data.subset(novel_queries(data.qrels, read_qrels(exclude_train_qrels)), "novel")
    return data
