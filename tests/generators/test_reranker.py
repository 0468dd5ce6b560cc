from __future__ import annotations

import pytest

from generators.reranker import CrossEncoderReranker
from generators.resolve import ModelUnavailableError


def test_tiny_cross_encoder_scores_every_passage_and_orders_them(tiny_cross_encoder_dir):
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_dir), batch_size=2)
    passages = ["Bees dance to point at flowers.", "Tides follow the Moon.", "Compilers emit machine code."]
    result = reranker.run("How do bees find flowers?", passages)
    assert sorted(result.order) == [0, 1, 2] and len(result.scores) == 3
    ordered = [result.scores[i] for i in result.order]
    assert ordered == sorted(ordered, reverse=True)
    # Scores depend on the pair, not on the batch a passage lands in.
    alone = reranker.run("How do bees find flowers?", passages[1:2])
    assert alone.scores[0] == pytest.approx(result.scores[1], abs=1e-5)


def test_no_passages():
    assert CrossEncoderReranker("unused").run("q", []).order == []


def test_unresolvable_reranker_names_the_setting(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        CrossEncoderReranker("no-such-org/no-such-cross-encoder").warm_up()
    assert info.value.setting == "RAG_RERANKER_MODEL"


def test_fused_order_weighs_the_retrieval_order_beside_the_scores():
    from generators.reranker import fused_order

    scores = [0.1, 0.9, 0.5, 0.8]  # passages in retrieval order
    assert fused_order(scores, 0.0) == [1, 3, 2, 0]  # the reranker alone
    # Equal weights: passage 1 (retrieved 2nd, reranked 1st) leads; weighted heavily, retrieval order wins.
    assert fused_order(scores, 1.0)[0] == 1
    assert fused_order(scores, 100.0) == [0, 1, 2, 3]
    assert fused_order([0.5, 0.5, 0.5], 0.0) == [0, 1, 2]  # ties keep retrieval order


def test_retrieval_weight_is_a_default_each_call_may_override(tiny_cross_encoder_dir):
    passages = ["Bees dance to point at flowers.", "Tides follow the Moon.", "Compilers emit machine code."]
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_dir), retrieval_weight=1000.0)
    kept = reranker.run("How do bees find flowers?", passages)
    assert kept.order == [0, 1, 2]
    alone = reranker.run("How do bees find flowers?", passages, retrieval_weight=0.0)
    assert alone.scores == kept.scores
    assert [alone.scores[i] for i in alone.order] == sorted(alone.scores, reverse=True)
