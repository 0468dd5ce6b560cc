"""`rag finetune reader`: data from SQuAD files, held-out articles kept out of training, the CLI contract."""

from __future__ import annotations

import json

import pytest

from typer.testing import CliRunner

from rag.cli import app
from rag.finetune import reader_data

runner = CliRunner()


@pytest.fixture
def small_index_settings(monkeypatch):
    monkeypatch.setenv("RAG_INGEST__CHUNK_TOKENS", "64")
    monkeypatch.setenv("RAG_INGEST__CHUNK_OVERLAP", "8")


def _squad(path, articles: int = 4, paragraphs: int = 2):
    data = []
    for a in range(articles):
        paras = []
        for p in range(paragraphs):
            context = f"Town {a}-{p} was founded by Mayor{a}x{p} long ago, beside the river."
            answer = f"Mayor{a}x{p}"
            paras.append({"context": context, "qas": [
                {"id": f"{a}-{p}-{k}", "question": f"Who founded town {a}-{p}? ({k})",
                 "answers": [{"text": answer, "answer_start": context.index(answer)}]} for k in range(3)]})
        data.append({"title": f"article {a}", "paragraphs": paras})
    path.write_text(json.dumps({"data": data}))
    return path


def test_held_out_articles_are_not_trained_on(tmp_path):
    data = reader_data([_squad(tmp_path / "train.json")], holdout_articles=1, eval_limit=0)
    held_out_contexts = {item.context for item in data.heldout}
    assert len(data.heldout) == 6 and all(c.startswith("Town 3-") for c in held_out_contexts)
    assert len(data.train) == 18 and not {e.context for e in data.train} & held_out_contexts
    limited = reader_data([_squad(tmp_path / "train.json")], holdout_articles=1, eval_limit=2, max_examples=6)
    # The budget takes one question from each of the six training paragraphs first.
    assert len({e.paragraph for e in limited.train}) == 6 and len(limited.heldout) == 2


def test_separate_eval_file_keeps_every_training_article(tmp_path):
    data = reader_data([_squad(tmp_path / "train.json")], eval_squad=_squad(tmp_path / "dev.json", articles=1))
    assert len(data.train) == 24 and len(data.heldout) == 6 and data.heldout_source.endswith("dev.json")


def test_finetune_reader_cli_trains_evaluates_and_refuses_to_overwrite(tmp_path, tiny_qa_model_dir):
    train = _squad(tmp_path / "train.json")
    out = tmp_path / "reader"
    args = ["finetune", "reader", "--squad", str(train), "--base", str(tiny_qa_model_dir), "--out", str(out),
            "--holdout-articles", "1", "--max-steps", "4", "--batch-size", "4", "--eval-steps", "2",
            "--save-steps", "2", "--max-seq-len", "64", "--stride", "16", "--threads", "1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds only the JSON summary
    assert summary["steps"] == 4 and summary["examples"] == 18
    assert [row["step"] for row in summary["evaluations"]] == [2, 4]
    assert {"em", "f1", "contains"} <= set(summary["evaluations"][0])
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.stderr

    resumed = runner.invoke(app, [*args[:-1], "--max-steps", "6", "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert [row["step"] for row in json.loads(resumed.stdout)["evaluations"]] == [2, 4, 6]


def test_finetune_reader_rejects_a_missing_base_model(tmp_path):
    result = runner.invoke(app, ["finetune", "reader", "--squad", str(_squad(tmp_path / "t.json")),
                                 "--base", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                                 "--holdout-articles", "1"])
    assert result.exit_code == 2 and "nowhere" in result.stderr.replace("\n", "")
    assert not (tmp_path / "o").exists()


def _beir(folder, queries: int = 6):
    folder.mkdir()
    topics = ["volcanoes erupt molten rock", "penguins live in Antarctica", "bread rises with yeast",
              "comets have icy tails", "violins have four strings", "glaciers carve valleys"]
    with (folder / "corpus.jsonl").open("w") as corpus:
        for i, topic in enumerate(topics):
            corpus.write(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": f"It is known that {topic}."}) + "\n")
    with (folder / "queries.jsonl").open("w") as handle:
        for i, topic in enumerate(topics[:queries]):
            handle.write(json.dumps({"_id": f"q{i}", "text": f"what about {topic.split()[0]}"}) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(queries)))
    return folder


def test_finetune_reranker_mines_negatives_from_the_corpus_and_trains(tmp_path, tiny_cross_encoder_dir, small_index_settings):
    from rag.finetune import ranking_data
    from rag.settings import Settings

    data = ranking_data(Settings(), work=tmp_path / "work", squad=_squad(tmp_path / "train.json"), holdout=1,
                        negatives=2)
    assert len(data.train) == 18 and len(data.heldout) == 6
    for example in data.train:
        assert len(example.negatives) == 2 and example.positive not in example.negatives
        assert example.query.startswith("Who founded town ")
        town = example.query.split()[3].rstrip("?")
        assert f"Town {town} " in example.positive and all(f"Town {town} " not in n for n in example.negatives)

    out = tmp_path / "reranker"
    result = runner.invoke(app, ["finetune", "reranker", "--beir", str(_beir(tmp_path / "beir")), "--holdout", "2",
                                 "--base", str(tiny_cross_encoder_dir), "--out", str(out), "--negatives", "2",
                                 "--work", str(tmp_path / "work"), "--max-steps", "3", "--batch-size", "4",
                                 "--eval-steps", "3", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["examples"] == 4 and summary["pairs"] == 12 and summary["steps"] == 3
    assert {"accuracy@1", "mrr"} <= set(summary["evaluations"][-1])
    assert (out / "config.json").is_file()


def test_finetune_reranker_needs_exactly_one_source(tmp_path):
    result = runner.invoke(app, ["finetune", "reranker", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "exactly one" in result.stderr


def test_finetune_embedder_cli(tmp_path, tiny_embedder_dir):
    out = tmp_path / "embedder"
    result = runner.invoke(app, ["finetune", "embedder", "--beir", str(_beir(tmp_path / "beir")), "--holdout", "2",
                                 "--base", str(tiny_embedder_dir), "--out", str(out), "--work", str(tmp_path / "work"),
                                 "--max-steps", "2", "--batch-size", "2", "--eval-steps", "1", "--threads", "1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["examples"] == 4 and summary["steps"] == 2
    assert [row["step"] for row in summary["evaluations"]] == [1, 2]
    assert (out / "modules.json").is_file()
