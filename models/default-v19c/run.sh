#!/usr/bin/env bash
# The v19c run and its dev scoring. (It ran from a local driver that first waited for the
# v18 test evaluations to finish; the commands are these, unchanged.)
set -euo pipefail
latesearch train --triples .work/dm/data16/neighbours.jsonl --collection .work/dm/data14/collection.jsonl \
    --queries .work/dm/data14/queries.tsv --negatives 11 --distill-from triples \
    --base-model .work/dm/start8 --output runs/default-v19c --steps 100 --batch-size 16 --lr 3e-5 \
    --projection-lr 1e-4 --warmup-steps 20 --doc-maxlen 300 --train-layers 3 --anchor-weight 1.0 \
    --doc-chunk 32 --save-every 50 --eval-every 50 --dev-queries .work/dm/dev/queries.tsv \
    --dev-qrels .work/dm/dev/qrels-novel.txt --dev-collection .work/dm/dev/collection.jsonl \
    --dev-average groups --log-every 10 --seed 12345 --device cpu
python scripts/default_model/evaluate_dev.py --dev .work/dm/dev --novel-positives .work/dm/data6/triples.jsonl \
    --doc-maxlen 300 --out benchmarks/results/default-model/dev-doclen.json \
    "v19c step 50 @300=runs/default-v19c/checkpoints/step-000050" "v19c step 100 @300=runs/default-v19c/checkpoints/step-000100"
