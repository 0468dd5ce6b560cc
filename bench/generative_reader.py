"""Generative reader in the gold setting: the reader sees each question's own paragraph.

Asks the first N questions of a SQuAD-format file through `GenerativeReader`
and reports EM, token F1 (SQuAD normalisation), whether the answer contains a
gold answer, how the citations fared (answers citing a valid passage,
answers citing an out-of-range number, citations inferred), abstentions (the
fixed "not in the passages" reply), and p50/p95 latency per answer.

    # the offline default: SmolLM2-135M-Instruct GGUF through transformers
    .venv/bin/python bench/generative_reader.py ../shared/data/qa/xquad.en.json --limit 100
    # any OpenAI-compatible server, e.g. llama_cpp.server over the same GGUF
    .venv/bin/python bench/generative_reader.py ../shared/data/qa/xquad.en.json --limit 100 \
        --openai-base-url http://127.0.0.1:8000/v1 --model smollm2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad", type=Path)
    parser.add_argument("--limit", type=int, default=100, help="Only the first N questions (0 = all).")
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--openai-base-url", default=None, help="Use OpenAIGenerator against this endpoint.")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--jsonl", type=Path, default=None, help="Write one line per question here.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.text.generative_reader import GenerativeReader
    from generators.text.reading import ReaderPassage
    from generators.text.text_generators import LocalGenerator, OpenAIGenerator
    from rag.evaluation.metrics import contains_answer, exact_match, f1_score, percentile

    data = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    questions = [
        (qa["question"], paragraph["context"], [a["text"] for a in qa["answers"]])
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    if args.limit:
        questions = questions[: args.limit]

    if args.openai_base_url:
        generator = OpenAIGenerator(args.model, base_url=args.openai_base_url, timeout=120, max_retries=0)
    else:
        generator = LocalGenerator(args.model)
    started = time.perf_counter()
    generator.warm_up()
    load_seconds = time.perf_counter() - started
    reader = GenerativeReader(generator, max_new_tokens=args.max_new_tokens)

    rows = []
    for question, context, answers in questions:
        began = time.perf_counter()
        result = reader.run(question, [ReaderPassage(key=0, text=context, offset=0)])
        seconds = time.perf_counter() - began
        plain = re.sub(r"\s*\[\d+\]", "", result.answer).strip()  # the markers are not part of the answer
        assert all(context[s.start : s.end] == s.text for s in result.spans)
        rows.append({
            "question": question,
            "answers": answers,
            "answer": result.answer,
            "em": exact_match(plain, answers),
            "f1": f1_score(plain, answers),
            "contains": contains_answer(plain, answers) if plain else 0.0,
            "abstained": not result.answer,
            "cited": bool(result.spans) and not any("inferred" in n for n in result.notes),
            "out_of_range": any("were given" in n for n in result.notes),
            "inferred": any("inferred" in n for n in result.notes),
            "span_contains": float(any(contains_answer(s.text, answers) for s in result.spans)),
            "seconds": seconds,
        })
        if args.jsonl is None and len(rows) % 10 == 0:
            print(f"{len(rows)}/{len(questions)} answered", file=sys.stderr)

    if args.jsonl is not None:
        args.jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    n = len(rows)
    latencies = [r["seconds"] * 1000 for r in rows]
    summary = {
        "file": str(args.squad),
        "questions": n,
        "generator": f"{type(generator).__name__}({args.model})",
        "em": round(statistics.mean(r["em"] for r in rows), 3),
        "f1": round(statistics.mean(r["f1"] for r in rows), 3),
        "answer_contains_gold": round(statistics.mean(r["contains"] for r in rows), 3),
        "cited_span_contains_gold": round(statistics.mean(r["span_contains"] for r in rows), 3),
        "abstain_rate": round(sum(r["abstained"] for r in rows) / n, 3),
        "valid_citation_rate": round(sum(r["cited"] for r in rows) / n, 3),
        "out_of_range_citation_rate": round(sum(r["out_of_range"] for r in rows) / n, 3),
        "inferred_citation_rate": round(sum(r["inferred"] for r in rows) / n, 3),
        "latency_ms_p50": round(percentile(latencies, 50), 1),
        "latency_ms_p95": round(percentile(latencies, 95), 1),
        "load_seconds": round(load_seconds, 1),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
