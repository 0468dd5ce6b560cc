"""Calibrate the "not found in the documents" threshold on data not used for evaluation.

Ingests the paragraphs of some articles of a SQuAD-format file (the corpus),
then scores two sets of questions with the chain's evidence gate (the best
supporting sentence of the top passages, cosine + keyword overlap):
*answerable* questions about the ingested articles and *unanswerable* ones
about held-out articles of the same file. Prints the score distributions,
a threshold table, and the chosen threshold: the highest one that still
answers at least `--min-answered` (default 95 %) of the answerable questions,
because a wrong "not found" hides what the documents do hold, while a wrong
answer still shows its cited source. The balanced-accuracy optimum is printed
beside it for reference.

    .venv/bin/python bench/calibrate_abstention.py ../shared/data/qa/train/squad_v1.1_train.json --language en
    .venv/bin/python bench/calibrate_abstention.py ../shared/data/qa/cmrc2018/cmrc2018_trial.json --language zh
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


AGREEMENT_WINDOW = 5  # top passages looked at for the agreement signal


def threshold_for_recall(answerable: np.ndarray, min_answered: float) -> float:
    """The highest threshold that keeps at least `min_answered` of the answerable questions answered."""
    ordered = np.sort(answerable)
    allowed_misses = int(np.floor((1 - min_answered) * len(ordered)))
    return float(ordered[min(allowed_misses, len(ordered) - 1)])


def choose_threshold(answerable: np.ndarray, unanswerable: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy) maximising balanced accuracy over every observed score."""
    candidates = np.unique(np.concatenate([answerable, unanswerable]))
    best = (0.0, 0.5)
    for t in candidates:
        accuracy = ((answerable >= t).mean() + (unanswerable < t).mean()) / 2
        if accuracy > best[1]:
            best = (float(t), float(accuracy))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad", type=Path)
    parser.add_argument("--language", required=True, help="Key of RAG_ABSTAIN__EVIDENCE this calibrates (en, zh).")
    parser.add_argument("--articles", type=int, default=30, help="Articles ingested (the same number held out).")
    parser.add_argument("--questions", type=int, default=400, help="Questions per set.")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--min-answered", type=float, default=0.95,
                        help="Share of answerable questions the threshold must still answer.")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.text.reading import ReaderPassage
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from index.store import IndexStore
    from rag.components import build_ingest_pipeline, build_retriever
    from rag.settings import Settings
    from rag.evaluation.qa import read_squad, squad_items

    articles = read_squad(args.squad)
    rng = random.Random(args.seed)
    order = list(range(len(articles)))
    rng.shuffle(order)
    n = min(args.articles, len(articles) // 2)
    ingested, held_out = sorted(order[:n]), sorted(order[n : 2 * n])
    work = Path(tempfile.mkdtemp(prefix="calibrate-"))
    answerable = squad_items(articles, work / "docs", only=set(ingested))
    unanswerable = squad_items(articles, only=set(held_out))  # their paragraphs are never written
    answerable = rng.sample(answerable, min(args.questions, len(answerable)))
    unanswerable = rng.sample(unanswerable, min(args.questions, len(unanswerable)))

    settings = Settings(index={"dir": work / "index"})
    store = IndexStore(settings.index.dir)
    pipeline = build_ingest_pipeline(settings, store)
    report = pipeline.run([work / "docs"])
    embedder = pipeline.embedder
    with store.reader() as index:
        retriever = build_retriever(settings, index, embedder)
        evidence = SentenceReader(embedder, analyze)

        def score(question: str) -> tuple[float, int]:
            """(best sentence score, how many of the top `AGREEMENT_WINDOW` passages share the first's article)."""
            found = retriever.run(question, top_k=max(settings.retrieval.top_k, AGREEMENT_WINDOW)).passages
            passages = found[: settings.retrieval.top_k]
            reader_passages = [ReaderPassage(p.chunk_id, p.text, p.start) for p in passages]
            articles = [Path(p.source).name[:4] for p in found[:AGREEMENT_WINDOW]]  # AAAA-PPP.txt
            return evidence.run(question, reader_passages).confidence, articles.count(articles[0]) if articles else 0

        yes_scored = [score(q.question) for q in answerable]
        no_scored = [score(q.question) for q in unanswerable]
        yes = np.array([s for s, _ in yes_scored])
        no = np.array([s for s, _ in no_scored])
        yes_agree = np.array([a for _, a in yes_scored])
        no_agree = np.array([a for _, a in no_scored])
    balanced_threshold, balanced = choose_threshold(yes, no)
    threshold = threshold_for_recall(yes, args.min_answered)
    print(f"{args.squad.name}: {report.ingested} paragraphs of {n} articles ingested ({report.chunks_added} chunks); "
          f"{len(yes)} answerable and {len(no)} unanswerable questions (from {n} held-out articles)\n")
    print("| set | p10 | p50 | p90 |\n|---|---|---|---|")
    for name, values in (("answerable", yes), ("unanswerable", no)):
        print(f"| {name} | {np.percentile(values, 10):.3f} | {np.percentile(values, 50):.3f} | {np.percentile(values, 90):.3f} |")
    print("\n| threshold | answerable answered | unanswerable abstained | balanced accuracy |\n|---|---|---|---|")
    grid = np.round(np.linspace(np.percentile(no, 5), np.percentile(yes, 50), 6), 3)
    for t in sorted({round(threshold, 3), round(balanced_threshold, 3), *grid}):
        mark = " (chosen)" if t == round(threshold, 3) else " (best balanced accuracy)" if t == round(balanced_threshold, 3) else ""
        print(f"| {t:.3f}{mark} | {(yes >= t).mean():.3f} | {(no < t).mean():.3f} | "
              f"{((yes >= t).mean() + (no < t).mean()) / 2:.3f} |")
    print(f"\nPassing also when the sentence score is within a margin of {threshold:.3f} and at least k of the top "
          f"{AGREEMENT_WINDOW} passages come from the top passage's article (the retrieval agrees on one document):")
    print("| margin | k | answerable answered (was) | unanswerable abstained (was) |\n|---|---|---|---|")
    for margin in (0.02, 0.04, 0.06):
        for k in (3, 4):
            def passes(scores, agree, margin=margin, k=k):  # noqa: ANN001, ANN202
                return (scores >= threshold) | ((scores >= threshold - margin) & (agree >= k))
            print(f"| {margin:.2f} | {k} | {passes(yes, yes_agree).mean():.3f} ({(yes >= threshold).mean():.3f}) | "
                  f"{1 - passes(no, no_agree).mean():.3f} ({(no < threshold).mean():.3f}) |")
    print(f"\nRAG_ABSTAIN_EVIDENCE[{args.language!r}] = {threshold:.3f}: answers {(yes >= threshold).mean():.1%} of "
          f"answerable questions, abstains on {(no < threshold).mean():.1%} of unanswerable ones "
          f"(best balanced accuracy {balanced:.3f} at {balanced_threshold:.3f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "file": str(args.squad), "language": args.language, "threshold": threshold, "min_answered": args.min_answered,
            "balanced_threshold": balanced_threshold, "balanced_accuracy": balanced,
            "answerable_answered": float((yes >= threshold).mean()), "unanswerable_abstained": float((no < threshold).mean()),
            "articles": n, "seed": args.seed, "answerable_scores": yes.tolist(), "unanswerable_scores": no.tolist(),
            "answerable_agreement": yes_agree.tolist(), "unanswerable_agreement": no_agree.tolist(),
        }, indent=1))


if __name__ == "__main__":
    main()
