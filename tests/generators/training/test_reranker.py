"""Reranker fine-tuning: labelled pairs, ranking accuracy, and the CrossEncoder trainer on a tiny model."""

from __future__ import annotations

import json

import pytest

from generators.text.reranker import CrossEncoderReranker
from generators.training.reranker import RankingExample, RerankerTrainer, RerankerTrainingConfig, labelled_pairs

EXAMPLES = [
    RankingExample("who built the lighthouse", "The lighthouse was built by Tomas Reed in 1850.",
                   ("Apples grow best in cool climates.", "The festival draws crowds every June.")),
    RankingExample("when does the festival happen", "The festival draws crowds every June.",
                   ("The lighthouse was built by Tomas Reed in 1850.", "Copper conducts heat well.")),
    RankingExample("what conducts heat", "Copper conducts heat well.",
                   ("Apples grow best in cool climates.", "The lighthouse was built by Tomas Reed in 1850.")),
    RankingExample("where do apples grow", "Apples grow best in cool climates.",
                   ("Copper conducts heat well.", "The festival draws crowds every June.")),
]


def test_pairs_hold_every_positive_and_negative_once():
    columns = labelled_pairs(EXAMPLES, seed=3)
    assert len(columns["label"]) == 12 and sum(columns["label"]) == 4
    positives = {(q, p) for q, p, label in zip(columns["query"], columns["passage"], columns["label"]) if label}
    assert positives == {(e.query, e.positive) for e in EXAMPLES}
    assert labelled_pairs(EXAMPLES, seed=3) == columns


def _config(**overrides) -> RerankerTrainingConfig:
    settings = dict(max_seq_len=48, batch_size=4, learning_rate=2e-3, warmup_ratio=0.0, eval_steps=15,
                    save_steps=15, threads=1)
    settings.update(overrides)
    return RerankerTrainingConfig(**settings)


def test_training_ranks_the_labelled_passages_first_and_saves_a_loadable_reranker(tiny_cross_encoder_dir, tmp_path):
    out = tmp_path / "reranker"
    result = RerankerTrainer(str(tiny_cross_encoder_dir), out, _config(max_steps=120, eval_steps=40, save_steps=40), heldout=EXAMPLES).run(EXAMPLES)
    assert result.steps == 120 and result.pairs == 12
    assert [row["step"] for row in result.evaluations] == [40, 80, 120]
    # Memorising four queries is plumbing, not quality: the labels and the loss point the right way.
    assert result.evaluations[-1]["accuracy@1"] == 1.0
    reranker = CrossEncoderReranker(str(out))
    for example in EXAMPLES:
        candidates = [*example.negatives, example.positive]
        assert reranker.run(example.query, candidates).order[0] == len(candidates) - 1
    assert json.loads((out / "training.json").read_text())["config"]["save_dtype"] == "float16"


def test_resume_and_overwrite_protection(tiny_cross_encoder_dir, tmp_path):
    out = tmp_path / "reranker"
    RerankerTrainer(str(tiny_cross_encoder_dir), out, _config(max_steps=10, save_steps=5, eval_steps=5),
                    heldout=EXAMPLES[:1]).run(EXAMPLES)
    with pytest.raises(FileExistsError):
        RerankerTrainer(str(tiny_cross_encoder_dir), out, _config(max_steps=15)).run(EXAMPLES)
    resumed = RerankerTrainer(str(tiny_cross_encoder_dir), out, _config(max_steps=15, save_steps=5, eval_steps=5),
                              heldout=EXAMPLES[:1]).run(EXAMPLES, resume=True)
    assert resumed.steps == 15 and [row["step"] for row in resumed.evaluations] == [5, 10, 15]
