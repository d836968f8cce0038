"""Document lengths in the backbone's WordPiece tokens (title + text, no special tokens):
how much of each document a given doc_maxlen reads (issue 7, v18). BEIR-layout corpora.

python scripts/default_model/doc_lengths.py ../shared/data/scifact/corpus.jsonl \
    ../shared/data/vaswani/doc-text.trec --out benchmarks/results/default-model/doc-lengths.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from latesearch._atomic import write_json
from latesearch.data import read_collection
from latesearch.modeling.default import backbone_path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _machine import machine_info  # noqa: E402

MAXLENS = (128, 180, 300, 512)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpora", type=Path, nargs="+", help="collection files")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(backbone_path())
    result: dict = {"machine": machine_info(), "corpora": {}}
    for corpus in args.corpora:
        texts = [doc.full_text() for doc in read_collection(corpus)]
        ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        lengths = np.array([len(row) for row in ids])
        points = (10, 25, 50, 75, 90)
        # a document of n tokens is cut at doc_maxlen L when n > L - 2 ([CLS] and [SEP])
        result["corpora"][str(corpus)] = {
            "documents": len(lengths),
            "percentiles": dict(
                zip(map(str, points), np.percentile(lengths, points).tolist(), strict=True)
            ),
            "share_cut": {str(n): float((lengths > n - 2).mean()) for n in MAXLENS},
        }
    write_json(args.out, result)
    print(json.dumps(result["corpora"], indent=1))


if __name__ == "__main__":
    main()
