"""The index on Milvus (milvus-lite in a temp dir): same answers as FAISS, commits that undo, migration both ways."""

from __future__ import annotations

import numpy as np
import pytest

from index.backends import FaissBackend, MilvusBackend
from index.milvus_collection import journal_path
from index.store import IndexStore
from tests.index.test_store import document, vectors

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytestmark = pytest.mark.integration


def fill(store: IndexStore, docs: int = 6, per_doc: int = 5) -> np.ndarray:
    matrix = vectors(docs * per_doc, 11)
    with store.writer() as writer:
        for n in range(docs):
            texts = [f"doc {n} part {i}" for i in range(per_doc)]
            writer.replace_document(*document(f"d{n}", texts), matrix[n * per_doc:(n + 1) * per_doc])
        writer.commit()
    return matrix


def top_texts(store: IndexStore, queries: np.ndarray, k: int = 3) -> list[list[str]]:
    with store.reader() as reader:
        out = []
        for query in queries:
            hits = reader.search_dense(query, k)
            chunks = reader.chunks([i for i, _ in hits])
            out.append([chunks[i].text for i, _ in hits])
        return out


def test_milvus_answers_like_faiss_and_follows_deletes_and_updates(tmp_path):
    faiss_store = IndexStore(tmp_path / "f")
    milvus_store = IndexStore(tmp_path / "m", backend=MilvusBackend())
    matrix = fill(faiss_store)
    fill(milvus_store)
    assert top_texts(milvus_store, matrix[:8]) == top_texts(faiss_store, matrix[:8])
    assert milvus_store.stats().backend == "milvus"

    for store in (faiss_store, milvus_store):
        with store.writer() as writer:
            writer.delete_document("d0")
            writer.replace_document(*document("d1", ["doc 1 rewritten"]), vectors(1, 12))
            writer.commit()
    assert top_texts(milvus_store, matrix[:10]) == top_texts(faiss_store, matrix[:10])
    found = {text for row in top_texts(milvus_store, matrix[:10], k=5) for text in row}
    assert not any(t.startswith(("doc 0", "doc 1 part")) for t in found), "deleted and replaced chunks are gone"
    assert top_texts(milvus_store, vectors(1, 12), k=1) == [["doc 1 rewritten"]]
    with milvus_store.reader() as reader:
        assert len(reader.vectors) == reader.stats().chunks == 21


def test_a_commit_that_never_reached_the_docstore_is_undone(tmp_path, monkeypatch):
    store = IndexStore(tmp_path, backend=MilvusBackend())
    fill(store, docs=2)
    with store.writer() as writer:
        writer.delete_document("d0")
        writer.replace_document(*document("new", ["ghost chunk"]), vectors(1, 13))
        # The vectors reach Milvus, then the process dies before the docstore commits.
        writer.vectors.write(tmp_path, writer.store.generation + 1, lambda: None)
        assert journal_path(tmp_path).is_file()
        with store.reader() as reader:  # a reader of the old commit ignores the ghost it may find
            assert top_texts(store, vectors(1, 13), k=10)[0][0] != "ghost chunk"
    # (leaving the writer without commit rolls the docstore back; the journal stays)
    with store.writer():
        pass  # opening the writer undoes what the journal lists
    assert not journal_path(tmp_path).exists()
    with store.reader() as reader:
        assert len(reader.vectors) == reader.stats().chunks == 10
        hits = reader.search_dense(vectors(10, 11)[0], 1)
        assert reader.chunks([hits[0][0]])[hits[0][0]].text == "doc 0 part 0", "deleted vectors restored"


def test_migrate_to_milvus_and_back_without_re_embedding(tmp_path):
    store = IndexStore(tmp_path)
    matrix = fill(store)
    before = top_texts(store, matrix[:6])
    with IndexStore(tmp_path, backend=MilvusBackend()).writer() as writer:
        assert writer.migrate() == 30
    milvus = IndexStore(tmp_path, backend=MilvusBackend())
    assert top_texts(milvus, matrix[:6]) == before
    assert not list(tmp_path.glob("vectors.*.faiss")) and not list(tmp_path.glob("vectors.*.npz"))
    with IndexStore(tmp_path, backend=FaissBackend()).writer() as writer:
        assert writer.migrate() == 30
    assert top_texts(IndexStore(tmp_path), matrix[:6]) == before


def test_a_moved_index_finds_its_collection_and_a_lost_one_is_refilled(tmp_path):
    import shutil

    # One Milvus (here a lite file outside the index dirs, as a cluster would be) serving several indexes.
    backend = MilvusBackend(uri=str(tmp_path / "shared.db"))
    matrix = fill(IndexStore(tmp_path / "a", backend=backend), docs=2)
    shutil.move(tmp_path / "a", tmp_path / "b")  # the collection name was derived from the old path, and recorded
    moved = IndexStore(tmp_path / "b", backend=backend)
    assert top_texts(moved, matrix[:1], k=1) == [["doc 0 part 0"]]

    with moved.reader() as reader:
        reader.vectors.store.drop()  # the collection is lost (dropped by hand, a new cluster...)
    with moved.writer() as writer:
        writer.commit()  # nothing else to change: the refill from the docstore is still committed
    with moved.reader() as reader:
        assert len(reader.vectors) == reader.stats().chunks == 10
