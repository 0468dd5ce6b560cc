from __future__ import annotations

import pytest

from generators.sentence_reader import SentenceReader
from index.bm25 import analyze
from index.store import IndexStore
from ingest.pipeline import IngestPipeline
from rag.chain import NOT_FOUND, AskChain
from rag.retriever import HybridRetriever, reciprocal_rank_fusion


@pytest.fixture
def chain(tmp_path, corpus, embedder, chunker):
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([corpus])
    with IndexStore(tmp_path / "idx").reader() as reader:
        yield AskChain(HybridRetriever(reader, embedder), SentenceReader(embedder, analyze))


def test_rrf_weights_and_ties():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    assert [i for i, _ in fused] == [1, 3, 2]
    dense_only = reciprocal_rank_fusion([[1, 2], [2, 1]], [1.0, 0.0], k=60)
    assert [i for i, _ in dense_only] == [1, 2]


def test_answer_cites_the_exact_span_of_its_source(chain, corpus):
    response = chain.run("What causes ocean tides?")
    assert not response.abstained and "Moon" in response.answer
    top = response.citations[0]
    assert top.source.endswith("tides.md")
    assert (corpus / "tides.md").read_text()[top.start : top.end] == top.text == response.answer
    assert set(response.timings_ms) >= {"retrieve", "rerank", "read", "total"}


def test_unrelated_question_abstains_with_closest_passages(chain):
    response = chain.run("What is the airspeed velocity of an unladen swallow in Norway's tax code?")
    assert response.abstained and response.answer == NOT_FOUND
    assert len(response.citations) > 0


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000])
def test_bad_questions_are_rejected(chain, question):
    with pytest.raises(ValueError):
        chain.run(question)
