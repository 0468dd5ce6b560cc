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
