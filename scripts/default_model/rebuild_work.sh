#!/usr/bin/env bash
# Rebuild the ignored working files of the default-model scripts (.work/dm), which a fresh
# checkout lacks: the no-marker start (start8), the raw 384-d scorer (raw), the data whose
# SciFact dev split and Vaswani spans the dev set is cut against (data3; data/ holds its dev
# split for evaluate.sh), the multi-domain dev set (dev) with its SciFact-novel-like
# judgements (qrels-novel.txt, from data6), the pydocs dev set (devpy) and data6 (v6b-v10's
# training data). Each step is skipped when it has completed before (a marker DM/.done-STEP
# written after it succeeds), so an interrupted rebuild resumes. About 10 minutes on 2 CPU
# cores.
# usage: scripts/default_model/rebuild_work.sh [DATA=../shared/data]   (DM=.work/dm by default)
set -euo pipefail
data=${1:-../shared/data}; dm=${DM:-.work/dm}; here=scripts/default_model
export PYTHONPATH=$here/probes${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$dm"
step() {  # step NAME COMMAND...: run COMMAND unless DM/.done-NAME exists
  local name=$1; shift
  if [ -f "$dm/.done-$name" ]; then echo "have $dm/$name"; return; fi
  echo "building $dm/$name"; "$@"; touch "$dm/.done-$name"
}
sources=(--scifact "$data/scifact" --vaswani "$data/vaswani/doc-text.trec")
step start8 python $here/make_start.py --texts "$data/scifact/corpus.jsonl" \
    "$data/vaswani/doc-text.trec" latesearch/resources/demo/collection.jsonl \
    --out "$dm/start8" --remove-mean --no-query-augmentation --no-markers
step raw python $here/make_raw.py --out "$dm/raw"
step data3 python $here/make_data.py "${sources[@]}" --out "$dm/data3" --teacher-scale tokens
step data bash -c "mkdir -p '$dm/data' && cp '$dm/data3/dev_queries.tsv' '$dm/data3/dev_qrels.txt' '$dm/data/'"
step dev python $here/make_dev.py "${sources[@]}" --data "$dm/data3" --out "$dm/dev"
step devpy python $here/make_pydocs_dev.py --out "$dm/devpy"
step data6 python $here/make_data.py "${sources[@]}" --out "$dm/data6" --teacher-scale tokens \
    --teacher-bm25 0.2 --negatives 11 --weak-per-domain 1000 --exclude-dev "$dm/dev"
step qrels-novel bash -c "python $here/make_novel_qrels.py --dev '$dm/dev' \
    --triples '$dm/data6/triples.jsonl' --out '$dm/dev/qrels-novel.txt'"
