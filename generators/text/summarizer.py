"""Summaries: extractive with the embedder, or written by a text generator.

*Extractive*: the text's sentences are embedded; sentences close to the
centroid (what the text is mostly about) are picked greedily with maximal
marginal relevance (each pick is penalised by its similarity to the sentences
already picked, so the summary does not repeat itself) and returned in their
original order, each with its exact character offsets. *Generator*: a prompt
asks for a summary of at most N sentences; the text is cut to the generator's
budget first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from generators.text.embedder import SentenceEmbedder
from generators.text.sentence_reader import split_sentences
from generators.text.text_generators import TextGenerator

MAX_INPUT_CHARS = 12_000


@dataclass(frozen=True)
class SummarySentence:
    start: int
    end: int
    text: str


@dataclass
class Summary:
    summary: str
    sentences: list[SummarySentence]  # extractive: where each sentence of the summary comes from
    method: str  # "extractive" or "generator"
    notes: list[str] = field(default_factory=list)


class ExtractiveSummarizer:
    def __init__(self, embedder: SentenceEmbedder, *, redundancy: float = 0.3) -> None:
        self.embedder = embedder
        self.redundancy = redundancy  # weight of the similarity to sentences already picked

    def __call__(self, text: str, *, max_sentences: int = 3) -> Summary:
        if not text.strip():
            raise ValueError("the text is empty")
        spans = split_sentences(text)
        if len(spans) <= max_sentences:
            chosen = spans
        else:
            vectors = self.embedder.embed([text[s:e] for s, e in spans]).vectors
            centroid = vectors.mean(axis=0)
            centroid /= np.linalg.norm(centroid) or 1.0
            relevance = vectors @ centroid
            picked: list[int] = []
            while len(picked) < max_sentences:
                penalty = (vectors @ vectors[picked].T).max(axis=1) if picked else np.zeros(len(spans))
                score = relevance - self.redundancy * penalty
                score[picked] = -np.inf
                picked.append(int(score.argmax()))
            chosen = [spans[i] for i in sorted(picked)]
        sentences = [SummarySentence(s, e, text[s:e]) for s, e in chosen]
        return Summary(" ".join(s.text for s in sentences), sentences, "extractive")


class GeneratorSummarizer:
    def __init__(self, generator: TextGenerator, *, max_new_tokens: int = 200) -> None:
        self.generator = generator
        self.max_new_tokens = max_new_tokens

    @staticmethod
    def prompt(text: str, max_sentences: int) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": f"Summarise the user's text in at most {max_sentences} sentences. "
                                          "Use only facts from the text."},
            {"role": "user", "content": text},
        ]

    def __call__(self, text: str, *, max_sentences: int = 3) -> Summary:
        if not text.strip():
            raise ValueError("the text is empty")
        notes = []
        if len(text) > MAX_INPUT_CHARS:
            text = text[:MAX_INPUT_CHARS]
            notes.append(f"only the first {MAX_INPUT_CHARS} characters were summarised")
        reply = self.generator.generate(self.prompt(text, max_sentences), max_new_tokens=self.max_new_tokens)
        return Summary(reply.strip(), [], "generator", notes)

