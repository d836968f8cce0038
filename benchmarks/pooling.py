"""Token pooling at index time (`IndexConfig.pool_factor`): quality, size and build speed.

    python benchmarks/pooling.py [--data ../shared/data] [--collections scifact vaswani] \
        [--factors 1 2 3 4] [--nbits 2 4] [--out benchmarks/results]

Decision rule, written before measuring: the default pool factor is the largest f with
nDCG@10 within 0.005 of f=1 on both SciFact and Vaswani (at nbits 2, keep_full False).

Each collection is encoded once with the default model into an uncompressed fp16 index
(.work/eval/pooling/<name>-<fingerprint[:12]>-base, reused while the model and the corpus
path are the same; its build time is kept in its manifest). Each (nbits, f) index is then
made from it by `compress_index(..., pool_factor=f, keep_full=False)`, which writes the
chunks a build with `pool_factor=f` writes for the same vectors (tested byte-identical), so
encoding is paid once. Measured per (collection, nbits, f):

- nDCG@10 and R@100 of mode="e2e" (the engine, defaults of `EngineParams.for_k`, k=100)
  on every test query (SciFact test, Vaswani);
- vectors stored and bytes per text token: the index folder less docs.sqlite and the span
  files, over the documents' original tokens; the span files (which tokens each pooled
  vector merged) are reported apart, per text token;
- build docs/s: documents over (the base build's encoding seconds + this pooling and
  compression's seconds), with both parts reported.

Writes benchmarks/results/pooling-cpu.json and .md; collections not run this time are kept
from the previous file.
"""

from __future__ import annotations

import argparse
import json
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
    load_model,
    model_label,
    parser,
    setup,
    write_results,
)
from _machine import describe, machine_info  # noqa: E402

METRICS = "nDCG@10 R@100"
TOLERANCE = 0.005  # the decision rule's nDCG@10 margin
SPAN_SUFFIXES = (".spans.npy", ".textlens.npy")


def base_index(coll: Any, model: Any, compute_dtype: str | None) -> Any:
    """The collection's unpooled uncompressed fp16 index, built once per model."""
    from latesearch.indexing import IndexConfig, IndexStore, build_index

    name = f"{coll.name}-{model.fingerprint()[:12]}-{compute_dtype or 'float32'}-base"
    folder = WORK / "pooling" / name
    if (folder / "manifest.json").is_file():
        store = IndexStore.open(folder)
        if store.manifest.collection.get("path") == str(coll.corpus):
            return store
        store.close()
    print(f"encoding {coll.name} once into {folder} ...", flush=True)
    config = IndexConfig().replace(nbits=None, compute_dtype=compute_dtype)
    return build_index(coll.corpus, folder, model, config, overwrite=True)


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


def measure(coll: Any, model: Any, base: Any, nbits: int, factor: int, eval_set: Any) -> dict:
    from latesearch.evaluation import evaluate_run
    from latesearch.index import Index
    from latesearch.indexing import compress_index

    target = WORK / "pooling" / f"{base.folder.name[:-5]}-nbits{nbits}-f{factor}"
    started = time.perf_counter()
    compress_index(base.folder, target, nbits=nbits, keep_full=False, pool_factor=factor,
                   overwrite=True)  # fmt: skip
    compress_seconds = time.perf_counter() - started
    index = Index.load(target, model)
    qids = list(eval_set.queries)
    run: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for start in range(0, len(qids), 32):
        part = qids[start : start + 32]
        hits = index.search([eval_set.queries[q] for q in part], k=100, mode="e2e")
        for qid, ranked in zip(part, hits, strict=True):
            run[qid] = {h.doc_id: h.score for h in ranked}
    search_seconds = time.perf_counter() - started
    result = evaluate_run(run, eval_set.qrels, METRICS)
    core, spans = sizes(target)
    text_tokens = base.n_embeddings
    encode_seconds = float(base.summary.seconds)
    row = {
        "vectors": index.store.n_embeddings,
        "text_tokens": text_tokens,
        "vectors_per_text_token": round(index.store.n_embeddings / text_tokens, 4),
        "bytes_per_text_token": round(core / text_tokens, 3),
        "span_bytes_per_text_token": round(spans / text_tokens, 3),
        "encode_seconds": round(encode_seconds, 1),
        "pool_and_compress_seconds": round(compress_seconds, 1),
        "build_docs_per_second": round(base.n_docs / (encode_seconds + compress_seconds), 2),
        "search_ms_per_query": round(1000 * search_seconds / len(qids), 1),
        **{m: round(float(v), 4) for m, v in result.aggregate.items()},
    }
    index.store.close()
    print(f"{coll.name} nbits={nbits} f={factor}: {row}", flush=True)
    return row


def decide(results: dict[str, Any], nbits: str) -> dict[str, Any]:
    """The decision rule on the collections measured at `nbits`."""
    per_coll = {name: by_nbits[nbits] for name, by_nbits in results.items() if nbits in by_nbits}
    factors = sorted({int(f) for rows in per_coll.values() for f in rows})
    passing = [f for f in factors
               if all(str(f) in rows and "1" in rows and
                      rows["1"]["nDCG@10"] - rows[str(f)]["nDCG@10"] <= TOLERANCE
                      for rows in per_coll.values())]  # fmt: skip
    return {"collections": sorted(per_coll), "factors_within_tolerance": passing,
            "default": max(passing) if passing else 1,
            "complete": set(per_coll) == {"scifact", "vaswani"}}  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Token pooling at index time", "",
        f"Machine: {describe(payload['machine'])}.  ",
        f"Model: {payload['model']}.  ",
        f"Index: compressed, keep_full False, mode e2e at k=100, encoded with "
        f"{payload['compute_dtype']} compute. Decision rule (fixed before "
        f"measuring): the default pool factor is the largest f with nDCG@10 within {TOLERANCE} "
        "of f=1 on both SciFact and Vaswani.", "",
        "| collection | nbits | f | vectors / text token | B / text token | span B / text "
        "token | nDCG@10 | Δ vs f=1 | R@100 | build docs/s | encode s | pool+compress s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for name, by_nbits in sorted(payload["results"].items()):
        for nbits, rows in sorted(by_nbits.items()):
            for f, r in sorted(rows.items(), key=lambda kv: int(kv[0])):
                delta = r["nDCG@10"] - rows["1"]["nDCG@10"] if "1" in rows else float("nan")
                lines.append(
                    f"| {name} | {nbits} | {f} | {r['vectors_per_text_token']:.3f} | "
                    f"{r['bytes_per_text_token']:.2f} | {r['span_bytes_per_text_token']:.2f} | "
                    f"{r['nDCG@10']:.4f} | {delta:+.4f} | {r['R@100']:.4f} | "
                    f"{r['build_docs_per_second']:.2f} | {r['encode_seconds']:.0f} | "
                    f"{r['pool_and_compress_seconds']:.0f} |"
                )
    for name, c in sorted(payload["cuts"].items()):
        if c["max_docs"]:
            lines.insert(5, f"**{name} was cut** (the machine was too busy for the whole "
                         f"collection): its first {c['queries']} judged queries, and "
                         f"{c['max_docs']} documents: every one judged for them plus the "
                         "collection's first others. Its scores are not the collection's; "
                         "the differences between factors are what this run shows.  ")
    lines += ["", "## Decision", ""]
    for nbits, verdict in sorted(payload["decision"].items()):
        state = "" if verdict["complete"] else " (incomplete: not every collection measured)"
        lines.append(f"- nbits {nbits}: factors within {TOLERANCE} of f=1 on "
                     f"{', '.join(verdict['collections'])}: {verdict['factors_within_tolerance']}"
                     f"; default by the rule: {verdict['default']}{state}")  # fmt: skip
    lines += ["", "Build docs/s: the collection encoded once (encode s), then each factor "
              "pooled and compressed from those vectors (pool+compress s); a build with "
              "`pool_factor` does both in one pass. Bytes per text token: the index folder "
              "less docs.sqlite and the span files, over the documents' original tokens.", "",
              "Regenerate with (per collection):", "",
              *[f"- {name}: `{cmd}`" for name, cmd in sorted(payload["commands"].items())],
              ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p: argparse.ArgumentParser = parser(__doc__.splitlines()[0])
    p.add_argument("--factors", nargs="+", type=int, default=[1, 2, 3, 4])
    p.add_argument("--nbits", nargs="+", type=int, default=[2, 4], choices=(1, 2, 4))
    p.add_argument("--max-queries", type=int, default=None,
                   help="only the first N judged queries (default: all)")
    p.add_argument("--max-docs", type=int, default=None,
                   help="only the documents judged for those queries plus the first others, "
                        "N in all (default: the whole collection)")
    p.add_argument("--compute-dtype", choices=("bfloat16", "float16"), default=None,
                   help="encode under autocast (default: float32), as IndexConfig's")
    args = p.parse_args(argv)
    setup(args)
    model = load_model(args.model)
    previous = args.out / "pooling-cpu.json"
    results: dict[str, Any] = {}
    commands: dict[str, str] = {}
    cuts: dict[str, Any] = {}
    if previous.is_file():
        old = json.loads(previous.read_text())
        same_dtype = old.get("compute_dtype") == (args.compute_dtype or "float32")
        if old.get("model") == model_label(args.model, model) and same_dtype:
            results, commands, cuts = old["results"], old["commands"], old["cuts"]
    for name in args.collections:
        coll = collection(name, args.data)
        coll, eval_set = cut(coll, coll.eval_sets()[0], args.max_queries, args.max_docs)
        cuts[name] = {"queries": len(eval_set.queries), "max_docs": args.max_docs}
        base = base_index(coll, model, args.compute_dtype)
        results[name], commands[name] = {}, command()
        for nbits in args.nbits:
            rows = results[name].setdefault(str(nbits), {})
            for factor in args.factors:
                rows[str(factor)] = measure(coll, model, base, nbits, factor, eval_set)
                save(args.out or RESULTS, model_label(args.model, model), results, commands,
                     args.compute_dtype, cuts)  # fmt: skip
        base.close()


def save(out: Path, model: str, results: dict[str, Any], commands: dict[str, str],
         compute_dtype: str | None, cuts: dict[str, Any]) -> None:  # fmt: skip
    """The results so far (each row is written as soon as it is measured)."""
    nbits = sorted({n for by_nbits in results.values() for n in by_nbits})
    payload = {"machine": machine_info(), "model": model, "commands": commands,
               "compute_dtype": compute_dtype or "float32", "cuts": cuts,
               "results": results, "decision": {n: decide(results, n) for n in nbits}}  # fmt: skip
    write_results(out, "pooling-cpu", payload, markdown(payload))


if __name__ == "__main__":
    main()
