"""Builds the objects of `ingest/`, `index/` and `generators/` from `Settings`, with plain arguments."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from generators.media.captioner import ImageCaptioner
from generators.text.classifier import GeneratorClassifier, ZeroShotClassifier
from generators.text.embedder import SentenceEmbedder
from generators.text.generative_reader import GenerativeReader
from generators.media.images import TextToImage
from generators.model_manager import ModelManager
from generators.text.qa_reader import ExtractiveReader
from generators.text.reading import Reader
from generators.text.reranker import CrossEncoderReranker
from generators.resolve import ModelUnavailableError, resolve_device
from generators.text.sentence_reader import SentenceReader
from generators.text.summarizer import ExtractiveSummarizer, GeneratorSummarizer
from generators.text.llama_generator import LlamaCppGenerator
from generators.text.text_generators import LocalGenerator, OpenAIGenerator, TextGenerator, is_gguf_model
from generators.media.video import TextToVideo
from index.backends import FaissBackend, MilvusBackend, VectorBackend
from index.bm25 import analyze
from index.faiss_store import FaissIndexConfig
from index.store import BackendMismatchError, IndexReader, IndexStore
from ingest.chunking import Chunker
from ingest.pipeline import IngestPipeline, ProgressCallback
from rag.chain import AbstentionThresholds, AskChain
from rag.retriever import HybridRetriever
from rag.settings import STAND_IN_RERANK_EVIDENCE_WEIGHT, STAND_IN_RERANK_RETRIEVAL_WEIGHT, Settings, env_name

log = logging.getLogger(__name__)


def build_embedder(settings: Settings) -> SentenceEmbedder:
    return SentenceEmbedder(
        settings.embedder.model,
        backend=settings.embedder.backend,
        device=resolve_device(settings.runtime.device),
        batch_tokens=settings.embedder.batch_tokens,
        threads=settings.embedder.threads,
        processes=settings.embedder.processes,
        cache_dir=settings.embedder.cache_dir,
        setting=env_name("embedder", "model"),
        query_cache_size=settings.embedder.query_cache,
    )


def build_retriever(settings: Settings, reader: IndexReader, embedder: SentenceEmbedder, **overrides) -> HybridRetriever:
    options = dict(
        top_k=settings.retrieval.top_k,
        dense_depth=settings.retrieval.dense_depth,
        bm25_depth=settings.retrieval.bm25_depth,
        dense_weight=settings.retrieval.dense_weight,
        bm25_weight=settings.retrieval.bm25_weight,
        rrf_k=settings.retrieval.rrf_k,
        dense_languages=settings.embedder.languages,
    )
    options.update(overrides)
    return HybridRetriever(reader, embedder, **options)


def build_reranker(settings: Settings) -> tuple[CrossEncoderReranker | None, str | None]:
    """The reranker, or None and the reason it is skipped (logged once here, carried in every response)."""
    if settings.rerank.model.strip().lower() in {"", "none"}:
        return None, "reranking is off (RAG_RERANK__MODEL=none): passages are in retrieval order"
    reranker = CrossEncoderReranker(settings.rerank.model, device=resolve_device(settings.runtime.device),
                                    retrieval_weight=settings.rerank.retrieval_weight or 0.0,
                                    backend=settings.rerank.backend, threads=settings.runtime.onnx_threads,
                                    setting=env_name("rerank", "model"))
    try:
        reranker.resolved
    except ModelUnavailableError as exc:
        note = f"no reranker: {settings.rerank.model!r} is not available here (set RAG_RERANK__MODEL); " \
               "the top passages are ordered by their best supporting sentence instead"
        log.warning("%s (%s)", note, exc.reason or "not found")
        return None, note
    if settings.rerank.retrieval_weight is None and reranker.resolved.stand_in:
        reranker.retrieval_weight = STAND_IN_RERANK_RETRIEVAL_WEIGHT
    if reranker.resolved.stand_in:
        return reranker, _stand_in_note("reranker", settings.rerank.model, env_name("rerank", "model"), reranker.resolved.path)
    return reranker, None


def _stand_in_note(role: str, name: str, setting: str, path: Path) -> str:
    note = (f"{role}: {name!r} is not available here (set {setting}); using the {role} this project trained "
            f"and ships ({path.name}, see its model card)")
    log.warning(note)
    return note


def build_extractive_reader(settings: Settings, sentence_reader: SentenceReader) -> tuple[Reader, str | None]:
    """The QA model if it resolves, else the sentence extractor and a note saying so."""
    reader = ExtractiveReader(settings.reader.model, device=resolve_device(settings.runtime.device),
                              widen_below=settings.reader.widen_below, passage_rank_weight=settings.reader.rank_weight,
                              backend=settings.reader.backend, threads=settings.runtime.onnx_threads,
                              setting=env_name("reader", "model"))
    try:
        reader.resolved
    except ModelUnavailableError:
        note = f"no extractive QA model: {settings.reader.model!r} is not available here (set RAG_READER__MODEL); " \
               "answers are the best supporting sentence"
        log.warning(note)
        return sentence_reader, note
    if reader.resolved.stand_in:
        return reader, _stand_in_note("extractive reader", settings.reader.model, env_name("reader", "model"),
                                      reader.resolved.path)
    return reader, None


def build_generator(settings: Settings) -> TextGenerator:
    """The configured generator; cheap (weights load on first use)."""
    if settings.generator.backend == "openai":
        return OpenAIGenerator(
            settings.openai.model,
            base_url=settings.openai.base_url,
            timeout=settings.openai.timeout,
            max_retries=settings.openai.max_retries,
        )
    if is_gguf_model(settings.generator.model):
        gguf_file = settings.generator.gguf_file if not settings.generator.model.lower().endswith(".gguf") else None
        return LlamaCppGenerator(settings.generator.model, gguf_file=gguf_file, threads=settings.generator.threads,
                                 context_tokens=settings.generator.context_tokens, setting=env_name("generator", "model"),
                                 model_cache=settings.runtime.model_cache)
    return LocalGenerator(settings.generator.model, device=resolve_device(settings.runtime.device),
                          setting=env_name("generator", "model"))


def build_generative_reader(settings: Settings, generator: TextGenerator | None = None) -> GenerativeReader:
    return GenerativeReader(generator or build_generator(settings), max_new_tokens=settings.generator.max_new_tokens,
                            max_context_chars=settings.generator.context_chars,
                            min_support=settings.generator.min_support,
                            grounded_names=settings.generator.grounded_names,
                            retry_top_passage=settings.generator.retry_top_passage)


def build_media_models(settings: Settings) -> ModelManager:
    """The image, caption and video models, loaded on first use and unloaded to fit RAG_MEDIA__MEMORY_MB."""
    budget = None if settings.media.memory_mb is None else int(settings.media.memory_mb * 2**20)
    manager = ModelManager(budget)
    media, device = settings.media, resolve_device(settings.runtime.device)
    manager.register("image", lambda: TextToImage(media.image_model, device=device, default_steps=media.image_steps,
                                                  default_guidance=media.image_guidance,
                                                  setting=env_name("media", "image_model")))
    manager.register("caption", lambda: ImageCaptioner(media.caption_model, device=device,
                                                       setting=env_name("media", "caption_model")))
    manager.register("video", lambda: TextToVideo(media.video_model, device=device, default_steps=media.video_steps,
                                                  default_frames=media.video_frames,
                                                  setting=env_name("media", "video_model")))
    return manager


@dataclass
class ChainModels:
    """The models a chain uses, built once and shared by every index snapshot and collection a process serves."""

    evidence: SentenceReader
    readers: dict[str, Reader]
    reranker: CrossEncoderReranker | None
    notes: list[str]
    generator: TextGenerator  # the generative reader's, also serving plain completions

    def warm_up(self, default_mode: str = "extractive") -> None:
        """Load what answers every request now; the generator too when it is the default mode's (else it loads
        on its first use: it may never be asked)."""
        self.evidence.embedder.warm_up()
        for name, reader in self.readers.items():
            if name != "generative" or name == default_mode:
                reader.warm_up()
        if self.reranker is not None:
            self.reranker.warm_up()


def build_chain_models(settings: Settings, embedder: SentenceEmbedder) -> ChainModels:
    sentence_reader = SentenceReader(embedder, analyze)
    extractive, reader_note = build_extractive_reader(settings, sentence_reader)
    reranker, reranker_note = build_reranker(settings)
    generator = build_generator(settings)
    readers: dict[str, Reader] = {"extractive": extractive, "generative": build_generative_reader(settings, generator)}
    return ChainModels(sentence_reader, readers, reranker, [n for n in (reranker_note, reader_note) if n], generator)


def rerank_evidence_weight(settings: Settings, reranker: CrossEncoderReranker | None) -> float:
    """The setting, else the weight chosen for the reranker this project ships (0 for any other)."""
    if settings.rerank.evidence_weight is not None:
        return settings.rerank.evidence_weight
    return STAND_IN_RERANK_EVIDENCE_WEIGHT if reranker is not None and reranker.resolved.stand_in else 0.0


def build_chain(settings: Settings, index: IndexReader, embedder: SentenceEmbedder,
                models: ChainModels | None = None) -> AskChain:
    models = models or build_chain_models(settings, embedder)
    return AskChain(
        build_retriever(settings, index, embedder),
        models.readers,
        models.evidence,
        reranker=models.reranker,
        top_k=settings.retrieval.top_k,
        rerank_depth=settings.rerank.depth,
        rerank_confident_depth=settings.rerank.confident_depth,
        thresholds=AbstentionThresholds(
            evidence=settings.abstain.evidence, span=settings.abstain.span, rerank=settings.abstain.rerank,
            heading=settings.abstain.heading, overrule_margin=settings.abstain.overrule_margin,
            agreement_margin=settings.abstain.agreement_margin, agreement=settings.abstain.agreement,
        ),
        default_mode=settings.reader.default_mode if settings.reader.default_mode in models.readers else "extractive",
        extractive_languages=settings.reader.languages,
        rerank_languages=settings.rerank.languages,
        rerank_evidence_weight=rerank_evidence_weight(settings, models.reranker),
        quote_evidence=settings.generator.quote,
        evidence_quotes=settings.generator.evidence_quotes,
        quote_reader=models.readers["extractive"] if models.readers["extractive"] is not models.evidence else None,
        notes=list(models.notes),
    )


def _text_tasks_use_generator(settings: Settings) -> bool:
    return settings.generator.classifier == "generator" or (settings.generator.classifier == "auto" and settings.generator.backend == "openai")


def build_classifier(settings: Settings, embedder: SentenceEmbedder) -> ZeroShotClassifier | GeneratorClassifier:
    zero_shot = ZeroShotClassifier(embedder)
    return GeneratorClassifier(build_generator(settings), zero_shot) if _text_tasks_use_generator(settings) else zero_shot


def build_summarizer(settings: Settings, embedder: SentenceEmbedder) -> ExtractiveSummarizer | GeneratorSummarizer:
    if _text_tasks_use_generator(settings):
        return GeneratorSummarizer(build_generator(settings))
    return ExtractiveSummarizer(embedder)


def build_chunker(settings: Settings, embedder: SentenceEmbedder) -> Chunker:
    tokenizer = embedder.tokenizer
    # The model reads at most max_tokens including its two special tokens.
    chunk_tokens = min(settings.ingest.chunk_tokens, embedder.max_tokens - 2)

    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False, verbose=False))

    return Chunker(
        count_tokens,
        chunk_tokens=chunk_tokens,
        overlap_tokens=min(settings.ingest.chunk_overlap, chunk_tokens - 1),
        max_heading_level=settings.ingest.max_heading_level,
        tokenizer_name=embedder.model_name,
    )


def build_vector_backend(settings: Settings) -> VectorBackend:
    if settings.index.backend == "milvus":
        return MilvusBackend(uri=settings.milvus.uri, token=settings.milvus.token,
                             collection=settings.milvus.collection, index_type=settings.milvus.index_type)
    config = FaissIndexConfig(
        kind=settings.faiss.index, hnsw_from=settings.faiss.hnsw_from, ivfpq_from=settings.faiss.ivfpq_from,
        hnsw_m=settings.faiss.hnsw_m, hnsw_ef_construction=settings.faiss.hnsw_ef_construction,
        hnsw_ef_search=settings.faiss.hnsw_ef_search, hnsw_storage=settings.faiss.hnsw_storage,
        hnsw_pca_dim=settings.faiss.hnsw_pca_dim, hnsw_reorder=settings.faiss.hnsw_reorder,
        ivf_lists=settings.faiss.ivf_lists, ivf_nprobe=settings.faiss.ivf_nprobe, pq_bytes=settings.faiss.pq_bytes,
        refine=settings.faiss.refine,
    )
    return FaissBackend(config=config, mmap=settings.faiss.mmap)


def build_store(settings: Settings, index_dir: Path | None = None) -> IndexStore:
    return IndexStore(index_dir or settings.index.dir, backend=build_vector_backend(settings))


def backend_mismatch_advice(error: BackendMismatchError) -> str:
    """What a user does about an index kept in another backend: in settings and commands, which only `rag` knows."""
    return (f"The index at {error.root} keeps its vectors in {error.recorded}, but the backend asked for is "
            f"{error.wanted}. Use RAG_INDEX__BACKEND={error.recorded} (or --backend {error.recorded}), or copy the "
            f"vectors over without re-embedding: rag index migrate --to {error.wanted} --index {error.root}")


def _ingest_engine(settings: Settings) -> tuple[type[IngestPipeline], dict]:
    """The ingestion engine RAG_INGEST__ENGINE names, and the options only that engine takes."""
    if settings.ingest.engine == "ray":
        from ingest.ray_engine import INSTALL_HINT, RayIngestPipeline, ray_installed

        if not ray_installed():  # before any model loads: a one-line error, not a traceback mid-run
            raise ValueError(f"RAG_INGEST__ENGINE=ray needs Ray Data, which is not installed here: {INSTALL_HINT}")
        return RayIngestPipeline, {"address": settings.ingest.ray_address, "embed_actors": settings.ingest.ray_embed_actors}
    return IngestPipeline, {}


def build_ingest_pipeline(
    settings: Settings, store: IndexStore, *, on_progress: ProgressCallback | None = None,
    embedder: SentenceEmbedder | None = None,
) -> IngestPipeline:
    engine, engine_options = _ingest_engine(settings)
    embedder = embedder or build_embedder(settings)
    return engine(
        store,
        embedder,
        build_chunker(settings, embedder),
        include=settings.ingest.include,
        exclude=settings.ingest.exclude,
        max_file_bytes=int(settings.ingest.max_file_mb * 1024 * 1024),
        embed_batch_chunks=settings.ingest.batch_chunks,
        commit_every_chunks=settings.ingest.commit_every_chunks,
        lock_timeout=settings.index.lock_timeout,
        sentence_vectors=settings.ingest.sentence_vectors,
        on_progress=on_progress,
        **engine_options,
    )
