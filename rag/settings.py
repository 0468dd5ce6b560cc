"""The one source of configuration: environment variables `RAG_SECTION__FIELD` (or a `.env` file), in sections.

Each section is a small model (`retrieval`, `rerank`, `reader`, `generator`, …) whose fields carry their defaults
and descriptions once; `rag config show` prints the effective values and where each came from, and the tables of
docs/configuration.md are generated from these descriptions (`rag config docs`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.fusion import HYBRID_BM25_WEIGHT, HYBRID_DENSE_WEIGHT, HYBRID_RRF_K
from generators import model_names
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RAG_"
ENV_NESTED_DELIMITER = "__"
ENV_FILE = ".env"

# Chosen on development data for the shipped stand-in reranker (bench/rerank_dev.py; bench/RESULTS.md): alone it
# only ties the hybrid retriever, fused with the retrieval order at weight 2 it beats it on SQuAD and SciFact.
STAND_IN_RERANK_RETRIEVAL_WEIGHT = 2.0
# And the weight of each candidate's best supporting sentence beside those two rankings, chosen on XQuAD-shaped
# SQuAD-train data and the held-out articles together (bench/rerank_dev.py --spread; bench/RESULTS.md).
STAND_IN_RERANK_EVIDENCE_WEIGHT = 2.0


class Section(BaseModel):
    # A misspelt variable inside a known section is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IndexSettings(Section):
    """Where indexes live and which vector store holds them."""

    dir: Path = Field(Path(".rag"), description="The index directory of the default collection; `--index` "
                      "overrides it.")
    backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="Where vectors live: faiss (files in the index directory) or milvus (milvus-lite in the "
        "index directory, or the server RAG_MILVUS__URI names). Switch an existing index with "
        "`rag index migrate --to ...`; `--backend` overrides it.")
    collections_dir: Path = Field(
        Path(".rag-collections"), description="Where named collections other than `default` keep their indexes and "
        "uploads (the `default` collection is RAG_INDEX__DIR).")
    lock_timeout: float = Field(600.0, ge=0, description="Seconds to wait for another writer of the same index; "
                                "`--lock-timeout` overrides it.")


class FaissSettings(Section):
    """The FAISS vector index (RAG_INDEX__BACKEND=faiss). Search settings apply whenever an index is opened, build
    settings when it is next built (`rag index migrate --to faiss` does that at once)."""

    index: Literal["auto", "flat", "hnsw", "ivfpq"] = Field(
        "auto", description="Index type; auto: flat (exact), then HNSW from RAG_FAISS__HNSW_FROM vectors, then IVF-PQ "
        "from RAG_FAISS__IVFPQ_FROM.")
    hnsw_from: int = Field(200_000, ge=0, description="auto: vectors from which HNSW is used.")
    ivfpq_from: int = Field(5_000_000, ge=0, description="auto: vectors from which IVF-PQ is used.")
    hnsw_m: int = Field(32, ge=4, description="HNSW neighbours per node (build time, memory, recall).")
    hnsw_ef_construction: int = Field(200, ge=8, description="HNSW candidates while building.")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW candidates per query (speed against recall).")
    hnsw_storage: Literal["flat", "sq8", "fp16"] = Field(
        "flat", description="How HNSW stores vectors: float32, or 1 (sq8) or 2 (fp16) bytes per dimension with exact "
        "re-scoring (RAG_FAISS__REFINE); applies when the graph is next built.")
    hnsw_pca_dim: int = Field(
        0, ge=0, description="HNSW over this many principal components (0: all): cheaper visits, approximate "
        "distances re-scored exactly (set RAG_FAISS__REFINE to about 10); from the next build.")
    hnsw_reorder: bool = Field(
        True, description="Store HNSW nodes cluster by cluster: same results, faster searches (fewer memory misses), "
        "a k-means pass more per build.")
    ivf_lists: int = Field(0, ge=0, description="IVF cells; 0: about 4·sqrt(vectors).")
    ivf_nprobe: int = Field(48, ge=1, description="IVF cells searched per query (speed against recall).")
    pq_bytes: int = Field(64, ge=1, description="IVF-PQ code bytes per vector; must divide the dimension.")
    refine: int = Field(
        4, ge=1, description="IVF-PQ and quantised or reduced HNSW: candidates per result re-scored with the exact "
        "vectors (1: compressed scores only).")
    mmap: bool = Field(True, description="Memory-map the FAISS index when serving.")


class MilvusSettings(Section):
    """Milvus (RAG_INDEX__BACKEND=milvus; the `milvus` extra)."""

    uri: str | None = Field(
        None, description="Milvus server, e.g. http://host:19530, or a milvus-lite path ending in .db; unset: "
        "milvus.db inside the index directory.")
    token: str | None = Field(None, description='Credentials: "user:password" or an API key.')
    collection: str | None = Field(
        None, description="Collection name; unset: one per index directory, `rag_` plus 12 hex digits of its path. "
        "Never give two index directories the same one.")
    index_type: str = Field("AUTOINDEX", description="Index type when the collection is created (AUTOINDEX, HNSW, "
                            "IVF_FLAT, ...; milvus-lite: AUTOINDEX, FLAT, HNSW, IVF_FLAT, ...).")


class EmbedderSettings(Section):
    """The embedding model (changing the model or backend re-embeds every chunk at the next ingest)."""

    model: str = Field(model_names.EMBEDDER.name, description="A Hugging Face name or a local sentence-transformers "
                       "folder.")
    backend: Literal["torch", "int8", "onnx-int8"] = Field(
        "onnx-int8", description="onnx-int8 (an int8 onnxruntime graph, converted once and cached; fastest on CPU), "
        "int8 (torch, quantised Linear layers) or torch (fp32).")
    threads: int | None = Field(None, gt=0, description="Batches the onnx-int8 embedder runs at once, one core each; "
                                "unset: all cores.")
    processes: int = Field(
        1, ge=1, description="Worker processes the local ingest engine embeds with, each with its own model on one "
        "core; questions are always embedded in the serving process.")
    query_cache: int = Field(
        1024, ge=0, description="Recent query vectors kept in memory: retrieval and the evidence gate embed each "
        "question once, repeated questions not at all; 0 turns the cache off.")
    cache_dir: Path | None = Field(None, description="Where converted embedder graphs are cached (unset: "
                                   "~/.cache/rag-service/onnx).")
    languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description='Query languages the embedder serves (JSON list of "en", "zh"); others use BM25 alone. null for '
        "a multilingual model.")
    batch_tokens: int = Field(512, gt=0, description="Padded tokens per embedding batch (small batches are faster on "
                              "CPU: bench/RESULTS.md).")


class RuntimeSettings(Section):
    """Devices and threads of the models."""

    device: str = Field(
        "auto", description='torch device for models: "auto" (a CUDA GPU if there is one, else the CPU), "cpu", '
        '"cuda", "cuda:1"...')
    torch_threads: int | None = Field(
        None, gt=0, description="Threads each torch model call may use; unset: torch's own (all cores). A server "
        "answering many requests at once may do better with 1: the requests themselves keep the cores busy.")
    onnx_threads: int | None = Field(
        None, gt=0, description="Threads each onnxruntime call of the reranker and the extractive reader may use; "
        "unset: onnxruntime's own (all cores). See RAG_RUNTIME__TORCH_THREADS.")
    model_cache: Path | None = Field(
        None, description="Where a model split over PyPI packages (the offline Qwen2.5-Coder GGUF) is assembled, "
        "once, checksum verified; unset: ~/.cache/rag-service/models (or under $XDG_CACHE_HOME).")


class IngestSettings(Section):
    """Reading, chunking and committing documents (chunk settings re-chunk every document at the next ingest)."""

    chunk_tokens: int = Field(200, ge=8, description="Chunk size in embedder tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between chunks in tokens.")
    max_heading_level: int = Field(3, ge=1, le=6, description="Headings up to this level start a new section.")
    include: list[str] = Field(default_factory=list, description="Only files matching these globs (JSON list); "
                               "`--include` adds to it.")
    exclude: list[str] = Field(
        default_factory=lambda: [".*", "__pycache__", "node_modules"],
        description="Skip files matching these globs (JSON list; setting it replaces the default list); `--exclude` "
        "adds to it.")
    max_file_mb: float = Field(50.0, gt=0, description="Larger files are reported and skipped.")
    batch_chunks: int = Field(256, gt=0, description="Chunks gathered across files before each embedding call.")
    commit_every_chunks: int = Field(2000, gt=0, description="Commit a generation after this many new chunks.")
    sentence_vectors: bool = Field(
        True, description="Embed each chunk's sentences at ingest and store them, so that answering scores the "
        "candidates' sentences without embedding them: about twice the ingest embedding work and ~0.8 KB per "
        "sentence on disk. The Ray engine does not store them yet (answers then embed them).")
    watch: list[Path] = Field(
        default_factory=list, description="Folders `rag serve` keeps the default collection in step with (JSON "
        "list; `rag serve --watch`): added, changed, moved and deleted files are ingested as they happen.")
    engine: Literal["local", "ray"] = Field(
        "local", description="Who reads, chunks and embeds files: local (this process) or ray (a Ray cluster; the "
        "`ray` extra). Index writes stay in this process either way; `--engine` overrides it.")
    ray_address: str | None = Field(
        None, description='Ray cluster for the ray engine: "auto", "ray://host:10001", ...; unset: start a local Ray '
        "instance for the run and stop it after; `--ray-address` overrides it.")
    ray_embed_actors: int = Field(2, ge=1, description="Ray actors that each read files and embed with their own "
                                  "model; `--embed-actors` overrides it.")


class RetrievalSettings(Section):
    """Hybrid retrieval: dense and BM25 rankings fused (defaults chosen on SQuAD-train articles, bench/RESULTS.md)."""

    top_k: int = Field(5, ge=1, le=50, description="Passages handed to the reader.")
    dense_depth: int = Field(50, ge=1, description="Dense candidates fused.")
    bm25_depth: int = Field(50, ge=1, description="BM25 candidates fused.")
    dense_weight: float = Field(HYBRID_DENSE_WEIGHT, ge=0, description="Weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(HYBRID_BM25_WEIGHT, ge=0, description="Weight of the BM25 ranking in the fusion.")
    rrf_k: int = Field(HYBRID_RRF_K, ge=1, description="Reciprocal-rank-fusion constant.")


class RerankSettings(Section):
    """The cross-encoder that reorders retrieved passages."""

    model: str = Field(model_names.RERANKER.name, description='Cross-encoder: Hub name or folder; "none" turns '
                       "reranking off.")
    backend: Literal["torch", "onnx-int8"] = Field(
        "onnx-int8", description="onnx-int8 (an int8 onnxruntime graph of the same model, converted once and cached; "
        "about 2.3x faster on CPU, same quality within noise, bench/RESULTS.md) or torch.")
    languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description='Query languages the reranker serves ("en", "zh"); others keep the retriever\'s order. null for '
        "a multilingual cross-encoder.")
    retrieval_weight: float | None = Field(
        None, ge=0, description="Weight of the retrieval order beside the reranker's in the final order "
        "(reciprocal-rank fusion, k 60); 0 keeps the reranker's order alone; unset: 0 for a reranker you name or the "
        f"Hub gives, {STAND_IN_RERANK_RETRIEVAL_WEIGHT:g} for the one this project ships.")
    evidence_weight: float | None = Field(
        None, ge=0, description="Weight of the evidence ranking (each candidate's best supporting sentence) in the "
        "final order's fusion with the retrieval order and the reranker's (languages the embedder serves); 0 leaves "
        f"it out; unset: 0 for a reranker you name or the Hub gives, {STAND_IN_RERANK_EVIDENCE_WEIGHT:g} for the one "
        "this project ships.")
    depth: int = Field(20, ge=1, description="Fused candidates the reranker rescores.")
    confident_depth: int | None = Field(
        # bench/RESULTS.md (adaptive rerank depth): SciFact-train nDCG@10 within 0.2 %, docqa pages unchanged.
        5, ge=1, description="Candidates reranked when the dense and the keyword retrievers rank the same passage "
        "first: retrieval is confident, so a quarter of questions rerank 5 instead of RAG_RERANK__DEPTH; null always "
        "reranks RAG_RERANK__DEPTH.")


class ReaderSettings(Section):
    """The extractive reader, and which reader answers by default."""

    default_mode: Literal["extractive", "generative"] = Field(
        # bench/RESULTS.md (docqa section): on the FastAPI docqa dev set generative contains the answer more often
        # with its first token within the chat budget.
        "generative", description="Reader when a request names none: generative (the local or API language model, "
        "cited) or extractive (a QA model's span: faster, terser).")
    model: str = Field(
        model_names.READER.name, description="Extractive QA reader: Hub name or folder. Offline, the reader this "
        'project trained and ships; without any, a sentence extractor answers (answer_type "sentence").')
    backend: Literal["torch", "onnx-int8"] = Field(
        "onnx-int8", description="onnx-int8 (an int8 onnxruntime graph of the same model, converted once and cached; "
        "faster on CPU, bench/RESULTS.md) or torch.")
    widen_below: float = Field(
        # Chosen on SQuAD-train dev questions (bench/reader_granularity.py): the best F1 whose containment
        # is at least the sentence extractor's.
        0.4, ge=0, le=1, description="An extractive answer whose span scores below this p(start)·p(end) is widened "
        'to the sentence that holds it (answer_type "sentence"): more often right, less exact. 0 keeps every span.')
    rank_weight: float = Field(
        # Chosen on SQuAD-train dev questions in the open setting (bench/reader_open.py): containment of the
        # answer 0.433 ranking by probability, 0.745 by logit less 2 per passage rank.
        2.0, ge=0, description="Across passages, a span ranks by its start + end logit less this much per rank of its "
        "passage in the chain's order. 0 ignores passage order.")
    languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description='Question languages the extractive reader serves ("en", "zh"); others are answered with the best '
        "supporting sentence. null for a multilingual reader.")


class GeneratorSettings(Section):
    """The generative reader: a local GGUF model (llama.cpp) or an OpenAI-compatible API, grounded and cited."""

    backend: Literal["local", "openai"] = Field(
        "local", description="Who writes generative answers: a local model or an OpenAI-compatible API (RAG_OPENAI__*).")
    model: str = Field(
        model_names.GENERATOR.name, description="Local generator: a Hub GGUF repo, a .gguf file or folder (run by "
        "llama.cpp), or a transformers model (gpt2). Offline, the Qwen2.5-Coder GGUF that PyPI packages ship.")
    gguf_file: str | None = Field(model_names.GENERATOR.file, description="The file of a Hub GGUF repo to use: a "
                                  "repo holds every quantisation.")
    threads: int | None = Field(None, ge=1, description="llama.cpp threads; unset: every core this process may use.")
    context_tokens: int = Field(4096, ge=512, le=32768, description="llama.cpp context window, prompt plus answer.")
    context_chars: int = Field(
        # bench/RESULTS.md (docqa second pass): 1,000 answers as well as 1,500 on the dev set, 0.25 s sooner.
        1000, ge=200, le=20000, description="Passage text in a generative prompt, in characters: the sentences "
        "sharing the most words with the question, code blocks whole. About 5 ms per token on two cores.")
    min_support: float = Field(
        0.5, ge=0, le=1, description="Share of a generated sentence's content words that its cited passages must "
        "hold, else the sentence is dropped; 0 keeps every sentence.")
    grounded_names: bool = Field(
        # bench/RESULTS.md (docqa third pass): unanswerable abstention up, no answerable question lost.
        True, description="Drop a generated sentence that names a name, number or piece of code (`inline code`, "
        "snake_case, camelCase, 1MB) that no passage or the question holds: what small models invent when the "
        "passages lack the answer.")
    retry_top_passage: bool = Field(
        # bench/RESULTS.md (docqa fourth pass).
        True, description="When a generated answer comes out empty (the model declined, or no sentence of it is "
        "supported), ask once more with the top passage alone: small models decline over several passages when the "
        "first one answers.")
    quote: bool = Field(True, description="End a generated answer with the documents' best supporting sentence, "
                        "quoted and cited, unless the answer already says it.")
    evidence_quotes: int = Field(
        # bench/RESULTS.md (docqa third pass): 2 against 1, contains en 0.545 -> 0.580, zh 0.50 -> 0.58, +13 words.
        2, ge=0, le=5, description="How many of the best supporting sentences a generated answer quotes after the "
        "extractive reader's sentence, each only if the answer does not say it already.")
    max_new_tokens: int = Field(192, ge=1, le=4096, description="Longest generated answer, in tokens (a few sentences).")
    classifier: Literal["auto", "zero-shot", "generator"] = Field(
        "auto", description="How POST /v1/classify and /v1/summarize work: with the embedder (zero-shot labels, "
        "extractive summaries) or through the generator; auto uses the generator only when it is an "
        "OpenAI-compatible API.")


class OpenAISettings(Section):
    """An OpenAI-compatible API as the generator (RAG_GENERATOR__BACKEND=openai; key: OPENAI_API_KEY)."""

    model: str = Field("gpt-4o-mini", description="Model name sent to the API.")
    base_url: str | None = Field(None, description="API base URL; unset: the SDK reads OPENAI_BASE_URL.")
    timeout: float = Field(60.0, gt=0, description="Seconds per API request.")
    max_retries: int = Field(2, ge=0, description="Retries of a failed API request.")


class AbstainSettings(Section):
    """When the chain answers "not found" (calibrated on data not used for evaluation: bench/calibrate_abstention.py)."""

    evidence: dict[str, float] = Field(
        # The highest threshold that still answers 95% of answerable questions (en: SQuAD train articles,
        # zh: CMRC 2018 trial); see bench/RESULTS.md.
        default_factory=lambda: {"en": 0.568, "zh": 0.689, "*": 0.568},
        description='Minimum best-sentence score per query language (JSON object, "*" for the others) below which '
        "the answer is 'not found'.")
    heading: float | None = Field(
        # bench/docqa_gate.py on the FastAPI docqa dev set: no unanswerable question's best heading scored above
        # 0.683, an FAQ heading restating a question scores 1.0-1.3; 0.9 leaves a margin and changed no dev answer.
        0.9, ge=0, description="A Markdown heading of the passages scoring at least this against the question passes "
        "the evidence gate even when no sentence does (FAQ-style docs put the question in a heading). null: headings "
        "are ignored.")
    agreement_margin: float | None = Field(
        # bench/calibrate_abstention.py on SQuAD train articles (not an evaluation set): within 0.04 below the
        # threshold with 4 of the top 5 passages from one article, 95.0 → 96.0 % of answerable questions are answered
        # and 80.2 → 79.5 % of unanswerable ones still abstained (k = 3 cost 3 points of abstention); bench/RESULTS.md.
        0.04, ge=0, description="A question whose best sentence scores within this margin below RAG_ABSTAIN__EVIDENCE "
        "still passes the evidence gate when RAG_ABSTAIN__AGREEMENT of the top 5 passages come from one document (the "
        "retrieval agrees on a page that covers the question). null: never.")
    agreement: int = Field(4, ge=2, le=5, description="Top-5 passages that must share the top passage's document for "
                           "RAG_ABSTAIN__AGREEMENT_MARGIN to apply.")
    overrule_margin: float | None = Field(
        # bench/RESULTS.md (docqa section): on the FastAPI dev set, 0.23 above the English threshold turns most of the
        # generator's false "not found" answers into quoted answers and overrules no decline on an unanswerable question.
        0.23, ge=0, description="When the generator declines or writes nothing the passages support, yet the best "
        "supporting sentence scores at least this much above the language's RAG_ABSTAIN__EVIDENCE threshold, the "
        "answer quotes the documents' sentences instead of saying 'not found'. null: the generator's decline stands.")
    span: float = Field(0.0, ge=0, le=1, description="Minimum p(start)·p(end) of an extractive answer span.")
    rerank: float = Field(0.0, ge=0, le=1, description="Minimum reranker score of the best passage.")


class MediaSettings(Section):
    """Generators beyond text answers: images, captions, video (see docs/generators.md)."""

    image_model: str = Field(model_names.IMAGE.name, description="Text→image: a diffusers repo or folder, e.g. "
                             "CompVis/stable-diffusion-v1-4.")
    image_steps: int = Field(1, ge=1, le=100, description="Default denoising steps (sd-turbo: 1; SD 1.4: ~30).")
    image_guidance: float = Field(0.0, ge=0, le=30, description="Default guidance scale (sd-turbo: 0; SD 1.4: ~7.5).")
    caption_model: str = Field(model_names.CAPTION.name, description="Image→text captioner: GIT or BLIP, Hub name or "
                               "folder.")
    video_model: str = Field(model_names.VIDEO.name, description="Text→video: any diffusers video pipeline repo or "
                             "folder, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers.")
    video_steps: int = Field(25, ge=1, le=100, description="Default denoising steps of a video.")
    video_frames: int = Field(16, ge=1, le=64, description="Default frames of a video.")
    memory_mb: float | None = Field(
        None, gt=0, description="Memory budget of the image, caption and video models: the least recently used are "
        "unloaded to stay under it. Unset: keep every loaded model.")
    max_jobs: int = Field(8, ge=1, description="Video jobs queued or running at once (HTTP 429 above).")
    # Limits on what one HTTP request may ask for (HTTP 422 above): they bound the time and memory a caller spends.
    max_image_side: int = Field(1024, ge=64, le=2048, description="Largest image width or height served.")
    max_video_side: int = Field(1024, ge=8, le=2048, description="Largest video width or height served.")


class ApiSettings(Section):
    """The HTTP API (`rag serve`)."""

    host: str = Field("127.0.0.1", description="Address `rag serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `rag serve` listens on.")
    keys: dict[str, list[str]] | list[str] | None = Field(
        None, description='Fixed API keys: a JSON list of keys allowed everywhere, or {"key": ["collection", ...]} '
        'limiting each key to some collections ("*" for all: such a key also manages keys). They read every '
        "document; keys with groups live in RAG_API__KEYS_FILE. With neither: no key needed.")
    keys_file: Path = Field(Path(".rag-keys.json"), description="The key file of `rag keys` and /admin/keys: keys "
                            "(stored hashed) with the groups whose documents they may read, their collections, and "
                            "whether they manage keys. Re-read when it changes.")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted upload (HTTP 413 above).")
    answer_slots: int = Field(
        2, ge=1, description="Extractive answers computed at once; more wait their turn in arrival order instead of "
        "all sharing the cores at once.")
    answer_queue: int = Field(256, ge=0, description="Extractive answers that may wait for a slot; past it, 429.")
    generation_slots: int = Field(
        1, ge=1, description="Generative answers served at once; more wait their turn in arrival order. One suits a "
        "local model on a few cores; raise it for an OpenAI-compatible API.")
    generation_queue: int = Field(8, ge=0, description="Generative answers that may wait for a slot; past it the API "
                                  "answers 429 with Retry-After at once.")
    max_completion_tokens: int = Field(1024, ge=1, le=8192, description="Most tokens one completion may ask for "
                                       "(HTTP 422 above).")
    mcp_ingest: bool = Field(False, description="Offer the MCP `ingest` tool (`rag mcp`, /mcp) to keys that may use "
                             "the collection: uploaded content over HTTP, also paths on this machine over stdio. Off: "
                             "the tool is not listed.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, env_file=ENV_FILE, extra="ignore",
        validate_assignment=True)

    index: IndexSettings = Field(default_factory=IndexSettings)
    faiss: FaissSettings = Field(default_factory=FaissSettings)
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    reader: ReaderSettings = Field(default_factory=ReaderSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    abstain: AbstainSettings = Field(default_factory=AbstainSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """A copy with `changes` applied ("section.field" → value), validated; None values are skipped."""
        sections: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            if value is None:
                continue
            section, _, field = key.partition(".")
            if section not in type(self).model_fields or field not in type(getattr(self, section)).model_fields:
                raise KeyError(f"no setting {key!r}")
            sections.setdefault(section, {})[field] = value
        current = self.model_dump()
        # Validated as a whole (not section by section) so that errors name the section: loc ("ingest", "engine").
        return type(self).model_validate({**current, **{name: {**current[name], **fields}
                                                        for name, fields in sections.items()}})


def env_name(section: str, field: str) -> str:
    """The environment variable of one setting: `RAG_SECTION__FIELD`."""
    return f"{ENV_PREFIX}{section.upper()}{ENV_NESTED_DELIMITER}{field.upper()}"


def setting_variable(loc: tuple[int | str, ...]) -> str:
    """The variable a validation error's location points at: ("retrieval", "top_k") → RAG_RETRIEVAL__TOP_K."""
    if len(loc) >= 2:
        return env_name(str(loc[0]), str(loc[1]))
    return f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else ENV_PREFIX.rstrip("_")


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """`RAG_*` variables that set nothing: not `RAG_SECTION__FIELD` of a known section nor a whole section (an old
    flat name such as RAG_TOP_K, or a misspelt section). A misspelt field of a known section is a validation
    error instead. RAG_API_KEY is `rag mcp`'s key, not a setting."""
    sections = {section.upper() for section in Settings.model_fields}
    unknown = []
    for name in (os.environ if environ is None else environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == "RAG_API_KEY":
            continue
        section = upper[len(ENV_PREFIX):].split(ENV_NESTED_DELIMITER, 1)[0]
        if section not in sections:
            unknown.append(name)
    return sorted(unknown)


SettingSource = Literal["default", "environment", ".env", "given"]


@dataclass(frozen=True)
class SettingRow:
    """One setting as `rag config show` prints it."""

    section: str
    field: str
    variable: str
    value: Any
    default: Any
    source: SettingSource
    description: str


def _dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key.upper(): value for key, value in dotenv_values(path).items() if value is not None}


def describe(settings: Settings, *, environ: Mapping[str, str] | None = None,
             env_file: Path | None = None) -> Iterator[SettingRow]:
    """Every setting with its effective value and where it came from: the environment, the `.env` file, given
    by the caller (a command-line option), or the default."""
    environment = {key.upper(): value for key, value in (os.environ if environ is None else environ).items()}
    dotenv = _dotenv(Path(ENV_FILE) if env_file is None else env_file)
    for section, info in Settings.model_fields.items():
        section_type = info.annotation
        defaults = section_type()
        current = getattr(settings, section)
        whole = f"{ENV_PREFIX}{section.upper()}"  # a whole section as JSON, RAG_RETRIEVAL='{"top_k": 3}'
        for field, field_info in section_type.model_fields.items():
            variable = env_name(section, field)
            value, default = getattr(current, field), getattr(defaults, field)
            if variable in environment or whole in environment:
                source: SettingSource = "environment"
            elif variable in dotenv or whole in dotenv:
                source = ".env"
            elif value != default:
                source = "given"
            else:
                source = "default"
            yield SettingRow(section, field, variable, value, default, source, field_info.description or "")


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def reference_markdown() -> str:
    """The tables of every setting, per section, for docs/configuration.md (regenerated by `rag config docs`)."""
    lines: list[str] = []
    section = None
    for row in describe(Settings.model_construct(), environ={}, env_file=Path(os.devnull)):
        if row.section != section:
            section = row.section
            summary = " ".join((Settings.model_fields[section].annotation.__doc__ or "").split())
            lines += ["", f"### `{section}`", "", summary, "",
                      "| environment variable | default | meaning |", "|---|---|---|"]
        meaning = row.description.replace("|", "\\|")
        lines.append(f"| `{row.variable}` | `{_shown(row.default)}` | {meaning} |")
    return "\n".join(lines).strip() + "\n"
