"""SQLite docstore: documents (content hash, extracted text), chunks (offsets), vectors.

Vectors are kept here too, keyed by the hash of the chunk text: the vector
index can always be rebuilt from this file, identical chunk texts are embedded
once, and a changed document re-embeds only the chunks whose text changed.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT,
    text TEXT NOT NULL,
    structure TEXT NOT NULL,
    size INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    heading TEXT,
    page INTEGER,
    text_hash TEXT NOT NULL,
    terms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, seq);
CREATE INDEX IF NOT EXISTS chunks_by_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS embeddings (text_hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
-- The groups that may read a document (a JSON list); a document without a row is public. Kept by document id (its
-- path), not deleted with the document: a file put back at the same path stays as restricted as it was.
CREATE TABLE IF NOT EXISTS document_groups (doc_id TEXT PRIMARY KEY, groups TEXT NOT NULL);
-- The vectors of a chunk's sentences (float16, one row per sentence of its text in order), keyed like `embeddings`.
CREATE TABLE IF NOT EXISTS sentence_vectors (text_hash TEXT PRIMARY KEY, vectors BLOB NOT NULL);
"""


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    source: str
    content_hash: str
    kind: str
    title: str | None
    text: str
    size: int
    structure: dict = field(default_factory=dict)  # loader output: headings, pages


@dataclass(frozen=True)
class DocumentSummary:
    doc_id: str
    source: str
    kind: str
    title: str | None
    size: int
    chunks: int


@dataclass(frozen=True)
class ChunkRecord:
    seq: int
    start: int
    end: int
    text: str
    heading: str | None
    page: int | None
    text_hash: str
    terms: Sequence[str]


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: int
    doc_id: str
    source: str
    title: str | None
    seq: int
    start: int
    end: int
    text: str
    heading: str | None
    page: int | None


@dataclass(frozen=True)
class ChunkTerms:
    ids: list[int]
    terms: list[list[str]]
    doc_ids: list[str]  # each chunk's document


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class DocStore:
    """Typed access to the docstore tables over one connection; transactions are the caller's."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def create_schema(self) -> None:
        self.conn.executescript(_SCHEMA)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    # -- meta ---------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    # -- documents ------------------------------------------------------------------
    def content_hash(self, doc_id: str) -> str | None:
        row = self.conn.execute("SELECT content_hash FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else row[0]

    def document(self, doc_id: str) -> DocumentRecord | None:
        row = self.conn.execute(
            "SELECT doc_id, source, content_hash, kind, title, text, size, structure FROM documents WHERE doc_id = ?",
            (doc_id,),
        ).fetchone()
        return None if row is None else _document(row)

    def page_spans(self, doc_id: str) -> list[tuple[int, int, int]]:
        """(page, start, end) of each page (or slide) of a paginated document; [] for other documents."""
        row = self.conn.execute("SELECT structure FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None or not row[0]:
            return []
        return [(p["page"], p["start"], p["end"]) for p in json.loads(row[0]).get("pages", [])]

    def iter_documents(self) -> Iterator[DocumentRecord]:
        cursor = self.conn.execute(
            "SELECT doc_id, source, content_hash, kind, title, text, size, structure FROM documents ORDER BY source"
        )
        for row in cursor:
            yield _document(row)

    def list_documents(self, *, offset: int = 0, limit: int = 50) -> list[DocumentSummary]:
        """One page of documents (ordered by source), without their text."""
        rows = self.conn.execute(
            "SELECT d.doc_id, d.source, d.kind, d.title, d.size, "
            "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id) "
            "FROM documents d ORDER BY d.source LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [DocumentSummary(*row) for row in rows]

    def sources(self) -> dict[str, str]:
        """source path → doc_id, for every stored document."""
        return dict(self.conn.execute("SELECT source, doc_id FROM documents"))

    def chunk_ids_where(self, *, doc_ids: Iterable[str] | None = None, source_globs: Sequence[str] | None = None,
                        exclude_doc_ids: Collection[str] = ()) -> np.ndarray:
        """Chunk ids of documents whose id is in `doc_ids`, whose source matches any of `source_globs`, and whose
        id is not in `exclude_doc_ids`."""
        wanted_ids = None if doc_ids is None else set(doc_ids)
        documents = [
            doc_id
            for source, doc_id in self.sources().items()
            if (wanted_ids is None or doc_id in wanted_ids) and doc_id not in exclude_doc_ids
            and (not source_globs or any(source_matches(source, glob) for glob in source_globs))
        ]
        ids: list[int] = []
        for part in _batches(documents):  # one query per batch of documents, not one per document
            marks = ",".join("?" * len(part))
            ids.extend(r[0] for r in self.conn.execute(f"SELECT chunk_id FROM chunks WHERE doc_id IN ({marks})", part))
        return np.asarray(sorted(ids), dtype=np.int64)

    def count_documents(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def put_document(self, doc: DocumentRecord) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO documents(doc_id, source, content_hash, kind, title, text, structure, size, ingested_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.doc_id, doc.source, doc.content_hash, doc.kind, doc.title, doc.text,
             json.dumps(doc.structure), doc.size, time.time()),
        )

    def set_groups(self, doc_id: str, groups: Collection[str]) -> None:
        """Who may read the document: these groups (and admins); no groups makes it public."""
        if groups:
            self.conn.execute("INSERT INTO document_groups(doc_id, groups) VALUES (?, ?) "
                              "ON CONFLICT(doc_id) DO UPDATE SET groups = excluded.groups",
                              (doc_id, json.dumps(sorted(set(groups)))))
        else:
            self.conn.execute("DELETE FROM document_groups WHERE doc_id = ?", (doc_id,))

    def document_groups(self) -> dict[str, frozenset[str]]:
        """doc_id → the groups that may read it, for every restricted document."""
        try:
            rows = self.conn.execute("SELECT doc_id, groups FROM document_groups").fetchall()
        except sqlite3.OperationalError:  # an index written before documents had groups: all public
            return {}
        return {doc_id: frozenset(json.loads(groups)) for doc_id, groups in rows}

    def delete_document(self, doc_id: str) -> None:
        """Delete the document row; any chunks left go with it (ON DELETE CASCADE)."""
        self.conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    # -- chunks ---------------------------------------------------------------------
    def chunk_ids(self, doc_id: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT chunk_id FROM chunks WHERE doc_id = ?", (doc_id,))]

    def delete_chunks(self, doc_id: str) -> list[int]:
        ids = self.chunk_ids(doc_id)
        self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        return ids

    def add_chunks(self, doc_id: str, chunks: Sequence[ChunkRecord]) -> list[int]:
        ids = []
        for chunk in chunks:
            cursor = self.conn.execute(
                'INSERT INTO chunks(doc_id, seq, start, "end", text, heading, page, text_hash, terms)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, chunk.seq, chunk.start, chunk.end, chunk.text, chunk.heading, chunk.page,
                 chunk.text_hash, " ".join(chunk.terms)),
            )
            ids.append(int(cursor.lastrowid))
        return ids

    def count_chunks(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunks(self, chunk_ids: Iterable[int]) -> dict[int, StoredChunk]:
        found: dict[int, StoredChunk] = {}
        for part in _batches([int(i) for i in chunk_ids]):
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f'SELECT c.chunk_id, c.doc_id, d.source, d.title, c.seq, c.start, c."end", c.text, c.heading, c.page'
                f" FROM chunks c JOIN documents d USING (doc_id) WHERE c.chunk_id IN ({marks})",
                part,
            )
            for row in rows:
                found[row[0]] = StoredChunk(*row)
        return found

    def all_chunk_terms(self) -> ChunkTerms:
        """Every chunk's BM25 terms, a document's chunks together and in order."""
        ids, terms, doc_ids = [], [], []
        for chunk_id, doc_id, joined in self.conn.execute("SELECT chunk_id, doc_id, terms FROM chunks ORDER BY doc_id, seq"):
            ids.append(chunk_id)
            terms.append(joined.split(" ") if joined else [])
            doc_ids.append(doc_id)
        return ChunkTerms(ids, terms, doc_ids)

    def all_chunk_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.conn.execute(
            "SELECT c.chunk_id, e.vector FROM chunks c JOIN embeddings e USING (text_hash) ORDER BY c.chunk_id"
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
        return ids, vectors

    def present_chunk_ids(self, chunk_ids: Sequence[int]) -> set[int]:
        """Those of `chunk_ids` that exist in this snapshot."""
        present: set[int] = set()
        for part in _batches(list(chunk_ids)):
            marks = ",".join("?" * len(part))
            present.update(r[0] for r in self.conn.execute(f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})", part))
        return present

    def chunk_vectors(self, chunk_ids: Sequence[int], dimension: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those chunks that exist, in no particular order."""
        ids: list[int] = []
        blobs: list[bytes] = []
        for part in _batches(list(chunk_ids)):
            marks = ",".join("?" * len(part))
            for chunk_id, blob in self.conn.execute(
                f"SELECT c.chunk_id, e.vector FROM chunks c JOIN embeddings e USING (text_hash) "
                f"WHERE c.chunk_id IN ({marks})", part
            ):
                ids.append(chunk_id)
                blobs.append(blob)
        vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), dimension)
        return np.array(ids, dtype=np.int64), vectors

    # -- embeddings cache -------------------------------------------------------------
    def cached_vectors(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        hashes = list(dict.fromkeys(text_hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            marks = ",".join("?" * len(part))
            for key, blob in self.conn.execute(
                f"SELECT text_hash, vector FROM embeddings WHERE text_hash IN ({marks})", part
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def cache_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO embeddings(text_hash, vector) VALUES (?, ?)",
            ((key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in vectors.items()),
        )

    def drop_unused_vectors(self) -> None:
        self.conn.execute("DELETE FROM embeddings WHERE text_hash NOT IN (SELECT text_hash FROM chunks)")
        self.conn.execute("DELETE FROM sentence_vectors WHERE text_hash NOT IN (SELECT text_hash FROM chunks)")

    def drop_all_vectors(self) -> None:
        self.conn.execute("DELETE FROM embeddings")
        self.drop_sentence_vectors()

    def drop_sentence_vectors(self) -> None:
        self.conn.execute("DELETE FROM sentence_vectors")

    # -- sentence vectors -------------------------------------------------------------
    def sentence_vector_keys(self, text_hashes: Iterable[str]) -> set[str]:
        """Those of `text_hashes` whose sentence vectors are stored."""
        hashes = list(dict.fromkeys(text_hashes))
        found: set[str] = set()
        for part in _batches(hashes):
            marks = ",".join("?" * len(part))
            found.update(r[0] for r in self.conn.execute(
                f"SELECT text_hash FROM sentence_vectors WHERE text_hash IN ({marks})", part))
        return found

    def store_sentence_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Keep each chunk's sentence vectors (rows in sentence order) as float16: half the bytes, and the
        cosines they give differ from float32 ones by less than 1e-3."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO sentence_vectors(text_hash, vectors) VALUES (?, ?)",
            ((key, np.asarray(v, dtype=np.float16).tobytes()) for key, v in vectors.items()),
        )

    def sentence_vectors(self, chunk_ids: Sequence[int], dimension: int) -> dict[int, np.ndarray]:
        """Chunk id → its sentence vectors (float32, one row per sentence), for the chunks that have them (the
        caller checks `meta.sentence_split` first: an index that never stored any may lack the table)."""
        found: dict[int, np.ndarray] = {}
        for part in _batches([int(i) for i in chunk_ids]):
            marks = ",".join("?" * len(part))
            for chunk_id, blob in self.conn.execute(
                f"SELECT c.chunk_id, s.vectors FROM chunks c JOIN sentence_vectors s USING (text_hash) "
                f"WHERE c.chunk_id IN ({marks})", part
            ):
                found[chunk_id] = np.frombuffer(blob, dtype=np.float16).reshape(-1, dimension).astype(np.float32)
        return found


def _batches(values: list, size: int = 500) -> Iterator[list]:
    """Slices of `values` small enough for one `IN (?, ...)` (SQLite caps the number of parameters)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def source_matches(source: str, glob: str) -> bool:
    """An absolute glob matches the whole path; a relative one matches any trailing part ("docs/*.md", "*.pdf")."""
    if glob.startswith("/"):
        return fnmatch.fnmatchcase(source, glob)
    parts = source.strip("/").split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[i:]), glob) for i in range(len(parts)))


def _document(row: tuple) -> DocumentRecord:
    doc_id, source, content_hash, kind, title, text, size, structure = row
    return DocumentRecord(doc_id, source, content_hash, kind, title, text, size, json.loads(structure))
