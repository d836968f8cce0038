"""TREC run files (`qid Q0 docid rank score tag`): atomic writing and checked reading."""

from __future__ import annotations

import gzip
import math
import operator
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from latesearch.data._io import (
    ID_RULE,
    Bad,
    PathLike,
    Policy,
    ReadStats,
    as_id,
    check_line,
    id_problem,
    read_lines,
    resolve,
)
from latesearch.errors import InputError

Ranking = Sequence[tuple[str, float]] | Mapping[str, float]
Run = dict[str, dict[str, float]]


def write_trec_run(
    path: PathLike,
    run: Mapping[str, Ranking] | Iterable[tuple[str, str, int, float]],
    tag: str = "latesearch",
) -> int:
    """Write `run` as a TREC run file atomically (temp file, fsync, `os.replace`).

    `run` maps each qid to its `(doc_id, score)` pairs (or a {doc_id: score} mapping),
    ranked here by descending score (stable on ties); or it is a list of
    `(qid, doc_id, rank, score)` rows written as given. A `.gz` path is gzipped. Ids and
    `tag` must be non-empty without whitespace, scores finite, else `InputError`.
    Returns the number of lines written.
    """
    _check_token(tag, "tag")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open(tmp, "wb") as raw:
            out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if target.suffix == ".gz" else raw
            for qid, doc_id, rank, score in _rows(run):
                out.write(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n".encode())
                count += 1
            if out is not raw:
                out.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def read_trec_run(
    path: PathLike, *, on_error: str = "raise", stats: ReadStats | None = None
) -> Run:
    """{qid: {doc_id: score}} of a TREC run file (maybe .gz), in file order.

    Rows must have 6 whitespace-separated columns with an integer rank and a finite score;
    a (qid, doc_id) pair may appear once. Bad rows raise `InputError` (file, line, field),
    or with `on_error="skip"` are counted into `stats`.
    """
    file = resolve(path)
    policy = Policy(file, on_error, stats)
    run: Run = {}
    for lineno, line in read_lines(file):
        try:
            cols = check_line(line).split()
            if len(cols) != 6:
                raise Bad("bad_columns", f"expected 6 columns (qid Q0 docid rank score tag), "
                          f"got {len(cols)}")
            qid, doc_id = as_id(cols[0], "qid"), as_id(cols[2], "doc_id")
            _number(cols[3], "rank", int)
            score = _number(cols[4], "score", float)
            ranking = run.get(qid, {})
            if doc_id in ranking:
                raise Bad("duplicate_id", f"document {doc_id!r} ranked twice for query {qid!r}",
                          "doc_id")
        except Bad as err:
            policy.bad(err, lineno)
            continue
        run.setdefault(qid, ranking)[doc_id] = score
        policy.stats.read += 1
    return run


def _number(value: str, field: str, kind: type) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise Bad("bad_field", f"expected {kind.__name__}, got {value!r}", field) from None
    if not math.isfinite(number):
        raise Bad("bad_field", f"expected a finite number, got {value!r}", field)
    return number


def _check_token(value: object, field: str) -> str:
    if not isinstance(value, str) or id_problem(value) is not None:
        raise InputError(f"must be {ID_RULE}, got {value!r}", field=field)
    return value


def _score(value: object, where: str) -> float:
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score):
        raise InputError(f"{where}: score must be a finite number, got {value!r}", field="score")
    return score


def _rows(run: Mapping[str, Ranking] | Iterable[Any]) -> Iterator[tuple[str, str, int, float]]:
    if isinstance(run, Mapping):
        for qid, ranking in run.items():
            pairs = list(ranking.items() if isinstance(ranking, Mapping) else ranking)
            scored = [(str(doc), _score(score, f"query {qid!r}")) for doc, score in pairs]
            scored.sort(key=lambda pair: -pair[1])
            for rank, (doc_id, score) in enumerate(scored, 1):
                yield _check_token(str(qid), "qid"), _check_token(doc_id, "doc_id"), rank, score
        return
    for row in run:
        if not isinstance(row, Sequence) or len(row) != 4:
            raise InputError(f"expected (qid, doc_id, rank, score) rows, got {row!r}")
        qid, doc_id, rank, score = row
        try:
            rank = operator.index(rank)
        except TypeError:
            raise InputError(f"rank must be an integer, got {rank!r}", field="rank") from None
        score = _score(score, f"query {qid!r}")
        yield _check_token(str(qid), "qid"), _check_token(str(doc_id), "doc_id"), rank, score
