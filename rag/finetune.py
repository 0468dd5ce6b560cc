"""`rag finetune`: builds training data and held-out evaluation from files, then hands off to `generators.training`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generators.training.reranker import RankingExample
from generators.training.reader import (
    EvaluateFn,
    QAExample,
    ReaderTrainer,
    ReaderTrainingConfig,
    ReaderTrainingResult,
    select_examples,
    squad_examples,
)
from rag.evaluation.qa import QAItem, evaluate_gold, read_squad, squad_items, summarise


@dataclass(frozen=True)
class ReaderData:
    train: list[QAExample]
    heldout: list[QAItem]
    heldout_source: str  # where the held-out questions come from, for the log and the model card


def reader_data(
    squad_files: Sequence[Path],
    *,
    eval_squad: Path | None = None,
    holdout_articles: int = 10,
    eval_limit: int = 300,
    max_examples: int | None = None,
    seed: int = 42,
) -> ReaderData:
    """Training examples from `squad_files`; held-out questions from `eval_squad`, or else from the
    last `holdout_articles` articles of the first file, which are then left out of training."""
    if not squad_files:
        raise ValueError("give at least one SQuAD-format training file")
    examples: list[QAExample] = []
    heldout: list[QAItem] = []
    source = str(eval_squad) if eval_squad else ""
    for i, path in enumerate(squad_files):
        articles = read_squad(path)
        skip: list[int] = []
        if i == 0 and eval_squad is None and holdout_articles > 0:
            if holdout_articles >= len(articles):
                raise ValueError(f"{path} has {len(articles)} articles: too few to hold {holdout_articles} out")
            skip = list(range(len(articles) - holdout_articles, len(articles)))
            heldout = squad_items(articles, only=skip)
            source = f"{path} (last {holdout_articles} articles, not trained on)"
        examples += squad_examples(articles, skip_articles=skip)
    if eval_squad is not None:
        heldout = squad_items(read_squad(eval_squad))
    if eval_limit and len(heldout) > eval_limit:
        step = len(heldout) / eval_limit  # spread over all held-out articles, not the first one only
        heldout = [heldout[int(k * step)] for k in range(eval_limit)]
    train = select_examples(examples, max_examples, seed=seed)
    if not train:
        raise ValueError("the training files hold no answered questions")
    return ReaderData(train, heldout, source)


def gold_setting_evaluator(items: list[QAItem]) -> EvaluateFn:
    """EM / F1 / containment of the model being trained, reading each held-out question's own paragraph."""
    from generators.text.qa_reader import ExtractiveReader

    def evaluate(model, tokenizer) -> dict[str, float]:
        reader = ExtractiveReader.from_loaded(model, tokenizer)
        report = summarise(evaluate_gold(items, reader), file="", setting="gold", mode="extractive", notes=[],
                           fingerprint=None)
        return {"em": report.em, "f1": report.f1, "contains": report.contains}

    return evaluate


def finetune_reader(
    data: ReaderData, base: str, out_dir: Path, config: ReaderTrainingConfig, *, resume: bool = False
) -> ReaderTrainingResult:
    evaluate = gold_setting_evaluator(data.heldout) if data.heldout else None
    return ReaderTrainer(base, out_dir, config, evaluate=evaluate).run(data.train, resume=resume)


@dataclass(frozen=True)
class RankingQuery:
    """A query with one relevant passage; `relevant` names every document file that must not be a negative."""

    query: str
    positive: str
    relevant: frozenset[str]
    group: str  # the positive's document: subsets spread over documents


@dataclass(frozen=True)
class RankingData:
    train: list[RankingExample]
    heldout: list[RankingExample]
    heldout_source: str


def squad_ranking_queries(articles: list[dict], docs_dir: Path) -> tuple[list[RankingQuery], dict[int, list[RankingQuery]]]:
    """Question → its paragraph (each paragraph written to `docs_dir` as a document); also by article number."""
    by_article: dict[int, list[RankingQuery]] = {}
    for a in range(len(articles)):
        for item in squad_items(articles, docs_dir, only=[a]):
            by_article.setdefault(a, []).append(
                RankingQuery(item.question, item.context, frozenset({item.path}), item.path))
    return [q for a in sorted(by_article) for q in by_article[a]], by_article


def beir_ranking_queries(folder: Path, split: str, docs_dir: Path) -> list[RankingQuery]:
    """Query → each relevant corpus document (graded relevance > 0), documents written to `docs_dir`."""
    from rag.evaluation.retrieval import load_beir, write_corpus_documents

    dataset = load_beir(folder, split)
    by_id = {corpus_id: name for name, corpus_id in write_corpus_documents(dataset.corpus_path, docs_dir).items()}
    queries = []
    for query in dataset.queries:
        relevant = {str((docs_dir / by_id[c]).resolve()) for c, grade in query.qrels.items() if grade > 0 and c in by_id}
        for path in sorted(relevant):
            queries.append(RankingQuery(query.text, Path(path).read_text(encoding="utf-8").strip(),
                                        frozenset(relevant), path))
    return queries


def mine_hard_negatives(queries: Sequence[RankingQuery], retriever, *, negatives: int = 3, depth: int = 30,
                        on_progress=None) -> list[RankingExample]:
    """For each query, the best-ranked passages of the hybrid retriever (BM25 + embedder) that are not relevant."""
    examples = []
    for done, query in enumerate(queries, start=1):
        found: list[str] = []
        for passage in retriever.run(query.query, top_k=depth).passages:
            if passage.source in query.relevant or passage.text in found or passage.text.strip() == query.positive:
                continue
            found.append(passage.text)
            if len(found) == negatives:
                break
        if found:
            examples.append(RankingExample(query.query, query.positive, tuple(found)))
        if on_progress:
            on_progress(done, len(queries))
    return examples


def ranking_data(
    settings,
    *,
    work: Path,
    squad: Path | None = None,
    beir: Path | None = None,
    split: str = "train",
    holdout: int = 10,
    eval_limit: int = 300,
    max_examples: int | None = None,
    negatives: int = 3,
    seed: int = 42,
    on_progress=None,
) -> RankingData:
    """Training and held-out ranking examples from a SQuAD file (question → paragraph) or a BEIR split
    (query → relevant documents), hard negatives mined from the same corpus with the hybrid retriever.

    Held out: the last `holdout` articles (SQuAD) or queries (BEIR), never trained on."""
    from rag.components import build_ingest_pipeline, build_retriever, build_store
    from rag.evaluation.qa import work_dir_for

    if (squad is None) == (beir is None):
        raise ValueError("give exactly one of a SQuAD file or a BEIR folder")
    source_file = squad if squad is not None else beir / "corpus.jsonl"
    if not source_file.is_file():
        raise ValueError(f"{source_file} does not exist")
    folder = work_dir_for(source_file, work)
    docs = folder / "docs"
    if squad is not None:
        queries, by_article = squad_ranking_queries(read_squad(squad), docs)
        if holdout >= len(by_article):
            raise ValueError(f"{squad} has {len(by_article)} articles: too few to hold {holdout} out")
        held_articles = sorted(by_article)[len(by_article) - holdout:] if holdout else []
        heldout_queries = [q for a in held_articles for q in by_article[a]]
        train_queries = [q for a in sorted(by_article)[: len(by_article) - holdout] for q in by_article[a]]
        source = f"{squad} (last {holdout} articles, not trained on)"
    else:
        queries = beir_ranking_queries(beir, split, docs)
        query_texts = list(dict.fromkeys(q.query for q in queries))
        if holdout >= len(query_texts):
            raise ValueError(f"{beir} split {split!r} has {len(query_texts)} queries: too few to hold {holdout} out")
        held = set(query_texts[len(query_texts) - holdout:]) if holdout else set()
        heldout_queries = [q for q in queries if q.query in held]
        train_queries = [q for q in queries if q.query not in held]
        source = f"{beir} {split} (last {holdout} queries, not trained on)"
    if not train_queries:
        raise ValueError("no training queries with a relevant passage")
    train_queries = select_examples(train_queries, max_examples, seed=seed, group=lambda q: q.group)
    if eval_limit and len(heldout_queries) > eval_limit:
        step = len(heldout_queries) / eval_limit
        heldout_queries = [heldout_queries[int(k * step)] for k in range(eval_limit)]

    store = build_store(settings, folder / "index")
    pipeline = build_ingest_pipeline(settings, store)
    pipeline.run([docs])
    with store.reader() as index:
        retriever = build_retriever(settings, index, pipeline.embedder)
        total = len(train_queries) + len(heldout_queries)
        progress = (lambda done, _: on_progress(done, total)) if on_progress else None
        train = mine_hard_negatives(train_queries, retriever, negatives=negatives, on_progress=progress)
        offset = len(train_queries)
        progress = (lambda done, _: on_progress(offset + done, total)) if on_progress else None
        heldout = mine_hard_negatives(heldout_queries, retriever, negatives=negatives, on_progress=progress)
    return RankingData(train, heldout, source)
