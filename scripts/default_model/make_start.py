"""The default model's starting point: the backbone in ColBERT format with a
128-d head initialized by PCA of its own document token states (uncentered), so that at
step 0 the head keeps as much of the backbone's token geometry as 128 dimensions allow.
`--remove-mean` projects the mean token direction out first;
`--no-query-augmentation` starts a model that scores only the real query tokens;
`--no-markers` one without the [Q]/[D] marker tokens. The default model's start uses all three.

python scripts/default_model/make_start.py --texts A.jsonl B.trec ... --out .work/dm/start
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from latesearch import ColBERT
from latesearch.data import read_collection
from latesearch.modeling.default import backbone_path
from latesearch.modeling.projection import pca_projection, token_moments


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", nargs="+", required=True, help="collections to sample")
    ap.add_argument("--per-collection", type=int, default=200)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--remove-mean", action="store_true", help="project out the mean token")
    ap.add_argument("--query-augmentation", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--markers", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rng = random.Random(args.seed)
    texts = []
    for path in args.texts:
        docs = [d.full_text() for d in read_collection(path)]
        texts += rng.sample(docs, min(args.per_collection, len(docs)))
    # the bare backbone (not the shipped default, which from_pretrained() would load)
    model = ColBERT.from_pretrained(
        backbone_path(),
        dim=args.dim,
        device="cpu",
        query_augmentation=args.query_augmentation,
        markers=args.markers,
    )
    mean, moment = token_moments(model, texts)
    projection, kept = pca_projection(
        moment, args.dim, remove=mean if args.remove_mean else None
    )
    with torch.no_grad():
        model.linear.weight.copy_(projection)
    model.save_pretrained(args.out)
    info = {
        "texts": args.texts,
        "per_collection": args.per_collection,
        "seed": args.seed,
        "remove_mean": args.remove_mean,
        "query_augmentation": args.query_augmentation,
        "markers": args.markers,
        "kept": kept,
    }
    (Path(args.out) / "start_info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"PCA head keeps {kept:.3f} of the token second moment -> {args.out}")


if __name__ == "__main__":
    main()
