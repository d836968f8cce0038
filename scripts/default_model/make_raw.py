"""The backbone's raw token MaxSim as a latesearch model (a reference row of docs/model.md).

No [Q]/[D] markers, no [MASK] augmentation, an identity head of the backbone's width (384);
punctuation is dropped from documents and doc_maxlen is 180, as for every other row. Index
and evaluate it like any model (scripts/default_model/evaluate.sh .work/dm/raw raw).

python scripts/default_model/make_raw.py --out .work/dm/raw
"""

from __future__ import annotations

import argparse

import torch

from latesearch import ColBERT
from latesearch.modeling.default import backbone_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = ColBERT.from_pretrained(
        backbone_path(), device="cpu", dim=384, markers=False, query_augmentation=False
    )
    with torch.no_grad():
        model.linear.weight.copy_(torch.eye(model.linear.weight.shape[1]))
    model.save_pretrained(args.out)
    print(f"raw-token MaxSim model -> {args.out}")


if __name__ == "__main__":
    main()
