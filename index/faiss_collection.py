"""The FAISS side of an index directory: a base index plus the changes made since it was built.

Rewriting a million-vector index on every commit would make ingestion crawl, so,
as log-structured stores do, a commit writes only what changed since the base
was built: the vectors added (a small exact "delta" index) and the base ids
deleted (skipped at search time). The base is rewritten only when the delta has
grown large (merged into it), when deletes pile up (rebuilt from the docstore's
vectors, which also drops HNSW tombstones), or when the collection's size calls
for another index type (`FaissIndexConfig.kind_for`).

Files of generation g under the index dir:

    vectors.<b>.faiss          the base, built at generation b ≤ g (memory-mapped by readers)
    vectors.<g>.delta.npz      ids and vectors added since b, base ids deleted since b, and b itself
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.faiss_store import FaissIndexConfig, FaissVectorStore

log = logging.getLogger(__name__)

# Everything the docstore holds: (ids, vectors), used to rebuild the base.
LoadAll = Callable[[], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CompactionPolicy:
    """When a commit rewrites the base instead of only the delta."""

    merge_min: int = 10_000  # delta vectors always allowed before a merge...
    merge_fraction: float = 0.1  # ...or this fraction of the base,
    merge_max: int = 50_000  # but never more (the delta is rewritten on every commit)
    rebuild_fraction: float = 0.2  # deleted base vectors that trigger a rebuild

    def merge_at(self, base_size: int) -> int:
        return min(max(self.merge_min, int(self.merge_fraction * base_size)), self.merge_max)


def base_path(root: Path, generation: int) -> Path:
    return root / f"vectors.{generation}.faiss"


def delta_path(root: Path, generation: int) -> Path:
    return root / f"vectors.{generation}.delta.npz"


class FaissCollection:
    """A `VectorStore` made of a base FAISS index, a delta of recent additions and a set of deleted base ids."""

    def __init__(
        self, dimension: int, *, config: FaissIndexConfig | None = None, policy: CompactionPolicy | None = None,
        base: FaissVectorStore | None = None, base_generation: int | None = None,
        delta: FaissVectorStore | None = None, deleted: np.ndarray | None = None,
    ) -> None:
        self.dimension = dimension
        self.config = config or FaissIndexConfig()
        self.policy = policy or CompactionPolicy()
        self.base = base
        self.base_generation = base_generation
        self.delta = delta or FaissVectorStore(dimension, config=self.config)
        self.deleted = set(() if deleted is None else np.asarray(deleted, dtype=np.int64).tolist())
        self._base_id_set: set[int] | None = None  # built on the first add or remove (writers only)
        self._delta_ids: set[int] = set(self.delta.ids().tolist())
        if self.base is not None:
            self.base.exclude(np.fromiter(self.deleted, dtype=np.int64, count=len(self.deleted)))

    @property
    def kind(self) -> str:
        return self.base.kind if self.base is not None else "flat"

    @property
    def rescore_factor(self) -> int:
        """Candidates per wanted result to re-score exactly: `refine` when the base scores from codes."""
        return self.config.refine if self.base is not None and not self.base.exact_scores else 1

    def __len__(self) -> int:
        base = len(self.base) if self.base is not None else 0
        return base - len(self.deleted) + len(self.delta)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        # An id already stored is replaced: chunk ids are never reused, but the protocol promises upsert.
        base_ids = self._base_ids()
        if any(i in self._delta_ids or i in base_ids for i in ids.tolist()):
            self.remove(ids)
        self.delta.add(ids, vectors)
        self._delta_ids.update(ids.tolist())

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        in_delta = [i for i in ids.tolist() if i in self._delta_ids]
        removed = 0
        if in_delta:  # (a flat index removes by scanning all it holds: only when there is something to remove)
            removed = self.delta.remove(np.asarray(in_delta, dtype=np.int64))
            self._delta_ids.difference_update(in_delta)
        if self.base is not None:
            base_ids = self._base_ids()
            fresh = {i for i in ids.tolist() if i in base_ids and i not in self.deleted}
            self.deleted.update(fresh)
            removed += len(fresh)
        return removed

    def _base_ids(self) -> set[int]:
        if self._base_id_set is None:
            self._base_id_set = set(self.base.ids().tolist()) if self.base is not None else set()
        return self._base_id_set

    def ids(self) -> np.ndarray:
        """Every id a search can return."""
        base = self.base.ids() if self.base is not None else np.zeros(0, dtype=np.int64)
        if self.deleted:
            base = base[~np.isin(base, np.fromiter(self.deleted, dtype=np.int64, count=len(self.deleted)))]
        return np.concatenate([base, self.delta.ids()])

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        parts = [self.delta.search(queries, k, allowed_ids=allowed_ids)] if len(self.delta) else []
        if self.base is not None and len(self.base) > len(self.deleted):
            parts.append(self.base.search(queries, k, allowed_ids=allowed_ids))
        if not parts:
            empty = np.zeros((queries.shape[0], 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        if len(parts) == 1:
            return parts[0]
        ids = np.concatenate([p[0] for p in parts], axis=1)
        scores = np.concatenate([p[1] for p in parts], axis=1)
        scores = np.where(ids < 0, -np.inf, scores)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids, scores = np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)
        return ids, np.where(ids < 0, 0.0, scores).astype(np.float32)

    # -- persistence -------------------------------------------------------------------
    def write(self, root: Path, generation: int, load_all: LoadAll) -> None:
        """Persist as `generation`: the delta always; the base too when it is due (merge or rebuild)."""
        base_size = len(self.base) if self.base is not None else 0
        wanted = self.config.kind_for(len(self))
        if self.base is not None and (
            wanted != self.base.kind or len(self.deleted) > self.policy.rebuild_fraction * base_size
        ):
            self._rebuild(root, generation, load_all, wanted)
        elif len(self.delta) > self.policy.merge_at(base_size):
            self._merge(root, generation, load_all, wanted)
        ids, vectors = self.delta.contents()
        deleted = np.fromiter(sorted(self.deleted), dtype=np.int64, count=len(self.deleted))
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, vectors=vectors, deleted=deleted,
                 base=np.int64(-1 if self.base_generation is None else self.base_generation))
        _write_atomic(delta_path(root, generation), buffer.getvalue())

    def _rebuild(self, root: Path, generation: int, load_all: LoadAll, kind: str) -> None:
        ids, vectors = load_all()
        log.info("Rebuilding the vector index as %s over %d vectors", kind, len(ids))
        self._set_base(FaissVectorStore.build(ids, vectors, config=self.config, kind=kind, dimension=self.dimension),
                       root, generation)

    def _merge(self, root: Path, generation: int, load_all: LoadAll, kind: str) -> None:
        if self.base is None or self.base.kind == "hnsw" and self.deleted:
            # A first base, or an HNSW graph whose tombstones would otherwise be carried on: build afresh.
            self._rebuild(root, generation, load_all, kind)
            return
        base = FaissVectorStore.read(base_path(root, self.base_generation), config=self.config)
        if self.deleted:
            base.remove(np.fromiter(self.deleted, dtype=np.int64, count=len(self.deleted)))
        base.add(*self.delta.contents())
        self._set_base(base, root, generation)

    def _set_base(self, base: FaissVectorStore, root: Path, generation: int) -> None:
        base.write(base_path(root, generation))
        self.base, self.base_generation = base, generation
        self.delta = FaissVectorStore(self.dimension, config=self.config)
        self._delta_ids = set()
        self.deleted = set()
        base.exclude(np.zeros(0, dtype=np.int64))
        self._base_id_set = None

    @classmethod
    def read(
        cls, root: Path, generation: int, *, config: FaissIndexConfig | None = None,
        policy: CompactionPolicy | None = None, mmap: bool = True,
    ) -> FaissCollection:
        """The collection committed as `generation`; FileNotFoundError if its files are gone."""
        path = delta_path(root, generation)
        if not path.is_file():
            legacy = base_path(root, generation)  # an index from before deltas: the base alone
            base = FaissVectorStore.read(legacy, mmap=mmap, config=config)
            return cls(base.dimension, config=config, policy=policy, base=base, base_generation=generation)
        with np.load(path) as saved:
            ids, vectors, deleted, base_generation = saved["ids"], saved["vectors"], saved["deleted"], int(saved["base"])
        base = None
        if base_generation >= 0:
            base = FaissVectorStore.read(base_path(root, base_generation), mmap=mmap, config=config)
        dimension = base.dimension if base is not None else int(vectors.shape[1])
        delta = FaissVectorStore(dimension, config=config)
        delta.add(ids, vectors)
        return cls(dimension, config=config, policy=policy, base=base,
                   base_generation=None if base is None else base_generation, delta=delta, deleted=deleted)

    def meta(self) -> dict[str, str]:
        return {}

    def files(self, generation: int, root: Path) -> set[str]:
        """Names of the files generation `generation` of this collection needs."""
        names = {delta_path(root, generation).name}
        if self.base_generation is not None:
            names.add(base_path(root, self.base_generation).name)
        return names


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
