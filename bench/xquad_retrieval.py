"""Open-setting retrieval on XQuAD: every paragraph ingested as a document; is the gold paragraph in the top k?

Runs this project's ingestion and retrievers (dense, BM25, hybrid RRF) over the
240 paragraphs of a SQuAD-format file, then asks all its questions. Reports
recall@1 and recall@5 of the gold paragraph per retriever, and the share of
questions whose best sentence (offline sentence reader, over the hybrid top 5)
contains a gold answer.

    .venv/bin/python bench/xquad_retrieval.py ../shared/data/qa/xquad.en.json
    .venv/bin/python bench/xquad_retrieval.py ../shared/data/qa/xquad.zh.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions (0 = all).")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.text.reading import ReaderPassage
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from index.store import IndexStore
    from rag.components import build_ingest_pipeline, build_retriever
    from rag.evaluation.qa import load_squad
    from rag.retriever import HybridRetriever
    from rag.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="xquad-"))
    questions = [(q.question, q.path, q.answers) for q in load_squad(args.squad, work / "docs")]
    if args.limit:
        questions = questions[: args.limit]

    settings = Settings(index={"dir": work / "index"})
    store = IndexStore(settings.index.dir)
    pipeline = build_ingest_pipeline(settings, store)
    report = pipeline.run([work / "docs"])
    embedder = pipeline.embedder
    reader = store.reader()
    sentence_reader = SentenceReader(embedder, analyze)
    configs = {
        "dense": HybridRetriever(reader, embedder, bm25_weight=0.0),
        "bm25": HybridRetriever(reader, embedder, dense_weight=0.0),
        "hybrid (RRF 1:1, k 60)": HybridRetriever(reader, embedder, dense_weight=1.0, rrf_k=60),
        "hybrid, language-aware (RRF 1:1, k 60)": HybridRetriever(reader, embedder, dense_weight=1.0, rrf_k=60,
                                                                  dense_languages=settings.embedder.languages),
        "hybrid, language-aware, tuned on dev data (default)": build_retriever(settings, reader, embedder),
    }
    print(f"{args.squad.name}: {report.ingested} paragraphs, {report.chunks_added} chunks, {len(questions)} questions\n")
    print("| retriever | recall@1 | recall@5 | latency p50 ms |\n|---|---|---|---|")
    for name, retriever in configs.items():
        hits1 = hits5 = contains = 0
        latencies = []
        for question, gold, answers in questions:
            started = time.perf_counter()
            result = retriever.run(question, top_k=5)
            latencies.append((time.perf_counter() - started) * 1000)
            sources = [p.source for p in result.passages]
            hits1 += bool(sources[:1] == [gold])
            hits5 += gold in sources
            if name.endswith("(default)"):
                spans = sentence_reader.run(question, [ReaderPassage(p.chunk_id, p.text, p.start) for p in result.passages]).spans
                contains += bool(spans) and any(ans in spans[0].text for ans in answers)
        n = len(questions)
        print(f"| {name} | {hits1 / n:.3f} | {hits5 / n:.3f} | {statistics.median(latencies):.1f} |", flush=True)
    print(f"\nsentence reader over the default retriever's top 5: best sentence contains a gold answer for {contains / n:.1%}")


if __name__ == "__main__":
    main()
