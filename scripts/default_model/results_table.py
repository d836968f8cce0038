"""The default model's results page, benchmarks/results/default-model/README.md, rendered from
results.json beside it (the numbers of docs/model.md).

python scripts/default_model/results_table.py                         # render README.md
python scripts/default_model/results_table.py --collect .work/dm/eval # update results.json first

`--collect EVAL` takes into results.json what rebuild.sh's evaluation wrote to EVAL: the test
rows evaluate.sh measured (EVAL/NAME-*.json, NAME as in each row's "eval"), the dev scores of
evaluate_dev.py (EVAL/dev.json, by model name) and the paired comparison of compare.sh
(EVAL/v18-vs-raw300-*.json); BM25 and the dense model come from benchmarks/results/table2.json
(benchmarks/table2.py). Rows and entries it finds nothing for keep their recorded numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import machine_info, write_json, write_text

RESULTS = Path("benchmarks/results/default-model")
TABLE2 = Path("benchmarks/results/table2.json")
SETS = {"scifact_test": "scifact-test", "scifact_novel": "scifact-novel", "vaswani": "vaswani"}
TABLE2_SETS = {
    "scifact_test": ("scifact", "scifact"),
    "scifact_novel": ("scifact", "scifact-novel"),
    "vaswani": ("vaswani", "vaswani"),
}
METRICS = ("nDCG@10", "R@100")


def collect(results: dict, folder: Path) -> list[str]:
    """Update `results` in place from a rebuild's evaluation in `folder`; say what changed."""
    found = []
    for row in results["test"]:
        if "eval" in row:
            files = {k: folder / f"{row['eval']}-{name}.json" for k, name in SETS.items()}
            if all(f.is_file() for f in files.values()):
                for key, f in files.items():
                    aggregate = json.loads(f.read_text())["aggregate"]
                    row[key] = {m: aggregate[m] for m in METRICS}
                found.append(f"test: {row['model']}")
        elif "table2" in row and TABLE2.is_file():
            table = json.loads(TABLE2.read_text())["collections"]
            for key, (coll, name) in TABLE2_SETS.items():
                eff = table[coll]["methods"][row["table2"]]["effectiveness"][name]
                row[key] = {m: eff[m] for m in METRICS}
            found.append(f"test: {row['model']} (table2.json)")
    dev = folder / "dev.json"
    if dev.is_file():
        for name, scores in json.loads(dev.read_text())["models"].items():
            if name in results["dev"]["models"]:
                entry = results["dev"]["models"][name]
                entry.update({k: scores[k] for k in ("sfn", "vw", "demo", "novel_macro")})
                found.append(f"dev: {name}")
    for name, entry in results["comparisons"].items():
        files = {k: folder / f"{entry['eval']}-{s}.json" for k, s in SETS.items()
                 if "eval" in entry}
        if files and all(f.is_file() for f in files.values()):
            for key, f in files.items():
                data = json.loads(f.read_text())
                c = next(iter(data["comparisons"].values()))["nDCG@10"]
                entry[key] = {"diff": c["diff"], "p": c["p_value"]}
            found.append(f"comparison: {name}")
    if found:
        results["machine"] = machine_info()
    return found


def render(results: dict) -> str:
    """The markdown page."""
    lines = [
        "# The default model's results",
        "",
        "Numbers behind [docs/model.md](../../../docs/model.md), kept in `results.json` and "
        "rendered by `python scripts/default_model/results_table.py` (after a rebuild, "
        "`scripts/default_model/rebuild.sh` runs it with `--collect .work/dm/eval`, which "
        "first takes the new measurements into `results.json`).",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cpu_count']} cores, "
        "CPU only. Exhaustive MaxSim (`latesearch evaluate --mode exact`).",
        "",
        "## Test sets (nDCG@10, R@100)",
        "",
        "| model | document tokens | SciFact test | R@100 | SciFact-novel | R@100 | Vaswani "
        "| R@100 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["test"]:
        cells = [f"{row[k][m]:.3f}" for k in SETS for m in METRICS]
        name = f"**{row['model']}**" if row.get("shipped") else row["model"]
        lines.append(f"| {name} | {row['doc_maxlen']} | " + " | ".join(cells) + " |")
    dev = results["dev"]
    lines += [
        "",
        "## Dev set (nDCG@10): the choice",
        "",
        dev["rule"],
        "",
        "| model @ document tokens | SciFact-novel-like | Vaswani spans | demo | mean of 3 |",
        "|---|---|---|---|---|",
    ]
    for name, s in dev["models"].items():
        cells = [f"{s[k]:.4f}" for k in ("sfn", "vw", "demo", "novel_macro")]
        label = f"**{name}** (shipped)" if s.get("note") == "shipped" else (
            f"{name} ({s['note']})" if s.get("note") else name)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Paired comparisons of the shipped model (nDCG@10 difference, p-value)",
        "",
        "| comparison | SciFact test | SciFact-novel | Vaswani |",
        "|---|---|---|---|",
    ]
    for name, entry in results["comparisons"].items():
        cells = [f"{entry[k]['diff']:+.4f} (p {entry[k]['p']:.2f})" for k in SETS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collect", type=Path, help="a rebuild's evaluation folder (.work/dm/eval)")
    args = ap.parse_args()
    path = RESULTS / "results.json"
    results = json.loads(path.read_text())
    if args.collect:
        for line in collect(results, args.collect) or ["nothing found"]:
            print(f"collected {line}")
        write_json(path, results)
    text = render(results)
    write_text(RESULTS / "README.md", text)
    print(text)


if __name__ == "__main__":
    main()
