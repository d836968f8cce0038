#!/usr/bin/env bash
# Evaluate a model on SciFact test (all queries, and the novel ones: those none of whose
# relevant documents is judged in SciFact's training qrels) and Vaswani, exhaustively (mode
# exact), with `latesearch evaluate`. Writes EVAL/NAME-{scifact-test,scifact-novel,vaswani}.json
# and keeps the runs in DM/runs/ for compare.sh; results_table.py --collect reads them.
# usage: [DOC_MAXLEN=180] [DM=.work/dm] [EVAL=DM/eval] scripts/default_model/evaluate.sh MODEL_DIR NAME [DATA=../shared/data]
set -euo pipefail
model=$1; name=$2; data=${3:-../shared/data}; maxlen=${DOC_MAXLEN:-180}
dm=${DM:-.work/dm}; out=${EVAL:-$dm/eval}; idx=$dm/indexes/$name; runs=$dm/runs
mkdir -p "$out" "$idx" "$runs"
metrics="nDCG@10 R@100 MRR@10"
# an index kept from an earlier run is reused only if it was built at this length (else rebuilt)
same_length() {
  python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); n = m["index_config"]["doc_maxlen"]
sys.exit(0) if n == int(sys.argv[2]) else sys.exit(f"{sys.argv[1]}: built at doc_maxlen {n}, not {sys.argv[2]}")' "$1" "$maxlen"
}
[ -f "$idx/scifact/manifest.json" ] && same_length "$idx/scifact/manifest.json" || latesearch index "$data/scifact/corpus.jsonl" "$idx/scifact" \
    --model "$model" --no-ann --overwrite --quiet --doc-maxlen "$maxlen"
ev() { latesearch evaluate "$@" --mode exact -k 100 --metrics "$metrics" --json --quiet; }
ev "$idx/scifact" --queries "$data/scifact/queries.jsonl" --qrels "$data/scifact/qrels/test.tsv" \
    --run "$runs/$name-scifact-test.trec" > "$out/$name-scifact-test.json"
ev "$idx/scifact" --queries "$data/scifact/queries.jsonl" --qrels "$data/scifact/qrels/test.tsv" \
    --exclude-train-qrels "$data/scifact/qrels/train.tsv" > "$out/$name-scifact-novel.json"
[ -f "$idx/vaswani/manifest.json" ] && same_length "$idx/vaswani/manifest.json" || latesearch index "$data/vaswani/doc-text.trec" "$idx/vaswani" \
    --model "$model" --no-ann --overwrite --quiet --doc-maxlen "$maxlen"
ev "$idx/vaswani" --queries "$data/vaswani/query-text.trec" --qrels "$data/vaswani/qrels" \
    --run "$runs/$name-vaswani.trec" > "$out/$name-vaswani.json"
for f in "$out/$name"-scifact-test.json "$out/$name"-scifact-novel.json "$out/$name"-vaswani.json; do
  python -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[1], {k: round(v,4) for k,v in d['aggregate'].items()}, d['n_queries'])" "$f"
done
