"""How should the reranker's ranking meet the retriever's? Chosen on development data, never on test sets.

The candidates the chain reranks (the hybrid retriever's top `--depth`, in
retrieval order) are scored once by the cross-encoder; then the final order is
the reranker's alone (weight 0) or its reciprocal-rank fusion with the
retrieval order at each weight of the grid (`generators.text.reranker.fused_order`,
the code the service runs; `RAG_RERANK__RETRIEVAL_WEIGHT`).

- `squad`: the last `--articles` articles of a SQuAD-format file (for SQuAD v1.1
  train: the 10 articles the shipped reranker and reader were not trained on),
  every paragraph a document; recall@1 / @5 of the question's paragraph.
- `squad --spread N`: shaped like XQuAD instead (N articles × 5 paragraphs, the corpus only those
  paragraphs): articles other than the held-out ones, paragraphs none of whose questions the shipped
  reranker was trained on (its draw is rebuilt from `bench/finetune/reranker.sh`'s seed and budget).
  Every candidate's reranker score and best supporting sentence are kept (`--signals FILE`, JSON) so
  orderings can be compared without scoring again (`--from-signals FILE`).
- `beir`: a BEIR split (SciFact *train* for development); documents ranked by
  their best chunk, as `rag eval retrieval` does; nDCG@10 and recall@10; also the
  chain's order with the evidence ranking (`RAG_RERANK__EVIDENCE_WEIGHT`), which
  `rag eval retrieval` leaves out.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_dev.py squad ../shared/data/qa/train/squad_v1.1_train.json
    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_dev.py squad ../shared/data/qa/train/squad_v1.1_train.json --spread 48 --signals bench/out/rerank-spread.json
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
from dataclasses import dataclass
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


def untrained_spread(articles: list[dict], count: int, *, holdout: int = 10, budget: int = 6000,
                     train_seed: int = 42, seed: int = 0, per_article: int = 5) -> list[dict]:
    """`count` articles × `per_article` paragraphs shaped like XQuAD, from articles before the held-out
    ones and paragraphs none of whose questions the reranker trained on (`ranking_data`'s draw, rebuilt:
    one question per paragraph in a seeded order, `budget` questions)."""
    import random

    from generators.training.reader import select_examples
    from rag.evaluation.qa import squad_items

    trainable = [item for a in range(len(articles) - holdout) for item in squad_items(articles, only=[a])]
    trained = {item.path for item in select_examples(trainable, budget, seed=train_seed, group=lambda q: q.path)}
    rng = random.Random(seed)
    spread = []
    for a in rng.sample(range(len(articles) - holdout), len(articles) - holdout):
        article = articles[a]
        fresh = [paragraph for p, paragraph in enumerate(article["paragraphs"])
                 if str(Path(f"{a:04d}-{p:03d}.txt").resolve()) not in trained]
        if len(fresh) >= per_article:
            spread.append({"title": article.get("title", ""), "paragraphs": rng.sample(fresh, per_article)})
        if len(spread) == count:
            break
    return spread


def squad_signals(args, settings, embedder, reranker) -> list[dict]:
    """Per question: where its paragraph is, and each candidate's reranker score and best sentence score."""
    from generators.text.reading import ReaderPassage
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from index.store import IndexStore
    from rag.chain import best_sentence_scores
    from rag.components import build_ingest_pipeline, build_retriever
    from rag.evaluation.qa import read_squad, squad_items

    evidence = SentenceReader(embedder, analyze)
    articles = read_squad(args.data)
    if args.spread:
        articles = untrained_spread(articles, args.spread, holdout=args.articles)
        chosen = list(range(len(articles)))
    else:
        chosen = list(range(len(articles) - args.articles, len(articles)))
    work = Path(tempfile.mkdtemp(prefix="rerank-dev-"))
    items = squad_items(articles, work / "docs", only=chosen)
    if args.limit:
        items = items[: args.limit]
    store = IndexStore(work / "index")
    build_ingest_pipeline(settings, store, embedder=embedder).run([work / "docs"])
    signals = []
    with store.reader() as index:
        retriever = build_retriever(settings, index, embedder)
        for item in items:
            started = time.perf_counter()
            passages, scores = scored_candidates(retriever, reranker, item.question, args.depth)
            elapsed = (time.perf_counter() - started) * 1000
            spans = evidence.rank_sentences(item.question, [ReaderPassage(i, p.text, p.start) for i, p in enumerate(passages)],
                                            top_k=evidence.max_sentences)
            best = best_sentence_scores(spans)
            signals.append({"question": item.question, "gold": [p.source == item.path for p in passages],
                            "rerank": scores, "evidence": [best.get(i, -1.0) for i in range(len(passages))],
                            "ms": elapsed})
    return signals


def squad_orders(record: dict) -> dict[str, list[int]]:
    """Every final order compared, as indices into the candidates (retrieval order)."""
    from generators.text.reranker import fused_order
    from rag.chain import order_by_evidence, order_by_rerank_and_evidence

    n = len(record["gold"])
    evidence = record["evidence"]
    passages = [_Candidate(i) for i in range(n)]
    sentences = sorted((_Span(i, evidence[i]) for i in range(n) if evidence[i] > -1.0), key=lambda s: -s.score)

    def by_evidence(order: list[int], prior: float = 0.1, head: int = 5) -> list[int]:
        top = [passages[i] for i in order[:head]]
        return [p.chunk_id for p in order_by_evidence(top, sentences, prior)] + order[head:]

    orders = {"retrieval order": list(range(n)),
              "retrieval top 5 by evidence (the chain without a reranker)": by_evidence(list(range(n)))}
    for w in WEIGHTS:
        orders[f"weight {w}"] = fused_order(record["rerank"], w)
    for w in (1.0, 2.0):
        orders[f"weight {w}, top 5 by evidence"] = by_evidence(fused_order(record["rerank"], w))
    for w in (1.0, 2.0):
        for w_e in (0.5, 1.0, 2.0):  # the chain's order with RAG_RERANK__EVIDENCE_WEIGHT
            orders[f"RRF retrieval {w} + reranker 1 + evidence {w_e}"] = order_by_rerank_and_evidence(
                passages, record["rerank"], sentences, retrieval_weight=w, evidence_weight=w_e)
    return orders


@dataclass(frozen=True)
class _Candidate:  # what the chain's ordering functions read of a passage
    chunk_id: int


@dataclass(frozen=True)
class _Span:  # what they read of a sentence
    key: int
    score: float


def squad(args, settings, embedder, reranker) -> None:
    if args.from_signals:
        signals = json.loads(args.from_signals.read_text())
    else:
        signals = squad_signals(args, settings, embedder, reranker)
        if args.signals:
            args.signals.parent.mkdir(parents=True, exist_ok=True)
            args.signals.write_text(json.dumps(signals))
    hits: dict[str, list[int]] = {}
    for record in signals:
        for name, order in squad_orders(record).items():
            found = [record["gold"][i] for i in order[:5]]
            counts = hits.setdefault(name, [0, 0])
            counts[0] += found[0] if found else 0
            counts[1] += any(found)
    shape = f"{args.spread} articles x 5 untrained paragraphs" if args.spread else f"last {args.articles} articles"
    print(f"{args.data.name}, {shape}: {len(signals)} questions, depth {args.depth}, "
          f"retrieve + rerank p50 {statistics.median(r['ms'] for r in signals):.0f} ms\n")
    print("| final order | recall@1 | recall@5 |\n|---|---|---|")
    for name, (at1, at5) in hits.items():
        print(f"| {name} | {at1 / len(signals):.3f} | {at5 / len(signals):.3f} |")


def beir_index(args, settings, embedder):  # noqa: ANN001, ANN201
    """(the queries of `args.split`, up to `args.limit`; each written corpus file's corpus id; the store of the
    corpus index under `args.work`, ingested or brought up to date), as `rag eval retrieval` builds them."""
    from rag.components import build_ingest_pipeline, build_store
    from rag.evaluation.retrieval import load_beir, work_dir_for, write_corpus_documents

    dataset = load_beir(args.data, args.split)
    queries = dataset.queries[: args.limit] if args.limit else dataset.queries
    folder = work_dir_for(dataset.corpus_path, args.work)
    file_to_corpus_id = write_corpus_documents(dataset.corpus_path, folder / "docs")
    store = build_store(settings, folder / "index")
    build_ingest_pipeline(settings, store, embedder=embedder).run([folder / "docs"], prune=True)
    return queries, file_to_corpus_id, store


def beir(args, settings, embedder, reranker) -> None:
    from pathlib import Path as _Path

    from generators.text.reranker import fused_order
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from rag.chain import order_by_rerank_and_evidence, reader_passages
    from rag.components import build_retriever
    from rag.evaluation.metrics import ndcg_at_k, recall_at_k
    from rag.evaluation.retrieval import DOCUMENT_DEPTH

    queries, file_to_corpus_id, store = beir_index(args, settings, embedder)
    chunk_depth = 2 * DOCUMENT_DEPTH
    evidence = SentenceReader(embedder, analyze)
    evidence_weights = (0.5, 1.0, 2.0)
    # The chain fuses at the reranker's own retrieval weight (2 for the shipped one).
    chain_order = f"weight {reranker.retrieval_weight} + evidence {{}} (the chain's order for English)"
    names = ["retrieval order", *(f"weight {w}" for w in WEIGHTS), *(chain_order.format(w_e) for w_e in evidence_weights)]
    totals = {name: [0.0, 0.0] for name in names}
    with store.reader() as index:
        retriever = build_retriever(settings, index, embedder, top_k=chunk_depth,
                                    dense_depth=max(settings.retrieval.dense_depth, chunk_depth),
                                    bm25_depth=max(settings.retrieval.bm25_depth, chunk_depth))
        for query in queries:
            passages, scores = scored_candidates(retriever, reranker, query.text, args.depth,
                                                 extra=chunk_depth - args.depth)
            orders = {"retrieval order": list(range(len(scores)))}
            orders.update({f"weight {w}": fused_order(scores, w) for w in WEIGHTS})
            head = passages[: len(scores)]
            sentences = evidence.rank_sentences(query.text, reader_passages(head), top_k=evidence.max_sentences)
            for w_e in evidence_weights:
                orders[chain_order.format(w_e)] = order_by_rerank_and_evidence(
                    head, scores, sentences, retrieval_weight=reranker.retrieval_weight, evidence_weight=w_e)
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
    parser.add_argument("--spread", type=int, default=0,
                        help="squad: N articles x 5 untrained paragraphs (shaped like XQuAD) instead of the last articles.")
    parser.add_argument("--signals", type=Path, help="squad: keep every candidate's scores in this JSON file.")
    parser.add_argument("--from-signals", type=Path, help="squad: compare orders from a --signals file, scoring nothing.")
    parser.add_argument("--split", default="train", help="beir: which qrels split.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions or queries.")
    parser.add_argument("--depth", type=int, default=None, help="Candidates reranked (default: RAG_RERANK__DEPTH).")
    parser.add_argument("--work", type=Path, default=ROOT / ".rag-eval", help="beir: where the corpus index is kept.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rag.components import build_embedder, build_reranker
    from rag.settings import Settings

    settings = Settings()
    args.depth = args.depth or settings.rerank.depth
    if args.kind == "squad" and args.from_signals:  # scores were kept: no model needed
        squad(args, settings, None, None)
        return
    reranker, note = build_reranker(settings)
    if reranker is None:
        raise SystemExit(f"no reranker to tune: {note}")
    embedder = build_embedder(settings)
    print(json.dumps({"reranker": str(reranker.resolved.path)}))
    {"squad": squad, "beir": beir}[args.kind](args, settings, embedder, reranker)


if __name__ == "__main__":
    main()
