"""`latesearch evaluate --preset`: index each set of a benchmark and evaluate it."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from latesearch.errors import InputError


def run_preset(args: argparse.Namespace) -> int:
    from latesearch import ColBERT, Index
    from latesearch.cli.evaluate import search_set
    from latesearch.data import load_beir
    from latesearch.evaluation import evaluate_run, format_table, split_metrics
    from latesearch.evaluation.presets import SetScore, benchmark_sets, get_preset, preset_rows

    preset = get_preset(args.preset)
    if args.index_dir is not None or args.queries is not None or args.run is not None:
        raise InputError("--preset evaluates the --sets folders: give no INDEX_DIR, --queries "
                         "or --run", field="preset")  # fmt: skip
    if not args.sets:
        raise InputError("--preset needs --sets (BEIR folders, or folders of them)", field="sets")
    sets = benchmark_sets(args.sets)
    metrics = args.metrics or preset.metrics
    split = args.split or preset.split
    args.k = args.k or preset.k
    model = ColBERT.from_pretrained(args.model, device=args.device)  # one load for every set
    scores, info = [], []
    with tempfile.TemporaryDirectory(prefix="latesearch-preset-") as scratch:
        root = Path(args.index_root) if args.index_root else Path(scratch)
        for folder in sets:
            corpus, _, _ = load_beir(folder, split)
            target = root / folder.name
            if (target / "manifest.json").is_file():  # built by an earlier run: reused
                index = Index.load(target, model)
            else:
                bm25 = args.mode in ("rerank", "hybrid", "bm25")
                index = Index.build(corpus, target, model, bm25=bm25, progress=not args.quiet)
            data, run_map, searched = search_set(args, index, folder, split)
            result = evaluate_run(run_map, data.qrels, metrics)
            scores.append(SetScore(folder.name, len(index), result))
            info.append({"set": folder.name, "index": str(index.folder), **searched})
    rows = preset_rows(scores, split_metrics(metrics))
    if args.json:
        print(json.dumps(_finite({"preset": preset.name, "mode": args.mode, "split": split,
                                  "k": args.k, "metrics": split_metrics(metrics), "rows": rows,
                                  "runs": info}), indent=2))  # fmt: skip
    else:
        print(f"preset: {preset.name} ({len(sets)} sets, {split} split, mode {args.mode}, "
              f"k {args.k})")  # fmt: skip
        print(format_table(rows))
    return 0


def _finite(value: Any) -> Any:
    from latesearch.cli.evaluate import _finite as finite

    return finite(value)
