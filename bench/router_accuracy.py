"""Accuracy of the task router on the labelled prompts in tests/rag/data/router_prompts.jsonl, per language.

    .venv/bin/python bench/router_accuracy.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.router import TaskRouter  # noqa: E402

PROMPTS = ROOT / "tests" / "rag" / "data" / "router_prompts.jsonl"


def main() -> None:
    rows = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    router = TaskRouter()
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    mistakes = []
    for row in rows:
        got = router.route(row["text"], has_image=row["has_image"]).task
        total[row["lang"]] += 1
        if got == row["task"]:
            right[row["lang"]] += 1
        else:
            mistakes.append((row["lang"], row["task"], got, row["text"]))
    print("| language | prompts | accuracy |\n|---|---:|---:|")
    for lang in sorted(total):
        print(f"| {lang} | {total[lang]} | {right[lang] / total[lang]:.3f} |")
    for lang, expected, got, text in mistakes:
        print(f"  {lang}: expected {expected}, got {got}: {text}")


if __name__ == "__main__":
    main()
