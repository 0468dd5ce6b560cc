"""Embedding on a background thread while the next files are read: same index, each new text embedded once."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from generators.text.embedder import EmbeddingResult
from index.store import IndexStore
from ingest.pipeline import IngestPipeline
from tests.conftest import write_corpus


class RecordingEmbedder:
    """The real embedder, noting which texts each call embedded and on which thread."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[tuple[str, list[str]]] = []
        self.model_name = inner.model_name
        self.fingerprint = inner.fingerprint

    def embed(self, texts) -> EmbeddingResult:
        self.calls.append((threading.current_thread().name, list(texts)))
        return self.inner.embed(texts)


def duplicated_corpus(folder: Path) -> Path:
    """Each topic twice under adjacent names, so identical chunks land in consecutive embedding groups."""
    write_corpus(folder)
    for path in sorted(folder.glob("*.md")):
        (folder / f"{path.stem}_copy.md").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def state(index_dir: Path) -> tuple[dict, dict]:
    """(file name, seq) → (start, end, text), and (file name, seq) → stored vector."""
    with IndexStore(index_dir).reader() as reader:
        rows = reader.store.conn.execute(
            'SELECT c.doc_id, c.seq, c.start, c."end", c.text, e.vector FROM chunks c '
            "JOIN embeddings e ON e.text_hash = c.text_hash"
        ).fetchall()
        names = {doc_id: Path(src).name for src, doc_id in reader.store.sources().items()}
        assert len(rows) == reader.stats().chunks
        chunks = {(names[r[0]], r[1]): (r[2], r[3], r[4]) for r in rows}
        vectors = {(names[r[0]], r[1]): np.frombuffer(r[5], dtype=np.float32) for r in rows}
        return chunks, vectors


def test_small_groups_in_flight_give_the_same_index_and_embed_each_text_once(tmp_path, embedder, chunker):
    corpus = duplicated_corpus(tmp_path / "corpus")
    overlapped = RecordingEmbedder(embedder)
    # Chunk texts only: a sentence that chunks in two groups share is embedded by each (stored per chunk).
    report = IngestPipeline(IndexStore(tmp_path / "small"), overlapped, chunker, embed_batch_chunks=3,
                            commit_every_chunks=5, sentence_vectors=False).run([corpus])
    whole = RecordingEmbedder(embedder)
    reference = IngestPipeline(IndexStore(tmp_path / "whole"), whole, chunker,
                               embed_batch_chunks=100_000, sentence_vectors=False).run([corpus])

    assert report.ingested == reference.ingested == 16 and not report.failed
    assert report.chunks_added == reference.chunks_added
    embedded = [text for _, texts in overlapped.calls for text in texts]
    assert len(embedded) == len(set(embedded)) == report.chunks_embedded == reference.chunks_embedded
    assert len(overlapped.calls) > 3
    assert any(thread.startswith("ingest-embed") for thread, _ in overlapped.calls)

    (small_chunks, small_vectors), (big_chunks, big_vectors) = state(tmp_path / "small"), state(tmp_path / "whole")
    assert small_chunks == big_chunks
    for key, vector in big_vectors.items():
        np.testing.assert_allclose(small_vectors[key], vector, atol=1e-4)


def test_sentences_are_embedded_once_per_group_and_stored_for_every_chunk(tmp_path, embedder, chunker):
    from generators.text.sentence_reader import SENTENCE_SPLIT_VERSION, split_sentences

    corpus = duplicated_corpus(tmp_path / "corpus")
    recording = RecordingEmbedder(embedder)
    IngestPipeline(IndexStore(tmp_path / "idx"), recording, chunker, embed_batch_chunks=100_000).run([corpus])
    embedded = [text for _, texts in recording.calls for text in texts]
    assert len(embedded) == len(set(embedded))  # the copies' chunks and overlapping sentences: once each
    with IndexStore(tmp_path / "idx").reader() as reader:
        ids = reader.vectors.ids().tolist()
        stored = reader.sentence_vectors(ids, SENTENCE_SPLIT_VERSION)
        for chunk_id, chunk in reader.chunks(ids).items():
            assert len(stored[chunk_id]) == len(split_sentences(chunk.text))
            assert {chunk.text[a:b] for a, b in split_sentences(chunk.text)} <= set(embedded)
