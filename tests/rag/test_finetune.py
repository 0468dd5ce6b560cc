"""`rag finetune reader`: data from SQuAD files, held-out articles kept out of training, the CLI contract."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rag.cli import app
from rag.finetune import reader_data

runner = CliRunner()


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
