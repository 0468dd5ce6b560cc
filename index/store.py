"""The index directory: one writer at a time, atomic generations, readers that never see half a commit.

Layout under the index dir:

    docstore.sqlite          documents, chunks, vectors, meta (the source of truth)
    vectors.<gen>.delta.npz  vectors added and deleted since the FAISS base (index.faiss_collection)
    vectors.<base>.faiss     the FAISS base index that generation builds on (flat, HNSW or IVF-PQ)
    bm25.<gen>/              BM25 index of generation <gen>
    write.lock               held by the one writer (flock: freed if the process dies)

A commit writes the derived files of generation g+1 first, then records g+1 in
SQLite in the same transaction as the document and chunk rows, then deletes the
files of g. A crash at any point leaves SQLite at g or g+1 with that
generation's files present (or rebuildable from the vectors stored in SQLite).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from collections.abc import Collection, Sequence
from types import TracebackType

import numpy as np
from filelock import FileLock, Timeout

from index.bm25 import BM25Index
from index.docstore import ChunkRecord, DocStore, DocumentRecord, DocumentSummary, StoredChunk, connect
from index.backends import FaissBackend, VectorBackend, VectorCollection, rebuild

log = logging.getLogger(__name__)

DOCSTORE = "docstore.sqlite"


class IndexLockedError(RuntimeError):
    """Another writer holds the index."""


class BackendMismatchError(RuntimeError):
    """The index keeps its vectors in another backend than the one asked for."""

    def __init__(self, root: Path, recorded: str, wanted: str) -> None:
        self.root, self.recorded, self.wanted = root, recorded, wanted
        super().__init__(
            f"The index at {root} keeps its vectors in {recorded}, but the backend asked for is {wanted}: open it "
            f"with the {recorded} backend, or copy the vectors over without re-embedding (IndexWriter.migrate)."
        )


class MissingIndexError(FileNotFoundError):
    """No index at the given directory."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"No index at {root}. Create one with: rag ingest PATH --index {root}")
        self.root = root


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    fingerprint: str | None
    backend: str
    generation: int
    dimension: int | None
    index_dir: str
    size_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def _bm25_path(root: Path, generation: int) -> Path:
    return root / f"bm25.{generation}"


def _dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


class IndexWriter:
    """The single writer of an index: stage changes, then `commit()` them atomically."""

    def __init__(self, root: Path, *, lock_timeout: float = 600.0, backend: VectorBackend | None = None) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self.backend = backend or FaissBackend()
        self._lock = FileLock(str(root / "write.lock"))
        self._conn: sqlite3.Connection | None = None
        self.store: DocStore
        self.vectors: VectorCollection | None = None
        self._foreign: str | None = None  # the backend the committed vectors are in, when not ours
        self._dirty = False

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> IndexWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=self.lock_timeout)
        except Timeout:
            raise IndexLockedError(
                f"Another ingest is writing to {self.root} (lock {self.root / 'write.lock'} held for "
                f"{self.lock_timeout:g} s). Wait for it to finish, or raise --lock-timeout."
            ) from None
        try:
            self._conn = connect(self.root / DOCSTORE)
            self.store = DocStore(self._conn)
            self.store.create_schema()
            self._conn.execute("BEGIN IMMEDIATE")
            recorded = _recorded_backend(self.store)
            if recorded != self.backend.name and self.store.count_chunks():
                self._foreign = recorded  # only `migrate` may write until the backends agree
            else:
                self.vectors, rebuilt = _load_vectors(self.root, self.store, self.backend, writable=True)
                self._dirty = rebuilt  # a rebuilt vector store is written by the next commit, even an empty one
                self._remove_stale_files()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None
        if self._lock.is_locked:
            self._lock.release()

    # -- state ----------------------------------------------------------------------
    @property
    def fingerprint(self) -> str | None:
        return self.store.get_meta("fingerprint")

    def set_fingerprint(self, value: str) -> None:
        if self.fingerprint != value:
            self.store.set_meta("fingerprint", value)
            self._dirty = True

    def set_groups(self, doc_id: str, groups: Collection[str]) -> None:
        """The groups that may read the document (none: public); committed with the next commit."""
        self.store.set_groups(doc_id, groups)
        self._dirty = True

    def set_meta(self, key: str, value: str) -> None:
        if self.store.get_meta(key) != value:
            self.store.set_meta(key, value)
            self._dirty = True

    def _vector_store(self, dimension: int) -> VectorCollection:
        self._check_backend()
        if self.vectors is None:
            self.vectors = self.backend.empty(self.root, dimension)
            self.store.set_meta("dimension", str(dimension))
        return self.vectors

    # -- changes --------------------------------------------------------------------
    def replace_document(self, doc: DocumentRecord, chunks: list[ChunkRecord], vectors: np.ndarray) -> tuple[int, int]:
        """Store `doc` with its chunks and their vectors, replacing any earlier version; (added, deleted)."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        deleted = self.delete_document(doc.doc_id)
        self.store.put_document(doc)
        ids = self.store.add_chunks(doc.doc_id, chunks)
        if chunks:
            self._vector_store(vectors.shape[1]).add(np.asarray(ids, dtype=np.int64), vectors)
            self.store.cache_vectors({c.text_hash: v for c, v in zip(chunks, vectors, strict=True)})
        self._dirty = True
        return len(ids), deleted

    def _check_backend(self) -> None:
        if self._foreign is not None:
            raise BackendMismatchError(self.root, self._foreign, self.backend.name)

    def migrate(self) -> int:
        """Copy every vector from the docstore into this writer's backend and switch the index to it.

        Nothing is re-embedded: the docstore keeps each chunk's vector. Returns the vectors copied.
        """
        dimension = self.store.get_meta("dimension")
        if dimension is None:
            raise RuntimeError(f"The index at {self.root} holds no vectors to migrate")
        self.vectors = rebuild(self.backend, self.root, self.store, int(dimension))
        self._foreign = None
        self._dirty = True
        self.commit()
        return len(self.vectors)

    def delete_document(self, doc_id: str) -> int:
        """Remove a document and its chunks; returns the number of chunks removed."""
        self._check_backend()
        ids = self.store.delete_chunks(doc_id)
        self.store.delete_document(doc_id)
        if ids and self.vectors is not None:
            self.vectors.remove(np.asarray(ids, dtype=np.int64))
        self._dirty = True
        return len(ids)

    def clear_chunks(self, *, drop_vectors: bool) -> int:
        """Forget every chunk (documents and their text stay), e.g. when the chunking changes."""
        self._check_backend()
        count = self.store.count_chunks()
        self._conn.execute("DELETE FROM chunks")
        if drop_vectors:
            self.store.drop_all_vectors()
        self.vectors = None
        self._dirty = True
        return count

    def commit(self) -> None:
        """Make every staged change visible at once, as a new generation."""
        if not self._dirty:
            return
        self._check_backend()
        assert self._conn is not None
        chunks = self.store.count_chunks()
        in_vectors = len(self.vectors) if self.vectors is not None else 0
        if chunks != in_vectors:
            raise RuntimeError(f"index out of step: {chunks} chunks but {in_vectors} vectors; nothing committed")
        self.store.drop_unused_vectors()
        generation = self.store.generation + 1

        chunk_terms = self.store.all_chunk_terms()
        bm25_dir = _bm25_path(self.root, generation)
        tmp_dir = bm25_dir.with_name(bm25_dir.name + ".tmp")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        BM25Index.build(chunk_terms.ids, chunk_terms.terms, chunk_terms.doc_ids).save(tmp_dir)
        _fsync_tree(tmp_dir)
        shutil.rmtree(bm25_dir, ignore_errors=True)
        os.replace(tmp_dir, bm25_dir)
        if self.vectors is not None:
            dimension = self.vectors.dimension
            self.vectors.write(self.root, generation, lambda: self.store.all_chunk_vectors(dimension))
            self.store.set_meta("dimension", str(dimension))
            for key, value in self.vectors.meta().items():
                self.store.set_meta(key, value)
        self.store.set_meta("backend", self.backend.name)
        self.store.set_meta("generation", str(generation))
        self.store.set_meta("committed_at", str(time.time()))
        self._conn.execute("COMMIT")
        self._dirty = False
        self._remove_stale_files()
        self._conn.execute("BEGIN IMMEDIATE")

    def _remove_stale_files(self) -> None:
        """Delete derived files of any generation but the committed one (left by old commits or crashes)."""
        keep = self.store.generation
        needed = self.vectors.files(keep, self.root) if self.vectors is not None else set()
        for path in self.root.glob("vectors.*"):
            if path.name not in needed:
                path.unlink(missing_ok=True)
        for path in self.root.glob("bm25.*"):
            if path.name != _bm25_path(self.root, keep).name:
                shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _recorded_backend(store: DocStore) -> str:
    return store.get_meta("backend") or "faiss"  # indexes from before backends were recorded are FAISS


def _load_vectors(
    root: Path, store: DocStore, backend: VectorBackend, *, writable: bool
) -> tuple[VectorCollection | None, bool]:
    """The committed generation's vectors, and whether they had to be rebuilt from the docstore's.

    Rebuilt when missing or out of step with the chunks; a reader never rewrites a shared store
    (Milvus): it ignores ids its snapshot lacks, and logs what is missing.
    """
    chunks = store.count_chunks()
    vectors = backend.open(root, store, writable=writable)
    if vectors is not None:
        if len(vectors) == chunks:
            return vectors, False
        log.warning("The %s vectors of %s hold %d vectors for %d chunks; %s", backend.name, root, len(vectors),
                    chunks, "rebuilding them" if writable or backend.name == "faiss" else "run rag ingest to repair")
        if not writable and backend.name != "faiss":
            return vectors, False
    dimension = store.get_meta("dimension")
    if dimension is None:
        return None, False
    vectors = rebuild(backend, root, store, int(dimension))  # FAISS: exact search until the next commit
    return vectors, True


class IndexReader:
    """A consistent, read-only view of one committed generation."""

    def __init__(self, root: Path, conn: sqlite3.Connection, generation: int,
                 vectors: VectorCollection | None, bm25: BM25Index, backend: str) -> None:
        self.root = root
        self.generation = generation
        self.store = DocStore(conn)
        self.vectors = vectors
        self.bm25 = bm25
        self.backend = backend
        self._page_spans: dict[str, list[tuple[int, int, int]]] = {}
        self._restricted_bm25: dict[frozenset[str], BM25Index] = {}  # per set of hidden documents
        self._restricted_lock = threading.Lock()

    @classmethod
    def open(cls, root: Path, *, backend: VectorBackend | None = None, attempts: int = 5) -> IndexReader:
        if not (root / DOCSTORE).is_file():
            raise MissingIndexError(root)
        backend = backend or FaissBackend()
        conn = connect(root / DOCSTORE, read_only=True)
        store = DocStore(conn)
        for _ in range(attempts):
            # One read transaction for the reader's whole life: every docstore query sees the same commit
            # as the vectors and BM25 files of its generation, however many commits come after.
            conn.execute("BEGIN")
            try:
                generation = store.generation
                recorded = _recorded_backend(store)
                if recorded != backend.name and store.count_chunks():
                    conn.close()
                    raise BackendMismatchError(root, recorded, backend.name)
                bm25_dir = _bm25_path(root, generation)
                bm25 = BM25Index.load(bm25_dir) if bm25_dir.is_dir() else _rebuild_bm25(store)
                vectors, _ = _load_vectors(root, store, backend, writable=False)
            except FileNotFoundError:
                # A writer committed and cleaned up between our reads: look again.
                conn.execute("ROLLBACK")
                time.sleep(0.05)
                continue
            except sqlite3.OperationalError as error:
                # The first ingest has created the file but not committed its tables yet: no index so far.
                conn.close()
                if "no such table" in str(error):
                    raise MissingIndexError(root) from None
                raise
            return cls(root, conn, generation, vectors, bm25, backend.name)
        conn.close()
        raise RuntimeError(f"The index at {root} kept changing while it was being opened; try again")

    def close(self) -> None:
        self.store.conn.close()

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def fingerprint(self) -> str | None:
        return self.store.get_meta("fingerprint")

    def search_dense(
        self, query_vector: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        if self.vectors is None or len(self.vectors) == 0:
            return []
        kind = self.vectors.kind
        refine = self.vectors.rescore_factor
        # A shared store (Milvus) may already hold a later commit's vectors: fetch a few more, keep ours.
        fetch = k * max(refine, 1) + (16 if kind == "milvus" else 0)
        ids, scores = self.vectors.search(query_vector, fetch, allowed_ids=allowed_ids)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        if kind == "milvus" and hits:
            present = self.store.present_chunk_ids([i for i, _ in hits])
            hits = [hit for hit in hits if hit[0] in present]
        if refine > 1 and hits:
            hits = self._rescored(np.asarray(query_vector, dtype=np.float32).ravel(), [i for i, _ in hits])
        return hits[:k]

    def _rescored(self, query: np.ndarray, candidates: list[int]) -> list[tuple[int, float]]:
        """Approximate candidates ranked by their exact cosine, from the vectors the docstore keeps."""
        ids, vectors = self.store.chunk_vectors(candidates, self.vectors.dimension)
        scores = vectors @ query
        order = np.argsort(-scores, kind="stable")
        return [(int(ids[i]), float(scores[i])) for i in order]

    def search_bm25(self, query: str, k: int, *, allowed_ids: np.ndarray | None = None,
                    hidden: frozenset[str] = frozenset()) -> list[tuple[int, float]]:
        """BM25 top-k; with `hidden` documents, scored with the statistics of the others alone (term frequencies
        and lengths of documents a caller may not read must not move its scores)."""
        index = self._bm25_without(hidden) if hidden else self.bm25
        ids, scores = index.search(query, k, allowed_ids=allowed_ids)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def _bm25_without(self, hidden: frozenset[str]) -> BM25Index:
        """A BM25 index of this generation without the `hidden` documents, built once per set of them."""
        with self._restricted_lock:
            index = self._restricted_bm25.get(hidden)
            if index is None:
                terms = self.store.all_chunk_terms()
                keep = [i for i, doc_id in enumerate(terms.doc_ids) if doc_id not in hidden]
                index = self._restricted_bm25[hidden] = BM25Index.build(
                    [terms.ids[i] for i in keep], [terms.terms[i] for i in keep], [terms.doc_ids[i] for i in keep])
            return index

    def hidden_documents(self, groups: frozenset[str]) -> frozenset[str]:
        """The documents a caller in `groups` may not read: those restricted to groups it is in none of."""
        return frozenset(doc_id for doc_id, readers in self._document_groups.items() if not readers & groups)

    @cached_property
    def _document_groups(self) -> dict[str, frozenset[str]]:
        return self.store.document_groups()  # a generation never changes

    def chunks(self, chunk_ids: list[int]) -> dict[int, StoredChunk]:
        return self.store.chunks(chunk_ids)

    def pages(self, doc_id: str, start: int, end: int) -> list[int]:
        """The pages (or slides) of a document that the span [start, end) touches; [] when it has none."""
        spans = self._page_spans.get(doc_id)
        if spans is None:
            spans = self._page_spans[doc_id] = self.store.page_spans(doc_id)  # a generation never changes
        end = max(end, start + 1)
        return [page for page, page_start, page_end in spans if page_start < end and page_end > start]

    def sentence_vectors(self, chunk_ids: Sequence[int], split_version: str) -> dict[int, np.ndarray]:
        """Chunk id → the vectors of its text's sentences as stored at ingest, when they were split the way
        `split_version` names (the ingest records its version); chunks without them are left out."""
        dimension, stored_split = self._sentence_layout
        if not dimension or stored_split != split_version:
            return {}  # none stored, or stored for another sentence split
        return self.store.sentence_vectors(chunk_ids, int(dimension))

    @cached_property
    def _sentence_layout(self) -> tuple[str | None, str | None]:
        """(vector dimension, sentence split) of this generation: read once, not on every question."""
        return self.store.get_meta("dimension"), self.store.get_meta("sentence_split")

    def chunk_ids_where(
        self, *, doc_ids: Sequence[str] | None = None, source_globs: Sequence[str] | None = None,
        exclude_doc_ids: Collection[str] = (),
    ) -> np.ndarray:
        """Chunk ids of the documents a metadata filter keeps (ids and source globs, both must match)."""
        return self.store.chunk_ids_where(doc_ids=doc_ids, source_globs=source_globs, exclude_doc_ids=exclude_doc_ids)

    def documents(self, *, offset: int = 0, limit: int = 50,
                  hidden: Collection[str] = ()) -> tuple[int, list[DocumentSummary]]:
        """The number of documents and one page of them (by source path), leaving out the `hidden` ones."""
        if not hidden:
            return self.store.count_documents(), self.store.list_documents(offset=offset, limit=limit)
        shown = [d for d in self.store.list_documents(offset=0, limit=-1) if d.doc_id not in hidden]
        return len(shown), shown[offset:offset + limit]

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self.store.document(doc_id)

    def stats(self) -> IndexStats:
        dimension = self.store.get_meta("dimension")
        return IndexStats(
            documents=self.store.count_documents(),
            chunks=self.store.count_chunks(),
            fingerprint=self.fingerprint,
            backend=self.backend,
            generation=self.generation,
            dimension=int(dimension) if dimension else None,
            index_dir=str(self.root),
            size_bytes=_dir_size(self.root),
        )


def _rebuild_bm25(store: DocStore) -> BM25Index:
    chunk_terms = store.all_chunk_terms()
    return BM25Index.build(chunk_terms.ids, chunk_terms.terms, chunk_terms.doc_ids)


class IndexStore:
    """An index directory: hands out the one writer and any number of readers."""

    def __init__(self, root: Path | str, *, backend: VectorBackend | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.backend = backend or FaissBackend()

    def exists(self) -> bool:
        return (self.root / DOCSTORE).is_file()

    def writer(self, *, lock_timeout: float = 600.0) -> IndexWriter:
        return IndexWriter(self.root, lock_timeout=lock_timeout, backend=self.backend)

    def reader(self) -> IndexReader:
        return IndexReader.open(self.root, backend=self.backend)

    def stats(self) -> IndexStats:
        with self.reader() as reader:
            return reader.stats()
