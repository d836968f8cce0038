"""Score models on the three-domain dev set of make_dev.py (nDCG@10 per domain, their mean
and pooled over all queries; exact MaxSim, doc_maxlen 128 as in training unless
--doc-maxlen says otherwise) and merge them into the --out JSON under the given names.

python scripts/default_model/evaluate_dev.py --dev .work/dm/dev --out .work/dm/eval/dev.json \
    --novel-positives .work/dm/data6/triples.jsonl --doc-maxlen 300 NAME=MODEL_DIR ...

With `--novel-positives TRIPLES` it also scores the SciFact-novel-like slice ('sfn': dev
SciFact queries none of whose relevant documents is a positive in the training triples,
as SciFact-novel is to the test split) and 'novel_macro', the mean of sfn, vw and demo:
the number the default model is chosen by (docs/model.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Collection, Mapping
from pathlib import Path

import torch
from common import machine_info, write_json

from latesearch import ColBERT
from latesearch.data import read_id_triples, read_queries
from latesearch.training.data import load_texts
from latesearch.training.devset import DevSet

OUT = Path(".work/dm/eval/dev.json")


def domain_scores(
    run: Mapping, qrels: Mapping, novel: Collection[str] | None = None
) -> dict[str, float]:
    """nDCG@10 of `run` per domain (query-id prefix), their mean ('macro', the selection
    rule of earlier defaults) and pooled over all queries ('all'); with `novel`
    (query ids) also 'sfn' over those queries and 'novel_macro' (see the module doc)."""
    grouped = DevSet.measure(run, qrels, average="groups")
    scores = {
        key.split("/", 1)[1]: value
        for key, value in grouped.items()
        if key.startswith("nDCG@10/")
    }
    scores["macro"] = grouped["nDCG@10"]
    scores["all"] = DevSet.measure(run, qrels)["nDCG@10"]
    if novel is not None:
        subset = {q: qrels[q] for q in novel}
        scores["sfn"] = DevSet.measure(run, subset)["nDCG@10"]
        scores["novel_macro"] = (scores["sfn"] + scores["vw"] + scores["demo"]) / 3
    return scores


def novel_queries(qrels: Mapping, triples: str | Path) -> list[str]:
    """Dev SciFact queries none of whose relevant documents is a positive in `triples`, a
    make_data.py folder's triples.jsonl (read beside its queries.tsv and collection.jsonl,
    so a bad line or unknown id is an InputError naming the file and line)."""
    folder = Path(triples).parent
    stream = read_id_triples(
        triples,
        read_queries(folder / "queries.tsv"),
        load_texts(str(folder / "collection.jsonl"), "raise"),
    )
    positives = {triple.doc_ids[0] for triple in stream}
    return [
        q
        for q, judged in qrels.items()
        if q.startswith("sf:") and not {d for d, rel in judged.items() if rel > 0} & positives
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", required=True)
    ap.add_argument("--novel-positives", help="training triples (JSONL): adds sfn/novel_macro")
    ap.add_argument("--out", type=Path, default=OUT, help=f"results JSON (default {OUT})")
    ap.add_argument("--doc-maxlen", type=int, default=128, help="document length (default 128)")
    ap.add_argument("models", nargs="+", help="NAME=MODEL_DIR")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dev_dir = Path(args.dev)
    dev = DevSet.load(
        str(dev_dir / "queries.tsv"), str(dev_dir / "qrels.txt"), str(dev_dir / "collection.jsonl")
    )
    novel = novel_queries(dev.qrels, args.novel_positives) if args.novel_positives else None
    for spec in args.models:
        name, _, path = spec.partition("=")
        model = ColBERT.from_pretrained(path, device="cpu", doc_maxlen=args.doc_maxlen)
        scores = domain_scores(dev.run(model), dev.qrels, novel)
        # re-read just before writing, so that another run's entries written meanwhile stay
        results = json.loads(args.out.read_text()) if args.out.exists() else {"models": {}}
        results["machine"] = machine_info()
        results["models"][name] = {**scores, "path": path, "doc_maxlen": args.doc_maxlen}
        print(name, {k: round(v, 4) for k, v in scores.items()}, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, results)


if __name__ == "__main__":
    main()
