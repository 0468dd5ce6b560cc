"""`rag ingest --engine ray`: the ingestion ledger of `IngestPipeline`, with the heavy work on a Ray cluster.

One Ray Data stream per run: the driver discovers files and reads the ledger
(each document's content hash, and which chunk texts already have vectors);
a pool of actors (`map_batches` with a callable class) reads, hashes, loads
and chunks batches of files and embeds the chunk texts that have no vector
yet; the driver receives the documents back in file order and stages them
with the local engine's own code, committing every `commit_every_chunks`.

So the ledger semantics are the local engine's: an unchanged file is skipped
after hashing (on a worker), a changed one has its chunks replaced, a file
that fails to load is reported and keeps its last version, and a run that
dies leaves the last commit whole for a rerun to finish without duplicates.
Index writes stay on the driver, the one writer. One difference in the
counts: a text new in this run that turns up in two batches (on two actors) is
embedded twice, where the local engine embeds it once. A fingerprint change
re-chunks the stored texts on the workers too, a window of documents per stream.

Reading and embedding share one actor stage on purpose: separate task and
actor stages can deadlock on a small cluster (the actors hold every CPU the
reading tasks wait for), and each actor loads the model once per run, not
once per batch. Workers must see the files at the paths the driver found
(one machine, or a shared filesystem) and have this project installed.
Ray is imported only when a run starts: it is an optional extra.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from generators.text.embedder import SentenceEmbedder
from index.store import IndexStore, IndexWriter
from ingest.chunking import Chunker
from ingest.loaders import LoadedDocument
from ingest.pipeline import (
    FailedFile,
    IngestPipeline,
    IngestReport,
    _Group,
    _Pending,
    document_id,
    text_hash,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rag-service[ray]'"
EmbedderFactory = Callable[[], SentenceEmbedder]


class RayUnavailableError(ImportError):
    """Ray Data is not installed in this environment."""


def ray_installed() -> bool:
    """Whether Ray Data can be imported, without importing it (cheap)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("ray", "pyarrow", "pandas"))


def import_ray() -> ModuleType:
    """The `ray` module with Ray Data loaded, or a clear error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - plain `ray` lacks what Ray Data needs (pandas, pyarrow)
    except ImportError as exc:
        raise RayUnavailableError(
            f"The ray ingestion engine needs Ray Data, which is not installed ({exc}). Install it with: {INSTALL_HINT}"
        ) from exc
    return ray


@contextmanager
def ray_session(address: str | None) -> Iterator[ModuleType]:
    """Ray, connected: the process's existing connection if there is one, else one made here and closed after.

    `address` None starts a local Ray instance; "auto" or "ray://host:10001" joins a cluster.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"address": address}
    if address is None:
        options["include_dashboard"] = False  # only allowed when starting a new instance
    ray.init(**options)
    try:
        yield ray
    finally:
        ray.shutdown()


def embedder_factory(embedder: SentenceEmbedder, *, threads: int = 1) -> EmbedderFactory:
    """How a worker builds its own copy of `embedder`: plain arguments, the model loaded on the worker."""
    return functools.partial(
        SentenceEmbedder,
        embedder.model_name,
        backend=embedder.backend,
        device=embedder.device,
        batch_tokens=embedder.batch_tokens,
        max_batch=embedder.max_batch,
        threads=threads,
        cache_dir=embedder.cache_dir,
        setting=embedder.setting,
    )


def _key_prefix(key: str) -> int:
    """The first 64 bits of a text hash: enough to tell cached texts apart (a rare collision only costs an
    embedding on the driver, see `RayIngestPipeline._stage`)."""
    return int(key[:16], 16)


def _contains(sorted_keys: np.ndarray, keys: list[int]) -> np.ndarray:
    """Which of `keys` are in `sorted_keys` (a boolean per key)."""
    wanted = np.array(keys, dtype=np.uint64)
    if not len(sorted_keys):
        return np.zeros(len(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
    return sorted_keys[at] == wanted


# -- what runs on the workers ------------------------------------------------------------
@dataclass
class _Prepared:
    """One file (or stored document) after a worker handled it; pickled back to the driver."""

    pending: _Pending | None = None
    hashes: list[str] = field(default_factory=list)  # text hash of each chunk
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # embedded here: texts with no cached vector
    embedded: int = 0  # texts this item ran through the model (a text shared within a batch counts once)
    skipped: bool = False
    failure: FailedFile | None = None
    partial: list[FailedFile] = field(default_factory=list)  # pages or parts that could not be read


class _LedgerView:
    """What `IngestPipeline._prepare` reads of the writer: the stored content hashes, as the driver sent them."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.store = self
        self._hashes = hashes

    def content_hash(self, doc_id: str) -> str | None:
        return self._hashes.get(doc_id)


class _IngestWorker:
    """Ray Data callable class: reads, chunks and embeds a batch of files (or re-chunks stored documents).

    Files go through the local engine's own `_prepare`, so a file is read, hashed, judged unchanged, loaded,
    chunked or reported failed exactly as locally. The model loads on the first batch that needs it, so a
    rerun over unchanged files never loads it.
    """

    def __init__(
        self,
        chunker: Chunker,
        max_file_bytes: int,
        make_embedder: EmbedderFactory,
        fingerprint: str,
        cached: list,  # [ObjectRef of the sorted 64-bit prefixes of cached text hashes], unresolved by Ray
        threads: int = 1,
    ) -> None:
        import ray

        self.engine = IngestPipeline(None, None, chunker, max_file_bytes=max_file_bytes)  # type: ignore[arg-type]
        self.make_embedder = make_embedder
        self.fingerprint = fingerprint
        self.cached: np.ndarray = ray.get(cached[0])  # zero-copy from the object store
        self.threads = threads
        self._embedder: SentenceEmbedder | None = None

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            embedder = self.make_embedder()
            if embedder.backend != "onnx-int8":
                import torch

                torch.set_num_threads(self.threads)  # the CPUs Ray gave this actor, not the whole node
            if embedder.fingerprint != self.fingerprint:
                raise RuntimeError(
                    f"This Ray worker resolved the embedder to {embedder.fingerprint}, the driver to "
                    f"{self.fingerprint}: install the same model on every node."
                )
            embedder.warm_up()
            self._embedder = embedder
        return self._embedder

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [
            self._prepare_stored(pickle.loads(stored)) if stored else self._prepare_file(path, known)
            for path, known, stored in zip(batch["path"], batch["known"], batch["stored"], strict=True)
        ]
        self._embed(items)
        return {"prepared": np.array([pickle.dumps(item, protocol=5) for item in items], dtype=object)}

    def _prepare_file(self, path: str, known: str) -> _Prepared:
        report = IngestReport()
        path = Path(str(path))
        ledger = _LedgerView({document_id(path): str(known)} if known else {})
        pending = self.engine._prepare(ledger, path, report)  # type: ignore[arg-type]
        return _Prepared(pending, skipped=bool(report.skipped_unchanged), failure=next(iter(report.failed), None),
                         partial=report.partial)

    def _prepare_stored(self, record) -> _Prepared:
        loaded = LoadedDocument.from_stored(record.text, record.kind, record.title, record.structure)
        return _Prepared(_Pending(record, self.engine.chunker.split(loaded)))

    def _embed(self, items: list[_Prepared]) -> None:
        """Embed, in one call, the batch's chunk texts that have no cached vector (each distinct text once)."""
        todo: dict[str, str] = {}
        owners: list[tuple[_Prepared, list[str]]] = []
        for item in items:
            if item.pending is None:
                continue
            item.hashes = [text_hash(c.indexed_text) for c in item.pending.chunks]
            hit = _contains(self.cached, [_key_prefix(h) for h in item.hashes])
            needed = list(dict.fromkeys(h for h, cached in zip(item.hashes, hit, strict=True) if not cached))
            texts = {h: c.indexed_text for h, c in zip(item.hashes, item.pending.chunks, strict=True)}
            for key in needed:
                if key not in todo:
                    todo[key] = texts[key]
                    item.embedded += 1
            owners.append((item, needed))
        if not todo:
            return
        vectors = dict(zip(todo, self.embedder.embed(list(todo.values())).vectors, strict=True))
        for item, needed in owners:
            item.vectors = {key: vectors[key] for key in needed}


# -- the driver ------------------------------------------------------------------------------
class RayIngestPipeline(IngestPipeline):
    """`IngestPipeline` whose reading, chunking and embedding run on a Ray cluster (or a local Ray instance).

    `address`: None starts a local Ray instance for the run (and stops it after); "auto" or
    "ray://host:10001" joins a cluster. A process that already called `ray.init` keeps its connection.
    `embed_actors` actors (each `actor_cpus` CPUs, or one GPU when the embedder's device is CUDA) each read
    `batch_files` files per call and embed what those files need in one `embed()` call (which batches by
    tokens itself, so `embed_batch_chunks` plays no part here). `embedder_factory` builds each actor's
    model (default: the given embedder's model and settings, rebuilt on the worker); the driver's own
    `embedder` names the model and embeds only the odd text whose cached vector went away mid-run.
    """

    def __init__(
        self,
        store: IndexStore,
        embedder: SentenceEmbedder,
        chunker: Chunker,
        *,
        address: str | None = None,
        embed_actors: int = 2,
        actor_cpus: float = 1.0,
        batch_files: int = 16,
        rechunk_window_chars: int = 32_000_000,
        embedder_factory: EmbedderFactory | None = None,
        **options: Any,  # the local engine's: include, exclude, max_file_bytes, commit_every_chunks...
    ) -> None:
        super().__init__(store, embedder, chunker, **options)
        if embed_actors < 1 or batch_files < 1:
            raise ValueError("embed_actors and batch_files must be at least 1")
        self.address = address
        self.embed_actors = embed_actors
        self.actor_cpus = actor_cpus
        self.batch_files = batch_files
        self.rechunk_window_chars = rechunk_window_chars  # stored text sent per stream when re-chunking
        self.embedder_factory = embedder_factory
        self._ray: ModuleType | None = None  # the connected `ray` module, from the start of a run

    def run(self, paths: Sequence[Path | str], *, prune: bool = False,
            groups_for: Callable[[Path], Collection[str] | None] | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        roots = [Path(os.path.abspath(p)) for p in paths]
        with ray_session(self.address) as ray, self.store.writer(lock_timeout=self.lock_timeout) as writer:
            self._ray = ray
            found = self._begin(writer, roots, report)  # (re-chunking, if due, runs on the cluster)
            rows = []
            for path in found.files:
                known = writer.store.content_hash(document_id(path))
                rows.append({"path": str(path), "known": known or "", "stored": b""})
            self._stream(writer, rows, report, commit=True)
            self._end(writer, roots, found, report, prune, groups_for)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    # -- steps ----------------------------------------------------------------------
    def _rechunk_stored(self, writer: IndexWriter, report: IngestReport) -> None:
        """The pipeline changed: as the local engine, every chunk is rebuilt from the stored text, here on the
        cluster, a window of documents per stream. Nothing is committed until the whole index is rebuilt."""
        embedder_changed = writer.store.get_meta("embedder_fingerprint") != self.embedder.fingerprint
        log.info("Pipeline fingerprint changed; re-chunking %s stored documents", writer.store.count_documents())
        report.chunks_deleted += writer.clear_chunks(drop_vectors=embedder_changed)
        doc_ids = [doc_id for _, doc_id in sorted(writer.store.sources().items())]
        rows: list[dict] = []
        size = 0
        for done, doc_id in enumerate(doc_ids, start=1):
            record = writer.store.document(doc_id)
            assert record is not None
            rows.append({"path": "", "known": "", "stored": pickle.dumps(record, protocol=5)})
            size += len(record.text)
            if size >= self.rechunk_window_chars or done == len(doc_ids):
                self._stream(writer, rows, report, commit=False, from_files=False, done_before=done - len(rows),
                             total=len(doc_ids))
                rows, size = [], 0
        report.documents_rechunked = len(doc_ids)

    def _stream(
        self,
        writer: IndexWriter,
        rows: list[dict],
        report: IngestReport,
        *,
        commit: bool,
        from_files: bool = True,
        done_before: int = 0,
        total: int | None = None,
    ) -> None:
        """Send `rows` through the worker pool and stage what comes back, in order."""
        if not rows:
            return
        ray = self._ray
        assert ray is not None, "streams run inside run()"
        cached = ray.put(_cached_prefixes(writer))
        dataset = ray.data.from_items(rows)
        context = dataset.context  # this dataset's own copy: the process's defaults stay as they were
        context.execution_options.preserve_order = True  # file order: the local engine's chunk ids and reports
        context.enable_progress_bars = False
        gpu = self.embedder.device.startswith("cuda")
        dataset = dataset.map_batches(
            _IngestWorker,
            fn_constructor_kwargs={
                "chunker": self.chunker,
                "max_file_bytes": self.max_file_bytes,
                "make_embedder": self.embedder_factory or embedder_factory(self.embedder, threads=self._threads()),
                "fingerprint": self.embedder.fingerprint,
                "cached": [cached],
                "threads": self._threads(),
            },
            compute=ray.data.ActorPoolStrategy(size=self.embed_actors),
            batch_size=self.batch_files,
            batch_format="numpy",
            num_cpus=self.actor_cpus,
            num_gpus=1 if gpu else 0,
        )
        total = len(rows) if total is None else total
        uncommitted = 0
        results = iter(dataset.iter_rows())
        try:
            for done, row in enumerate(results, start=done_before + 1):
                uncommitted += self._stage(writer, pickle.loads(row["prepared"]), report, from_files=from_files)
                if commit and uncommitted >= self.commit_every_chunks:
                    writer.commit()
                    uncommitted = 0
                self._progress(done, total, report.chunks_added)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # stop the stream now if staging failed, not when the iterator is collected

    def _stage(self, writer: IndexWriter, item: _Prepared, report: IngestReport, *, from_files: bool) -> int:
        """Stage one document as the local engine does; returns chunks staged."""
        if item.failure is not None:
            report.failed.append(item.failure)
        report.partial.extend(item.partial)
        report.skipped_unchanged += int(item.skipped)
        if item.pending is None:
            return 0
        vectors = dict(item.vectors)
        vectors.update(writer.store.cached_vectors({h for h in item.hashes if h not in vectors}))
        report.chunks_embedded += item.embedded
        missing = {h: c.indexed_text for h, c in zip(item.hashes, item.pending.chunks, strict=True) if h not in vectors}
        if missing:
            # Counted as cached when the stream started, gone since (a commit dropped it with the last chunk
            # that used it), or a 64-bit prefix collision: rare enough to embed here.
            log.info("Embedding %d chunk texts on the driver whose cached vectors went away", len(missing))
            vectors.update(zip(missing, self.embedder.embed(list(missing.values())).vectors, strict=True))
            report.chunks_embedded += len(missing)
        group = _Group([item.pending], [item.hashes], vectors, [], None, None, from_files)
        return self._write(writer, group, report)

    def _threads(self) -> int:
        return max(1, int(self.actor_cpus))


def _cached_prefixes(writer: IndexWriter) -> np.ndarray:
    """Sorted 64-bit prefixes of every text hash with a stored vector (8 bytes a text, shared by all actors)."""
    # The docstore has no call listing the cache; its table is read directly, in the writer's transaction.
    rows = writer.store.conn.execute("SELECT text_hash FROM embeddings")
    prefixes = np.fromiter((_key_prefix(key) for (key,) in rows), dtype=np.uint64)
    prefixes.sort()
    return prefixes


__all__ = ["INSTALL_HINT", "RayIngestPipeline", "RayUnavailableError", "embedder_factory", "import_ray",
           "ray_installed", "ray_session"]
