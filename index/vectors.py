"""What every vector store behind the index provides (FAISS on disk, Milvus by URI).

Vectors are L2-normalised float32 rows keyed by int64 chunk ids (the docstore's);
a score is the inner product, i.e. cosine similarity.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorStore(Protocol):
    dimension: int

    def __len__(self) -> int:
        """Vectors that searches can return."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert (or, for an id already present, replace) one vector per id."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Forget these ids; returns how many were present."""
        ...

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (n_queries, k') with k' ≤ k, best first; -1 marks an empty slot.

        With `allowed_ids`, only those ids are candidates (a metadata filter).
        """
        ...
