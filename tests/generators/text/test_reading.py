"""Every reader keeps the same contract (generators.text.reading.Reader): warm_up, run, stream, and `generates`."""

from __future__ import annotations

import pytest

from generators.text.generative_reader import GenerativeReader
from generators.text.qa_reader import ExtractiveReader
from generators.text.reading import ReaderPassage, ReaderResult
from generators.text.sentence_reader import SentenceReader
from index.bm25 import analyze
from tests.generators.text.test_generative_reader import ScriptedGenerator

TEXT = "Ocean tides are caused mainly by the pull of the Moon. Honey bees dance to show where flowers are."
PASSAGES = [ReaderPassage(0, TEXT, 0)]
QUESTION = "What causes ocean tides?"


@pytest.fixture(params=["extractive", "sentence", "generative"])
def reader(request, embedder, tiny_qa_model_dir):
    return {
        "extractive": lambda: ExtractiveReader(str(tiny_qa_model_dir)),
        "sentence": lambda: SentenceReader(embedder, analyze),
        "generative": lambda: GenerativeReader(ScriptedGenerator("The pull of the Moon causes tides [1].")),
    }[request.param]()


def test_every_reader_warms_up_runs_and_streams_the_same_answer(reader):
    assert reader.warm_up() is reader
    result = reader.run(QUESTION, PASSAGES, top_k=3, history=None, retry_top_passage=None)
    events = list(reader.stream(QUESTION, PASSAGES, top_k=3, history=None, retry_top_passage=None))
    assert isinstance(events[-1], ReaderResult) and all(isinstance(e, str) for e in events[:-1])
    assert "".join(events[:-1]) == events[-1].answer == result.answer
    assert [(s.start, s.end) for s in events[-1].spans] == [(s.start, s.end) for s in result.spans]
    for span in result.spans:
        assert TEXT[span.start : span.end] == span.text  # exact spans of the document
    assert reader.generates == isinstance(reader, GenerativeReader)
