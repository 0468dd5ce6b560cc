"""`rag ingest`: files → text → chunks → vectors → index, incrementally and crash-safely.

The ledger is the docstore: each document's content hash and the pipeline
fingerprint (chunking + embedder). An unchanged file is skipped after hashing;
a changed one has its chunks replaced (re-embedding only chunk texts not seen
before); a fingerprint change re-chunks and re-embeds from the stored text.
Work is committed in generations, so a killed run leaves the last commit whole
and a rerun picks up where it stopped.

The model runs on a background thread: while one group of chunks is embedded,
the next files are read and chunked and the previous group is written, so the
cores do not idle during the Python-only steps. All index writes stay on the
calling thread, in file order.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from generators.text.embedder import SentenceEmbedder
from generators.text.sentence_reader import SENTENCE_SPLIT_VERSION, split_sentences
from index.bm25 import ANALYZER_VERSION, analyze
from index.docstore import ChunkRecord, DocumentRecord, source_matches
from index.store import IndexStore, IndexWriter
from ingest.chunking import Chunk, Chunker
from ingest.discovery import DEFAULT_EXCLUDE, Discovery, discover
from ingest.loaders import LoadedDocument, LoadError, load_bytes, reporting_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedFile:
    path: str
    error: str


@dataclass
class IngestReport:
    files_seen: int = 0
    ingested: int = 0
    skipped_unchanged: int = 0
    failed: list[FailedFile] = field(default_factory=list)
    # Parts of ingested files that could not be read (a page whose OCR failed), the rest of each file went in
    partial: list[FailedFile] = field(default_factory=list)
    chunks_added: int = 0
    chunks_deleted: int = 0
    documents_deleted: int = 0
    documents_rechunked: int = 0
    chunks_embedded: int = 0  # chunk texts run through the model (the rest came from the vector cache)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IngestProgress:
    files_done: int
    files_total: int
    chunks_done: int
    # While a paged document (PDF, TIFF) is being read: its path and how far the reading is.
    reading: str | None = None
    pages_done: int = 0
    pages_total: int = 0


ProgressCallback = Callable[[IngestProgress], None]


@dataclass
class _Pending:
    record: DocumentRecord
    chunks: list[Chunk]


@dataclass
class _Group:
    """Documents whose new chunk texts are being embedded (possibly on the background thread)."""

    pending: list[_Pending]
    hashes: list[list[str]]
    vectors: dict[str, np.ndarray]  # known before embedding: the vector cache
    todo: list[str]  # text hashes this group embeds
    embedding: Future | None
    after: _Group | None  # an earlier group, still in flight when this one was planned, that embeds shared texts
    from_files: bool
    # Text hash of each chunk whose sentences this group embeds → the rows of its sentences in the embedded texts
    sentence_rows: dict[str, list[int]] = field(default_factory=dict)

    def embedded(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """What this group embedded: chunk vectors and sentence vectors, each by chunk text hash."""
        if self.embedding is None:
            return {}, {}
        vectors = self.embedding.result().vectors
        chunks = dict(zip(self.todo, vectors[: len(self.todo)], strict=True))
        sentences = {key: vectors[rows] for key, rows in self.sentence_rows.items()}
        return chunks, sentences


@dataclass(frozen=True)
class GroupRules:
    """Who may read what an ingest adds: the groups of the first rule whose glob matches a file's path (globs as
    in `source_matches`: "hr/*.pdf" matches any trailing part), else `default` (None: as the document already is)."""

    rules: tuple[tuple[str, tuple[str, ...]], ...] = ()
    default: tuple[str, ...] | None = None

    def __call__(self, path: Path) -> tuple[str, ...] | None:
        source = path.as_posix()
        return next((groups for glob, groups in self.rules if source_matches(source, glob)), self.default)


def document_id(path: Path) -> str:
    """Stable id of a file: a hash of its absolute path."""
    return hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, or `LoadError` saying why not."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise LoadError("not a regular file")
        if info.st_size > max_bytes:
            raise LoadError(
                f"file too large: {info.st_size:,} bytes, the limit is {max_bytes:,}"
            )
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except PermissionError:
        raise LoadError("permission denied: the file is not readable") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LoadError("symlink loop") from None
        if exc.errno == errno.ENOENT:
            raise LoadError("file vanished or is a broken symlink") from None
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None


class IngestPipeline:
    """One ingestion run over files or folders into an `IndexStore`."""

    def __init__(
        self,
        store: IndexStore,
        embedder: SentenceEmbedder,
        chunker: Chunker,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = DEFAULT_EXCLUDE,
        max_file_bytes: int = 50 * 1024 * 1024,
        embed_batch_chunks: int = 256,
        commit_every_chunks: int = 2000,
        lock_timeout: float = 600.0,
        on_progress: ProgressCallback | None = None,
        sentence_vectors: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.include = list(include)
        self.exclude = list(exclude)
        self.max_file_bytes = max_file_bytes
        self.embed_batch_chunks = embed_batch_chunks
        self.commit_every_chunks = commit_every_chunks
        self.lock_timeout = lock_timeout
        self.on_progress = on_progress
        # Also embed each new chunk's sentences and store them, so that answering does not embed them per question.
        self.sentence_vectors = sentence_vectors

    @property
    def fingerprint(self) -> str:
        return f"{self.chunker.fingerprint}|{self.embedder.fingerprint}|bm25:{ANALYZER_VERSION}"

    def run(self, paths: Sequence[Path | str], *, prune: bool = False,
            groups_for: Callable[[Path], Collection[str] | None] | None = None) -> IngestReport:
        """Ingest the files under `paths` (`prune`: and forget documents whose files are gone from them).
        `groups_for(path)`: the groups that may read each file's document (empty: public; None, or no
        `groups_for`: the groups it already has)."""
        started = time.perf_counter()
        report = IngestReport()
        roots = [Path(os.path.abspath(p)) for p in paths]
        with self.store.writer(lock_timeout=self.lock_timeout) as writer:
            found = self._begin(writer, roots, report)
            pending: list[_Pending] = []
            uncommitted = 0
            with ThreadPoolExecutor(1, thread_name_prefix="ingest-embed") as background:
                in_flight: _Group | None = None
                for done, path in enumerate(found.files, start=1):
                    item = self._prepare(writer, path, report, on_page=lambda pages_done, pages_total, d=done, p=path:
                                         self._progress(d - 1, len(found.files), report.chunks_added, str(p),
                                                        pages_done, pages_total))
                    if item is not None:
                        pending.append(item)
                    if sum(len(p.chunks) for p in pending) >= self.embed_batch_chunks:
                        # Start this group's embedding, then write the previous group while it runs.
                        group = self._plan(writer, pending, background, after=in_flight)
                        if in_flight is not None:
                            uncommitted += self._write(writer, in_flight, report)
                        in_flight, pending = group, []
                    if uncommitted >= self.commit_every_chunks:
                        writer.commit()
                        uncommitted = 0
                    self._progress(done, len(found.files), report.chunks_added)
                if in_flight is not None:
                    self._write(writer, in_flight, report)
            self._store(writer, pending, report)
            self._end(writer, roots, found, report, prune, groups_for)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    # -- steps ----------------------------------------------------------------------

    def _begin(self, writer: IndexWriter, roots: list[Path], report: IngestReport) -> Discovery:
        """What every engine does first: re-chunk if the pipeline changed, record it, find the files."""
        if writer.store.get_meta("sentence_split") not in (None, SENTENCE_SPLIT_VERSION):
            writer.store.drop_sentence_vectors()  # their rows follow an older sentence split
            writer.set_meta("sentence_split", SENTENCE_SPLIT_VERSION)
        if writer.fingerprint not in (None, self.fingerprint):
            self._rechunk_stored(writer, report)
        writer.set_fingerprint(self.fingerprint)
        writer.set_meta("embedder", self.embedder.model_name)
        writer.set_meta("embedder_fingerprint", self.embedder.fingerprint)
        writer.set_meta("chunker_fingerprint", self.chunker.fingerprint)
        found = discover(roots, include=self.include, exclude=self.exclude, skip=[self.store.root])
        report.failed.extend(FailedFile(str(p), reason) for p, reason in found.problems)
        report.files_seen = len(found.files)
        return found

    def _progress(self, files_done: int, files_total: int, chunks_done: int, reading: str | None = None,
                  pages_done: int = 0, pages_total: int = 0) -> None:
        if self.on_progress is not None:
            self.on_progress(IngestProgress(files_done, files_total, chunks_done, reading, pages_done, pages_total))

    def _end(self, writer: IndexWriter, roots: list[Path], found: Discovery, report: IngestReport, prune: bool,
             groups_for: Callable[[Path], Collection[str] | None] | None) -> None:
        """Every run's last steps, whichever engine read the files: groups, progress, pruning, the last commit."""
        if groups_for is not None:
            for path in found.files:
                groups = groups_for(path)
                if groups is not None:
                    writer.set_groups(document_id(path), groups)
        self._progress(len(found.files), len(found.files), report.chunks_added)
        if prune:
            self._prune(writer, roots, set(found.files), report)
        writer.commit()

    def _prepare(self, writer: IndexWriter, path: Path, report: IngestReport, *,
                 on_page: Callable[[int, int], None] | None = None) -> _Pending | None:
        """Read, hash, load and chunk one file; None when it is unchanged or failed.

        `on_page(done, total)` follows the reading of a paged document, page by page."""
        try:
            data = read_file(path, self.max_file_bytes)
            content_hash = hashlib.sha256(data).hexdigest()
            doc_id = document_id(path)
            if writer.store.content_hash(doc_id) == content_hash:
                report.skipped_unchanged += 1
                return None
            with reporting_pages(on_page):
                loaded = load_bytes(path, data)
            chunks = self.chunker.split(loaded)
            report.partial.extend(FailedFile(str(path), problem) for problem in loaded.problems)
        except LoadError as exc:
            report.failed.append(FailedFile(str(path), str(exc)))
            return None
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            log.exception("Unexpected failure loading %s", path)
            report.failed.append(FailedFile(str(path), f"unexpected {type(exc).__name__}: {exc}"))
            return None
        record = DocumentRecord(
            doc_id=doc_id, source=str(path), content_hash=content_hash, kind=loaded.kind,
            title=loaded.title, text=loaded.text, size=len(data), structure=loaded.structure(),
        )
        return _Pending(record, chunks)

    def _store(
        self, writer: IndexWriter, pending: list[_Pending], report: IngestReport, *, from_files: bool = True
    ) -> int:
        """Embed the chunks of `pending` (cached vectors reused) and stage the documents; returns chunks staged."""
        if not pending:
            return 0
        return self._write(writer, self._plan(writer, pending, None, from_files=from_files), report)

    def _plan(
        self,
        writer: IndexWriter,
        pending: list[_Pending],
        background: ThreadPoolExecutor | None,
        *,
        after: _Group | None = None,
        from_files: bool = True,
    ) -> _Group:
        """Look up cached vectors and start embedding the rest (on `background` when given).

        Texts that `after` (an earlier group not written yet) is embedding are not embedded
        again: they are taken from its result, exactly as the cache would give them.
        """
        hashes = [[text_hash(c.indexed_text) for c in item.chunks] for item in pending]
        vectors = writer.store.cached_vectors(h for doc in hashes for h in doc)
        earlier = set(after.todo) if after is not None else set()
        todo: dict[str, str] = {}
        for item, doc_hashes in zip(pending, hashes, strict=True):
            for chunk, key in zip(item.chunks, doc_hashes, strict=True):
                if key not in vectors and key not in earlier:
                    todo.setdefault(key, chunk.indexed_text)
        texts = list(todo.values())
        sentence_rows: dict[str, list[int]] = {}
        if self.sentence_vectors:
            # Chunks whose sentences neither the store nor the group in flight (written before this one) holds;
            # a sentence that overlapping chunks share is embedded once.
            planned = set(after.sentence_rows) if after is not None else set()
            stored = writer.store.sentence_vector_keys(h for doc in hashes for h in doc)
            rows = {text: row for row, text in enumerate(texts)}
            for item, doc_hashes in zip(pending, hashes, strict=True):
                for chunk, key in zip(item.chunks, doc_hashes, strict=True):
                    if key in stored or key in planned or key in sentence_rows:
                        continue
                    pieces = [chunk.text[start:end] for start, end in split_sentences(chunk.text)]
                    sentence_rows[key] = [rows.setdefault(piece, len(rows)) for piece in pieces]
            texts = list(rows)
        embedding: Future | None = None
        if texts:
            if background is not None:
                embedding = background.submit(self.embedder.embed, texts)
            else:
                embedding = Future()
                embedding.set_result(self.embedder.embed(texts))
        return _Group(pending, hashes, vectors, list(todo), embedding, after if earlier else None, from_files,
                      sentence_rows)

    def _write(self, writer: IndexWriter, group: _Group, report: IngestReport) -> int:
        """Wait for `group`'s vectors and stage its documents; returns chunks staged."""
        vectors = group.vectors
        embedded, sentences = group.embedded()
        vectors.update(embedded)
        report.chunks_embedded += len(embedded)
        if sentences:
            writer.store.store_sentence_vectors(sentences)
            writer.set_meta("sentence_split", SENTENCE_SPLIT_VERSION)
        if group.after is not None:
            assert group.after.embedding is not None and group.after.embedding.done()
            shared, _ = group.after.embedded()
            vectors.update((key, shared[key]) for doc in group.hashes for key in doc if key not in vectors)
        group.after = None  # let the earlier group's vectors go
        pending, hashes, from_files = group.pending, group.hashes, group.from_files
        staged = 0
        for item, doc_hashes in zip(pending, hashes, strict=True):
            records = [
                ChunkRecord(c.seq, c.start, c.end, c.text, c.heading, c.page, key, analyze(c.indexed_text))
                for c, key in zip(item.chunks, doc_hashes, strict=True)
            ]
            matrix = (
                np.stack([vectors[key] for key in doc_hashes])
                if doc_hashes
                else np.zeros((0, 0), dtype=np.float32)
            )
            added, deleted = writer.replace_document(item.record, records, matrix)
            report.chunks_added += added
            report.chunks_deleted += deleted
            report.ingested += int(from_files)
            staged += added
        return staged

    def _rechunk_stored(self, writer: IndexWriter, report: IngestReport) -> None:
        """The pipeline changed: rebuild every chunk from the stored text (files are not re-read)."""
        embedder_changed = writer.store.get_meta("embedder_fingerprint") != self.embedder.fingerprint
        log.info("Pipeline fingerprint changed; re-chunking %s stored documents", writer.store.count_documents())
        report.chunks_deleted += writer.clear_chunks(drop_vectors=embedder_changed)
        doc_ids = [doc_id for _, doc_id in sorted(writer.store.sources().items())]
        pending: list[_Pending] = []
        for done, doc_id in enumerate(doc_ids, start=1):
            record = writer.store.document(doc_id)
            assert record is not None
            loaded = LoadedDocument.from_stored(record.text, record.kind, record.title, record.structure)
            pending.append(_Pending(record, self.chunker.split(loaded)))
            if sum(len(p.chunks) for p in pending) >= self.embed_batch_chunks or done == len(doc_ids):
                self._store(writer, pending, report, from_files=False)
                pending = []
            self._progress(done, len(doc_ids), report.chunks_added)
        report.documents_rechunked = len(doc_ids)

    def _prune(self, writer: IndexWriter, roots: list[Path], seen: set[Path], report: IngestReport) -> None:
        """Delete documents under `roots` whose files no longer exist."""
        for source, doc_id in writer.store.sources().items():
            path = Path(source)
            under_root = any(path == root or root in path.parents for root in roots)
            if under_root and path not in seen and not path.exists():
                report.chunks_deleted += writer.delete_document(doc_id)
                report.documents_deleted += 1
