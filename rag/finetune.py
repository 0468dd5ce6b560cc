"""`rag finetune`: builds training data and held-out evaluation from files, then hands off to `generators.training`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    from generators.qa_reader import ExtractiveReader

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
