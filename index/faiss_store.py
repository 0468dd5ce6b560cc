"""Exact inner-product FAISS index keyed by chunk id."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class FaissVectorStore:
    """Normalised vectors under int64 chunk ids; inner product = cosine similarity."""

    def __init__(self, dimension: int, index=None) -> None:
        import faiss

        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.dimension}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        if len(ids) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (n_queries, k'); k' ≤ k where the index holds fewer vectors.

        With `allowed_ids`, only those ids are searched (missing slots hold id -1).
        """
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self) if allowed_ids is None else len(allowed_ids))
        if k <= 0:
            empty = np.zeros((queries.shape[0], 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        params = None
        if allowed_ids is not None:
            # IndexIDMap translates the selector to its internal ids, so chunk ids work as they are.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64)))
        scores, ids = self._index.search(queries, k, params=params)
        return ids, scores

    def write(self, path: Path) -> None:
        """Write to `path` atomically (temp file, fsync, rename)."""
        import faiss

        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> FaissVectorStore:
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError:
            if not path.exists():  # removed by a writer's clean-up while we read
                raise FileNotFoundError(path) from None
            raise
        return cls(index.d, index)
