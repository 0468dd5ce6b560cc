"""The one source of configuration: environment variables with the `RAG_` prefix (or a `.env` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from common.fusion import HYBRID_BM25_WEIGHT, HYBRID_DENSE_WEIGHT, HYBRID_RRF_K
from generators.text_generators import DEFAULT_LOCAL_GENERATOR, DEFAULT_LOCAL_GENERATOR_FILE
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


# Chosen on development data for the shipped stand-in reranker (bench/rerank_dev.py; bench/RESULTS.md): alone it
# only ties the hybrid retriever, fused with the retrieval order at weight 2 it beats it on SQuAD and SciFact.
STAND_IN_RERANK_RETRIEVAL_WEIGHT = 2.0
# And the weight of each candidate's best supporting sentence beside those two rankings, chosen on XQuAD-shaped
# SQuAD-train data and the held-out articles together (bench/rerank_dev.py --spread; bench/RESULTS.md).
STAND_IN_RERANK_EVIDENCE_WEIGHT = 2.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    index_dir: Path = Field(Path(".rag"), description="Where the index lives (RAG_INDEX_DIR).")
    backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="Where vectors live (RAG_BACKEND): faiss (files in the index dir) or milvus "
        "(milvus-lite under the index dir, or a cluster at RAG_MILVUS_URI). Switch an existing index with "
        "`rag index migrate --to ...`.")
    faiss_index: Literal["auto", "flat", "hnsw", "ivfpq"] = Field(
        "auto", description="FAISS index type (RAG_FAISS_INDEX); auto: flat (exact), then HNSW from "
        "RAG_FAISS_HNSW_FROM vectors, then IVF-PQ from RAG_FAISS_IVFPQ_FROM.")
    faiss_hnsw_from: int = Field(200_000, ge=0, description="auto: vectors from which FAISS uses HNSW.")
    faiss_ivfpq_from: int = Field(5_000_000, ge=0, description="auto: vectors from which FAISS uses IVF-PQ.")
    faiss_hnsw_m: int = Field(32, ge=4, description="HNSW neighbours per node (build time, memory, recall).")
    faiss_hnsw_ef_construction: int = Field(200, ge=8, description="HNSW candidates while building.")
    faiss_hnsw_ef_search: int = Field(128, ge=1, description="HNSW candidates per query (speed vs recall).")
    faiss_hnsw_storage: Literal["flat", "sq8", "fp16"] = Field(
        "flat", description="How HNSW stores vectors (RAG_FAISS_HNSW_STORAGE): float32, or 1 (sq8) or 2 (fp16) "
        "bytes per dimension with exact re-scoring (RAG_FAISS_REFINE); applies when the graph is next built.")
    faiss_hnsw_pca_dim: int = Field(
        0, ge=0, description="HNSW over this many principal components (RAG_FAISS_HNSW_PCA_DIM; 0: all): cheaper "
        "visits, approximate distances re-scored exactly (set RAG_FAISS_REFINE to about 10); from the next build.")
    faiss_hnsw_reorder: bool = Field(
        True, description="Store HNSW nodes cluster by cluster (RAG_FAISS_HNSW_REORDER): same results, faster "
        "searches (fewer memory misses), a k-means pass more per build.")
    faiss_ivf_lists: int = Field(0, ge=0, description="IVF cells; 0: about 4·sqrt(vectors).")
    faiss_ivf_nprobe: int = Field(48, ge=1, description="IVF cells searched per query (speed vs recall).")
    faiss_pq_bytes: int = Field(64, ge=1, description="IVF-PQ code bytes per vector; must divide the dimension.")
    faiss_refine: int = Field(
        4, ge=1, description="IVF-PQ and quantised or reduced HNSW: candidates per result re-scored with the exact "
        "vectors (1: compressed scores only).")
    faiss_mmap: bool = Field(True, description="Memory-map the FAISS index when serving (RAG_FAISS_MMAP).")
    milvus_uri: str | None = Field(
        None, description="Milvus server, e.g. http://host:19530, or a milvus-lite path ending in .db "
        "(RAG_MILVUS_URI); default: milvus.db inside the index dir.")
    milvus_token: str | None = Field(None, description='Milvus credentials: "user:password" or an API key.')
    milvus_collection: str | None = Field(None, description="Milvus collection; default: one per index dir.")
    milvus_index_type: str = Field("AUTOINDEX", description="Milvus index type (AUTOINDEX, HNSW, IVF_FLAT, ...).")

    embedder_model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2",
        description="Embedder: a Hugging Face name or a local sentence-transformers folder (RAG_EMBEDDER_MODEL).",
    )
    embedder_backend: Literal["torch", "int8", "onnx-int8"] = Field(
        "onnx-int8",
        description="onnx-int8 (int8 onnxruntime graph, converted once and cached; fastest on CPU), "
        "int8 (torch, quantised Linear layers) or torch (fp32) (RAG_EMBEDDER_BACKEND).",
    )
    embedder_threads: int | None = Field(
        None, gt=0, description="Batches the onnx-int8 embedder runs at once, one core each; default: all cores."
    )
    embedder_processes: int = Field(
        1, ge=1, description="Worker processes the local ingest engine embeds with (RAG_EMBEDDER_PROCESSES), "
        "each with its own model on one core; queries are always embedded in the serving process.")
    torch_threads: int | None = Field(
        None, gt=0,
        description="Threads each torch model call may use (RAG_TORCH_THREADS); default: torch's own (all cores). "
        "A server answering many requests at once may do better with 1: the requests themselves keep the cores busy.",
    )
    onnx_threads: int | None = Field(
        None, gt=0,
        description="Threads each onnxruntime call of the reranker and the extractive reader may use "
        "(RAG_ONNX_THREADS); default: onnxruntime's own (all cores). See RAG_TORCH_THREADS.",
    )
    embedder_query_cache: int = Field(
        1024, ge=0, description="Recent query vectors kept in memory (RAG_EMBEDDER_QUERY_CACHE): retrieval and the "
        "evidence gate embed each question once, repeated questions not at all; 0 turns the cache off.")
    embedder_cache_dir: Path | None = Field(
        None, description="Where converted embedder graphs are cached (default ~/.cache/rag-service/onnx)."
    )
    embedder_languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description='Query languages the embedder serves ("en", "zh"); others use BM25 alone. '
        "Set to null (RAG_EMBEDDER_LANGUAGES=null) for a multilingual model.",
    )
    device: str = Field(
        "auto", description='torch device for models (RAG_DEVICE): "auto" (a CUDA GPU if there is one, else the CPU), '
        '"cpu", "cuda", "cuda:1"...')
    embed_batch_tokens: int = Field(
        512, gt=0, description="Padded tokens per embedding batch (small batches are faster on CPU: bench/RESULTS.md).")

    chunk_tokens: int = Field(200, ge=8, description="Chunk size in embedder tokens (RAG_CHUNK_TOKENS).")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between chunks in tokens (RAG_CHUNK_OVERLAP).")
    max_heading_level: int = Field(3, ge=1, le=6, description="Headings up to this level start a new section.")

    include: list[str] = Field(default_factory=list, description="Only files matching these globs.")
    exclude: list[str] = Field(
        default_factory=lambda: [".*", "__pycache__", "node_modules"], description="Skip files matching these globs."
    )
    max_file_mb: float = Field(50.0, gt=0, description="Larger files are reported and skipped (RAG_MAX_FILE_MB).")
    embed_batch_chunks: int = Field(256, gt=0, description="Chunks gathered across files before each embedding call.")
    commit_every_chunks: int = Field(2000, gt=0, description="Commit a generation after this many new chunks.")
    watch: list[Path] = Field(
        default_factory=list, description="Folders `rag serve` keeps the default collection in step with (RAG_WATCH, "
        "a JSON list; `rag serve --watch`): added, changed, moved and deleted files are ingested as they happen.",
    )
    sentence_vectors: bool = Field(
        True, description="Embed each chunk's sentences at ingest and store them (RAG_SENTENCE_VECTORS), so that "
        "answering scores the candidates' sentences without embedding them: about twice the ingest embedding work "
        "and ~0.8 KB per sentence on disk. The Ray engine does not store them yet (answers then embed them).",
    )
    lock_timeout: float = Field(600.0, ge=0, description="Seconds to wait for another writer of the same index.")
    ingest_engine: Literal["local", "ray"] = Field(
        "local", description="Who reads, chunks and embeds files (RAG_INGEST_ENGINE): local (this process) or ray "
        "(a Ray cluster; needs `pip install 'rag-service[ray]'`). Index writes stay in this process either way.",
    )
    ray_address: str | None = Field(
        None, description='Ray cluster for the ray engine (RAG_RAY_ADDRESS): "auto", "ray://host:10001", ...; '
        "unset: start a local Ray instance for the run and stop it after.",
    )
    ray_embed_actors: int = Field(2, ge=1, description="Ray actors that each read files and embed with their own model.")

    # -- answering ---------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages handed to the reader (RAG_TOP_K).")
    dense_depth: int = Field(50, ge=1, description="Dense candidates fused (RAG_DENSE_DEPTH).")
    bm25_depth: int = Field(50, ge=1, description="BM25 candidates fused (RAG_BM25_DEPTH).")
    # Fusion defaults chosen on SQuAD-train articles (development data), see bench/RESULTS.md.
    dense_weight: float = Field(HYBRID_DENSE_WEIGHT, ge=0, description="Weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(HYBRID_BM25_WEIGHT, ge=0, description="Weight of the BM25 ranking in the fusion.")
    rrf_k: int = Field(HYBRID_RRF_K, ge=1, description="Reciprocal-rank-fusion constant.")
    reranker_model: str = Field(
        "cross-encoder/ms-marco-MiniLM-L-6-v2",
        description='Cross-encoder reranker: Hub name or folder; "none" turns reranking off (RAG_RERANKER_MODEL).',
    )
    reranker_backend: Literal["torch", "onnx-int8"] = Field(
        "onnx-int8", description="How the reranker runs (RAG_RERANKER_BACKEND): onnx-int8 (an int8 onnxruntime "
        "graph of the same model, converted once and cached; about 2.3x faster on CPU, same quality within noise, "
        "bench/RESULTS.md) or torch.",
    )
    reranker_languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description='Query languages the reranker serves ("en", "zh"); others keep the retriever\'s order. '
        "Set to null (RAG_RERANKER_LANGUAGES=null) for a multilingual cross-encoder.",
    )
    rerank_retrieval_weight: float | None = Field(
        None, ge=0,
        description="Weight of the retrieval order beside the reranker's in the final order (reciprocal-rank "
        "fusion, k 60); 0 keeps the reranker's order alone; unset: 0 for a reranker you name or the Hub "
        f"gives, {STAND_IN_RERANK_RETRIEVAL_WEIGHT:g} for the one this project ships (RAG_RERANK_RETRIEVAL_WEIGHT).",
    )
    rerank_evidence_weight: float | None = Field(
        None, ge=0,
        description="Weight of the evidence ranking (each candidate's best supporting sentence) in the final "
        "order's reciprocal-rank fusion with the retrieval order and the reranker's (English and other "
        "languages the embedder serves); 0 leaves it out; unset: 0 for a reranker you name or the Hub gives, "
        f"{STAND_IN_RERANK_EVIDENCE_WEIGHT:g} for the one this project ships (RAG_RERANK_EVIDENCE_WEIGHT).",
    )
    rerank_depth: int = Field(20, ge=1, description="Fused candidates the reranker rescores (RAG_RERANK_DEPTH).")
    rerank_confident_depth: int | None = Field(
        # bench/RESULTS.md (adaptive rerank depth): SciFact-train nDCG@10 within 0.2 %, docqa pages unchanged.
        5, ge=1, description="Candidates reranked when the dense and the keyword retrievers rank the same passage "
        "first (RAG_RERANK_CONFIDENT_DEPTH): retrieval is confident, so a quarter of questions rerank 5 instead of "
        "RAG_RERANK_DEPTH; null always reranks RAG_RERANK_DEPTH.")
    reader_model: str = Field(
        "distilbert-base-cased-distilled-squad",
        description="Extractive QA reader: Hub name or folder (RAG_READER_MODEL). Offline, the reader this "
        "project trained and ships; without any, a sentence extractor answers (answer_type \"sentence\").",
    )
    reader_backend: Literal["torch", "onnx-int8"] = Field(
        "onnx-int8", description="How the extractive reader runs (RAG_READER_BACKEND): onnx-int8 (an int8 "
        "onnxruntime graph of the same model, converted once and cached; faster on CPU, bench/RESULTS.md) or torch.",
    )
    reader_widen_below: float = Field(
        # Chosen on SQuAD-train dev questions (bench/reader_granularity.py): the best F1 whose containment
        # is at least the sentence extractor's.
        0.4, ge=0, le=1,
        description="An extractive answer whose span scores below this p(start)·p(end) is widened to the sentence "
        "that holds it (answer_type \"sentence\"): more often right, less exact. 0 keeps every span.",
    )
    reader_rank_weight: float = Field(
        # Chosen on SQuAD-train dev questions in the open setting (bench/reader_open.py): containment of the
        # answer 0.433 ranking by probability, 0.745 by logit less 2 per passage rank.
        2.0, ge=0,
        description="Across passages, a span ranks by its start + end logit less this much per rank of its "
        "passage in the chain's order (RAG_READER_RANK_WEIGHT). 0 ignores passage order.",
    )
    reader_languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description='Question languages the extractive reader serves ("en", "zh"); others are answered with the '
        "best supporting sentence. Set to null (RAG_READER_LANGUAGES=null) for a multilingual reader.",
    )
    default_mode: Literal["extractive", "generative"] = Field(
        # bench/RESULTS.md (docqa section): on the FastAPI docqa dev set generative contains the answer more often
        # (0.55 vs 0.33) with its first token within the chat budget (p50 2.6 s on two cores).
        "generative", description="Reader when a request names none (RAG_DEFAULT_MODE): generative (the local or "
        "API language model, cited) or extractive (a QA model's span: faster, terser).")
    generator_backend: Literal["local", "openai"] = Field(
        "local", description="Who writes generative answers: a local model or an OpenAI-compatible API (RAG_GENERATOR_BACKEND)."
    )
    generator_model: str = Field(
        DEFAULT_LOCAL_GENERATOR,
        description="Local generator (RAG_GENERATOR_MODEL): a Hub GGUF repo, a .gguf file or folder (run by llama.cpp), "
        "or a transformers model (gpt2). Offline, the Qwen2.5-Coder GGUF that PyPI packages ship.",
    )
    generator_gguf_file: str | None = Field(
        DEFAULT_LOCAL_GENERATOR_FILE,
        description="The file of a Hub GGUF repo to use (RAG_GENERATOR_GGUF_FILE): a repo holds every quantisation.",
    )
    generator_threads: int | None = Field(
        None, ge=1, description="llama.cpp threads (RAG_GENERATOR_THREADS); unset: every core this process may use.")
    generator_context_tokens: int = Field(
        4096, ge=512, le=32768, description="llama.cpp context window, prompt plus answer (RAG_GENERATOR_CONTEXT_TOKENS).")
    generator_context_chars: int = Field(
        # bench/RESULTS.md (docqa second pass): 1,000 answers as well as 1,500 on the dev set, 0.25 s sooner.
        1000, ge=200, le=20000,
        description="Passage text in a generative prompt, in characters (RAG_GENERATOR_CONTEXT_CHARS): the sentences "
        "sharing the most words with the question, code blocks whole. About 5 ms per token on two cores (bench/llama_speed.py).")
    generator_min_support: float = Field(
        0.5, ge=0, le=1,
        description="Share of a generated sentence's content words that its cited passages must hold, else the "
        "sentence is dropped (RAG_GENERATOR_MIN_SUPPORT); 0 keeps every sentence.")
    generator_grounded_names: bool = Field(
        # bench/RESULTS.md (docqa third pass): unanswerable abstention up, no answerable question lost.
        True, description="Drop a generated sentence that names a name, number or piece of code (`inline code`, "
        "snake_case, camelCase, 1MB) that no passage or the question holds (RAG_GENERATOR_GROUNDED_NAMES): what small "
        "models invent when the passages lack the answer.")
    generator_retry_top_passage: bool = Field(
        # bench/RESULTS.md (docqa fourth pass).
        True, description="When a generated answer comes out empty (the model declined, or no sentence of it is "
        "supported), ask once more with the top passage alone (RAG_GENERATOR_RETRY_TOP_PASSAGE): small models decline "
        "over several passages when the first one answers.")
    generator_quote: bool = Field(
        True, description="End a generated answer with the documents' best supporting sentence, quoted and cited "
        "(RAG_GENERATOR_QUOTE), unless the answer already says it.")
    generator_evidence_quotes: int = Field(
        # bench/RESULTS.md (docqa third pass): 2 against 1, contains en 0.545 -> 0.580, zh 0.50 -> 0.58, +13 words.
        2, ge=0, le=5, description="How many of the best supporting sentences a generated answer quotes after the "
        "extractive reader's sentence (RAG_GENERATOR_EVIDENCE_QUOTES), each only if the answer does not say it already.")
    generator_max_new_tokens: int = Field(192, ge=1, le=4096, description="Longest generated answer, in tokens (a few sentences).")
    openai_model: str = Field("gpt-4o-mini", description="Model name sent to the OpenAI-compatible API (RAG_OPENAI_MODEL).")
    openai_base_url: str | None = Field(
        None, description="API base URL (RAG_OPENAI_BASE_URL; else the SDK reads OPENAI_BASE_URL). Key: OPENAI_API_KEY."
    )
    openai_timeout: float = Field(60.0, gt=0, description="Seconds per API request.")
    openai_max_retries: int = Field(2, ge=0, description="Retries of a failed API request.")
    # Calibrated on data that is not used for evaluation: see docs/configuration.md and bench/calibrate_abstention.py.
    abstain_evidence: dict[str, float] = Field(
        # bench/calibrate_abstention.py: the highest threshold that still answers 95% of answerable
        # questions (en: SQuAD train articles, zh: CMRC 2018 trial); see bench/RESULTS.md.
        default_factory=lambda: {"en": 0.568, "zh": 0.689, "*": 0.568},
        description="Minimum best-sentence score per query language below which the answer is 'not found'.",
    )
    abstain_heading: float | None = Field(
        # bench/docqa_gate.py on the FastAPI docqa dev set: no unanswerable question's best heading scored above
        # 0.683, an FAQ heading restating a question scores 1.0-1.3; 0.9 leaves a margin and changed no dev answer.
        0.9, ge=0,
        description="A Markdown heading of the passages scoring at least this against the question passes the evidence "
        "gate even when no sentence does (FAQ-style docs put the question in a heading). Null: headings are ignored.")
    abstain_agreement_margin: float | None = Field(
        # bench/calibrate_abstention.py on SQuAD train articles (not an evaluation set): within 0.04 below the
        # threshold with 4 of the top 5 passages from one article, 95.0 → 96.0 % of answerable questions are answered
        # and 80.2 → 79.5 % of unanswerable ones still abstained (k = 3 cost 3 points of abstention); bench/RESULTS.md.
        0.04, ge=0,
        description="A question whose best sentence scores within this margin below RAG_ABSTAIN_EVIDENCE still passes "
        "the evidence gate when RAG_ABSTAIN_AGREEMENT of the top 5 passages come from one document (the retrieval "
        "agrees on a page that covers the question). Null: never.")
    abstain_agreement: int = Field(4, ge=2, le=5, description="Top-5 passages that must share the top passage's "
                                   "document for RAG_ABSTAIN_AGREEMENT_MARGIN to apply.")
    abstain_overrule_margin: float | None = Field(
        # bench/RESULTS.md (docqa section): on the FastAPI dev set, 0.23 above the English threshold (0.798) turns
        # most of the generator's false "not found" answers into quoted answers and overrules no decline on an
        # unanswerable question.
        0.23, ge=0,
        description="When the generator declines or writes nothing the passages support, yet the best supporting "
        "sentence scores at least this much above the language's RAG_ABSTAIN_EVIDENCE threshold, the answer quotes "
        "the documents' sentences instead of saying 'not found' (RAG_ABSTAIN_OVERRULE_MARGIN). Null: the "
        "generator's decline stands.")
    abstain_span: float = Field(0.0, ge=0, le=1, description="Minimum p(start)·p(end) of an extractive answer span.")
    abstain_rerank: float = Field(0.0, ge=0, le=1, description="Minimum reranker score of the best passage.")

    classifier: Literal["auto", "zero-shot", "generator"] = Field(
        "auto",
        description="How POST /v1/classify and /v1/summarize work: with the embedder (zero-shot labels, extractive "
        "summaries) or through the generator; auto uses the generator only when it is an OpenAI-compatible API "
        "(RAG_GENERATOR_BACKEND=openai).",
    )

    # -- generators beyond text answers: images, captions, video --
    image_model: str = Field(
        "stabilityai/sd-turbo",
        description="Text→image: a diffusers repo or folder (RAG_IMAGE_MODEL), e.g. CompVis/stable-diffusion-v1-4.",
    )
    image_steps: int = Field(1, ge=1, le=100, description="Default denoising steps (sd-turbo: 1; SD 1.4: ~30).")
    image_guidance: float = Field(0.0, ge=0, le=30, description="Default guidance scale (sd-turbo: 0; SD 1.4: ~7.5).")
    caption_model: str = Field(
        "microsoft/git-base", description="Image→text captioner: GIT or BLIP, Hub name or folder (RAG_CAPTION_MODEL)."
    )
    video_model: str = Field(
        "damo-vilab/text-to-video-ms-1.7b",
        description="Text→video: any diffusers video pipeline repo or folder (RAG_VIDEO_MODEL), e.g. "
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers.",
    )
    video_steps: int = Field(25, ge=1, le=100, description="Default denoising steps of a video.")
    video_frames: int = Field(16, ge=1, le=64, description="Default frames of a video.")
    media_memory_mb: float | None = Field(
        None, gt=0,
        description="Memory budget of the image, caption and video models (RAG_MEDIA_MEMORY_MB): the least "
        "recently used are unloaded to stay under it. Unset: keep every loaded model.",
    )
    max_jobs: int = Field(8, ge=1, description="Video jobs queued or running at once (HTTP 429 above).")
    answer_slots: int = Field(
        2, ge=1, description="Extractive answers computed at once by the API (RAG_ANSWER_SLOTS); more wait their turn "
        "in arrival order instead of all sharing the cores at once.")
    answer_queue: int = Field(
        256, ge=0, description="Extractive answers that may wait for a slot (RAG_ANSWER_QUEUE); past it, 429.")
    generation_slots: int = Field(
        1, ge=1, description="Generative answers served at once by the API (RAG_GENERATION_SLOTS); more wait their "
        "turn in arrival order. One suits a local model on a few cores; raise it for an OpenAI-compatible API.")
    generation_queue: int = Field(
        8, ge=0, description="Generative answers that may wait for a slot (RAG_GENERATION_QUEUE); past it the API "
        "answers 429 with Retry-After at once.")
    # Limits on what one HTTP request may ask for (HTTP 422 above): they bound the time and memory a caller spends.
    max_image_side: int = Field(1024, ge=64, le=2048, description="Largest image width or height served.")
    max_video_side: int = Field(1024, ge=8, le=2048, description="Largest video width or height served.")
    max_completion_tokens: int = Field(1024, ge=1, le=8192, description="Most tokens one completion may ask for.")

    # -- the HTTP API (`rag serve`) --
    collections_dir: Path = Field(
        Path(".rag-collections"),
        description="Where named collections other than `default` keep their indexes and uploads "
        "(the `default` collection is RAG_INDEX_DIR).",
    )
    api_keys: dict[str, list[str]] | list[str] | None = Field(
        None,
        description='API keys (RAG_API_KEYS): a JSON list of keys allowed everywhere, or {"key": ["collection", ...]} '
        'limiting each key to some collections ("*" for all). Unset: no key needed.',
    )
    max_upload_mb: float = Field(20.0, gt=0, description="Largest accepted upload (HTTP 413 above).")
    host: str = Field("127.0.0.1", description="Address `rag serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `rag serve` listens on.")
