"""Reranker latency per question: torch against onnx-int8 (the same model), in alternating rounds.

Each question of the last `--articles` articles of a SQuAD-format file (held out
from the shipped reranker's training) is scored against `--passages` paragraphs
of its own article, as the chain scores its rerank depth. Reports p50 / p95 ms
per question for each backend, round by round (the machine's noise shows as the
spread between rounds), the speed ratio, and how often the two backends agree
on the best passage.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_speed.py ../shared/data/qa/train/squad_v1.1_train.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="A SQuAD-format file.")
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--passages", type=int, default=20, help="Passages per question (the rerank depth).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="cross-encoder/ms-marco-MiniLM-L-6-v2",
                        help="Hub name or folder (offline: the shipped reranker).")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.text.reranker import CrossEncoderReranker

    articles = json.loads(args.data.read_text())["data"][-args.articles:]
    cases = []
    for article in articles:
        paragraphs = [p["context"] for p in article["paragraphs"]][: args.passages]
        for paragraph in article["paragraphs"][: args.passages]:
            cases.extend((qa["question"], paragraphs) for qa in paragraph["qas"][:1])
    cases = cases[:: max(1, len(cases) // args.questions)][: args.questions]
    backends = {name: CrossEncoderReranker(args.model, backend=name) for name in ("torch", "onnx-int8")}
    for reranker in backends.values():
        reranker.warm_up()
        reranker.run(*cases[0])
    print(json.dumps({"model": str(backends["torch"].resolved.path), "questions": len(cases),
                      "passages": args.passages}))
    rounds: dict[str, list[list[float]]] = {name: [] for name in backends}
    best: dict[str, list[int]] = {name: [] for name in backends}
    for round_number in range(args.rounds):
        for name, reranker in backends.items():
            times = []
            for question, passages in cases:
                started = time.perf_counter()
                result = reranker.run(question, passages, retrieval_weight=0.0)
                times.append((time.perf_counter() - started) * 1000)
                if round_number == 0:
                    best[name].append(result.order[0])
            rounds[name].append(times)
    print("| backend | p50 ms per question, by round | p95 ms, by round |\n|---|---|---|")
    for name, runs in rounds.items():
        p50 = " / ".join(f"{statistics.median(r):.0f}" for r in runs)
        p95 = " / ".join(f"{np.percentile(r, 95):.0f}" for r in runs)
        print(f"| {name} | {p50} | {p95} |")
    ratio = statistics.median(sum(rounds["torch"], [])) / statistics.median(sum(rounds["onnx-int8"], []))
    agree = np.mean(np.equal(best["torch"], best["onnx-int8"]))
    print(f"\ntorch p50 / onnx-int8 p50 = {ratio:.2f}; same best passage for {agree:.1%} of questions")


if __name__ == "__main__":
    main()
