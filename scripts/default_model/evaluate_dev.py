"""Score models on the multi-domain dev set of make_dev.py (nDCG@10 per domain, their mean
and pooled over all queries; exact MaxSim, doc_maxlen 128 as in training) and merge them
into benchmarks/results/default-model/dev-multi.json under the given names.

python scripts/default_model/evaluate_dev.py --dev .work/dm/dev NAME=MODEL_DIR ...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import torch

from latesearch import ColBERT
from latesearch._atomic import write_json
from latesearch.training.devset import DevSet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _machine import machine_info  # noqa: E402

OUT = Path("benchmarks/results/default-model/dev-multi.json")
DOMAINS = ("sf", "vw", "demo")


def domain_scores(run: Mapping, qrels: Mapping) -> dict[str, float]:
    """nDCG@10 of `run` per domain (query-id prefix), their mean ('macro', the selection
    rule fixed before the v6 candidate) and pooled over all queries ('all')."""
    grouped = DevSet.measure(run, qrels, average="groups")
    scores = {domain: grouped[f"nDCG@10/{domain}"] for domain in DOMAINS}
    scores["macro"] = grouped["nDCG@10"]
    scores["all"] = DevSet.measure(run, qrels)["nDCG@10"]
    return scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", required=True)
    ap.add_argument("models", nargs="+", help="NAME=MODEL_DIR")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dev_dir = Path(args.dev)
    dev = DevSet.load(
        str(dev_dir / "queries.tsv"), str(dev_dir / "qrels.txt"), str(dev_dir / "collection.jsonl")
    )
    results = json.loads(OUT.read_text()) if OUT.exists() else {"models": {}}
    results["machine"] = machine_info()
    for spec in args.models:
        name, _, path = spec.partition("=")
        model = ColBERT.from_pretrained(path, device="cpu", doc_maxlen=128)
        scores = domain_scores(dev.run(model), dev.qrels)
        results["models"][name] = {**scores, "path": path}
        print(name, {k: round(v, 4) for k, v in scores.items()}, flush=True)
        write_json(OUT, results)


if __name__ == "__main__":
    main()
