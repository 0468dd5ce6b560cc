"""Reading files, cleaning, chunking with offsets, and the ingestion ledger (`rag ingest`)."""

from ingest.chunking import Chunk, Chunker
from ingest.discovery import discover
from ingest.loaders import LoadedDocument, LoadError, load_bytes
from ingest.pipeline import FailedFile, IngestPipeline, IngestProgress, IngestReport

__all__ = [
    "Chunk",
    "Chunker",
    "FailedFile",
    "IngestPipeline",
    "IngestProgress",
    "IngestReport",
    "LoadError",
    "LoadedDocument",
    "discover",
    "load_bytes",
]
