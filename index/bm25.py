"""BM25 keyword index (bm25s) with one analyzer for English and Chinese.

Latin-script words are lower-cased, stop-worded and Snowball-stemmed; runs of
CJK characters are segmented with jieba (search mode, so both words and their
sub-words match) and also cut into overlapping character bigrams, which catch
the words jieba segments differently in question and passage (recall@1 on
CMRC 2018 trial 0.965 → 0.975; see bench/RESULTS.md). The same analyzer serves
documents and queries.

Chunks are ranked twice: on their own terms, and on the terms of their window
(the chunk with its neighbours in the same document), the two rankings fused by
reciprocal rank. A question whose words fall on both sides of a chunk boundary
still finds the passage; the chunk's own ranking keeps the window from letting
a whole document's chunks crowd out others.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.fusion import reciprocal_rank_fusion
from common.language import CJK_CHARS

_TOKEN = re.compile(rf"[{CJK_CHARS}]+|[^\W_{CJK_CHARS}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"[{CJK_CHARS}]")
_jieba_lock = threading.Lock()
# Part of the index fingerprint: a change re-analyzes stored chunks on the next ingest.
ANALYZER_VERSION = "3"  # 2: CJK character bigrams beside jieba words; k1 1.2. 3: neighbour windows
# BM25 saturation and length normalisation, chosen on development data (SQuAD train articles,
# CMRC 2018 trial), never on the evaluation sets: bench/RESULTS.md has the grid.
BM25_K1 = 1.2
BM25_B = 0.75
BIGRAM_MARK = "§"  # keeps bigram terms apart from jieba's two-character words
# Fusion of the chunk and window rankings, chosen on development data (CMRC 2018 trial: recall@1
# 0.964 → 0.974, recall@5 0.993 kept; SQuAD-train articles: 0.745 → 0.741, within noise): bench/RESULTS.md.
WINDOW_WEIGHT = 2.0
WINDOW_RRF_K = 60


@functools.cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_CHINESE, STOPWORDS_EN

    return frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_CHINESE)


@functools.cache
def _jieba():
    import jieba

    with _jieba_lock:
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
    return jieba


def analyze(text: str) -> list[str]:
    """Split `text` into BM25 terms."""
    stop = _stopwords()
    words: list[str] = []
    latin: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        piece = match.group()
        if _CJK_RUN.match(piece):
            words.extend(t for t in _jieba().cut_for_search(piece) if t not in stop)
            words.extend(BIGRAM_MARK + piece[i : i + 2] for i in range(len(piece) - 1))
        elif piece not in stop:
            latin.append(piece)
    if latin:
        words.extend(_stemmer().stemWords(latin))
    return words


def neighbour_windows(terms: Sequence[Sequence[str]], documents: Sequence[str]) -> list[list[str]]:
    """Each chunk's terms with those of the chunks before and after it in the same document.

    `terms` and `documents` are in document order: a document's chunks adjacent, by position."""
    windows = []
    for i, own in enumerate(terms):
        window = list(own)
        if i > 0 and documents[i - 1] == documents[i]:
            window = list(terms[i - 1]) + window
        if i + 1 < len(terms) and documents[i + 1] == documents[i]:
            window += terms[i + 1]
        windows.append(window)
    return windows


class BM25Index:
    """A static bm25s index over chunk ids; rebuilt from stored terms at each commit.

    With the chunks' documents given, a second bm25s index over neighbour windows
    ranks beside the chunks' own (see the module's note)."""

    def __init__(self, ids: np.ndarray, retriever=None, windows=None) -> None:
        self.ids = ids
        self._retriever = retriever
        self._windows = windows

    @classmethod
    def build(
        cls, ids: Sequence[int], terms: Sequence[Sequence[str]], documents: Sequence[str] | None = None
    ) -> BM25Index:
        """Index `terms` under `ids`; `documents` (each chunk's document id, chunks in document
        order) adds the neighbour-window ranking."""
        import bm25s

        id_array = np.asarray(ids, dtype=np.int64)
        if len(id_array) == 0:
            return cls(id_array, None)
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        retriever.index([list(t) for t in terms], show_progress=False)
        windows = None
        if documents is not None and len(set(documents)) < len(id_array):  # else every window is its chunk
            windows = bm25s.BM25(k1=BM25_K1, b=BM25_B)
            windows.index(neighbour_windows(terms, documents), show_progress=False)
        return cls(id_array, retriever, windows)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int, *, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (chunk ids, scores) for `query`; chunks sharing no term, or not in `allowed_ids`, are left out.

        Scores are BM25 scores, or with windows the fused reciprocal-rank scores."""
        if self._retriever is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        vocab = self._retriever.vocab_dict
        terms = [t for t in analyze(query) if t in vocab]
        if not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        mask = None if allowed_ids is None else np.isin(self.ids, allowed_ids)
        k = min(k, len(self.ids))
        own = _top(self._retriever.get_scores(terms), k, mask)
        if self._windows is None:
            return self.ids[own[0]], own[1]
        window = _top(self._windows.get_scores(terms), k, mask)
        best = reciprocal_rank_fusion([own[0].tolist(), window[0].tolist()], [1.0, WINDOW_WEIGHT], WINDOW_RRF_K)[:k]
        rows = np.asarray([row for row, _ in best], dtype=np.int64)
        return self.ids[rows], np.asarray([score for _, score in best], dtype=np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "chunk_ids.npy", self.ids)
        if self._retriever is not None:
            self._retriever.save(str(folder), show_progress=False)
        if self._windows is not None:
            self._windows.save(str(folder / "windows"), show_progress=False)
        (folder / "bm25.json").write_text(json.dumps({"chunks": len(self.ids), "windows": self._windows is not None}))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        import bm25s

        ids = np.load(folder / "chunk_ids.npy")
        if len(ids) == 0:
            return cls(ids, None)
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        windows = None
        if (folder / "windows").is_dir():  # absent in indexes written before windows (ranked by chunks alone)
            windows = bm25s.BM25.load(str(folder / "windows"), mmap=True, show_progress=False)
        return cls(ids, retriever, windows)


def _top(scores, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the k best positive scores (best first, ties by row) and those scores."""
    scores = np.asarray(scores, dtype=np.float32)
    if mask is not None:
        scores = np.where(mask, scores, 0.0)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    top = top[scores[top] > 0]
    return top, scores[top]
