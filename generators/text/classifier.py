"""Text classification into caller-given labels: zero-shot with the embedder, or through a text generator.

*Zero-shot*: each label becomes a hypothesis sentence ("This text is positive.")
and each text takes the label whose hypothesis its embedding is closest to;
the score is a softmax over the labels' cosine similarities (temperature 0.05,
so scores spread over 0..1). *Generator*: a constrained prompt asks for exactly
one of the labels; a reply that names no label falls back to zero-shot for
that text, and the result says so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from generators.text.embedder import SentenceEmbedder
from generators.text.text_generators import TextGenerator

HYPOTHESIS = "This text is {label}."
TEMPERATURE = 0.05
MAX_LABELS = 50


@dataclass(frozen=True)
class Classification:
    text: str
    label: str
    score: float


@dataclass
class ClassificationResult:
    results: list[Classification]
    counts: dict[str, int]
    method: str  # "zero-shot" or "generator"
    notes: list[str] = field(default_factory=list)


def _check(texts: Sequence[str], labels: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(unique) < 2:
        raise ValueError("give at least two distinct labels")
    if len(unique) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    if not texts:
        raise ValueError("give at least one text")
    return unique


def _result(texts: Sequence[str], labels: list[str], chosen: list[tuple[str, float]], method: str,
            notes: list[str] | None = None) -> ClassificationResult:
    counts = Counter(label for label, _ in chosen)
    return ClassificationResult(
        [Classification(text, label, round(float(score), 4)) for text, (label, score) in zip(texts, chosen)],
        {label: counts.get(label, 0) for label in labels}, method, notes or [])


class ZeroShotClassifier:
    """Labels by the nearest label hypothesis in the embedder's space."""

    def __init__(self, embedder: SentenceEmbedder, *, hypothesis: str = HYPOTHESIS) -> None:
        self.embedder = embedder
        self.hypothesis = hypothesis

    def scores(self, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        """(texts × labels) probabilities."""
        vectors = self.embedder.embed([*texts, *(self.hypothesis.format(label=l) for l in labels)]).vectors
        similarity = vectors[: len(texts)] @ vectors[len(texts) :].T
        logits = similarity / TEMPERATURE
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def __call__(self, texts: Sequence[str], labels: Sequence[str]) -> ClassificationResult:
        labels = _check(texts, labels)
        probabilities = self.scores(texts, labels)
        chosen = [(labels[int(row.argmax())], float(row.max())) for row in probabilities]
        return _result(texts, labels, chosen, "zero-shot")


class GeneratorClassifier:
    """Asks a text generator for one label per text; zero-shot decides where the reply names none."""

    def __init__(self, generator: TextGenerator, fallback: ZeroShotClassifier) -> None:
        self.generator = generator
        self.fallback = fallback

    @staticmethod
    def prompt(text: str, labels: Sequence[str]) -> list[dict[str, str]]:
        options = ", ".join(labels)
        return [
            {"role": "system", "content": f"You classify texts. Answer with exactly one of these labels and "
                                          f"nothing else: {options}."},
            {"role": "user", "content": f"Text: {text}\nLabel ({options}):"},
        ]

    @staticmethod
    def parse(reply: str, labels: Sequence[str]) -> str | None:
        """The label the reply names first (whole words, case-insensitive), or None."""
        found = []
        for label in labels:
            match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", reply, re.IGNORECASE)
            if match:
                found.append((match.start(), -len(label), label))
        return min(found)[2] if found else None

    def __call__(self, texts: Sequence[str], labels: Sequence[str]) -> ClassificationResult:
        labels = _check(texts, labels)
        chosen: list[tuple[str, float] | None] = []
        for text in texts:
            reply = self.generator.generate(self.prompt(text, labels), max_new_tokens=8, temperature=0.0)
            label = self.parse(reply, labels)
            chosen.append((label, 1.0) if label else None)
        missing = [i for i, c in enumerate(chosen) if c is None]
        notes = []
        if missing:
            probabilities = self.fallback.scores([texts[i] for i in missing], labels)
            for i, row in zip(missing, probabilities):
                chosen[i] = (labels[int(row.argmax())], float(row.max()))
            notes.append(f"{len(missing)} of {len(texts)} replies named no label: decided zero-shot")
        return _result(texts, labels, [c for c in chosen if c is not None], "generator", notes)
