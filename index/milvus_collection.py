"""The Milvus side of an index directory: the writer's changes staged, then applied at commit under a journal.

Milvus has no transaction spanning the docstore, so a commit (1) writes a
journal of the ids it will add and delete, (2) applies them to the collection,
(3) commits the docstore, and (4) drops the journal. A writer that finds a
journal whose generation never committed undoes it: the added ids are deleted
and the deleted ones restored from the docstore's vectors. Readers ignore ids
their docstore snapshot does not hold, so an in-flight commit never shows
half-done.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.milvus_store import MilvusVectorStore

log = logging.getLogger(__name__)

LoadAll = Callable[[], tuple[np.ndarray, np.ndarray]]
ChunkVectors = Callable[[list[int]], tuple[np.ndarray, np.ndarray]]


def journal_path(root: Path) -> Path:
    return root / "vectors.milvus-journal.json"


class MilvusCollection:
    """A `VectorStore` over a Milvus collection whose writes wait for `write()` (the commit)."""

    kind = "milvus"
    rescore_factor = 1  # Milvus returns float scores

    def __init__(self, store: MilvusVectorStore) -> None:
        self.store = store
        self.dimension = store.dimension
        self._committed = len(store)
        self._added: dict[int, np.ndarray] = {}
        self._removed: set[int] = set()

    def __len__(self) -> int:
        return self._committed - len(self._removed) + len(self._added)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) and (vectors.ndim != 2 or vectors.shape[1] != self.dimension):
            raise ValueError(f"vectors have dimension {vectors.shape[-1]}, the index {self.dimension}")
        for chunk_id, vector in zip(np.asarray(ids, dtype=np.int64).tolist(), vectors, strict=True):
            self._added[chunk_id] = vector

    def remove(self, ids: np.ndarray) -> int:
        """Stage deletes of ids the docstore says exist (staged additions are simply dropped)."""
        count = 0
        for chunk_id in np.asarray(ids, dtype=np.int64).tolist():
            if self._added.pop(chunk_id, None) is not None:
                count += 1
            elif chunk_id not in self._removed:
                self._removed.add(chunk_id)
                count += 1
        return count

    def search(self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None):
        return self.store.search(queries, k, allowed_ids=allowed_ids)

    def ids(self) -> np.ndarray:
        return self.store.ids()

    def write(self, root: Path, generation: int, load_all: LoadAll) -> None:
        """Apply the staged changes for `generation`, journalled so an uncommitted one can be undone."""
        if not self._added and not self._removed:
            return
        _write_json(journal_path(root), {
            "generation": generation, "added": sorted(self._added), "removed": sorted(self._removed),
        })
        if self._removed:
            self.store.remove(np.fromiter(self._removed, dtype=np.int64, count=len(self._removed)))
        if self._added:
            ids = np.fromiter(self._added, dtype=np.int64, count=len(self._added))
            self.store.add(ids, np.stack(list(self._added.values())))
        self._committed = len(self)
        self._added, self._removed = {}, set()

    def meta(self) -> dict[str, str]:
        return {"milvus_collection": self.store.collection}

    def files(self, generation: int, root: Path) -> set[str]:
        return set()  # nothing on disk outlives a commit: the journal is dropped once the docstore holds it

    @classmethod
    def recover(cls, store: MilvusVectorStore, root: Path, committed: int, chunk_vectors: ChunkVectors) -> None:
        """Undo what a commit that never reached the docstore applied to the collection."""
        path = journal_path(root)
        if not path.is_file():
            return
        try:
            journal = json.loads(path.read_text())
        except (OSError, ValueError):
            journal = None  # torn before any change was applied (it is written before them)
        if journal and int(journal["generation"]) > committed:
            log.warning("Undoing an unfinished commit in Milvus collection %s", store.collection)
            added = np.asarray(journal["added"], dtype=np.int64)
            if len(added):
                store.remove(added)
            ids, vectors = chunk_vectors(journal["removed"])
            if len(ids):
                store.add(ids, vectors)
        path.unlink(missing_ok=True)


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
