"""Score models on the multi-domain dev set of make_dev.py (nDCG@10 per domain and pooled,
exact MaxSim, doc_maxlen 128 as in training) and merge them into
benchmarks/results/default-model/dev-multi.json under the given names.

python scripts/default_model/evaluate_dev.py --dev .work/dm/dev NAME=MODEL_DIR ...
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from latesearch import ColBERT
from latesearch.evaluation.metrics import evaluate_run
from latesearch.training.devset import DevSet

OUT = Path("benchmarks/results/default-model/dev-multi.json")


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
    results["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": None,
    }
    for spec in args.models:
        name, _, path = spec.partition("=")
        model = ColBERT.from_pretrained(path, device="cpu", doc_maxlen=128)
        run = dev.run(model)
        scores = {}
        for domain in ("sf", "vw", "demo"):
            judged = {q: r for q, r in dev.qrels.items() if q.startswith(f"{domain}:")}
            found = evaluate_run({q: run[q] for q in judged}, judged, ["nDCG@10"])
            scores[domain] = found.aggregate["nDCG@10"]
        scores["all"] = evaluate_run(run, dev.qrels, ["nDCG@10"]).aggregate["nDCG@10"]
        results["models"][name] = {**scores, "path": path}
        print(name, {k: round(v, 4) for k, v in scores.items() if k != "path"}, flush=True)
        OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
