"""Hybrid retrieval: dense (FAISS) and BM25 candidates fused by weighted reciprocal-rank fusion."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from common.fusion import HYBRID_BM25_WEIGHT, HYBRID_DENSE_WEIGHT, HYBRID_RRF_K, reciprocal_rank_fusion
from common.language import query_language
from generators.text.embedder import SentenceEmbedder
from generators.text.sentence_reader import SENTENCE_SPLIT_VERSION
from index.store import IndexReader
from ingest.chunking import indexed_text


@dataclass(frozen=True)
class RetrievedPassage:
    chunk_id: int
    doc_id: str
    source: str
    title: str | None
    heading: str | None
    page: int | None
    start: int
    end: int
    text: str
    score: float  # fused score
    dense_rank: int | None  # 1-based rank among dense candidates, None if not a candidate
    bm25_rank: int | None

    @property
    def indexed_text(self) -> str:
        """The text as retrieval matched it: its heading path first."""
        return indexed_text(self.text, self.heading)


@dataclass(frozen=True)
class MetadataFilter:
    """Which documents a query may draw on: source globs ("docs/*.md", "*.pdf") and/or document ids, never the
    `hidden` ones (those the caller may not read: they are left out before anything is ranked or scored)."""

    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] | None = None
    hidden: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not self.sources and self.doc_ids is None and not self.hidden


@dataclass(frozen=True)
class RetrievalResult:
    passages: list[RetrievedPassage]
    timings_ms: dict[str, float] = field(default_factory=dict)


class HybridRetriever:
    """Retrieve passages for a query from one index reader."""

    def __init__(
        self,
        reader: IndexReader,
        embedder: SentenceEmbedder,
        *,
        top_k: int = 5,
        dense_depth: int = 50,
        bm25_depth: int = 50,
        dense_weight: float = HYBRID_DENSE_WEIGHT,
        bm25_weight: float = HYBRID_BM25_WEIGHT,
        rrf_k: int = HYBRID_RRF_K,
        dense_languages: Collection[str] | None = None,
    ) -> None:
        self.reader = reader
        self.embedder = embedder
        self.top_k = top_k
        self.dense_depth = dense_depth
        self.bm25_depth = bm25_depth
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.rrf_k = rrf_k
        # Languages the embedder serves (None: all). For other queries the dense
        # ranking is noise and would only drag the fusion down, so it is left out.
        self.dense_languages = None if dense_languages is None else frozenset(dense_languages)

    def run(self, query: str, *, top_k: int | None = None, filters: MetadataFilter | None = None) -> RetrievalResult:
        top_k = self.top_k if top_k is None else top_k
        started = time.perf_counter()
        allowed = None
        hidden = frozenset() if filters is None else filters.hidden
        if filters is not None and not filters.is_empty:
            allowed = self.reader.chunk_ids_where(doc_ids=filters.doc_ids, source_globs=filters.sources,
                                                  exclude_doc_ids=hidden)
            if len(allowed) == 0:
                return RetrievalResult([], {"dense": 0.0, "bm25": 0.0, "total": 0.0})
        dense_weight = self.dense_weight
        if self.dense_languages is not None and query_language(query) not in self.dense_languages:
            dense_weight = 0.0
        # A retriever with weight 0 cannot change the fused order: skip its cost.
        dense = (
            self.reader.search_dense(self.embedder.embed_query(query), self.dense_depth, allowed_ids=allowed)
            if dense_weight
            else []
        )
        after_dense = time.perf_counter()
        keyword = (self.reader.search_bm25(query, self.bm25_depth, allowed_ids=allowed, hidden=hidden)
                   if self.bm25_weight else [])
        after_bm25 = time.perf_counter()
        dense_ids = [i for i, _ in dense]
        bm25_ids = [i for i, _ in keyword]
        fused = reciprocal_rank_fusion([dense_ids, bm25_ids], [dense_weight, self.bm25_weight], self.rrf_k)[:top_k]
        chunks = self.reader.chunks([i for i, _ in fused])
        dense_rank = {i: r for r, i in enumerate(dense_ids, start=1)}
        bm25_rank = {i: r for r, i in enumerate(bm25_ids, start=1)}
        passages = [
            RetrievedPassage(
                chunk_id=i, doc_id=c.doc_id, source=c.source, title=c.title, heading=c.heading, page=c.page,
                start=c.start, end=c.end, text=c.text, score=score,
                dense_rank=dense_rank.get(i), bm25_rank=bm25_rank.get(i),
            )
            for i, score in fused
            if (c := chunks.get(i)) is not None
        ]
        finished = time.perf_counter()
        timings = {
            "dense": round((after_dense - started) * 1000, 2),
            "bm25": round((after_bm25 - after_dense) * 1000, 2),
            "total": round((finished - started) * 1000, 2),
        }
        return RetrievalResult(passages, timings)

    def pages(self, doc_id: str, start: int, end: int) -> list[int]:
        """The pages (or slides) of the document that a cited span covers; [] for an unpaginated one."""
        return self.reader.pages(doc_id, start, end)

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Chunk id → the vectors of its sentences that the ingest stored (for the evidence scorer)."""
        return self.reader.sentence_vectors(chunk_ids, SENTENCE_SPLIT_VERSION) if chunk_ids else {}
