"""Sentence embedder: normalised vectors, batched by token length.

Cheap constructor; the model loads on `warm_up()` or the first call. Texts are
sorted by length and cut into batches under a token budget, so short chunks
are not padded to the length of long ones.

Backends: "torch" (fp32 sentence-transformers), "int8" (torch with int8 Linear
layers) and "onnx-int8" (an int8 onnxruntime graph, `generators.text.onnx_export`):
texts are tokenised once, and batches run on `threads` single-threaded
onnxruntime calls in parallel, which on small CPUs beats one call spread over
all cores. A batch's vectors depend only on that batch, so a given input and
batch plan always give the same vectors, whatever thread ran them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from generators import model_names
from generators.resolve import ResolvedModel, ResolvesModel

if TYPE_CHECKING:
    import onnxruntime
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

EmbedderBackend = Literal["torch", "int8", "onnx-int8"]


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    tokens: int  # tokens embedded, padding excluded


def plan_batches(lengths: Sequence[int], batch_tokens: int, max_batch: int) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size stays under `batch_tokens`."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        # Sorted longest first, so a batch's first item sets its padded length.
        if current and (len(current) >= max_batch or longest * (len(current) + 1) > batch_tokens):
            batches.append(current)
            current = []
        if not current:
            longest = max(lengths[i], 1)
        current.append(i)
    if current:
        batches.append(current)
    return batches


class SentenceEmbedder(ResolvesModel):
    """A sentence-transformers bi-encoder behind one `embed()` call."""

    role = "embedder"

    def __init__(
        self,
        model: str = model_names.EMBEDDER.name,
        *,
        backend: EmbedderBackend = "torch",
        device: str = "cpu",
        batch_tokens: int = 512,
        max_batch: int = 64,
        threads: int | None = None,
        processes: int = 1,
        cache_dir: Path | None = None,
        setting: str | None = None,
        query_cache_size: int = 1024,
    ) -> None:
        self.model_name = model
        self.backend = backend
        self.device = device
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self.threads = threads  # parallel batches of the onnx backend; None: the cores this process may use
        # Worker processes for large inputs (ingestion), each with its own copy of the model on one core;
        # short inputs (queries) never leave this process.
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self.cache_dir = cache_dir  # where converted graphs live; None: generators.text.onnx_export.default_cache_dir()
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._model: SentenceTransformer | None = None
        self._session: onnxruntime.InferenceSession | None = None
        self._encode_tokenizer: PreTrainedTokenizerBase | None = None
        self._input_names: list[str] = []
        self._pooling: dict | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._lock = threading.Lock()
        # Query vectors, most recent last: one question is embedded by retrieval and again by the evidence
        # gate, and chat users repeat and rephrase questions.
        self.query_cache_size = query_cache_size
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()

    # -- resolution and loading -------------------------------------------------
    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The model's tokenizer alone (no weights loaded), for counting tokens."""
        if self._tokenizer is None:
            if self._model is not None:
                self._tokenizer = self._model.tokenizer
            else:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.resolved.path))
        return self._tokenizer

    def warm_up(self) -> None:
        if self.backend == "onnx-int8":
            self._load_onnx()
            return
        self._load_torch()

    def _load_torch(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.resolved.path), device=self.device, local_files_only=True)
            model.eval()
            if self.backend == "int8":
                from generators.text.quantize import quantize_linear_int8

                quantize_linear_int8(model)
            self._model = model
            self._tokenizer = model.tokenizer

    def _load_onnx(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            from transformers import AutoTokenizer

            from generators.text.onnx_export import graph_inputs, int8_onnx_path

            folder = self.resolved.path
            self._pooling = _pooling_config(folder)
            # A tokenizer of its own: embedding may run on another thread than the chunker's token
            # counting, and a fast tokenizer must not change its truncation under a concurrent caller.
            self._encode_tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self._input_names = graph_inputs(self._encode_tokenizer)
            path = int8_onnx_path(folder, self.cache_dir)
            options = onnxruntime.SessionOptions()
            # One thread per call; parallelism comes from running `threads` batches at once.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model (fp32, or int8 for the "int8" backend); loaded on first use."""
        self._load_torch()
        assert self._model is not None
        return self._model

    @property
    def dimension(self) -> int:
        if self.backend == "onnx-int8":
            self._load_onnx()
            assert self._pooling is not None
            return int(self._pooling["dimension"])
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; longer text is truncated by the model."""
        if self._model is not None:
            return int(self._model.max_seq_length)
        config = self.resolved.path / "sentence_bert_config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("max_seq_length", 512))
        return int(getattr(self.tokenizer, "model_max_length", 512) or 512)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identity of the vectors this embedder produces: model weights and backend (hashed once)."""
        digest = hashlib.sha1()
        digest.update(self.model_name.encode())
        digest.update(self.backend.encode())
        if self.backend == "onnx-int8":
            from generators.text.onnx_export import RECIPE_VERSION

            digest.update(RECIPE_VERSION.encode())
        folder = self.resolved.path
        for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
            path = folder / name
            if path.is_file():
                digest.update(path.read_bytes())
        for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            with weights.open("rb") as handle:
                digest.update(handle.read(1 << 22))  # a fine-tune changes the first block too
            digest.update(str(weights.stat().st_size).encode())
        return f"{Path(self.model_name).name}:{self.backend}:{digest.hexdigest()[:12]}"

    # -- embedding ----------------------------------------------------------------
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        if self.processes > 1 and len(texts) >= 2 * self.max_batch:
            return self._embed_in_processes(texts)
        if self.backend == "onnx-int8":
            return self._embed_onnx(texts)
        model = self.model
        if not texts:
            return EmbeddingResult(np.zeros((0, self.dimension), dtype=np.float32), 0)
        cap = self.max_tokens
        lengths = [min(n, cap) for n in self.count_tokens(texts)]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for batch in plan_batches(lengths, self.batch_tokens, self.max_batch):
            vectors = model.encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[batch] = vectors
        return EmbeddingResult(out, int(sum(lengths)))

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one query (read-only), from the cache of recent queries when it is there."""
        with self._queries_lock:
            vector = self._queries.get(text)
            if vector is not None:
                self._queries.move_to_end(text)
                return vector
        vector = self.embed([text]).vectors[0]
        vector.flags.writeable = False  # shared by every caller that asks for the same query
        if self.query_cache_size > 0:
            with self._queries_lock:
                self._queries[text] = vector
                while len(self._queries) > self.query_cache_size:
                    self._queries.popitem(last=False)
        return vector

    # -- worker processes -------------------------------------------------------------
    def _embed_in_processes(self, texts: Sequence[str]) -> EmbeddingResult:
        """Batches planned here, embedded by the worker processes: the same batches give the same vectors."""
        lengths = [min(n, self.max_tokens) for n in self.count_tokens(texts)]
        batches = plan_batches(lengths, self.batch_tokens, self.max_batch)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        results = self._process_pool().map(_embed_in_worker, [[texts[i] for i in batch] for batch in batches])
        for batch, vectors in zip(batches, results, strict=True):
            out[batch] = vectors
        return EmbeddingResult(out, int(sum(lengths)))

    def _process_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                import multiprocessing

                # spawn: a forked copy of a process with torch/onnxruntime threads running can deadlock.
                worker = dict(model=str(self.resolved.path), backend=self.backend, device="cpu",
                              batch_tokens=self.batch_tokens, max_batch=self.max_batch, threads=1,
                              cache_dir=self.cache_dir, setting=self.setting)
                self._pool = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=(worker,),
                )
            return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    # -- the onnxruntime backend --------------------------------------------------------
    def _embed_onnx(self, texts: Sequence[str]) -> EmbeddingResult:
        self._load_onnx()
        assert self._session is not None and self._pooling is not None
        if not texts:
            return EmbeddingResult(np.zeros((0, self.dimension), dtype=np.float32), 0)
        # Tokenised once: the same ids plan the batches and feed the model.
        ids = self._encode_tokenizer(list(texts), add_special_tokens=True, truncation=True,
                                     max_length=self.max_tokens, return_attention_mask=False,
                                     return_token_type_ids=False)["input_ids"]
        lengths = [len(row) for row in ids]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)

        def run(batch: list[int]) -> None:
            out[batch] = self._forward([ids[i] for i in batch])

        batches = plan_batches(lengths, self.batch_tokens, self.max_batch)
        workers = min(len(batches), self.threads or _available_cores())
        if workers <= 1:
            for batch in batches:
                run(batch)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
                for _ in pool.map(run, batches):  # re-raises a batch's error
                    pass
        return EmbeddingResult(out, int(sum(lengths)))

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        """Pooled, L2-normalised vectors of one padded batch of token ids."""
        assert self._session is not None and self._pooling is not None
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), self._encode_tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        states = self._session.run(None, {name: feeds[name] for name in self._input_names})[0]
        vectors = _pool(states, mask, self._pooling["mode"])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


_worker: SentenceEmbedder | None = None


def _start_worker(options: dict) -> None:
    """Runs once in each worker process: one core, one model."""
    global _worker
    import torch

    torch.set_num_threads(1)
    _worker = SentenceEmbedder(**options)
    _worker.warm_up()


def _embed_in_worker(texts: list[str]) -> np.ndarray:
    assert _worker is not None
    return _worker.embed(texts).vectors


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _pooling_config(folder: Path) -> dict:
    """How a sentence-transformers folder pools token states; only Transformer → Pooling (→ Normalize) is supported."""
    modules_file = folder / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else []
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unsupported:
        raise ValueError(
            f"The onnx-int8 embedder backend supports Transformer, Pooling and Normalize modules; {folder} also has "
            f"{unsupported}. Use the int8 (or torch) backend for this model."
        )
    pooling = next((m for m in modules if m["type"].endswith("Pooling")), None)
    config = json.loads((folder / pooling["path"] / "config.json").read_text()) if pooling else {}
    modes = [mode for mode in ("cls_token", "max_tokens", "mean_tokens") if config.get(f"pooling_mode_{mode}")]
    if len(modes) > 1 or (config and not modes and any(k.startswith("pooling_mode") and v for k, v in config.items())):
        raise ValueError(f"Pooling {config} is not supported by the onnx-int8 backend; use the int8 backend.")
    dimension = config.get("word_embedding_dimension") or json.loads((folder / "config.json").read_text())["hidden_size"]
    return {"mode": modes[0] if modes else "mean_tokens", "dimension": int(dimension)}


def _pool(states: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls_token":
        return states[:, 0].astype(np.float32)
    weights = mask[..., None].astype(np.float32)
    if mode == "max_tokens":
        return np.where(weights > 0, states, -1e9).max(axis=1)
    return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
