"""`latesearch search`: one query (a ranked table, or JSON), or a query file to a TREC run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from latesearch.cli._options import add_search_options, open_index, search_request
from latesearch.errors import InputError
from latesearch.search.modes import mode_names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search an index (end-to-end, BM25 re-ranking, or exhaustive)",
        description="Search INDEX_DIR for QUERY, or for every query of --queries (TSV, BEIR "
        "JSONL or TREC topics) writing a TREC run to --output. INDEX_DIR may be a server's "
        "URL (http://host:8893, `latesearch serve`): the same search, asked over HTTP.",
    )
    parser.add_argument("index_dir", help="index folder (from `latesearch index`), or a "
                        "server's URL")  # fmt: skip
    parser.add_argument("query", nargs="?", default=None, help="query text")
    parser.add_argument("-k", type=int, default=10, help="results per query (10)")
    parser.add_argument("--mode", choices=mode_names(), default="e2e", help="candidates (e2e)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--show-text", action="store_true", help="show titles and texts")
    parser.add_argument("--show-metadata", action="store_true", help="show documents' metadata")
    parser.add_argument("--explain", action="store_true", help="show each hit's text with the "
                        "words that carry its score highlighted, and which query tokens they "
                        "matched (with --json: the full explanation)")  # fmt: skip
    parser.add_argument("--queries", default=None, help="query file for batch search")
    parser.add_argument("--output", default="-", help="TREC run file for --queries (stdout)")
    parser.add_argument("--run-tag", default="latesearch", help="TREC run tag")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip bad query rows")
    parser.add_argument("--api-key", default=None, help="a server's API key (default: "
                        "$LATESEARCH_API_KEY), where its rate limit counts by key")  # fmt: skip
    add_search_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.queries is None):
        raise InputError("give either a QUERY or --queries FILE", field="query")
    # checked before the model loads
    request = search_request(args, return_text=args.show_text, explain=args.explain,
                             return_metadata=args.show_metadata)  # fmt: skip
    if args.queries is not None:
        queries, stats = _read_queries(args)  # before the model loads (seconds)
        index = _target(args)
        return _batch(index, args, request, queries, stats)
    index = _target(args)
    hits = index.search(args.query, request=request)
    if args.json:
        last = getattr(index, "last_timings", None)
        timings = (last if isinstance(last, dict) else last.to_dict()) if last else {}
        out = {"query": args.query, "mode": args.mode, "hits": hits.to_dicts(),
               "timings": timings}  # fmt: skip
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        _print_table(args.query, hits, args.show_text and not args.explain, args.show_metadata)
        if args.explain:
            _print_explained(hits, "ansi" if sys.stdout.isatty() else "plain")
    return 0


def _target(args: argparse.Namespace) -> Any:
    """The index to search: a `Client` of the server at a URL, else the folder's index."""
    if not args.index_dir.startswith(("http://", "https://")):
        return open_index(args.index_dir, args)
    local = {"--model": args.model, "--ray": args.ray, "--device": args.device,
             "--backend": args.backend != "torch"}  # fmt: skip
    for flag, given in local.items():
        if given:
            raise InputError(f"{flag} sets how a local index searches; the server at "
                             f"{args.index_dir} chooses its own", field=flag)  # fmt: skip
    from latesearch.client import Client

    return Client(args.index_dir, api_key=args.api_key)


def _read_queries(args: argparse.Namespace) -> tuple[dict[str, str], Any]:
    from latesearch.data import ReadStats, read_queries

    stats = ReadStats()
    on_error = "skip" if args.skip_bad_rows else "raise"
    queries = read_queries(args.queries, on_error=on_error, stats=stats)
    if not queries:
        raise InputError("no queries to search", path=args.queries)
    return queries, stats


def _batch(index: Any, args: argparse.Namespace, request: Any,
           queries: dict[str, str], stats: Any) -> int:  # fmt: skip
    from tqdm.auto import tqdm

    from latesearch.data import write_trec_run

    qids = list(queries)
    rows: list[tuple[str, str, int, float]] = []
    bar = tqdm(total=len(qids), unit="query", disable=args.quiet, desc=f"search ({args.mode})")
    for start in range(0, len(qids), args.batch_size):
        part = qids[start : start + args.batch_size]
        results = index.search([queries[q] for q in part], request=request)
        for qid, hits in zip(part, results, strict=True):
            rows.extend((qid, h.doc_id, h.rank, h.score) for h in hits)
        bar.update(len(part))
    bar.close()
    if args.output == "-":
        for qid, doc_id, rank, score in rows:
            print(f"{qid} Q0 {doc_id} {rank} {score!r} {args.run_tag}")
    else:
        write_trec_run(args.output, rows, tag=args.run_tag)
        print(f"{len(rows)} lines for {len(qids)} queries written to {args.output}",
              file=sys.stderr)  # fmt: skip
    skipped = sum(getattr(stats, "skipped", {}).values()) if args.skip_bad_rows else 0
    if skipped:
        print(f"skipped {skipped} bad query rows: {dict(stats.skipped)}", file=sys.stderr)
    return 0


def _print_table(query: str, hits: Any, show_text: bool, show_metadata: bool = False) -> None:
    print(f"query: {query}")
    if not hits:
        print("(no results)")
    for hit in hits:
        line = f"{hit.rank:>4}  {hit.score:9.4f}  {hit.doc_id}"
        if hit.relevance is not None:
            line = f"{hit.rank:>4}  {hit.score:9.4f}  p={hit.relevance:.2f}  {hit.doc_id}"
        if show_text:
            snippet = " ".join(f"{hit.title or ''} {hit.text or ''}".split())
            line += f"  {snippet[:100]}{'…' if len(snippet) > 100 else ''}"
        if show_metadata:
            line += f"  {json.dumps(hit.metadata or {}, ensure_ascii=False)}"
        print(line)


def _print_explained(hits: Any, style: str, *, matches: int = 6) -> None:
    """Each hit's title and text with its highlights, and the query tokens carrying most of
    its score with the words they matched."""
    for hit in hits:
        explanation = hit.explanation
        print(f"\n#{hit.rank} {hit.doc_id}  score {hit.score:.4f}"
              + (f" ({hit.bounded_score:.3f} per query token)" if hit.bounded_score else "")
              + (f", relevance {hit.relevance:.2f} ({hit.calibration} calibration)"
                 if hit.relevance is not None else "")
              + ("" if explanation.exact else "  [from compressed vectors]"))  # fmt: skip
        if hit.title:
            print("  " + hit.render_highlights("title", style))
        print("  " + " ".join(hit.render_highlights("text", style).split()))
        best = sorted((m for m in explanation.matches if m.field is not None),
                      key=lambda m: -m.similarity)[:matches]  # fmt: skip
        fields = {"title": hit.title or "", "text": hit.text or ""}
        why = [f"{m.query_token}->{fields[m.field][m.start : m.end]!r} {m.share:.0%}"
               for m in best]  # fmt: skip
        print("  why: " + ", ".join(why))
