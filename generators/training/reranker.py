"""Fine-tune a reranker: a sentence-transformers `CrossEncoder` (one relevance logit) on query–passage pairs.

Each training query brings its relevant passage and hard negatives (passages a
retriever ranked high that are not relevant): the pairs are labelled 1 / 0 and
trained with binary cross-entropy, the positive weighted by the number of
negatives so both classes count alike. The loop is sentence-transformers'
`CrossEncoderTrainer` (transformers' `Trainer` underneath): checkpoints, resume,
progress bar with ETA. Every `eval_steps` the model reranks the candidates of
held-out queries; accuracy@1 (the relevant passage ranked first) and MRR are
logged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from generators.training.common import (
    RankingTrainer,
    TrainingConfig,
    evaluation_callback,
    read_evaluations,
    training_arguments,
    uses_cpu,
)

if TYPE_CHECKING:
    from sentence_transformers.cross_encoder import CrossEncoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankingExample:
    """A query, one relevant passage, and passages that look relevant but are not."""

    query: str
    positive: str
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class RerankerTrainingConfig(TrainingConfig):
    pass


@dataclass
class RerankerTrainingResult:
    out_dir: Path
    base: str
    examples: int
    pairs: int
    steps: int
    pairs_seen: int
    seconds: float
    evaluations: list[dict] = field(default_factory=list)


def ranking_accuracy(model: CrossEncoder, examples: Sequence[RankingExample], *, batch_size: int = 32) -> dict[str, float]:
    """accuracy@1 and MRR of the relevant passage among each query's candidates (positive + negatives)."""
    import numpy as np

    pairs, sizes = [], []
    for example in examples:
        candidates = [example.positive, *example.negatives]
        pairs += [(example.query, text) for text in candidates]
        sizes.append(len(candidates))
    if not pairs:
        return {"accuracy@1": 0.0, "mrr": 0.0}
    scores = np.asarray(model.predict(pairs, batch_size=batch_size, show_progress_bar=False,
                                      convert_to_numpy=True), dtype=np.float32).reshape(len(pairs), -1)[:, -1]
    hits, reciprocal, first = 0, 0.0, 0
    for size in sizes:
        group = scores[first : first + size]
        rank = 1 + int(np.sum(group[1:] > group[0]))  # ties count in the positive's favour
        hits += rank == 1
        reciprocal += 1.0 / rank
        first += size
    return {"accuracy@1": round(hits / len(sizes), 4), "mrr": round(reciprocal / len(sizes), 4)}


def labelled_pairs(examples: Sequence[RankingExample], *, seed: int = 42) -> dict[str, list]:
    """Columns `query`, `passage`, `label` (1 relevant, 0 not), shuffled so a batch mixes queries."""
    rows = [(e.query, e.positive, 1.0) for e in examples]
    rows += [(e.query, negative, 0.0) for e in examples for negative in e.negatives]
    random.Random(seed).shuffle(rows)
    return {"query": [r[0] for r in rows], "passage": [r[1] for r in rows], "label": [r[2] for r in rows]}


class RerankerTrainer(RankingTrainer):
    """Fine-tunes `base` (a cross-encoder, or any encoder: a fresh one-logit head is added) into a reranker."""

    config_type = RerankerTrainingConfig

    def run(self, examples: Sequence[RankingExample], *, resume: bool = False) -> RerankerTrainingResult:
        import torch
        from datasets import Dataset
        from sentence_transformers.cross_encoder import (
            CrossEncoder,
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

        config = self.config
        last, path = self._begin(examples, resume)
        model = CrossEncoder(path, num_labels=1, max_length=config.max_seq_len, device="cpu" if uses_cpu(config.device) else None,
                             model_kwargs={"dtype": torch.float32})
        columns = labelled_pairs(examples, seed=config.seed)
        negatives = sum(len(e.negatives) for e in examples)
        # Weigh the positive by the negatives per query so one relevant passage counts as much as its decoys.
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(max(negatives / len(examples), 1.0)))
        self.out_dir.mkdir(parents=True, exist_ok=True)

        callbacks = []
        if self.heldout:
            heldout = self.heldout
            callbacks.append(evaluation_callback(
                lambda: ranking_accuracy(model, heldout, batch_size=config.batch_size), config.eval_steps,
                self.out_dir, lambda: model,
            ))
        args = CrossEncoderTrainingArguments(**training_arguments(config, self.out_dir))
        trainer = CrossEncoderTrainer(
            model=model, args=args, train_dataset=Dataset.from_dict(columns), loss=loss, callbacks=callbacks,
        )
        seconds = self._train(trainer, callbacks, last)

        self._save(model)
        state = trainer.state
        return self._finish(RerankerTrainingResult(
            out_dir=self.out_dir,
            base=self.base,
            examples=len(examples),
            pairs=len(columns["label"]),
            steps=state.global_step,
            pairs_seen=state.global_step * config.batch_size,
            seconds=seconds,
            evaluations=read_evaluations(self.out_dir),
        ))
