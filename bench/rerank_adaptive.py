"""How many candidates must the cross-encoder score? Fixed rerank depths against adaptive ones (issue 21 item 2).

The reranker is most of an extractive answer's time (about 23 ms per candidate on two cores), yet when the
dense and the keyword retrievers put the same passage first, that passage is nearly always the right one.
For every question the chain's candidates (the hybrid retriever's top `--depth`) are scored once by the
reranker and by the evidence gate's sentence ranking; each policy then decides how many of the first
candidates it would have reranked, and the final order is computed as the chain computes it
(`rag.chain.order_by_rerank_and_evidence` over the reranked head, the rest after it in retrieval order).

Policies: `depth N` (rerank the first N) and `agree→N` (rerank N candidates when both retrievers rank the
fused first passage first, else all). Reported per policy: the mean candidates scored (the rerank cost is
proportional), and the quality measures of each data set:

- `beir`: a BEIR split (SciFact *train* for development): nDCG@10 and recall@10, documents ranked by their
  best chunk as `rag eval retrieval` does;
- `docqa`: a docqa file over its docs (as `rag eval docqa` indexes them): the question's page first / in
  the top 3 / top 5 of the passages the reader sees.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_adaptive.py beir ../shared/data/retrieval/scifact --split train --limit 300
    HF_HUB_OFFLINE=1 .venv/bin/python bench/rerank_adaptive.py docqa ../shared/data/docqa/fastapi_en_questions.json \
        --docs ../shared/data/corpus/fastapi-docs/docs/en/docs --work .rag-eval
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))


@dataclass(frozen=True)
class Policy:
    """How many candidates the reranker scores, and which of them the evidence ranking orders."""

    name: str
    depth: int  # candidates reranked (at most the chain's depth)
    confident_depth: int | None = None  # reranked instead when both retrievers rank the same passage first
    evidence_over: int | None = None  # evidence order over only this many of the retrieval + reranker order

    def reranked(self, candidates: int, agree: bool) -> int:
        depth = self.confident_depth if agree and self.confident_depth is not None else self.depth
        return min(depth, candidates)


POLICIES = [Policy("depth 20", 20), Policy("depth 10", 10), Policy("depth 5", 5),
            Policy("agree→0", 20, 0), Policy("agree→5", 20, 5), Policy("agree→10", 20, 10),
            Policy("agree→5, evidence over 10", 20, 5, 10), Policy("agree→5, evidence over 8", 20, 5, 8)]


@dataclass
class Scored:
    """One question's candidates in retrieval order, with every signal a policy needs."""

    passages: list  # RetrievedPassage, retrieval order (the head the chain reranks, then any tail)
    scores: list[float]  # reranker score of each head candidate
    sentences: list  # the evidence gate's ranked sentences over the head
    agree: bool  # the fused first passage is first for the dense and for the keyword retriever


def policy_order(policy: Policy, scored: Scored, retrieval_weight: float, evidence_weight: float) -> list:
    """The passages in the order the chain would give them under `policy`."""
    from generators.text.reranker import fused_order
    from rag.chain import order_by_rerank_and_evidence

    count = policy.reranked(len(scored.scores), scored.agree)
    if count <= 1:
        return list(scored.passages)
    head, scores, rest = scored.passages[:count], scored.scores[:count], []
    if policy.evidence_over is not None and policy.evidence_over < count:
        # The evidence ranking sees only the best `evidence_over` of the retrieval + reranker order.
        first = fused_order(scores, retrieval_weight)
        ordered = [head[i] for i in first]
        head, rest, scores = ordered[: policy.evidence_over], ordered[policy.evidence_over :], \
            [scores[i] for i in first][: policy.evidence_over]
    keys = {p.chunk_id for p in head}
    order = order_by_rerank_and_evidence(head, scores, [s for s in scored.sentences if s.key in keys],
                                         retrieval_weight=retrieval_weight, evidence_weight=evidence_weight)
    return [head[i] for i in order] + rest + list(scored.passages[count:])


def score_questions(questions: list[str], retriever, reranker, evidence, depth: int, extra: int = 0
                    ) -> Iterator[tuple[Scored, float]]:
    """Each question's `Scored` and the milliseconds the reranker took over all `depth` candidates."""
    from rag.chain import reader_passages

    for question in questions:
        passages = retriever.run(question, top_k=depth + extra).passages
        head = passages[:depth]
        started = time.perf_counter()
        scores = reranker.run(question, [p.indexed_text for p in head]).scores if head else []
        took = (time.perf_counter() - started) * 1000
        sentences = evidence.rank_sentences(question, reader_passages(head), top_k=evidence.max_sentences)
        top = passages[0] if passages else None
        agree = top is not None and top.dense_rank == 1 and top.bm25_rank == 1
        yield Scored(passages, scores, sentences, agree), took


def report(name: str, rows: dict[str, dict[str, list[float]]], pairs: dict[str, list[int]], times: list[float],
           agreed: int, total: int) -> dict:
    summary = {"data": name, "questions": total, "agree_share": round(agreed / total, 3),
               "rerank_ms_p50_all_candidates": round(statistics.median(times), 1), "policies": {}}
    measures = list(next(iter(rows.values())))
    print(f"{name}: {total} questions, both retrievers agree on the first passage for {agreed} "
          f"({agreed / total:.0%}); reranking all candidates takes {summary['rerank_ms_p50_all_candidates']} ms p50\n")
    print("| policy | candidates scored (mean) | " + " | ".join(measures) + " |")
    print("|---|---:|" + "---:|" * len(measures))
    for policy, values in rows.items():
        means = {m: round(sum(v) / len(v), 4) for m, v in values.items()}
        cost = round(sum(pairs[policy]) / len(pairs[policy]), 2)
        summary["policies"][policy] = {"candidates": cost, **means}
        print(f"| {policy} | {cost} | " + " | ".join(f"{means[m]:.4f}" for m in measures) + " |")
    return summary


def beir(args, settings, chain_parts) -> dict:  # noqa: ANN001
    from pathlib import Path as _Path

    from rag.components import build_retriever
    from rag.evaluation.metrics import ndcg_at_k, recall_at_k
    from rag.evaluation.retrieval import DOCUMENT_DEPTH
    from rerank_dev import beir_index

    embedder, reranker, evidence = chain_parts
    queries, file_to_corpus_id, store = beir_index(args, settings, embedder)
    chunk_depth = 2 * DOCUMENT_DEPTH
    rows = {p.name: {"nDCG@10": [], "recall@10": []} for p in POLICIES}
    pairs: dict[str, list[int]] = {p.name: [] for p in POLICIES}
    times, agreed = [], 0
    with store.reader() as index:
        retriever = build_retriever(settings, index, embedder, top_k=chunk_depth,
                                    dense_depth=max(settings.retrieval.dense_depth, chunk_depth),
                                    bm25_depth=max(settings.retrieval.bm25_depth, chunk_depth))
        scored_all = score_questions([q.text for q in queries], retriever, reranker, evidence, args.depth,
                                     extra=max(0, chunk_depth - args.depth))
        for query, (scored, took) in zip(queries, scored_all, strict=True):
            times.append(took)
            agreed += scored.agree
            for policy in POLICIES:
                pairs[policy.name].append(policy.reranked(len(scored.scores), scored.agree))
                ranked: dict[str, None] = {}
                for passage in policy_order(policy, scored, reranker.retrieval_weight, args.evidence_weight):
                    corpus_id = file_to_corpus_id.get(_Path(passage.source).name)
                    if corpus_id is not None:
                        ranked.setdefault(corpus_id, None)
                documents = list(ranked)
                rows[policy.name]["nDCG@10"].append(ndcg_at_k(documents, query.qrels, 10))
                rows[policy.name]["recall@10"].append(recall_at_k(documents, query.qrels, 10))
    return report(f"{args.data.name} {args.split}", rows, pairs, times, agreed, len(queries))


def docqa(args, settings, chain_parts) -> dict:  # noqa: ANN001
    from rag.evaluation.docqa import docs_chain, load_docqa, same_page

    items = [item for item in load_docqa(args.data) if item.answerable][: args.limit or None]
    rows = {p.name: {"page@1": [], "page@3": [], "page@5": []} for p in POLICIES}
    pairs: dict[str, list[int]] = {p.name: [] for p in POLICIES}
    times, agreed = [], 0
    with docs_chain(args.docs, args.work, settings) as (chain, _):
        scored_all = score_questions([i.question for i in items], chain.retriever, chain.reranker, chain.evidence,
                                     args.depth)
        for item, (scored, took) in zip(items, scored_all, strict=True):
            times.append(took)
            agreed += scored.agree
            for policy in POLICIES:
                pairs[policy.name].append(policy.reranked(len(scored.scores), scored.agree))
                top = policy_order(policy, scored, chain.reranker.retrieval_weight, args.evidence_weight)[:5]
                rank = next((i for i, p in enumerate(top) if same_page(p.source, item.source)), None)
                for k in (1, 3, 5):
                    rows[policy.name][f"page@{k}"].append(float(rank is not None and rank < k))
    return report(args.data.name, rows, pairs, times, agreed, len(items))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["beir", "docqa"])
    parser.add_argument("data", type=Path, help="A BEIR folder or a docqa questions file.")
    parser.add_argument("--docs", type=Path, action="append", help="docqa: the documents the questions are about.")
    parser.add_argument("--split", default="train", help="beir: which qrels split.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N queries / answerable questions.")
    parser.add_argument("--depth", type=int, default=None, help="Candidates (default: RAG_RERANK__DEPTH).")
    parser.add_argument("--work", type=Path, default=ROOT / ".rag-eval", help="Where indexes are kept.")
    parser.add_argument("--out", type=Path, default=None, help="Write the summary as JSON.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze
    from rag.components import build_embedder, build_reranker, rerank_evidence_weight
    from rag.settings import Settings

    settings = Settings()
    args.depth = args.depth or settings.rerank.depth
    reranker, note = build_reranker(settings)
    if reranker is None:
        raise SystemExit(f"no reranker: {note}")
    args.evidence_weight = rerank_evidence_weight(settings, reranker)  # as the chain resolves it
    embedder = build_embedder(settings)
    runs: dict[str, Callable] = {"beir": beir, "docqa": docqa}
    summary = runs[args.kind](args, settings, (embedder, reranker, SentenceReader(embedder, analyze)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
