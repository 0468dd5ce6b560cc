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


def test_query_language_detection():
    from rag.retriever import query_language

    assert query_language("什么是自然语言处理？") == "zh"
    assert query_language("What is FastAPI 的 Depends?") == "en"
    assert query_language("FastAPI 如何声明路径参数和查询参数？") == "zh"


def test_dense_ranking_is_left_out_for_languages_the_embedder_does_not_serve(tmp_path, embedder, chunker):
    folder = tmp_path / "zh"
    folder.mkdir()
    (folder / "a.md").write_text("# 蜜蜂\n\n蜜蜂通过摇摆舞告诉同伴花的方向。\n", encoding="utf-8")
    (folder / "b.md").write_text("# 潮汐\n\n潮汐主要由月球的引力引起。\n", encoding="utf-8")
    IngestPipeline(IndexStore(tmp_path / "idx"), embedder, chunker).run([folder])
    with IndexStore(tmp_path / "idx").reader() as reader:
        retriever = HybridRetriever(reader, embedder, dense_languages=["en"])
        passages = retriever.run("潮汐是由什么引起的？").passages
        assert passages and all(p.dense_rank is None for p in passages)
        assert passages[0].source.endswith("b.md")
        english = retriever.run("What causes tides?").passages
        assert any(p.dense_rank is not None for p in english)
