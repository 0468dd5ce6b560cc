"""Where an index keeps its vectors: FAISS files in the index directory, or a Milvus collection.

The docstore (SQLite) stays in the index directory either way and holds every
vector too, so a backend can always be rebuilt, or another one filled
(`IndexWriter.migrate`), without re-embedding anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from index.docstore import DocStore
from index.faiss_collection import CompactionPolicy, FaissCollection, base_path, delta_path
from index.faiss_store import FaissIndexConfig
from index.vectors import VectorStore


class VectorCollection(VectorStore, Protocol):
    """A `VectorStore` whose changes become durable with the index's commit."""

    kind: str

    def write(self, root: Path, generation: int, load_all) -> None: ...

    def files(self, generation: int, root: Path) -> set[str]: ...

    def meta(self) -> dict[str, str]:
        """What the docstore records about where these vectors live."""
        ...


class VectorBackend(Protocol):
    name: str

    def empty(self, root: Path, dimension: int) -> VectorCollection:
        """A collection with nothing in it (for Milvus: the collection emptied)."""
        ...

    def open(self, root: Path, store: DocStore, *, writable: bool) -> VectorCollection | None:
        """The committed vectors, or None when there are none to open (files missing)."""
        ...


@dataclass(frozen=True)
class FaissBackend:
    """FAISS files beside the docstore (the embedded default)."""

    config: FaissIndexConfig = FaissIndexConfig()
    policy: CompactionPolicy = CompactionPolicy()
    mmap: bool = True  # readers memory-map the base index where its type allows
    name: str = field(default="faiss", init=False)

    def empty(self, root: Path, dimension: int) -> FaissCollection:
        return FaissCollection(dimension, config=self.config, policy=self.policy)

    def open(self, root: Path, store: DocStore, *, writable: bool) -> FaissCollection | None:
        generation = store.generation
        if not (delta_path(root, generation).is_file() or base_path(root, generation).is_file()):
            return None
        return FaissCollection.read(root, generation, config=self.config, policy=self.policy, mmap=self.mmap)


@dataclass(frozen=True)
class MilvusBackend:
    """A Milvus collection: milvus-lite under the index directory by default, or a cluster by `uri`."""

    uri: str | None = None  # None: <index dir>/milvus.db (milvus-lite)
    token: str | None = None
    collection: str | None = None  # None: one name per index directory
    index_type: str = "AUTOINDEX"
    index_params: dict[str, Any] | None = None
    search_params: dict[str, Any] | None = None
    timeout: float | None = None
    name: str = field(default="milvus", init=False)

    def vector_store(self, root: Path, dimension: int, *, recorded: str | None = None):
        from index.milvus_store import MilvusVectorStore

        # Index directories sharing one cluster must not share a collection; the name an index was
        # first given is recorded in its docstore, so a moved index directory finds its collection again.
        collection = self.collection or recorded or "rag_" + hashlib.sha1(str(root).encode()).hexdigest()[:12]
        return MilvusVectorStore(
            self.uri or str(root / "milvus.db"), collection, dimension, token=self.token,
            index_type=self.index_type, index_params=self.index_params, search_params=self.search_params,
            timeout=self.timeout,
        )

    def empty(self, root: Path, dimension: int):
        from index.milvus_collection import MilvusCollection

        store = self.vector_store(root, dimension)
        store.drop()
        return MilvusCollection(store)

    def open(self, root: Path, store: DocStore, *, writable: bool):
        from index.milvus_collection import MilvusCollection

        dimension = store.get_meta("dimension")
        if dimension is None:
            return None
        vectors = self.vector_store(root, int(dimension), recorded=store.get_meta("milvus_collection"))
        if writable:
            MilvusCollection.recover(
                vectors, root, store.generation, lambda ids: store.chunk_vectors(ids, int(dimension))
            )
        return MilvusCollection(vectors)


def rebuild(backend: VectorBackend, root: Path, store: DocStore, dimension: int) -> VectorCollection:
    """A collection holding every vector the docstore has (its changes still to be written)."""
    ids, matrix = store.all_chunk_vectors(dimension)
    vectors = backend.empty(root, dimension)
    vectors.add(ids, matrix)
    return vectors
