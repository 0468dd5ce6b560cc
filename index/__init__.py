"""The on-disk index: a vector store, a BM25 index and a SQLite docstore, committed atomically.

Nothing here calls a language model: vectors come in already computed.
"""

from index.backends import FaissBackend, MilvusBackend, VectorBackend
from index.bm25 import BM25Index, analyze
from index.docstore import ChunkRecord, DocStore, DocumentRecord, StoredChunk
from index.faiss_collection import CompactionPolicy
from index.faiss_store import FaissIndexConfig, FaissVectorStore
from index.store import BackendMismatchError, IndexLockedError, IndexReader, IndexStats, IndexStore, IndexWriter, MissingIndexError

__all__ = [
    "BM25Index",
    "BackendMismatchError",
    "CompactionPolicy",
    "FaissBackend",
    "FaissIndexConfig",
    "MilvusBackend",
    "VectorBackend",
    "ChunkRecord",
    "DocStore",
    "DocumentRecord",
    "FaissVectorStore",
    "IndexLockedError",
    "IndexReader",
    "IndexStats",
    "IndexStore",
    "IndexWriter",
    "MissingIndexError",
    "StoredChunk",
    "analyze",
]
