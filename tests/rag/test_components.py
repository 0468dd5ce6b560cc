"""How `rag.components` builds the stages from settings, and what it tells the user about them."""

from __future__ import annotations

import pytest


def test_components_say_when_a_stand_in_answers(shipped_models, monkeypatch):
    from generators.text.qa_reader import ExtractiveReader
    from rag.components import build_extractive_reader
    from rag.settings import Settings

    monkeypatch.delenv("RAG_READER__MODEL", raising=False)
    reader, note = build_extractive_reader(Settings(), sentence_reader=None)
    assert isinstance(reader, ExtractiveReader)
    assert note and "distilbert-base-cased-distilled-squad" in note and "reader-minilm-squad" in note


def test_the_reranker_takes_its_fusion_weight_from_settings(shipped_models, tiny_cross_encoder_dir):
    from generators.text.reranker import CrossEncoderReranker
    from rag.components import build_reranker
    from rag.settings import STAND_IN_RERANK_RETRIEVAL_WEIGHT, Settings

    # Offline, the Hub default falls back to the reranker this project ships, and the note says so.
    reranker, note = build_reranker(Settings(rerank={"model": "cross-encoder/ms-marco-MiniLM-L-6-v2"}))
    assert isinstance(reranker, CrossEncoderReranker) and reranker.resolved.stand_in
    assert "RAG_RERANK__MODEL" in note and "reranker-minilm-squad" in note
    # Unset, the fusion weight is the one chosen for the stand-in; a named model keeps its own order.
    assert reranker.retrieval_weight == STAND_IN_RERANK_RETRIEVAL_WEIGHT > 0
    assert build_reranker(Settings(rerank={"model": str(tiny_cross_encoder_dir)}))[0].retrieval_weight == 0.0
    stand_in_alone, _ = build_reranker(Settings(rerank={"model": "cross-encoder/ms-marco-MiniLM-L-6-v2", "retrieval_weight": 0}))
    assert stand_in_alone.retrieval_weight == 0.0
    reranker, note = build_reranker(Settings(rerank={"model": "no-such-org/no-such-reranker"}))
    assert reranker is None and "RAG_RERANK__MODEL" in note
    reranker, note = build_reranker(Settings(rerank={"model": str(tiny_cross_encoder_dir), "retrieval_weight": 0.5}))
    assert isinstance(reranker, CrossEncoderReranker) and note is None and reranker.retrieval_weight == 0.5
    assert len(reranker.run("How do bees talk?", ["Bees dance.", "Tides rise."]).scores) == 2
    assert reranker.backend == "onnx-int8"  # the default (bench/RESULTS.md: same quality, about 2x faster)
    assert build_reranker(Settings(rerank={"model": str(tiny_cross_encoder_dir), "backend": "torch"}))[0].backend == "torch"


def test_the_evidence_weight_is_the_stand_ins_unless_set_and_off_for_a_named_reranker(shipped_models,
                                                                                  tiny_cross_encoder_dir):
    from rag.components import build_reranker, rerank_evidence_weight
    from rag.settings import STAND_IN_RERANK_EVIDENCE_WEIGHT, Settings

    shipped = Settings(rerank={"model": "cross-encoder/ms-marco-MiniLM-L-6-v2"})
    assert rerank_evidence_weight(shipped, build_reranker(shipped)[0]) == STAND_IN_RERANK_EVIDENCE_WEIGHT > 0
    named = Settings(rerank={"model": str(tiny_cross_encoder_dir)})
    assert rerank_evidence_weight(named, build_reranker(named)[0]) == 0.0
    chosen = Settings(rerank={"model": str(tiny_cross_encoder_dir), "evidence_weight": 1.5})
    assert rerank_evidence_weight(chosen, build_reranker(chosen)[0]) == 1.5
    assert rerank_evidence_weight(Settings(rerank={"model": "none"}), None) == 0.0


def test_auto_device_is_the_gpu_when_there_is_one_else_the_cpu(monkeypatch):
    import torch

    from generators.resolve import resolve_device
    from generators.training.common import uses_cpu
    from rag.settings import Settings

    assert resolve_device(Settings(runtime={"device": "cpu"}).runtime.device) == "cpu"
    assert resolve_device(Settings(runtime={"device": "cuda:1"}).runtime.device) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(Settings().runtime.device) == "cpu" and uses_cpu("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(Settings().runtime.device) == "cuda" and not uses_cpu("auto")


@pytest.mark.usefixtures("one_torch_thread")
def test_media_models_share_a_memory_budget(tiny_image_model_dir, tiny_caption_model_dir):
    from rag.components import build_media_models
    from rag.settings import Settings

    unlimited = build_media_models(Settings(media={"image_model": str(tiny_image_model_dir), "caption_model": str(tiny_caption_model_dir)}, runtime={"device": "cpu"}))
    for name in ("image", "caption"):
        with unlimited.use(name):
            pass
    sizes = unlimited.loaded()
    assert set(sizes) == {"image", "caption"} and all(size > 0 for size in sizes.values())
    # A budget that holds either model but not both: using one unloads the other.
    budget_mb = (max(sizes.values()) + min(sizes.values()) / 2) / 2**20
    manager = build_media_models(Settings(media={"image_model": str(tiny_image_model_dir), "caption_model": str(tiny_caption_model_dir), "memory_mb": budget_mb}, runtime={"device": "cpu"}))
    with manager.use("image") as drawer:
        drawer.run("a kite", width=64, height=64, steps=1, seed=1)
    with manager.use("caption"):
        pass
    assert list(manager.loaded()) == ["caption"] and manager.model("image").memory_bytes() == 0
    with manager.use("image") as drawer:  # loads again on demand
        assert drawer.run("a kite", width=64, height=64, steps=1, seed=1).images
    assert list(manager.loaded()) == ["image"]


def test_faiss_settings_reach_the_index_config(monkeypatch):
    from rag.components import build_vector_backend
    from rag.settings import Settings

    monkeypatch.setenv("RAG_FAISS__HNSW_STORAGE", "sq8")
    monkeypatch.setenv("RAG_FAISS__HNSW_PCA_DIM", "192")
    monkeypatch.setenv("RAG_FAISS__REFINE", "10")
    monkeypatch.setenv("RAG_FAISS__HNSW_REORDER", "false")
    config = build_vector_backend(Settings()).config
    assert (config.hnsw_storage, config.hnsw_pca_dim, config.refine, config.hnsw_reorder) == ("sq8", 192, 10, False)
