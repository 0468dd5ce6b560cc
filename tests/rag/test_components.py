"""How `rag.components` builds the stages from settings, and what it tells the user about them."""

from __future__ import annotations


def test_components_say_when_a_stand_in_answers(shipped_models, monkeypatch):
    from generators.qa_reader import ExtractiveReader
    from rag.components import build_extractive_reader
    from rag.settings import Settings

    monkeypatch.delenv("RAG_READER_MODEL", raising=False)
    reader, note = build_extractive_reader(Settings(), sentence_reader=None)
    assert isinstance(reader, ExtractiveReader)
    assert note and "distilbert-base-cased-distilled-squad" in note and "reader-minilm-squad" in note


def test_auto_device_is_the_gpu_when_there_is_one_else_the_cpu(monkeypatch):
    import torch

    from rag.components import model_device
    from rag.settings import Settings

    assert model_device(Settings(device="cpu")) == "cpu"
    assert model_device(Settings(device="cuda:1")) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert model_device(Settings()) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert model_device(Settings()) == "cuda"
