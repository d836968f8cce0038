"""`latesearch mix`: a weight-space mixture of models fine-tuned from one start (WiSE-FT
interpolation toward the start, or a model soup), saved as a new checkpoint."""

from __future__ import annotations

import argparse

MIX_FILE = "mix.json"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mix",
        help="average the weights of models fine-tuned from one start (WiSE-FT, model soups)",
        description="Write sum_i w_i * model_i as a new checkpoint. WiSE-FT at alpha: "
        "`latesearch mix START TUNED --weights 1-alpha alpha`. Settings such as doc_maxlen "
        "come from the first model.",
    )
    parser.add_argument("models", nargs="+", help="checkpoint folders or hub names")
    parser.add_argument("--weights", type=float, nargs="+", default=None,
                        help="one per model, summing to 1 (default: uniform)")
    parser.add_argument("--output", required=True, help="folder for the mixed checkpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch._atomic import write_json
    from latesearch.modeling import ColBERT
    from latesearch.modeling.mixing import mix_models, mixing_weights

    weights = mixing_weights(len(args.models), args.weights)
    models = [ColBERT.from_pretrained(name, device="cpu") for name in args.models]
    mixed = mix_models(models, weights)
    folder = mixed.save_pretrained(args.output)
    write_json(folder / MIX_FILE, {"models": args.models, "weights": weights})
    print(f"mixed {len(models)} models -> {folder}")
    return 0
