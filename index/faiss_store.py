"""FAISS vector stores keyed by chunk id: exact (flat), HNSW or IVF-PQ, chosen by collection size.

`FaissVectorStore` wraps one FAISS index. `FaissIndexConfig` says which type a
collection of n vectors gets and with which build and search parameters: flat
(exact) for small collections, HNSW past `hnsw_from`, IVF-PQ (trained on a
sample; `pq_bytes` per vector) past `ivfpq_from`. Searches can skip ids
(`exclude`), which is how `index.faiss_collection` deletes from an index it
does not rewrite on every commit (and from HNSW, whose graph cannot drop a node).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

FaissKind = Literal["flat", "hnsw", "ivfpq"]
FaissChoice = Literal["auto", "flat", "hnsw", "ivfpq"]
HnswStorage = Literal["flat", "sq8", "fp16"]


@dataclass(frozen=True)
class FaissIndexConfig:
    """Which FAISS index a collection gets, and its build and search parameters."""

    kind: FaissChoice = "auto"
    hnsw_from: int = 200_000  # auto: HNSW from this many vectors...
    ivfpq_from: int = 5_000_000  # ...and IVF-PQ from this many (memory, not speed, is then the limit)
    hnsw_m: int = 32  # graph neighbours per node
    hnsw_ef_construction: int = 200  # measured with bench/ann.py at 1M vectors (bench/RESULTS.md)
    hnsw_ef_search: int = 128  # candidates visited per query; raised to k where k is larger
    # How the graph stores its vectors: float32 ("flat"), or scalar-quantised to 1 ("sq8") or 2 ("fp16")
    # bytes per dimension, which makes each visit cheaper; candidates are then re-scored (`refine`).
    hnsw_storage: HnswStorage = "flat"
    # Principal components the graph works in (0: all). Fewer dimensions make each visit cheaper still;
    # the distances are then approximate and candidates are re-scored (`refine`, which wants ~10 here).
    hnsw_pca_dim: int = 0
    # Store the graph's nodes cluster by cluster, so that a search's neighbouring nodes mostly share memory
    # pages: the same results, fewer cache and TLB misses (graph reordering; bench/RESULTS.md).
    hnsw_reorder: bool = True
    ivf_lists: int = 0  # IVF cells; 0: about 4·√n
    ivf_nprobe: int = 48  # cells searched per query
    pq_bytes: int = 64  # bytes per PQ code; must divide the dimension
    train_size: int = 100_000  # vectors the quantisers are trained on (a uniform sample)
    # IVF-PQ and quantised HNSW: candidates per wanted result re-scored with the exact vectors the
    # docstore keeps on disk (compressed distances blur close neighbours); 1 = compressed scores only.
    refine: int = 4

    def kind_for(self, count: int) -> FaissKind:
        if self.kind != "auto":
            return self.kind
        if count >= self.ivfpq_from:
            return "ivfpq"
        return "hnsw" if count >= self.hnsw_from else "flat"


class FaissVectorStore:
    """Normalised vectors under int64 chunk ids in one FAISS index; inner product = cosine similarity."""

    def __init__(self, dimension: int, index=None, *, config: FaissIndexConfig | None = None) -> None:
        import faiss

        self.dimension = dimension
        self.config = config or FaissIndexConfig()
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.excluded = np.zeros(0, dtype=np.int64)  # ids searches skip (deleted from an HNSW graph)
        self._excluded_selector = None

    def exclude(self, ids: np.ndarray) -> None:
        """Skip these ids in every search from now on (built once: a selector over many ids is not free)."""
        import faiss

        self.excluded = np.unique(np.asarray(ids, dtype=np.int64))
        self._excluded_selector = (
            faiss.IDSelectorNot(faiss.IDSelectorBatch(self.excluded)) if len(self.excluded) else None
        )

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, *, config: FaissIndexConfig | None = None,
        kind: FaissKind | None = None, dimension: int | None = None,
    ) -> FaissVectorStore:
        """A new index of `kind` (default: the config's choice for this many vectors) holding `vectors`."""
        import faiss

        config = config or FaissIndexConfig()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = dimension or vectors.shape[1]
        kind = kind or config.kind_for(len(ids))
        if kind == "ivfpq" and len(ids) < 256:
            kind = "flat"  # PQ needs a few hundred vectors to train its codebooks at all
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        elif kind == "hnsw":
            index = faiss.IndexIDMap2(_hnsw_graph(dimension, config, vectors))
        else:
            if dimension % config.pq_bytes:
                raise ValueError(f"pq_bytes ({config.pq_bytes}) must divide the dimension ({dimension})")
            lists = config.ivf_lists or _cluster_count(len(ids))
            quantizer = faiss.IndexFlatIP(dimension)
            index = faiss.IndexIVFPQ(quantizer, dimension, lists, config.pq_bytes, 8, faiss.METRIC_INNER_PRODUCT)
            index.train(_kmeans_sample(vectors, lists, config.train_size))
        store = cls(dimension, index, config=config)
        store.add(ids, vectors)
        if kind == "hnsw" and config.hnsw_reorder:
            store._store_in_cluster_order(vectors)
        return store

    def _store_in_cluster_order(self, vectors: np.ndarray) -> None:
        """Renumber the graph's nodes cluster by cluster (k-means, 4·√n clusters); chunk ids are kept."""
        import faiss

        clusters = _cluster_count(len(vectors))
        if clusters < 2:
            return
        kmeans = faiss.Kmeans(vectors.shape[1], clusters, niter=10, seed=0)
        kmeans.train(_kmeans_sample(vectors, clusters, self.config.train_size))
        _, assigned = kmeans.index.search(vectors, 1)
        order = np.argsort(assigned.ravel(), kind="stable").astype(np.int64)  # new position → old position
        self._searcher.permute_entries(order)
        id_map = faiss.vector_to_array(self._index.id_map)[order]
        faiss.copy_array_to_vector(id_map, self._index.id_map)
        self._index.construct_rev_map()

    @property
    def _inner(self):
        """The FAISS index under the id map (IVF indexes keep their own ids and have none)."""
        import faiss

        return faiss.downcast_index(self._index.index) if hasattr(self._index, "id_map") else self._index

    @property
    def _searcher(self):
        """The index that searches: under the id map and under a projection (PCA) if there is one."""
        import faiss

        inner = self._inner
        return faiss.downcast_index(inner.index) if isinstance(inner, faiss.IndexPreTransform) else inner

    @property
    def kind(self) -> FaissKind:
        import faiss

        inner = self._searcher
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
        if isinstance(inner, faiss.IndexIVF):
            return "ivfpq"
        return "flat"

    @property
    def exact_scores(self) -> bool:
        """Whether searches score with the float vectors (flat, HNSW flat) rather than compressed codes
        or reduced dimensions."""
        import faiss

        return isinstance(self._inner, faiss.IndexFlat | faiss.IndexHNSWFlat)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors have dimension {vectors.shape[-1]}, the index {self.dimension}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids from a flat or IVF index (HNSW cannot: its caller excludes them at search time)."""
        import faiss

        if len(ids) == 0:
            return 0
        if self.kind == "hnsw":
            raise TypeError("HNSW graphs cannot remove vectors; exclude them at search time and rebuild")
        return int(self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def ids(self) -> np.ndarray:
        import faiss

        if hasattr(self._index, "id_map"):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        invlists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(cell), invlists.list_size(cell)).copy()
            for cell in range(invlists.nlist) if invlists.list_size(cell)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of a flat store, exactly as stored."""
        import faiss

        if self.kind != "flat":
            raise TypeError(f"only a flat index returns its exact vectors, not {self.kind}")
        flat = faiss.downcast_index(self._index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dimension).reshape(len(self), self.dimension)
        return self.ids(), vectors.copy()

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (n_queries, k'); k' ≤ k where the index holds fewer vectors.

        Only `allowed_ids` are searched when given, never the excluded ones; empty slots hold id -1.
        """
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self) if allowed_ids is None else len(allowed_ids))
        if k <= 0:
            empty = np.zeros((queries.shape[0], 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        params, keep_alive = self._search_parameters(k, allowed_ids)
        scores, ids = self._index.search(queries, k, params=params)
        del keep_alive
        if self._index.metric_type == faiss.METRIC_L2:
            scores = 1 - scores / 2  # squared distance between unit vectors → cosine (approximate after PCA)
        return ids, scores

    def _search_parameters(self, k: int, allowed_ids: np.ndarray | None) -> tuple[object, list]:
        """Search parameters, and the selectors they point to (SWIG keeps no reference to them)."""
        import faiss

        # IndexIDMap translates a selector to its internal ids, so chunk ids work as they are.
        selectors = [] if self._excluded_selector is None else [self._excluded_selector]
        if allowed_ids is not None:
            selectors.append(faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64)))
        selector = selectors[0] if len(selectors) == 1 else None
        if len(selectors) == 2:
            selector = faiss.IDSelectorAnd(*selectors)
            selectors.append(selector)
        kind = self.kind
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.hnsw_ef_search, k))
        elif kind == "ivfpq":
            params = faiss.SearchParametersIVF(nprobe=self.config.ivf_nprobe)
        elif selector is None:
            return None, selectors
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params, selectors

    def bytes_per_vector(self) -> float:
        """Serialised index size per vector (what RAM or the page cache holds)."""
        import faiss

        return len(faiss.serialize_index(self._index)) / max(len(self), 1)

    def write(self, path: Path) -> None:
        """Write to `path` atomically (temp file, fsync, rename)."""
        import faiss

        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path, *, mmap: bool = False, config: FaissIndexConfig | None = None) -> FaissVectorStore:
        """Load from `path`; with `mmap`, read-only and memory-mapped (pages load as searches touch them)."""
        import faiss

        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError:
            if not path.exists():  # removed by a writer's clean-up while we read
                raise FileNotFoundError(path) from None
            raise
        return cls(index.d, index, config=config)


def _hnsw_graph(dimension: int, config: FaissIndexConfig, vectors: np.ndarray):
    """An empty HNSW index as the config describes it, its quantiser and projection trained on a sample."""
    import faiss

    reduced = config.hnsw_pca_dim
    if reduced and not 0 < reduced < dimension:
        raise ValueError(f"hnsw_pca_dim ({reduced}) must be below the vectors' dimension ({dimension})")
    if len(vectors) < 2 * dimension:
        reduced = 0  # too few to learn the projection from; the next rebuild of a grown collection applies it
    # PCA centres the data, after which inner products no longer rank a query's neighbours (each vector's
    # product with the mean differs); squared L2 survives the projection and ranks unit vectors as cosine.
    metric = faiss.METRIC_L2 if reduced else faiss.METRIC_INNER_PRODUCT
    if config.hnsw_storage == "flat":
        graph = faiss.IndexHNSWFlat(reduced or dimension, config.hnsw_m, metric)
    else:
        code = {"sq8": faiss.ScalarQuantizer.QT_8bit, "fp16": faiss.ScalarQuantizer.QT_fp16}
        graph = faiss.IndexHNSWSQ(reduced or dimension, code[config.hnsw_storage], config.hnsw_m, metric)
    graph.hnsw.efConstruction = config.hnsw_ef_construction
    index = faiss.IndexPreTransform(faiss.PCAMatrix(dimension, reduced), graph) if reduced else graph
    if not index.is_trained and len(vectors):  # an empty base stays untrained: it is rebuilt before it holds any
        index.train(_sample(vectors, config.train_size))
    return index


def _cluster_count(n: int) -> int:
    """k-means clusters (IVF cells, graph reordering) for n vectors: about 4·√n, at most n / 39, at least 1."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _kmeans_sample(vectors: np.ndarray, clusters: int, size: int) -> np.ndarray:
    """What k-means trains on: `size` vectors, or more where the clusters want their ~40 points each."""
    return _sample(vectors, max(size, 40 * clusters))


def _sample(vectors: np.ndarray, size: int) -> np.ndarray:
    """At most `size` rows, drawn uniformly (seeded: the same data trains the same quantiser)."""
    if len(vectors) <= size:
        return vectors
    rows = np.random.default_rng(0).choice(len(vectors), size, replace=False)
    return vectors[np.sort(rows)]
