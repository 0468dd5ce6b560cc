"""What every reader takes and returns, so the chain can swap readers per request.

A *passage* is a chunk handed to a reader; a reader returns an answer and the
spans of the passages that support it, as offsets into the document text, so a
citation points at exact characters of a source.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

AnswerType = Literal["span", "sentence", "generated"]


@dataclass(frozen=True)
class ReaderPassage:
    """A passage handed to a reader: its text and where that text starts in its document."""

    key: int  # the caller's id for the passage (e.g. its chunk id)
    text: str
    offset: int  # start of `text` in the document text
    # Vectors of `text`'s sentences computed at ingest (one row per `split_sentences` span), if the index has them.
    sentence_vectors: np.ndarray | None = field(default=None, compare=False, repr=False)
    # The header and rule rows of the Markdown table that `text` continues (a table split across chunks).
    table_header: str | None = None


@dataclass(frozen=True)
class ReaderSpan:
    """A supporting span: `text == document_text[start:end]`."""

    key: int
    start: int  # offsets into the document text
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class ReaderResult:
    answer: str  # "" when the reader found nothing
    answer_type: AnswerType
    confidence: float  # the reader's own score of `answer` (comparable within one reader only)
    spans: list[ReaderSpan]  # citations: best first (extractive), in citation order [1], [2]... (generative)
    notes: list[str] = field(default_factory=list)


ReaderEvent = str | ReaderResult  # what `Reader.stream` yields: text deltas, then the result (always last)


class Reader(Protocol):
    """What the chain asks of every reader: load, read, read as a stream.

    `generates` tells the two families apart: a reader that writes its own text (the chain checks it against the
    passages, quotes the documents after it, may overrule a decline) or one that returns spans of the passages.
    `history` (earlier chat turns) and `retry_top_passage` matter to generating readers; span readers read the
    passages alone and ignore them.
    """

    answer_type: AnswerType
    generates: bool

    def warm_up(self) -> Reader: ...

    def run(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3,
            history: Sequence[Mapping[str, str]] | None = None,
            retry_top_passage: bool | None = None) -> ReaderResult: ...

    def stream(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3,
               history: Sequence[Mapping[str, str]] | None = None,
               retry_top_passage: bool | None = None) -> Iterator[ReaderEvent]: ...


class SpanReader:
    """Base of the readers that answer with spans of the passages: nothing to load unless a subclass says so,
    and a stream that is the whole answer at once."""

    generates = False

    def warm_up(self) -> SpanReader:
        return self

    def run(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3,
            history: Sequence[Mapping[str, str]] | None = None,
            retry_top_passage: bool | None = None) -> ReaderResult:
        raise NotImplementedError

    def stream(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3,
               history: Sequence[Mapping[str, str]] | None = None,
               retry_top_passage: bool | None = None) -> Iterator[ReaderEvent]:
        result = self.run(question, passages, top_k=top_k)
        yield result.answer
        yield result
