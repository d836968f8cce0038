"""`latesearch demo`: index the embedded demo collection, search it, score the demo queries.

The collection (a few hundred Python standard-library docstrings, PSF license) ships in
`latesearch/resources/demo/`; everything runs offline with the default model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import resources
from pathlib import Path

EXAMPLE_QUERIES = 3
METRICS = ("MRR@10", "nDCG@10", "R@10")


def demo_files() -> dict[str, Path]:
    """Paths of the embedded demo collection, queries and judgements."""
    root = Path(str(resources.files("latesearch") / "resources" / "demo"))
    return {
        "collection": root / "collection.jsonl",
        "queries": root / "queries.tsv",
        "qrels": root / "qrels.txt",
    }


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="index the embedded demo collection and search it (offline)",
        description="Index the embedded demo collection (Python standard-library "
        "docstrings) with the default model (or --model), show the top results of a few "
        "queries, and score all demo queries (MRR@10, nDCG@10, R@10).",
    )
    parser.add_argument("--model", default=None, help="checkpoint folder (default: built-in)")
    parser.add_argument("--index-dir", default=None, help="keep the index here (default: temp)")
    parser.add_argument("--mode", default="e2e", choices=("e2e", "rerank", "exact"))
    parser.add_argument("-k", type=int, default=5, help="results shown per query (5)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.index_dir is not None:
        return _run(args, Path(args.index_dir))
    with tempfile.TemporaryDirectory(prefix="latesearch-demo-") as tmp:
        return _run(args, Path(tmp) / "index")


def _run(args: argparse.Namespace, folder: Path) -> int:
    from latesearch.data import read_qrels, read_queries
    from latesearch.evaluation import evaluate_run, format_table
    from latesearch.index import Index
    from latesearch.modeling import ColBERT

    files = demo_files()
    model = ColBERT.from_pretrained(args.model, device=args.device)
    print(f"model: {model.source}")
    start = time.perf_counter()
    index = Index.build(
        files["collection"], folder, model, bm25=True, overwrite=True,
        progress=not args.quiet, device=args.device,
    )  # fmt: skip
    print(f"indexed {len(index)} documents in {time.perf_counter() - start:.1f} s -> {folder}")

    queries = dict(read_queries(files["queries"]))
    qids = list(queries)
    start = time.perf_counter()
    results = index.search([queries[q] for q in qids], k=100, mode=args.mode, return_text=True)
    per_query_ms = 1000 * (time.perf_counter() - start) / len(qids)

    for qid in qids[:EXAMPLE_QUERIES]:
        print(f"\nquery {qid}: {queries[qid]}")
        for hit in results[qids.index(qid)][: args.k]:
            snippet = (hit.text or "").replace("\n", " ")[:70]
            p = "" if hit.relevance is None else f"  p={hit.relevance:.2f}"  # calibrated
            print(f"  {hit.rank:>2}  {hit.score:7.3f}{p}  {hit.doc_id:<34} {snippet}")

    qrels = read_qrels(files["qrels"])
    bm25 = index.searcher.bm25.search([queries[q] for q in qids], 100)
    runs = {
        f"latesearch ({args.mode})": [{h.doc_id: h.score for h in hits} for hits in results],
        "BM25 (bm25s)": [dict(hits) for hits in bm25],
    }
    rows = [
        evaluate_run(dict(zip(qids, ranked, strict=True)), qrels, METRICS).row(method=name)
        for name, ranked in runs.items()
    ]
    print(f"\n{len(qids)} demo queries, {per_query_ms:.0f} ms/query ({args.mode})")
    print(format_table(rows))
    return 0
