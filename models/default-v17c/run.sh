#!/usr/bin/env bash
set -euo pipefail
for seed in 2 3; do
latesearch train --triples .work/dm/data16/neighbours.jsonl --collection .work/dm/data14/collection.jsonl \
    --queries .work/dm/data14/queries.tsv --negatives 11 --distill-from triples \
    --base-model .work/dm/start8 --output runs/default-v17c-s$seed --steps 200 --batch-size 16 --lr 3e-5 \
    --projection-lr 1e-4 --warmup-steps 20 --doc-maxlen 128 --train-layers 3 --anchor-weight 1.0 \
    --doc-chunk 32 --save-every 200 --eval-every 200 --dev-queries .work/dm/dev/queries.tsv \
    --dev-qrels .work/dm/dev/qrels-novel.txt --dev-collection .work/dm/dev/collection.jsonl \
    --dev-average groups --log-every 10 --seed $seed --device cpu > .work/dm/v17c-s$seed.log 2>&1
done
