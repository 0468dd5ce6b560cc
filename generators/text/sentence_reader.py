"""Sentence extractor: the offline reader when no extractive QA model resolves.

It answers with the passage sentence that best supports the question, scored
by the embedder's cosine similarity plus keyword overlap, and says so
(`answer_type = "sentence"`): it finds supporting text, it does not pinpoint
a short answer span the way a SQuAD-trained reader does.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from generators.text.embedder import SentenceEmbedder
from generators.text.reading import ReaderPassage, ReaderResult, ReaderSpan, SpanReader

# Bumped whenever `split_sentences` changes: sentence vectors stored at ingest hold one row per sentence it gave.
SENTENCE_SPLIT_VERSION = "1"

# A sentence ends at . ! ? (followed by space or end) or at Chinese 。！？, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])|\n\s*\n|\n(?=\s*[-*#>|]|\s*\d+\.)")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty sentence of `text`, whitespace trimmed."""
    spans = []
    position = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    trimmed = []
    for start, end in spans:
        piece = text[start:end]
        left = len(piece) - len(piece.lstrip())
        right = len(piece.rstrip())
        if right > left:
            trimmed.append((start + left, start + right))
    return trimmed


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """(start, end) of the sentence(s) of `text` that hold the span [start, end); the span itself if none do."""
    around = [(s, e) for s, e in split_sentences(text) if s < end and e > start]
    return (around[0][0], around[-1][1]) if around else (start, end)


def sentence_of(span: ReaderSpan, passage: ReaderPassage) -> ReaderSpan:
    """`span` (document offsets, inside `passage`) widened to the sentence(s) of the passage that hold it."""
    start, end = sentence_bounds(passage.text, span.start - passage.offset, span.end - passage.offset)
    return ReaderSpan(span.key, passage.offset + start, passage.offset + end, passage.text[start:end], span.score)


# A fenced code block opening right where a sentence ends (whitespace between), e.g. "use `embed`:\n\n```Python".
_CODE_AFTER = re.compile(r"\s*\n(```|~~~)[^\n]*\n.*?\n\1[ \t]*(?=\n|$)", re.DOTALL)


def code_block_after(text: str, end: int, *, max_chars: int = 800) -> tuple[int, int] | None:
    """(start, end) in `text` of the fenced code block that follows position `end` with only whitespace between,
    if one does and it is at most `max_chars` long: documentation introduces its examples with the sentence
    before them ("... use the `Body` parameter `embed`:")."""
    match = _CODE_AFTER.match(text, end)
    if match is None or match.end() - match.start(1) > max_chars:
        return None
    return match.start(1), match.end()


class SentenceReader(SpanReader):
    """Score every sentence of the passages against the question; best first."""

    answer_type = "sentence"

    def __init__(
        self,
        embedder: SentenceEmbedder,
        analyzer: Callable[[str], list[str]],
        *,
        keyword_weight: float = 0.3,
        min_chars: int = 12,
        max_sentences: int = 400,
        cache_size: int = 20_000,
    ) -> None:
        self.embedder = embedder
        self.analyzer = analyzer
        self.keyword_weight = keyword_weight
        self.min_chars = min_chars
        self.max_sentences = max_sentences
        self.cache_size = cache_size  # sentence vectors kept (least recently used dropped): ~1.5 KB each
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def warm_up(self) -> SentenceReader:
        self.embedder.warm_up()
        return self

    def run(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3,
            history: Sequence[Mapping[str, str]] | None = None, retry_top_passage: bool | None = None) -> ReaderResult:
        return self.answer(self.rank_sentences(question, passages, top_k=top_k), top_k=top_k)

    def answer(self, ranked: Sequence[ReaderSpan], *, top_k: int = 3) -> ReaderResult:
        """The result for sentences already ranked by `rank_sentences`: the best one answers."""
        if not ranked:
            return ReaderResult("", self.answer_type, 0.0, [])
        return ReaderResult(ranked[0].text, self.answer_type, ranked[0].score, list(ranked[:top_k]))

    def _sentence_vectors(self, texts: list[str]) -> np.ndarray:
        """Vectors of passage sentences; the same passages come back again and again, so they are cached."""
        with self._lock:
            found = {t: self._cache[t] for t in dict.fromkeys(texts) if t in self._cache}
            for text in found:
                self._cache.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = self.embedder.embed(missing).vectors
            found.update(zip(missing, fresh))
            with self._lock:
                for text, vector in zip(missing, fresh):
                    self._cache[text] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def _vectors_of(self, texts: list[str], stored: list[np.ndarray | None]) -> np.ndarray:
        """Vectors of `texts`: the stored ones as they are, the rest embedded (or from the cache)."""
        missing = [i for i, vector in enumerate(stored) if vector is None]
        if len(missing) == len(texts):
            return self._sentence_vectors(texts)
        blank = np.zeros_like(next(v for v in stored if v is not None))
        out = np.stack([blank if v is None else v for v in stored])
        if missing:
            out[missing] = self._sentence_vectors([texts[i] for i in missing])
        return out

    def best_heading_score(self, question: str, passages: Sequence[ReaderPassage]) -> float | None:
        """The best score (cosine + keyword overlap, as for sentences) of a Markdown heading of the passages:
        documentation often puts the very question in a heading ("## Can I run two ingests at once?") and the
        answer under it. None when the passages hold no heading."""
        headings = []
        for passage in passages:
            for line in passage.text.splitlines():
                text = line.strip().lstrip("#").strip()
                text = re.sub(r"\s*\{\s*#[^}]*\}\s*$", "", text)  # "{ #anchor }" ids of MkDocs headings
                if line.lstrip().startswith("#") and len(text) >= self.min_chars:
                    headings.append(text)
        if not headings:
            return None
        cosine = self._sentence_vectors(headings) @ self.embedder.embed_query(question)
        question_terms = set(self.analyzer(question))
        overlap = [len(question_terms & set(self.analyzer(h))) / len(question_terms) if question_terms else 0.0
                   for h in headings]
        return float(max(c + self.keyword_weight * o for c, o in zip(cosine, overlap)))

    def rank_sentences(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3) -> list[ReaderSpan]:
        candidates: list[tuple[ReaderPassage, int, int]] = []
        stored_rows: list[np.ndarray | None] = []  # each candidate's vector stored at ingest, if there is one
        for passage in passages:
            spans = split_sentences(passage.text)
            stored = passage.sentence_vectors
            if stored is not None and len(stored) != len(spans):
                stored = None  # not this text's split: embed it here instead
            for row, (start, end) in enumerate(spans):
                # A heading restates the topic (often the question itself) but answers nothing.
                if end - start >= self.min_chars and not passage.text.startswith("#", start):
                    candidates.append((passage, start, end))
                    stored_rows.append(None if stored is None else stored[row])
        candidates = candidates[: self.max_sentences]
        if not candidates:
            return []
        texts = [p.text[s:e] for p, s, e in candidates]
        cosine = self._vectors_of(texts, stored_rows[: len(candidates)]) @ self.embedder.embed_query(question)
        question_terms = set(self.analyzer(question))
        overlap = np.array(
            [len(question_terms & set(self.analyzer(t))) / len(question_terms) if question_terms else 0.0 for t in texts],
            dtype=np.float32,
        )
        scores = cosine + self.keyword_weight * overlap
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [
            ReaderSpan(
                key=candidates[i][0].key,
                start=candidates[i][0].offset + candidates[i][1],
                end=candidates[i][0].offset + candidates[i][2],
                text=texts[i],
                score=float(scores[i]),
            )
            for i in order
        ]
