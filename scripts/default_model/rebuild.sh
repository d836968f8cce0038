#!/usr/bin/env bash
# Rebuild the default model, latesearch-default-v18, from SciFact and Vaswani (docs/model.md):
# its start, data, three training runs, their soup, the shipped delta, and the evaluation
# that chose it and measures it. Each step is skipped once it has completed (a marker
# DM/.done-STEP written after it succeeds), so an interrupted rebuild resumes where it
# stopped; an interrupted training run continues from its last checkpoint (--resume).
# Before each `latesearch train`, check_train_config.py compares the config the command
# builds with the shipped run's logged config (models/default-v17c/) and stops on a
# difference. The delta is written to DM/delta and compared with the shipped one; to ship
# it, run ship.py without --out.
#
# usage: scripts/default_model/rebuild.sh [--dry-run] [DATA=../shared/data]
#   env: DM=.work/dm (working files), RUNS=runs (training runs), UNTIL=STEP (stop after STEP)
#   --dry-run prints every command and runs only the config checks.
# Time on 2 CPU cores: about 30 minutes to data16, 31 minutes per training run (three),
# about an hour of evaluation (docs/model.md). Paths must not contain spaces.
set -euo pipefail
dry=0
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
data=${1:-../shared/data}; dm=${DM:-.work/dm}; runs=${RUNS:-runs}; until=${UNTIL:-}
here=scripts/default_model; logged=models/default-v17c; ev=$dm/eval
export DM=$dm EVAL=$ev
[ $dry = 1 ] || mkdir -p "$dm/logs" "$ev"

step() {  # step NAME COMMAND...: run the COMMANDs (strings) unless DM/.done-NAME exists
  local name=$1; shift
  if [ $dry = 1 ]; then
    echo "# step $name"; printf '%s\n' "$@"
  elif [ -f "$dm/.done-$name" ]; then
    echo "have $name"
  else
    echo "step $name"
    local cmd start=$SECONDS; for cmd in "$@"; do echo "+ $cmd"; eval "$cmd"; done
    touch "$dm/.done-$name"; echo "done $name in $((SECONDS - start)) s"
  fi
  if [ "$name" = "$until" ]; then echo "stopping after $name (UNTIL)"; exit 0; fi
}

sources="--scifact $data/scifact --vaswani $data/vaswani/doc-text.trec"
texts="$data/scifact/corpus.jsonl $data/vaswani/doc-text.trec latesearch/resources/demo/collection.jsonl"

# 1. the start: the backbone in ColBERT format without [Q]/[D] markers or [MASK]
#    augmentation, 128-d head from a PCA of its document tokens with the mean removed
step start8 "python $here/make_start.py --texts $texts --out $dm/start8 --remove-mean --no-query-augmentation --no-markers" \
    "python -c 'import json, sys; a, b = (json.load(open(f))[\"kept\"] for f in sys.argv[1:]); print(f\"start8 keeps {a:.6f} of the token second moment (logged run: {b:.6f})\")' $dm/start8/start_info.json $logged/start_info.json"
# 2. the dev set (three domains: SciFact dev queries cut from the training judgements,
#    Vaswani spans, the demo collection) and its SciFact-novel-like judgements
step data3 "python $here/make_data.py $sources --out $dm/data3 --teacher-scale tokens"
step dev "python $here/make_dev.py $sources --data $dm/data3 --out $dm/dev"
step data6 "python $here/make_data.py $sources --out $dm/data6 --teacher-scale tokens --teacher-bm25 0.2 --negatives 11 --weak-per-domain 1000 --exclude-dev $dm/dev"
step qrels-novel "python $here/make_novel_qrels.py --dev $dm/dev --triples $dm/data6/triples.jsonl --out $dm/dev/qrels-novel.txt"
# 3. the training data: weak queries (SciFact titles, Vaswani spans) with 31 BM25
#    neighbours scored by the teacher z(raw MaxSim) + 0.2 z(BM25); data16 keeps 12
#    neighbours per query and drops the source document
step data14 "python $here/make_data.py $sources --out $dm/data14 --teacher-scale tokens --teacher-bm25 0.2 --negatives 31 --depth 60 --weak-per-domain 4000 --exclude-dev $dm/dev --weak-positive sf=rest,vw=source --force sf,sft" \
    "grep -v '^\[\"sf:' $dm/data14/triples.jsonl > $dm/data14/weak.jsonl"
step data16 "python $here/make_neighbours.py $dm/data14 $dm/data16 --keep 12 --name neighbours.jsonl"

# 4. three training runs, seeds 12345, 2 and 3 (seed 12345 evaluated on dev every 50 steps,
#    as logged; the others at step 200 only)
train_args() {  # train_args SEED EVERY
  echo "--triples $dm/data16/neighbours.jsonl --collection $dm/data14/collection.jsonl" \
    "--queries $dm/data14/queries.tsv --negatives 11 --distill-from triples" \
    "--base-model $dm/start8 --output $runs/v18-s$1 --steps 200 --batch-size 16 --lr 3e-5" \
    "--projection-lr 1e-4 --warmup-steps 20 --doc-maxlen 128 --train-layers 3 --anchor-weight 1.0" \
    "--doc-chunk 32 --save-every $2 --eval-every $2 --dev-queries $dm/dev/queries.tsv" \
    "--dev-qrels $dm/dev/qrels-novel.txt --dev-collection $dm/dev/collection.jsonl" \
    "--dev-average groups --log-every 10 --seed $1 --device cpu"
}
for run in "12345 50 train_config-s12345.json" "2 200 train_config-s2.json" \
           "3 200 train_config-s2.json --set seed=3"; do
  read -r seed every config extra <<< "$run"
  check="python $here/check_train_config.py $logged/$config --dm $dm${extra:+ $extra} -- $(train_args "$seed" "$every")"
  if [ $dry = 1 ]; then
    echo "# config check, seed $seed:"; eval "$check" || echo "# (config check failed)"
  fi
  out=$runs/v18-s$seed
  step "train-s$seed" "$check" \
    "latesearch train $(train_args "$seed" "$every") \$([ -f $out/train_config.json ] && echo --resume) 2>&1 | tee -a $dm/logs/train-s$seed.log"
done

# 5. the uniform soup of the three step-200 checkpoints, written as a delta at doc_maxlen 300
step soup "latesearch mix $runs/v18-s12345/checkpoints/step-000200 $runs/v18-s2/checkpoints/step-000200 $runs/v18-s3/checkpoints/step-000200 --output $dm/soup"
step ship "python $here/ship.py $dm/soup --doc-maxlen 300 --out $dm/delta --note recipe=models/README.md --note run=models/default-v17c/ --note 'doc_maxlen_choice=models/README.md, v18'" \
    "python -c 'import json, sys; a, b = (json.load(open(f)) for f in sys.argv[1:]); print(\"delta.json:\", \"same as the shipped one\" if a == b else [k for k in a if a[k] != b.get(k)])' $dm/delta/delta.json latesearch/resources/default_model/delta.json"

# 6. evaluation. Dev: the soup at 180, 300 and 512 tokens and the raw 384-d scorer at 300
#    (the choice of doc_maxlen). Test: the table of docs/model.md. Then the results page.
step raw "python $here/make_raw.py --out $dm/raw"
step start "python $here/make_start.py --texts $texts --out $dm/start"
dev="python $here/evaluate_dev.py --dev $dm/dev --novel-positives $dm/data6/triples.jsonl --out $ev/dev.json"
step eval-dev "$dev --doc-maxlen 180 'v18 weights @ 180=$dm/soup'" \
    "$dev --doc-maxlen 300 'v18 weights @ 300=$dm/soup' 'raw 384-d @ 300=$dm/raw' 'untrained start @ 300=$dm/start8'" \
    "$dev --doc-maxlen 512 'v18 weights @ 512=$dm/soup'"
step eval-test "DOC_MAXLEN=300 $here/evaluate.sh $dm/delta v18 $data" \
    "DOC_MAXLEN=300 $here/evaluate.sh $dm/raw raw300 $data" \
    "$here/evaluate.sh $dm/raw raw $data" \
    "$here/evaluate.sh $dm/start8 start8 $data" \
    "$here/evaluate.sh $dm/start start $data" \
    "DATA=$data $here/compare.sh $ev/v18-vs-raw300 raw300 v18"
step table "python $here/results_table.py --collect $ev"
