"""Fine-tune an extractive QA reader (`AutoModelForQuestionAnswering`) on SQuAD-format examples.

Standard SQuAD preprocessing: question + context cut into windows of
`max_seq_len` tokens overlapping by `stride`, each labelled with the tokens
where the answer starts and ends. Windows that do not hold the whole answer are
dropped: SQuAD v1 questions all have answers, and such windows would only
teach the model to point at [CLS], which our span decoding never reads.

The loop is transformers' `Trainer`: checkpoints every `save_steps`, resume
from the last one, progress bar with ETA, CPU or GPU. An `evaluate` callback
passed in by the caller reports EM / F1 on held-out questions every
`eval_steps`, so this module needs no metric code of its own.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from generators.training.common import (
    ModelTrainer,
    TrainingConfig,
    evaluation_callback,
    read_evaluations,
    training_arguments,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)
T = TypeVar("T")

# Called with the model being trained (in eval mode) and its tokenizer; returns metrics such as {"em": .., "f1": ..}.
EvaluateFn = Callable[["PreTrainedModel", "PreTrainedTokenizerBase"], dict[str, float]]



@dataclass(frozen=True)
class QAExample:
    """One question with its paragraph and the answer's character offset in it."""

    question: str
    context: str
    answer_text: str
    answer_start: int
    paragraph: str = ""  # groups the questions of one paragraph (subset selection)


@dataclass(frozen=True)
class ReaderTrainingConfig(TrainingConfig):
    stride: int = 64  # tokens shared by consecutive windows of a long paragraph
    max_question_tokens: int = 64
    batch_size: int = 16
    learning_rate: float = 1e-4


@dataclass
class ReaderTrainingResult:
    out_dir: Path
    base: str
    examples: int
    train_windows: int
    steps: int
    examples_seen: int
    seconds: float
    evaluations: list[dict] = field(default_factory=list)


def squad_examples(articles: Sequence[dict], *, skip_articles: Sequence[int] = ()) -> list[QAExample]:
    """Every answered question of SQuAD-format articles, with its first answer."""
    skipped = set(skip_articles)
    examples = []
    for a, article in enumerate(articles):
        if a in skipped:
            continue
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = [x for x in qa.get("answers", []) if x.get("text")]
                if not answers:
                    continue
                answer = answers[0]
                start = int(answer["answer_start"])
                if context[start : start + len(answer["text"])] != answer["text"]:
                    continue  # a misaligned label teaches the wrong span
                examples.append(QAExample(qa["question"], context, answer["text"], start, f"{a}/{p}"))
    return examples


def select_examples(
    examples: Sequence[T], limit: int | None, *, seed: int = 42, group: Callable[[T], str] = lambda e: e.paragraph
) -> list[T]:
    """Up to `limit` examples spread over as many paragraphs as possible.

    Round-robin: one question from every paragraph (in random order) before a
    second from any, so a small budget still sees the widest range of contexts.
    The choice is deterministic for a seed, which a resumed run relies on.
    """
    rng = random.Random(seed)
    by_paragraph: dict[str, list[T]] = {}
    for example in examples:
        by_paragraph.setdefault(group(example), []).append(example)
    groups = list(by_paragraph.values())
    for group in groups:
        rng.shuffle(group)
    rng.shuffle(groups)
    chosen: list[T] = []
    depth = 0
    budget = len(examples) if limit is None else min(limit, len(examples))
    while len(chosen) < budget:
        for group in groups:
            if depth < len(group):
                chosen.append(group[depth])
                if len(chosen) == budget:
                    break
        depth += 1
    rng.shuffle(chosen)
    return chosen


def training_windows(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[QAExample],
    *,
    max_seq_len: int,
    stride: int,
    max_question_tokens: int = 64,
    batch: int = 256,
) -> list[dict[str, list[int] | int]]:
    """Tokenised windows with `start_positions` / `end_positions`; windows without the whole answer dropped."""
    features: list[dict[str, list[int] | int]] = []
    names = [name for name in tokenizer.model_input_names if name != "offset_mapping"]
    for first in range(0, len(examples), batch):
        chunk = examples[first : first + batch]
        questions = [_clip(tokenizer, e.question, max_question_tokens) for e in chunk]
        encoded = tokenizer(
            questions,
            [e.context for e in chunk],
            truncation="only_second",
            max_length=max_seq_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        for window, example_index in enumerate(encoded["overflow_to_sample_mapping"]):
            example = chunk[example_index]
            answer_start = example.answer_start
            answer_end = answer_start + len(example.answer_text)
            sequence_ids = encoded.sequence_ids(window)
            offsets = encoded["offset_mapping"][window]
            context_tokens = [t for t, s in enumerate(sequence_ids) if s == 1]
            if not context_tokens:
                continue
            first_token, last_token = context_tokens[0], context_tokens[-1]
            if offsets[first_token][0] > answer_start or offsets[last_token][1] < answer_end:
                continue
            start = first_token
            while start <= last_token and offsets[start][1] <= answer_start:
                start += 1
            end = last_token
            while end >= first_token and offsets[end][0] >= answer_end:
                end -= 1
            if start > end:
                continue
            feature: dict[str, list[int] | int] = {name: encoded[name][window] for name in names if name in encoded}
            feature["start_positions"] = start
            feature["end_positions"] = end
            features.append(feature)
    return features


def _clip(tokenizer: PreTrainedTokenizerBase, question: str, max_tokens: int) -> str:
    """Long questions cut to `max_tokens` so every window still holds context (as the reader does)."""
    question = question.strip()
    offsets = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return question if len(offsets) <= max_tokens else question[: offsets[max_tokens - 1][1]]


class ReaderTrainer(ModelTrainer):
    """Fine-tunes `base` (any Hub name, path or packaged model) into an extractive reader at `out_dir`."""

    config_type = ReaderTrainingConfig

    def __init__(
        self,
        base: str,
        out_dir: Path,
        config: ReaderTrainingConfig | None = None,
        *,
        evaluate: EvaluateFn | None = None,
        setting: str = "--base",
    ) -> None:
        super().__init__(base, out_dir, config, setting=setting)
        self.evaluate = evaluate

    def run(self, examples: Sequence[QAExample], *, resume: bool = False) -> ReaderTrainingResult:
        import torch
        from transformers import (
            AutoModelForQuestionAnswering,
            AutoTokenizer,
            DataCollatorWithPadding,
            Trainer,
            TrainingArguments,
        )

        config = self.config
        last, path = self._begin(examples, resume)
        tokenizer = AutoTokenizer.from_pretrained(path)
        if not tokenizer.is_fast:
            raise ValueError(f"{self.base!r} has no fast tokenizer: offsets are needed to label answer spans")
        model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
        windows = training_windows(
            tokenizer, examples, max_seq_len=config.max_seq_len, stride=config.stride,
            max_question_tokens=config.max_question_tokens,
        )
        if not windows:
            raise ValueError("no training window holds its answer: check the answer offsets")
        log.info("%d examples → %d training windows", len(examples), len(windows))
        self.out_dir.mkdir(parents=True, exist_ok=True)

        trainer_box: list[Trainer] = []
        callbacks = []
        if self.evaluate is not None:
            evaluate = self.evaluate
            callbacks.append(evaluation_callback(
                lambda: evaluate(trainer_box[0].model, tokenizer), config.eval_steps, self.out_dir,
                lambda: trainer_box[0].model,
            ))

        args = TrainingArguments(**training_arguments(
            config, self.out_dir,
            train_sampling_strategy="group_by_length",
        ))
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=windows,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=callbacks,
        )
        trainer_box.append(trainer)
        seconds = self._train(trainer, callbacks, last)

        self._save(trainer.model, tokenizer)
        state = trainer.state
        return self._finish(ReaderTrainingResult(
            out_dir=self.out_dir,
            base=self.base,
            examples=len(examples),
            train_windows=len(windows),
            steps=state.global_step,
            examples_seen=state.global_step * config.batch_size,
            seconds=seconds,
            evaluations=read_evaluations(self.out_dir),
        ))
