"""Span or sentence? How answer granularity trades exactness (EM / F1) for containment, by reader confidence.

On development questions (by default the last 10 articles of SQuAD v1.1 *train*,
which `bench/finetune/reader.sh` holds out of training), the extractive reader
reads each question's own paragraph. For every threshold τ on the best span's
score p(start)·p(end), the answer is the span when its score ≥ τ and otherwise
the sentence that contains the span. Prints EM, F1 and containment per τ and
picks the τ with the best F1 among those whose containment is at least the
sentence extractor's (the previous offline default) on the same questions:
answers become exact where the reader is sure, and are never less often right.
Development data only.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/reader_granularity.py --reader generators/models/reader-minilm-squad
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators.text.qa_reader import ExtractiveReader  # noqa: E402
from generators.text.reading import ReaderPassage  # noqa: E402
from generators.text.sentence_reader import sentence_bounds  # noqa: E402
from rag.evaluation.metrics import contains_answer, exact_match, f1_score  # noqa: E402
from rag.evaluation.qa import read_squad, squad_items  # noqa: E402

THRESHOLDS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.01]


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence(s) of `text` that hold the span [start, end)."""
    return text[slice(*sentence_bounds(text, start, end))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", required=True, help="reader folder or Hub name")
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/qa/train/squad_v1.1_train.json")
    parser.add_argument("--last-articles", type=int, default=10, help="use the file's last N articles")
    parser.add_argument("--limit", type=int, default=600, help="questions, spread over those articles")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "reader_granularity.json")
    args = parser.parse_args()

    articles = read_squad(args.squad)
    chosen = range(len(articles) - args.last_articles, len(articles))
    items = squad_items(articles, only=set(chosen))
    if args.limit and len(items) > args.limit:
        step = len(items) / args.limit
        items = [items[int(k * step)] for k in range(args.limit)]
    reader = ExtractiveReader(args.reader)
    baseline = sentence_reader_scores(items)
    rows = []
    for item in items:
        result = reader.run(item.question, [ReaderPassage(0, item.context, 0)], top_k=1)
        if not result.spans:
            rows.append({"score": 0.0, "span": "", "sentence": "", "answers": item.answers})
            continue
        span = result.spans[0]
        rows.append({"score": span.score, "span": span.text, "sentence": sentence_around(item.context, span.start, span.end),
                     "answers": item.answers})

    def scores(answer_of) -> dict:
        n = len(rows)
        return {"em": round(sum(exact_match(answer_of(r), r["answers"]) for r in rows) / n, 4),
                "f1": round(sum(f1_score(answer_of(r), r["answers"]) for r in rows) / n, 4),
                "contains": round(sum(contains_answer(answer_of(r), r["answers"]) for r in rows) / n, 4)}

    table = []
    for tau in THRESHOLDS:
        spans = sum(r["score"] >= tau for r in rows) / len(rows)
        table.append({"tau": tau, "span_share": round(spans, 3),
                      **scores(lambda r, t=tau: r["span"] if r["score"] >= t else r["sentence"])})
    chosen = pick_threshold(table, baseline["contains"])
    print(f"{len(rows)} questions; reader {args.reader}")
    print(f"sentence reader (the previous offline default) on the same questions: {baseline}")
    print(f"chosen τ = {chosen['tau']}: the highest F1 whose containment is at least the sentence reader's")
    print("| τ | answered with a span | EM | F1 | contains |\n|---:|---:|---:|---:|---:|")
    for row in table:
        print(f"| {row['tau']:.2f} | {row['span_share']:.1%} | {row['em']:.3f} | {row['f1']:.3f} | {row['contains']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"reader": args.reader, "questions": len(rows), "table": table,
                                    "sentence_reader": baseline, "chosen": chosen}, indent=1))


def sentence_reader_scores(items) -> dict:
    """The offline sentence extractor on the same questions: the containment a widened answer must keep."""
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from rag.components import build_embedder
    from rag.settings import Settings

    reader = SentenceReader(build_embedder(Settings()), analyze)
    answers = [(reader.run(i.question, [ReaderPassage(0, i.context, 0)]).answer, i.answers) for i in items]
    n = len(answers)
    return {"em": round(sum(exact_match(a, g) for a, g in answers) / n, 4),
            "f1": round(sum(f1_score(a, g) for a, g in answers) / n, 4),
            "contains": round(sum(contains_answer(a, g) for a, g in answers) / n, 4)}


def pick_threshold(table: list[dict], floor: float) -> dict:
    """The row with the best F1 among those at least as often right (containment) as `floor`."""
    eligible = [row for row in table if row["contains"] >= floor] or [max(table, key=lambda r: r["contains"])]
    return max(eligible, key=lambda row: (row["f1"], -row["tau"]))


if __name__ == "__main__":
    main()
