"""Every model that produces or scores text: embedders, rerankers, readers and generators.

Nothing here knows about HTTP, settings files or the index; callers pass plain
arguments (a model name or path, a device) and get typed results back.
"""

from generators.embedder import EmbeddingResult, SentenceEmbedder
from generators.generative_reader import GenerativeReader
from generators.qa_reader import ExtractiveReader
from generators.reading import Reader, ReaderPassage, ReaderResult, ReaderSpan
from generators.reranker import CrossEncoderReranker, RerankResult
from generators.resolve import ModelUnavailableError, ResolvedModel, resolve_model
from generators.sentence_reader import SentenceReader
from generators.text_generators import GeneratorError, LocalGenerator, OpenAIGenerator, TextGenerator

__all__ = [
    "CrossEncoderReranker",
    "EmbeddingResult",
    "ExtractiveReader",
    "GenerativeReader",
    "GeneratorError",
    "LocalGenerator",
    "ModelUnavailableError",
    "OpenAIGenerator",
    "Reader",
    "ReaderPassage",
    "ReaderResult",
    "ReaderSpan",
    "RerankResult",
    "ResolvedModel",
    "SentenceEmbedder",
    "SentenceReader",
    "TextGenerator",
    "resolve_model",
]
