"""Vectors in a Milvus collection: milvus-lite on a local `.db` path, or a Milvus cluster by URI.

The same `VectorStore` contract as `FaissVectorStore` (int64 chunk ids, L2-normalised
float32 rows, inner-product scores), so the index can move from one process's RAM
to a shared server without the callers noticing.

Facts about milvus-lite 3.x (the pure-Python engine that pymilvus starts for a `.db`
URI) that shaped this module:

- The `.db` path is a *directory*, held by one process at a time (an flock on
  `<path>/LOCK`); a second process cannot open it. Share one store between
  processes by running `milvus-lite server --data-dir PATH.db --port 19530` and
  giving every process the URI `http://127.0.0.1:19530`.
- Writes are visible to searches and counts at once; a collection reopened from
  disk comes back released and must be loaded before use.
- `create_index` accepts any index type name, but an unsupported one only fails
  when the collection is next loaded; `LITE_INDEX_TYPES` lists those that work.
- pymilvus's query iterator and index wait ask for calls milvus-lite lacks; both
  cope, but log a warning or a traceback, which this module holds back.
- Filter templates (`id in {ids}` with `filter_params`) are not understood, so
  filters are written out literally, which clusters accept too.
- `delete` reports the ids it was asked to delete, present or not, so `remove`
  queries first to count what was really there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymilvus import MilvusClient

INSTALL_HINT = "pip install 'rag-service[milvus]'"


class MilvusUnavailableError(ConnectionError):
    """Milvus cannot be reached (or the milvus-lite path is held by another process)."""

ID_FIELD = "id"
VECTOR_FIELD = "vector"

# Vector index types milvus-lite 3.x builds: FLAT and BRUTE_FORCE are exact; the others use
# faiss-cpu (installed with the project); AUTOINDEX is HNSW when faiss is importable.
# IVF_PQ, DISKANN, SCANN and GPU types are cluster-only.
LITE_INDEX_TYPES = frozenset({"AUTOINDEX", "FLAT", "BRUTE_FORCE", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8"})

MAX_TOPK = 16384  # Milvus refuses a larger `limit` (topk), and more queries (nq) per search
_ROWS_PER_REQUEST = 4096  # rows per upsert / get; ids per delete or `id in [...]` query
_BYTES_PER_REQUEST = 16 << 20  # keeps one upsert far below gRPC's 64 MB message cap
_IDS_PAGE = 10_000  # ids per page when listing every id
_PAD_ID = -1
_PAD_SCORE = np.finfo(np.float32).min  # what FAISS puts in an empty inner-product slot


class MilvusVectorStore:
    """Normalised vectors under int64 chunk ids in one Milvus collection; inner product = cosine.

    `uri` is a local path ending in `.db` (milvus-lite, created if missing) or a
    server such as `http://host:19530` (with `token` "user:password" or an API key).
    `index_type` is one of `LITE_INDEX_TYPES` for milvus-lite; a cluster takes any
    type it knows (AUTOINDEX, FLAT, HNSW, IVF_FLAT, IVF_SQ8, IVF_PQ, DISKANN, ...).
    `index_params` are build parameters (e.g. {"M": 16, "efConstruction": 200} or
    {"nlist": 128}); `search_params` go with every search (e.g. {"ef": 64} or
    {"nprobe": 16}). Nothing is contacted until first use.
    """

    def __init__(
        self,
        uri: str | Path,
        collection: str,
        dimension: int,
        *,
        token: str | None = None,
        index_type: str = "AUTOINDEX",
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.uri = str(uri)
        self.is_lite = self.uri.endswith(".db")  # the rule pymilvus itself applies
        if self.is_lite:
            self.uri = str(Path(self.uri).expanduser().resolve())
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, not {dimension}")
        self.collection = collection
        self.dimension = int(dimension)
        self.token = token
        self.index_type = index_type.upper()
        if self.is_lite and self.index_type not in LITE_INDEX_TYPES:
            raise ValueError(
                f"milvus-lite cannot build a {index_type!r} index; choose one of {', '.join(sorted(LITE_INDEX_TYPES))}"
            )
        self.index_params = dict(index_params or {})
        self.search_params = dict(search_params or {})
        self.timeout = timeout
        self._lock = threading.RLock()
        self._client: MilvusClient | None = None
        self._ready = False  # collection checked (or created) and loaded

    def __repr__(self) -> str:
        return f"MilvusVectorStore({self.uri!r}, {self.collection!r}, dimension={self.dimension})"

    # -- connection -----------------------------------------------------------------
    @property
    def client(self) -> MilvusClient:
        """The one `MilvusClient` of this store (thread-safe), connected on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> MilvusClient:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise ImportError(f"The Milvus vector store needs pymilvus: {INSTALL_HINT}") from None
        if self.is_lite:
            self._prepare_lite_path()
        with _swallow_log("milvus_lite.server_manager", "Failed to start") as swallowed:
            try:
                return MilvusClient(uri=self.uri, token=self.token or "", timeout=self.timeout)
            except Exception as exc:  # pymilvus and grpc raise many kinds; all mean "not connected"
                cause = swallowed[0] if swallowed else exc
                raise MilvusUnavailableError(self._connect_error(cause)) from None

    def _prepare_lite_path(self) -> None:
        import importlib.util

        if importlib.util.find_spec("milvus_lite") is None:
            raise ImportError(f"A local Milvus file ({self.uri}) needs milvus-lite: {INSTALL_HINT}")
        path = Path(self.uri)
        if path.is_file():
            raise MilvusUnavailableError(
                f"{path} is a file, probably written by milvus-lite < 3; milvus-lite {_lite_version()} keeps a "
                "directory there. Export it with the old version, or choose another path."
            )
        path.parent.mkdir(parents=True, exist_ok=True)

    def _connect_error(self, cause: BaseException) -> str:
        name = type(cause).__name__
        detail = getattr(cause, "message", None) or str(cause) or name
        if self.is_lite:
            if name == "DataDirLockedError":
                return (
                    f"Another process has the milvus-lite database {self.uri} open (milvus-lite allows one process "
                    f"at a time). Stop it, or serve the database with `milvus-lite server --data-dir {self.uri} "
                    "--port 19530` and use the URI http://127.0.0.1:19530 in every process."
                )
            return f"Cannot open the milvus-lite database {self.uri}: {detail}"
        return f"Cannot connect to Milvus at {self.uri}: {detail}. Check that the server is running and reachable."

    def _ready_client(self) -> MilvusClient:
        """The client, with the collection created or checked, and loaded."""
        client = self.client
        with self._lock:
            if not self._ready:
                self._ensure_collection(client)
                self._ready = True
        return client

    def _ensure_collection(self, client: MilvusClient) -> None:
        from pymilvus import DataType, MilvusClient

        name = self.collection
        if not client.has_collection(name, timeout=self.timeout):
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
            schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self.dimension)
            index = client.prepare_index_params()
            index.add_index(
                field_name=VECTOR_FIELD, index_type=self.index_type, metric_type="IP", params=self.index_params
            )
            # Strong: a search right after an upsert sees it, on a cluster too (milvus-lite always does).
            # milvus-lite lacks the AllocTimestamp call pymilvus makes while waiting for the index; pymilvus
            # copes, but the in-process gRPC server logs a traceback for it, which we hold back.
            with _swallow_log("grpc._server", "Exception calling application: Method not implemented"):
                client.create_collection(
                    name, schema=schema, index_params=index, consistency_level="Strong", timeout=self.timeout
                )
            return
        self._check_collection(client, client.describe_collection(name, timeout=self.timeout))
        state = client.get_load_state(name, timeout=self.timeout).get("state")
        if getattr(state, "name", str(state)) != "Loaded":
            client.load_collection(name, timeout=self.timeout)  # reopened collections start released

    def _check_collection(self, client: MilvusClient, description: dict[str, Any]) -> None:
        from pymilvus import DataType

        fields = {field["name"]: field for field in description.get("fields", [])}
        key, vector = fields.get(ID_FIELD), fields.get(VECTOR_FIELD)
        if (
            key is None
            or not key.get("is_primary")
            or key.get("type") != DataType.INT64
            or vector is None
            or vector.get("type") != DataType.FLOAT_VECTOR
        ):
            raise ValueError(
                f"Milvus collection {self.collection!r} at {self.uri} exists but was not made by this store "
                f"(it needs an INT64 primary key {ID_FIELD!r} and a FLOAT_VECTOR field {VECTOR_FIELD!r}); "
                "choose another collection name"
            )
        dimension = int(vector.get("params", {}).get("dim", -1))
        if dimension != self.dimension:
            raise ValueError(
                f"Milvus collection {self.collection!r} at {self.uri} holds vectors of dimension {dimension}, "
                f"not {self.dimension}: the embedder changed. Re-index into a new collection, or drop this one."
            )
        try:
            index = client.describe_index(self.collection, VECTOR_FIELD, timeout=self.timeout) or {}
        except Exception:  # an index under another name: the metric cannot be checked, search will tell
            index = {}
        metric = str(index.get("metric_type", "IP")).upper()
        if metric != "IP":
            raise ValueError(
                f"Milvus collection {self.collection!r} at {self.uri} is indexed for {metric}, "
                "not inner product (IP); scores would not be cosine similarities"
            )

    # -- the VectorStore protocol ---------------------------------------------------
    def __len__(self) -> int:
        client = self._ready_client()
        rows = client.query(
            self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=self.timeout
        )
        return int(rows[0]["count(*)"])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Upsert: an id already present gets the new vector. Sent in batches of a few thousand rows."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            got = vectors.shape[1] if vectors.ndim == 2 else f"shape {vectors.shape}"
            raise ValueError(f"vectors have dimension {got}, the index {self.dimension}")
        if len(vectors) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        ids, vectors = _last_of_each(ids, vectors)  # one request may not name an id twice
        client = self._ready_client()
        step = max(1, min(_ROWS_PER_REQUEST, _BYTES_PER_REQUEST // (4 * self.dimension)))
        for start in range(0, len(ids), step):
            rows = [
                {ID_FIELD: int(key), VECTOR_FIELD: row}
                for key, row in zip(ids[start : start + step], vectors[start : start + step], strict=True)
            ]
            client.upsert(self.collection, rows, timeout=self.timeout)

    def remove(self, ids: np.ndarray) -> int:
        """Delete these ids; returns how many were present (Milvus' own delete count includes absent ids)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(ids) == 0:
            return 0
        client = self._ready_client()
        removed = 0
        for start in range(0, len(ids), _ROWS_PER_REQUEST):
            present = self._present(client, ids[start : start + _ROWS_PER_REQUEST])
            if present:
                client.delete(self.collection, ids=present, timeout=self.timeout)
                removed += len(present)
        return removed

    def _present(self, client: MilvusClient, ids: np.ndarray) -> list[int]:
        rows = client.query(
            self.collection,
            filter=_in_filter(ids),
            output_fields=[ID_FIELD],
            consistency_level="Strong",
            timeout=self.timeout,
        )
        return [int(row[ID_FIELD]) for row in rows]

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (n_queries, k'), best first; empty slots hold id -1.

        k' = min(k, vectors stored) without `allowed_ids`, min(k, len(allowed_ids)) with
        them (as in FaissVectorStore), and never more than MAX_TOPK.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dimension:
            raise ValueError(f"queries have dimension {queries.shape[1]}, the index {self.dimension}")
        n = queries.shape[0]
        allowed = None if allowed_ids is None else np.asarray(allowed_ids, dtype=np.int64).reshape(-1)
        k = min(k, MAX_TOPK) if allowed is None else min(k, MAX_TOPK, len(allowed))
        if k <= 0 or n == 0:
            empty = np.zeros((n, 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        client = self._ready_client()
        expression = "" if allowed is None else _in_filter(np.unique(allowed))
        ids = np.full((n, k), _PAD_ID, dtype=np.int64)
        scores = np.full((n, k), _PAD_SCORE, dtype=np.float32)
        for start in range(0, n, MAX_TOPK):
            batch = queries[start : start + MAX_TOPK]
            results = client.search(
                self.collection,
                data=list(batch),
                limit=k,
                filter=expression,
                output_fields=[ID_FIELD],  # an empty list would bring every field back, vectors included
                anns_field=VECTOR_FIELD,
                search_params={"metric_type": "IP", "params": self.search_params},
                consistency_level="Strong",
                timeout=self.timeout,
            )
            for row, hits in enumerate(results, start=start):
                for column, hit in enumerate(hits):
                    ids[row, column] = hit["id"]
                    scores[row, column] = hit["distance"]
        if allowed is None and (ids[:, -1] == _PAD_ID).any():
            # Fewer hits than k: trim to the collection's size, as FAISS would (one count, only then).
            size = len(self)
            ids, scores = ids[:, :size], scores[:, :size]
        return ids, scores

    # -- beyond the protocol --------------------------------------------------------
    def ids(self) -> np.ndarray:
        """Every id in the collection, ascending (paged, so any size works)."""
        client = self._ready_client()
        pages: list[np.ndarray] = []
        # milvus-lite does not report the snapshot timestamp the iterator asks for; pymilvus then
        # warns and falls back to a client-side timestamp, which is what we want anyway.
        with _swallow_log("pymilvus.client.iterator.query_iterator", "failed to get mvccTs"):
            iterator = client.query_iterator(
                self.collection, batch_size=_IDS_PAGE, filter="", output_fields=[ID_FIELD], timeout=self.timeout
            )
            try:
                while page := iterator.next():
                    pages.append(np.fromiter((row[ID_FIELD] for row in page), dtype=np.int64, count=len(page)))
            finally:
                iterator.close()
        return np.sort(np.concatenate(pages)) if pages else np.zeros(0, dtype=np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids`, in that order (KeyError naming any id that is absent)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        client = self._ready_client()
        unique = np.unique(ids)
        found: dict[int, Any] = {}
        step = max(1, min(_ROWS_PER_REQUEST, _BYTES_PER_REQUEST // (4 * self.dimension)))
        for start in range(0, len(unique), step):
            rows = client.get(
                self.collection,
                ids=unique[start : start + step].tolist(),
                output_fields=[VECTOR_FIELD],
                consistency_level="Strong",
                timeout=self.timeout,
            )
            found.update((int(row[ID_FIELD]), row[VECTOR_FIELD]) for row in rows)
        missing = [int(key) for key in unique if int(key) not in found]
        if missing:
            raise KeyError(f"{len(missing)} ids are not in Milvus collection {self.collection!r}: {missing[:10]}")
        return np.stack([np.asarray(found[int(key)], dtype=np.float32) for key in ids])

    def drop(self) -> None:
        """Delete the collection and everything in it (the next use creates it empty)."""
        client = self.client
        with self._lock:
            if client.has_collection(self.collection, timeout=self.timeout):
                client.drop_collection(self.collection, timeout=self.timeout)
            self._ready = False

    def close(self) -> None:
        """Close the client. A milvus-lite database stays open (and locked) in this process until it exits."""
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
            self._ready = False

    def __enter__(self) -> MilvusVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_filter(ids: np.ndarray) -> str:
    return f"{ID_FIELD} in [{', '.join(str(int(key)) for key in ids)}]"


def _last_of_each(ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the last row of each repeated id, as a sequence of single upserts would."""
    _, first_from_end = np.unique(ids[::-1], return_index=True)
    if len(first_from_end) == len(ids):
        return ids, vectors
    keep = np.sort(len(ids) - 1 - first_from_end)
    return ids[keep], vectors[keep]


def _lite_version() -> str:
    try:
        from importlib.metadata import version

        return version("milvus-lite")
    except Exception:
        return "3"


@contextmanager
def _swallow_log(logger_name: str, prefix: str) -> Iterator[list[BaseException]]:
    """Hold back one library log record (kept as the exception it carried) that our own error replaces."""
    caught: list[BaseException] = []

    def keep(record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(prefix):
            return True
        if record.exc_info and record.exc_info[1] is not None:
            caught.append(record.exc_info[1])
        return False

    logger = logging.getLogger(logger_name)
    logger.addFilter(keep)
    try:
        yield caught
    finally:
        logger.removeFilter(keep)
