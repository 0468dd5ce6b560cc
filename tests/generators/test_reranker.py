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


def test_unresolvable_reranker_names_the_setting():
    with pytest.raises(ModelUnavailableError) as info:
        CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2").warm_up()
    assert info.value.setting == "RAG_RERANKER_MODEL"
