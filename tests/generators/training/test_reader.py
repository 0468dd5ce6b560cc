"""Reader fine-tuning: SQuAD labels on token windows, subset selection, and the Trainer loop on a tiny model."""

from __future__ import annotations

import json

import pytest

from generators.text.qa_reader import ExtractiveReader
from generators.text.reading import ReaderPassage
from generators.training.reader import (
    QAExample,
    ReaderTrainer,
    ReaderTrainingConfig,
    select_examples,
    squad_examples,
    training_windows,
)

FACTS = [
    ("Who founded the observatory?", "The observatory was founded by Maria Kessler in 1911 near the river.", "Maria Kessler"),
    ("What colour is the ferry?", "Every morning the ferry, painted bright orange, leaves the harbour.", "bright orange"),
    ("How long is the bridge?", "The old bridge is 412 metres long and carries two tracks.", "412 metres"),
    ("Which grain grows in the valley?", "Farmers in the valley mostly grow barley for the breweries.", "barley"),
]


def _examples() -> list[QAExample]:
    return [QAExample(q, c, a, c.index(a), f"p{i}") for i, (q, c, a) in enumerate(FACTS)]


@pytest.fixture(scope="module")
def tokenizer(tiny_qa_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_qa_model_dir))


def test_window_labels_point_at_the_answer_tokens(tokenizer):
    windows = training_windows(tokenizer, _examples(), max_seq_len=64, stride=16)
    assert len(windows) == len(FACTS)
    for window, (_, _, answer) in zip(windows, FACTS):
        tokens = window["input_ids"][window["start_positions"] : window["end_positions"] + 1]
        assert tokenizer.decode(tokens) == answer.lower()  # the offline tokenizer is uncased


def test_long_paragraph_keeps_only_windows_that_hold_the_whole_answer(tokenizer):
    filler = " ".join(f"Sentence {i} says nothing in particular." for i in range(40))
    context = f"{filler} The treasure lies under the third oak. {filler}"
    example = QAExample("Where is the treasure?", context, "under the third oak", context.index("under the third oak"))
    windows = training_windows(tokenizer, [example], max_seq_len=64, stride=16)
    total = len(tokenizer(example.question, context, truncation="only_second", max_length=64, stride=16,
                          return_overflowing_tokens=True)["input_ids"])
    assert 1 <= len(windows) < total
    for window in windows:
        tokens = window["input_ids"][window["start_positions"] : window["end_positions"] + 1]
        assert tokenizer.decode(tokens) == "under the third oak"


def test_squad_examples_skip_misaligned_answers_and_held_out_articles():
    articles = [
        {"paragraphs": [{"context": "Ada wrote the notes.", "qas": [
            {"id": "1", "question": "Who wrote?", "answers": [{"text": "Ada", "answer_start": 0}]},
            {"id": "2", "question": "Misaligned?", "answers": [{"text": "Ada", "answer_start": 5}]},
            {"id": "3", "question": "No answer?", "answers": []},
        ]}]},
        {"paragraphs": [{"context": "Bob read them.", "qas": [
            {"id": "4", "question": "Who read?", "answers": [{"text": "Bob", "answer_start": 0}]}]}]},
    ]
    assert [e.question for e in squad_examples(articles)] == ["Who wrote?", "Who read?"]
    assert [e.question for e in squad_examples(articles, skip_articles=[1])] == ["Who wrote?"]


def test_selection_covers_every_paragraph_before_repeating_one():
    examples = [QAExample(f"q{p}-{k}", "c", "c", 0, f"p{p}") for p in range(5) for k in range(4)]
    chosen = select_examples(examples, 7, seed=1)
    paragraphs = [e.paragraph for e in chosen]
    assert len(chosen) == 7 and set(paragraphs) == {f"p{p}" for p in range(5)}
    assert max(paragraphs.count(p) for p in set(paragraphs)) == 2
    assert select_examples(examples, 7, seed=1) == chosen  # a resumed run must see the same data
    assert len(select_examples(examples, None)) == 20


def _config(**overrides) -> ReaderTrainingConfig:
    settings = dict(max_seq_len=64, stride=16, batch_size=4, learning_rate=3e-3, warmup_ratio=0.0,
                    eval_steps=20, save_steps=20, threads=1, save_dtype="float16")
    settings.update(overrides)
    return ReaderTrainingConfig(**settings)


def _reader_answers(model_dir) -> list[str]:
    reader = ExtractiveReader(str(model_dir), max_seq_len=64, stride=16)
    return [reader.run(q, [ReaderPassage(0, c, 0)]).answer for q, c, _ in FACTS]


def test_training_learns_the_labelled_spans_and_saves_a_loadable_reader(tiny_qa_model_dir, tmp_path):
    calls = []

    def evaluate(model, tokenizer):
        calls.append(model.training)
        reader = ExtractiveReader.from_loaded(model, tokenizer, max_seq_len=64, stride=16)
        hits = sum(reader.run(q, [ReaderPassage(0, c, 0)]).answer.lower() == a.lower() for q, c, a in FACTS)
        return {"exact": hits / len(FACTS)}

    out = tmp_path / "reader"
    before = _reader_answers(tiny_qa_model_dir)
    result = ReaderTrainer(str(tiny_qa_model_dir), out, _config(max_steps=60), evaluate=evaluate).run(_examples())

    assert result.steps == 60 and result.train_windows == len(FACTS)
    assert [row["step"] for row in result.evaluations] == [20, 40, 60]
    assert calls == [False, False, False]  # evaluated in eval mode
    assert result.evaluations[-1]["exact"] == 1.0
    # Memorising four spans is plumbing, not quality: the labels reached the right tokens.
    assert [a.lower() for a in _reader_answers(out)] == [a.lower() for _, _, a in FACTS] != before
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] == 60 and info["config"]["save_dtype"] == "float16"
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert all(weights.get_tensor(name).dtype.is_floating_point for name in weights.keys())
        assert {str(weights.get_tensor(name).dtype) for name in weights.keys()} == {"torch.float16"}


def test_resume_continues_from_the_last_checkpoint(tiny_qa_model_dir, tmp_path):
    out = tmp_path / "reader"

    def evaluate(model, tokenizer):
        return {"calls": 1.0}

    first = ReaderTrainer(str(tiny_qa_model_dir), out, _config(max_steps=20, save_steps=10, eval_steps=10),
                          evaluate=evaluate).run(_examples())
    assert first.steps == 20
    with pytest.raises(FileExistsError):
        ReaderTrainer(str(tiny_qa_model_dir), out, _config(max_steps=30)).run(_examples())
    resumed = ReaderTrainer(str(tiny_qa_model_dir), out, _config(max_steps=30, save_steps=10, eval_steps=10),
                            evaluate=evaluate).run(_examples(), resume=True)
    # Started from checkpoint-20: steps 10 and 20 are not trained (nor evaluated) again.
    assert resumed.steps == 30
    assert [row["step"] for row in resumed.evaluations] == [10, 20, 30]


def test_no_examples_is_a_clear_error(tiny_qa_model_dir, tmp_path):
    with pytest.raises(ValueError, match="no training examples"):
        ReaderTrainer(str(tiny_qa_model_dir), tmp_path / "r", _config()).run([])
