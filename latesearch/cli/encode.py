"""`latesearch encode`: encode texts and score them against a query (a quick look at a model)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "encode", help="encode a query and passages, print MaxSim scores"
    )
    parser.add_argument("query", help="query text")
    parser.add_argument("passages", nargs="+", help="passage texts")
    parser.add_argument("--model", default=None, help="checkpoint folder or hub name")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.modeling import ColBERT
    from latesearch.scoring import maxsim, pad_documents

    model = ColBERT.from_pretrained(args.model, device=args.device)
    Q = model.encode_queries([args.query])[0]
    D, mask = pad_documents(model.encode_documents(args.passages))
    scores = maxsim(Q, D, mask, similarity=model.config.similarity)
    for rank, i in enumerate(scores.argsort(descending=True).tolist(), start=1):
        print(f"{rank:>3}  {scores[i].item():8.3f}  {args.passages[i]}")
    return 0
