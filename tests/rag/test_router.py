"""The task router on the labelled prompts (100+ per language) and its fixed rules."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.router import TASKS, TaskRouter, given_text

PROMPTS = Path(__file__).parent / "data" / "router_prompts.jsonl"
router = TaskRouter()


def _rows() -> list[dict]:
    return [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_labelled_set_covers_every_task_in_both_languages():
    counts = Counter((row["lang"], row["task"]) for row in _rows())
    for lang in ("en", "zh"):
        assert sum(n for (l, _), n in counts.items() if l == lang) >= 100
        assert all(counts[(lang, task)] >= 8 for task in TASKS)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_accuracy_on_the_labelled_prompts(lang):
    rows = [row for row in _rows() if row["lang"] == lang]
    wrong = [row["text"] for row in rows if router.route(row["text"], has_image=row["has_image"]).task != row["task"]]
    # The patterns were written against these prompts: a floor against regressions, not a claim of quality.
    assert len(wrong) / len(rows) <= 0.03, wrong


def test_an_explicit_task_wins_and_an_image_means_caption():
    assert router.route("What causes tides?", task="image").task == "image"
    assert router.route("Draw a cat", has_image=True).task == "caption"
    with pytest.raises(ValueError, match="unknown task"):
        router.route("hi", task="dance")


@pytest.mark.parametrize("text, task", [
    ("How do I draw a diagram in Markdown?", "qa"),              # a question about drawing
    ("Can you draw a diagram of the water cycle?", "image"),     # a request to draw
    ("Make a video of a cat painting a picture.", "video"),      # video wins over image
    ("如何在文档中插入视频？", "qa"),
    ("帮我画一只猫。", "image"),
])
def test_questions_about_a_task_are_questions(text, task):
    assert router.route(text).task == task


@pytest.mark.parametrize(("request_text", "expected"), [
    ("Summarize this: The cat sat. The dog ran.", "The cat sat. The dog ran."),
    ("Is this review positive or negative? 'Cold food, slow service.'", "Cold food, slow service."),
    ("总结一下：今天天气很好。", "今天天气很好。"),
    ("Once upon a time there was a fox", "Once upon a time there was a fox"),
])
def test_given_text_is_what_follows_the_colon_or_the_quotation(request_text, expected):
    assert given_text(request_text) == expected
