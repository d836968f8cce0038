"""Bits x token pooling of the compressed index (no fp16 tier): fidelity, quality, size,
build and search speed, and the default they give by a rule fixed before measuring.

    python benchmarks/pooling.py [--data ../shared/data] [--collections scifact vaswani] \
        [--nbits 2 4] [--factors 1 2 3 4] [--model CKPT] [--search-threads 1] [--max-docs N] \
        [--keep-measured]

Decision rule, written before measuring: among the combinations of nbits (1, 2, 4) and
pool factor (1, 2, 3, 4), without the fp16 tier, whose index proper is at most 40 bytes
per text token, keep those whose engine nDCG@10 is within 0.01 of exhaustive MaxSim's on
both SciFact and Vaswani, and pick the one with the highest engine overlap@10 with
exhaustive MaxSim (the mean of the two collections, compared at three decimals); ties go
to the smaller index (mean bytes per text token). None kept: the rule picks nothing.

The reference is exhaustive fp32 MaxSim over the unpooled vectors: mode "exact" on the
collection's uncompressed fp16 index (.work/eval/pooling/<name>-<fingerprint[:12]>-
<compute dtype>-base, encoded once per model and reused; never re-encoded). Each (nbits, f)
index is made from it by `compress_index(..., pool_factor=f, keep_full=False)`, which writes
what a build with those settings writes for the same vectors, so encoding is paid once.
Combinations whose residuals alone pass the budget (dim * nbits / 8 / f bytes a text token)
are skipped. Measured per (collection, nbits, f), every query of the test set:

- engine: mode "e2e" at its defaults (`EngineParams.for_k`): overlap@10 with the reference
  and nDCG@10 at k=10, R@100 at k=100; search ms (median and p95, one query per call,
  queries encoded once beforehand so encoding is excluded) at k=10 and k=100;
- codes: mode "exact" on the compressed index (every document scored from its decompressed
  codes): overlap@10 and nDCG@10, the ceiling the codes put on any search of them;
- size: vectors stored, and bytes per text token: the index folder less docs.sqlite and
  the span files, over the documents' original tokens (span files reported apart);
- build docs/s: documents over (the base build's encoding seconds + this pooling and
  compression's seconds), both parts reported; the load average after each row.

Writes benchmarks/results/pooling-cpu.json and .md (the default model), or
pooling-<checkpoint>-cpu.* for `--model` (the checkpoint's folder name, or its parent's
when it is called "final"); collections not run this time are kept from the previous file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    WORK,
    collection,
    command,
    load_average,
    load_model,
    model_label,
    parser,
    setup,
    summary_ms,
    write_results,
)
from _machine import describe, machine_info  # noqa: E402

MAX_BYTES = 40.0  # the budget: bytes of the index proper per text token
TOLERANCE = 0.01  # the rule's nDCG@10 margin to exhaustive MaxSim
SPAN_SUFFIXES = (".spans.npy", ".textlens.npy")


def base_index(coll: Any, model: Any, compute_dtype: str | None, max_docs: int | None) -> Any:
    """The collection's unpooled uncompressed fp16 index, built once per model (and cut)."""
    from latesearch.indexing import IndexConfig, IndexStore, build_index

    name = f"{coll.name}-{model.fingerprint()[:12]}-{compute_dtype or 'float32'}-base"
    if max_docs:
        name = f"{coll.name}-{max_docs}docs-{model.fingerprint()[:12]}-" \
               f"{compute_dtype or 'float32'}-base"  # fmt: skip
    folder = WORK / "pooling" / name
    if (folder / "manifest.json").is_file():
        store = IndexStore.open(folder)
        if Path(store.manifest.collection.get("path", "")).resolve() == coll.corpus.resolve():
            return store
        store.close()
        raise SystemExit(f"{folder} holds another corpus than {coll.corpus}: not overwritten")
    print(f"encoding {coll.name} once into {folder} ...", flush=True)
    config = IndexConfig().replace(nbits=None, pool_factor=1, compute_dtype=compute_dtype)
    return build_index(coll.corpus, folder, model, config)


def cut(coll: Any, eval_set: Any, max_queries: int | None, max_docs: int | None):
    """(collection, eval set) cut to the first `max_queries` judged queries and to every
    document judged for them plus the collection's first others, `max_docs` in all (for a
    machine too busy for the whole collection: scores are then not the collection's)."""
    from latesearch.data import read_collection

    if max_queries:
        eval_set = eval_set.subset(set(list(eval_set.queries)[:max_queries]), "cut")
    if not max_docs:
        return coll, eval_set
    judged = {d for q in eval_set.queries for d in eval_set.qrels.get(q, {})}
    path = WORK / "pooling" / f"{coll.name}-{len(eval_set.queries)}q-{max_docs}docs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, others = [], max_docs - len(judged)
    for doc in read_collection(coll.corpus):
        if doc.doc_id in judged or others > 0:
            others -= doc.doc_id not in judged
            rows.append(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}))
    if not path.is_file() or path.read_text(encoding="utf-8") != "\n".join(rows) + "\n":
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    coll = type(coll)(coll.name, path, coll.queries, coll.qrels, coll.train_qrels)
    return coll, eval_set


def sizes(folder: Path) -> tuple[int, int]:
    """(bytes of the index proper, bytes of the span files) of an index folder."""
    core = spans = 0
    for path in folder.rglob("*"):
        if not path.is_file() or path.name == "docs.sqlite":
            continue
        if path.name.endswith(SPAN_SUFFIXES):
            spans += path.stat().st_size
        else:
            core += path.stat().st_size
    return core, spans


def over_budget(dim: int, nbits: int, factor: int) -> bool:
    """True when the residuals alone pass MAX_BYTES a text token."""
    return dim * nbits / 8 / factor > MAX_BYTES


class Queries:
    """A test set's queries, encoded once, searched by any index of the same model."""

    def __init__(self, model: Any, eval_set: Any, threads: int) -> None:
        self.threads = threads  # torch threads of the timed searches
        self.ids = list(eval_set.queries)
        self.texts = [eval_set.queries[q] for q in self.ids]
        self.qrels = eval_set.qrels
        self.encoded = model.encode_queries(self.texts, return_mask=True)

    def one(self, i: int) -> tuple[Any, Any]:
        return tuple(t[i : i + 1] for t in self.encoded)

    def run_all(self, index: Any, k: int, mode: str) -> dict[str, dict[str, float]]:
        """Every query at once (one pass over the index for "exact")."""
        hits = index.search(self.texts, k=k, mode=mode, encoded=self.encoded,
                            batch_size=len(self.texts))  # fmt: skip
        return {q: {h.doc_id: h.score for h in ranked}
                for q, ranked in zip(self.ids, hits, strict=True)}  # fmt: skip

    def run_timed(self, index: Any, k: int, mode: str) -> tuple[dict, dict[str, float]]:
        """Every query, one per call (after 2 warm-up calls) on `threads` torch threads:
        (run, latency summary)."""
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for i in range(min(2, len(self.ids))):
                index.search(self.texts[i], k=k, mode=mode, encoded=self.one(i))
            run, ms = {}, []
            for i, qid in enumerate(self.ids):
                started = time.perf_counter()
                hits = index.search(self.texts[i], k=k, mode=mode, encoded=self.one(i))
                ms.append(1000 * (time.perf_counter() - started))
                run[qid] = {h.doc_id: h.score for h in hits}
        finally:
            torch.set_num_threads(before)
        return run, summary_ms(ms)


def top10(run: dict[str, dict[str, float]]) -> dict[str, set[str]]:
    return {q: set(sorted(hits, key=hits.__getitem__, reverse=True)[:10])
            for q, hits in run.items()}  # fmt: skip


def overlap(run: dict, reference: dict[str, set[str]]) -> float:
    """Mean over queries of |top 10 ∩ the reference's top 10| / 10."""
    ours = top10(run)
    return sum(len(ours.get(q, set()) & ref) / 10 for q, ref in reference.items()) / len(reference)


def metric(run: dict, qrels: dict, name: str) -> float:
    from latesearch.evaluation import evaluate_run

    return round(float(evaluate_run(run, qrels, name).aggregate[name]), 4)


def reference(base: Any, model: Any, queries: Queries) -> tuple[dict, dict[str, set[str]]]:
    """Exhaustive fp32 MaxSim of the unpooled vectors: (its row, its top 10 per query),
    kept beside the base index for the next run on the same queries."""
    from latesearch.index import Index

    cache = base.folder.with_name(f"{base.folder.name}-{len(queries.ids)}q-exact.json")
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved["queries"] == queries.ids:
            return saved["row"], {q: set(ids) for q, ids in saved["top10"].items()}
    index = Index.load(base.folder, model)
    started = time.perf_counter()
    run = queries.run_all(index, 100, "exact")
    seconds = time.perf_counter() - started
    row = {"nDCG@10": metric(run, queries.qrels, "nDCG@10"),
           "R@100": metric(run, queries.qrels, "R@100"),
           "text_tokens": base.n_embeddings, "docs": base.n_docs,
           "queries": len(queries.ids), "seconds": round(seconds, 1)}  # fmt: skip
    print(f"exact (unpooled, uncompressed): {row}", flush=True)
    best = top10(run)
    ranked = {q: sorted(ids) for q, ids in best.items()}
    cache.write_text(json.dumps({"queries": queries.ids, "row": row, "top10": ranked}))
    return row, best


def measure(base: Any, model: Any, nbits: int, factor: int, queries: Queries,
            ref: dict[str, set[str]]) -> dict:  # fmt: skip
    from latesearch.index import Index
    from latesearch.indexing import compress_index

    target = WORK / "pooling" / f"{base.folder.name[:-5]}-nbits{nbits}-f{factor}"
    started = time.perf_counter()
    compress_index(base.folder, target, nbits=nbits, keep_full=False, pool_factor=factor,
                   overwrite=True)  # fmt: skip
    compress_seconds = time.perf_counter() - started
    index = Index.load(target, model)
    run10, ms10 = queries.run_timed(index, 10, "e2e")
    run100, ms100 = queries.run_timed(index, 100, "e2e")
    started = time.perf_counter()
    codes = queries.run_all(index, 10, "exact")
    codes_seconds = time.perf_counter() - started
    core, spans = sizes(target)
    text_tokens = base.n_embeddings
    encode_seconds = float(base.summary.seconds)
    row = {
        "vectors": index.store.n_embeddings,
        "text_tokens": text_tokens,
        "vectors_per_text_token": round(index.store.n_embeddings / text_tokens, 4),
        "bytes_per_text_token": round(core / text_tokens, 3),
        "span_bytes_per_text_token": round(spans / text_tokens, 3),
        "overlap@10": round(overlap(run10, ref), 4),
        "nDCG@10": metric(run10, queries.qrels, "nDCG@10"),
        "R@100": metric(run100, queries.qrels, "R@100"),
        "search_ms_k10": ms10,
        "search_ms_k100": ms100,
        "codes_overlap@10": round(overlap(codes, ref), 4),
        "codes_nDCG@10": metric(codes, queries.qrels, "nDCG@10"),
        "codes_exhaustive_seconds": round(codes_seconds, 1),
        "encode_seconds": round(encode_seconds, 1),
        "pool_and_compress_seconds": round(compress_seconds, 1),
        "build_docs_per_second": round(base.n_docs / (encode_seconds + compress_seconds), 2),
        "load_average": load_average(),
    }
    index.store.close()
    print(f"nbits={nbits} f={factor}: {row}", flush=True)
    return row


def decide(results: dict[str, Any]) -> dict[str, Any]:
    """The decision rule on the combinations measured on every collection."""
    names = sorted(results)
    measured = [{(n, f) for n, rows in r["runs"].items() for f in rows} for r in results.values()]
    combos = set.intersection(*measured) if measured else set()
    partial = set.union(*measured) - combos if measured else set()
    table = []
    for nbits, f in sorted(combos, key=lambda c: (int(c[0]), int(c[1]))):
        rows = [results[name]["runs"][nbits][f] for name in names]
        exact = [results[name]["exact"]["nDCG@10"] for name in names]
        size = sum(r["bytes_per_text_token"] for r in rows) / len(rows)
        within = all(abs(r["nDCG@10"] - e) <= TOLERANCE for r, e in zip(rows, exact, strict=True))
        table.append({"nbits": int(nbits), "pool_factor": int(f),
                      "mean_bytes_per_text_token": round(size, 3),
                      "within_budget": all(r["bytes_per_text_token"] <= MAX_BYTES
                                           for r in rows),
                      "ndcg_within_tolerance": within,
                      "mean_overlap@10": round(sum(r["overlap@10"] for r in rows) / len(rows),
                                               3)})  # fmt: skip
    kept = [c for c in table if c["within_budget"] and c["ndcg_within_tolerance"]]
    kept.sort(key=lambda c: (-c["mean_overlap@10"], c["mean_bytes_per_text_token"]))
    pick = {"nbits": kept[0]["nbits"], "pool_factor": kept[0]["pool_factor"]} if kept else None
    return {"collections": names, "complete": set(names) == {"scifact", "vaswani"} and not partial,
            "measured_on_one_collection_only": sorted(f"nbits {n} f {f}" for n, f in partial),
            "combinations": table, "pick": pick}  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Bits x token pooling of the compressed index", "",
        f"Machine: {describe(payload['machine'])}; torch threads: {payload['threads']}, "
        f"{payload['search_threads']} for the timed searches.  ",
        f"Model: {payload['model']}.  ",
        f"Every index without the fp16 tier, made from one encoding of the collection "
        f"({payload['compute_dtype']} compute). Reference: exhaustive fp32 MaxSim over the "
        "unpooled vectors. Engine: mode e2e at its defaults, one query per call, query "
        "encoding excluded. Codes: every document scored exhaustively from the index's "
        "codes.  ",
        f"Decision rule (fixed before measuring): among the combinations at <= {MAX_BYTES:g} "
        f"bytes per text token whose engine nDCG@10 is within {TOLERANCE} of exhaustive "
        "MaxSim's on both SciFact and Vaswani, the highest engine overlap@10 (mean of the two, "
        "at three decimals); ties to the smaller index.", "",
        "| collection | nbits | f | vectors / text token | B / text token | span B / text "
        "token | overlap@10 | nDCG@10 | Δ vs exhaustive | R@100 | codes overlap@10 | codes "
        "nDCG@10 | ms k=10 (p50 / p95) | ms k=100 (p50 / p95) | build docs/s | pool+compress "
        "s | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for name, res in sorted(payload["results"].items()):
        ex = res["exact"]
        lines.append(f"| {name} | exhaustive | – | 1.000 | – | – | 1.000 | {ex['nDCG@10']:.4f} "
                     f"| +0.0000 | {ex['R@100']:.4f} | – | – | – | – | – | – | – |")  # fmt: skip
        for nbits, rows in sorted(res["runs"].items(), key=lambda kv: int(kv[0])):
            for f, r in sorted(rows.items(), key=lambda kv: int(kv[0])):
                a, b = r["search_ms_k10"], r["search_ms_k100"]
                lines.append(
                    f"| {name} | {nbits} | {f} | {r['vectors_per_text_token']:.3f} | "
                    f"{r['bytes_per_text_token']:.2f} | {r['span_bytes_per_text_token']:.2f} | "
                    f"{r['overlap@10']:.3f} | {r['nDCG@10']:.4f} | "
                    f"{r['nDCG@10'] - ex['nDCG@10']:+.4f} | {r['R@100']:.4f} | "
                    f"{r['codes_overlap@10']:.3f} | {r['codes_nDCG@10']:.4f} | "
                    f"{a['median']:.1f} / {a['p95']:.1f} | {b['median']:.1f} / {b['p95']:.1f} | "
                    f"{r['build_docs_per_second']:.2f} | {r['pool_and_compress_seconds']:.0f} | "
                    f"{' '.join(f'{x:.1f}' for x in r['load_average'])} |"
                )
    for name, c in sorted(payload["cuts"].items()):
        if c["max_docs"]:
            lines.insert(
                5,
                f"**{name} was cut** (the machine was too busy for the whole "
                f"collection): its first {c['queries']} judged queries, and "
                f"{c['max_docs']} documents: every one judged for them plus the "
                "collection's first others. Its scores are not the collection's; "
                "the differences between combinations are what this run shows.  ",
            )
    verdict = payload["decision"]
    lines += ["", "## Decision", "",
              "| nbits | f | mean B / text token | <= budget | nDCG@10 within tolerance on "
              "both | mean overlap@10 |", "|---:|---:|---:|---|---|---:|"]  # fmt: skip
    for c in verdict["combinations"]:
        lines.append(f"| {c['nbits']} | {c['pool_factor']} | {c['mean_bytes_per_text_token']:.2f}"
                     f" | {'yes' if c['within_budget'] else 'no'} | "
                     f"{'yes' if c['ndcg_within_tolerance'] else 'no'} | "
                     f"{c['mean_overlap@10']:.3f} |")  # fmt: skip
    pick = verdict["pick"]
    state = (
        ""
        if verdict["complete"]
        else (
            " (incomplete: not every combination measured on both collections; measured on one "
            f"only: {', '.join(verdict.get('measured_on_one_collection_only', [])) or 'none'})"
        )
    )
    lines += ["", (f"The rule picks **nbits {pick['nbits']}, pool factor {pick['pool_factor']}**"
                   if pick else "The rule picks nothing") +
              f" on {', '.join(verdict['collections'])}{state}.", ""]  # fmt: skip
    lines += ["Build docs/s: the collection encoded once, then each combination pooled and "
              "compressed from those vectors (pool+compress s); a build with `pool_factor` does "
              "both in one pass. Bytes per text token: the index folder less docs.sqlite and "
              "the span files, over the documents' original tokens. Load average: after "
              "the row was measured.", "", "Regenerate with (per collection):", "",
              *[f"- {name}: `{cmd}`" for name, cmd in sorted(payload["commands"].items())],
              ""]  # fmt: skip
    return "\n".join(lines)


def stem(model: str | None) -> str:
    """pooling-cpu for the default model, else pooling-<checkpoint>-cpu."""
    if model is None:
        return "pooling-cpu"
    path = Path(model).resolve()
    name = path.parent.name if path.name == "final" else path.name
    return f"pooling-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}-cpu"


def main(argv: list[str] | None = None) -> None:
    p: argparse.ArgumentParser = parser(__doc__.splitlines()[0])
    p.add_argument("--factors", nargs="+", type=int, default=[1, 2, 3, 4])
    p.add_argument("--nbits", nargs="+", type=int, default=[2, 4], choices=(1, 2, 4))
    p.add_argument(
        "--max-queries",
        type=int,
        default=None,
        help="only the first N judged queries (default: all)",
    )
    p.add_argument(
        "--max-docs",
        type=int,
        default=None,
        help="only the documents judged for those queries plus the first others, "
        "N in all (default: the whole collection)",
    )
    p.add_argument(
        "--compute-dtype",
        choices=("bfloat16", "float16"),
        default=None,
        help="encode under autocast (default: float32), as IndexConfig's",
    )
    p.add_argument(
        "--search-threads",
        type=int,
        default=1,
        help="torch threads of the timed searches (1); the rest runs on --threads",
    )
    p.add_argument(
        "--keep-measured",
        action="store_true",
        help="keep the previous file's rows of each collection run (same cut) and measure "
        "only the combinations it lacks",
    )
    args = p.parse_args(argv)
    setup(args)
    model = load_model(args.model)
    out, name_stem = args.out or RESULTS, stem(args.model)
    label = model_label(args.model, model)
    previous = out / f"{name_stem}.json"
    results: dict[str, Any] = {}
    commands: dict[str, str] = {}
    cuts: dict[str, Any] = {}
    if previous.is_file():
        old = json.loads(previous.read_text())
        same_dtype = old.get("compute_dtype") == (args.compute_dtype or "float32")
        if (
            old.get("model") == label
            and same_dtype
            and "decision" in old
            and all("exact" in r for r in old["results"].values())
        ):
            results, commands, cuts = old["results"], old["commands"], old["cuts"]

    def save() -> None:
        payload = {"machine": machine_info(), "model": label, "commands": commands,
                   "compute_dtype": args.compute_dtype or "float32", "cuts": cuts,
                   "threads": args.threads or "all", "search_threads": args.search_threads,
                   "max_bytes_per_text_token": MAX_BYTES,
                   "ndcg_tolerance": TOLERANCE, "results": results,
                   "decision": decide(results)}  # fmt: skip
        write_results(out, name_stem, payload, markdown(payload))

    for name in args.collections:
        coll = collection(name, args.data)
        coll, eval_set = cut(coll, coll.eval_sets()[0], args.max_queries, args.max_docs)
        base = base_index(coll, model, args.compute_dtype, args.max_docs)
        queries = Queries(model, eval_set, args.search_threads)
        exact, ref = reference(base, model, queries)
        cut_now = {"queries": len(eval_set.queries), "max_docs": args.max_docs}
        keep = args.keep_measured and name in results and cuts.get(name) == cut_now
        runs = results[name]["runs"] if keep else {}
        cuts[name], results[name] = cut_now, {"exact": exact, "runs": runs}
        commands[name] = command()
        for factor in args.factors:  # the larger indexes first: the likelier picks
            for nbits in args.nbits:
                if over_budget(base.dim, nbits, factor):
                    print(f"nbits={nbits} f={factor}: skipped (over {MAX_BYTES:g} B)")
                    continue
                rows = runs.setdefault(str(nbits), {})
                if str(factor) not in rows:
                    rows[str(factor)] = measure(base, model, nbits, factor, queries, ref)
                    save()
        base.close()


if __name__ == "__main__":
    main()
