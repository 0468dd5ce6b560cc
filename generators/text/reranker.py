"""Cross-encoder reranker: scores (query, passage) pairs jointly, more precisely than the bi-encoder.

A sentence-transformers `CrossEncoder` by Hub name or local folder, run by
torch ("torch") or as an int8 onnxruntime graph of the same model ("onnx-int8",
converted once and cached: `generators.text.onnx_export`). Cheap constructor;
weights load on `warm_up()` or the first call.

Passages come in retrieval order. With a `retrieval_weight` above 0 the final
order fuses the reranker's ranking with that order by reciprocal rank, so a
reranker trained on another domain corrects the retriever without overruling it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from common.fusion import RRF_K, reciprocal_rank_fusion
from generators import model_names
from generators.text.embedder import plan_batches
from generators.resolve import ResolvedModel, ResolvesModel

if TYPE_CHECKING:
    import onnxruntime
    from sentence_transformers import CrossEncoder
    from transformers import PreTrainedTokenizerBase

RerankerBackend = Literal["torch", "onnx-int8"]


@dataclass(frozen=True)
class RerankResult:
    order: list[int]  # indices into the passages given, best first
    scores: list[float]  # score of each passage given, in the input order (0..1 after the model's activation)


def fused_order(scores: Sequence[float], retrieval_weight: float, k: int = RRF_K) -> list[int]:
    """Indices by reciprocal-rank fusion of the reranker's ranking (weight 1) and the given order
    (`retrieval_weight`; only the weight was tuned, bench/RESULTS.md); 0 leaves the reranker's order as it is.
    Ties keep the given order."""
    by_score = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if retrieval_weight <= 0:
        return by_score
    return [i for i, _ in reciprocal_rank_fusion([by_score, range(len(scores))], [1.0, retrieval_weight], k)]


class CrossEncoderReranker(ResolvesModel):

    role = "reranker"
    def __init__(
        self,
        model: str = model_names.RERANKER.name,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        batch_tokens: int = 256,
        max_length: int = 512,
        retrieval_weight: float = 0.0,
        backend: RerankerBackend = "torch",
        cache_dir: Path | None = None,
        threads: int | None = None,
        setting: str | None = None,
    ) -> None:
        self.model_name = model
        self.backend = backend
        self.cache_dir = cache_dir  # where converted graphs live; None: generators.text.onnx_export.default_cache_dir()
        self.threads = threads  # onnx-int8: threads one call may use; None: onnxruntime's default (every core)
        self.device = device
        self.batch_size = batch_size
        # onnx-int8: pairs are batched by length, each batch padded to at most this many tokens in all. Small
        # batches are faster on CPU (bench/RESULTS.md: 20 pairs one per run 120 ms, all in one batch 208 ms).
        self.batch_tokens = batch_tokens
        self.max_length = max_length
        self.retrieval_weight = retrieval_weight
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._model: CrossEncoder | None = None
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._input_names: list[str] = []
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self.backend == "onnx-int8":
            self._load_onnx()
            return
        with self._lock:
            if self._model is not None:
                return
            import torch
            from sentence_transformers import CrossEncoder

            # Shipped rerankers are stored in float16 to stay small; CPUs compute in float32.
            dtype = torch.float32 if self.device == "cpu" else "auto"
            self._model = CrossEncoder(
                str(self.resolved.path), device=self.device, max_length=self.max_length, local_files_only=True,
                model_kwargs={"dtype": dtype},
            )

    def _load_onnx(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            from transformers import AutoTokenizer

            from generators.text.onnx_export import cpu_session, graph_inputs, int8_onnx_path

            folder = self.resolved.path
            path = int8_onnx_path(folder, self.cache_dir, head="classifier")
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self._input_names = graph_inputs(self._tokenizer)
            self._session = cpu_session(path, threads=self.threads)

    @property
    def model(self) -> CrossEncoder:
        self.warm_up()
        assert self._model is not None
        return self._model

    def run(self, query: str, passages: Sequence[str], *, retrieval_weight: float | None = None) -> RerankResult:
        """Score `passages` (in retrieval order) against `query`; `retrieval_weight` overrides the default."""
        if not passages:
            return RerankResult([], [])
        if self.backend == "onnx-int8":
            scores = self._predict_onnx(query, passages)
        else:
            raw = self.model.predict(
                [(query, text) for text in passages],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            scores = np.asarray(raw, dtype=np.float32).reshape(len(passages), -1)
        # A one-logit model scores relevance directly; a two-class model's second column is "relevant".
        relevance = [float(s) for s in scores[:, -1]]
        weight = self.retrieval_weight if retrieval_weight is None else retrieval_weight
        return RerankResult(fused_order(relevance, weight), relevance)

    def _predict_onnx(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Scores as `CrossEncoder.predict` gives them: a one-logit head through a sigmoid, others as logits."""
        self._load_onnx()
        assert self._session is not None and self._tokenizer is not None
        # Query and passage as the two segments, truncated together, exactly as CrossEncoder tokenises them;
        # batched by length, so that short passages are not padded to the longest one.
        encoded = self._tokenizer([query] * len(passages), list(passages), truncation=True, max_length=self.max_length)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        rows: dict[int, np.ndarray] = {}
        for batch in plan_batches(lengths, self.batch_tokens, self.batch_size):
            padded = self._tokenizer.pad({name: [encoded[name][i] for i in batch] for name in self._input_names},
                                         return_tensors="np")
            feeds = {name: np.asarray(padded[name], dtype=np.int64) for name in self._input_names}
            rows.update(zip(batch, self._session.run(None, feeds)[0], strict=True))
        logits = np.stack([rows[i] for i in range(len(passages))]).astype(np.float32).reshape(len(passages), -1)
        return 1.0 / (1.0 + np.exp(-logits)) if logits.shape[1] == 1 else logits
