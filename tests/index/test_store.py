"""Atomic generations, one writer, readers that see only committed state, rebuild from the docstore."""

from __future__ import annotations

import numpy as np
import pytest

from index.bm25 import analyze
from index.docstore import ChunkRecord, DocumentRecord
from index.backends import MilvusBackend
from index.store import BackendMismatchError, IndexLockedError, IndexStore, MissingIndexError

DIM = 8


def vectors(n: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def document(doc_id: str, texts: list[str]) -> tuple[DocumentRecord, list[ChunkRecord]]:
    text = " ".join(texts)
    record = DocumentRecord(doc_id, f"/docs/{doc_id}.txt", f"hash-{doc_id}-{len(text)}", "text", None, text, len(text))
    chunks, offset = [], 0
    for seq, piece in enumerate(texts):
        chunks.append(ChunkRecord(seq, offset, offset + len(piece), piece, None, None, f"{doc_id}-{seq}-{piece}", analyze(piece)))
        offset += len(piece) + 1
    return record, chunks


def test_reader_sees_only_committed_generations(tmp_path):
    store = IndexStore(tmp_path)
    with store.writer() as writer:
        writer.replace_document(*document("a", ["alpha apples", "alpha avocados"]), vectors(2, 0))
        writer.commit()
        assert store.stats().chunks == 2 and store.stats().generation == 1
        writer.replace_document(*document("b", ["beta bananas"]), vectors(1, 1))
        # Staged but not committed: readers still see generation 1.
        with store.reader() as reader:
            assert reader.stats().chunks == 2
            assert reader.search_bm25("bananas", 5) == []
            assert len(reader.vectors) == 2
    # Leaving without commit rolls back.
    assert store.stats().chunks == 2
    # A small collection lives in its delta file alone (no base index yet).
    assert sorted(p.name for p in tmp_path.glob("vectors.*")) == ["vectors.1.delta.npz"]


def test_commit_replaces_old_generation_files(tmp_path):
    store = IndexStore(tmp_path)
    with store.writer() as writer:
        writer.replace_document(*document("a", ["one"]), vectors(1, 0))
        writer.commit()
        writer.replace_document(*document("a", ["one", "two"]), vectors(2, 1))
        writer.commit()
    assert sorted(p.name for p in tmp_path.glob("vectors.*")) == ["vectors.2.delta.npz"]
    assert sorted(p.name for p in tmp_path.glob("bm25.*")) == ["bm25.2"]
    with store.reader() as reader:
        hits = reader.search_dense(vectors(2, 1)[1], 1)
        assert reader.chunks([hits[0][0]])[hits[0][0]].text == "two"
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_second_writer_fails_clearly_while_first_holds_the_lock(tmp_path):
    store = IndexStore(tmp_path)
    with store.writer():
        with pytest.raises(IndexLockedError, match="Another ingest"):
            with store.writer(lock_timeout=0.2):
                pass
    with store.writer(lock_timeout=0.2):  # free again afterwards
        pass


def test_missing_vector_file_is_rebuilt_from_the_docstore(tmp_path):
    store = IndexStore(tmp_path)
    with store.writer() as writer:
        writer.replace_document(*document("a", ["x", "y", "z"]), vectors(3, 2))
        writer.commit()
    (tmp_path / "vectors.1.delta.npz").unlink()
    with store.reader() as reader:
        hits = reader.search_dense(vectors(3, 2)[2], 1)
        assert reader.chunks([hits[0][0]])[hits[0][0]].text == "z"


def test_stale_files_of_a_crashed_commit_are_ignored_and_cleaned(tmp_path):
    store = IndexStore(tmp_path)
    with store.writer() as writer:
        writer.replace_document(*document("a", ["kept"]), vectors(1, 3))
        writer.commit()
    # What a crash between writing generation 2's files and committing leaves behind.
    (tmp_path / "vectors.2.faiss").write_bytes(b"partial")
    (tmp_path / "vectors.2.delta.npz").write_bytes(b"partial")
    (tmp_path / "bm25.2.tmp").mkdir()
    assert store.stats().generation == 1
    with store.writer():
        pass
    assert sorted(p.name for p in tmp_path.glob("vectors.*")) == ["vectors.1.delta.npz"]
    assert not (tmp_path / "bm25.2.tmp").exists()


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(MissingIndexError, match="rag ingest"):
        IndexStore(tmp_path / "nothing").reader()


def test_delete_document_removes_its_vectors_and_terms(tmp_path):
    store = IndexStore(tmp_path)
    with store.writer() as writer:
        writer.replace_document(*document("a", ["apples"]), vectors(1, 4))
        writer.replace_document(*document("b", ["bananas"]), vectors(1, 5))
        writer.commit()
        assert writer.delete_document("a") == 1
        writer.commit()
    with store.reader() as reader:
        assert reader.stats().documents == 1 and len(reader.vectors) == 1
        assert reader.search_bm25("apples", 5) == []
        assert reader.store.cached_vectors(["a-0-apples"]) == {}


def test_an_index_opened_with_another_backend_says_how_to_migrate(tmp_path):
    with IndexStore(tmp_path).writer() as writer:
        writer.replace_document(*document("a", ["apples"]), vectors(1, 4))
        writer.commit()
    other = IndexStore(tmp_path, backend=MilvusBackend(uri=str(tmp_path / "never-opened.db")))
    with pytest.raises(BackendMismatchError, match="keeps its vectors in faiss") as raised:
        other.reader()
    assert (raised.value.recorded, raised.value.wanted) == ("faiss", "milvus")
    with other.writer() as writer:  # the lock and docstore open; writing vectors does not
        with pytest.raises(BackendMismatchError, match="keeps its vectors in faiss"):
            writer.replace_document(*document("b", ["bananas"]), vectors(1, 5))
    assert not (tmp_path / "never-opened.db").exists(), "nothing touched Milvus"
    assert IndexStore(tmp_path).stats().chunks == 1


def test_a_docstore_whose_first_commit_has_not_happened_is_no_index_yet(tmp_path):
    import sqlite3

    root = tmp_path / "idx"
    root.mkdir()
    sqlite3.connect(root / "docstore.sqlite").close()  # the file a first ingest creates before its tables
    with pytest.raises(MissingIndexError):
        IndexStore(root).reader()
