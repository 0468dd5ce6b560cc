"""Named collections served by one process, each an index that is read while it is written.

Readers answer from a committed snapshot. Ingestion (one writer per
collection) commits a new generation; only then does the collection open it
and swap its chain, so no request ever sees half an ingest. A request keeps
the chain it started with; the old snapshot is closed once no request holds it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from index.backends import VectorBackend
from index.docstore import DocumentRecord, DocumentSummary
from index.store import IndexReader, IndexStore, MissingIndexError
from ingest.pipeline import IngestPipeline, IngestReport
from rag.chain import AskChain

if TYPE_CHECKING:
    from rag.api.actions import Caller

log = logging.getLogger(__name__)

COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_COLLECTION = "default"


class UnknownCollectionError(LookupError):
    pass


@dataclass
class _Snapshot:
    reader: IndexReader
    chain: AskChain
    users: int = 0
    retired: bool = False


def safe_file_name(name: str, content: bytes) -> str:
    """A file name derived from an upload: content hash folder + a cleaned base name (never the client's path)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).name).lstrip("._")[:100] or "upload"
    return f"{hashlib.sha256(content).hexdigest()[:16]}/{base}"


class Collection:
    """One index: its current snapshot (chain) for readers, one writer lock for ingestion and deletes."""

    def __init__(self, name: str, index_dir: Path, uploads_dir: Path, store: IndexStore,
                 make_pipeline, make_chain) -> None:
        self.name = name
        self.index_dir = index_dir
        self.uploads_dir = uploads_dir
        self.store = store
        self._make_pipeline = make_pipeline  # (store) -> IngestPipeline
        self._make_chain = make_chain  # (IndexReader) -> AskChain
        self._snapshot: _Snapshot | None = None
        self._swap = threading.Lock()
        self._writer = threading.Lock()

    @property
    def exists(self) -> bool:
        return self.store.exists()

    def refresh(self) -> None:
        """Open the newest committed snapshot and serve it from now on."""
        reader = self.store.reader()
        fresh = _Snapshot(reader, self._make_chain(reader))
        with self._swap:
            old, self._snapshot = self._snapshot, fresh
            if old is not None:
                old.retired = True
                close_now = old.users == 0
            else:
                close_now = False
        if old is not None and close_now:
            old.reader.close()

    @contextmanager
    def chain(self) -> Iterator[AskChain]:
        """The chain of the current snapshot, held for the duration of one request."""
        snapshot = self._acquire()
        try:
            yield snapshot.chain
        finally:
            with self._swap:
                snapshot.users -= 1
                close_now = snapshot.retired and snapshot.users == 0
            if close_now:
                snapshot.reader.close()

    def _acquire(self) -> _Snapshot:
        while True:
            with self._swap:
                snapshot = self._snapshot
                if snapshot is not None:
                    snapshot.users += 1
                    return snapshot
            if not self.exists:
                raise MissingIndexError(self.index_dir)
            self.refresh()

    # An index whose first ingest has not committed yet (its file exists, its tables do not) reads as empty,
    # like one that does not exist at all.
    def stats(self) -> dict:
        try:
            with self.store.reader() as reader:
                return reader.stats().to_dict()
        except MissingIndexError:
            return {"documents": 0, "chunks": 0, "fingerprint": None}

    def documents(self, offset: int, limit: int, caller: Caller) -> tuple[int, list[DocumentSummary]]:
        """How many documents `caller` may read, and one page of them."""
        try:
            with self.chain() as chain:
                reader = chain.retriever.reader
                return reader.documents(offset=offset, limit=limit, hidden=caller.hidden(reader))
        except MissingIndexError:
            return 0, []

    def document(self, doc_id: str, caller: Caller) -> DocumentRecord | None:
        """The document, if it exists and `caller` may read it (else None: the same as no such document)."""
        try:
            with self.chain() as chain:
                reader = chain.retriever.reader
                return None if doc_id in caller.hidden(reader) else reader.document(doc_id)
        except MissingIndexError:
            return None

    def add(self, name: str, content: bytes, groups: list[str] | None = None) -> tuple[Path, IngestReport]:
        """Save an upload under a derived name and ingest it for `groups` (none: public); readers switch when the
        commit is done."""
        path = self.uploads_dir / safe_file_name(name, content)
        with self._writer:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            report = self._make_pipeline(self.store).run([path], groups_for=lambda _: groups or ())
            if report.failed and not report.ingested:
                path.unlink(missing_ok=True)  # unreadable: nothing of it is kept
            if self.exists:
                self.refresh()
        return path, report

    def sync(self, folders: list[Path]) -> IngestReport:
        """Ingest `folders` incrementally, dropping documents whose files are gone; readers switch at the commit."""
        with self._writer:
            report = self._make_pipeline(self.store).run(folders, prune=True)
            if self.exists:
                self.refresh()
        return report

    def doc_ids_for(self, path: Path) -> list[str]:
        """The ids of the documents ingested from `path` (one file, one document)."""
        with self.chain() as chain:
            sources = chain.retriever.reader.store.sources()
        wanted = path.resolve()
        return [doc_id for source, doc_id in sources.items() if Path(source).resolve() == wanted]

    def delete(self, doc_id: str, caller: Caller) -> bool:
        """Remove the document if `caller` may read it; False when there is none it may read."""
        with self._writer:
            if not self.exists:
                return False
            with self.store.reader() as reader:
                record = None if doc_id in caller.hidden(reader) else reader.document(doc_id)
            if record is None:
                return False
            with self.store.writer() as writer:
                writer.delete_document(doc_id)
                writer.commit()
            upload = Path(record.source)
            if upload.is_relative_to(self.uploads_dir.resolve()) and upload.is_file():
                upload.unlink()
            self.refresh()
        return True

    def close(self) -> None:
        with self._swap:
            snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            snapshot.reader.close()


class Collections:
    """The collections of one process: `default` is RAG_INDEX__DIR, others live under RAG_INDEX__COLLECTIONS_DIR."""

    def __init__(self, default_index: Path, collections_dir: Path, *, backend: VectorBackend, make_pipeline, make_chain) -> None:
        self.default_index = default_index
        self.collections_dir = collections_dir
        self.backend = backend
        self._make_pipeline = make_pipeline
        self._make_chain = make_chain
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()

    def _paths(self, name: str) -> tuple[Path, Path]:
        if name == DEFAULT_COLLECTION:
            return self.default_index, self.default_index.parent / f"{self.default_index.name}-uploads"
        return self.collections_dir / name / "index", self.collections_dir / name / "uploads"

    def names(self) -> list[str]:
        found = {DEFAULT_COLLECTION}
        if self.collections_dir.is_dir():
            found |= {p.name for p in self.collections_dir.iterdir() if COLLECTION_NAME.match(p.name)}
        return sorted(found | set(self._open))

    def get(self, name: str, *, create: bool = False) -> Collection:
        if not COLLECTION_NAME.match(name):
            raise UnknownCollectionError(f"invalid collection name {name!r}: use a-z, 0-9, '-' and '_' (at most 64)")
        with self._lock:
            collection = self._open.get(name)
            if collection is None:
                index_dir, uploads = self._paths(name)
                store = IndexStore(index_dir, backend=self.backend)
                if not create and name != DEFAULT_COLLECTION and not store.exists():
                    raise UnknownCollectionError(f"no collection named {name!r}")
                collection = Collection(name, index_dir, uploads, store, self._make_pipeline, self._make_chain)
                self._open[name] = collection
        return collection

    def close(self) -> None:
        with self._lock:
            for collection in self._open.values():
                collection.close()
            self._open.clear()
