"""Builds the objects of `ingest/`, `index/` and `generators/` from `Settings`, with plain arguments."""

from __future__ import annotations

from pathlib import Path

from generators.embedder import SentenceEmbedder
from index.store import IndexReader, IndexStore
from ingest.chunking import Chunker
from ingest.pipeline import IngestPipeline, ProgressCallback
from rag.retriever import HybridRetriever
from rag.settings import Settings


def build_embedder(settings: Settings) -> SentenceEmbedder:
    return SentenceEmbedder(
        settings.embedder_model,
        backend=settings.embedder_backend,
        device=settings.device,
        batch_tokens=settings.embed_batch_tokens,
        setting="RAG_EMBEDDER_MODEL",
    )


def build_retriever(settings: Settings, reader: IndexReader, embedder: SentenceEmbedder, **overrides) -> HybridRetriever:
    return HybridRetriever(reader, embedder, dense_languages=settings.embedder_languages, **overrides)


def build_chunker(settings: Settings, embedder: SentenceEmbedder) -> Chunker:
    tokenizer = embedder.tokenizer
    # The model reads at most max_tokens including its two special tokens.
    chunk_tokens = min(settings.chunk_tokens, embedder.max_tokens - 2)

    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False, verbose=False))

    return Chunker(
        count_tokens,
        chunk_tokens=chunk_tokens,
        overlap_tokens=min(settings.chunk_overlap, chunk_tokens - 1),
        max_heading_level=settings.max_heading_level,
        tokenizer_name=embedder.model_name,
    )


def build_store(settings: Settings, index_dir: Path | None = None) -> IndexStore:
    return IndexStore(index_dir or settings.index_dir, backend=settings.backend)


def build_ingest_pipeline(
    settings: Settings, store: IndexStore, *, on_progress: ProgressCallback | None = None
) -> IngestPipeline:
    embedder = build_embedder(settings)
    return IngestPipeline(
        store,
        embedder,
        build_chunker(settings, embedder),
        include=settings.include,
        exclude=settings.exclude,
        max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
        embed_batch_chunks=settings.embed_batch_chunks,
        commit_every_chunks=settings.commit_every_chunks,
        lock_timeout=settings.lock_timeout,
        on_progress=on_progress,
    )
