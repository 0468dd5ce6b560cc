"""Every model that produces or scores text: embedders now, readers and generators later.

Nothing here knows about HTTP, settings files or the index; callers pass plain
arguments (a model name or path, a device) and get typed results back.
"""

from generators.embedder import EmbeddingResult, SentenceEmbedder
from generators.resolve import ModelUnavailableError, ResolvedModel, resolve_model

__all__ = [
    "EmbeddingResult",
    "ModelUnavailableError",
    "ResolvedModel",
    "SentenceEmbedder",
    "resolve_model",
]
