#!/bin/bash
# A second training stage for the reranker: continues the model of reranker.sh (STAGE1_DIR) on a fresh draw
# of 6,000 SQuAD v1.1 *train* questions (seed 43: other questions and another order than the first stage's,
# which saw about half of its 24,000 pairs), at a lower learning rate. Same held-out articles, same mining,
# never XQuAD, CMRC 2018 or SciFact. Tried 2026-12-04 and not adopted: no held-out gain (bench/RESULTS.md).
# Resumable like reranker.sh:
#   bash bench/finetune/reranker_more.sh STAGE1_DIR OUT_DIR [--resume]
# Ship only a model that beats the shipped one on the held-out articles (evaluations.jsonl):
#   python bench/finetune/ship.py OUT_DIR reranker-minilm-squad
set -euo pipefail
base=${1:?usage: reranker_more.sh STAGE1_DIR OUT_DIR [--resume]}
out=${2:?usage: reranker_more.sh STAGE1_DIR OUT_DIR [--resume]}
shift 2
cd "$(dirname "$0")/../.."
HF_HUB_OFFLINE=1 RAG_RERANK__MODEL=none exec .venv/bin/rag finetune reranker \
  --squad ../shared/data/qa/train/squad_v1.1_train.json \
  --out "$out" \
  --base "$base" \
  --max-examples 6000 --negatives 3 --holdout 10 --eval-limit 300 \
  --max-steps 240 --batch-size 32 --lr 2e-5 --max-seq-len 256 \
  --eval-steps 80 --save-steps 40 --threads 2 --seed 43 "$@"
