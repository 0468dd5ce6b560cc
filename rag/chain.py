"""The ask chain: retrieve → (rerank) → read, returning an answer with citations or an abstention."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from generators.reading import ReaderPassage
from generators.sentence_reader import SentenceReader
from rag.retriever import HybridRetriever

NOT_FOUND = "Not found in the documents."
MAX_QUESTION_CHARS = 2000


class Citation(BaseModel):
    doc_id: str
    source: str
    start: int = Field(description="Offset of the cited span in the document's extracted text.")
    end: int
    text: str
    score: float


class AskResponse(BaseModel):
    answer: str
    abstained: bool
    confidence: float
    answer_type: str
    citations: list[Citation]
    timings_ms: dict[str, float]
    notes: list[str] = Field(default_factory=list)


class AskChain:
    """Answer one question from one index."""

    def __init__(
        self,
        retriever: HybridRetriever,
        reader: SentenceReader,
        *,
        top_k: int = 5,
        min_answer_score: float = 0.35,
    ) -> None:
        self.retriever = retriever
        self.reader = reader
        self.top_k = top_k
        self.min_answer_score = min_answer_score

    def run(self, question: str, *, top_k: int | None = None) -> AskResponse:
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
        started = time.perf_counter()
        retrieved = self.retriever.run(question, top_k=top_k or self.top_k)
        after_retrieval = time.perf_counter()
        passages = {p.chunk_id: p for p in retrieved.passages}
        spans = self.reader.run(question, [ReaderPassage(p.chunk_id, p.text, p.start) for p in retrieved.passages]).spans
        finished = time.perf_counter()
        timings = {
            "retrieve": round((after_retrieval - started) * 1000, 2),
            "rerank": 0.0,
            "read": round((finished - after_retrieval) * 1000, 2),
            "total": round((finished - started) * 1000, 2),
        }
        notes = ["no reranker configured: passages are in retrieval order"]
        best = spans[0] if spans else None
        if best is None or best.score < self.min_answer_score:
            closest = [
                Citation(doc_id=p.doc_id, source=p.source, start=p.start, end=p.end, text=p.text, score=p.score)
                for p in retrieved.passages[:3]
            ]
            return AskResponse(answer=NOT_FOUND, abstained=True, confidence=best.score if best else 0.0,
                               answer_type=self.reader.answer_type, citations=closest, timings_ms=timings, notes=notes)
        citations = [
            Citation(doc_id=passages[s.key].doc_id, source=passages[s.key].source, start=s.start, end=s.end,
                     text=s.text, score=s.score)
            for s in spans
            if s.score >= self.min_answer_score
        ]
        return AskResponse(answer=best.text, abstained=False, confidence=best.score,
                           answer_type=self.reader.answer_type, citations=citations, timings_ms=timings, notes=notes)
