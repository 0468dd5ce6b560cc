from __future__ import annotations

import pytest

from generators.resolve import ModelUnavailableError, resolve_model


def test_local_folder_wins(tmp_path):
    resolved = resolve_model(str(tmp_path), role="embedder", setting="RAG_EMBEDDER__MODEL")
    assert resolved.source == "local" and resolved.path == tmp_path.resolve()


def test_offline_hub_name_falls_back_to_the_packaged_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="RAG_EMBEDDER__MODEL")
    assert resolved.source in {"package", "hub"}  # "hub" only where the HF cache already holds it
    assert (resolved.path / "config.json").is_file()


def test_unknown_model_names_the_setting(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model("someone/unknown-model", role="reranker", setting="RAG_RERANK__MODEL")
    assert caught.value.setting == "RAG_RERANK__MODEL" and caught.value.model == "someone/unknown-model"
    assert "RAG_RERANK__MODEL" in str(caught.value)


def test_missing_local_path_is_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(ModelUnavailableError, match="no folder"):
        resolve_model(str(tmp_path / "absent"), role="embedder", setting="RAG_EMBEDDER__MODEL")


def test_shipped_stand_in_comes_after_local_paths_and_the_hub(shipped_models, tiny_qa_model_dir):
    resolved = resolve_model("distilbert-base-cased-distilled-squad", role="extractive reader", setting="RAG_READER__MODEL")
    assert resolved.source == "package" and resolved.stand_in
    assert resolved.path == shipped_models / "reader-minilm-squad"
    local = resolve_model(str(tiny_qa_model_dir), role="extractive reader", setting="RAG_READER__MODEL")
    assert local.source == "local" and not local.stand_in
    reranker = resolve_model("cross-encoder/ms-marco-MiniLM-L-6-v2", role="reranker", setting="RAG_RERANK__MODEL")
    assert reranker.stand_in and reranker.path == shipped_models / "reranker-minilm-squad"
    (shipped_models / "reranker-minilm-squad" / "config.json").unlink()  # an incomplete folder is not a model
    with pytest.raises(ModelUnavailableError):
        resolve_model("cross-encoder/ms-marco-MiniLM-L-6-v2", role="reranker", setting="RAG_RERANK__MODEL")
    embedder = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="RAG_EMBEDDER__MODEL")
    assert not embedder.stand_in  # the same model, shipped by a PyPI package
