"""Sentence embedder: normalised vectors, batched by token length.

Cheap constructor; the model loads on `warm_up()` or the first call. Texts are
sorted by length and cut into batches under a token budget, so short chunks
are not padded to the length of long ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from generators.resolve import ResolvedModel, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

EmbedderBackend = Literal["torch", "int8"]
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


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


class SentenceEmbedder:
    """A sentence-transformers bi-encoder behind one `embed()` call."""

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDER,
        *,
        backend: EmbedderBackend = "torch",
        device: str = "cpu",
        batch_tokens: int = 8192,
        max_batch: int = 64,
        setting: str = "RAG_EMBEDDER_MODEL",
    ) -> None:
        self.model_name = model
        self.backend = backend
        self.device = device
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._model: SentenceTransformer | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._lock = threading.Lock()

    # -- resolution and loading -------------------------------------------------
    @property
    def resolved(self) -> ResolvedModel:
        if self._resolved is None:
            self._resolved = resolve_model(self.model_name, role="embedder", setting=self.setting)
        return self._resolved

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
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.resolved.path), device=self.device, local_files_only=True)
            model.eval()
            if self.backend == "int8":
                from generators.quantize import quantize_linear_int8

                quantize_linear_int8(model)
            self._model = model
            self._tokenizer = model.tokenizer

    @property
    def model(self) -> SentenceTransformer:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def dimension(self) -> int:
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
        return self.embed([text]).vectors[0]
