"""SQuAD-format files as a folder of documents, one paragraph per file, for open-setting benchmarks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SquadQuestion:
    question: str
    answers: list[str]
    gold_path: str  # the file holding the question's paragraph
    article: int


def load_articles(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def write_paragraphs(articles: list[dict], folder: Path, *, article_ids: list[int] | None = None) -> list[SquadQuestion]:
    """Write the paragraphs of the chosen articles as `AAAA-PPP.txt`; return their questions."""
    folder.mkdir(parents=True, exist_ok=True)
    questions = []
    for a in article_ids if article_ids is not None else range(len(articles)):
        for p, paragraph in enumerate(articles[a]["paragraphs"]):
            path = folder / f"{a:04d}-{p:03d}.txt"
            path.write_text(paragraph["context"], encoding="utf-8")
            for qa in paragraph["qas"]:
                questions.append(SquadQuestion(qa["question"], [x["text"] for x in qa["answers"]], str(path), a))
    return questions


def article_questions(articles: list[dict], article_ids: list[int]) -> list[SquadQuestion]:
    """Questions of articles that are not written anywhere (unanswerable from a corpus without them)."""
    return [
        SquadQuestion(qa["question"], [x["text"] for x in qa["answers"]], "", a)
        for a in article_ids
        for paragraph in articles[a]["paragraphs"]
        for qa in paragraph["qas"]
    ]
