from __future__ import annotations

import pytest

from generators.text.reranker import CrossEncoderReranker
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
        CrossEncoderReranker("no-such-org/no-such-cross-encoder", setting="RAG_RERANK__MODEL").warm_up()
    assert info.value.setting == "RAG_RERANK__MODEL"


def test_fused_order_weighs_the_retrieval_order_beside_the_scores():
    from generators.text.reranker import fused_order

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


def test_onnx_int8_backend_scores_like_torch_and_converts_once(tiny_cross_encoder_dir, tmp_path):
    import numpy as np

    query = "How do bees find flowers?"
    passages = ["Bees dance to point at flowers.", "Tides follow the Moon.", "Compilers emit machine code.",
                "A dance tells the hive where nectar is, and how far."]
    torch_scores = CrossEncoderReranker(str(tiny_cross_encoder_dir)).run(query, passages).scores
    onnx = CrossEncoderReranker(str(tiny_cross_encoder_dir), backend="onnx-int8", cache_dir=tmp_path, batch_size=3,
                                threads=1)
    result = onnx.run(query, passages)
    options = onnx._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"  # idle threads sleep
    # Same pairs, same segments, same sigmoid: int8 weights move a score by little.
    assert np.allclose(result.scores, torch_scores, atol=0.02)
    assert [result.scores[i] for i in result.order] == sorted(result.scores, reverse=True)
    graphs = sorted(tmp_path.glob("*.classifier.int8.onnx"))
    assert len(graphs) == 1
    stamp = graphs[0].stat().st_mtime_ns
    again = CrossEncoderReranker(str(tiny_cross_encoder_dir), backend="onnx-int8", cache_dir=tmp_path)
    # (Activations are quantised per batch, so another batch size moves scores in the 5th decimal.)
    assert again.run(query, passages).scores == pytest.approx(result.scores, abs=1e-3)
    assert graphs[0].stat().st_mtime_ns == stamp, "the cached graph is reused, not converted again"


@pytest.mark.slow
def test_shipped_reranker_orders_the_same_on_onnx_int8(tmp_path):
    passages = ["The Broncos beat the Panthers 24-10 to win Super Bowl 50.",
                "Levi's Stadium is in Santa Clara, California.",
                "Beyoncé performed at the halftime show."]
    query = "Who won Super Bowl 50?"
    shipped = "cross-encoder/ms-marco-MiniLM-L-6-v2"  # offline, resolves to the shipped stand-in
    by_torch = CrossEncoderReranker(shipped).run(query, passages)
    by_onnx = CrossEncoderReranker(shipped, backend="onnx-int8", cache_dir=tmp_path).run(query, passages)
    assert by_onnx.order[0] == by_torch.order[0] == 0
    assert by_onnx.scores == pytest.approx(by_torch.scores, abs=0.05)
