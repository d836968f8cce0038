#!/usr/bin/env bash
# Paired comparisons (`latesearch compare`: per-query differences, bootstrap CI, p-value)
# against a baseline on SciFact test, SciFact-novel and Vaswani, from the runs evaluate.sh
# keeps in DM/runs/ (NAME-scifact-test.trec, NAME-vaswani.trec). Writes
# OUT_PREFIX-{scifact-test,scifact-novel,vaswani}.json.
# usage: [DATA=../shared/data] [DM=.work/dm] scripts/default_model/compare.sh OUT_PREFIX BASELINE NAME...
set -euo pipefail
prefix=$1; shift
data=${DATA:-../shared/data}; runs=${DM:-.work/dm}/runs
metrics="nDCG@10 R@100"
sf=(); vw=()
for name in "$@"; do
  sf+=("$name=$runs/$name-scifact-test.trec"); vw+=("$name=$runs/$name-vaswani.trec")
done
cmp() { latesearch compare "$@" --metrics "$metrics" --json; }
cmp --qrels "$data/scifact/qrels/test.tsv" "${sf[@]}" > "$prefix-scifact-test.json"
cmp --qrels "$data/scifact/qrels/test.tsv" --exclude-train-qrels "$data/scifact/qrels/train.tsv" \
    "${sf[@]}" > "$prefix-scifact-novel.json"
cmp --qrels "$data/vaswani/qrels" "${vw[@]}" > "$prefix-vaswani.json"
for f in "$prefix"-scifact-test.json "$prefix"-scifact-novel.json "$prefix"-vaswani.json; do
  python - "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[1]} ({d['n_queries']} queries, baseline {d['baseline']})")
for name, per in d["comparisons"].items():
    c = per["nDCG@10"]
    print(f"  {name:>10}: nDCG@10 {c['mean_b']:.4f} diff {c['diff']:+.4f} "
          f"CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] p {c['p_value']:.3f} "
          f"wins/losses {c['wins']}/{c['losses']}")
PY
done
