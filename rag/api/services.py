"""What the app holds for its lifetime: settings, the shared models, the collections, the metrics."""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from generators.text.embedder import SentenceEmbedder
from rag.api.admission import AnswerQueue
from rag.api.collections import Collections
from rag.api.jobs import JobQueue
from rag.api.keys import KeyStore
from rag.components import (
    ChainModels, build_chain, build_chain_models, build_classifier, build_embedder, build_ingest_pipeline,
    build_media_models, build_summarizer, build_vector_backend,
)
from rag.chain import AskResponse
from rag.router import TaskRouter
from rag.settings import Settings

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Metrics:
    """Prometheus metrics in a registry of the app's own (two apps in one process do not collide)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("rag_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.errors = Counter("rag_http_errors", "HTTP responses with status 4xx or 5xx, by route and status.",
                              ["route", "status"], registry=self.registry)
        self.latency = Histogram("rag_http_request_seconds", "Time to answer an HTTP request, by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stage = Histogram("rag_chain_stage_seconds", "Time per chain stage (retrieve, rerank, evidence, read).",
                               ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.answers = Counter("rag_answers", "Answers by mode and outcome (answered or abstained).",
                               ["mode", "outcome"], registry=self.registry)
        self.notes = Counter("rag_answer_notes", "Operator notes attached to answers (model stand-ins, language "
                             "fallbacks, dropped sentences...); the notes themselves are logged.", ["mode"],
                             registry=self.registry)

    def observe_chain(self, response: AskResponse) -> None:
        """One answer's stage timings, outcome and operator notes (counted here, logged, never shown to end users)."""
        for stage, ms in response.timings_ms.items():
            if stage != "total":
                self.stage.labels(stage).observe(ms / 1000)
        self.answers.labels(response.mode, "abstained" if response.abstained else "answered").inc()
        if response.notes:
            self.notes.labels(response.mode).inc(len(response.notes))
            log.info("answer notes (%s): %s", response.mode, "; ".join(response.notes))


class Services:
    """Built cheaply by the app factory; `warm_up()` (in the lifespan) loads the models and opens the indexes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyStore(settings.api.keys_file)  # re-read when it changes: keys rotate without a restart
        self.embedder: SentenceEmbedder = build_embedder(settings)
        self.models: ChainModels = build_chain_models(settings, self.embedder)
        self.metrics = Metrics()
        self.collections = Collections(
            settings.index.dir, settings.index.collections_dir, backend=build_vector_backend(settings),
            # Uploads are small: they go in with the local engine, on the server's own embedder, even
            # where RAG_INGEST__ENGINE=ray sends `rag ingest` to a cluster.
            make_pipeline=lambda store: build_ingest_pipeline(
                settings.updated({"ingest.engine": "local"}), store, embedder=self.embedder),
            make_chain=lambda reader: build_chain(settings, reader, self.embedder, self.models),
        )
        self.classifier = build_classifier(settings, self.embedder)
        self.summarizer = build_summarizer(settings, self.embedder)
        self.media = build_media_models(settings)  # image, caption, video: loaded on first use
        self.jobs = JobQueue(max_pending=settings.media.max_jobs)
        self.generation = AnswerQueue(slots=settings.api.generation_slots, max_waiting=settings.api.generation_queue)
        self.answering = AnswerQueue(slots=settings.api.answer_slots, max_waiting=settings.api.answer_queue,
                                     expected_seconds=0.6)
        self.router = TaskRouter()
        self.ready = threading.Event()
        self.warm_up_error: str | None = None
        self._stop_watching = threading.Event()
        self._watcher: threading.Thread | None = None

    def watch(self) -> None:
        """Keep the default collection in step with the folders of `RAG_INGEST__WATCH`, on a thread of its own."""
        if not self.settings.ingest.watch or self._watcher is not None:
            return
        from ingest.watch import watch_folders

        folders = list(self.settings.ingest.watch)
        default = self.collections.get("default", create=True)
        self._watcher = threading.Thread(
            target=watch_folders, name="watch", daemon=True,
            args=(folders, lambda: default.sync(folders)),
            kwargs={"ignore": [default.index_dir, self.settings.index.collections_dir], "stop": self._stop_watching},
        )
        self._watcher.start()

    def admit(self, mode: str | None) -> AbstractContextManager[None]:
        """A slot for an answer in `mode` (the default mode if None): generative answers and the others queue apart."""
        generative = (mode or self.settings.reader.default_mode) == "generative"
        return (self.generation if generative else self.answering).admit()

    def warm_up(self) -> None:
        try:
            self.models.warm_up(self.settings.reader.default_mode)
            default = self.collections.get("default")
            if default.exists:
                default.refresh()
        except Exception as exc:  # noqa: BLE001 - reported by /healthz instead of killing the server
            self.warm_up_error = f"{type(exc).__name__}: {exc}"
            log.exception("warm-up failed")
            return
        self.ready.set()

    def close(self) -> None:
        self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)  # a sync in progress finishes its commit
        self.jobs.close()
        self.collections.close()
