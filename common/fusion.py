"""Reciprocal-rank fusion: one ranking out of several, each item scoring Σ weight / (k + rank)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

Item = TypeVar("Item", bound=Hashable)

RRF_K = 60  # the constant of the original paper (Cormack et al., 2009); callers tune their own where it mattered
# Hybrid retrieval (dense + BM25), tuned on SQuAD-train articles, development data (bench/RESULTS.md).
HYBRID_RRF_K = 10
HYBRID_DENSE_WEIGHT = 0.5
HYBRID_BM25_WEIGHT = 1.0


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Item]], weights: Sequence[float],
                           k: float = RRF_K) -> list[tuple[Item, float]]:
    """(item, fused score) over the rankings an item appears in, best first; ties go to the smaller item."""
    scores: dict[Item, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
