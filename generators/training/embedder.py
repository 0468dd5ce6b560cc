"""Adapt the bi-encoder to a corpus: sentence-transformers training with in-batch negatives.

`MultipleNegativesRankingLoss` on (query, relevant passage, hard negative)
triplets: every other passage in the batch is a negative too, so each step
teaches the model to pick the right passage among `2 × batch_size`. The output
is a sentence-transformers folder; pointing `RAG_EMBEDDER__MODEL` at it changes
the index fingerprint (the weights are hashed), so the next ingest re-embeds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from generators.training.common import (
    RankingTrainer,
    TrainingConfig,
    evaluation_callback,
    read_evaluations,
    training_arguments,
    uses_cpu,
)
from generators.training.reranker import RankingExample

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedderTrainingConfig(TrainingConfig):
    learning_rate: float = 2e-5
    save_dtype: Literal["float32", "float16"] = "float32"  # vectors already in an index stay comparable


@dataclass
class EmbedderTrainingResult:
    out_dir: Path
    base: str
    examples: int
    steps: int
    examples_seen: int
    seconds: float
    evaluations: list[dict] = field(default_factory=list)


def retrieval_accuracy(model: SentenceTransformer, examples: Sequence[RankingExample], *, batch_size: int = 32) -> dict[str, float]:
    """accuracy@1 and MRR of the relevant passage among each query's candidates, by cosine similarity."""
    import numpy as np

    if not examples:
        return {"accuracy@1": 0.0, "mrr": 0.0}
    queries = model.encode([e.query for e in examples], batch_size=batch_size, normalize_embeddings=True,
                           show_progress_bar=False, convert_to_numpy=True)
    hits, reciprocal = 0, 0.0
    for example, query in zip(examples, queries):
        passages = model.encode([example.positive, *example.negatives], batch_size=batch_size,
                                normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True)
        scores = passages @ query
        rank = 1 + int(np.sum(scores[1:] > scores[0]))
        hits += rank == 1
        reciprocal += 1.0 / rank
    return {"accuracy@1": round(hits / len(examples), 4), "mrr": round(reciprocal / len(examples), 4)}


class EmbedderTrainer(RankingTrainer):
    """Fine-tunes the sentence-transformers model `base` on ranking examples into `out_dir`."""

    base_role = "base embedder"
    config_type = EmbedderTrainingConfig

    def run(self, examples: Sequence[RankingExample], *, resume: bool = False) -> EmbedderTrainingResult:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers

        config = self.config
        last, path = self._begin(examples, resume)
        model = SentenceTransformer(path, device="cpu" if uses_cpu(config.device) else None, local_files_only=True)
        model.max_seq_length = config.max_seq_len
        # One hard negative per row: the loss adds every other row's passages as in-batch negatives.
        columns = {
            "anchor": [e.query for e in examples],
            "positive": [e.positive for e in examples],
            "negative": [e.negatives[0] if e.negatives else e.positive for e in examples],
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        callbacks = []
        if self.heldout:
            heldout = self.heldout
            callbacks.append(evaluation_callback(
                lambda: retrieval_accuracy(model, heldout, batch_size=config.batch_size), config.eval_steps,
                self.out_dir, lambda: model,
            ))
        args = SentenceTransformerTrainingArguments(**training_arguments(
            config, self.out_dir,
            # A query's own passage must not show up as another row's in-batch "negative".
            batch_sampler=BatchSamplers.NO_DUPLICATES,
        ))
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=Dataset.from_dict(columns),
            loss=MultipleNegativesRankingLoss(model), callbacks=callbacks,
        )
        seconds = self._train(trainer, callbacks, last)
        self._save(model)
        state = trainer.state
        return self._finish(EmbedderTrainingResult(
            out_dir=self.out_dir, base=self.base, examples=len(examples), steps=state.global_step,
            examples_seen=state.global_step * config.batch_size, seconds=seconds,
            evaluations=read_evaluations(self.out_dir),
        ))
