from __future__ import annotations

import pytest

from common.fusion import reciprocal_rank_fusion


def test_items_score_the_weighted_sum_of_their_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[7, 3, 5], [3, 9]], [1.0, 0.5], k=10)
    scores = dict(fused)
    assert scores[3] == pytest.approx(1 / 12 + 0.5 / 11)
    assert scores[9] == pytest.approx(0.5 / 12)
    assert [item for item, _ in fused] == [3, 7, 5, 9]


def test_ties_go_to_the_smaller_item_and_a_zero_weight_ranking_adds_nothing():
    assert [item for item, _ in reciprocal_rank_fusion([[2], [1]], [1.0, 1.0])] == [1, 2]
    assert [item for item, _ in reciprocal_rank_fusion([[4, 2], [2, 4]], [1.0, 0.0])] == [4, 2]


def test_rankings_and_weights_must_pair_up():
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1], [2]], [1.0])
