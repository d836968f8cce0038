#!/bin/bash
# v15c: seeds 2 and 3 of v14c's command, each stopped after step 100's checkpoint and dev evaluation
# Seed 2 ran under a first version that sent SIGINT, which a background job ignores: it was
# stopped by hand with SIGTERM at step 150 (its step-100 checkpoint and dev evaluation were
# complete; steps 101-150 were never evaluated or used). Seed 3 ran this version.
cd /work/main
for seed in 2 3; do
  out=runs/default-v15c-s$seed
  latesearch train --triples .work/dm/data14/weak.jsonl --collection .work/dm/data14/collection.jsonl \
    --queries .work/dm/data14/queries.tsv --negatives 11 --distill-from triples \
    --base-model .work/dm/start8 --output $out --steps 400 --batch-size 16 --lr 3e-5 \
    --projection-lr 1e-4 --warmup-steps 40 --doc-maxlen 128 --train-layers 3 --anchor-weight 1.0 \
    --doc-chunk 32 --save-every 100 --eval-every 100 --dev-queries .work/dm/dev/queries.tsv \
    --dev-qrels .work/dm/dev/qrels-novel.txt --dev-collection .work/dm/dev/collection.jsonl \
    --dev-average groups --log-every 10 --seed $seed --device cpu > .work/v15c-s$seed.log 2>&1 &
  pid=$!
  # wait for step 100's dev evaluation to be logged, then stop the run
  while kill -0 $pid 2>/dev/null; do
    if [ -f $out/eval.jsonl ] && grep -q "\"step\": 100" $out/eval.jsonl && [ -d $out/checkpoints/step-000100 ]; then
      sleep 5; kill -TERM $pid; wait $pid; break
    fi
    sleep 10
  done
  echo "seed $seed done: $(date)" >> .work/v15c.done
done
