"""How should the reranker's ranking meet the retriever's? Chosen on development data, never on test sets.

The candidates the chain reranks (the hybrid retriever's top `--depth`, in
retrieval order) are scored once by the cross-encoder; then the final order is
the reranker's alone (weight 0) or its reciprocal-rank fusion with the
retrieval order at each weight of the grid (`generators.reranker.fused_order`,
the code the service runs; `RAG_RERANK_RETRIEVAL_WEIGHT`).

- `squad`: the last `--articles` articles of a SQuAD-format file (for SQuAD v1.1
  train: the 10 articles the shipped reranker and reader were not trained on),
  every paragraph a document; recall@1 / @5 of the question's paragraph.
- `beir`: a BEIR split (SciFact *train* for development); documents ranked by
  their best chunk, as `rag eval retrieval` does; nDCG@10 and recall@10.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_dev.py squad ../shared/data/qa/train/squad_v1.1_train.json
    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_dev.py beir ../shared/data/retrieval/scifact --split train
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEIGHTS = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]


def scored_candidates(retriever, reranker, query: str, depth: int, extra: int = 0):
    """(passages in retrieval order: the reranked head then `extra` more, the head's reranker scores)."""
    passages = retriever.run(query, top_k=depth + extra).passages
    head = passages[:depth]
    scores = reranker.run(query, [p.text for p in head], retrieval_weight=0.0).scores if head else []
    return passages, scores


def squad(args, settings, embedder, reranker) -> None:
    from generators.reading import ReaderPassage
    from generators.reranker import fused_order
    from generators.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from index.store import IndexStore
    from rag.chain import order_by_evidence
    from rag.components import build_ingest_pipeline, build_retriever
    from rag.evaluation.qa import read_squad, squad_items

    evidence = SentenceReader(embedder, analyze)

    def by_evidence(question: str, passages: list) -> list:
        """The top 5 re-ordered by their best supporting sentence, as the chain does without a reranker."""
        top = passages[:5]
        sentences = evidence.rank_sentences(question, [ReaderPassage(p.chunk_id, p.text, p.start) for p in top],
                                            top_k=evidence.max_sentences)
        return order_by_evidence(top, sentences, 0.1)

    articles = read_squad(args.data)
    chosen = list(range(len(articles) - args.articles, len(articles)))
    work = Path(tempfile.mkdtemp(prefix="rerank-dev-"))
    items = squad_items(articles, work / "docs", only=chosen)
    if args.limit:
        items = items[: args.limit]
    store = IndexStore(work / "index")
    build_ingest_pipeline(settings, store, embedder=embedder).run([work / "docs"])
    names = ["retrieval order", "retrieval top 5 by evidence (the chain without a reranker)",
             *(f"weight {w}" for w in WEIGHTS), *(f"weight {w}, top 5 by evidence" for w in WEIGHTS)]
    hits = {name: [0, 0] for name in names}
    latencies = []
    with store.reader() as index:
        retriever = build_retriever(settings, index, embedder)
        for item in items:
            started = time.perf_counter()
            passages, scores = scored_candidates(retriever, reranker, item.question, args.depth)
            latencies.append((time.perf_counter() - started) * 1000)
            finals = {"retrieval order": passages,
                      "retrieval top 5 by evidence (the chain without a reranker)": by_evidence(item.question, passages)}
            for w in WEIGHTS:
                reranked = [passages[i] for i in fused_order(scores, w)]
                finals[f"weight {w}"] = reranked
                finals[f"weight {w}, top 5 by evidence"] = by_evidence(item.question, reranked)
            for name, final in finals.items():
                sources = [p.source for p in final[:5]]
                hits[name][0] += sources[:1] == [item.path]
                hits[name][1] += item.path in sources
    print(f"{args.data.name}, last {args.articles} articles: {len(items)} questions, depth {args.depth}, "
          f"retrieve + rerank p50 {statistics.median(latencies):.0f} ms\n")
    print("| final order | recall@1 | recall@5 |\n|---|---|---|")
    for name, (at1, at5) in hits.items():
        print(f"| {name} | {at1 / len(items):.3f} | {at5 / len(items):.3f} |")


def beir(args, settings, embedder, reranker) -> None:
    from pathlib import Path as _Path

    from generators.reranker import fused_order
    from rag.components import build_ingest_pipeline, build_retriever, build_store
    from rag.evaluation.metrics import ndcg_at_k, recall_at_k
    from rag.evaluation.retrieval import DOCUMENT_DEPTH, load_beir, work_dir_for, write_corpus_documents

    dataset = load_beir(args.data, args.split)
    queries = dataset.queries[: args.limit] if args.limit else dataset.queries
    folder = work_dir_for(dataset.corpus_path, args.work)
    file_to_corpus_id = write_corpus_documents(dataset.corpus_path, folder / "docs")
    store = build_store(settings, folder / "index")
    build_ingest_pipeline(settings, store, embedder=embedder).run([folder / "docs"], prune=True)
    chunk_depth = 2 * DOCUMENT_DEPTH
    names = ["retrieval order", *(f"weight {w}" for w in WEIGHTS)]
    totals = {name: [0.0, 0.0] for name in names}
    with store.reader() as index:
        retriever = build_retriever(settings, index, embedder, top_k=chunk_depth,
                                    dense_depth=max(settings.dense_depth, chunk_depth),
                                    bm25_depth=max(settings.bm25_depth, chunk_depth))
        for query in queries:
            passages, scores = scored_candidates(retriever, reranker, query.text, args.depth,
                                                 extra=chunk_depth - args.depth)
            orders = {"retrieval order": list(range(len(scores)))}
            orders.update({f"weight {w}": fused_order(scores, w) for w in WEIGHTS})
            for name, order in orders.items():
                ranked: dict[str, None] = {}
                for passage in [passages[i] for i in order] + passages[len(scores):]:
                    corpus_id = file_to_corpus_id.get(_Path(passage.source).name)
                    if corpus_id is not None:
                        ranked.setdefault(corpus_id, None)
                documents = list(ranked)
                totals[name][0] += ndcg_at_k(documents, query.qrels, 10)
                totals[name][1] += recall_at_k(documents, query.qrels, 10)
    print(f"{args.data.name} {args.split}: {len(queries)} queries, rerank depth {args.depth} chunks\n")
    print("| final order | nDCG@10 | recall@10 |\n|---|---|---|")
    for name, (ndcg, recall) in totals.items():
        print(f"| {name} | {ndcg / len(queries):.4f} | {recall / len(queries):.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["squad", "beir"])
    parser.add_argument("data", type=Path, help="A SQuAD-format file or a BEIR folder.")
    parser.add_argument("--articles", type=int, default=10, help="squad: the last N articles.")
    parser.add_argument("--split", default="train", help="beir: which qrels split.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions or queries.")
    parser.add_argument("--depth", type=int, default=None, help="Candidates reranked (default: RAG_RERANK_DEPTH).")
    parser.add_argument("--work", type=Path, default=ROOT / ".rag-eval", help="beir: where the corpus index is kept.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rag.components import build_embedder, build_reranker
    from rag.settings import Settings

    settings = Settings()
    args.depth = args.depth or settings.rerank_depth
    reranker, note = build_reranker(settings)
    if reranker is None:
        raise SystemExit(f"no reranker to tune: {note}")
    embedder = build_embedder(settings)
    print(json.dumps({"reranker": str(reranker.resolved.path)}))
    {"squad": squad, "beir": beir}[args.kind](args, settings, embedder, reranker)


if __name__ == "__main__":
    main()
