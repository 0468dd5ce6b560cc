"""BM25 keyword index (bm25s) with one analyzer for English and Chinese.

Latin-script words are lower-cased, stop-worded and Snowball-stemmed; runs of
CJK characters are segmented with jieba (search mode, so both words and their
sub-words match) and also cut into overlapping character bigrams, which catch
the words jieba segments differently in question and passage (recall@1 on
CMRC 2018 trial 0.965 → 0.975; see bench/RESULTS.md). The same analyzer serves
documents and queries.
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

# Character class body of the CJK ideograph blocks (shared with query-language detection).
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{CJK_CHARS}]+|[^\W_{CJK_CHARS}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"[{CJK_CHARS}]")
_jieba_lock = threading.Lock()
# Part of the index fingerprint: a change re-analyzes stored chunks on the next ingest.
ANALYZER_VERSION = "2"  # 2: CJK character bigrams beside jieba words; k1 1.2
# BM25 saturation and length normalisation, chosen on development data (SQuAD train articles,
# CMRC 2018 trial), never on the evaluation sets: bench/RESULTS.md has the grid.
BM25_K1 = 1.2
BM25_B = 0.75
BIGRAM_MARK = "§"  # keeps bigram terms apart from jieba's two-character words


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


class BM25Index:
    """A static bm25s index over chunk ids; rebuilt from stored terms at each commit."""

    def __init__(self, ids: np.ndarray, retriever=None) -> None:
        self.ids = ids
        self._retriever = retriever

    @classmethod
    def build(cls, ids: Sequence[int], terms: Sequence[Sequence[str]]) -> BM25Index:
        import bm25s

        id_array = np.asarray(ids, dtype=np.int64)
        if len(id_array) == 0:
            return cls(id_array, None)
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        retriever.index([list(t) for t in terms], show_progress=False)
        return cls(id_array, retriever)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int, *, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (chunk ids, scores) for `query`; chunks sharing no term, or not in `allowed_ids`, are left out."""
        if self._retriever is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        vocab = self._retriever.vocab_dict
        terms = [t for t in analyze(query) if t in vocab]
        if not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._retriever.get_scores(terms), dtype=np.float32)
        if allowed_ids is not None:
            scores = np.where(np.isin(self.ids, allowed_ids), scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.ids[top], scores[top]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "chunk_ids.npy", self.ids)
        if self._retriever is not None:
            self._retriever.save(str(folder), show_progress=False)
        (folder / "bm25.json").write_text(json.dumps({"chunks": len(self.ids)}))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        import bm25s

        ids = np.load(folder / "chunk_ids.npy")
        if len(ids) == 0:
            return cls(ids, None)
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        return cls(ids, retriever)
