"""Run a search function over a query set: a run ({qid: {docid: score}}) plus timings."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

SearchFn = Callable[[list[str]], Sequence[Sequence[tuple[str, float]]]]


@dataclass
class RunResult:
    """A run and the wall time spent producing it (batched, so a throughput figure)."""

    run: dict[str, dict[str, float]]
    seconds: float
    n_queries: int

    @property
    def ms_per_query(self) -> float:
        return 1000.0 * self.seconds / max(self.n_queries, 1)


def run_queries(
    search: SearchFn,
    queries: Mapping[str, str],
    *,
    batch_size: int = 64,
    progress: bool = False,
    desc: str = "search",
) -> RunResult:
    """Call `search(texts)` (-> per text, (doc_id, score) pairs best first) on batches of
    `queries`; the run keeps each query's ranking."""
    from tqdm.auto import tqdm

    qids = list(queries)
    run: dict[str, dict[str, float]] = {}
    bar = tqdm(total=len(qids), unit="query", disable=not progress, desc=desc)
    started = time.perf_counter()
    for start in range(0, len(qids), batch_size):
        part = qids[start : start + batch_size]
        results = search([queries[q] for q in part])
        for qid, ranking in zip(part, results, strict=True):
            run[qid] = {doc_id: float(score) for doc_id, score in ranking}
        bar.update(len(part))
    seconds = time.perf_counter() - started
    bar.close()
    return RunResult(run, seconds, len(qids))


def latency_ms(search: SearchFn, texts: Sequence[str], *, warmup: int = 2) -> dict[str, float]:
    """Per-query latency (one query per call, as the paper measures it): mean, median and
    95th percentile in milliseconds over `texts`, after `warmup` untimed calls."""
    for text in list(texts)[:warmup]:
        search([text])
    times = []
    for text in texts:
        started = time.perf_counter()
        search([text])
        times.append(1000.0 * (time.perf_counter() - started))
    if not times:
        return {"mean": float("nan"), "median": float("nan"), "p95": float("nan"), "n": 0}
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"mean": statistics.fmean(times), "median": statistics.median(times), "p95": p95,
            "n": len(times)}  # fmt: skip
