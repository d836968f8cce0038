"""Figure 1 of the paper: effectiveness (nDCG@10) against query latency (log scale) of the
methods measured by table1.py and table2.py (read from their JSON in benchmarks/results/).
One panel per evaluation set (collection, and its novel subset). Methods without measured
effectiveness (the cross-encoder estimate) are left out.
Usage: python benchmarks/figure1.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

METRIC = "nDCG@10"


def points(results: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """{set name: {method: (latency ms, metric)}}; latency at k=10 where it was measured
    (table2), else at the method's own depth; later files win on equal names."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for result in results:
        for entry in result["collections"].values():
            for method, row in entry["methods"].items():
                for name, eff in (row.get("effectiveness") or {}).items():
                    latency = row.get("latency_ms_k10", row["latency_ms"])["mean"]
                    out.setdefault(name, {})[method] = (latency, eff[METRIC])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=common.RESULTS)
    p.add_argument("--inputs", nargs="+", default=["table1.json", "table2.json"])
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [json.loads((args.out / f).read_text()) for f in args.inputs
               if (args.out / f).is_file()]  # fmt: skip
    if not results:
        raise SystemExit(f"no {' or '.join(args.inputs)} in {args.out}: run table1/table2")
    data = points(results)
    fig, axes = plt.subplots(1, len(data), figsize=(5.2 * len(data), 4.4), squeeze=False)
    markers = "osD^vP*Xh"
    methods = sorted({m for pts in data.values() for m in pts})
    for ax, (name, pts) in zip(axes[0], data.items(), strict=True):
        for method, (latency, value) in sorted(pts.items()):
            ax.scatter(latency, value, marker=markers[methods.index(method) % len(markers)],
                       s=60, label=method)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("latency per query, ms (log scale)")
        ax.set_ylabel(METRIC)
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    model = results[0].get("model", "?")
    machine = common.describe(results[0]["machine"])
    fig.suptitle(f"{METRIC} vs latency - model {model}\n{machine}", fontsize=9)
    fig.tight_layout(rect=(0, 0.12, 1, 0.93))
    target = args.out / "figure1.png"
    tmp = target.with_name(".figure1.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, target)
    common.write_text(args.out / "figure1.json", json.dumps(data, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
