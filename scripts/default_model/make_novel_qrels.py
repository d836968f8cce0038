"""Judgements for selecting by `novel_macro` during training: the dev set's
qrels.txt with the SciFact queries cut to the SciFact-novel-like slice (none of their
relevant documents is a positive in the training triples; see evaluate_dev.py). With
`latesearch train --dev-qrels THIS --dev-average groups` the trainer's dev mean, and so its
`best/`, is `novel_macro`.

python scripts/default_model/make_novel_qrels.py --dev .work/dm/dev \
    --triples .work/dm/data6/triples.jsonl --out .work/dm/dev/qrels-novel.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import write_text
from evaluate_dev import novel_queries

from latesearch.data import read_qrels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", required=True, help="make_dev.py's output folder")
    ap.add_argument("--triples", required=True, help="the training triples (JSONL)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    qrels = read_qrels(str(Path(args.dev) / "qrels.txt"))
    novel = set(novel_queries(qrels, args.triples))
    kept = {q: j for q, j in qrels.items() if not q.startswith("sf:") or q in novel}
    lines = [f"{q} 0 {d} {rel}" for q, judged in kept.items() for d, rel in judged.items()]
    write_text(args.out, "\n".join(lines) + "\n")
    print(f"{len(kept)} queries ({len(novel)} SciFact-novel-like) -> {args.out}")


if __name__ == "__main__":
    main()
