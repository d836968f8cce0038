"""Interoperability check: a checkpoint written by `ColBERT.save_pretrained` (colbertv2.0
layout) loaded by PyLate must give the same query and document embeddings as latesearch.

Run with PyLate importable (e.g. PYTHONPATH=<pylate site>):
python scripts/interop/pylate_check.py CHECKPOINT --out benchmarks/results/interop-pylate.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from latesearch import ColBERT

QUERIES = ["what is late interaction?", "How do proteins fold, in 3 steps?"]
DOCS = [
    "ColBERT encodes queries and documents into bags of token embeddings.",
    "Proteins fold (mostly) spontaneously; chaperones help - sometimes!",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from pylate import models

    ours = ColBERT.from_pretrained(args.checkpoint, device="cpu")
    theirs = models.ColBERT(model_name_or_path=args.checkpoint, device="cpu")
    q_ours = ours.encode_queries(QUERIES)
    d_ours = ours.encode_documents(DOCS)
    q_theirs = theirs.encode(QUERIES, is_query=True, convert_to_tensor=False)
    d_theirs = theirs.encode(DOCS, is_query=False, convert_to_tensor=False)
    report = {"checkpoint": args.checkpoint, "queries": [], "documents": []}
    for a, b in zip(q_ours, q_theirs, strict=True):
        b = torch.as_tensor(b)
        report["queries"].append(
            {
                "shape_ours": list(a.shape),
                "shape_pylate": list(b.shape),
                "max_abs_diff": float((a[: len(b)] - b).abs().max()),
            }
        )
    for a, b in zip(d_ours, d_theirs, strict=True):
        b = torch.as_tensor(b)
        same = a.shape == b.shape
        report["documents"].append(
            {
                "shape_ours": list(a.shape),
                "shape_pylate": list(b.shape),
                "max_abs_diff": float((a - b).abs().max()) if same else None,
            }
        )
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
