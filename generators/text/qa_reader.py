"""Extractive reader: an `AutoModelForQuestionAnswering` picks the answer span out of the passages.

transformers 5 has no `question-answering` pipeline any more, so the span
decoding lives here: passages are cut into overlapping token windows (stride),
every window is scored in length-sorted batches, and the best span by
p(start)·p(end) — context tokens only, end ≥ start, at most
`max_answer_tokens` long — is each window's candidate. Across windows and
passages, candidates rank by start + end logit less a penalty per rank of
their passage: per-window probabilities are not comparable (a passage without
the answer still offers a confident "best" span), logits are, and the chain's
passage order is evidence too. Offsets map the span back to characters of the
passage and from there to the document.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from generators import model_names
from generators.text.reading import ReaderPassage, ReaderResult, ReaderSpan, SpanReader
from generators.resolve import ResolvedModel, ResolvesModel
from generators.text.sentence_reader import sentence_of

if TYPE_CHECKING:
    import onnxruntime
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# torch: the checkpoint in float32; onnx-int8: its int8 ONNX graph (generators.text.onnx_export), faster on CPUs.
ReaderBackend = Literal["torch", "onnx-int8"]


@dataclass(frozen=True)
class TokenSpan:
    start: int  # token indices within one window, inclusive
    end: int
    score: float  # p(start) · p(end), each softmaxed over the window's context tokens
    logit: float  # start logit + end logit, unnormalised


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    exp = np.exp(shifted)
    return exp / exp.sum()


def best_token_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_mask: np.ndarray,
    *,
    max_answer_tokens: int,
    top_n: int = 5,
) -> list[TokenSpan]:
    """The `top_n` best spans of one window, restricted to context tokens, best first."""
    if not context_mask.any():
        return []
    masked_start = np.where(context_mask, start_logits, -np.inf)
    masked_end = np.where(context_mask, end_logits, -np.inf)
    p_start = _softmax(masked_start)
    p_end = _softmax(masked_end)
    joint = np.outer(p_start, p_end)
    # Keep end ≥ start and end - start < max_answer_tokens: a band above the diagonal.
    joint = np.triu(joint) - np.triu(joint, k=max_answer_tokens)
    flat = joint.ravel()
    n = min(top_n, int(np.count_nonzero(flat)))
    if n == 0:
        return []
    best = np.argpartition(-flat, n - 1)[:n]
    best = best[np.argsort(-flat[best], kind="stable")]
    width = joint.shape[1]
    spans = []
    for i in best:
        start, end = int(i // width), int(i % width)
        spans.append(TokenSpan(start, end, float(flat[i]), float(start_logits[start] + end_logits[end])))
    return spans


@dataclass(frozen=True)
class SpanCandidate:
    """A span of one passage, with both ways of scoring it."""

    passage: int  # position of the passage in the list the reader was given (the chain's rank)
    start: int  # character offsets into the passage text
    end: int
    probability: float  # p(start)·p(end) within its window: calibrated, but not comparable across windows
    logit: float  # start + end logit: comparable across windows and passages


class ExtractiveReader(SpanReader, ResolvesModel):
    """Answer with the best span of the passages, as a SQuAD-trained reader does."""

    role = "extractive reader"

    answer_type = "span"

    def __init__(
        self,
        model: str = model_names.READER.name,
        *,
        device: str = "cpu",
        max_seq_len: int = 384,
        stride: int = 128,
        max_question_tokens: int = 64,
        max_answer_tokens: int = 30,
        batch_size: int = 16,
        widen_below: float = 0.0,
        passage_rank_weight: float = 0.0,
        setting: str | None = None,
        backend: ReaderBackend = "torch",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.model_name = model
        self.device = device
        self.backend = backend
        self.cache_dir = cache_dir  # where converted graphs live; None: generators.text.onnx_export.default_cache_dir()
        self.threads = threads  # onnx-int8: threads one call may use; None: onnxruntime's default (every core)
        self.max_seq_len = max_seq_len
        self.stride = stride
        self.max_question_tokens = max_question_tokens
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
        # Below this p(start)·p(end), the answer widens to the sentence holding the span (0: never).
        self.widen_below = widen_below
        # Logits a span loses per rank of its passage in the list it is given (0: passage order is ignored).
        self.passage_rank_weight = passage_rank_weight
        self.setting = setting
        self._resolved: ResolvedModel | None = None
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._session: onnxruntime.InferenceSession | None = None
        self._input_names: list[str] = []
        self._lock = threading.Lock()

    def warm_up(self) -> ExtractiveReader:
        if self.backend == "onnx-int8" and self.device == "cpu":
            self._load_onnx()
            return self
        with self._lock:
            if self._model is not None:
                return self
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            path = str(self.resolved.path)
            tokenizer = AutoTokenizer.from_pretrained(path)
            if not tokenizer.is_fast:
                raise ValueError(f"the reader {self.model_name!r} needs a fast tokenizer (offset mapping)")
            import torch

            # Shipped readers are stored in float16 to stay small; CPUs compute in float32.
            dtype = torch.float32 if self.device == "cpu" else "auto"
            model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=dtype).to(self.device)
            model.eval()
            self._tokenizer = tokenizer
            self._model = model
        return self

    def _load_onnx(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            from transformers import AutoTokenizer

            from generators.text.onnx_export import cpu_session, graph_inputs, int8_onnx_path

            folder = self.resolved.path
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            if not tokenizer.is_fast:
                raise ValueError(f"the reader {self.model_name!r} needs a fast tokenizer (offset mapping)")
            path = int8_onnx_path(folder, self.cache_dir, head="qa")
            session = cpu_session(path, threads=self.threads)
            # What the graph kept of the tokenizer's inputs (DistilBERT ignores token types: the export drops them).
            kept = {i.name for i in session.get_inputs()}
            self._input_names = [name for name in graph_inputs(tokenizer) if name in kept]
            self._session = session
            self._tokenizer = tokenizer

    def _logits(self, features: dict[str, list]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits (batch × tokens, float32) of padded windows."""
        self.warm_up()
        if self._session is not None:
            padded = self.tokenizer.pad(features, return_tensors="np")
            inputs = {name: padded[name].astype(np.int64) for name in self._input_names}
            starts, ends = self._session.run(["start_logits", "end_logits"], inputs)
            return starts.astype(np.float32), ends.astype(np.float32)
        import torch

        padded = self.tokenizer.pad(features, return_tensors="pt")
        with torch.inference_mode():
            output = self.model(**{k: v.to(self.device) for k, v in padded.items()})
        return output.start_logits.float().cpu().numpy(), output.end_logits.float().cpu().numpy()

    @classmethod
    def from_loaded(cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, **settings) -> ExtractiveReader:
        """A reader over a model already in memory (e.g. one being fine-tuned, evaluated between steps)."""
        reader = cls(getattr(model, "name_or_path", "") or "in-memory model", **settings)
        reader._model, reader._tokenizer = model, tokenizer
        reader.device = str(next(model.parameters()).device)
        return reader

    @property
    def model(self) -> PreTrainedModel:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        self.warm_up()
        assert self._tokenizer is not None
        return self._tokenizer

    def _clip_question(self, question: str) -> str:
        """Keep the question short enough that every window still holds context."""
        encoded = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= self.max_question_tokens:
            return question
        return question[: offsets[self.max_question_tokens - 1][1]]

    def candidates(self, question: str, passages: Sequence[ReaderPassage], *, per_window: int = 5) -> list[SpanCandidate]:
        """The best spans of every window of every passage (a span two overlapping windows share: its best)."""
        tokenizer = self.tokenizer  # loads the model (torch or onnx) on first use
        question = self._clip_question(question.strip())
        windows = tokenizer(
            [question] * len(passages),
            [p.text for p in passages],
            truncation="only_second",
            max_length=self.max_seq_len,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        passage_of_window = windows["overflow_to_sample_mapping"]
        input_names = [name for name in tokenizer.model_input_names if name in windows]
        order = sorted(range(len(passage_of_window)), key=lambda w: len(windows["input_ids"][w]), reverse=True)
        found: dict[tuple[int, int, int], SpanCandidate] = {}
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            starts, ends = self._logits({name: [windows[name][w] for w in batch] for name in input_names})
            for row, window in enumerate(batch):
                sequence_ids = windows.sequence_ids(window)
                offsets = windows["offset_mapping"][window]
                length = len(offsets)
                context = np.array([sequence_ids[t] == 1 for t in range(length)])
                spans = best_token_spans(
                    starts[row, :length], ends[row, :length], context,
                    max_answer_tokens=self.max_answer_tokens, top_n=per_window,
                )
                index = passage_of_window[window]
                for span in spans:
                    char_start, char_end = offsets[span.start][0], offsets[span.end][1]
                    key = (index, char_start, char_end)
                    seen = found.get(key)
                    if char_end > char_start and (seen is None or span.score > seen.probability):
                        found[key] = SpanCandidate(index, char_start, char_end, span.score, span.logit)
        return list(found.values())

    def run(self, question: str, passages: Sequence[ReaderPassage], *, top_k: int = 3,
            history: Sequence[Mapping[str, str]] | None = None, retry_top_passage: bool | None = None) -> ReaderResult:
        passages = [p for p in passages if p.text.strip()]
        if not passages:
            return ReaderResult("", self.answer_type, 0.0, [])
        found = self.candidates(question, passages, per_window=top_k + 2)
        weight = self.passage_rank_weight
        ranked = sorted(found, key=lambda c: (-(c.logit - weight * c.passage), c.passage, c.start, c.end))
        spans_out: list[ReaderSpan] = []
        for candidate in ranked:
            passage = passages[candidate.passage]
            text = passage.text[candidate.start : candidate.end]
            # Trim whitespace so the cited span is exactly the answer text.
            left = len(text) - len(text.lstrip())
            text = text.strip()
            if not text:
                continue
            start = passage.offset + candidate.start + left
            spans_out.append(ReaderSpan(passage.key, start, start + len(text), text, candidate.probability))
            if len(spans_out) == top_k:
                break
        if not spans_out:
            return ReaderResult("", self.answer_type, 0.0, [])
        best = spans_out[0]
        if best.score < self.widen_below:
            return self._widened(best, passages, spans_out)
        return ReaderResult(best.text, self.answer_type, best.score, spans_out)

    def _widened(self, best: ReaderSpan, passages: Sequence[ReaderPassage], spans: list[ReaderSpan]) -> ReaderResult:
        """A low-confidence span answered with the sentence that holds it: more often right, still exact."""
        sentence = sentence_of(best, next(p for p in passages if p.key == best.key))
        note = f"the best span scored {best.score:.3f} (< {self.widen_below:g}): answered with its sentence"
        return ReaderResult(sentence.text, "sentence", best.score, [sentence, *spans[1:]], [note])
